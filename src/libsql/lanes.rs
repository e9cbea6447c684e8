//! [`LanedPool`]: one write lane with exactly one connection, and a read lane with N connections, for
//! local databases.
//!
//! SQLite lets one writer in at a time. With a pool of equal connections, concurrent writers fight over
//! the file lock: with libSQL's busy timeout of 0 each loser fails at once with "database is locked",
//! and even with a timeout a deferred read-then-write transaction can fail half way (SQLITE_BUSY, 517
//! in WAL). The write lane removes the fight: writers queue for its single connection in the pool's
//! fair FIFO queue, its transactions begin with `BEGIN IMMEDIATE`, and under WAL the readers of the
//! read lane never wait for it. Read-lane connections run `PRAGMA query_only=ON`, so a write sent to
//! the wrong lane fails loudly instead of competing for the lock.
//!
//! The write lane checkpoints the WAL itself, after its connection went back, instead of letting
//! SQLite do it inside a writer's `COMMIT` (see [`checkpoint`](super::checkpoint) for why and how);
//! [`LanedPoolBuilder::checkpoint_after_changes`] tunes it.
//!
//! Single-statement writes can skip the turn-taking: [`LanedPool::execute`] queues the statement and
//! commits it in a group with the statements of concurrent callers (see
//! [`group_commit`](super::group_commit) for how and what it guarantees).
//!
//! Remote databases need no split (the server orders writes), so they are refused here: use a plain
//! `Pool<LibsqlManager>` for them.
//! A caller's own `libsql::Database` on `:memory:` is refused too: each of its connections opens a
//! database of its own, so readers would never see the writes. Use
//! [`LibsqlDatabase::open_memory`](super::LibsqlDatabase::open_memory) instead. An in-memory
//! database has no WAL, though: a reader with rows still open keeps the write lane from committing,
//! and a write transaction keeps new readers out, each for up to the busy timeout. Drop the rows
//! before writing, or use a file when readers and writers overlap.
//!
//! The write lane has one connection whatever `max_connections` says. A caller that holds
//! [`LanedPool::write`] and calls `write()` or [`LanedPool::execute`] again waits for itself until
//! [`LibsqlError::WriteLaneTimeout`](super::LibsqlError::WriteLaneTimeout).

use std::sync::Arc;

use libsql::params::IntoParams;

use super::checkpoint::{Checkpointer, DEFAULT_CHECKPOINT_AFTER_CHANGES};
use super::connection::TransactionMode;
use super::database::LibsqlDatabase;
use super::error::{LibsqlError, Result};
use super::group_commit::GroupCommit;
use super::manager::LibsqlManager;
use super::setup::ConnectionSetup;
use super::statement_cache::DEFAULT_STATEMENT_CACHE_CAPACITY;
use super::{LibsqlPool, LibsqlPooledConnection};
use crate::pool::{Pool, PoolBuilder, PoolConfig, PoolStatistics};
use crate::rt::Runtime;

/// The default number of read-lane connections.
pub const DEFAULT_READERS: usize = 4;

/// A write lane (one connection, `BEGIN IMMEDIATE`) and a read lane (N `query_only` connections) over
/// one local database. Cloning gives another handle to the same lanes.
///
/// ```
/// use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
///
/// let dir = tempfile::tempdir().unwrap();
/// let database = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
/// let lanes = LanedPool::builder(database).readers(4).build().unwrap();
///
/// block_on(async {
///     let mut writer = lanes.write_blocking()?;
///     writer.execute_schema("CREATE TABLE t(n INTEGER)").await?;
///     let tx = writer.transaction().await?; // BEGIN IMMEDIATE
///     tx.execute("INSERT INTO t(n) VALUES (1)", ()).await?;
///     tx.commit().await?;
///     drop(writer);
///
///     let mut reader = lanes.read_blocking()?;
///     let n = reader.query_row_cached("SELECT count(*) FROM t", (), |r| r.get::<i64>(0)).await?;
///     assert_eq!(n, Some(1));
///     assert!(reader.execute("INSERT INTO t(n) VALUES (2)", ()).await.is_err()); // query_only
///     Ok::<_, memory_storage_turso::libsql::LibsqlError>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct LanedPool {
    write: LibsqlPool,
    read: LibsqlPool,
    checkpointer: Option<Arc<Checkpointer>>,
    group_commit: Arc<GroupCommit>,
}

