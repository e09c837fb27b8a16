//! [`Db`]: the connection pool of either backend, and the macros that run one query body on
//! whichever connection it hands out.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::sql_types::{Integer, Text};
use diesel::{Connection as _, IntoSql as _, QueryableByName, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::DbError;
use crate::database_url::{self, Target};

/// The async face of a SQLite connection. Calls run inline (see [`Inline`]).
pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection, Inline>;

/// Runs a SQLite call right where it is awaited instead of on tokio's blocking pool.
///
/// A statement on a local file takes microseconds; handing each one to a pool thread and back
/// cost more than the statement (a write transaction is a dozen statements, run one after
/// the other while this process's writer lock is held), and under load those hops, not
/// SQLite, set the write rate. What can make a call wait is another *process* holding the
/// file's write lock (this process's writers queue on an async lock first): that blocks the
/// calling thread for at most `busy_timeout`, and ends in a 503.
pub(crate) struct Inline;

impl diesel_async::sync_connection_wrapper::SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>,
    >
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

/// The pool of one backend.
pub(crate) enum Pools {
    /// PostgreSQL, natively async.
    Pg(Pool<AsyncPgConnection>),
    /// SQLite, a synchronous connection wrapped for async use.
    Sqlite(Pool<SqliteConn>),
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend `$db` uses.
///
/// The body is written once and type-checked twice, against `&mut AsyncPgConnection` and
/// against `&mut SyncConnectionWrapper<SqliteConnection>`, so it may only use query-builder
/// code that both backends support. It is spliced into the calling function: `?` and `return`
/// leave that function. Failing to get a connection returns [`DbError::Unavailable`].
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Db = $db;
        match db.pools() {
            $crate::db::Pools::Pg(pool) => {
                let mut pooled = db.acquire(pool.get()).await?;
                let $conn: &mut ::diesel_async::AsyncPgConnection = &mut pooled;
                $body
            }
            $crate::db::Pools::Sqlite(pool) => {
                let mut pooled = db.acquire(pool.get()).await?;
                let $conn: &mut $crate::db::SqliteConn = &mut pooled;
                $body
            }
        }
    }};
}
pub(crate) use with_conn;

/// Like [`with_conn!`], inside a write transaction, evaluating to `Result<T, DbError>`.
///
/// The body is the body of an async closure returning `Result<T, DbError>`: `?` and `return`
/// leave the transaction, which is committed on `Ok` and rolled back on `Err`. On SQLite the
/// transaction is `BEGIN IMMEDIATE`, taken while holding this process's writer lock, so
/// concurrent writers queue in order on an async lock instead of sleeping in SQLite's busy
/// handler (whose back-off sleeps of up to 100 ms set the tail latency under load), and
/// `busy_timeout` only arbitrates with other processes; on PostgreSQL it is a plain
/// `READ COMMITTED` transaction.
macro_rules! transaction {
    // Without the commit signal: for transactions that create nothing a worker should look at
    // (a claim), so that workers do not wake each other up forever.
    (quiet: $db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Db = $db;
        match db.pools() {
            $crate::db::Pools::Pg(pool) => {
                let mut pooled = db.acquire(pool.get()).await?;
                let conn: &mut ::diesel_async::AsyncPgConnection = &mut pooled;
                ::diesel_async::AsyncConnection::transaction(
                    conn,
                    async |$conn| -> ::std::result::Result<_, $crate::DbError> { $body },
                )
                .await
            }
            $crate::db::Pools::Sqlite(pool) => {
                let _writer = db.sqlite_writer().await?;
                let mut pooled = db.acquire(pool.get()).await?;
                let conn: &mut $crate::db::SqliteConn = &mut pooled;
                $crate::db::immediate_transaction(
                    conn,
                    db.sqlite_busy_timeout(),
                    async |$conn| -> ::std::result::Result<_, $crate::DbError> { $body },
                )
                .await
            }
        }
    }};
    ($db:expr, |$conn:ident| $body:expr) => {{
        let db: &$crate::Db = $db;
        match db.pools() {
            $crate::db::Pools::Pg(pool) => {
                let mut pooled = db.acquire(pool.get()).await?;
                let conn: &mut ::diesel_async::AsyncPgConnection = &mut pooled;
                ::diesel_async::AsyncConnection::transaction(
                    conn,
                    async |$conn| -> ::std::result::Result<_, $crate::DbError> { $body },
                )
                .await
                .inspect(|_| db.committed().notify_waiters())
            }
            $crate::db::Pools::Sqlite(pool) => {
                let _writer = db.sqlite_writer().await?;
                let mut pooled = db.acquire(pool.get()).await?;
                let conn: &mut $crate::db::SqliteConn = &mut pooled;
                $crate::db::immediate_transaction(
                    conn,
                    db.sqlite_busy_timeout(),
                    async |$conn| -> ::std::result::Result<_, $crate::DbError> { $body },
                )
                .await
                .inspect(|_| db.committed().notify_waiters())
            }
        }
    }};
}
pub(crate) use transaction;

