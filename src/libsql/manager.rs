//! [`LibsqlManager`]: how the pool opens, checks and cleans libSQL connections.

use std::fmt;
use std::sync::Arc;

use super::checkpoint::{Checkpointer, JOURNAL_SIZE_LIMIT};
use super::connection::{LibsqlConnection, TransactionMode};
use super::database::{run_to_end, DatabaseKind, LibsqlDatabase};
use super::error::{LibsqlError, Result};
use super::setup::{setup_error, ConnectionSetup};
use super::statement_cache::DEFAULT_STATEMENT_CACHE_CAPACITY;
use crate::pool::Manager;

/// The [`Manager`] for libSQL: opens a connection and applies the [`ConnectionSetup`], health-checks
/// with `SELECT 1`, and cleans a returned connection.
///
/// * **Connect:** `Database::connect()` (synchronous, one `sqlite3_open_v2` for local databases), then the
///   setup: busy timeout, `foreign_keys`, `synchronous=NORMAL` under WAL, the init SQL and hook.
/// * **Validate:** `SELECT 1`. The pool runs it only on connections idle longer than
///   `health_check_bypass` (500 ms by default), under `health_check_timeout`, never on every checkout.
/// * **Reset:** `ROLLBACK` when `!is_autocommit()` (a panic after a manual `BEGIN`, a failed `COMMIT`).
///   If that fails the pool closes the connection. A leaked statement guard is reset too.
/// * **Broken:** a connection marked with [`LibsqlConnection::mark_broken`].
///
/// ```
/// use memory_storage_turso::libsql::{block_on, LibsqlDatabase, LibsqlManager};
/// use memory_storage_turso::pool::{Pool, PoolConfig};
///
/// let dir = tempfile::tempdir().unwrap();
/// let database = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
/// let manager = LibsqlManager::new(database).statement_cache_capacity(128);
/// let config = PoolConfig::builder().max_connections(4).build().unwrap();
/// let pool = Pool::builder(manager).config(config).build().unwrap();
///
/// let conn = pool.get_blocking().unwrap();
/// block_on(conn.execute("CREATE TABLE t(x)", ())).unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct LibsqlManager {
    database: Arc<LibsqlDatabase>,
    setup: ConnectionSetup,
    statement_cache_capacity: usize,
    transaction_mode: TransactionMode,
    query_only: bool,
    checkpointer: Option<Arc<Checkpointer>>,
}

impl fmt::Debug for LibsqlManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibsqlManager")
            .field("database", &self.database)
            .field("setup", &self.setup)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("transaction_mode", &self.transaction_mode)
            .field("query_only", &self.query_only)
            .field("checkpointer", &self.checkpointer)
            .finish()
    }
}

impl LibsqlManager {
    /// A manager for `database` with the default setup, a statement cache of 64 per connection, and
    /// deferred transactions.
    pub fn new(database: impl Into<Arc<LibsqlDatabase>>) -> Self {
        Self {
            database: database.into(),
            setup: ConnectionSetup::default(),
            statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
            transaction_mode: TransactionMode::Deferred,
            query_only: false,
            checkpointer: None,
        }
    }

    /// Uses `setup` for new connections instead of the default.
    pub fn setup(mut self, setup: ConnectionSetup) -> Self {
        self.setup = setup;
        self
    }

    /// The capacity of each connection's statement cache (default 64; 0 turns it off).
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache_capacity = capacity;
        self
    }

    /// How [`LibsqlConnection::transaction`] begins (default [`TransactionMode::Deferred`]).
    pub fn transaction_mode(mut self, mode: TransactionMode) -> Self {
        self.transaction_mode = mode;
        self
    }

    /// Whether connections are opened with `PRAGMA query_only=ON`, so that any write fails (the read
    /// lanes use it). Default false.
    pub fn query_only(mut self, on: bool) -> Self {
        self.query_only = on;
        self
    }

    /// Hands WAL checkpoints to `checkpointer`: connections run with `wal_autocheckpoint=0`, count
    /// the rows they change, and checkpoint after they went back (the write lane).
    pub(crate) fn checkpoint_with(mut self, checkpointer: Arc<Checkpointer>) -> Self {
        self.checkpointer = Some(checkpointer);
        self
    }

    /// The database.
    pub fn database(&self) -> &Arc<LibsqlDatabase> {
        &self.database
    }

    /// Opens and sets up one connection, outside any pool (the r2d2 facade uses this).
    pub(crate) async fn open(&self) -> Result<LibsqlConnection> {
        let database = &self.database;
        let conn = database.connect()?;
        let kind = match database.kind() {
            DatabaseKind::Unknown => conn.probe_kind(),
            kind => kind,
        };
        self.setup.apply(&conn, kind, database.is_wal()).await?;
        let lane_pragmas = [
            self.query_only.then_some("PRAGMA query_only=ON"),
            self.checkpointer
                .is_some()
                .then_some("PRAGMA wal_autocheckpoint=0"),
            self.checkpointer.is_some().then_some(JOURNAL_SIZE_LIMIT),
        ];
        for sql in lane_pragmas.into_iter().flatten() {
            // The step is named by the PRAGMA, without its value.
            let step = sql.split('=').next().unwrap_or(sql);
            conn.execute_batch(sql)
                .await
                .map_err(|e| setup_error(step, e))?;
        }
        Ok(LibsqlConnection::new(
            conn,
            kind,
            self.statement_cache_capacity,
            self.transaction_mode,
        ))
    }

    /// The health check: `SELECT 1`, read to the end.
    pub(crate) async fn check(conn: &LibsqlConnection) -> Result<()> {
        Ok(run_to_end(conn, "SELECT 1").await?)
    }
}

impl Manager for LibsqlManager {
    type Connection = LibsqlConnection;
    type Error = LibsqlError;

    async fn connect(&self) -> Result<LibsqlConnection> {
        self.open().await
    }

    async fn validate(&self, conn: &mut LibsqlConnection) -> Result<()> {
        Self::check(conn).await
    }

    fn reset(&self, conn: &mut LibsqlConnection) -> Result<()> {
        conn.clean_for_reuse()?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.count(conn.take_new_changes());
        }
        Ok(())
    }

    fn is_broken(&self, conn: &mut LibsqlConnection) -> bool {
        conn.is_marked_broken()
    }

    fn after_return(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.checkpoint_if_due();
        }
    }
}
