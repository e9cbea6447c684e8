//! The r2d2 facade (feature `r2d2`): [`LibsqlConnectionManager`] implements
//! [`r2d2::ManageConnection`] for local libSQL databases, with the same setup, validation and reset
//! rules as [`LibsqlManager`].
//!
//! * **Setup:** the same [`ConnectionSetup`] (busy timeout 5 s, foreign keys, `synchronous=NORMAL` under
//!   WAL, init SQL and hook), and the same statement cache.
//! * **Validation:** r2d2 calls `is_valid` on every checkout unless built with
//!   `.test_on_check_out(false)`. To keep the rule "never health-check on every checkout", `is_valid`
//!   skips the `SELECT 1` for a connection that came back less than `health_check_bypass` ago
//!   (default 500 ms, as in the pool core).
//! * **Reset:** r2d2 has no reset hook, but it calls `has_broken` on every return, so that is where an
//!   open transaction is rolled back. If the rollback fails, the connection counts as broken and r2d2
//!   closes it.
//!
//! Local libSQL calls complete on their first poll, so the facade drives them in place: it needs no
//! runtime and suits plain threads.
//!
//! ```
//! use memory_storage_turso::libsql::r2d2::LibsqlConnectionManager;
//! use memory_storage_turso::libsql::{block_on, LibsqlDatabase};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let database = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
//! let manager = LibsqlConnectionManager::new(database).unwrap();
//! let pool = r2d2::Pool::builder().max_size(4).build(manager).unwrap();
//!
//! let mut conn = pool.get().unwrap();
//! block_on(conn.execute_schema("CREATE TABLE t(x)")).unwrap();
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;

use super::connection::LibsqlConnection;
use super::database::LibsqlDatabase;
use super::error::{LibsqlError, Result};
use super::manager::LibsqlManager;
use super::setup::ConnectionSetup;
use crate::pool::PoolConfig;

/// An `r2d2::ManageConnection` for local libSQL databases (files and in-memory).
#[derive(Debug, Clone)]
#[must_use]
pub struct LibsqlConnectionManager {
    manager: LibsqlManager,
    health_check_bypass: Duration,
}

impl LibsqlConnectionManager {
    /// A manager for a local `database`, with the default setup and a statement cache of 64.
    ///
    /// # Errors
    /// [`LibsqlError::Unsupported`] for a remote database or an embedded replica, whose connections
    /// need an async runtime that r2d2 does not have.
    pub fn new(database: impl Into<Arc<LibsqlDatabase>>) -> Result<Self> {
        let database = database.into();
        database.require_local(
            "r2d2 connections",
            "its connections need an async runtime, so use Pool<LibsqlManager> with a runtime adapter",
        )?;
        Ok(Self {
            manager: LibsqlManager::new(database),
            health_check_bypass: PoolConfig::default().health_check_bypass,
        })
    }

    /// Uses `setup` for new connections.
    pub fn setup(mut self, setup: ConnectionSetup) -> Self {
        self.manager = self.manager.setup(setup);
        self
    }

    /// The statement cache capacity of each connection (default 64; 0 turns it off).
    pub fn statement_cache_capacity(mut self, capacity: usize) -> Self {
        self.manager = self.manager.statement_cache_capacity(capacity);
        self
    }

    /// A connection that came back within this window is not health-checked (default 500 ms).
    pub fn health_check_bypass(mut self, window: Duration) -> Self {
        self.health_check_bypass = window;
        self
    }
}

impl r2d2::ManageConnection for LibsqlConnectionManager {
    type Connection = LibsqlConnection;
    type Error = LibsqlError;

    fn connect(&self) -> Result<LibsqlConnection> {
        block_on(self.manager.open())
    }

    fn is_valid(&self, conn: &mut LibsqlConnection) -> Result<()> {
        let recently_used = conn
            .returned_at
            .is_some_and(|at| at.elapsed() < self.health_check_bypass);
        if recently_used {
            return Ok(());
        }
        block_on(LibsqlManager::check(conn))
    }

    fn has_broken(&self, conn: &mut LibsqlConnection) -> bool {
        conn.returned_at = Some(Instant::now());
        conn.is_marked_broken() || conn.clean_for_reuse().is_err()
    }
}
