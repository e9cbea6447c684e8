//! The libSQL manager in a pool: real reuse, connection setup, the clean return path, in-memory sharing.
#![cfg(feature = "libsql")]

use std::sync::Arc;
use std::time::Duration;

use memory_storage_turso::libsql::{
    block_on, ConnectionSetup, LibsqlDatabase, LibsqlError, LibsqlManager, LibsqlPool,
};
use memory_storage_turso::pool::{Pool, PoolConfig};

fn pool_of(database: LibsqlDatabase, size: usize) -> LibsqlPool {
    let config = PoolConfig::builder().max_connections(size).build().unwrap();
    Pool::builder(LibsqlManager::new(database))
        .config(config)
        .build()
        .unwrap()
}

async fn count_rows(conn: &libsql::Connection, table: &str) -> i64 {
    let mut rows = conn
        .query(&format!("SELECT count(*) FROM {table}"), ())
        .await
        .unwrap();
    rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
}

async fn pragma_int(conn: &libsql::Connection, pragma: &str) -> i64 {
    let mut rows = conn.query(&format!("PRAGMA {pragma}"), ()).await.unwrap();
    rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
}

#[cfg(feature = "tokio")]
#[test]
fn ten_thousand_operations_from_64_tasks_reuse_a_pool_of_8() {
    use memory_storage_turso::rt::Tokio;

    const TASKS: usize = 64;
    const OPERATIONS: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("reuse.db")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = PoolConfig::builder().max_connections(8).build().unwrap();
    let pool = Pool::builder(LibsqlManager::new(database))
        .config(config)
        .runtime(Tokio::from_handle(runtime.handle().clone()))
        .build()
        .unwrap();
    let rows_seen = runtime.block_on(async {
        {
            let mut conn = pool.get().await.unwrap();
            conn.execute_schema(
                "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
                 WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000)
                 INSERT INTO items SELECT n, 'item ' || n FROM c;",
            )
            .await
            .unwrap();
        }
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut found = 0usize;
                let mine = (task..OPERATIONS).step_by(TASKS);
                for op in mine {
                    let mut conn = pool.get().await.unwrap();
                    let id = (op % 1000 + 1) as i64;
                    let name = conn
                        .query_row_cached("SELECT name FROM items WHERE id = ?1", [id], |row| {
                            row.get::<String>(0)
                        })
                        .await
                        .unwrap();
                    assert_eq!(name, Some(format!("item {id}")));
                    found += 1;
                    drop(conn);
                    tokio::task::yield_now().await;
                }
                found
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    });
    assert_eq!(rows_seen, OPERATIONS);
    let stats = pool.statistics();
    println!("{stats:#?}");
    assert!(stats.total_created <= 8, "created {}", stats.total_created);
    assert_eq!(stats.total_checkouts, OPERATIONS + 1);
    // The old design ran SELECT 1 on every checkout; here only connections idle > 500 ms are checked.
    let checks = stats.total_health_checks_passed + stats.total_health_checks_failed;
    assert!(
        checks < 100,
        "{checks} health checks for {OPERATIONS} checkouts"
    );
}

#[test]
fn panic_after_manual_begin_rolls_back_before_the_next_holder() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool_of(
        LibsqlDatabase::open_file(dir.path().join("panic.db")).unwrap(),
        1,
    );
    {
        let conn = pool.get_blocking().unwrap();
        block_on(conn.execute("CREATE TABLE t(x INTEGER)", ())).unwrap();
    }
    let holder = pool.clone();
    let outcome = std::thread::spawn(move || {
        let conn = holder.get_blocking().unwrap();
        block_on(async {
            conn.execute("BEGIN", ()).await.unwrap();
            conn.execute("INSERT INTO t(x) VALUES (42)", ())
                .await
                .unwrap();
        });
        assert!(!conn.is_autocommit());
        panic!("the holder panics inside its transaction");
    })
    .join();
    assert!(outcome.is_err(), "the holder thread panicked");

    let conn = pool.get_blocking().unwrap();
    assert!(
        conn.is_autocommit(),
        "the next holder is outside any transaction"
    );
    assert_eq!(
        block_on(count_rows(&conn, "t")),
        0,
        "the row was rolled back"
    );
    // Rolled back and reused, not closed: the only connection ever made is this one.
    let stats = pool.statistics();
    assert_eq!(stats.total_created, 1);
    assert_eq!(stats.closed.total(), 0);
    // And the write lock is free: another connection can write at once.
    let other = pool.manager().database().connect().unwrap();
    block_on(other.execute("INSERT INTO t(x) VALUES (1)", ())).unwrap();
}

#[test]
fn a_dropped_transaction_object_also_leaves_a_clean_connection() {
    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 1);
    let mut conn = pool.get_blocking().unwrap();
    block_on(async {
        conn.execute_schema("CREATE TABLE t(x)").await.unwrap();
        let tx = conn.transaction().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1)", ()).await.unwrap();
        drop(tx);
    });
    drop(conn);
    let conn = pool.get_blocking().unwrap();
    assert!(conn.is_autocommit());
    assert_eq!(block_on(count_rows(&conn, "t")), 0);
}

