//! Running heavy work off the executor: [`offload`].
//!
//! Local libSQL calls are `async` in name only: they complete on their first poll, blocking the calling
//! thread for as long as SQLite works. A quick point read costs microseconds and is fine to run inline;
//! a long scan, a big batch or a `VACUUM` would stall the executor's worker thread and every task on it.
//! [`offload`] moves such work, with its connection, to the runtime's blocking pool through
//! [`Runtime::unblock`] (`spawn_blocking` on tokio, `blocking::unblock` on smol). Inside, drive libsql's
//! futures with [`block_on`](super::block_on): they need no executor.

use super::connection::LibsqlConnection;
use super::LibsqlPooledConnection;
use crate::rt::Runtime;

/// Runs `work` with `conn` on `runtime`'s blocking pool and returns its result. The connection goes
/// back to the pool when `work` is done (from the blocking thread). A panic in `work` is resumed in
/// the caller, and the connection is cleaned as for any panicking holder.
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use memory_storage_turso::libsql::{block_on, offload, LibsqlDatabase, LibsqlManager};
/// use memory_storage_turso::pool::Pool;
/// use memory_storage_turso::rt::Tokio;
///
/// let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let pool = Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()))
///         .runtime(Tokio::current())
///         .build()
///         .unwrap();
///     let conn = pool.get().await.unwrap();
///     let total = offload(&Tokio::current(), conn, |conn| {
///         block_on(async {
///             conn.execute_schema("CREATE TABLE big(n INTEGER)").await?;
///             conn.execute_batch(
///                 "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100000)
///                  INSERT INTO big SELECT n FROM c;",
///             )
///             .await?;
///             conn.query_row_cached("SELECT sum(n) FROM big", (), |row| row.get::<i64>(0)).await
///         })
///     })
///     .await
///     .unwrap();
///     assert_eq!(total, Some(5_000_050_000));
/// });
/// # }
/// ```
pub async fn offload<R, T, F>(runtime: &R, conn: LibsqlPooledConnection, work: F) -> T
where
    R: Runtime,
    T: Send + 'static,
    F: FnOnce(&mut LibsqlConnection) -> T + Send + 'static,
{
    runtime
        .unblock(move || {
            let mut conn = conn;
            work(&mut conn)
        })
        .await
}
