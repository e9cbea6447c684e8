//! Panic safety on libSQL: a holder that panics inside a transaction, in the middle of a cached
//! statement loop or of a cached query's rows, or inside a hook, never poisons the pool, and the next
//! holder gets a clean connection: outside any transaction, with a usable statement cache, and with
//! no statement left half way through its rows (which would pin a read snapshot and hold back WAL
//! checkpoints).
//!
//! Each lane here has one connection, so the next holder gets the very connection the panic left.
#![cfg(all(feature = "libsql", feature = "tokio"))]

mod storage_support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Once};
use std::thread;

use futures_lite::future::block_on;
use memory_storage_turso::libsql::{
    ConnectionSetup, LanedPool, LibsqlDatabase, LibsqlError, LibsqlManager, LibsqlPool,
    LibsqlPooledConnection,
};
use memory_storage_turso::pool::{HookError, Pool, PoolConfig, PoolError};
use memory_storage_turso::rt::Tokio;
use storage_support::TempDb;

const PANIC: &str = "a deliberate panic";

/// Keeps the deliberate panics out of the test output; other panics are reported as usual.
fn quiet_deliberate_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
            if !text.is_some_and(|text| text.starts_with(PANIC)) {
                default(info);
            }
        }));
    });
}

/// Runs `holder` on a thread of its own, which must panic.
fn panics_on_a_thread(holder: impl FnOnce() + Send) {
    let outcome = thread::scope(|s| s.spawn(holder).join());
    assert!(outcome.is_err(), "the holder was meant to panic");
}

/// Lanes of one connection each over a WAL file: a `numbers` table of 1..=100 and an empty `log`.
fn lanes(db: &TempDb, runtime: &tokio::runtime::Runtime) -> LanedPool {
    let database = LibsqlDatabase::open_file(db.path()).unwrap();
    let lanes = LanedPool::builder(database)
        .readers(1)
        .runtime(Tokio::from_handle(runtime.handle().clone()))
        .build()
        .unwrap();
    block_on(async {
        lanes
            .write_blocking()?
            .execute_schema(
                "CREATE TABLE numbers(n INTEGER PRIMARY KEY); CREATE TABLE log(n INTEGER);
                 WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100)
                 INSERT INTO numbers SELECT n FROM c;",
            )
            .await
    })
    .unwrap();
    lanes
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap()
}

const INSERT: &str = "INSERT INTO log(n) VALUES (?1)";
const SELECT: &str = "SELECT n FROM numbers ORDER BY n";

/// Every value of the cached `SELECT`, read from the start.
async fn all_numbers(conn: &mut LibsqlPooledConnection) -> Result<Vec<i64>, LibsqlError> {
    let mut rows = conn.query_cached(SELECT, ()).await?;
    let mut numbers = Vec::new();
    while let Some(row) = rows.next().await? {
        numbers.push(row.get::<i64>(0)?);
    }
    Ok(numbers)
}

/// Whether a checkpoint can copy the whole WAL back now: not if a reader pins an old snapshot.
fn checkpoint_completes(db: &TempDb) -> bool {
    let database = LibsqlDatabase::open_file(db.path()).unwrap();
    let conn = database.connect().unwrap();
    block_on(async {
        let mut rows = conn.query("PRAGMA wal_checkpoint(TRUNCATE)", ()).await?;
        let row = rows.next().await?.unwrap();
        Ok::<_, libsql::Error>(row.get::<i64>(0)? == 0)
    })
    .unwrap()
}

fn log_count(conn: &LibsqlPooledConnection) -> i64 {
    block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM log", ()).await?;
        rows.next().await?.unwrap().get::<i64>(0)
    })
    .unwrap()
}

/// The pool is not poisoned: nothing held, nobody waiting, and the counts add up.
fn assert_not_poisoned(pool: &LibsqlPool) {
    let state = pool.state();
    assert_eq!(
        (state.in_use, state.connecting, state.waiting),
        (0, 0, 0),
        "{state}"
    );
    assert!(state.size <= state.max_size, "{state}");
}