#[test]
fn new_connections_get_the_setup() {
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("setup.db")).unwrap();
    assert!(database.is_wal());
    let setup = ConnectionSetup::default()
        .busy_timeout(Duration::from_millis(1234))
        .init_sql("CREATE TEMP TABLE IF NOT EXISTS session_marker(x); PRAGMA cache_size = -4000;")
        .init_hook(|conn| {
            block_on(conn.execute("INSERT INTO session_marker VALUES (7)", ()))?;
            Ok(())
        });
    let pool = Pool::builder(LibsqlManager::new(database).setup(setup))
        .build()
        .unwrap();
    let conn = pool.get_blocking().unwrap();
    block_on(async {
        assert_eq!(pragma_int(&conn, "busy_timeout").await, 1234);
        assert_eq!(pragma_int(&conn, "foreign_keys").await, 1);
        assert_eq!(pragma_int(&conn, "synchronous").await, 1, "NORMAL");
        assert_eq!(pragma_int(&conn, "cache_size").await, -4000);
        assert_eq!(count_rows(&conn, "session_marker").await, 1);
        let mut rows = conn.query("PRAGMA journal_mode", ()).await.unwrap();
        let mode = rows
            .next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>(0)
            .unwrap();
        assert_eq!(mode, "wal");
    });
}

#[test]
fn foreign_keys_false_turns_them_off_although_libsql_compiles_them_on() {
    let setup = ConnectionSetup::default().foreign_keys(false);
    let pool =
        Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()).setup(setup))
            .build()
            .unwrap();
    let conn = pool.get_blocking().unwrap();
    block_on(async {
        assert_eq!(pragma_int(&conn, "foreign_keys").await, 0);
        conn.execute_batch(
            "CREATE TABLE parent(id INTEGER PRIMARY KEY);
             CREATE TABLE child(parent INTEGER REFERENCES parent(id));",
        )
        .await
        .unwrap();
        let orphan = conn
            .execute("INSERT INTO child(parent) VALUES (42)", ())
            .await;
        assert!(orphan.is_ok(), "foreign keys still enforced: {orphan:?}");
    });
}

#[test]
fn a_busy_timeout_longer_than_sqlite_can_wait_is_capped_not_wrapped_to_zero() {
    // libsql passes the milliseconds as an i32: 30 days would wrap negative, which SQLite reads as
    // "no busy handler", so every lock would fail at once.
    for timeout in [Duration::from_secs(30 * 24 * 3600), Duration::MAX] {
        let setup = ConnectionSetup::default().busy_timeout(timeout);
        let pool =
            Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()).setup(setup))
                .build()
                .unwrap();
        let conn = pool.get_blocking().unwrap();
        let ms = block_on(pragma_int(&conn, "busy_timeout"));
        assert_eq!(ms, i64::from(i32::MAX), "busy_timeout({timeout:?})");
    }
}

#[test]
fn a_failing_init_hook_fails_the_checkout_and_says_where() {
    let setup = ConnectionSetup::default().init_hook(|_| Err("no licence".into()));
    let pool =
        Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()).setup(setup))
            .build()
            .unwrap();
    let error = LibsqlError::from(pool.get_blocking().unwrap_err());
    let message = error.to_string();
    assert!(message.contains("init hook"), "{message}");
    assert!(message.contains("no licence"), "{message}");
    assert_eq!(pool.statistics().size, 0);
}

#[test]
fn a_panicking_init_hook_fails_the_checkout_without_unwinding_through_the_pool() {
    let setup = ConnectionSetup::default().init_hook(|_| panic!("the hook gives up"));
    let pool =
        Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()).setup(setup))
            .build()
            .unwrap();
    let checkout = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.get_blocking()));
    let error = LibsqlError::from(checkout.expect("no unwinding").unwrap_err());
    let message = error.to_string();
    assert!(message.contains("init hook"), "{message}");
    assert!(message.contains("panicked: the hook gives up"), "{message}");
    let state = pool.state();
    assert_eq!(
        (state.size, state.connecting, state.in_use),
        (0, 0, 0),
        "{state}"
    );
}

#[test]
fn libsql_defaults_leave_busy_timeout_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file_keep_journal(dir.path().join("plain.db")).unwrap();
    let pool =
        Pool::builder(LibsqlManager::new(database).setup(ConnectionSetup::libsql_defaults()))
            .build()
            .unwrap();
    let conn = pool.get_blocking().unwrap();
    block_on(async {
        assert_eq!(pragma_int(&conn, "busy_timeout").await, 0);
        let mut rows = conn.query("PRAGMA journal_mode", ()).await.unwrap();
        let mode = rows
            .next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>(0)
            .unwrap();
        assert_eq!(mode, "delete");
    });
}