/// `BEGIN IMMEDIATE`, `f`, then `COMMIT` (or `ROLLBACK` when `f` fails) on a SQLite
/// connection: diesel-async's own `immediate_transaction` exists only for its blocking-pool
/// wrapper.
///
/// Another process holding the write lock makes `BEGIN IMMEDIATE` fail fast (pooled connections
/// wait only [`INLINE_BUSY_MS`] inline); it is tried again after short async sleeps for up to
/// `busy_timeout`, so a thread is never blocked for long, then the answer is
/// [`DbError::Unavailable`].
pub(crate) async fn immediate_transaction<R, F>(
    conn: &mut SqliteConn,
    busy_timeout: std::time::Duration,
    f: F,
) -> Result<R, DbError>
where
    F: AsyncFnOnce(&mut SqliteConn) -> Result<R, DbError>,
{
    use diesel::connection::AnsiTransactionManager;
    use diesel_async::TransactionManager as _;
    type Manager = diesel_async::sync_connection_wrapper::SyncTransactionManagerWrapper<
        AnsiTransactionManager,
    >;
    let started = std::time::Instant::now();
    loop {
        match conn
            .spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
            .await
        {
            Ok(()) => break,
            Err(error) => match DbError::from(error) {
                DbError::Unavailable(why) if started.elapsed() >= busy_timeout => {
                    return Err(DbError::Unavailable(format!(
                        "{why}: another process held the database's write lock for {busy_timeout:?}"
                    )));
                }
                DbError::Unavailable(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => return Err(other),
            },
        }
    }
    match f(&mut *conn).await {
        Ok(value) => {
            Manager::commit_transaction(&mut *conn).await?;
            Ok(value)
        }
        Err(error) => {
            Manager::rollback_transaction(&mut *conn).await?;
            Err(error)
        }
    }
}

/// How long a pooled SQLite connection waits inline for a lock held by another process
/// before reporting "database is locked" (write transactions then wait asynchronously).
pub(crate) const INLINE_BUSY_MS: u64 = 20;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server (for running several nodes against one database).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        })
    }
}

/// Pool settings; [`DbOptions::default`] suits a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbOptions {
    /// Most connections the pool opens; `None` means
    /// [`DbOptions::DEFAULT_SQLITE_CONNECTIONS`] or [`DbOptions::DEFAULT_POSTGRES_CONNECTIONS`].
    pub max_connections: Option<usize>,
    /// How long a query waits for a pooled connection (including opening one) before failing
    /// with [`DbError::Unavailable`].
    pub acquire_timeout: Duration,
    /// How long a SQLite connection waits for another writer before failing (`busy_timeout`).
    pub sqlite_busy_timeout: Duration,
}

