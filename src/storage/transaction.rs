//! Write transactions that work the same on local and remote connections.
//!
//! They are plain `BEGIN IMMEDIATE` and `COMMIT` statements on the connection itself. A
//! `libsql::Transaction` would not do: on a remote connection it opens a stream of its own, so
//! statements sent through the connection (and its statement cache) would run outside it.
//! `IMMEDIATE` takes the write lock at once, so a transaction that reads and then writes cannot fail
//! half way with `SQLITE_BUSY`.

use crate::libsql::LibsqlConnection;

use super::error::Result;

/// Begins a write transaction on `conn`.
pub(crate) async fn begin(conn: &mut LibsqlConnection) -> Result<()> {
    conn.execute_cached("BEGIN IMMEDIATE", ()).await?;
    Ok(())
}

/// Ends the transaction that [`begin`] began: commits it if `result` is `Ok`, and rolls it back if
/// `result` or the commit failed. Returns `result`, or the commit's error.
pub(crate) async fn end<T>(conn: &mut LibsqlConnection, result: Result<T>) -> Result<T> {
    let result = match result {
        Ok(value) => match conn.execute_cached("COMMIT", ()).await {
            Ok(_) => Ok(value),
            Err(error) => Err(error.into()),
        },
        Err(error) => Err(error),
    };
    if result.is_err() && !conn.is_autocommit() {
        // If this fails too, the pool rolls back (or closes) the connection when it comes back.
        let _ = conn.execute_cached("ROLLBACK", ()).await;
    }
    result
}
