//! The older crate's API: `ConnectionPool::new(Arc<Database>, PoolConfig)` and its methods.
#![cfg(feature = "libsql")]

use std::sync::Arc;

use memory_storage_turso::libsql::{block_on, ConnectionPool, LibsqlError, OwnedConnection};
use memory_storage_turso::pool::PoolConfig;

async fn file_database(dir: &tempfile::TempDir) -> Arc<libsql::Database> {
    let db = libsql::Builder::new_local(dir.path().join("old.db"))
        .build()
        .await
        .unwrap();
    Arc::new(db)
}

/// Old code, unchanged: the calls and types of the older crate.
async fn old_style_usage(pool: &ConnectionPool) -> Result<i64, LibsqlError> {
    let conn = pool.get().await?;
    let connection = conn.connection().unwrap();
    connection
        .execute("CREATE TABLE IF NOT EXISTS t(x INTEGER)", ())
        .await?;
    connection.execute("INSERT INTO t VALUES (1)", ()).await?;
    let mut rows = connection.query("SELECT count(*) FROM t", ()).await?;
    let count = rows.next().await?.unwrap().get::<i64>(0)?;
    let stats = pool.statistics().await;
    assert_eq!(stats.active_connections, 1);
    assert!(pool.utilization().await > 0.0);
    Ok(count)
}

#[cfg(feature = "tokio")]
#[test]
fn under_tokio_the_pool_picks_the_tokio_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = PoolConfig {
            max_connections: 4,
            ..PoolConfig::default()
        };
        let pool = ConnectionPool::new(file_database(&dir).await, config)
            .await
            .unwrap();
        assert_eq!(old_style_usage(&pool).await.unwrap(), 1);
        assert_eq!(old_style_usage(&pool).await.unwrap(), 2);

        let handles: Vec<_> = (0..16)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let conn = pool.get().await.unwrap();
                        conn.execute("INSERT INTO t VALUES (2)", ()).await.unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        let stats = pool.statistics().await;
        assert!(stats.total_created <= 4, "{stats:?}");
        assert_eq!(
            pool.available_connections().await,
            4 - stats.active_connections
        );
        assert!(pool.has_capacity().await);
        pool.shutdown().await.unwrap();
        assert!(pool.get().await.is_err());
    });
}

#[cfg(feature = "smol")]
#[test]
fn outside_tokio_the_pool_picks_the_smol_adapter() {
    let dir = tempfile::tempdir().unwrap();
    smol::block_on(async {
        let pool = ConnectionPool::new(file_database(&dir).await, PoolConfig::default())
            .await
            .unwrap();
        assert_eq!(old_style_usage(&pool).await.unwrap(), 1);
        pool.shutdown().await.unwrap();
    });
}

#[test]
fn the_blocking_get_needs_no_executor() {
    let dir = tempfile::tempdir().unwrap();
    let pool = block_on(async {
        ConnectionPool::new(file_database(&dir).await, PoolConfig::default()).await
    })
    .unwrap();
    let conn = pool.get_blocking().unwrap();
    block_on(conn.execute("CREATE TABLE t(x)", ())).unwrap();
    let mode = block_on(async {
        let mut rows = conn.query("PRAGMA journal_mode", ()).await?;
        rows.next().await?.expect("a row").get::<String>(0)
    })
    .unwrap();
    assert_eq!(mode, "wal", "new switched the file to WAL");
    drop(conn);
    // `new` opened one connection to fail fast; it is reused.
    assert_eq!(block_on(pool.statistics()).total_created, 1);
}

#[test]
fn into_inner_detaches_the_connection_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let config = PoolConfig {
        max_connections: 1,
        ..PoolConfig::default()
    };
    let pool =
        block_on(async { ConnectionPool::new(file_database(&dir).await, config).await }).unwrap();
    let raw: libsql::Connection = pool.get_blocking().unwrap().into_inner().unwrap();
    assert_eq!(block_on(pool.statistics()).size, 0);
    assert!(block_on(pool.has_capacity()));
    // The slot is free for another checkout while the detached connection still works.
    let pooled = pool.get_blocking().unwrap();
    block_on(raw.execute("CREATE TABLE t(x)", ())).unwrap();
    block_on(pooled.execute("INSERT INTO t VALUES (1)", ())).unwrap();
    // libsql closes a dropped connection twice: guard the detached one before it goes.
    drop(OwnedConnection::new(raw).unwrap());
}

#[test]
fn a_database_that_cannot_open_fails_in_new() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("x.db");
    let result = block_on(async {
        let db = libsql::Builder::new_local(missing).build().await?;
        Ok::<_, LibsqlError>(ConnectionPool::new(Arc::new(db), PoolConfig::default()).await)
    });
    let failed = match result {
        Err(_) => true,
        Ok(pool) => pool.is_err(),
    };
    assert!(failed);
}

/// An embedded replica handed in as a plain `libsql::Database` is told from a local file without I/O:
/// it gets no PRAGMA setup (a replica sends writes, PRAGMAs included, to its primary; a local replica
/// refuses them), and its connections work and are reused.
#[cfg(feature = "replica")]
#[test]
fn a_callers_embedded_replica_is_pooled_as_a_replica() {
    use memory_storage_turso::libsql::DatabaseKind;

    let dir = tempfile::tempdir().unwrap();
    // libsql opens a replica's metadata with tokio's file API.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let replica = runtime
        .block_on(libsql::Builder::new_local_replica(dir.path().join("replica.db")).build())
        .unwrap();
    let pool = block_on(ConnectionPool::new(
        Arc::new(replica),
        PoolConfig::default(),
    ))
    .unwrap();
    for _ in 0..3 {
        let conn = pool.get_blocking().unwrap();
        assert_eq!(conn.kind(), DatabaseKind::Replica);
        let one = block_on(async {
            let mut rows = conn.query("SELECT 1", ()).await?;
            rows.next().await?.expect("a row").get::<i64>(0)
        })
        .unwrap();
        assert_eq!(one, 1);
    }
    assert_eq!(block_on(pool.statistics()).total_created, 1);
}

/// A caller's remote database: its connections are told remote without a round trip each (opening a
/// Hrana connection does no I/O), and `new` still fails at once when the server cannot be reached.
/// The server is a loopback port that was just closed.
#[cfg(all(feature = "remote", feature = "tokio"))]
#[test]
fn a_callers_remote_database_is_told_apart_without_io_and_new_fails_when_it_is_unreachable() {
    use memory_storage_turso::libsql::{DatabaseKind, LibsqlDatabase, LibsqlManager};
    use memory_storage_turso::pool::Pool;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let unreachable = || {
        let url = format!("http://127.0.0.1:{closed_port}");
        let builder = libsql::Builder::new_remote(url, String::new());
        Arc::new(runtime.block_on(builder.build()).unwrap())
    };
    let pool = Pool::builder(LibsqlManager::new(LibsqlDatabase::from_libsql(
        unreachable(),
    )))
    .build()
    .unwrap();
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.kind(), DatabaseKind::Remote);
    drop(conn);
    let result = runtime.block_on(ConnectionPool::new(unreachable(), PoolConfig::default()));
    let Err(error) = result else {
        panic!("new reached nothing, yet succeeded")
    };
    assert!(
        error.to_string().contains("connect"),
        "the error names the failed connection: {error}"
    );
}
