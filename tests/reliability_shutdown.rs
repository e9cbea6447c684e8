//! Shutdown under load, on libSQL: waiters fail with `PoolClosed` within milliseconds, holders finish
//! their work and their connections are closed as they come back, `shutdown` says honestly whether the
//! pool drained by its deadline, and once everything is closed and dropped no connection is left open:
//! no `-wal`/`-shm` file remains, and (on Linux) no file descriptor of this process points at the
//! database's files any more.
//!
//! The figures (how long the waiters took to fail) are printed with `--nocapture`; the assertion on
//! them is only a loose sanity bound.
#![cfg(all(feature = "libsql", feature = "tokio"))]

mod storage_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use memory_storage_turso::libsql::{
    LanedPool, LibsqlDatabase, LibsqlError, LibsqlPooledConnection,
};
use memory_storage_turso::pool::{PoolConfig, PoolError};
use memory_storage_turso::rt::{Blocking, Tokio};
use memory_storage_turso::storage::{
    EpisodeQuery, ResilientStorage, TaskType, TursoStorage, TursoStorageBuilder,
};
use storage_support::{context, full_episode, TempDb};

/// A loose bound on how long a waiter may take to learn that the pool closed: it is woken directly by
/// the close, so milliseconds are expected even on a loaded CI machine.
const WAKE_BOUND: Duration = Duration::from_secs(1);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Spins (without sleeping) until `condition` holds, failing after 10 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

fn is_closed(error: &LibsqlError) -> bool {
    matches!(error, LibsqlError::Pool(error) if matches!(**error, PoolError::Closed))
}

/// The `-wal` and `-shm` files of `db` that exist.
fn journal_files(db: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm"]
        .iter()
        .map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
        .filter(|path| path.exists())
        .collect()
}

