//! Dropping a checkout future at any await point leaks nothing: no slot, no queue entry, no connection.
#![cfg(feature = "smol")]

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{TestConn, TestManager};
use memory_storage_turso::pool::{Manager, Pool, PoolConfig};
use memory_storage_turso::rt::Smol;

/// The test manager, with connects and health checks that can be made to hang.
#[derive(Clone, Default)]
struct Hanging {
    inner: TestManager,
    hang_connect: Arc<AtomicBool>,
    hang_validate: Arc<AtomicBool>,
    /// Health checks wait while a test holds this lock.
    validate_gate: Arc<async_lock::Mutex<()>>,
}

impl Manager for Hanging {
    type Connection = TestConn;
    type Error = common::Injected;

    async fn connect(&self) -> Result<TestConn, Self::Error> {
        if self.hang_connect.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.connect().await
    }

    async fn validate(&self, conn: &mut TestConn) -> Result<(), Self::Error> {
        if self.hang_validate.load(SeqCst) {
            std::future::pending::<()>().await;
        }
        let _open = self.validate_gate.lock().await;
        self.inner.validate(conn).await
    }
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

fn pool(manager: &Hanging, config: PoolConfig) -> Pool<Hanging> {
    Pool::builder(manager.clone())
        .config(config)
        .runtime(Smol)
        .build()
        .unwrap()
}

#[test]
fn dropping_a_queued_get_leaves_the_queue() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(1).build().unwrap(),
    );
    let held = pool.get_blocking().unwrap();
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending());
        assert_eq!(pool.state().waiting, 1);
    }
    assert_eq!(pool.state().waiting, 0);
    drop(held);
    let state = pool.state();
    assert_eq!((state.idle, state.in_use, state.size), (1, 0, 1));
}

#[test]
fn dropping_a_granted_but_unclaimed_get_passes_the_connection_on() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(1).build().unwrap(),
    );
    let held = pool.get_blocking().unwrap();
    let mut first = Box::pin(pool.get());
    assert!(poll_once(first.as_mut()).is_pending());
    let mut second = Box::pin(pool.get());
    assert!(poll_once(second.as_mut()).is_pending());
    drop(held); // handed to `first`, which has not run yet
    drop(first); // ...and gives up: the connection must go to `second`
    let Poll::Ready(Ok(conn)) = poll_once(second.as_mut()) else {
        panic!("the second waiter should have the connection")
    };
    assert_eq!(conn.id, 0);
    drop(conn);
    drop(second);
    assert_eq!(pool.state().idle, 1);
}

#[test]
fn dropping_a_get_while_it_opens_a_connection_releases_the_slot() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(1).build().unwrap(),
    );
    manager.hang_connect.store(true, SeqCst);
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending());
        assert_eq!(pool.state().connecting, 1);
    }
    let state = pool.state();
    assert_eq!((state.connecting, state.size), (0, 0), "{state}");
    manager.hang_connect.store(false, SeqCst);
    assert_eq!(pool.get_blocking().unwrap().id, 0);
}

#[test]
fn a_waiter_behind_a_cancelled_opener_gets_the_slot() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(1).build().unwrap(),
    );
    manager.hang_connect.store(true, SeqCst);
    let mut opener = Box::pin(pool.get());
    assert!(poll_once(opener.as_mut()).is_pending());
    let mut waiter = Box::pin(pool.get());
    assert!(poll_once(waiter.as_mut()).is_pending());
    assert_eq!(pool.state().waiting, 1);
    manager.hang_connect.store(false, SeqCst);
    drop(opener);
    let Poll::Ready(Ok(conn)) = poll_once(waiter.as_mut()) else {
        panic!("the waiter should have opened a connection in the freed slot")
    };
    drop(conn);
    drop(waiter);
    assert_eq!(pool.state().idle, 1);
}

#[test]
fn dropping_a_get_during_a_health_check_returns_the_connection() {
    let manager = Hanging::default();
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .build()
        .unwrap();
    let pool = pool(&manager, config);
    drop(pool.get_blocking().unwrap());
    manager.hang_validate.store(true, SeqCst);
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending());
        assert_eq!(pool.state().in_use, 1);
    }
    let state = pool.state();
    assert_eq!((state.in_use, state.idle), (0, 1), "{state}");
    assert_eq!(
        manager.inner.live(),
        1,
        "the connection was returned, not leaked or closed"
    );
}