#[test]
fn a_panic_inside_a_transaction_and_a_cached_statement_loop_leaves_a_clean_writer() {
    quiet_deliberate_panics();
    let runtime = runtime();
    let db = TempDb::new();
    let lanes = lanes(&db, &runtime);

    // In a BEGIN IMMEDIATE transaction, half way through a loop of a cached INSERT.
    panics_on_a_thread(|| {
        let mut writer = lanes.write_blocking().unwrap();
        block_on(async {
            let _tx = writer.transaction().await.unwrap();
            let mut insert = writer.prepare_cached(INSERT).await.unwrap();
            for n in 0..10 {
                insert.execute([n]).await.unwrap();
                if n == 5 {
                    panic!("{PANIC} in a cached statement loop inside a transaction");
                }
            }
        });
    });
    // In a savepoint opened by hand inside a transaction opened by hand.
    panics_on_a_thread(|| {
        let mut writer = lanes.write_blocking().unwrap();
        block_on(async {
            writer.execute_cached("BEGIN IMMEDIATE", ()).await.unwrap();
            writer.execute_cached(INSERT, [100]).await.unwrap();
            writer.execute_cached("SAVEPOINT inner", ()).await.unwrap();
            writer.execute_cached(INSERT, [101]).await.unwrap();
        });
        panic!("{PANIC} inside a savepoint");
    });
    // In an async task, between two statements of a transaction.
    let task = runtime.spawn({
        let lanes = lanes.clone();
        async move {
            let mut writer = lanes.write().await.unwrap();
            writer.execute_cached("BEGIN", ()).await.unwrap();
            writer.execute_cached(INSERT, [200]).await.unwrap();
            tokio::task::yield_now().await;
            panic!("{PANIC} in a tokio task inside a transaction");
        }
    });
    assert!(runtime.block_on(task).unwrap_err().is_panic());

    assert_not_poisoned(lanes.write_pool());
    let mut writer = lanes.write_blocking().unwrap();
    assert!(
        writer.is_autocommit(),
        "the next holder is outside any transaction"
    );
    assert_eq!(
        log_count(&writer),
        0,
        "every write of the panicking holders was rolled back"
    );
    // The cached INSERT is usable: it binds the new value and runs once, from the start.
    let before = writer.statement_cache_stats();
    assert_eq!(block_on(writer.execute_cached(INSERT, [7])).unwrap(), 1);
    assert_eq!(writer.statement_cache_stats().hits, before.hits + 1);
    assert_eq!(log_count(&writer), 1);
    // The write lock is free: another connection can take it at once (busy timeout 0).
    let other = LibsqlDatabase::open_file(db.path())
        .unwrap()
        .connect()
        .unwrap();
    block_on(other.execute("BEGIN IMMEDIATE", ())).unwrap();
    block_on(other.execute("ROLLBACK", ())).unwrap();
    drop(writer);
    let stats = lanes.statistics().write;
    assert_eq!(
        stats.total_created, 1,
        "rolled back and reused, not replaced: {stats:?}"
    );
}

#[test]
fn a_panic_in_the_middle_of_cached_rows_leaves_no_stale_cursor() {
    quiet_deliberate_panics();
    let runtime = runtime();
    let db = TempDb::new();
    let lanes = lanes(&db, &runtime);
    // Something in the WAL for the checkpoints below to copy back.
    block_on(lanes.write_blocking().unwrap().execute_cached(INSERT, [1])).unwrap();

    // Three rows into a cached query, on a thread.
    panics_on_a_thread(|| {
        let mut reader = lanes.read_blocking().unwrap();
        block_on(async {
            let mut rows = reader.query_cached(SELECT, ()).await.unwrap();
            for _ in 0..3 {
                rows.next().await.unwrap().unwrap();
            }
            panic!("{PANIC} in the middle of cached rows");
        });
    });
    assert!(checkpoint_completes(&db), "no reader pins a snapshot");
    // Inside the closure that reads the row of query_row_cached.
    panics_on_a_thread(|| {
        let mut reader = lanes.read_blocking().unwrap();
        let _ = block_on(
            reader.query_row_cached(SELECT, (), |_row| -> libsql::Result<()> {
                panic!("{PANIC} while reading a row");
            }),
        );
    });
    // In an async task, with the rows alive across an await.
    let task = runtime.spawn({
        let lanes = lanes.clone();
        async move {
            let mut reader = lanes.read().await.unwrap();
            let mut rows = reader.query_cached(SELECT, ()).await.unwrap();
            rows.next().await.unwrap().unwrap();
            tokio::task::yield_now().await;
            rows.next().await.unwrap().unwrap();
            panic!("{PANIC} in a tokio task in the middle of cached rows");
        }
    });
    assert!(runtime.block_on(task).unwrap_err().is_panic());

    assert_not_poisoned(lanes.read_pool());
    assert!(checkpoint_completes(&db), "no reader pins a snapshot");
    let mut reader = lanes.read_blocking().unwrap();
    assert!(reader.is_autocommit());
    let before = reader.statement_cache_stats();
    // The same cached query starts from its first row again and reads them all.
    let numbers = block_on(all_numbers(&mut reader)).unwrap();
    assert_eq!(numbers, (1..=100).collect::<Vec<i64>>());
    let after = reader.statement_cache_stats();
    assert_eq!((after.hits, after.clears), (before.hits + 1, before.clears));
    drop(reader);
    let stats = lanes.statistics().read;
    assert_eq!(stats.total_created, 1, "reset and reused: {stats:?}");
}

