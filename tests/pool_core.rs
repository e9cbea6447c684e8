//! Behaviour of the generic pool core with a fault-injecting test manager.
#![cfg(all(feature = "tokio", feature = "smol"))]

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_consistent, TestConn, TestManager};
use memory_storage_turso::pool::{
    ConfigError, Manager, Pool, PoolBuilder, PoolConfig, PoolError, ReuseOrder,
};

fn config(max: usize) -> PoolConfig {
    PoolConfig::builder().max_connections(max).build().unwrap()
}

fn builder(manager: &TestManager, config: PoolConfig) -> PoolBuilder<TestManager> {
    Pool::builder(manager.clone())
        .config(config)
        .on_checkout(|c: &mut TestConn| {
            c.enter();
            Ok(())
        })
        .on_return(|c: &mut TestConn| {
            c.leave();
            Ok(())
        })
}

fn pool(manager: &TestManager, max: usize) -> Pool<TestManager> {
    builder(manager, config(max)).build().unwrap()
}

/// Spins (without sleeping) until `condition` holds, failing after 10 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

#[test]
fn connections_are_reused() {
    let manager = TestManager::default();
    let pool = pool(&manager, 4);
    let mut first_id = None;
    for _ in 0..100 {
        let conn = pool.get_blocking().unwrap();
        assert_eq!(*first_id.get_or_insert(conn.id), conn.id);
    }
    let stats = pool.statistics();
    assert_eq!(stats.total_created, 1);
    assert_eq!(stats.total_checkouts, 100);
    assert_eq!(manager.seen.connects.load(SeqCst), 1);
    assert_eq!(stats.idle_connections, 1);
    assert_eq!(stats.active_connections, 0);
}

#[test]
fn reuse_order_lifo_and_fifo() {
    for (order, expected_first) in [(ReuseOrder::Lifo, 1), (ReuseOrder::Fifo, 0)] {
        let manager = TestManager::default();
        let config = PoolConfig::builder()
            .max_connections(2)
            .reuse_order(order)
            .build()
            .unwrap();
        let pool = builder(&manager, config).build().unwrap();
        let a = pool.get_blocking().unwrap();
        let b = pool.get_blocking().unwrap();
        assert_eq!((a.id, b.id), (0, 1));
        drop(a); // returned first
        drop(b); // returned last
        assert_eq!(pool.get_blocking().unwrap().id, expected_first, "{order:?}");
    }
}

#[test]
fn a_connection_returned_while_nobody_waits_is_reused_by_its_thread_and_by_others() {
    // It rests on its thread's shelf: the gauges count it idle, the same thread takes it back, and a
    // thread with another shelf finds it there instead of opening a second connection.
    let manager = TestManager::default();
    let pool = pool(&manager, 4);
    let first = pool.get_blocking().unwrap().id;
    let stats = pool.statistics();
    assert_eq!((stats.idle_connections, stats.active_connections), (1, 0));
    assert_eq!(pool.get_blocking().unwrap().id, first);
    for _ in 0..8 {
        let id = thread::scope(|s| s.spawn(|| pool.get_blocking().unwrap().id).join().unwrap());
        assert_eq!(id, first, "another thread reuses the returned connection");
        let id = pool.try_get().unwrap().expect("a free connection").id;
        assert_eq!(id, first);
    }
    assert_eq!(manager.seen.connects.load(SeqCst), 1);
    assert_eq!(pool.statistics().idle_connections, 1);
    drop(pool);
    assert_eq!(
        manager.seen.closes.load(SeqCst),
        1,
        "closing the pool empties the shelves"
    );
}

#[test]
fn building_with_a_bad_config_names_the_field() {
    let bad = PoolConfig {
        max_connections: 0,
        ..PoolConfig::default()
    };
    let error = Pool::builder(TestManager::default())
        .config(bad)
        .build()
        .unwrap_err();
    assert_eq!(error, ConfigError::ZeroMaxConnections);
    let bad = PoolConfig {
        min_idle: 11,
        ..PoolConfig::default()
    };
    let error = Pool::builder(TestManager::default())
        .config(bad)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "min_idle");
}

