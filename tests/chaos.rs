//! Chaos: faults, panics, cancellations, resize and shutdown, with OS threads, tokio tasks and smol tasks
//! on one pool, and the pool's invariants checked after every phase.
//!
//! CI runs a bounded version. `CHAOS_OPS=1000000 CHAOS_USERS=64 cargo test --release --test chaos` runs the
//! long one (the README's testing section has the command).
#![cfg(all(feature = "tokio", feature = "smol"))]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{TestConn, TestManager};
use futures_lite::FutureExt;
use memory_storage_turso::pool::{Pool, PoolConfig, PoolError};
use memory_storage_turso::rt::Tokio;

/// What the users saw, to be checked against the pool and the manager.
#[derive(Default)]
struct Outcomes {
    ok: AtomicU64,
    connect_errors: AtomicU64,
    timeouts: AtomicU64,
    closed: AtomicU64,
    cancelled: AtomicU64,
    panics: AtomicU64,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn roll(permille: u32) -> bool {
    fastrand::u32(0..1000) < permille
}

/// Uses a checked-out connection: sometimes breaks it, sometimes panics while holding it.
fn use_connection(
    mut conn: memory_storage_turso::pool::PooledConnection<TestManager>,
    outcomes: &Outcomes,
) {
    outcomes.ok.fetch_add(1, SeqCst);
    conn.uses += 1;
    if roll(20) {
        conn.broken = true;
    }
    if roll(10) {
        let panicked = catch_unwind(AssertUnwindSafe(move || {
            let _held = conn;
            panic!("a holder panics");
        }));
        assert!(panicked.is_err());
        outcomes.panics.fetch_add(1, SeqCst);
    }
}

fn record(
    result: Result<(), PoolError<common::Injected>>,
    outcomes: &Outcomes,
    closing: &AtomicBool,
) {
    match result {
        Ok(()) => {}
        Err(PoolError::Connect(_)) => drop(outcomes.connect_errors.fetch_add(1, SeqCst)),
        Err(PoolError::Timeout(_)) => drop(outcomes.timeouts.fetch_add(1, SeqCst)),
        Err(PoolError::Closed) => {
            assert!(closing.load(SeqCst), "PoolClosed before shutdown");
            outcomes.closed.fetch_add(1, SeqCst);
        }
        Err(other) => panic!("unexpected checkout error: {other}"),
    }
}

/// An async checkout that 5 % of the time is abandoned after a random number of polls.
async fn async_op(pool: &Pool<TestManager>, outcomes: &Outcomes, closing: &AtomicBool) {
    let get = async { Some(pool.get().await) };
    let result = if roll(50) {
        let polls = fastrand::usize(0..4);
        let cancel = async move {
            for _ in 0..polls {
                futures_lite::future::yield_now().await;
            }
            None
        };
        get.or(cancel).await
    } else {
        get.await
    };
    match result {
        None => drop(outcomes.cancelled.fetch_add(1, SeqCst)),
        Some(result) => record(
            result.map(|conn| use_connection(conn, outcomes)),
            outcomes,
            closing,
        ),
    }
}

/// Runs `ops` operations split over `users` callers (a third threads, a third tokio tasks, a third smol
/// tasks), while `control` runs alongside.
fn run_phase(
    pool: &Pool<TestManager>,
    runtime: &tokio::runtime::Runtime,
    users: u64,
    ops: u64,
    outcomes: &Arc<Outcomes>,
    closing: &Arc<AtomicBool>,
    control: impl FnOnce() + Send,
) {
    let per_user = ops / users;
    thread::scope(|s| {
        let mut tokio_tasks = Vec::new();
        let mut smol_tasks = Vec::new();
        let smol_executor = Arc::new(smol::Executor::new());
        for user in 0..users {
            let (pool, outcomes, closing) = (pool.clone(), outcomes.clone(), closing.clone());
            match user % 3 {
                0 => {
                    s.spawn(move || {
                        for _ in 0..per_user {
                            let result = pool
                                .get_blocking_timeout(Duration::from_millis(50))
                                .map(|conn| use_connection(conn, &outcomes));
                            record(result, &outcomes, &closing);
                        }
                    });
                }
                1 => tokio_tasks.push(runtime.spawn(async move {
                    for _ in 0..per_user {
                        async_op(&pool, &outcomes, &closing).await;
                    }
                })),
                _ => smol_tasks.push(smol_executor.spawn(async move {
                    for _ in 0..per_user {
                        async_op(&pool, &outcomes, &closing).await;
                    }
                })),
            }
        }
        let executor = smol_executor.clone();
        s.spawn(move || {
            smol::block_on(executor.run(async {
                for task in smol_tasks {
                    task.await;
                }
            }))
        });
        s.spawn(control);
        for task in tokio_tasks {
            runtime.block_on(task).unwrap();
        }
    });
}

/// The invariants once every user has finished.
fn assert_quiescent(pool: &Pool<TestManager>, manager: &TestManager) {
    let state = pool.state();
    assert_eq!(
        (state.in_use, state.connecting, state.waiting),
        (0, 0, 0),
        "{state}"
    );
    assert_eq!(state.size, state.idle, "{state}");
    assert!(state.size <= state.max_size, "{state}");
    assert_eq!(
        manager.live() as usize,
        state.size,
        "the pool's size matches the live connections"
    );
    assert!(
        manager.seen.held.lock().unwrap().is_empty(),
        "a connection is still marked held"
    );
    let stats = pool.statistics();
    let seen = &manager.seen;
    assert_eq!(stats.total_created as u64, seen.connects.load(SeqCst));
    assert_eq!(stats.connect_failures, seen.connect_failures.load(SeqCst));
    assert_eq!(stats.closed.total(), seen.closes.load(SeqCst));
    assert!(
        (stats.total_health_checks_passed + stats.total_health_checks_failed) as u64
            <= seen.validations.load(SeqCst)
    );
}

/// Keeps the expected holder panics out of the output; other panics are reported as usual.
fn quiet_holder_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"a holder panics") {
            default(info);
        }
    }));
}