impl std::fmt::Debug for LanedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanedPool")
            .field("write", &self.write.state())
            .field("read", &self.read.state())
            .finish()
    }
}

/// The statistics of both lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneStatistics {
    /// The write lane (at most one connection).
    pub write: PoolStatistics,
    /// The read lane.
    pub read: PoolStatistics,
    /// WAL checkpoints the write lane ran after its connection went back (0 when SQLite checkpoints
    /// by itself: not a WAL file, or [`LanedPoolBuilder::checkpoint_after_changes`] set to 0).
    pub checkpoints: u64,
    /// Statements run through [`LanedPool::execute`].
    pub grouped_statements: u64,
    /// Transactions (groups) those statements ran in; `grouped_statements / group_commits` is the
    /// average group.
    pub group_commits: u64,
    /// Of the grouped statements, those that failed with [`LibsqlError::NotCommitted`](super::LibsqlError::NotCommitted) because their
    /// group was rolled back (each is also a `tracing` warning, feature `tracing`).
    pub group_not_committed: u64,
    /// Statements queued for the next group now (their leader waits for the write lane, or runs the
    /// group before).
    pub group_queued: usize,
}

type ApplyRuntime = Box<dyn Fn(PoolBuilder<LibsqlManager>) -> PoolBuilder<LibsqlManager>>;

/// Builds a [`LanedPool`].
#[must_use]
pub struct LanedPoolBuilder {
    database: Arc<LibsqlDatabase>,
    readers: usize,
    setup: ConnectionSetup,
    statement_cache_capacity: usize,
    config: PoolConfig,
    checkpoint_after_changes: u64,
    runtime: Option<ApplyRuntime>,
    name: Option<String>,
}

impl LanedPool {
    /// A builder for lanes over `database` (a local file or in-memory database).
    pub fn builder(database: impl Into<Arc<LibsqlDatabase>>) -> LanedPoolBuilder {
        LanedPoolBuilder {
            database: database.into(),
            readers: DEFAULT_READERS,
            setup: ConnectionSetup::default(),
            statement_cache_capacity: DEFAULT_STATEMENT_CACHE_CAPACITY,
            config: PoolConfig::default(),
            checkpoint_after_changes: DEFAULT_CHECKPOINT_AFTER_CHANGES,
            runtime: None,
            name: None,
        }
    }

    /// Checks out the write lane's connection, queueing fairly behind earlier writers. Its
    /// [`transaction`](super::LibsqlConnection::transaction) begins with `BEGIN IMMEDIATE`.
    ///
    /// # Errors
    /// [`LibsqlError::WriteLaneTimeout`](super::LibsqlError::WriteLaneTimeout) when the lane stays held for
    /// `connection_timeout`; another checkout error ([`LibsqlError::Pool`](super::LibsqlError::Pool)): a
    /// closed pool, or no runtime adapter.
    pub async fn write(&self) -> Result<LibsqlPooledConnection> {
        self.write.get().await.map_err(LibsqlError::from_write_lane)
    }

