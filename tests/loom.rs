//! Loom models of the pool's state machine: checkout, return, hand-off, cancellation (the path a timeout
//! takes), close and resize. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --no-default-features --test loom`.
//!
//! Each model explores every interleaving of its threads (up to loom's preemption bound) and checks that
//! no wake-up is lost (a lost one deadlocks, which loom reports), no slot is double counted, and
//! `size = idle + in_use + connecting <= max` once every thread is done.
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use loom::future::block_on;
use loom::thread;
use memory_storage_turso::pool::{Manager, Pool, PoolConfig, PoolError};
use memory_storage_turso::rt::Runtime;

/// Connections are numbers; the manager counts opens and (through `Conn`'s drop) closes.
#[derive(Default)]
struct Counting {
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

struct Conn {
    closed: Arc<AtomicU64>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.closed.fetch_add(1, SeqCst);
    }
}

impl Manager for Counting {
    type Connection = Conn;
    type Error = std::convert::Infallible;

    async fn connect(&self) -> Result<Conn, Self::Error> {
        self.opened.fetch_add(1, SeqCst);
        Ok(Conn {
            closed: self.closed.clone(),
        })
    }
}

/// A runtime whose timers never fire: in a model, timeouts are cancellations, modelled explicitly.
#[derive(Clone)]
struct NoTimers;

impl Runtime for NoTimers {
    fn sleep(&self, _: Duration) -> impl Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, _future: F) {}

    fn unblock<T: Send + 'static, F: FnOnce() -> T + Send + 'static>(
        &self,
        work: F,
    ) -> impl Future<Output = T> + Send + 'static {
        std::future::ready(work())
    }
}

fn pool(max: usize) -> (Pool<Counting>, Arc<AtomicU64>, Arc<AtomicU64>) {
    let manager = Counting::default();
    let (opened, closed) = (manager.opened.clone(), manager.closed.clone());
    let config = PoolConfig::builder()
        .max_connections(max)
        .enable_health_check(false)
        .build()
        .unwrap();
    let pool = Pool::builder(manager)
        .config(config)
        .runtime(NoTimers)
        .build()
        .unwrap();
    (pool, opened, closed)
}

fn assert_settled(pool: &Pool<Counting>, opened: &AtomicU64, closed: &AtomicU64) {
    let state = pool.state();
    assert_eq!(state.in_use, 0, "{state}");
    assert_eq!(state.connecting, 0, "{state}");
    assert_eq!(state.waiting, 0, "{state}");
    assert_eq!(state.size, state.idle, "{state}");
    assert!(state.size <= state.max_size, "{state}");
    let live = opened.load(SeqCst) - closed.load(SeqCst);
    assert_eq!(
        live as usize, state.idle,
        "the pool's count matches the connections alive: {state}"
    );
}

#[test]
fn checkout_and_return_lose_no_wakeup() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || {
                    let conn = block_on(pool.get()).unwrap();
                    let state = pool.state();
                    assert!(state.size <= 1 && state.in_use >= 1, "{state}");
                    drop(conn);
                })
            })
            .collect();
        let conn = block_on(pool.get()).unwrap();
        drop(conn);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(opened.load(SeqCst), 1, "one connection, reused");
        assert_settled(&pool, &opened, &closed);
    });
}

#[test]
fn a_cancelled_waiter_passes_its_grant_on() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let held = block_on(pool.get()).unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || {
                // Queue, then give up, as a timeout does: at any point relative to the return below.
                let mut get = pin!(pool.get());
                let polled = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                if let Poll::Ready(conn) = polled {
                    drop(conn.unwrap());
                }
            })
        };
        let patient = {
            let pool = pool.clone();
            thread::spawn(move || drop(block_on(pool.get()).unwrap()))
        };
        drop(held);
        waiter.join().unwrap();
        patient.join().unwrap();
        assert_settled(&pool, &opened, &closed);
        assert_eq!(pool.available_connections(), 1);
    });
}

#[test]
fn close_fails_waiters_and_closes_everything() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let held = block_on(pool.get()).unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || match block_on(pool.get()) {
                Ok(conn) => drop(conn),
                Err(error) => assert!(matches!(error, PoolError::Closed)),
            })
        };
        let closer = {
            let pool = pool.clone();
            thread::spawn(move || pool.close())
        };
        drop(held);
        waiter.join().unwrap();
        closer.join().unwrap();
        assert!(pool.is_closed());
        assert_eq!(pool.state().size, 0);
        assert_eq!(
            opened.load(SeqCst),
            closed.load(SeqCst),
            "every connection closed"
        );
    });
}

#[test]
fn resize_serves_waiters_and_retires_extra_connections() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let held = block_on(pool.get()).unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || drop(block_on(pool.get()).unwrap()))
        };
        let resizer = {
            let pool = pool.clone();
            thread::spawn(move || {
                pool.resize(2).unwrap();
                pool.resize(1).unwrap();
            })
        };
        drop(held);
        waiter.join().unwrap();
        resizer.join().unwrap();
        assert_settled(&pool, &opened, &closed);
        assert!(pool.state().size <= 1);
    });
}

#[test]
fn a_freed_slot_goes_to_a_waiter_even_one_that_cancels() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let held = block_on(pool.get()).unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || {
                let mut get = pin!(pool.get());
                let polled = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                if let Poll::Ready(conn) = polled {
                    drop(conn.unwrap());
                }
            })
        };
        let patient = {
            let pool = pool.clone();
            thread::spawn(move || drop(block_on(pool.get()).unwrap()))
        };
        // Detaching frees the slot: a waiter gets the right to open a new connection.
        drop(held.detach());
        waiter.join().unwrap();
        patient.join().unwrap();
        assert_settled(&pool, &opened, &closed);
        assert_eq!(pool.available_connections(), 1);
    });
}

#[test]
fn threads_and_tasks_hand_off_to_each_other() {
    loom::model(|| {
        let (pool, opened, closed) = pool(1);
        let blocking = {
            let pool = pool.clone();
            thread::spawn(move || drop(pool.get_blocking().unwrap()))
        };
        let task = {
            let pool = pool.clone();
            thread::spawn(move || drop(block_on(pool.get()).unwrap()))
        };
        drop(pool.get_blocking().unwrap());
        blocking.join().unwrap();
        task.join().unwrap();
        assert_eq!(opened.load(SeqCst), 1, "one connection, reused");
        assert_settled(&pool, &opened, &closed);
    });
}