/// A connection whose health check was cancelled was never checked: the next checkout checks it,
/// instead of trusting it as just used.
#[test]
fn a_connection_whose_health_check_was_cancelled_is_checked_at_the_next_checkout() {
    let manager = Hanging::default();
    let window = Duration::from_millis(200);
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(window)
        .build()
        .unwrap();
    let pool = pool(&manager, config);
    drop(pool.get_blocking().unwrap());
    std::thread::sleep(window + Duration::from_millis(50)); // let the bypass window pass
    manager.hang_validate.store(true, SeqCst);
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending(), "in its health check");
    }
    manager.hang_validate.store(false, SeqCst);
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, 0);
    assert_eq!(
        manager.inner.seen.validations.load(SeqCst),
        1,
        "checked this time"
    );
    assert_eq!(pool.statistics().total_health_checks_passed, 1);
}

#[test]
fn a_hanging_health_check_times_out_and_the_connection_is_replaced() {
    let manager = Hanging::default();
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .health_check_timeout(Duration::from_millis(10))
        .build()
        .unwrap();
    let pool = pool(&manager, config);
    drop(pool.get_blocking().unwrap());
    manager.hang_validate.store(true, SeqCst);
    let conn = smol::block_on(pool.get()).unwrap();
    assert_eq!(
        conn.id, 1,
        "a new connection replaced the one whose check hung"
    );
    let stats = pool.statistics();
    assert_eq!(stats.total_health_checks_failed, 1);
    assert_eq!(stats.closed.health_check, 1);
}

#[test]
fn a_hanging_connect_times_out_with_the_pool_state() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(2).build().unwrap(),
    );
    manager.hang_connect.store(true, SeqCst);
    let error = smol::block_on(pool.get_timeout(Duration::from_millis(10))).unwrap_err();
    assert!(error.is_timeout(), "{error}");
    let state = pool.state();
    assert_eq!((state.connecting, state.size), (0, 0), "{state}");
}

#[test]
fn a_grant_claimed_after_shutdown_began_tells_shutdown_the_pool_drained() {
    let manager = Hanging::default();
    let pool = pool(
        &manager,
        PoolConfig::builder().max_connections(1).build().unwrap(),
    );
    let held = pool.get_blocking().unwrap();
    let mut waiter = Box::pin(pool.get());
    assert!(poll_once(waiter.as_mut()).is_pending());
    drop(held); // handed to `waiter`, which has not run yet: its slot is still in use
    let mut shutdown = Box::pin(pool.shutdown(Duration::from_secs(3600)));
    assert!(
        poll_once(shutdown.as_mut()).is_pending(),
        "the grant is out"
    );
    // The waiter wakes to a closed pool and gives the connection back: the pool has drained.
    assert!(matches!(poll_once(waiter.as_mut()), Poll::Ready(Err(e)) if e.is_closed()));
    let Poll::Ready(Ok(report)) = poll_once(shutdown.as_mut()) else {
        panic!("shutdown was not told that the pool drained")
    };
    assert!(report.drained, "{report:?}");
    assert_eq!(manager.inner.live(), 0);
}

#[test]
fn a_health_check_that_fails_after_shutdown_began_tells_shutdown_the_pool_drained() {
    let manager = Hanging::default();
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .build()
        .unwrap();
    let pool = pool(&manager, config);
    drop(pool.get_blocking().unwrap());
    let gate = manager.validate_gate.try_lock().unwrap();
    manager.inner.faults.fail_validation.store(true, SeqCst);
    let mut get = Box::pin(pool.get());
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "checking the idle connection"
    );
    let mut shutdown = Box::pin(pool.shutdown(Duration::from_secs(3600)));
    assert!(
        poll_once(shutdown.as_mut()).is_pending(),
        "the checkout is out"
    );
    // The check fails; the pool is closed, so its slot is released instead of refilled.
    drop(gate);
    assert!(matches!(poll_once(get.as_mut()), Poll::Ready(Err(e)) if e.is_closed()));
    let Poll::Ready(Ok(report)) = poll_once(shutdown.as_mut()) else {
        panic!("shutdown was not told that the pool drained")
    };
    assert!(report.drained, "{report:?}");
    assert_eq!(manager.inner.live(), 0);
}
