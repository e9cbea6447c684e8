//! [`LibsqlConnection`], the pooled connection: a `libsql::Connection` plus its statement cache.
//!
//! Measured facts behind this type:
//!
//! * A `libsql::Connection` clone is the **same** SQLite handle: it shares transactions, TEMP tables,
//!   the busy timeout and `last_insert_rowid`, and keeps the handle open after the pooled connection
//!   went back. Do not keep clones of a pooled connection, nor the `Rows`, `Statement` or
//!   `Transaction` that libSQL's own methods return (each holds a clone); this type's
//!   [`query_cached`](LibsqlConnection::query_cached) and [`transaction`](LibsqlConnection::transaction)
//!   borrow the connection instead.
//! * A local `libsql::Row` is a view of its statement's current row, not a copy: stepping or resetting
//!   the statement changes what it reads. So rows of a cached statement ([`CachedRow`]) borrow their
//!   [`CachedRows`], and cannot outlive the reset that ends the cursor.
//! * `Connection::transaction()` begins a DEFERRED transaction, and a deferred transaction that reads and
//!   then writes fails with SQLITE_BUSY (517 in WAL) **even with** a busy timeout when another writer
//!   got in first. [`LibsqlConnection::transaction`] begins the way its manager says
//!   ([`TransactionMode`]); the write lane uses `BEGIN IMMEDIATE`.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Instant;

use libsql::params::{IntoParams, Params};
use libsql::TransactionBehavior;

use super::database::DatabaseKind;
use super::error::{LibsqlError, Result, StatementProblem};
use super::owned::OwnedConnection;
use super::statement_cache::{Slot, StatementCache, StatementCacheStats};
use super::transaction::Transaction;

/// How [`LibsqlConnection::transaction`] begins a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionMode {
    /// `BEGIN DEFERRED` (libSQL's default): takes the write lock at the first write. Fine for reads
    /// and for a single writer.
    #[default]
    Deferred,
    /// `BEGIN IMMEDIATE`: takes the write lock at once, so a read-then-write transaction cannot fail
    /// half way with SQLITE_BUSY. The write lane uses it.
    Immediate,
}

impl TransactionMode {
    fn behavior(self) -> TransactionBehavior {
        match self {
            TransactionMode::Deferred => TransactionBehavior::Deferred,
            TransactionMode::Immediate => TransactionBehavior::Immediate,
        }
    }
}

/// A pooled libSQL connection: derefs to `libsql::Connection`, and adds a statement cache and a
/// transaction mode.
///
/// ```
/// use memory_storage_turso::libsql::{block_on, LibsqlDatabase, LibsqlManager};
/// use memory_storage_turso::pool::Pool;
///
/// let database = LibsqlDatabase::open_memory().unwrap();
/// let pool = Pool::builder(LibsqlManager::new(database)).build().unwrap();
/// let mut conn = pool.get_blocking().unwrap();
/// block_on(async {
///     conn.execute_schema("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)").await?;
///     conn.execute_cached("INSERT INTO notes(body) VALUES (?1)", ["hello"]).await?;
///     let body = conn
///         .query_row_cached("SELECT body FROM notes WHERE id = ?1", [1], |row| row.get::<String>(0))
///         .await?;
///     assert_eq!(body.as_deref(), Some("hello"));
///     // Deref: every libsql::Connection method is there too.
///     assert!(conn.is_autocommit());
///     Ok::<_, memory_storage_turso::libsql::LibsqlError>(())
/// })
/// .unwrap();
/// ```
pub struct LibsqlConnection {
    conn: OwnedConnection,
    statements: StatementCache,
    kind: DatabaseKind,
    transaction_mode: TransactionMode,
    broken: bool,
    /// `total_changes()` when [`take_new_changes`](Self::take_new_changes) last looked.
    changes_counted: u64,
    /// When it last went back to an r2d2 pool (for the r2d2 facade's health-check bypass).
    #[cfg_attr(not(feature = "r2d2"), allow(dead_code))]
    pub(crate) returned_at: Option<Instant>,
}

impl fmt::Debug for LibsqlConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibsqlConnection")
            .field("kind", &self.kind)
            .field("transaction_mode", &self.transaction_mode)
            .field("statement_cache", &self.statements.stats())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Deref for LibsqlConnection {
    type Target = libsql::Connection;

    fn deref(&self) -> &libsql::Connection {
        &self.conn
    }
}