#[test]
fn blocking_timeout_reports_state_and_last_error() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    manager.faults.fail_connects.store(1, SeqCst);
    assert!(matches!(pool.get_blocking(), Err(PoolError::Connect(_))));
    let held = pool.get_blocking().unwrap();
    let started = Instant::now();
    let error = pool
        .get_blocking_timeout(Duration::from_millis(30))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(30));
    let PoolError::Timeout(timeout) = &error else {
        panic!("expected a timeout, got {error}")
    };
    assert_eq!(timeout.state.size, 1);
    assert_eq!(timeout.state.in_use, 1);
    assert_eq!(timeout.state.idle, 0);
    assert_eq!(
        timeout.state.waiting, 0,
        "the timed-out waiter left the queue"
    );
    assert!(timeout.waited >= Duration::from_millis(30));
    assert_eq!(
        timeout.last_error.as_deref(),
        Some("injected failure: connect")
    );
    let message = error.to_string();
    assert!(
        message.contains("size 1/1") && message.contains("injected failure"),
        "{message}"
    );
    drop(held);
    let stats = pool.statistics();
    assert_eq!((stats.timeouts, stats.connect_failures), (1, 1));
    assert_eq!(pool.available_connections(), 1);
}

#[test]
fn tokio_timeout() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let manager = TestManager::default();
        let pool = builder(&manager, config(1))
            .runtime(memory_storage_turso::rt::Tokio::current())
            .build()
            .unwrap();
        let held = pool.get().await.unwrap();
        let error = pool
            .get_timeout(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(pool.state().waiting, 0);
        drop(held);
        assert!(pool.get().await.is_ok());
    });
}

#[test]
fn smol_timeout() {
    smol::block_on(async {
        let manager = TestManager::default();
        let pool = builder(&manager, config(1))
            .runtime(memory_storage_turso::rt::Smol)
            .build()
            .unwrap();
        let held = pool.get().await.unwrap();
        let error = pool
            .get_timeout(Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(pool.state().waiting, 0);
        drop(held);
        assert!(pool.get().await.is_ok());
    });
}

#[test]
fn async_get_without_a_runtime_is_a_configuration_error() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let error = futures_lite::future::block_on(pool.get()).unwrap_err();
    assert!(matches!(error, PoolError::NoRuntime));
    assert!(error.to_string().contains("runtime adapter"), "{error}");
    assert_eq!(pool.statistics().size, 0, "nothing was taken");
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.get_blocking().unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for index in 0..8 {
        let (shared_pool, served) = (pool.clone(), served.clone());
        threads.push(thread::spawn(move || {
            let conn = shared_pool.get_blocking().unwrap();
            served.lock().unwrap().push(index);
            drop(conn);
        }));
        wait_until("the waiter is queued", || pool.state().waiting == index + 1);
    }
    drop(held);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(*served.lock().unwrap(), (0..8).collect::<Vec<_>>());
}

#[test]
fn a_late_caller_cannot_take_a_connection_handed_to_a_waiter() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.get_blocking().unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || {
            let conn = pool.get_blocking().unwrap();
            released.recv().unwrap(); // hold it until the late caller has tried
            conn.id
        })
    };
    wait_until("the waiter is queued", || pool.state().waiting == 1);
    drop(held);
    // The connection now belongs to the waiter, whether or not it has woken up yet.
    assert!(pool.try_get().unwrap().is_none());
    assert_eq!(pool.available_connections(), 0);
    release.send(()).unwrap();
    assert_eq!(waiter.join().unwrap(), 0);
}

/// Counts its wake-ups.
#[derive(Default)]
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_waiter_polled_again_with_another_waker_is_woken_through_the_new_one() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    fn poll<F: Future>(get: &mut Pin<Box<F>>, waker: &Arc<CountingWaker>) -> Poll<F::Output> {
        let waker = Waker::from(waker.clone());
        get.as_mut().poll(&mut Context::from_waker(&waker))
    }

    let manager = TestManager::default();
    let pool = builder(&manager, config(1))
        .runtime(memory_storage_turso::rt::Smol)
        .build()
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let (first, second) = (
        Arc::new(CountingWaker::default()),
        Arc::new(CountingWaker::default()),
    );
    // Queued with the first waker, then moved (as a `select!` or another executor would) and polled
    // with the second.
    let mut get = Box::pin(pool.get());
    assert!(poll(&mut get, &first).is_pending());
    assert!(poll(&mut get, &second).is_pending());
    drop(held);
    assert_eq!(second.0.load(SeqCst), 1, "the grant wakes the latest waker");
    assert_eq!(first.0.load(SeqCst), 0);
    let Poll::Ready(Ok(conn)) = poll(&mut get, &second) else {
        panic!("the grant is there to pick up")
    };
    assert_eq!(conn.id, 0);
}

#[test]
fn try_get_never_waits() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.try_get().unwrap().expect("an empty pool has room");
    assert!(pool.try_get().unwrap().is_none());
    drop(held);
    assert!(pool.try_get().unwrap().is_some());
}

