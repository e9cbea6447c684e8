//! The write lane and read lanes: concurrent writers without "database is locked", against a plain pool
//! with libSQL's default settings.
#![cfg(feature = "libsql")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use memory_storage_turso::libsql::{
    block_on, ConnectionSetup, LanedPool, LibsqlDatabase, LibsqlError, LibsqlManager, LibsqlPool,
    TransactionMode,
};
use memory_storage_turso::pool::{Pool, PoolConfig};

const WRITERS: i64 = 8;
const INSERTS: i64 = 1_000;

const SCHEMA: &str =
    "CREATE TABLE events(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, seq INTEGER NOT NULL);
                      CREATE INDEX events_by_writer ON events(writer, seq);";

/// One unit of work: read the writer's count, then insert the next row, in one transaction (the
/// read-then-write shape that a deferred transaction cannot survive under contention).
async fn insert_next(
    conn: &mut memory_storage_turso::libsql::LibsqlConnection,
    writer: i64,
) -> Result<(), LibsqlError> {
    let tx = conn.transaction().await?;
    let mut rows = tx
        .query("SELECT count(*) FROM events WHERE writer = ?1", [writer])
        .await?;
    let seq = rows
        .next()
        .await?
        .expect("count returns a row")
        .get::<i64>(0)?;
    drop(rows);
    tx.execute(
        "INSERT INTO events(writer, seq) VALUES (?1, ?2)",
        [writer, seq],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn count_events(conn: &libsql::Connection) -> i64 {
    block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM events", ()).await?;
        rows.next().await?.expect("a row").get::<i64>(0)
    })
    .unwrap()
}