impl DbOptions {
    /// Default pool size for SQLite: it has one writer at a time anyway.
    pub const DEFAULT_SQLITE_CONNECTIONS: usize = 4;
    /// Default pool size for PostgreSQL.
    pub const DEFAULT_POSTGRES_CONNECTIONS: usize = 16;
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A handle to the database: a connection pool for SQLite or PostgreSQL.
///
/// Cloning is cheap (one reference count) and clones share the pool. Every query method is
/// an inherent `async fn` on this type; see the crate documentation for the list.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pools: Pools,
    target: Target,
    redacted_url: String,
    options: DbOptions,
    /// Signalled after every committed write transaction: delivery workers wake at once
    /// instead of waiting for their next poll.
    committed: tokio::sync::Notify,
    /// Held around every SQLite write transaction (one writer at a time, in arrival order).
    sqlite_writer: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend())
            .field("url", &self.inner.redacted_url)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens a pool for `url` with [`DbOptions::default`]; see [`Db::connect_with`].
    ///
    /// # Errors
    ///
    /// As [`Db::connect_with`].
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        Self::connect_with(url, DbOptions::default()).await
    }

    /// Opens a pool for `url`.
    ///
    /// - `postgres://…` or `postgresql://…` selects PostgreSQL. Connections open lazily:
    ///   nothing touches the network until the first query, [`Db::ping`] or [`Db::migrate`].
    /// - `sqlite://<path>`, `sqlite:<path>` or a plain file path selects SQLite. The parent
    ///   directory and the file are created, and the file is switched to WAL mode, right away.
    ///   Each pooled connection sets `busy_timeout` and `foreign_keys = ON`. `:memory:` is
    ///   refused: every pooled connection would see its own empty database.
    ///
    /// # Errors
    ///
    /// [`DbError::Config`] for an unusable URL or pool size; [`DbError::Unavailable`] when the
    /// SQLite file cannot be opened.
    pub async fn connect_with(url: &str, options: DbOptions) -> Result<Self, DbError> {
        let (target, redacted_url) = database_url::parse(url)?;
        let max_size = options.max_connections.unwrap_or(match target.backend() {
            Backend::Sqlite => DbOptions::DEFAULT_SQLITE_CONNECTIONS,
            Backend::Postgres => DbOptions::DEFAULT_POSTGRES_CONNECTIONS,
        });
        if max_size == 0 {
            return Err(DbError::Config(
                "max_connections must be at least 1".to_owned(),
            ));
        }
        let pools = match &target {
            Target::Postgres { url, .. } => {
                let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(url.clone());
                Pools::Pg(
                    Pool::builder(manager)
                        .max_size(max_size)
                        .build()
                        .map_err(|error| DbError::Config(error.to_string()))?,
                )
            }
            Target::Sqlite { path } => {
                let busy_ms = options.sqlite_busy_timeout.as_millis();
                prepare_sqlite_file(path.clone(), busy_ms).await?;
                let mut config = ManagerConfig::<SqliteConn>::default();
                // A local file does not drop connections; skip the `SELECT 1` per checkout.
                config.recycling_method = RecyclingMethod::Fast;
                config.custom_setup = Box::new(move |url: &str| {
                    let url = url.to_owned();
                    Box::pin(async move {
                        let mut conn = SqliteConn::establish(&url).await?;
                        conn.batch_execute(&format!(
                            "PRAGMA busy_timeout = {INLINE_BUSY_MS}; PRAGMA foreign_keys = ON; \
                             PRAGMA synchronous = NORMAL;"
                        ))
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                        Ok(conn)
                    })
                });
                let manager = AsyncDieselConnectionManager::new_with_config(path.clone(), config);
                Pools::Sqlite(
                    Pool::builder(manager)
                        .max_size(max_size)
                        .build()
                        .map_err(|error| DbError::Config(error.to_string()))?,
                )
            }
        };
        tracing::debug!(url = %redacted_url, max_size, "database pool ready");
        Ok(Self {
            inner: Arc::new(Inner {
                pools,
                target,
                redacted_url,
                options,
                committed: tokio::sync::Notify::new(),
                sqlite_writer: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Which backend this pool talks to.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.inner.target.backend()
    }

    /// The database URL without its userinfo or password: safe to log.
    #[must_use]
    pub fn redacted_url(&self) -> &str {
        &self.inner.redacted_url
    }

    /// Runs `SELECT 1` on a pooled connection: the readiness check.
    ///
    /// # Errors
    ///
    /// [`DbError::Unavailable`] when no connection can be had within
    /// [`DbOptions::acquire_timeout`].
    pub async fn ping(&self) -> Result<(), DbError> {
        with_conn!(self, |conn| {
            diesel::select(1_i32.into_sql::<Integer>())
                .get_result::<i32>(conn)
                .await?;
        });
        Ok(())
    }

    /// The names of the application's tables, sorted (diesel's own migration table excluded).
    ///
    /// Used by migration tests and handy for diagnostics.
    ///
    /// # Errors
    ///
    /// Any [`DbError`] from the query.
    pub async fn table_names(&self) -> Result<Vec<String>, DbError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let sql = match self.backend() {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations' \
                 ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT tablename::text AS name FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() \
                 AND tablename <> '__diesel_schema_migrations' ORDER BY tablename"
            }
        };
        let rows: Vec<Row> = with_conn!(self, |conn| diesel::sql_query(sql).load(conn).await?);
        Ok(rows.into_iter().map(|row| row.name).collect())
    }

    /// Signalled after every committed write transaction (delivery workers wait on it).
    pub fn committed(&self) -> &tokio::sync::Notify {
        &self.inner.committed
    }

    /// This process's turn to write to the SQLite file, waited for at most
    /// [`DbOptions::acquire_timeout`] (a writer stuck elsewhere makes this
    /// [`DbError::Unavailable`], never a hang).
    pub(crate) async fn sqlite_writer(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, DbError> {
        let timeout = self.inner.options.acquire_timeout;
        tokio::time::timeout(timeout, self.inner.sqlite_writer.lock())
            .await
            .map_err(|_| {
                DbError::Unavailable(format!(
                    "the database {} stayed busy with other writes for {timeout:?}",
                    self.inner.redacted_url
                ))
            })
    }

    pub(crate) fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    pub(crate) fn target(&self) -> &Target {
        &self.inner.target
    }

    /// Awaits `get` (a pool checkout or a fresh connection) for at most
    /// [`DbOptions::acquire_timeout`]; any failure is [`DbError::Unavailable`].
    pub(crate) async fn acquire<T, E: fmt::Display>(
        &self,
        get: impl Future<Output = Result<T, E>>,
    ) -> Result<T, DbError> {
        let timeout = self.inner.options.acquire_timeout;
        match tokio::time::timeout(timeout, get).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(DbError::Unavailable(self.scrub(&error.to_string()))),
            Err(_) => Err(DbError::Unavailable(format!(
                "no connection to {} within {timeout:?}",
                self.inner.redacted_url
            ))),
        }
    }

    /// Removes the connection password from `message`, should a driver have echoed it.
    pub(crate) fn scrub(&self, message: &str) -> String {
        match &self.inner.target {
            Target::Postgres { secrets, .. } => database_url::scrub(message, secrets),
            Target::Sqlite { .. } => message.to_owned(),
        }
    }

    /// Applies [`Db::scrub`] to the message of `error`.
    pub(crate) fn scrub_error(&self, error: DbError) -> DbError {
        match error {
            DbError::Unavailable(message) => DbError::Unavailable(self.scrub(&message)),
            DbError::Conflict(message) => DbError::Conflict(self.scrub(&message)),
            DbError::InvalidInput(message) => DbError::InvalidInput(self.scrub(&message)),
            DbError::Config(message) => DbError::Config(self.scrub(&message)),
            DbError::Other(message) => DbError::Other(self.scrub(&message)),
            other => other,
        }
    }

    pub(crate) fn sqlite_busy_timeout(&self) -> Duration {
        self.inner.options.sqlite_busy_timeout
    }
}

/// Creates the SQLite file (and its directory) and switches it to WAL once: the journal mode
/// is stored in the file, so pooled connections need not repeat it.
async fn prepare_sqlite_file(path: String, busy_ms: u128) -> Result<(), DbError> {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = Path::new(&path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|error| {
                DbError::Config(format!(
                    "cannot create the directory {} for the SQLite database: {error}",
                    parent.display()
                ))
            })?;
        }
        let mut conn = SqliteConnection::establish(&path)?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL;"
        ))?;
        Ok(())
    })
    .await?
}