#[test]
fn a_panicking_holder_returns_a_reset_connection() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let result = thread::scope(|s| {
        s.spawn(|| {
            let mut conn = pool.get_blocking().unwrap();
            conn.dirty = true;
            panic!("holder panics with a dirty connection");
        })
        .join()
    });
    assert!(result.is_err());
    assert_eq!(manager.seen.resets.load(SeqCst), 1);
    let conn = pool.get_blocking().unwrap();
    assert!(!conn.dirty, "the reset ran while the holder was panicking");
    drop(conn);
    assert_consistent(&pool);
}

#[test]
fn broken_or_unresettable_connections_are_closed_not_reused() {
    let manager = TestManager::default();
    let pool = pool(&manager, 2);
    let mut conn = pool.get_blocking().unwrap();
    conn.broken = true;
    drop(conn);
    manager.faults.fail_reset.store(true, SeqCst);
    drop(pool.get_blocking().unwrap());
    manager.faults.fail_reset.store(false, SeqCst);
    let stats = pool.statistics();
    assert_eq!(stats.closed.broken, 2);
    assert_eq!(stats.size, 0);
    assert_eq!(manager.live(), 0);
    assert_eq!(pool.get_blocking().unwrap().id, 2, "a fresh connection");
}

#[test]
fn detach_frees_the_slot_for_a_waiter() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.get_blocking().unwrap();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || pool.get_blocking().map(|c| c.id))
    };
    wait_until("the waiter is queued", || pool.state().waiting == 1);
    let mut raw = held.detach();
    raw.leave();
    assert_eq!(
        waiter.join().unwrap().unwrap(),
        1,
        "the waiter opened a new connection"
    );
    assert_eq!(raw.id, 0);
    assert_eq!(pool.statistics().total_created, 2);
}

#[test]
fn health_checks_run_only_outside_the_bypass_window() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    for _ in 0..10 {
        drop(pool.get_blocking().unwrap());
    }
    assert_eq!(
        manager.seen.validations.load(SeqCst),
        0,
        "used within 500 ms"
    );

    let always = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .build()
        .unwrap();
    let manager = TestManager::default();
    let pool = builder(&manager, always).build().unwrap();
    for _ in 0..10 {
        drop(pool.get_blocking().unwrap());
    }
    let stats = pool.statistics();
    assert_eq!(
        manager.seen.validations.load(SeqCst),
        9,
        "every reuse is checked"
    );
    assert_eq!(stats.total_health_checks_passed, 9);

    manager.faults.fail_validation.store(true, SeqCst);
    let conn = pool.get_blocking().unwrap();
    assert_eq!(
        conn.id, 1,
        "the connection that failed its check was replaced"
    );
    drop(conn);
    let stats = pool.statistics();
    assert_eq!(stats.total_health_checks_failed, 1);
    assert_eq!(stats.closed.health_check, 1);
    assert_eq!(stats.total_created, 2);
}

#[test]
fn idle_timeout_and_max_lifetime_close_connections() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(2)
        .idle_timeout(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    drop(pool.get_blocking().unwrap());
    thread::sleep(Duration::from_millis(30)); // let the idle timeout pass
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, 1, "the idled-out connection was not handed out");
    assert_eq!(pool.statistics().closed.idle_timeout, 1);
    drop(conn);

    // A connection whose lifetime ends while it is held is never handed out again. Its return onto
    // the thread's shelf reads no clock, so the next checkout closes it; a return through the gate
    // (FIFO reuse has no shelves) closes it at once.
    for (order, closed_on_return) in [(ReuseOrder::Lifo, false), (ReuseOrder::Fifo, true)] {
        let manager = TestManager::default();
        let config = PoolConfig::builder()
            .max_connections(2)
            .max_lifetime(Some(Duration::from_millis(20)))
            .reuse_order(order)
            .build()
            .unwrap();
        let pool = builder(&manager, config).build().unwrap();
        let conn = pool.get_blocking().unwrap();
        thread::sleep(Duration::from_millis(30)); // let the lifetime pass
        drop(conn);
        let stats = pool.statistics();
        assert_eq!(
            stats.closed.max_lifetime,
            u64::from(closed_on_return),
            "{order:?}"
        );
        assert_eq!(stats.size, usize::from(!closed_on_return), "{order:?}");
        let conn = pool.get_blocking().unwrap();
        assert_eq!(
            conn.id, 1,
            "{order:?}: the expired connection was not handed out"
        );
        let stats = pool.statistics();
        assert_eq!(stats.closed.max_lifetime, 1, "{order:?}");
        assert_eq!(stats.size, 1, "{order:?}");
        assert_eq!(manager.live(), 1, "{order:?}");
    }

    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(2)
        .idle_timeout(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    drop(pool.get_blocking().unwrap());
    thread::sleep(Duration::from_millis(30)); // let the idle timeout pass
    pool.maintain_blocking();
    assert_eq!(
        pool.statistics().closed.idle_timeout,
        1,
        "reaped by maintenance"
    );
    assert_eq!(manager.live(), 0);
}

