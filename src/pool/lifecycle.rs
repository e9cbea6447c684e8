//! Closing, shutdown, resizing, maintenance (reaping and refilling) and leak reports.

use std::panic::Location;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use event_listener::Listener;
use futures_lite::future;

use super::config::{ConfigError, MAX_POOL_SIZE};
use super::error::{PoolError, PoolState};
use super::manager::Manager;
use super::shared::Shared;
use super::state::{Effects, State};
use super::Pool;

/// What [`Pool::shutdown`] found at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether every connection was back, and closed, before the deadline.
    pub drained: bool,
    /// Slots still held by callers at the deadline (0 when drained). Their connections are closed as
    /// they come back.
    pub still_in_use: usize,
}

/// A connection held longer than `leak_detection_threshold`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspectedLeak {
    /// Where it was checked out.
    pub caller: &'static Location<'static>,
    /// How long it has been held.
    pub held_for: Duration,
}

impl<M: Manager> Pool<M> {
    /// Closes the pool at once: new checkouts and every waiter fail with [`PoolError::Closed`], and idle
    /// connections are closed. Checked-out connections are closed as they come back.
    pub fn close(&self) {
        self.shared.close_pool();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Closes the pool (see [`close`](Self::close)) and waits up to `timeout` for checked-out
    /// connections to come back.
    ///
    /// # Errors
    /// [`PoolError::NoRuntime`] if connections are still out and the pool has no runtime adapter to time
    /// the wait; use [`shutdown_blocking`](Self::shutdown_blocking) from a thread instead.
    pub async fn shutdown(&self, timeout: Duration) -> Result<ShutdownReport, PoolError<M::Error>> {
        self.close();
        let shared = &self.shared;
        let started = Instant::now();
        loop {
            let listener = shared.drained.listen();
            let report = shared.drain_report();
            if report.drained {
                return Ok(report);
            }
            let Some(runtime) = shared.runtime.as_ref() else {
                return Err(PoolError::NoRuntime);
            };
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(report);
            }
            future::or(listener, runtime.sleep(left)).await;
        }
    }

    /// [`shutdown`](Self::shutdown) for threads: parks until drained or `timeout`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use memory_storage_turso::pool::{Manager, Pool};
    /// # struct Unit;
    /// # impl Manager for Unit {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::builder(Unit).build().unwrap();
    /// let held = pool.get_blocking().unwrap();
    /// let report = pool.shutdown_blocking(Duration::from_millis(1));
    /// assert!(!report.drained);
    /// drop(held);
    /// assert!(pool.shutdown_blocking(Duration::from_millis(1)).drained);
    /// ```
    pub fn shutdown_blocking(&self, timeout: Duration) -> ShutdownReport {
        self.close();
        let shared = &self.shared;
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let listener = shared.drained.listen();
            let report = shared.drain_report();
            if report.drained {
                return report;
            }
            let notified = match deadline {
                Some(deadline) => listener.wait_deadline(deadline).is_some(),
                None => {
                    listener.wait();
                    true
                }
            };
            if !notified {
                return shared.drain_report();
            }
        }
    }

    /// Changes the maximum size. Growing serves waiters at once; shrinking closes idle connections now
    /// and checked-out ones as they come back.
    ///
    /// # Errors
    /// A [`ConfigError`] for 0 or more than [`MAX_POOL_SIZE`].
    pub fn resize(&self, max_connections: usize) -> Result<(), ConfigError> {
        if max_connections == 0 {
            return Err(ConfigError::ZeroMaxConnections);
        }
        if max_connections > MAX_POOL_SIZE {
            return Err(ConfigError::TooManyConnections(max_connections));
        }
        let mut effects = Effects::default();
        let mut state = self.shared.lock();
        state.resize(max_connections, &mut effects);
        self.shared.unshelve_all(&mut state, &mut effects);
        drop(state);
        self.shared.apply(effects);
        Ok(())
    }

    /// One round of maintenance: closes expired and idled-out connections (shelved ones included),
    /// reports leaks, opens connections up to `min_idle`, and publishes the gauges (feature `metrics`).
    /// The background task (with a runtime adapter) runs this every `maintenance_interval`; call it
    /// yourself to do so without one.
    pub async fn maintain(&self) {
        self.shared.maintain().await;
    }

    /// [`maintain`](Self::maintain) for threads.
    pub fn maintain_blocking(&self) {
        future::block_on(self.shared.maintain());
    }

    /// Connections held longer than `leak_detection_threshold` now, with where they were checked out.
    /// Empty when leak detection is off.
    pub fn leaks(&self) -> Vec<SuspectedLeak> {
        let Some(threshold) = self.shared.config.leak_detection_threshold else {
            return Vec::new();
        };
        let now = Instant::now();
        let state = self.shared.lock();
        state
            .leases
            .iter()
            .flatten()
            .map(|lease| SuspectedLeak {
                caller: lease.caller,
                held_for: now.saturating_duration_since(lease.since),
            })
            .filter(|leak| leak.held_for >= threshold)
            .collect()
    }
}