    /// [`write`](Self::write) for threads; needs no runtime.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn write_blocking(&self) -> Result<LibsqlPooledConnection> {
        self.write
            .get_blocking()
            .map_err(LibsqlError::from_write_lane)
    }

    /// Runs one write statement on the write lane, committed in one transaction with the statements of
    /// concurrent callers (a group commit), and returns the number of rows it changed. `Ok` means
    /// committed. Much faster than a checkout per statement when many callers write at once; see
    /// [`group_commit`](super::group_commit) for the guarantees.
    ///
    /// ```
    /// use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let database = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
    /// let lanes = LanedPool::builder(database).build().unwrap();
    /// lanes.execute_blocking("CREATE TABLE t(n INTEGER UNIQUE)", ()).unwrap();
    /// std::thread::scope(|s| {
    ///     for n in 0..8 {
    ///         let lanes = &lanes;
    ///         s.spawn(move || lanes.execute_blocking("INSERT INTO t(n) VALUES (?1)", [n]).unwrap());
    ///     }
    /// });
    /// // A failing statement fails alone; its group commits the others.
    /// assert!(lanes.execute_blocking("INSERT INTO t(n) VALUES (0)", ()).is_err());
    /// let mut reader = lanes.read_blocking().unwrap();
    /// let rows = block_on(reader.query_row_cached("SELECT count(*) FROM t", (), |r| r.get::<i64>(0)));
    /// assert_eq!(rows.unwrap(), Some(8));
    /// ```
    ///
    /// # Errors
    /// The statement's own error (it alone is undone); [`LibsqlError::NotCommitted`](super::LibsqlError::NotCommitted) when its group
    /// was rolled back; [`LibsqlError::Unsupported`](super::LibsqlError::Unsupported) for transaction control (`BEGIN`, `COMMIT`…),
    /// for `PRAGMA`s (they would change the write lane's connection), and for `VACUUM`/`ATTACH`/`DETACH`;
    /// a checkout error of the write lane.
    pub async fn execute(&self, sql: &str, params: impl IntoParams) -> Result<u64> {
        self.group_commit.execute(&self.write, sql, params).await
    }

    /// [`execute`](Self::execute) for threads; needs no runtime.
    ///
    /// # Errors
    /// As [`execute`](Self::execute).
    pub fn execute_blocking(&self, sql: &str, params: impl IntoParams) -> Result<u64> {
        self.group_commit.execute_blocking(&self.write, sql, params)
    }

    /// Checks out a read-lane connection (`query_only`).
    ///
    /// # Errors
    /// A checkout error ([`LibsqlError::Pool`](super::LibsqlError::Pool)): a timeout, a closed pool, or no
    /// runtime adapter.
    pub async fn read(&self) -> Result<LibsqlPooledConnection> {
        Ok(self.read.get().await?)
    }

    /// [`read`](Self::read) for threads; needs no runtime.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn read_blocking(&self) -> Result<LibsqlPooledConnection> {
        Ok(self.read.get_blocking()?)
    }

    /// The write lane's pool.
    pub fn write_pool(&self) -> &LibsqlPool {
        &self.write
    }

    /// The read lane's pool.
    pub fn read_pool(&self) -> &LibsqlPool {
        &self.read
    }

    /// Both lanes' statistics.
    pub fn statistics(&self) -> LaneStatistics {
        let group = self.group_commit.counts();
        LaneStatistics {
            grouped_statements: group.statements,
            group_commits: group.groups,
            group_not_committed: group.not_committed,
            group_queued: group.queued,
            write: self.write.statistics(),
            read: self.read.statistics(),
            checkpoints: self.checkpointer.as_ref().map_or(0, |c| c.completed()),
        }
    }

    /// Closes both lanes (see [`Pool::close`]) and the write lane's checkpoint connection.
    pub fn close(&self) {
        self.write.close();
        self.read.close();
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.close();
        }
    }
}

impl LanedPoolBuilder {
    /// How many connections the read lane has (default 4).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// The setup of every new connection in both lanes.
    pub fn setup(mut self, setup: ConnectionSetup) -> Self {
        self.setup = setup;
        self
    }