/// A returned connection rests on its thread's shelf without going through the pool's lock, where
/// idle connections are reaped; returns still reap them without a runtime adapter.
#[test]
fn returns_through_a_shelf_still_reap_idled_out_connections() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(4)
        .idle_timeout(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    let mine: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
    // Another thread returns one to its own shelf and never comes back.
    thread::scope(|s| {
        s.spawn(|| drop(pool.get_blocking().unwrap()));
    });
    drop(mine); // one on this thread's shelf, two in the idle list
                // This thread keeps using its shelved connection, past the others' idle timeout.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(60) {
        drop(pool.get_blocking().unwrap());
    }
    let stats = pool.statistics();
    assert_eq!(stats.closed.idle_timeout, 3, "{stats:?}");
    assert_eq!(stats.size, 1, "{stats:?}");
    assert_eq!(manager.live(), 1);
}

/// When every connection expires before its return is due to reap (max lifetime under a quarter of
/// the idle timeout), the closes of expired connections reap instead: a connection a departed thread
/// left on its shelf does not outlive its lifetime, with no runtime adapter.
#[test]
fn expiring_connections_reap_the_shelves_when_returns_never_do() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(4)
        .idle_timeout(Some(Duration::from_millis(400)))
        .max_lifetime(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    let mine = pool.get_blocking().unwrap();
    thread::scope(|s| {
        s.spawn(|| drop(pool.get_blocking().unwrap()));
    });
    drop(mine);
    assert_eq!(manager.live(), 2, "one on each thread's shelf");
    // This thread keeps using its own, which expires (and is replaced) again and again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.live() > 1 {
        assert!(Instant::now() < deadline, "{:?}", pool.statistics());
        drop(pool.get_blocking().unwrap());
    }
    let stats = pool.statistics();
    assert_eq!(stats.size, 1, "{stats:?}");
    assert!(stats.closed.max_lifetime >= 1, "{stats:?}");
}

#[test]
fn the_idle_timeout_spares_min_idle_at_checkout_too() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(4)
        .min_idle(1)
        .idle_timeout(Some(Duration::from_millis(10)))
        .health_check_bypass(Duration::from_millis(5))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    for _ in 0..3 {
        drop(pool.get_blocking().unwrap());
        thread::sleep(Duration::from_millis(20)); // let the idle timeout pass
    }
    let stats = pool.statistics();
    assert_eq!(stats.total_created, 1, "{stats:?}");
    assert_eq!(stats.closed.idle_timeout, 0, "{stats:?}");
    // Idle that long, it was health-checked instead.
    assert_eq!(stats.total_health_checks_passed, 2, "{stats:?}");
}

/// A connection handed straight from its holder to a waiter was in use until the hand-off: it has not
/// idled out and needs no health check, however long it was held. Its max lifetime still holds.
#[test]
fn a_connection_handed_to_a_waiter_counts_as_just_used_but_not_as_young() {
    let window = Duration::from_millis(20);
    let held_past = |config: PoolConfig| {
        let manager = TestManager::default();
        let pool = Arc::new(builder(&manager, config).build().unwrap());
        let conn = pool.get_blocking().unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || pool.get_blocking().unwrap().id)
        };
        wait_until("the waiter queued", || pool.statistics().waiting == 1);
        thread::sleep(window + Duration::from_millis(10)); // hold past the window
        drop(conn);
        let id = waiter.join().unwrap();
        (manager, pool, id)
    };

    let config = PoolConfig::builder()
        .max_connections(1)
        .idle_timeout(Some(window))
        .health_check_bypass(window)
        .build()
        .unwrap();
    let (manager, pool, id) = held_past(config);
    assert_eq!(id, 0, "the waiter got the connection that was handed to it");
    assert_eq!(pool.statistics().closed.total(), 0);
    assert_eq!(
        manager.seen.validations.load(SeqCst),
        0,
        "used until just now"
    );

    let config = PoolConfig::builder()
        .max_connections(1)
        .max_lifetime(Some(window))
        .build()
        .unwrap();
    let (_manager, pool, id) = held_past(config);
    assert_eq!(id, 1, "the expired connection was replaced for the waiter");
    assert_eq!(pool.statistics().closed.max_lifetime, 1);
}