impl<M: Manager> Shared<M> {
    pub(crate) fn close_pool(&self) {
        let mut effects = Effects::default();
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.close(&mut effects);
        self.unshelve_all(&mut state, &mut effects);
        let drained = state.in_use + state.connecting == 0;
        // Before the lock goes: a connection whose drop ends from now on sees the pool closed and
        // tells `shutdown` if it was the last (see `Shared::closed_one`).
        self.closing.close();
        drop(state);
        self.apply_released(effects, drained);
        self.observe.publish(|| self.gauges());
    }

    /// Drained: no slot held, and no connection left open (one whose slot was just released may be
    /// in its `Drop` still, or on a shelf its returner is about to take back and close).
    fn drain_report(&self) -> ShutdownReport {
        let PoolState {
            in_use, connecting, ..
        } = self.gauges();
        let still_in_use = in_use + connecting;
        let closing = self.live.load(std::sync::atomic::Ordering::SeqCst);
        ShutdownReport {
            drained: still_in_use == 0 && closing == 0,
            still_in_use,
        }
    }

    pub(crate) async fn maintain(self: &Arc<Self>) {
        let now = Instant::now();
        let mut effects = Effects::default();
        let refill = {
            let mut state = self.lock();
            self.unshelve_all(&mut state, &mut effects);
            state.reap(now, self.config.min_idle, &mut effects);
            self.report_leaks(&mut state, now, &mut effects);
            self.reserve_refill(&mut state)
        };
        self.apply(effects);
        for _ in 0..refill {
            if !self.open_idle().await {
                break;
            }
        }
        self.observe.publish(|| self.gauges());
    }

    /// Reserves slots to bring the idle count up to `min_idle`, within the maximum. Waiters are served
    /// by hand-off instead, so nothing is reserved while anyone waits.
    fn reserve_refill(&self, state: &mut State<M::Connection>) -> usize {
        if state.closed || !state.waiters.is_empty() {
            return 0;
        }
        let wanted = self
            .config
            .min_idle
            .saturating_sub(state.idle.len() + state.connecting);
        let room = state.max.saturating_sub(state.size());
        let count = wanted.min(room);
        state.connecting += count;
        count
    }

    /// Opens one connection in a reserved slot and puts it in the pool. Releases the slot on failure.
    async fn open_idle(self: &Arc<Self>) -> bool {
        let Ok(raw) = self.open().await else {
            self.release(true, None);
            return false;
        };
        let conn = self.wrap_new(raw, Instant::now());
        let mut effects = Effects::default();
        let mut state = self.lock();
        state.connecting -= 1;
        state.in_use += 1;
        state.check_in(conn, &mut effects);
        let drained = state.closed && state.in_use + state.connecting == 0;
        drop(state);
        self.apply_released(effects, drained);
        true
    }

    /// Marks leases that crossed the threshold as reported, and says so once per lease.
    pub(crate) fn report_leaks(
        &self,
        state: &mut State<M::Connection>,
        now: Instant,
        effects: &mut Effects<M::Connection>,
    ) {
        let Some(threshold) = self.config.leak_detection_threshold else {
            return;
        };
        for lease in state.leases.iter_mut().flatten() {
            let held_for = now.saturating_duration_since(lease.since);
            if !lease.reported && held_for >= threshold {
                lease.reported = true;
                effects.notes.leak(lease.caller, held_for);
            }
        }
    }
}

/// Starts the background maintenance task on the pool's runtime. It holds only a weak reference, and
/// ends when the pool closes or is dropped.
pub(crate) fn spawn_maintenance<M: Manager>(shared: &Arc<Shared<M>>) {
    let Some(runtime) = shared.runtime.clone() else {
        return;
    };
    let config = &shared.config;
    // With the `metrics` feature, each round also publishes the gauges.
    let needed = config.min_idle > 0
        || config.idle_timeout.is_some()
        || config.max_lifetime.is_some()
        || config.leak_detection_threshold.is_some()
        || cfg!(feature = "metrics");
    if !needed {
        return;
    }
    let mut every = config.maintenance_interval;
    if let Some(threshold) = config.leak_detection_threshold {
        every = every.min(threshold / 2).max(Duration::from_millis(1));
    }
    let weak: Weak<Shared<M>> = Arc::downgrade(shared);
    let closing = shared.closing.clone();
    let sleeper = runtime.clone();
    // A first round at once only when there is `min_idle` to fill; otherwise the task starts by waiting,
    // so that it does not hold the pool while its builder may already be dropping it.
    let mut wait = config.min_idle == 0;
    runtime.spawn(Box::pin(async move {
        loop {
            if wait {
                let woken = closing.listen();
                if closing.is_closed() {
                    return;
                }
                future::or(woken, sleeper.sleep(every)).await;
            }
            wait = true;
            if closing.is_closed() {
                return;
            }
            let Some(shared) = weak.upgrade() else { return };
            shared.maintain().await;
        }
    }));
}
