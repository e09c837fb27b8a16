//! Throwaway databases: a SQLite file in a temporary directory, and, when
//! `KEYWIRE_TEST_DATABASE_URL` names a PostgreSQL server, a fresh database on it per test.
//!
//! ```text
//! for test_db in TestDb::all().await {
//!     let db = test_db.migrated().await;
//!     // ... assertions, with `test_db.backend()` in their messages
//! }
//! ```

use std::fmt;

use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl as _};
use keywire_db::{Backend, Db};
use tempfile::TempDir;

/// Environment variable naming a PostgreSQL server for tests, as a `postgres://` URL of a
/// role that may `CREATE DATABASE` (for instance `postgres://postgres@127.0.0.1:5432/postgres`).
/// Unset or empty: tests run on SQLite only.
pub const TEST_DATABASE_URL_ENV: &str = "KEYWIRE_TEST_DATABASE_URL";

/// A database that exists for one test and is removed when this value is dropped.
pub struct TestDb {
    url: String,
    backend: Backend,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<TempDir>,
    /// The PostgreSQL database to drop, and the URL to drop it through.
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: show only the backend and the database.
        let mut debug = f.debug_struct("TestDb");
        debug.field("backend", &self.backend);
        match &self.postgres {
            Some(database) => debug.field("database", &database.name),
            None => debug.field("url", &self.url),
        };
        debug.finish_non_exhaustive()
    }
}

impl TestDb {
    /// A new SQLite database file in its own temporary directory.
    ///
    /// # Panics
    ///
    /// If no temporary directory can be created.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("keywire-test-")
            .tempdir()
            .expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("keywire.db").display());
        TestDb {
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A new, empty PostgreSQL database `kw_test_<random hex>` on the server named by
    /// [`TEST_DATABASE_URL_ENV`], or `None` when that variable is unset or empty.
    ///
    /// The database is dropped (`WITH (FORCE)`, so open connections do not block it) when the
    /// value is dropped.
    ///
    /// # Panics
    ///
    /// If the variable is set but the server cannot be reached or refuses `CREATE DATABASE`:
    /// a configured PostgreSQL leg must not silently turn into a SQLite-only run.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var(TEST_DATABASE_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())?;
        let name = format!("kw_test_{}", random_hex(8));
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {TEST_DATABASE_URL_ENV}: {error}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("CREATE DATABASE {name} failed: {error}"));
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|error| panic!("{TEST_DATABASE_URL_ENV} is not a URL: {error}"));
        url.set_path(&format!("/{name}"));
        Some(TestDb {
            url: url.to_string(),
            backend: Backend::Postgres,
            _dir: None,
            postgres: Some(PostgresDatabase { admin_url, name }),
        })
    }

    /// A SQLite database, and a PostgreSQL one too when [`TEST_DATABASE_URL_ENV`] is set: loop
    /// over the result to run a test on every configured backend.
    pub async fn all() -> Vec<TestDb> {
        let mut all = vec![TestDb::sqlite().await];
        all.extend(TestDb::postgres().await);
        all
    }

    /// The database URL, for [`Db::connect`] or a spawned server's configuration.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this database uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A pool on this database, without migrations.
    ///
    /// # Panics
    ///
    /// If the pool cannot be created.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url).await.unwrap_or_else(|error| {
            panic!("connect to the {} test database: {error}", self.backend)
        })
    }

    /// A pool on this database, with every migration applied.
    ///
    /// # Panics
    ///
    /// If the pool cannot be created or a migration fails.
    pub async fn migrated(&self) -> Db {
        let db = self.connect().await;
        db.migrate()
            .await
            .unwrap_or_else(|error| panic!("migrate the {} test database: {error}", self.backend));
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(PostgresDatabase { admin_url, name }) = self.postgres.take() else {
            return;
        };
        // Drop may run inside a tokio runtime, where blocking on another future is not
        // allowed: do the work on a thread of its own, with its own small runtime. Best effort:
        // a failure only leaves a database behind on a throwaway server.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async move {
                let mut admin = AsyncPgConnection::establish(&admin_url)
                    .await
                    .map_err(|error| error.to_string())?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                eprintln!("keywire-test-support: could not drop a test database: {error}")
            }
            Err(_) => eprintln!("keywire-test-support: dropping a test database panicked"),
        }
    }
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0_u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random generator failed");
    buffer.iter().map(|byte| format!("{byte:02x}")).collect()
}