#[test]
fn min_idle_is_kept_by_maintenance_and_the_idle_timeout_spares_it() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(4)
        .min_idle(2)
        .idle_timeout(Some(Duration::from_millis(10)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    pool.maintain_blocking();
    assert_eq!(pool.state().idle, 2);
    let (a, b, c) = (
        pool.get_blocking().unwrap(),
        pool.get_blocking().unwrap(),
        pool.get_blocking().unwrap(),
    );
    drop((a, b, c));
    thread::sleep(Duration::from_millis(20)); // let the idle timeout pass
    pool.maintain_blocking();
    assert_eq!(pool.state().idle, 2, "reaped down to min_idle, not below");
}

#[test]
fn min_idle_is_filled_by_the_background_task() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(4)
        .min_idle(3)
        .build()
        .unwrap();
    let pool = builder(&manager, config)
        .runtime(memory_storage_turso::rt::Tokio::from_handle(
            runtime.handle().clone(),
        ))
        .build()
        .unwrap();
    wait_until("min_idle is filled", || pool.state().idle == 3);
    assert_eq!(manager.seen.connects.load(SeqCst), 3);
    pool.close();
    assert_eq!(manager.live(), 0);
}

#[test]
fn shutdown_fails_waiters_and_closes_every_connection() {
    let manager = TestManager::default();
    let pool = pool(&manager, 2);
    let held = pool.get_blocking().unwrap();
    let other = pool.get_blocking().unwrap();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || pool.get_blocking().map(|_| ()))
    };
    wait_until("the waiter is queued", || pool.state().waiting == 1);
    let report = pool.shutdown_blocking(Duration::from_millis(10));
    assert!(!report.drained);
    assert_eq!(report.still_in_use, 2);
    assert!(waiter.join().unwrap().unwrap_err().is_closed());
    assert!(pool.get_blocking().unwrap_err().is_closed());
    assert!(pool.try_get().unwrap_err().is_closed());
    assert_eq!(pool.state().waiting, 0);
    drop(other);
    assert_eq!(manager.live(), 1, "closed as it came back");
    drop(held);
    assert_eq!(manager.live(), 0);
    assert!(pool.shutdown_blocking(Duration::ZERO).drained);
}

#[test]
fn shutdown_closes_idle_connections_at_once() {
    let manager = TestManager::default();
    let pool = pool(&manager, 2);
    let held = pool.get_blocking().unwrap();
    drop(pool.get_blocking().unwrap());
    assert_eq!(manager.live(), 2);
    assert!(!pool.shutdown_blocking(Duration::ZERO).drained);
    assert_eq!(
        manager.live(),
        1,
        "the idle one is closed, the held one is still out"
    );
    drop(held);
    assert_eq!(manager.live(), 0);
}

#[test]
fn shutdown_waits_for_holders_to_finish() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.get_blocking().unwrap();
    let holder = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20)); // the holder's work
        drop(held);
    });
    let report = pool.shutdown_blocking(Duration::from_secs(30));
    assert!(report.drained);
    holder.join().unwrap();
    assert_eq!(manager.live(), 0);
}

