//! The older crate's API, kept so that its users can move without edits: [`ConnectionPool`] and
//! [`PooledConnection`].
//!
//! The old pool opened a fresh connection and ran `SELECT 1` on every checkout. This one keeps
//! connections open and reuses them (see [`LibsqlManager`] for what happens at checkout and return).
//!
//! * [`ConnectionPool::new`] stays `async` and takes an `Arc<libsql::Database>` of unknown kind. Each new
//!   connection is probed (see [`DatabaseKind::Unknown`](super::DatabaseKind::Unknown)); local ones get
//!   the default [`ConnectionSetup`](super::ConnectionSetup) (busy timeout 5 s, foreign keys), and `new`
//!   switches a local file to WAL through the pool's first connection. Measured: on a rollback-journal
//!   file, 16 tasks inserting through 4 connections starved one writer past its 5 s busy timeout
//!   ("database is locked"); in WAL they did not. Connections the caller opened before `new` keep their
//!   old journal mode, so open none. A `:memory:` database made by `libsql::Builder` is private to
//!   each connection: give this pool a file, or use
//!   [`LibsqlDatabase::open_memory`](super::LibsqlDatabase::open_memory) with a [`LibsqlManager`].
//! * **The runtime adapter** for async `get()`: [`Tokio::try_current`](crate::rt::Tokio::try_current)
//!   when the `tokio` feature is on and `new` runs inside a tokio runtime; else
//!   [`Smol`](crate::rt::Smol) when the `smol` feature is on; else none, and then async `get()` fails
//!   with [`PoolError::NoRuntime`](crate::pool::PoolError::NoRuntime) while
//!   [`get_blocking`](ConnectionPool::get_blocking) works.
//! * `statistics()`, `utilization()`, `available_connections()`, `has_capacity()` and `shutdown()` keep
//!   their `async` signatures, though they no longer wait for anything but the shutdown drain.
//! * [`PooledConnection::connection`] keeps the old `Option<&libsql::Connection>` return type (always
//!   `Some` while the guard lives), so that old code such as `conn.connection().unwrap()` or
//!   `.ok_or(..)?` compiles unchanged. The guard also derefs to [`LibsqlConnection`].

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::connection::LibsqlConnection;
use super::database::{query_text, LibsqlDatabase};
use super::error::Result;
use super::manager::LibsqlManager;
use super::{LibsqlPool, LibsqlPooledConnection};
use crate::pool::{Pool, PoolConfig, PoolStatistics};

/// The older crate's pool over an `Arc<libsql::Database>`, now backed by [`Pool<LibsqlManager>`](Pool).
///
/// ```
/// use std::sync::Arc;
/// use memory_storage_turso::libsql::{block_on, ConnectionPool};
/// use memory_storage_turso::pool::PoolConfig;
///
/// let dir = tempfile::tempdir().unwrap();
/// block_on(async {
///     let db = libsql::Builder::new_local(dir.path().join("old.db")).build().await?;
///     let pool = ConnectionPool::new(Arc::new(db), PoolConfig::default()).await?;
///     let conn = pool.get_blocking()?;
///     conn.connection().unwrap().execute("CREATE TABLE t(x)", ()).await?;
///     drop(conn);
///     assert!(pool.has_capacity().await);
///     pool.shutdown().await
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionPool {
    pool: LibsqlPool,
}

impl ConnectionPool {
    /// A pool over `db` with `config`. Opens one connection at once (and queries a remote one, whose
    /// opening does no I/O), so a database that cannot be opened or reached fails here, not at the
    /// first checkout.
    ///
    /// # Errors
    /// [`LibsqlError::Config`](super::LibsqlError::Config) for a bad configuration; a connect or setup
    /// error.
    pub async fn new(db: Arc<libsql::Database>, config: PoolConfig) -> Result<Self> {
        let manager = LibsqlManager::new(LibsqlDatabase::from_libsql(db));
        let builder = Pool::builder(manager).config(config);
        let pool = with_default_runtime(builder).build()?;
        let first = pool.get_blocking()?;
        if first.kind().runs_locally() {
            // WAL, as for every file this layer opens. `:memory:` answers "memory" and stays as it is.
            query_text(&first, "PRAGMA journal_mode=WAL").await?;
        } else {
            LibsqlManager::check(&first).await?;
        }
        drop(first);
        Ok(Self { pool })
    }

