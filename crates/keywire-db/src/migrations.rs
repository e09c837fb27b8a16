//! Embedded migrations, one directory per backend, run with diesel's synchronous harness.
//!
//! `diesel_async::AsyncMigrationHarness` uses `block_in_place`, which panics on a
//! current-thread runtime (actix's, a plain `#[tokio::test]`). So the sync harness runs inside
//! `spawn_blocking`: over a plain `SqliteConnection`, or over an `AsyncConnectionWrapper`
//! around an `AsyncPgConnection` (which blocks on the caller's runtime from the blocking
//! thread; that works on both runtime flavours).

use std::error::Error;

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::database_url::Target;
use crate::{Db, DbError};

/// Migrations for SQLite (`migrations/sqlite` at the workspace root).
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
/// Migrations for PostgreSQL (`migrations/postgres` at the workspace root).
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Key of the PostgreSQL advisory lock held while migrating ("kwmigrat" in ASCII), so that
/// several nodes starting at once against one fresh database take turns.
const MIGRATION_LOCK_KEY: i64 = 0x6b77_6d69_6772_6174;

type HarnessError = Box<dyn Error + Send + Sync>;

#[derive(Clone, Copy)]
enum Direction {
    Up,
    RevertAll,
}

impl Db {
    /// Applies every pending migration of this backend; returns the versions applied, oldest
    /// first (empty when the schema was current).
    ///
    /// Safe to call from several processes at once: on PostgreSQL it holds an advisory lock;
    /// on SQLite it runs in one `BEGIN IMMEDIATE` transaction. Works on current-thread and
    /// multi-thread tokio runtimes.
    ///
    /// # Errors
    ///
    /// [`DbError::Unavailable`] if no connection can be made, [`DbError::Other`] if a
    /// migration fails (its changes are rolled back).
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        let applied = self.run_migrations(Direction::Up).await?;
        if !applied.is_empty() {
            tracing::info!(backend = %self.backend(), ?applied, "applied database migrations");
        }
        Ok(applied)
    }

    /// Reverts every applied migration, newest first; returns the versions reverted. For tests.
    ///
    /// # Errors
    ///
    /// As [`Db::migrate`].
    pub async fn revert_all_migrations(&self) -> Result<Vec<String>, DbError> {
        self.run_migrations(Direction::RevertAll).await
    }

    async fn run_migrations(&self, direction: Direction) -> Result<Vec<String>, DbError> {
        let result = match self.target() {
            Target::Sqlite { path } => {
                let path = path.clone();
                let busy_ms = self.sqlite_busy_timeout().as_millis();
                tokio::task::spawn_blocking(move || {
                    let mut conn = SqliteConnection::establish(&path)?;
                    // `foreign_keys` stays off (the default) here: SQLite's recipe for
                    // rebuilding a table in a migration requires it.
                    conn.batch_execute(&format!("PRAGMA busy_timeout = {busy_ms};"))?;
                    conn.immediate_transaction(|conn| run(conn, SQLITE_MIGRATIONS, direction))
                        .map_err(harness_error)
                })
                .await?
            }
            Target::Postgres { url, .. } => {
                let conn = self.acquire(AsyncPgConnection::establish(url)).await?;
                tokio::task::spawn_blocking(move || {
                    let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
                    // A session lock (not a transaction one) so that migrations which must run
                    // outside a transaction still work. It ends with the session if we die.
                    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
                    let result = run(&mut conn, POSTGRES_MIGRATIONS, direction);
                    let unlocked = conn
                        .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
                    let versions = result.map_err(harness_error)?;
                    unlocked?;
                    Ok(versions)
                })
                .await?
            }
        };
        result.map_err(|error| self.scrub_error(error))
    }
}

fn run<C, DB>(
    conn: &mut C,
    migrations: EmbeddedMigrations,
    direction: Direction,
) -> Result<Vec<String>, HarnessError>
where
    C: MigrationHarness<DB>,
    DB: diesel::backend::Backend,
{
    let versions = match direction {
        Direction::Up => conn.run_pending_migrations(migrations)?,
        Direction::RevertAll => conn.revert_all_migrations(migrations)?,
    };
    Ok(versions.iter().map(ToString::to_string).collect())
}

/// Keeps the meaning of database errors (unavailable, conflict) and labels the rest.
fn harness_error(error: HarnessError) -> DbError {
    match error.downcast::<diesel::result::Error>() {
        Ok(error) => match DbError::from(*error) {
            DbError::Other(message) => DbError::Other(format!("migration failed: {message}")),
            other => other,
        },
        Err(error) => DbError::Other(format!("migration failed: {error}")),
    }
}