/// A connection whose destructor takes a while: it says when it starts, and waits to be let go.
struct SlowToClose {
    started: std::sync::mpsc::Sender<()>,
    finish: Arc<Mutex<()>>,
    closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for SlowToClose {
    fn drop(&mut self) {
        let _ = self.started.send(());
        drop(self.finish.lock());
        self.closed.store(true, SeqCst);
    }
}

/// The slot of a returned connection is free before the connection is dropped: `shutdown` reports
/// drained only once it is closed.
#[test]
fn shutdown_reports_drained_only_once_the_last_connection_is_closed() {
    struct Slow {
        conn: Mutex<Option<SlowToClose>>,
    }
    impl Manager for Slow {
        type Connection = SlowToClose;
        type Error = std::convert::Infallible;
        async fn connect(&self) -> Result<SlowToClose, Self::Error> {
            Ok(self.conn.lock().unwrap().take().expect("one connection"))
        }
        fn is_broken(&self, _: &mut SlowToClose) -> bool {
            true // so that it is closed as it comes back
        }
    }
    let (started, closing) = std::sync::mpsc::channel();
    let finish = Arc::new(Mutex::new(()));
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let conn = SlowToClose {
        started,
        finish: finish.clone(),
        closed: closed.clone(),
    };
    let pool = Pool::builder(Slow {
        conn: Mutex::new(Some(conn)),
    })
    .build()
    .unwrap();
    let held = pool.get_blocking().unwrap();
    let let_go = finish.lock().unwrap();
    let returner = thread::spawn(move || drop(held));
    closing.recv().unwrap(); // its slot is free, its destructor runs
    assert_eq!(pool.state().in_use, 0);
    let shutdown = {
        let pool = pool.clone();
        let closed = closed.clone();
        thread::spawn(move || {
            let started = Instant::now();
            let report = pool.shutdown_blocking(Duration::from_secs(60));
            (report, closed.load(SeqCst), started.elapsed())
        })
    };
    // Give a wrong early report its chance (the report must wait for the close in any timing).
    let waited = Instant::now();
    while !shutdown.is_finished() && waited.elapsed() < Duration::from_millis(100) {
        thread::yield_now();
    }
    drop(let_go);
    returner.join().unwrap();
    let (report, closed_when_reported, took) = shutdown.join().unwrap();
    assert!(report.drained, "{report:?}");
    assert!(
        closed_when_reported,
        "reported drained while the connection was still closing"
    );
    // Told when the close ended, not found drained at its deadline.
    assert!(took < Duration::from_secs(30), "shutdown took {took:?}");
}

#[test]
fn async_shutdown_reports_drained() {
    smol::block_on(async {
        let manager = TestManager::default();
        let pool = builder(&manager, config(2))
            .runtime(memory_storage_turso::rt::Smol)
            .build()
            .unwrap();
        let held = pool.get().await.unwrap();
        let report = pool.shutdown(Duration::from_millis(5)).await.unwrap();
        assert!(!report.drained);
        drop(held);
        assert!(
            pool.shutdown(Duration::from_millis(5))
                .await
                .unwrap()
                .drained
        );
        assert_eq!(manager.live(), 0);
    });
}

#[test]
fn dropping_the_last_handle_closes_idle_connections() {
    let manager = TestManager::default();
    let pool = pool(&manager, 2);
    let clone = pool.clone();
    let held = pool.get_blocking().unwrap();
    drop(pool.get_blocking().unwrap());
    drop(pool);
    assert_eq!(manager.live(), 2, "another handle is alive");
    drop(clone);
    assert_eq!(manager.live(), 1, "idle closed, the held one still usable");
    assert_eq!(held.id, 0);
    drop(held);
    assert_eq!(manager.live(), 0);
}

#[test]
fn dropping_the_last_handle_drops_the_pool_at_once_while_its_background_tasks_run() {
    // The close wakes the maintenance and timeout tasks on the runtime's workers. None of them may be
    // holding the pool when the last handle's drop returns: the manager (here the only other owner of
    // `seen`) and whatever it keeps open must be gone by then, not a moment later on a worker.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let manager = TestManager::default();
    for round in 0..300 {
        let pool = builder(&manager, config(2))
            .runtime(memory_storage_turso::rt::Tokio::from_handle(
                runtime.handle().clone(),
            ))
            .build()
            .unwrap();
        drop(pool.get_blocking().unwrap());
        drop(pool);
        assert_eq!(
            Arc::strong_count(&manager.seen),
            1,
            "round {round}: something still holds the pool after its last handle was dropped"
        );
    }
}

#[test]
fn resize_grows_for_waiters_and_shrinks_as_connections_return() {
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let a = pool.get_blocking().unwrap();
    let waiter = {
        let pool = pool.clone();
        thread::spawn(move || pool.get_blocking().map(|c| c.id))
    };
    wait_until("the waiter is queued", || pool.state().waiting == 1);
    pool.resize(3).unwrap();
    assert_eq!(
        waiter.join().unwrap().unwrap(),
        1,
        "served at once by a new connection"
    );
    let b = pool.get_blocking().unwrap();
    let c = pool.get_blocking().unwrap();
    assert_eq!(pool.state().size, 3);
    drop(c);
    pool.resize(1).unwrap();
    assert_eq!(pool.state().idle, 0, "idle closed at once");
    drop(b);
    assert_eq!(pool.state().size, 1, "closed on return");
    drop(a);
    assert_eq!(pool.state().size, 1);
    assert_eq!(pool.resize(0), Err(ConfigError::ZeroMaxConnections));
    assert_eq!(pool.statistics().closed.retired, 2);
}

#[test]
fn hooks_run_and_their_failures_and_panics_are_contained() {
    let manager = TestManager::default();
    let refuse = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let flag = refuse.clone();
    let pool = Pool::builder(manager.clone())
        .config(config(2))
        .after_connect(|c: &mut TestConn| {
            c.uses = 100;
            Ok(())
        })
        .on_checkout(move |_c: &mut TestConn| match flag.load(SeqCst) {
            1 => Err("refused".into()),
            2 => panic!("hook panics"),
            _ => Ok(()),
        })
        .build()
        .unwrap();
    assert_eq!(pool.get_blocking().unwrap().uses, 100);
    refuse.store(1, SeqCst);
    let error = pool.get_blocking().unwrap_err();
    assert!(
        matches!(error, PoolError::Hook(_)) && error.to_string().contains("refused"),
        "{error}"
    );
    refuse.store(2, SeqCst);
    let error = pool.get_blocking().unwrap_err();
    assert!(error.to_string().contains("hook panics"), "{error}");
    refuse.store(0, SeqCst);
    assert!(pool.get_blocking().is_ok());
    assert_eq!(pool.statistics().active_connections, 0);
    assert_eq!(pool.statistics().closed.broken, 2);
}

#[test]
fn leak_detection_names_the_holder_and_clears_on_return() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(2)
        .leak_detection_threshold(Some(Duration::from_millis(10)))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    let line = line!() + 1;
    let held = pool.get_blocking().unwrap();
    assert!(pool.leaks().is_empty());
    thread::sleep(Duration::from_millis(20)); // hold past the threshold
    let leaks = pool.leaks();
    assert_eq!(leaks.len(), 1);
    assert_eq!(leaks[0].caller.file(), file!());
    assert_eq!(leaks[0].caller.line(), line);
    assert!(leaks[0].held_for >= Duration::from_millis(10));
    assert_eq!(pool.statistics().suspected_leaks, 1);
    drop(held);
    assert!(pool.leaks().is_empty());
    assert_eq!(pool.statistics().suspected_leaks, 0);
}

