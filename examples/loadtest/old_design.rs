//! The older crate's design, reproduced for comparison: a semaphore caps concurrency, and every checkout
//! opens a fresh connection with libsql's default settings (busy timeout 0, rollback journal) and runs
//! `SELECT 1` on it before use.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use async_lock::{Semaphore, SemaphoreGuard};
use memory_storage_turso::libsql::{LibsqlError, OwnedConnection};

/// A "pool" that opens a connection per checkout.
pub struct OldDesign {
    database: libsql::Database,
    permits: Semaphore,
    /// Connections opened (one per checkout).
    pub created: AtomicU64,
    /// `SELECT 1` health checks run (one per checkout).
    pub health_checks: AtomicU64,
}

/// A checked-out connection and the permit that caps concurrency.
pub struct OldConnection<'a> {
    /// Guarded so that its close runs once (libsql 0.9.30 closes a dropped connection twice).
    pub conn: OwnedConnection,
    _permit: SemaphoreGuard<'a>,
}

impl OldDesign {
    /// Opens `path` the way the older crate did: `Builder::new_local(path).build()`.
    pub async fn open(path: &std::path::Path, max_connections: usize) -> libsql::Result<Self> {
        let database = libsql::Builder::new_local(path).build().await?;
        Ok(Self {
            database,
            permits: Semaphore::new(max_connections),
            created: AtomicU64::new(0),
            health_checks: AtomicU64::new(0),
        })
    }

    /// The older crate's `get()`: wait for a permit, open a connection, check it with `SELECT 1`.
    pub async fn get(&self) -> Result<OldConnection<'_>, LibsqlError> {
        let permit = self.permits.acquire().await;
        let conn = OwnedConnection::local(self.database.connect()?)?;
        self.created.fetch_add(1, Relaxed);
        conn.query("SELECT 1", ()).await?;
        self.health_checks.fetch_add(1, Relaxed);
        Ok(OldConnection {
            conn,
            _permit: permit,
        })
    }
}