#[test]
fn an_in_memory_database_is_shared_by_every_pooled_connection() {
    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 4);
    let first = pool.get_blocking().unwrap();
    let second = pool.get_blocking().unwrap();
    block_on(async {
        first
            .execute_batch("CREATE TABLE shared(x); INSERT INTO shared VALUES (1), (2);")
            .await
            .unwrap();
        assert_eq!(count_rows(&second, "shared").await, 2);
    });
    // The database outlives its pooled connections (the anchor keeps it): close both, open anew.
    drop(first.detach());
    drop(second.detach());
    assert_eq!(pool.statistics().size, 0);
    let conn = pool.get_blocking().unwrap();
    assert_eq!(block_on(count_rows(&conn, "shared")), 2);
}

#[test]
fn two_in_memory_databases_are_separate() {
    let a = pool_of(LibsqlDatabase::open_memory().unwrap(), 1);
    let b = pool_of(LibsqlDatabase::open_memory().unwrap(), 1);
    block_on(
        a.get_blocking()
            .unwrap()
            .execute("CREATE TABLE only_in_a(x)", ()),
    )
    .unwrap();
    let missing = block_on(
        b.get_blocking()
            .unwrap()
            .execute("INSERT INTO only_in_a VALUES (1)", ()),
    );
    assert!(missing.is_err());
}

#[test]
fn in_memory_writers_and_readers_wait_instead_of_failing() {
    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 8);
    block_on(
        pool.get_blocking()
            .unwrap()
            .execute("CREATE TABLE t(x)", ()),
    )
    .unwrap();
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for worker in 0..8 {
            let pool = &pool;
            let errors = &errors;
            s.spawn(move || {
                for i in 0..100 {
                    let mut conn = pool.get_blocking().unwrap();
                    let result = block_on(async {
                        if worker % 2 == 0 {
                            let tx = conn.transaction().await?;
                            for k in 0..10 {
                                tx.execute("INSERT INTO t VALUES (?1)", [i * 10 + k])
                                    .await?;
                            }
                            tx.commit().await?;
                        } else {
                            let mut rows = conn.query_cached("SELECT x FROM t", ()).await?;
                            while rows.next().await?.is_some() {}
                        }
                        Ok::<_, LibsqlError>(())
                    });
                    if result.is_err() {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    let conn = pool.get_blocking().unwrap();
    assert_eq!(block_on(count_rows(&conn, "t")), 4 * 100 * 10);
}

#[test]
fn a_connection_marked_broken_is_closed_on_return() {
    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 2);
    let mut conn = pool.get_blocking().unwrap();
    block_on(conn.execute("ATTACH DATABASE ':memory:' AS scratch", ())).unwrap();
    conn.mark_broken();
    drop(conn);
    let stats = pool.statistics();
    assert_eq!(stats.closed.broken, 1);
    assert_eq!(stats.size, 0);
    // The next holder gets a fresh connection without the ATTACH.
    let conn = pool.get_blocking().unwrap();
    let attached = block_on(conn.execute("CREATE TABLE scratch.t(x)", ()));
    assert!(attached.is_err());
}

#[test]
fn detach_frees_the_slot_and_keeps_the_connection_usable() {
    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 1);
    let raw = pool.get_blocking().unwrap().detach();
    assert_eq!(pool.statistics().size, 0);
    let again = pool.get_blocking().unwrap();
    block_on(again.execute("CREATE TABLE t(x)", ())).unwrap();
    assert_eq!(block_on(count_rows(&raw, "t")), 0);
}

#[test]
fn health_checks_run_only_on_connections_idle_past_the_bypass_window() {
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .build()
        .unwrap();
    let pool = Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()))
        .config(config)
        .build()
        .unwrap();
    drop(pool.get_blocking().unwrap());
    drop(pool.get_blocking().unwrap());
    assert_eq!(pool.statistics().total_health_checks_passed, 1);

    let pool = pool_of(LibsqlDatabase::open_memory().unwrap(), 1);
    for _ in 0..100 {
        drop(pool.get_blocking().unwrap());
    }
    let stats = pool.statistics();
    assert_eq!(stats.total_checkouts, 100);
    assert_eq!(
        stats.total_health_checks_passed, 0,
        "all within 500 ms of use"
    );
}

#[cfg(feature = "remote")]
#[test]
fn remote_urls_are_recognised() {
    // Building a remote database must not panic (libsql panics without its `tls` feature).
    block_on(async {
        let db = LibsqlDatabase::open("libsql://example.invalid", Some("token"))
            .await
            .unwrap();
        assert_eq!(
            db.kind(),
            memory_storage_turso::libsql::DatabaseKind::Remote
        );
    });
}

#[test]
fn concurrent_opens_of_one_file_all_switch_it_to_wal() {
    // Before the switch to WAL was retried, about 2% of such opens failed with "database is locked".
    for _ in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opened-at-once.db");
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    start.wait();
                    let database = LibsqlDatabase::open_file(&path).unwrap();
                    assert!(database.is_wal());
                });
            }
        });
    }
}
