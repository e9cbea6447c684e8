//! [`TursoStorage`]: construction, health, and statistics. The records live in `episodes.rs`,
//! `patterns.rs` and `heuristics.rs`, the migrations in `migrate.rs`.

use std::fmt;

use crate::libsql::{LaneStatistics, LibsqlPooledConnection};
use crate::pool::{PoolConfig, PoolStatistics};
use crate::rt::Runtime;

use super::builder::TursoStorageBuilder;
use super::config::TursoConfig;
use super::connections::Connections;
use super::error::Result;
use super::runtime::DefaultRuntime;

/// Episodic-memory storage on libSQL or Turso: episodes, patterns and heuristics, over a pool of
/// connections, on any executor.
///
/// # Databases
///
/// | URL | database | connections |
/// |---|---|---|
/// | `file:PATH` | a local file, switched to WAL | a write lane (1 connection, `BEGIN IMMEDIATE`) and a read lane |
/// | `:memory:` | a new in-memory database shared by the storage's connections | the same lanes |
/// | `libsql://`, `https://` (`http://` on loopback) | remote, over Hrana (feature `remote`; its HTTP client needs a tokio runtime) | one pool |
///
/// URLs and tokens are checked first ([`DatabaseTarget::parse`](super::DatabaseTarget::parse)).
/// Writes queue fairly for the write lane, so local writers never fight over the file lock, and the
/// single-statement ones (`store_episode`, `store_pattern`, `store_heuristic`, `delete_episode`)
/// share transactions with concurrent writes through its group commit
/// ([`LanedPool::execute`](crate::libsql::LanedPool::execute)); reads
/// run on the read lane's `query_only` connections, and under WAL never wait for the writer. The read
/// lane has `max_connections - 1` connections (at least 1) of the [`PoolConfig`]; with
/// `enable_pooling: false` every pool has one connection (one writer and one reader locally), still
/// reused: a connection is never opened per call.
///
/// # Runtimes
///
/// `TursoStorage<R>` runs on the executor of its [`Runtime`] adapter `R`, which times checkouts,
/// retries and maintenance. [`DefaultRuntime`] is `Tokio` with feature `tokio`, else `Smol` with
/// feature `smol`, else [`Blocking`](crate::rt::Blocking) (see [`rt`](crate::rt)); pick another
/// with [`builder`](Self::builder). With `Blocking`, drive the futures with
/// `futures_lite::future::block_on` from plain threads: checkouts park the thread until a deadline.
///
/// # Blocking the executor
///
/// Local libSQL calls complete on their first poll: they run on the calling thread. One call of this
/// storage runs a few statements on a cached prepared statement, tens of microseconds, so it runs
/// inline. A [`store_episodes`](Self::store_episodes) batch of
/// [`OFFLOAD_BATCH_SIZE`](Self::OFFLOAD_BATCH_SIZE) episodes or more moves, with its connection, to
/// the runtime's blocking pool ([`Runtime::unblock`]). Queries run inline: bound them with a `limit`
/// when the table is large. Remote calls are truly asynchronous.
///
/// # Records
///
/// * Storing a record whose id is already stored **replaces** it (an upsert): the same call twice
///   leaves one row, so a retried store is harmless. A pattern keeps the time it was first stored.
/// * Deleting an id that is not stored succeeds and changes nothing (so a retried delete is
///   harmless too).
/// * Every field comes back equal, text byte for byte (NUL characters included). Timestamps are stored as milliseconds: the model's constructors
///   make such times ([`now_millis`](super::now_millis)); finer digits are truncated.
/// * Every value reaches SQL as a bound parameter, limits and thresholds included.
/// * Scores must be finite: a NaN or infinite one (a reward, a success rate, a confidence) is refused
///   with [`StorageError::InvalidValue`](super::StorageError::InvalidValue) before anything is
///   written, since JSON has no NaN or infinity and it could not be read back. So is a NaN query
///   threshold, which would match nothing (or, bound as SQL `NULL`, everything).
///
/// ```
/// use memory_storage_turso::rt::Blocking;
/// use memory_storage_turso::storage::{Episode, TaskContext, TaskType, TursoStorage};
///
/// futures_lite::future::block_on(async {
///     let storage = TursoStorage::builder(":memory:", "").runtime(Blocking).build().await?;
///     storage.initialize_schema().await?;
///
///     let episode = Episode::new("Fix the login bug".into(), TaskContext::default(), TaskType::Debugging);
///     storage.store_episode(&episode).await?;
///     assert_eq!(storage.get_episode(episode.episode_id).await?, Some(episode));
///     assert_eq!(storage.get_statistics().await?.episode_count, 1);
///     Ok::<_, memory_storage_turso::storage::StorageError>(())
/// })
/// .unwrap();
/// ```
pub struct TursoStorage<R: Runtime = DefaultRuntime> {
    connections: Connections,
    runtime: R,
    config: TursoConfig,
}

impl<R: Runtime> Clone for TursoStorage<R> {
    /// Another handle to the same pools.
    fn clone(&self) -> Self {
        TursoStorage {
            connections: self.connections.clone(),
            runtime: self.runtime.clone(),
            config: self.config.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for TursoStorage<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TursoStorage")
            .field("config", &self.config)
            .field("local", &self.connections.runs_locally())
            .field("pool", &self.connections.statistics().state())
            .finish_non_exhaustive()
    }
}

/// How many records the storage holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStatistics {
    /// Stored episodes.
    pub episode_count: usize,
    /// Stored patterns.
    pub pattern_count: usize,
    /// Stored heuristics.
    pub heuristic_count: usize,
}