    /// The statement cache capacity of each connection (default 64; 0 turns it off).
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.statement_cache_capacity = capacity;
        self
    }

    /// Timeouts and maintenance for both lanes. `max_connections` is ignored: the write lane has one
    /// connection and the read lane [`readers`](Self::readers); `min_idle` is capped to each size.
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// How many rows the write lane changes between two WAL checkpoints (default 1,000); a WAL file
    /// past 16 MiB (large rows, index builds) is checkpointed sooner. The lane runs them itself, after
    /// its connection went back, so that no writer waits for one. 0 leaves them
    /// to SQLite, which runs them inside the `COMMIT` of the writer that takes the WAL past 1,000
    /// pages, while it holds the lane. Not used unless the database is a WAL file.
    ///
    /// ```
    /// use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let database = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
    /// let lanes = LanedPool::builder(database).checkpoint_after_changes(10).build().unwrap();
    /// block_on(async {
    ///     let mut writer = lanes.write_blocking()?;
    ///     writer.execute_schema("CREATE TABLE t(n INTEGER)").await?;
    ///     let ten = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10)
    ///                INSERT INTO t(n) SELECT n FROM c";
    ///     writer.execute_cached(ten, ()).await?;
    ///     Ok::<_, memory_storage_turso::libsql::LibsqlError>(())
    /// })
    /// .unwrap();
    /// // The writer went back with 10 changed rows: it checkpointed once the lane was handed on.
    /// assert_eq!(lanes.statistics().checkpoints, 1);
    /// ```
    pub fn checkpoint_after_changes(mut self, changes: u64) -> Self {
        self.checkpoint_after_changes = changes;
        self
    }

    /// Names the lanes `"{name}.write"` and `"{name}.read"` (default `"write"` and `"read"`): the `pool`
    /// label of their metrics and the `pool` field of their spans. Give each laned pool of a process a
    /// name of its own, or their metrics add up under one label.
    ///
    /// ```
    /// # use memory_storage_turso::libsql::{LanedPool, LibsqlDatabase};
    /// let lanes = LanedPool::builder(LibsqlDatabase::open_memory().unwrap())
    ///     .name("episodes")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(lanes.write_pool().name(), "episodes.write");
    /// assert_eq!(lanes.read_pool().name(), "episodes.read");
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The runtime adapter both lanes use for async checkouts and maintenance.
    pub fn runtime<R: Runtime>(mut self, runtime: R) -> Self {
        self.runtime = Some(Box::new(move |builder| builder.runtime(runtime.clone())));
        self
    }

    /// Builds both lanes.
    ///
    /// # Errors
    /// [`LibsqlError::Unsupported`](super::LibsqlError::Unsupported) for a remote database, an embedded replica,
    /// or a database whose connections each open a private one (a caller's `:memory:`);
    /// [`LibsqlError::Config`](super::LibsqlError::Config) for a bad configuration or 0 readers.
    pub fn build(self) -> Result<LanedPool> {
        self.database.require_local(
            "write and read lanes",
            "the server orders its writes, so use a plain Pool<LibsqlManager>",
        )?;
        if self.database.private_to_each_connection()? {
            return Err(LibsqlError::Unsupported(String::from(
                "write and read lanes need one database that all their connections share, but each \
                 connection of this libsql::Database opens a private one (`:memory:`, or no file): \
                 the read lane would never see the write lane's writes; use \
                 LibsqlDatabase::open_memory() or a file",
            )));
        }
        let manager = LibsqlManager::new(self.database.clone())
            .setup(self.setup.clone())
            .statement_cache_capacity(self.statement_cache_capacity);
        let mut writer = manager.clone().transaction_mode(TransactionMode::Immediate);
        let checkpointer =
            (self.database.is_wal() && self.checkpoint_after_changes > 0).then(|| {
                Arc::new(Checkpointer::new(
                    self.database.clone(),
                    self.checkpoint_after_changes,
                ))
            });
        if let Some(checkpointer) = &checkpointer {
            writer = writer.checkpoint_with(checkpointer.clone());
        }
        let reader = manager.query_only(true);
        let write = self.lane("write", writer, 1)?;
        let read = self.lane("read", reader, self.readers)?;
        Ok(LanedPool {
            write,
            read,
            checkpointer,
            group_commit: Arc::default(),
        })
    }

    /// One lane: a pool named after `lane` (its metrics' `pool` label) of `size` connections.
    fn lane(&self, lane: &str, manager: LibsqlManager, size: usize) -> Result<LibsqlPool> {
        let mut config = self.config.clone();
        config.max_connections = size;
        config.min_idle = config.min_idle.min(size);
        let name = match &self.name {
            Some(prefix) => format!("{prefix}.{lane}"),
            None => lane.to_owned(),
        };
        let mut builder = Pool::builder(manager).config(config).name(&name);
        if let Some(apply) = &self.runtime {
            builder = apply(builder);
        }
        Ok(builder.build()?)
    }
}