#[test]
fn threads_tokio_tasks_and_smol_tasks_share_one_pool() {
    const EACH: usize = 300;
    let manager = TestManager::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let pool = builder(&manager, config(3))
        .runtime(memory_storage_turso::rt::Tokio::from_handle(
            runtime.handle().clone(),
        ))
        .build()
        .unwrap();
    let check = |conn: &TestConn, pool: &Pool<TestManager>| {
        assert!(conn.id < 1000);
        let state = pool.state();
        assert!(state.size <= state.max_size, "{state}");
        assert!(state.in_use >= 1, "{state}");
    };
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..EACH {
                    let conn = pool.get_blocking().unwrap();
                    check(&conn, &pool);
                }
            });
        }
        let tokio_tasks: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                runtime.spawn(async move {
                    for _ in 0..EACH {
                        let conn = pool.get().await.unwrap();
                        check(&conn, &pool);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        s.spawn(|| {
            let executor = smol::LocalExecutor::new();
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let pool = pool.clone();
                    executor.spawn(async move {
                        for _ in 0..EACH {
                            let conn = pool.get().await.unwrap();
                            check(&conn, &pool);
                            smol::future::yield_now().await;
                        }
                    })
                })
                .collect();
            smol::block_on(executor.run(async {
                for task in tasks {
                    task.await;
                }
            }));
        });
        for task in tokio_tasks {
            runtime.block_on(task).unwrap();
        }
    });
    let stats = pool.statistics();
    assert_eq!(stats.active_connections, 0);
    assert_eq!(pool.available_connections(), 3);
    assert!(stats.total_created <= 3, "{stats:?}");
    assert_eq!(stats.total_checkouts, 12 * EACH, "{stats:?}");
    assert_consistent(&pool);
}

#[test]
fn threads_and_tasks_of_both_runtimes_are_served_in_arrival_order() {
    let manager = TestManager::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let pool = builder(&manager, config(1))
        .runtime(memory_storage_turso::rt::Tokio::from_handle(
            runtime.handle().clone(),
        ))
        .build()
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let record = |who: &'static str, served: &Arc<Mutex<Vec<&'static str>>>| {
        served.lock().unwrap().push(who)
    };

    let mut threads = Vec::new();
    let mut tasks = Vec::new();
    for (index, who) in ["thread", "tokio", "smol", "thread again", "tokio again"]
        .into_iter()
        .enumerate()
    {
        let (pool_clone, served_clone) = (pool.clone(), served.clone());
        if who.starts_with("thread") {
            threads.push(thread::spawn(move || {
                let conn = pool_clone.get_blocking().unwrap();
                record(who, &served_clone);
                drop(conn);
            }));
        } else if who.starts_with("tokio") {
            tasks.push(runtime.spawn(async move {
                let conn = pool_clone.get().await.unwrap();
                record(who, &served_clone);
                drop(conn);
            }));
        } else {
            threads.push(thread::spawn(move || {
                smol::block_on(async {
                    let conn = pool_clone.get().await.unwrap();
                    record(who, &served_clone);
                    drop(conn);
                })
            }));
        }
        wait_until("the caller is queued", || pool.state().waiting == index + 1);
    }
    drop(held);
    for thread in threads {
        thread.join().unwrap();
    }
    for task in tasks {
        runtime.block_on(task).unwrap();
    }
    assert_eq!(
        *served.lock().unwrap(),
        ["thread", "tokio", "smol", "thread again", "tokio again"]
    );
    assert_eq!(pool.available_connections(), 1);
    assert_eq!(pool.statistics().active_connections, 0);
}