impl TursoStorage<DefaultRuntime> {
    /// Opens the database at `url` with the default settings; `token` is used only for remote URLs.
    ///
    /// # Errors
    /// See [`TursoStorageBuilder::build`].
    pub async fn new(url: &str, token: &str) -> Result<Self> {
        Self::builder(url, token).build().await
    }

    /// Opens the database at `url` with `config`.
    ///
    /// # Errors
    /// See [`TursoStorageBuilder::build`].
    pub async fn with_config(url: &str, token: &str, config: TursoConfig) -> Result<Self> {
        Self::builder(url, token).config(config).build().await
    }

    /// Opens the database at `url` with `config` and the pools' settings `pool_config`.
    ///
    /// # Errors
    /// See [`TursoStorageBuilder::build`].
    pub async fn new_with_pool_config(
        url: &str,
        token: &str,
        config: TursoConfig,
        pool_config: PoolConfig,
    ) -> Result<Self> {
        Self::builder(url, token)
            .config(config)
            .pool_config(pool_config)
            .build()
            .await
    }

    /// Wraps a `libsql::Database` opened by the caller. A local file gets lanes (its journal mode is
    /// left as it is: open it in WAL for concurrent readers); a private `:memory:` database, which
    /// exists once per connection, gets a single connection that is never closed; a remote database
    /// gets one pool. Opens one connection to tell them apart, and needs no await.
    ///
    /// # Errors
    /// A database error if no connection can be opened; [`StorageError::Config`](super::StorageError::Config)
    /// if the default runtime is not available here (use [`TursoStorageBuilder::from_database`]).
    pub fn from_database(database: libsql::Database) -> Result<Self> {
        TursoStorageBuilder::from_database(database).build_from_database()
    }

    /// A builder for the database at `url`, to set the configuration and pick the runtime adapter.
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// use memory_storage_turso::rt::Smol;
    /// use memory_storage_turso::storage::TursoStorage;
    ///
    /// smol::block_on(async {
    ///     let storage = TursoStorage::builder(":memory:", "").runtime(Smol).build().await.unwrap();
    ///     storage.initialize_schema().await.unwrap();
    ///     assert!(storage.health_check().await.unwrap());
    /// });
    /// # }
    /// ```
    pub fn builder(url: &str, token: &str) -> TursoStorageBuilder {
        TursoStorageBuilder::from_url(url, token)
    }
}

impl<R: Runtime> TursoStorage<R> {
    /// The smallest [`store_episodes`](Self::store_episodes) batch that runs on the runtime's
    /// blocking pool instead of the calling task (local databases).
    pub const OFFLOAD_BATCH_SIZE: usize = 64;

    pub(crate) fn from_parts(connections: Connections, runtime: R, config: TursoConfig) -> Self {
        TursoStorage {
            connections,
            runtime,
            config,
        }
    }

    /// The storage's settings.
    pub fn config(&self) -> &TursoConfig {
        &self.config
    }

    /// The runtime adapter.
    pub fn runtime(&self) -> &R {
        &self.runtime
    }

    /// Whether the database runs in this process (a file or memory), rather than on a server.
    pub fn is_local(&self) -> bool {
        self.connections.runs_locally()
    }

    /// Checks that the database answers: runs `SELECT 1` on a read connection. `Ok(true)` when it
    /// does.
    ///
    /// # Errors
    /// Why it did not answer: a checkout timeout, a network or a database error.
    pub async fn health_check(&self) -> Result<bool> {
        let mut conn = self.read_connection().await?;
        let one = conn
            .query_row_cached("SELECT 1", (), |row| row.get::<i64>(0))
            .await?;
        Ok(one == Some(1))
    }

    /// How many episodes, patterns and heuristics are stored, read in one snapshot.
    ///
    /// # Errors
    /// A database error, such as a missing table before [`initialize_schema`](Self::initialize_schema).
    pub async fn get_statistics(&self) -> Result<StorageStatistics> {
        const COUNTS: &str = "SELECT (SELECT count(*) FROM episodes), \
                              (SELECT count(*) FROM patterns), (SELECT count(*) FROM heuristics)";
        let mut conn = self.read_connection().await?;
        let counts = conn
            .query_row_cached(COUNTS, (), |row| {
                Ok([row.get::<u64>(0)?, row.get::<u64>(1)?, row.get::<u64>(2)?])
            })
            .await?
            .unwrap_or_default();
        let [episode_count, pattern_count, heuristic_count] = counts.map(|n| n as usize);
        Ok(StorageStatistics {
            episode_count,
            pattern_count,
            heuristic_count,
        })
    }

    /// The pool's statistics; for a local database, both lanes added up (see
    /// [`lane_statistics`](Self::lane_statistics) for each). Always `Some`: connections are always
    /// pooled (the `Option` and the `async` are the older crate's signature; it does not wait).
    pub async fn pool_statistics(&self) -> Option<PoolStatistics> {
        Some(self.connections.statistics())
    }

    /// The share of connection slots in use, from 0.0 to 1.0, over both lanes of a local database.
    /// Always `Some`, as [`pool_statistics`](Self::pool_statistics).
    pub async fn pool_utilization(&self) -> Option<f32> {
        Some(self.connections.utilization())
    }

    /// The write and read lanes' statistics, for a local database; `None` for a remote one.
    pub fn lane_statistics(&self) -> Option<LaneStatistics> {
        self.connections.lane_statistics()
    }

    pub(crate) async fn write_connection(&self) -> Result<LibsqlPooledConnection> {
        self.connections.write().await
    }

    /// Runs one write statement, through the write lane's group commit for a local database.
    pub(crate) async fn execute_write(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
    ) -> Result<u64> {
        self.connections.execute_write(sql, params).await
    }

    pub(crate) async fn read_connection(&self) -> Result<LibsqlPooledConnection> {
        self.connections.read().await
    }
}