impl LibsqlConnection {
    pub(crate) fn new(
        conn: OwnedConnection,
        kind: DatabaseKind,
        statement_cache_capacity: usize,
        transaction_mode: TransactionMode,
    ) -> Self {
        // Remote statements are SQL text sent to the server: caching them saves nothing, and preparing
        // one costs a round trip (`describe`). So remote and replica connections send SQL directly.
        let local = kind.runs_locally();
        let capacity = if local { statement_cache_capacity } else { 0 };
        Self {
            conn,
            statements: StatementCache::new(capacity, local),
            kind,
            transaction_mode,
            broken: false,
            changes_counted: 0,
            returned_at: None,
        }
    }

    /// The underlying `libsql::Connection` (the same as through `Deref`).
    pub fn libsql(&self) -> &libsql::Connection {
        &self.conn
    }

    /// Unwraps the `libsql::Connection`, dropping the statement cache. Dropping its last clone closes
    /// a local handle twice (a libsql bug, see [`OwnedConnection`]): prefer
    /// [`into_owned`](Self::into_owned).
    pub fn into_libsql(self) -> libsql::Connection {
        self.conn.into_libsql()
    }

    /// Unwraps the connection, still guarded so that dropping it closes its handle once; drops the
    /// statement cache.
    pub fn into_owned(self) -> OwnedConnection {
        self.conn
    }

    /// The kind of database this connection belongs to.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// How [`transaction`](Self::transaction) begins.
    pub fn transaction_mode(&self) -> TransactionMode {
        self.transaction_mode
    }

    /// Begins a transaction the way this connection's manager says: `BEGIN IMMEDIATE` on the write lane,
    /// `BEGIN DEFERRED` otherwise (see [`TransactionMode`]). Dropping the transaction rolls it back. It
    /// borrows the connection, so it cannot outlive its checkout (see [`Transaction`]).
    ///
    /// # Errors
    /// A libSQL error, such as "database is locked" after the busy timeout.
    pub async fn transaction(&mut self) -> Result<Transaction<'_>> {
        let inner = self
            .conn
            .transaction_with_behavior(self.transaction_mode.behavior())
            .await?;
        Ok(Transaction::new(inner))
    }

    /// A cached prepared statement for `sql`, prepared on first use. It is reset before every use, and
    /// its parameters are checked against its placeholders.
    ///
    /// # Errors
    /// A libSQL error if `sql` does not prepare.
    pub async fn prepare_cached(&mut self, sql: &str) -> Result<CachedStatement<'_>> {
        let slot = self.statements.acquire(&self.conn, sql).await?;
        Ok(CachedStatement {
            cache: &mut self.statements,
            slot,
        })
    }

    /// Runs `sql` (one statement that returns no rows) through the statement cache, and returns the
    /// number of rows changed. DDL is run once, not cached, and clears the cache.
    ///
    /// # Errors
    /// [`LibsqlError::ParameterCount`] or [`LibsqlError::UnknownParameter`] when `params` do not fit;
    /// [`LibsqlError::Statement`] for a text that is not exactly one statement, a statement that
    /// returns rows, or a value too long to bind (nothing runs); a libSQL error otherwise. On a remote
    /// database the text and values go to the server as they are (no cache, none of these checks),
    /// and the server's errors come back.
    pub async fn execute_cached(&mut self, sql: &str, params: impl IntoParams) -> Result<u64> {
        let params = params.into_params()?;
        if !self.kind.runs_locally() {
            return Ok(self.conn.execute(sql, params).await?);
        }
        let mut statement = self.prepare_cached(sql).await?;
        statement.execute_params(params).await
    }

    /// Runs a query through the statement cache. The rows borrow the connection; dropping them resets
    /// the statement, which ends its read snapshot.
    ///
    /// # Errors
    /// As [`execute_cached`](Self::execute_cached). An error found while stepping (such as a dropped
    /// table) comes from [`CachedRows::next`].
    pub async fn query_cached(
        &mut self,
        sql: &str,
        params: impl IntoParams,
    ) -> Result<CachedRows<'_>> {
        let params = params.into_params()?;
        if !self.kind.runs_locally() {
            let rows = self.conn.query(sql, params).await?;
            return Ok(CachedRows {
                statement: None,
                rows,
            });
        }
        let slot = self.statements.acquire(&self.conn, sql).await?;
        let rows = match query(&mut self.statements, slot, params).await {
            Ok(rows) => rows,
            Err(error) => {
                self.statements.release(slot);
                return Err(error);
            }
        };
        Ok(CachedRows {
            statement: Some(RowsStatement {
                cache: &mut self.statements,
                slot,
                owns_slot: true,
            }),
            rows,
        })
    }

    /// Runs a query through the statement cache and passes its first row to `read`; `None` if there is
    /// no row. The statement is reset before this returns, so the read snapshot ends at once.
    ///
    /// # Errors
    /// As [`query_cached`](Self::query_cached), and whatever `read` returns.
    pub async fn query_row_cached<T>(
        &mut self,
        sql: &str,
        params: impl IntoParams,
        read: impl FnOnce(&libsql::Row) -> libsql::Result<T>,
    ) -> Result<Option<T>> {
        let mut rows = self.query_cached(sql, params).await?;
        let value = match rows.next().await? {
            Some(row) => Some(read(&row)?),
            None => None,
        };
        Ok(value)
    }

    /// Runs schema changes (one or more statements, with `execute_batch`) and clears the statement
    /// cache. Run DDL through this (or [`execute_cached`](Self::execute_cached)), not through the
    /// `libsql::Connection` methods, so that no cached statement outlives the schema it was prepared
    /// for.
    ///
    /// # Errors
    /// A libSQL error; the cache is cleared either way.
    pub async fn execute_schema(&mut self, sql: &str) -> Result<()> {
        let result = self.conn.execute_batch(sql).await;
        self.clear_statement_cache();
        result?;
        Ok(())
    }

    /// Finalizes every cached statement of this connection.
    pub fn clear_statement_cache(&mut self) {
        self.statements.release_leaked();
        self.statements.clear();
    }

    /// The statement cache's size and counters.
    pub fn statement_cache_stats(&self) -> StatementCacheStats {
        self.statements.stats()
    }

    /// Marks the connection broken: the pool closes it when it comes back instead of reusing it. Use it
    /// after changing per-connection state you cannot undo (an ATTACH, `PRAGMA query_only`, a TEMP
    /// table), or after an I/O or corruption error.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Whether [`mark_broken`](Self::mark_broken) was called.
    pub fn is_marked_broken(&self) -> bool {
        self.broken
    }

    /// The rows changed (inserted, updated or deleted) since the last call.
    pub(crate) fn take_new_changes(&mut self) -> u64 {
        let total = self.conn.total_changes();
        let new = total.saturating_sub(self.changes_counted);
        self.changes_counted = total;
        new
    }

    /// Cleans the connection for its next holder: releases a leaked statement guard, and rolls back an
    /// open transaction. Local `Connection::reset()` does nothing, so it is not used.
    ///
    /// An open transaction on a remote connection cannot be rolled back without a network round trip
    /// in a destructor, so it is an error there (the pool closes the connection, and the server rolls
    /// it back when the stream ends).
    pub(crate) fn clean_for_reuse(&mut self) -> Result<()> {
        self.statements.release_leaked();
        if self.conn.is_autocommit() {
            return Ok(());
        }
        if !self.kind.runs_locally() {
            return Err(LibsqlError::Unsupported(String::from(
                "a remote or replica connection came back inside a transaction; it is closed instead \
                 of rolled back",
            )));
        }
        // Local calls complete on their first poll, so this does not block on I/O of another task.
        futures_lite::future::block_on(self.conn.execute("ROLLBACK", ()))?;
        if self.conn.is_autocommit() {
            Ok(())
        } else {
            Err(LibsqlError::Unsupported(String::from(
                "ROLLBACK left the connection inside a transaction",
            )))
        }
    }
}

