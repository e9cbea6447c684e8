//! Where [`TursoStorage`](super::TursoStorage) gets its connections: the write and read lanes of a
//! local database, or one pool for a remote database.

use std::sync::Arc;

use libsql::params::IntoParams;

use crate::libsql::{
    LaneStatistics, LanedPool, LibsqlError, LibsqlPool, LibsqlPooledConnection, OwnedConnection,
};
use crate::pool::PoolStatistics;

use super::error::StorageError;

/// The storage's pools, and how it checks connections out of them.
#[derive(Clone)]
pub(crate) struct Connections {
    pools: Pools,
    /// Whether statements run on SQLite in this process (so a connection may move to a blocking
    /// thread, and a batch may be offloaded there).
    local: bool,
    /// Whether checkouts park the thread ([`Blocking`](crate::rt::Blocking) runtime) instead of
    /// awaiting.
    blocking: bool,
    /// Whether statements go through libsql's HTTP client (a remote database, or an embedded replica's
    /// writes), which needs tokio's reactor in the polling thread.
    http: bool,
    /// A connection the storage keeps open for a caller's local file, so that its WAL files live as
    /// long as the storage (databases opened by this crate keep their own).
    _anchor: Option<Arc<OwnedConnection>>,
}

#[derive(Clone)]
enum Pools {
    /// A local file or in-memory database: writes on the write lane, reads on the read lane.
    Laned(LanedPool),
    /// A remote database (the server orders writes), or a caller's private `:memory:` database (one
    /// connection): every call uses the same pool.
    Single(LibsqlPool),
}

impl Connections {
    pub(crate) fn laned(lanes: LanedPool, blocking: bool) -> Self {
        Connections {
            pools: Pools::Laned(lanes),
            local: true,
            blocking,
            http: false,
            _anchor: None,
        }
    }

    pub(crate) fn single(pool: LibsqlPool, local: bool, blocking: bool) -> Self {
        Connections {
            pools: Pools::Single(pool),
            local,
            blocking,
            http: false,
            _anchor: None,
        }
    }

    /// Marks the database as remote (or a replica): reached through libsql's HTTP client.
    pub(crate) fn over_http(mut self) -> Self {
        self.http = true;
        self
    }

    pub(crate) fn with_anchor(mut self, anchor: OwnedConnection) -> Self {
        self._anchor = Some(Arc::new(anchor));
        self
    }

    /// Whether statements run on SQLite in this process.
    pub(crate) fn runs_locally(&self) -> bool {
        self.local
    }

    /// A connection for writing: the write lane's, for a local database.
    pub(crate) async fn write(&self) -> Result<LibsqlPooledConnection, StorageError> {
        let pool = match &self.pools {
            Pools::Laned(lanes) => lanes.write_pool(),
            Pools::Single(pool) => pool,
        };
        self.checkout(pool).await
    }

    /// Runs one write statement: through the write lane's group commit for a local database (see
    /// [`LanedPool::execute`]), on a checked-out connection otherwise.
    pub(crate) async fn execute_write(
        &self,
        sql: &str,
        params: impl IntoParams,
    ) -> Result<u64, StorageError> {
        let changed = match &self.pools {
            Pools::Laned(lanes) if self.blocking => lanes.execute_blocking(sql, params),
            Pools::Laned(lanes) => lanes.execute(sql, params).await,
            Pools::Single(pool) => self.checkout(pool).await?.execute_cached(sql, params).await,
        };
        Ok(changed?)
    }

    /// A connection for reading: a read lane's, for a local database.
    pub(crate) async fn read(&self) -> Result<LibsqlPooledConnection, StorageError> {
        let pool = match &self.pools {
            Pools::Laned(lanes) => lanes.read_pool(),
            Pools::Single(pool) => pool,
        };
        self.checkout(pool).await
    }

    async fn checkout(&self, pool: &LibsqlPool) -> Result<LibsqlPooledConnection, StorageError> {
        #[cfg(feature = "tokio")]
        if self.http && tokio::runtime::Handle::try_current().is_err() {
            return Err(StorageError::Config {
                setting: "runtime",
                problem: String::from(
                    "this storage's database is reached through libsql's HTTP client, which needs \
                     tokio's reactor, and this call runs outside a tokio runtime: call it from a \
                     task of that runtime, or through Handle::block_on",
                ),
            });
        }
        let conn = if self.blocking {
            pool.get_blocking()
        } else {
            pool.get().await
        };
        conn.map_err(|error| LibsqlError::from(error).into())
    }

    /// Both lanes' statistics, for a local database.
    pub(crate) fn lane_statistics(&self) -> Option<LaneStatistics> {
        match &self.pools {
            Pools::Laned(lanes) => Some(lanes.statistics()),
            Pools::Single(_) => None,
        }
    }

    /// The statistics of all the storage's connections: for a local database, both lanes added up.
    pub(crate) fn statistics(&self) -> PoolStatistics {
        match &self.pools {
            Pools::Laned(lanes) => {
                let LaneStatistics { write, read, .. } = lanes.statistics();
                add_up(&write, &read)
            }
            Pools::Single(pool) => pool.statistics(),
        }
    }

    /// The share of all connection slots held by callers, from 0.0 to 1.0.
    pub(crate) fn utilization(&self) -> f32 {
        let stats = self.statistics();
        stats.active_connections as f32 / stats.max_size.max(1) as f32
    }
}

/// Two pools' statistics as one: gauges and counters added, the longest wait the longer of the two.
fn add_up(a: &PoolStatistics, b: &PoolStatistics) -> PoolStatistics {
    let closed = crate::pool::ClosedConnections {
        broken: a.closed.broken + b.closed.broken,
        idle_timeout: a.closed.idle_timeout + b.closed.idle_timeout,
        max_lifetime: a.closed.max_lifetime + b.closed.max_lifetime,
        health_check: a.closed.health_check + b.closed.health_check,
        retired: a.closed.retired + b.closed.retired,
    };
    let mut sum = PoolStatistics {
        total_created: a.total_created + b.total_created,
        total_health_checks_passed: a.total_health_checks_passed + b.total_health_checks_passed,
        total_health_checks_failed: a.total_health_checks_failed + b.total_health_checks_failed,
        active_connections: a.active_connections + b.active_connections,
        total_wait_time_ms: a.total_wait_time_ms + b.total_wait_time_ms,
        total_checkouts: a.total_checkouts + b.total_checkouts,
        avg_wait_time_ms: 0,
        idle_connections: a.idle_connections + b.idle_connections,
        connecting: a.connecting + b.connecting,
        size: a.size + b.size,
        waiting: a.waiting + b.waiting,
        max_size: a.max_size + b.max_size,
        closed,
        timeouts: a.timeouts + b.timeouts,
        connect_failures: a.connect_failures + b.connect_failures,
        max_wait_time_ms: a.max_wait_time_ms.max(b.max_wait_time_ms),
        suspected_leaks: a.suspected_leaks + b.suspected_leaks,
    };
    sum.update_averages();
    sum
}
