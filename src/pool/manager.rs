//! The one point of extension: how connections are made, checked and cleaned.

use std::future::Future;

/// Creates, checks and cleans the connections of a [`Pool`](crate::pool::Pool).
///
/// `connect` and `validate` are async so that a remote manager can use the network. Local managers
/// return futures that complete on their first poll, and blocking callers drive them in place.
/// `reset` and `is_broken` run when a guard is dropped, so they are synchronous and must be quick.
///
/// ```
/// use memory_storage_turso::pool::Manager;
///
/// /// Hands out numbered strings; a string that grew past 64 bytes is "broken".
/// struct Numbers(std::sync::atomic::AtomicU32);
///
/// impl Manager for Numbers {
///     type Connection = String;
///     type Error = std::convert::Infallible;
///
///     async fn connect(&self) -> Result<String, Self::Error> {
///         let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         Ok(format!("connection {n}"))
///     }
///
///     fn is_broken(&self, conn: &mut String) -> bool {
///         conn.len() > 64
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// The pooled resource.
    type Connection: Send + 'static;
    /// What `connect` and `validate` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// The health check, run at checkout on a connection that has been idle longer than the bypass
    /// window. An error closes the connection and the checkout moves on to another one.
    fn validate(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let _ = conn;
        async { Ok(()) }
    }

    /// Cleans a connection as it comes back (for SQL: roll back an open transaction). An error closes
    /// the connection instead of returning it to the pool. It also runs when the holder panicked.
    fn reset(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        let _ = conn;
        Ok(())
    }

    /// A quick check, without I/O, that a returned connection can still be used. `true` closes it.
    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        let _ = conn;
        false
    }

    /// Runs after a connection went back, once the pool has passed it (or its slot) on and released
    /// its lock: follow-up work that must not keep the next holder waiting. The libSQL write lane
    /// checkpoints its WAL here. A panic is caught and ignored. Default: nothing.
    fn after_return(&self) {}
}
