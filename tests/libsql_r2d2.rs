//! The r2d2 facade: blocking threads through `r2d2::Pool`.
#![cfg(feature = "r2d2")]

use std::time::Duration;

use memory_storage_turso::libsql::r2d2::LibsqlConnectionManager;
use memory_storage_turso::libsql::{block_on, LibsqlDatabase};

fn count(conn: &libsql::Connection) -> i64 {
    block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM t", ()).await?;
        rows.next().await?.expect("a row").get::<i64>(0)
    })
    .unwrap()
}

fn r2d2_pool(dir: &tempfile::TempDir, size: u32) -> r2d2::Pool<LibsqlConnectionManager> {
    let database = LibsqlDatabase::open_file(dir.path().join("r2d2.db")).unwrap();
    let manager = LibsqlConnectionManager::new(database).unwrap();
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(10))
        .build(manager)
        .unwrap()
}

#[test]
fn blocking_threads_share_an_r2d2_pool() {
    let dir = tempfile::tempdir().unwrap();
    let pool = r2d2_pool(&dir, 4);
    block_on(
        pool.get()
            .unwrap()
            .execute_schema("CREATE TABLE t(thread INTEGER, n INTEGER)"),
    )
    .unwrap();
    std::thread::scope(|s| {
        for thread in 0..8 {
            let pool = &pool;
            s.spawn(move || {
                for n in 0..250 {
                    let mut conn = pool.get().unwrap();
                    block_on(
                        conn.execute_cached(
                            "INSERT INTO t(thread, n) VALUES (?1, ?2)",
                            [thread, n],
                        ),
                    )
                    .unwrap();
                }
            });
        }
    });
    let conn = pool.get().unwrap();
    assert_eq!(count(&conn), 8 * 250);
    // Connections are set up like the pool's: busy timeout 5 s, foreign keys on.
    let timeout = block_on(async {
        let mut rows = conn.query("PRAGMA busy_timeout", ()).await?;
        rows.next().await?.expect("a row").get::<i64>(0)
    })
    .unwrap();
    assert_eq!(timeout, 5000);
    assert!(pool.state().connections <= 4);
}

#[test]
fn a_panicking_holder_is_rolled_back_on_return() {
    let dir = tempfile::tempdir().unwrap();
    let pool = r2d2_pool(&dir, 1);
    block_on(pool.get().unwrap().execute("CREATE TABLE t(x)", ())).unwrap();
    let holder = pool.clone();
    let outcome = std::thread::spawn(move || {
        let conn = holder.get().unwrap();
        block_on(conn.execute("BEGIN", ())).unwrap();
        block_on(conn.execute("INSERT INTO t VALUES (1)", ())).unwrap();
        panic!("mid-transaction");
    })
    .join();
    assert!(outcome.is_err());
    let conn = pool.get().unwrap();
    assert!(conn.is_autocommit());
    assert_eq!(count(&conn), 0);
    // Rolled back and kept, not replaced.
    assert_eq!(pool.state().connections, 1);
}

#[test]
fn a_connection_marked_broken_is_dropped_by_r2d2() {
    let dir = tempfile::tempdir().unwrap();
    let pool = r2d2_pool(&dir, 1);
    let mut conn = pool.get().unwrap();
    conn.mark_broken();
    drop(conn);
    assert_eq!(pool.state().connections, 0);
}

#[test]
fn remote_databases_are_refused() {
    #[cfg(feature = "remote")]
    {
        let database =
            block_on(LibsqlDatabase::open("libsql://example.invalid", Some(""))).unwrap();
        // Wrapped as a caller's `libsql::Database`, its kind is probed (a panic on every checkout
        // otherwise: its connections need tokio).
        let wrapped = || LibsqlDatabase::from_libsql(database.libsql().clone());
        let error = LibsqlConnectionManager::new(wrapped()).unwrap_err();
        assert!(error.to_string().contains("local databases"), "{error}");
        let error = memory_storage_turso::libsql::LanedPool::builder(wrapped())
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("local databases"), "{error}");
        let error = LibsqlConnectionManager::new(database).unwrap_err();
        assert!(error.to_string().contains("local databases"), "{error}");
    }
    let memory = LibsqlDatabase::open_memory().unwrap();
    assert!(LibsqlConnectionManager::new(memory).is_ok());
}