/// This process's open file descriptors on files in `dir`. Every SQLite connection keeps one on the
/// database file (and on the WAL), so none left means every connection is closed; the journal files
/// alone do not show that (SQLite deletes them when a closing connection can lock the file, even if
/// idle connections remain).
#[cfg(target_os = "linux")]
fn open_descriptors(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn open_descriptors(_dir: &Path) -> Vec<PathBuf> {
    Vec::new()
}

/// Checks that nothing keeps the database at `db` (in `dir`) open.
fn assert_fully_closed(dir: &Path, db: &Path) {
    assert_eq!(
        journal_files(db),
        Vec::<PathBuf>::new(),
        "journal files left; descriptors still open: {:?}",
        open_descriptors(dir)
    );
    assert_eq!(
        open_descriptors(dir),
        Vec::<PathBuf>::new(),
        "connections left open"
    );
}

fn lanes(db: &Path, readers: usize, runtime: &tokio::runtime::Runtime) -> LanedPool {
    let database = LibsqlDatabase::open_file(db).unwrap();
    let config = PoolConfig::builder()
        .connection_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    LanedPool::builder(database)
        .readers(readers)
        .config(config)
        .runtime(Tokio::from_handle(runtime.handle().clone()))
        .build()
        .unwrap()
}

fn row_count(db: &Path, table: &str) -> i64 {
    let database = LibsqlDatabase::open_file(db).unwrap();
    let conn = database.connect().unwrap();
    block_on(async {
        let mut rows = conn
            .query(&format!("SELECT count(*) FROM {table}"), ())
            .await?;
        rows.next().await?.unwrap().get::<i64>(0)
    })
    .unwrap()
}

/// Milliseconds, with a fraction, for the report.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// When each waiter's checkout returned, and whether it was `PoolClosed`.
type Ends = Arc<Mutex<Vec<(&'static str, Instant, bool)>>>;

#[test]
fn waiters_fail_at_once_holders_finish_and_reports_are_honest() {
    let runtime = runtime();
    let db = TempDb::new();
    let path = db.path();
    let lanes = lanes(&path, 2, &runtime);
    block_on(async {
        let mut writer = lanes.write_blocking()?;
        writer
            .execute_schema(
                "CREATE TABLE numbers(n INTEGER PRIMARY KEY); CREATE TABLE notes(body TEXT);
                 WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100)
                 INSERT INTO numbers SELECT n FROM c;",
            )
            .await
    })
    .unwrap();

    let ends: Ends = Arc::default();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (finish_tx, finish_rx) = mpsc::channel::<()>();
    let finish_rx = Arc::new(Mutex::new(finish_rx));
    thread::scope(|s| {
        // Holders of all three connections: the writer inside a BEGIN IMMEDIATE transaction, the
        // readers half way through a cached query. Each finishes once told to, after the close.
        let holders: Vec<_> = (0..3)
            .map(|holder| {
                let (lanes, held, finish) = (&lanes, held_tx.clone(), finish_rx.clone());
                s.spawn(move || {
                    block_on(async {
                        if holder == 0 {
                            let mut writer = lanes.write_blocking()?;
                            let tx = writer.transaction().await?;
                            tx.execute("INSERT INTO notes(body) VALUES ('a holder')", ())
                                .await?;
                            held.send(()).unwrap();
                            finish.lock().unwrap().recv().unwrap();
                            tx.commit().await?;
                            assert!(writer.is_autocommit());
                            return Ok(100);
                        }
                        let mut reader = lanes.read_blocking()?;
                        let mut rows = reader.query_cached("SELECT n FROM numbers", ()).await?;
                        let mut read = 0;
                        while read < 10 {
                            rows.next().await?.unwrap();
                            read += 1;
                        }
                        held.send(()).unwrap();
                        finish.lock().unwrap().recv().unwrap();
                        while rows.next().await?.is_some() {
                            read += 1;
                        }
                        Ok::<_, LibsqlError>(read)
                    })
                })
            })
            .collect();
        for _ in 0..3 {
            held_rx.recv().unwrap();
        }

        // Waiters: three threads and three tokio tasks on each lane.
        let mut waiters = Vec::new();
        for lane in ["write", "read"] {
            for _ in 0..3 {
                let (thread_lanes, thread_ends) = (&lanes, ends.clone());
                waiters.push(s.spawn(move || {
                    let result = match lane {
                        "write" => thread_lanes.write_blocking(),
                        _ => thread_lanes.read_blocking(),
                    };
                    let closed = result.as_ref().is_err_and(is_closed);
                    thread_ends
                        .lock()
                        .unwrap()
                        .push(("thread", Instant::now(), closed));
                }));
                let (lanes, ends) = (lanes.clone(), ends.clone());
                let task = runtime.spawn(async move {
                    let result = match lane {
                        "write" => lanes.write().await,
                        _ => lanes.read().await,
                    };
                    let closed = result.as_ref().is_err_and(is_closed);
                    ends.lock()
                        .unwrap()
                        .push(("tokio task", Instant::now(), closed));
                });
                waiters.push(s.spawn(move || drop(block_on(task))));
            }
        }
        wait_until("every waiter is queued", || {
            lanes.write_pool().state().waiting == 6 && lanes.read_pool().state().waiting == 6
        });

        let closed_at = Instant::now();
        lanes.close();
        for waiter in waiters {
            waiter.join().unwrap();
        }
        let ends = ends.lock().unwrap();
        assert_eq!(ends.len(), 12);
        assert!(
            ends.iter().all(|(_, _, closed)| *closed),
            "every waiter got PoolClosed"
        );
        let latency = |kind: &str| {
            ends.iter()
                .filter(|(k, _, _)| *k == kind)
                .map(|(_, at, _)| at.saturating_duration_since(closed_at))
                .max()
                .unwrap()
        };
        let (threads, tasks) = (latency("thread"), latency("tokio task"));
        assert!(threads.max(tasks) < WAKE_BOUND, "{threads:?} {tasks:?}");
        eprintln!(
            "shutdown: 12 waiters (6 threads, 6 tokio tasks) failed with PoolClosed at most {:.3} ms \
             (threads) and {:.3} ms (tokio tasks) after the close",
            ms(threads),
            ms(tasks)
        );

        // New checkouts fail at once too.
        assert!(is_closed(&lanes.write_blocking().unwrap_err()));
        assert!(lanes.read_pool().try_get().unwrap_err().is_closed());

        // At their deadlines, the shutdowns say the holders are still out.
        let started = Instant::now();
        let report = lanes
            .write_pool()
            .shutdown_blocking(Duration::from_millis(30));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(!report.drained);
        assert_eq!(report.still_in_use, 1);
        let report = runtime
            .block_on(lanes.read_pool().shutdown(Duration::from_millis(30)))
            .unwrap();
        assert!(!report.drained);
        assert_eq!(report.still_in_use, 2);

        // The holders finish their work; both shutdowns then report the lanes drained.
        let write_drain = s.spawn(|| {
            lanes
                .write_pool()
                .shutdown_blocking(Duration::from_secs(30))
        });
        let read_drain = runtime.spawn({
            let lanes = lanes.clone();
            async move { lanes.read_pool().shutdown(Duration::from_secs(30)).await }
        });
        for _ in 0..3 {
            finish_tx.send(()).unwrap();
        }
        let read: Vec<i64> = holders
            .into_iter()
            .map(|holder| holder.join().unwrap().unwrap())
            .collect();
        assert_eq!(
            read,
            [100, 100, 100],
            "the holders read or wrote all they meant to"
        );
        let report = write_drain.join().unwrap();
        assert!(report.drained && report.still_in_use == 0, "{report:?}");
        let report = runtime.block_on(read_drain).unwrap().unwrap();
        assert!(report.drained && report.still_in_use == 0, "{report:?}");
    });

    // Every connection was closed as it came back, none kept.
    let stats = lanes.statistics();
    for lane in [&stats.write, &stats.read] {
        assert_eq!(lane.size, 0, "{lane:?}");
        assert_eq!(lane.closed.retired, lane.total_created as u64, "{lane:?}");
    }
    drop(lanes);
    assert_fully_closed(db.dir.path(), &path);
    assert_eq!(
        row_count(&path, "notes"),
        1,
        "the holder's commit after the close"
    );
    assert_fully_closed(db.dir.path(), &path);
}

/// One operation of a load worker: a write through the write lane or a read through the read lane.
async fn operate(
    conn: Result<LibsqlPooledConnection, LibsqlError>,
    write: bool,
    worker: i64,
    acknowledged: &Mutex<Vec<i64>>,
    sequence: &AtomicU64,
) -> Result<(), LibsqlError> {
    let mut conn = conn?;
    if write {
        let n = sequence.fetch_add(1, SeqCst) as i64;
        conn.execute_cached("INSERT INTO events(worker, n) VALUES (?1, ?2)", (worker, n))
            .await?;
        acknowledged.lock().unwrap().push(n);
    } else {
        conn.query_row_cached("SELECT count(*) FROM events", (), |row| row.get::<i64>(0))
            .await?;
    }
    Ok(())
}

#[test]
fn shutdown_in_the_middle_of_a_load_loses_no_acknowledged_write() {
    let runtime = runtime();
    let db = TempDb::new();
    let path = db.path();
    let lanes = lanes(&path, 2, &runtime);
    block_on(async {
        lanes
            .write_blocking()?
            .execute_schema("CREATE TABLE events(worker INTEGER, n INTEGER UNIQUE)")
            .await
    })
    .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let sequence = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    // (started, ended) of the checkouts that ended with PoolClosed.
    let closed: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();

    let closed_at = thread::scope(|s| {
        let mut workers = Vec::new();
        for worker in 0..8i64 {
            let (lanes, acknowledged, sequence, done, closed) = (
                lanes.clone(),
                acknowledged.clone(),
                sequence.clone(),
                done.clone(),
                closed.clone(),
            );
            let work = async move {
                loop {
                    let write = fastrand::u8(0..10) < 4;
                    let started = Instant::now();
                    let conn = match (write, worker % 2 == 0) {
                        (true, true) => lanes.write_blocking(),
                        (false, true) => lanes.read_blocking(),
                        (true, false) => lanes.write().await,
                        (false, false) => lanes.read().await,
                    };
                    match operate(conn, write, worker, &acknowledged, &sequence).await {
                        Ok(()) => drop(done.fetch_add(1, SeqCst)),
                        Err(error) if is_closed(&error) => {
                            closed.lock().unwrap().push((started, Instant::now()));
                            return;
                        }
                        Err(error) => panic!("worker {worker}: {error}"),
                    }
                }
            };
            // Even workers are threads, odd ones tokio tasks.
            if worker % 2 == 0 {
                workers.push(s.spawn(move || block_on(work)));
            } else {
                let task = runtime.spawn(work);
                workers.push(s.spawn(move || block_on(task).unwrap()));
            }
        }
        wait_until("the load is under way", || done.load(SeqCst) >= 500);
        let closed_at = Instant::now();
        lanes.close();
        let write = lanes
            .write_pool()
            .shutdown_blocking(Duration::from_secs(30));
        let read = lanes.read_pool().shutdown_blocking(Duration::from_secs(30));
        assert!(write.drained && read.drained, "{write:?} {read:?}");
        // Drained as soon as the holders' last operations are done, not at the deadline.
        assert!(
            closed_at.elapsed() < Duration::from_secs(10),
            "{:?}",
            closed_at.elapsed()
        );
        for worker in workers {
            worker.join().unwrap();
        }
        closed_at
    });

    let closed = closed.lock().unwrap();
    assert_eq!(closed.len(), 8, "every worker ended with PoolClosed");
    // Those that were waiting when the pool closed were woken by the close.
    let woken: Vec<Duration> = closed
        .iter()
        .filter(|(started, _)| *started < closed_at)
        .map(|(_, ended)| ended.saturating_duration_since(closed_at))
        .collect();
    if let Some(slowest) = woken.iter().max() {
        assert!(*slowest < WAKE_BOUND, "{slowest:?}");
    }
    let acknowledged = acknowledged.lock().unwrap().len();
    eprintln!(
        "shutdown under load: {} operations, {acknowledged} acknowledged writes; {} of 8 workers were \
         waiting at the close and failed at most {:.3} ms after it",
        done.load(SeqCst),
        woken.len(),
        woken.iter().max().map_or(0.0, |d| ms(*d)),
    );
    drop(lanes);
    drop(runtime);
    assert_fully_closed(db.dir.path(), &path);
    assert_eq!(
        row_count(&path, "events"),
        acknowledged as i64,
        "every acknowledged write, and only those"
    );
}

#[test]
fn dropping_a_storage_closes_every_connection() {
    // On tokio, with a batch big enough to run on the blocking pool.
    let db = TempDb::new();
    let runtime = runtime();
    runtime.block_on(async {
        let storage = TursoStorage::new(&db.url, "").await.unwrap();
        storage.initialize_schema().await.unwrap();
        let batch: Vec<_> = (0..TursoStorage::<Tokio>::OFFLOAD_BATCH_SIZE as i64)
            .map(|i| full_episode(i, TaskType::Testing, context("web", None)))
            .collect();
        storage.store_episodes(&batch).await.unwrap();
        let resilient = ResilientStorage::new(storage.clone());
        resilient.store_episode(&batch[0]).await.unwrap();
        let clone = storage.clone();
        let listed = clone
            .query_episodes(&EpisodeQuery::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), batch.len());
        assert!(!journal_files(&db.path()).is_empty(), "the WAL is in use");
        drop((storage, resilient, clone));
        assert_fully_closed(db.dir.path(), &db.path());
    });
    drop(runtime);

    // Blocking, on the storage's own file.
    let db = TempDb::new();
    let storage = storage_support::blocking_storage(&db.url);
    block_on(storage.store_episode(&full_episode(0, TaskType::Testing, context("a", None))))
        .unwrap();
    drop(storage);
    assert_fully_closed(db.dir.path(), &db.path());

    // Over a caller's libsql::Database (the storage keeps a connection of its own for it).
    let storage = block_on(async {
        let database = libsql::Builder::new_local(db.path()).build().await.unwrap();
        TursoStorageBuilder::from_database(database)
            .runtime(Blocking)
            .build()
            .await
            .unwrap()
    });
    let episodes = block_on(storage.query_episodes(&EpisodeQuery::default())).unwrap();
    assert_eq!(episodes.len(), 1);
    drop(storage);
    assert_fully_closed(db.dir.path(), &db.path());
}