#[test]
fn eight_writers_through_the_write_lane_get_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("lanes.db")).unwrap();
    let lanes = LanedPool::builder(database).readers(2).build().unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();

    let errors = AtomicU64::new(0);
    let reads = AtomicU64::new(0);
    let writing = AtomicBool::new(true);
    let started = Instant::now();
    std::thread::scope(|s| {
        // Two readers on the read lane while the writers run: under WAL they never wait for the writer.
        for _ in 0..2 {
            s.spawn(|| {
                while writing.load(Relaxed) {
                    let mut reader = lanes.read_blocking().unwrap();
                    let counted = block_on(reader.query_row_cached(
                        "SELECT max(id) FROM events",
                        (),
                        |row| row.get::<Option<i64>>(0),
                    ));
                    match counted {
                        Ok(_) => reads.fetch_add(1, Relaxed),
                        Err(_) => errors.fetch_add(1, Relaxed),
                    };
                }
            });
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (lanes, errors) = (&lanes, &errors);
                s.spawn(move || {
                    for _ in 0..INSERTS {
                        let mut conn = lanes.write_blocking().unwrap();
                        if let Err(error) = block_on(insert_next(&mut conn, writer)) {
                            eprintln!("write lane error: {error}");
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Relaxed);
    });
    let elapsed = started.elapsed();

    let stats = lanes.statistics();
    println!(
        "write lane: {} inserts in {elapsed:?}, {} concurrent reads, errors {}; write lane created {}, \
         read lane created {}",
        WRITERS * INSERTS,
        reads.load(Relaxed),
        errors.load(Relaxed),
        stats.write.total_created,
        stats.read.total_created,
    );
    assert_eq!(errors.load(Relaxed), 0);
    assert_eq!(
        stats.write.total_created, 1,
        "exactly one writer connection"
    );
    assert!(stats.read.total_created <= 2);
    let reader = lanes.read_blocking().unwrap();
    assert_eq!(count_events(&reader), WRITERS * INSERTS);
    // Every writer's sequence is 0..INSERTS without gaps or repeats.
    let distinct = block_on(async {
        let mut rows = reader
            .query(
                "SELECT count(DISTINCT writer * 100000 + seq) FROM events",
                (),
            )
            .await?;
        rows.next().await?.expect("a row").get::<i64>(0)
    })
    .unwrap();
    assert_eq!(distinct, WRITERS * INSERTS);
}

/// The same workload through a plain pool of 8 equal connections with libSQL's defaults: busy timeout
/// 0, deferred transactions, rollback journal. Each failed transaction is retried until it commits,
/// and the "database is locked" errors are counted.
fn plain_pool_lock_errors(setup: ConnectionSetup, wal: bool) -> (u64, i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let database = if wal {
        LibsqlDatabase::open_file(&path)
    } else {
        LibsqlDatabase::open_file_keep_journal(&path)
    }
    .unwrap();
    let config = PoolConfig::builder().max_connections(8).build().unwrap();
    let manager = LibsqlManager::new(database)
        .setup(setup)
        .transaction_mode(TransactionMode::Deferred);
    let pool: LibsqlPool = Pool::builder(manager).config(config).build().unwrap();
    block_on(pool.get_blocking().unwrap().execute_batch(SCHEMA)).unwrap();

    let lock_errors = AtomicU64::new(0);
    std::thread::scope(|s| {
        for writer in 0..WRITERS {
            let (pool, lock_errors) = (&pool, &lock_errors);
            s.spawn(move || {
                // Each writer keeps one connection, as a plain pool under load hands them out.
                let mut conn = pool.get_blocking().unwrap();
                for _ in 0..INSERTS {
                    loop {
                        match block_on(insert_next(&mut conn, writer)) {
                            Ok(()) => break,
                            Err(error) if error.is_locked() => {
                                // Retry after a short pause, as an app without a busy timeout has to.
                                lock_errors.fetch_add(1, Relaxed);
                                std::thread::sleep(std::time::Duration::from_micros(200));
                            }
                            Err(error) => panic!("unexpected error: {error}"),
                        }
                    }
                }
            });
        }
    });
    let rows = count_events(&pool.get_blocking().unwrap());
    (lock_errors.load(Relaxed), rows)
}

#[test]
fn a_plain_pool_with_libsql_defaults_hits_the_lock_errors_the_lanes_avoid() {
    let (errors, rows) = plain_pool_lock_errors(ConnectionSetup::libsql_defaults(), false);
    println!(
        "plain pool, libSQL defaults (busy_timeout 0, deferred, DELETE journal): {errors} \
         \"database is locked\" errors for {} transactions",
        WRITERS * INSERTS
    );
    assert_eq!(
        rows,
        WRITERS * INSERTS,
        "every transaction committed in the end"
    );
    // Eight threads on their own connections with no busy timeout: in every run so far this has been
    // in the hundreds of thousands or millions; zero would mean the writers never overlapped.
    assert!(errors > 0);
}

#[test]
fn a_plain_pool_with_a_busy_timeout_still_fails_deferred_read_then_write() {
    let (errors, rows) = plain_pool_lock_errors(ConnectionSetup::default(), true);
    println!(
        "plain pool, busy_timeout 5 s, deferred, WAL: {errors} lock errors (SQLITE_BUSY_SNAPSHOT) for \
         {} transactions",
        WRITERS * INSERTS
    );
    assert_eq!(rows, WRITERS * INSERTS);
}

#[test]
fn read_lanes_refuse_writes_and_the_write_lane_begins_immediate() {
    let database = LibsqlDatabase::open_memory().unwrap();
    let lanes = LanedPool::builder(database).readers(3).build().unwrap();
    let mut writer = lanes.write_blocking().unwrap();
    assert_eq!(writer.transaction_mode(), TransactionMode::Immediate);
    block_on(writer.execute_schema("CREATE TABLE t(x)")).unwrap();
    drop(writer);

    let reader = lanes.read_blocking().unwrap();
    assert_eq!(reader.transaction_mode(), TransactionMode::Deferred);
    let refused = block_on(reader.execute("INSERT INTO t VALUES (1)", ())).unwrap_err();
    assert!(refused.to_string().contains("readonly"), "{refused}");

    // BEGIN IMMEDIATE takes the write lock at once: a raw connection cannot write meanwhile.
    let mut writer = lanes.write_blocking().unwrap();
    let tx = block_on(writer.transaction()).unwrap();
    let raw = lanes.write_pool().manager().database().connect().unwrap();
    let blocked = block_on(raw.execute("INSERT INTO t VALUES (2)", ())).unwrap_err();
    assert!(blocked.to_string().contains("locked"), "{blocked}");
    block_on(tx.rollback()).unwrap();

    let stats = lanes.statistics();
    assert_eq!(stats.write.max_size, 1);
    assert_eq!(stats.read.max_size, 3);
}

#[test]
fn the_write_lane_has_one_connection_however_it_is_configured() {
    let config = PoolConfig::builder()
        .max_connections(50)
        .min_idle(5)
        .build()
        .unwrap();
    let lanes = LanedPool::builder(LibsqlDatabase::open_memory().unwrap())
        .readers(2)
        .config(config)
        .build()
        .unwrap();
    let held = lanes.write_blocking().unwrap();
    assert!(lanes.write_pool().try_get().unwrap().is_none());
    drop(held);
    assert_eq!(lanes.statistics().write.max_size, 1);
    assert_eq!(lanes.statistics().read.max_size, 2);
}

#[test]
fn lanes_refuse_a_database_whose_connections_each_open_a_private_one() {
    // A caller's own `:memory:` database: each connection would get a database of its own, so the
    // read lane would never see the write lane's acknowledged writes.
    let private = block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
    let database = LibsqlDatabase::from_libsql(std::sync::Arc::new(private));
    let error = LanedPool::builder(database).build().unwrap_err();
    assert!(matches!(error, LibsqlError::Unsupported(_)), "{error}");
    assert!(error.to_string().contains("open_memory()"), "{error}");
}

#[test]
fn a_caller_waiting_for_the_write_lane_it_holds_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("self.db")).unwrap();
    let config = PoolConfig::builder()
        .connection_timeout(std::time::Duration::from_millis(20))
        .build()
        .unwrap();
    let lanes = LanedPool::builder(database).config(config).build().unwrap();
    lanes.execute_blocking("CREATE TABLE t(x)", ()).unwrap();
    let _held = lanes.write_blocking().unwrap();
    for error in [
        lanes
            .execute_blocking("INSERT INTO t VALUES (1)", ())
            .unwrap_err(),
        lanes.write_blocking().unwrap_err(),
    ] {
        assert!(matches!(error, LibsqlError::WriteLaneTimeout(_)), "{error}");
        assert!(error.is_timeout());
        let message = error.to_string();
        assert!(message.contains("holds `write()`"), "{message}");
        assert!(!message.contains("max_connections"), "{message}");
    }
}

#[cfg(feature = "remote")]
#[test]
fn lanes_refuse_remote_databases() {
    let database = block_on(LibsqlDatabase::open("https://example.invalid", Some(""))).unwrap();
    assert_eq!(
        database.kind(),
        memory_storage_turso::libsql::DatabaseKind::Remote
    );
    let error = LanedPool::builder(database).build().unwrap_err();
    assert!(error.to_string().contains("local databases"), "{error}");
}

#[cfg(feature = "smol")]
#[test]
fn async_writers_on_smol_queue_for_the_write_lane() {
    use memory_storage_turso::rt::Smol;

    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("smol.db")).unwrap();
    assert_eq!(
        database.kind(),
        memory_storage_turso::libsql::DatabaseKind::File
    );
    let lanes = LanedPool::builder(database).runtime(Smol).build().unwrap();
    smol::block_on(async {
        lanes
            .write()
            .await
            .unwrap()
            .execute_schema(SCHEMA)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let lanes = lanes.clone();
                smol::spawn(async move {
                    for _ in 0..100 {
                        let mut conn = lanes.write().await.unwrap();
                        insert_next(&mut conn, writer).await.unwrap();
                        drop(conn);
                        smol::future::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
        let reader = lanes.read().await.unwrap();
        assert_eq!(count_events(&reader), WRITERS * 100);
    });
}