    /// Wraps a pool built another way.
    pub fn from_pool(pool: LibsqlPool) -> Self {
        Self { pool }
    }

    /// Checks out a connection, waiting up to `connection_timeout`.
    ///
    /// # Errors
    /// [`LibsqlError::Pool`](super::LibsqlError::Pool): a timeout, a closed pool, or no runtime adapter
    /// (see the module docs).
    pub async fn get(&self) -> Result<PooledConnection> {
        Ok(PooledConnection {
            inner: self.pool.get().await?,
        })
    }

    /// Checks out a connection from a thread; needs no runtime.
    ///
    /// # Errors
    /// As [`get`](Self::get), without the runtime case.
    pub fn get_blocking(&self) -> Result<PooledConnection> {
        Ok(PooledConnection {
            inner: self.pool.get_blocking()?,
        })
    }

    /// A snapshot of the pool's statistics.
    pub async fn statistics(&self) -> PoolStatistics {
        self.pool.statistics()
    }

    /// The share of the maximum size in use, from 0.0 to 1.0.
    pub async fn utilization(&self) -> f32 {
        self.pool.utilization()
    }

    /// Checkouts that could be served now without waiting.
    pub async fn available_connections(&self) -> usize {
        self.pool.available_connections()
    }

    /// Whether a checkout could be served now without waiting.
    pub async fn has_capacity(&self) -> bool {
        self.pool.has_capacity()
    }

    /// Closes the pool: new checkouts fail, idle connections close now, and checked-out ones as they
    /// come back. With a runtime adapter it also waits up to `connection_timeout` for them.
    ///
    /// # Errors
    /// None today; the `Result` is the old signature.
    pub async fn shutdown(&self) -> Result<()> {
        // Without a runtime there is no timer to wait with: closing is all that can be done.
        let _ = self
            .pool
            .shutdown(self.pool.config().connection_timeout)
            .await;
        Ok(())
    }

    /// The pool underneath, with the full API.
    pub fn pool(&self) -> &LibsqlPool {
        &self.pool
    }
}

/// Picks the runtime adapter for [`ConnectionPool::new`] (see the module docs).
fn with_default_runtime(
    builder: crate::pool::PoolBuilder<LibsqlManager>,
) -> crate::pool::PoolBuilder<LibsqlManager> {
    #[cfg(feature = "tokio")]
    if let Some(tokio) = crate::rt::Tokio::try_current() {
        return builder.runtime(tokio);
    }
    #[cfg(feature = "smol")]
    let builder = builder.runtime(crate::rt::Smol);
    builder
}

/// A connection checked out of a [`ConnectionPool`]. Dropping it returns the connection (rolled back
/// if a transaction was left open).
#[derive(Debug)]
pub struct PooledConnection {
    inner: LibsqlPooledConnection,
}

impl PooledConnection {
    /// The libSQL connection. Always `Some` while the guard lives; the `Option` is the old signature.
    pub fn connection(&self) -> Option<&libsql::Connection> {
        Some(self.inner.libsql())
    }

    /// Takes the connection out of the pool for good: its slot is freed at once.
    ///
    /// libsql 0.9.30 closes a local connection's handle twice when its last clone drops (see
    /// [`OwnedConnection`](super::OwnedConnection)); the pool guards the connections it owns, but this
    /// one is yours: wrap it with `OwnedConnection::new` before dropping it.
    ///
    /// # Errors
    /// None today; the `Result` is the old signature.
    pub fn into_inner(self) -> Result<libsql::Connection> {
        Ok(self.inner.detach().into_libsql())
    }

    /// The new-style guard.
    pub fn into_pooled(self) -> LibsqlPooledConnection {
        self.inner
    }
}

impl Deref for PooledConnection {
    type Target = LibsqlConnection;

    fn deref(&self) -> &LibsqlConnection {
        &self.inner
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut LibsqlConnection {
        &mut self.inner
    }
}