/// A statement from a connection's cache. It borrows the connection, and goes back to the cache (reset)
/// when dropped.
///
/// ```
/// # use memory_storage_turso::libsql::{block_on, LibsqlDatabase, LibsqlManager};
/// # use memory_storage_turso::pool::Pool;
/// # let pool = Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap())).build().unwrap();
/// let mut conn = pool.get_blocking().unwrap();
/// block_on(async {
///     conn.execute_schema("CREATE TABLE t(n INTEGER)").await?;
///     let mut insert = conn.prepare_cached("INSERT INTO t(n) VALUES (?1)").await?;
///     for n in 0..10 {
///         insert.execute([n]).await?;
///     }
///     // A wrong number of values is an error, never a silent reuse of old bindings.
///     assert!(insert.execute(()).await.is_err());
///     Ok::<_, memory_storage_turso::libsql::LibsqlError>(())
/// })
/// .unwrap();
/// ```
pub struct CachedStatement<'conn> {
    cache: &'conn mut StatementCache,
    slot: Slot,
}

impl fmt::Debug for CachedStatement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedStatement")
            .field("sql", &self.sql())
            .finish()
    }
}

impl CachedStatement<'_> {
    /// The SQL text.
    pub fn sql(&self) -> &str {
        self.cache.sql(self.slot)
    }

    /// How many placeholders the statement has.
    pub fn parameter_count(&self) -> usize {
        self.cache.statement(self.slot).parameter_count()
    }

    /// How many columns its rows have.
    pub fn column_count(&self) -> usize {
        self.cache.statement(self.slot).column_count()
    }

    /// Resets and runs the statement (one that returns no rows) with `params`, and returns the number
    /// of rows changed.
    ///
    /// # Errors
    /// [`LibsqlError::ParameterCount`] or [`LibsqlError::UnknownParameter`] when `params` do not fit
    /// the placeholders; [`LibsqlError::Statement`] for a statement that returns rows
    /// ([`StatementProblem::ReturnsRows`]) or a value too long to bind (nothing runs); a libSQL error
    /// otherwise.
    pub async fn execute(&mut self, params: impl IntoParams) -> Result<u64> {
        self.execute_params(params.into_params()?).await
    }

    async fn execute_params(&mut self, params: Params) -> Result<u64> {
        let slot = self.slot;
        if self.cache.returns_rows(slot) {
            return Err(LibsqlError::Statement {
                sql: self.sql().to_owned(),
                problem: StatementProblem::ReturnsRows,
            });
        }
        self.cache.check_params(slot, &params)?;
        let params = self.cache.bind_every_slot(slot, params);
        let statement = self.cache.statement(slot);
        statement.reset();
        let result = statement.execute(params).await;
        match result {
            Ok(changed) => {
                self.cache.note_success(slot);
                Ok(changed as u64)
            }
            Err(error) => {
                self.cache.reset(slot);
                self.cache.note_error(&error);
                Err(error.into())
            }
        }
    }

    /// Resets the statement and runs it as a query with `params`.
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub async fn query(&mut self, params: impl IntoParams) -> Result<CachedRows<'_>> {
        let rows = query(self.cache, self.slot, params.into_params()?).await?;
        Ok(CachedRows {
            statement: Some(RowsStatement {
                cache: self.cache,
                slot: self.slot,
                owns_slot: false,
            }),
            rows,
        })
    }
}