/// Threads taking turns on one connection: the waiter first in line is woken early and spins for its
/// grant. No turn may be lost or doubled, no wake-up missed (a missed one ends in a timeout), and
/// waiters whose short deadlines pass while they spin or sleep leave cleanly.
#[test]
fn threads_taking_turns_on_one_connection_lose_no_turn_and_no_wake_up() {
    take_turns(1);
}

#[test]
fn threads_taking_turns_on_three_connections_lose_no_turn_and_no_wake_up() {
    // Three connections give the threads several shelves: a connection left on any of them while a
    // thread waits would stall that thread until its 30 s timeout and fail the checkout. (The loom
    // models check the race itself, on one shelf; this runs the real thing on several.)
    take_turns(3);
}

/// 8 threads check out and return `max` connections 3,000 times each; two of them give up after 50 us
/// now and then. No turn is lost, no more than `max` hold at once, and nothing is opened twice.
fn take_turns(max: usize) {
    const THREADS: usize = 8;
    const TURNS: usize = 3_000;
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(max)
        .connection_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let pool = builder(&manager, config).build().unwrap();
    let holders = std::sync::atomic::AtomicUsize::new(0);
    let (turns, timeouts): (Vec<usize>, Vec<usize>) = thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|index| {
                let (pool, holders) = (&pool, &holders);
                s.spawn(move || {
                    let (mut turns, mut timeouts) = (0, 0);
                    while turns < TURNS {
                        let conn = if index < 2 && turns % 7 == 0 {
                            match pool.get_blocking_timeout(Duration::from_micros(50)) {
                                Ok(conn) => conn,
                                Err(PoolError::Timeout(_)) => {
                                    timeouts += 1;
                                    continue;
                                }
                                Err(error) => panic!("{error}"),
                            }
                        } else {
                            pool.get_blocking().unwrap()
                        };
                        assert!(
                            holders.fetch_add(1, SeqCst) < max,
                            "more holders than slots"
                        );
                        std::hint::black_box(&conn);
                        if turns % 5 == 0 {
                            thread::yield_now();
                        }
                        holders.fetch_sub(1, SeqCst);
                        drop(conn);
                        turns += 1;
                    }
                    (turns, timeouts)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).unzip()
    });
    assert_eq!(turns, vec![TURNS; THREADS]);
    let stats = pool.statistics();
    assert_eq!(stats.total_checkouts, THREADS * TURNS, "{stats:?}");
    assert!(stats.total_created <= max, "{stats:?}");
    assert_eq!(stats.closed.total(), 0, "{stats:?}");
    assert_eq!(stats.active_connections, 0);
    assert_eq!(pool.state().waiting, 0);
    assert_eq!(pool.available_connections(), max);
    assert_consistent(&pool);
    println!("timeouts of the impatient threads: {timeouts:?}");
}

/// A thread-local whose destructor checks a connection out and has to wait for it, after the thread's
/// own cached parker was already destroyed: the blocking wait must still work there.
#[test]
fn a_blocking_checkout_works_from_a_thread_local_destructor() {
    type Late = Option<(Pool<TestManager>, std::sync::mpsc::Sender<&'static str>)>;
    struct CheckoutOnDrop(Late);
    impl Drop for CheckoutOnDrop {
        fn drop(&mut self) {
            if let Some((pool, said)) = self.0.take() {
                said.send("destructor waits").unwrap();
                let conn = pool.get_blocking().unwrap();
                assert_eq!(conn.id, 0);
                said.send("destructor got it").unwrap();
            }
        }
    }
    thread_local! {
        static LATE: std::cell::RefCell<CheckoutOnDrop> =
            const { std::cell::RefCell::new(CheckoutOnDrop(None)) };
    }
    let manager = TestManager::default();
    let pool = pool(&manager, 1);
    let held = pool.get_blocking().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    let (exit, may_exit) = std::sync::mpsc::channel::<()>();
    let worker = {
        let pool = pool.clone();
        thread::spawn(move || {
            // LATE's destructor is registered first, so it runs after that of the thread's parker,
            // which the queued checkout below creates.
            LATE.with(|late| late.borrow_mut().0 = Some((pool.clone(), said.clone())));
            drop(pool.get_blocking().unwrap());
            said.send("worker waited once").unwrap();
            may_exit.recv().unwrap();
        })
    };
    wait_until("the worker is queued", || pool.state().waiting == 1);
    drop(held);
    assert_eq!(heard.recv().unwrap(), "worker waited once");
    let held = pool.get_blocking().unwrap();
    exit.send(()).unwrap();
    assert_eq!(heard.recv().unwrap(), "destructor waits");
    wait_until("the destructor is queued", || pool.state().waiting == 1);
    drop(held);
    assert_eq!(heard.recv().unwrap(), "destructor got it");
    worker.join().unwrap();
    assert_consistent(&pool);
}