#[test]
fn chaos() {
    quiet_holder_panics();
    let ops = env("CHAOS_OPS", 30_000);
    let users = env("CHAOS_USERS", 24).max(3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let manager = TestManager::default();
    manager.faults.connect_failure_permille.store(200, SeqCst);
    manager
        .faults
        .validation_failure_permille
        .store(100, SeqCst);
    manager.faults.max_delay_micros.store(200, SeqCst);
    let config = PoolConfig::builder()
        .max_connections(6)
        .health_check_bypass(Duration::from_micros(50))
        .connection_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let pool = Pool::builder(manager.clone())
        .config(config)
        .runtime(Tokio::from_handle(runtime.handle().clone()))
        .on_checkout(|c: &mut TestConn| {
            c.enter();
            Ok(())
        })
        .on_return(|c: &mut TestConn| {
            c.leave();
            Ok(())
        })
        .build()
        .unwrap();
    let outcomes = Arc::new(Outcomes::default());
    let closing = Arc::new(AtomicBool::new(false));

    // Phase 1: faults only.
    run_phase(&pool, &runtime, users, ops / 3, &outcomes, &closing, || {});
    assert_quiescent(&pool, &manager);

    // Phase 2: the pool shrinks and grows while in use.
    let resizer = pool.clone();
    run_phase(
        &pool,
        &runtime,
        users,
        ops / 3,
        &outcomes,
        &closing,
        move || {
            for max in [2, 1, 8, 3, 6] {
                thread::sleep(Duration::from_millis(5)); // spread the resizes over the phase
                resizer.resize(max).unwrap();
            }
        },
    );
    assert_quiescent(&pool, &manager);

    // Phase 3: shutdown in the middle of the run.
    let (closer, flag) = (pool.clone(), closing.clone());
    run_phase(
        &pool,
        &runtime,
        users,
        ops / 3,
        &outcomes,
        &closing,
        move || {
            thread::sleep(Duration::from_millis(10)); // let the phase get going
            flag.store(true, SeqCst);
            closer.shutdown_blocking(Duration::from_secs(10));
        },
    );
    assert_quiescent(&pool, &manager);
    assert!(pool.is_closed());
    assert_eq!(pool.state().size, 0);
    assert_eq!(
        manager.live(),
        0,
        "every connection is closed after shutdown"
    );

    let o = &outcomes;
    let total = o.ok.load(SeqCst)
        + o.connect_errors.load(SeqCst)
        + o.timeouts.load(SeqCst)
        + o.closed.load(SeqCst)
        + o.cancelled.load(SeqCst);
    assert_eq!(
        total,
        (ops / 3 / users) * users * 3,
        "every operation was accounted for"
    );
    assert!(
        o.ok.load(SeqCst) > 0 && o.connect_errors.load(SeqCst) > 0 && o.panics.load(SeqCst) > 0
    );
    assert_eq!(pool.statistics().total_checkouts as u64, o.ok.load(SeqCst));
    eprintln!(
        "chaos: {total} ops, {} ok, {} connect errors, {} timeouts, {} closed, {} cancelled, {} panics; {:?}",
        o.ok.load(SeqCst),
        o.connect_errors.load(SeqCst),
        o.timeouts.load(SeqCst),
        o.closed.load(SeqCst),
        o.cancelled.load(SeqCst),
        o.panics.load(SeqCst),
        pool.statistics()
    );
}