impl Drop for CachedStatement<'_> {
    fn drop(&mut self) {
        self.cache.release(self.slot);
    }
}

async fn query(cache: &mut StatementCache, slot: Slot, params: Params) -> Result<libsql::Rows> {
    cache.check_params(slot, &params)?;
    let params = cache.bind_every_slot(slot, params);
    let statement = cache.statement(slot);
    statement.reset();
    let result = statement.query(params).await;
    result.map_err(|error| {
        cache.reset(slot);
        cache.note_error(&error);
        error.into()
    })
}

/// The rows of a cached statement. Dropping them resets the statement, which ends the cursor and its
/// read snapshot (a partly read statement otherwise blocks WAL checkpoints).
pub struct CachedRows<'stmt> {
    /// `None` for rows of a remote query, which bypasses the cache.
    statement: Option<RowsStatement<'stmt>>,
    rows: libsql::Rows,
}

/// The cached statement that [`CachedRows`] read from.
struct RowsStatement<'stmt> {
    cache: &'stmt mut StatementCache,
    slot: Slot,
    /// Whether dropping the rows also gives the statement back to the cache (from `query_cached`).
    owns_slot: bool,
}

impl fmt::Debug for CachedRows<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sql = self.statement.as_ref().map(|s| s.cache.sql(s.slot));
        f.debug_struct("CachedRows").field("sql", &sql).finish()
    }
}

impl CachedRows<'_> {
    /// The next row, or `None` at the end. The row borrows these rows: read it before asking for the
    /// next one.
    ///
    /// # Errors
    /// A libSQL error from stepping the statement. A schema error (a dropped table or column) also
    /// clears the connection's statement cache.
    pub async fn next(&mut self) -> Result<Option<CachedRow<'_>>> {
        match self.rows.next().await {
            Ok(row) => Ok(row.map(|row| CachedRow {
                row,
                _rows: PhantomData,
            })),
            Err(error) => {
                if let Some(statement) = &mut self.statement {
                    statement.cache.note_error(&error);
                }
                Err(error.into())
            }
        }
    }

    /// How many columns each row has.
    pub fn column_count(&self) -> i32 {
        self.rows.column_count()
    }

    /// The name of column `index`.
    pub fn column_name(&self, index: i32) -> Option<&str> {
        self.rows.column_name(index)
    }
}

impl Drop for RowsStatement<'_> {
    fn drop(&mut self) {
        if self.owns_slot {
            self.cache.release(self.slot);
        } else {
            self.cache.reset(self.slot);
        }
    }
}

/// One row of [`CachedRows`]; derefs to `libsql::Row`. It borrows the rows, because a local
/// `libsql::Row` reads the statement's current row and changes when the statement steps or resets.
pub struct CachedRow<'rows> {
    row: libsql::Row,
    _rows: PhantomData<&'rows mut ()>,
}

impl fmt::Debug for CachedRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.row.fmt(f)
    }
}

impl Deref for CachedRow<'_> {
    type Target = libsql::Row;

    fn deref(&self) -> &libsql::Row {
        &self.row
    }
}
