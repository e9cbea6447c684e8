//! The remote suite: runs against a libSQL server or Turso database when `LIBSQL_TEST_URL` (and, if
//! the server needs one, `LIBSQL_TEST_TOKEN`) is set, and prints a skip notice otherwise.
#![cfg(all(feature = "remote", feature = "tokio"))]

use memory_storage_turso::libsql::{DatabaseKind, LibsqlDatabase, LibsqlManager, LibsqlPool};
use memory_storage_turso::pool::{Pool, PoolConfig};
use memory_storage_turso::rt::Tokio;

/// The server's URL and token, or `None` (with a notice) when the suite is to be skipped.
fn server() -> Option<(String, String)> {
    match std::env::var("LIBSQL_TEST_URL") {
        Ok(url) if !url.is_empty() => {
            Some((url, std::env::var("LIBSQL_TEST_TOKEN").unwrap_or_default()))
        }
        _ => {
            eprintln!(
                "skipped: set LIBSQL_TEST_URL (and LIBSQL_TEST_TOKEN) to run the remote suite"
            );
            None
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn remote_pool(url: &str, token: &str, size: usize) -> LibsqlPool {
    let database = LibsqlDatabase::open(url, Some(token)).await.unwrap();
    assert_eq!(database.kind(), DatabaseKind::Remote);
    let config = PoolConfig::builder().max_connections(size).build().unwrap();
    Pool::builder(LibsqlManager::new(database))
        .config(config)
        .runtime(Tokio::current())
        .build()
        .unwrap()
}

/// A table name of its own per run, so that runs against a shared server do not collide.
fn table(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

#[test]
fn remote_queries_reuse_connections() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let pool = remote_pool(&url, &token, 4).await;
        let name = table("reuse");
        let mut conn = pool.get().await.unwrap();
        conn.execute_schema(&format!(
            "CREATE TABLE {name}(id INTEGER PRIMARY KEY, v TEXT)"
        ))
        .await
        .unwrap();
        drop(conn);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let (pool, name) = (pool.clone(), name.clone());
                tokio::spawn(async move {
                    for i in 0..10 {
                        let mut conn = pool.get().await.unwrap();
                        conn.execute_cached(
                            &format!("INSERT INTO {name}(id, v) VALUES (?1, ?2)"),
                            (task * 100 + i, format!("v{i}")),
                        )
                        .await
                        .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut conn = pool.get().await.unwrap();
        let count = conn
            .query_row_cached(&format!("SELECT count(*) FROM {name}"), (), |row| {
                row.get::<i64>(0)
            })
            .await
            .unwrap();
        assert_eq!(count, Some(160));
        conn.execute_schema(&format!("DROP TABLE {name}"))
            .await
            .unwrap();
        let stats = pool.statistics();
        assert!(stats.total_created <= 4, "{stats:?}");
    });
}

#[test]
fn a_remote_connection_returned_inside_a_transaction_is_closed() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let pool = remote_pool(&url, &token, 1).await;
        let name = table("tx");
        let conn = pool.get().await.unwrap();
        conn.execute(&format!("CREATE TABLE {name}(x)"), ())
            .await
            .unwrap();
        conn.execute("BEGIN", ()).await.unwrap();
        conn.execute(&format!("INSERT INTO {name} VALUES (1)"), ())
            .await
            .unwrap();
        assert!(!conn.is_autocommit());
        drop(conn);
        assert_eq!(pool.statistics().closed.broken, 1);

        let mut conn = pool.get().await.unwrap();
        assert!(conn.is_autocommit());
        let count = conn
            .query_row_cached(&format!("SELECT count(*) FROM {name}"), (), |row| {
                row.get::<i64>(0)
            })
            .await
            .unwrap();
        assert_eq!(count, Some(0), "the server rolled the transaction back");
        conn.execute(&format!("DROP TABLE {name}"), ())
            .await
            .unwrap();
    });
}

#[test]
fn remote_health_checks_pass() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let config = PoolConfig::builder()
            .max_connections(1)
            .health_check_bypass(std::time::Duration::ZERO)
            .build()
            .unwrap();
        let database = LibsqlDatabase::open_remote(&url, &token).await.unwrap();
        let pool = Pool::builder(LibsqlManager::new(database))
            .config(config)
            .runtime(Tokio::current())
            .build()
            .unwrap();
        drop(pool.get().await.unwrap());
        drop(pool.get().await.unwrap());
        assert_eq!(pool.statistics().total_health_checks_passed, 1);
    });
}