/// Which hook panics next: 0 none, then one per hook.
#[derive(Clone, Copy, PartialEq)]
enum Panicking {
    None = 0,
    AfterConnect = 1,
    OnCheckout = 2,
    OnReturn = 3,
    InitHook = 4,
}

/// A pool of one connection whose hooks open a transaction and then panic when `which` says so.
fn pool_with_panicking_hooks(db: &TempDb, which: &Arc<AtomicU8>) -> LibsqlPool {
    let database = LibsqlDatabase::open_file(db.path()).unwrap();
    let begin_then_panic = |which: Arc<AtomicU8>, hook: Panicking| {
        move |conn: &mut memory_storage_turso::libsql::LibsqlConnection| -> Result<(), HookError> {
            if which.load(SeqCst) == hook as u8 {
                block_on(conn.execute("BEGIN IMMEDIATE", ()))?;
                panic!("{PANIC} in a hook inside a transaction");
            }
            Ok(())
        }
    };
    let init = which.clone();
    let setup = ConnectionSetup::default().init_hook(move |conn| {
        if init.load(SeqCst) == Panicking::InitHook as u8 {
            block_on(conn.execute("BEGIN IMMEDIATE", ()))?;
            panic!("{PANIC} in the init hook inside a transaction");
        }
        Ok(())
    });
    let config = PoolConfig::builder().max_connections(1).build().unwrap();
    Pool::builder(LibsqlManager::new(database).setup(setup))
        .config(config)
        .after_connect(begin_then_panic(which.clone(), Panicking::AfterConnect))
        .on_checkout(begin_then_panic(which.clone(), Panicking::OnCheckout))
        .on_return(begin_then_panic(which.clone(), Panicking::OnReturn))
        .build()
        .unwrap()
}

#[test]
fn a_panic_inside_a_hook_fails_that_checkout_only_and_the_next_connection_is_clean() {
    quiet_deliberate_panics();
    let db = TempDb::new();
    let which = Arc::new(AtomicU8::new(Panicking::None as u8));
    let pool = pool_with_panicking_hooks(&db, &which);
    block_on(
        pool.get_blocking()
            .unwrap()
            .execute_schema("CREATE TABLE log(n INTEGER)"),
    )
    .unwrap();
    let closed_before = |pool: &LibsqlPool| pool.statistics().closed.broken;

    for hook in [
        Panicking::OnCheckout,
        Panicking::OnReturn,
        Panicking::AfterConnect,
        Panicking::InitHook,
    ] {
        which.store(hook as u8, SeqCst);
        if matches!(hook, Panicking::AfterConnect | Panicking::InitHook) {
            // Only a new connection runs these: retire the one there is.
            pool.get_blocking().unwrap().mark_broken();
        }
        let broken_before_checkout = closed_before(&pool);
        let checkout = catch_unwind(AssertUnwindSafe(|| pool.get_blocking()));
        let result = checkout.unwrap_or_else(|_| {
            panic!(
                "a panic in the {} hook unwound through the pool",
                hook.name()
            )
        });
        match hook {
            Panicking::OnReturn => {
                // The checkout works; the panic comes as the connection goes back.
                let conn = result.unwrap();
                block_on(conn.execute("INSERT INTO log(n) VALUES (1)", ())).unwrap();
                drop(conn);
            }
            Panicking::InitHook => {
                let error = result.unwrap_err();
                let PoolError::Connect(LibsqlError::Setup { step, source }) = &error else {
                    panic!("expected a setup error, got {error}")
                };
                assert_eq!(*step, "the init hook");
                assert!(source.to_string().contains(PANIC), "{error}");
            }
            _ => {
                let error = result.unwrap_err();
                assert!(matches!(error, PoolError::Hook(_)), "{error}");
                assert!(error.to_string().contains(PANIC), "{error}");
            }
        }
        which.store(Panicking::None as u8, SeqCst);
        assert_not_poisoned(&pool);
        assert!(
            closed_before(&pool) > broken_before_checkout || hook == Panicking::InitHook,
            "the {} hook's connection was closed, not pooled",
            hook.name()
        );
        let conn = pool.get_blocking().unwrap();
        assert!(
            conn.is_autocommit(),
            "after the {} hook panicked, the next holder is outside any transaction",
            hook.name()
        );
        // The file's write lock is free too.
        block_on(conn.execute("INSERT INTO log(n) VALUES (2)", ())).unwrap();
    }
    let conn = pool.get_blocking().unwrap();
    let logged = block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM log", ()).await?;
        rows.next().await?.unwrap().get::<i64>(0)
    })
    .unwrap();
    assert_eq!(logged, 5, "one write per holder, none lost or doubled");
}

impl Panicking {
    fn name(self) -> &'static str {
        match self {
            Panicking::None => "no",
            Panicking::AfterConnect => "after_connect",
            Panicking::OnCheckout => "on_checkout",
            Panicking::OnReturn => "on_return",
            Panicking::InitHook => "init",
        }
    }
}
