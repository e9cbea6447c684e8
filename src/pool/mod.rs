//! The generic, runtime-agnostic pool core: [`Pool<M: Manager>`](Pool).
//!
//! # Design
//!
//! * **Sync-first.** The pool's state (idle connections, slot counts, a FIFO queue of waiters) sits behind
//!   one short, synchronous critical section: no `.await` and no user code runs while it is held.
//!   A waiter's ticket in the queue holds how to wake it: a blocking caller's parker (it parks with a
//!   deadline) or an async caller's `Waker`, and it is where the waiter picks up its grant without the
//!   pool's lock (`waiters.rs`). Both go through one state machine (`Acquire::poll_grant` in
//!   `acquire.rs`), so one pool serves threads and tasks at the same time. (The sketch had both park on
//!   `event-listener` listeners; a measured 12 % of a contended checkout went to those listeners, so the
//!   queue wakes waiters directly. `event-listener` still carries the rare events: shutdown drains and
//!   the background tasks' wake-ups.) A thread that becomes first in line is woken early and spins
//!   briefly for its grant, so that short holds between many threads do not pay a full wake-up per
//!   turn (`parker.rs`).
//! * **Fair.** A connection that comes back is handed straight to the oldest waiter, and a slot that
//!   frees up becomes the oldest waiter's right to open a connection. A caller that arrives later finds
//!   the capacity already taken, so it cannot barge in. (`async_lock::Semaphore` alone is not fair,
//!   which is why the hand-off is the pool's own job.)
//! * **No shared lock while nobody waits.** A connection returned while no caller queues rests on its
//!   thread's shelf, and that thread's next checkout takes it back without the pool's lock; another
//!   thread that finds the idle list empty looks on the shelves before it opens a connection or queues
//!   (`shelves.rs`). Two threads that check out in turn then stop moving the lock's cache line between
//!   cores on every checkout. As soon as someone queues, every return goes through the hand-off above.
//!   Such a return reads no clock either (a third of the uncontended cycle went to two clock reads): the
//!   connection's deadlines count from its checkout. See [`PoolConfig::idle_timeout`] for what that
//!   means for connections held long.
//! * **Honest accounting.** The gauges in [`PoolStatistics`] are read from the very counts that gate
//!   checkouts (a shelved connection holds its slot and counts as idle).
//!   `size = idle + in_use + connecting <= max` at every instant (until a `resize` shrinks
//!   the pool below what is checked out; the excess is closed as it comes back).
//! * **The slot is held for the life of the guard.** [`PooledConnection`] derefs to the connection.
//!   Dropping it runs the manager's `is_broken` and `reset` (also while panicking) and returns or closes
//!   the connection; [`PooledConnection::detach`] frees the slot and keeps the connection.
//! * **Cancellation-safe.** Every piece of capacity a caller holds (a ticket in the queue, a grant not yet
//!   picked up, a reserved slot, a connection being checked) is owned by a value whose `Drop` gives it back, so
//!   dropping a `get` future at any await leaks nothing. A connection whose checkout was cancelled
//!   mid-check goes back with the deadlines of its last real use, so the next checkout checks it.
//! * **Timeouts** come from deadlines: a thread parks until its own, and an async waiter records its own
//!   in its ticket, where one timeout task per pool (on the runtime adapter) ends it. An async `get`
//!   on a pool without an adapter fails with [`PoolError::NoRuntime`] every time, instead of waiting
//!   forever under load.
//! * **Maintenance** (idle timeout, max lifetime with jitter, leak detection) runs lazily as connections
//!   are checked out and returned (a checkout that finds its connection due, a quarter of the idle
//!   timeout after it last went through the gate, sends its return through the gate instead of onto a
//!   shelf, and that return reaps the idle list and the shelves; so does every close of an expired or
//!   idled-out connection); with a runtime adapter a background task also refills `min_idle` and
//!   reaps. It ends when the pool closes.
//!
//! ```
//! use memory_storage_turso::pool::{Manager, Pool, PoolConfig};
//!
//! struct Counter;
//! impl Manager for Counter {
//!     type Connection = u64;
//!     type Error = std::convert::Infallible;
//!     async fn connect(&self) -> Result<u64, Self::Error> {
//!         Ok(0)
//!     }
//! }
//!
//! let config = PoolConfig::builder().max_connections(2).build().unwrap();
//! let pool = Pool::builder(Counter).config(config).build().unwrap();
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| *pool.get_blocking().unwrap() += 1);
//!     }
//! });
//! let stats = pool.statistics();
//! assert!(stats.total_created <= 2);
//! assert_eq!(stats.total_checkouts, 4);
//! ```
//!
//! # Observability
//!
//! Two optional features report what the pool does. With both off their calls compile to nothing, and
//! [`statistics`](Pool::statistics) is still there. Name each pool of a process with
//! [`PoolBuilder::name`] (default `"default"`; the libSQL lanes are `"write"` and `"read"`).
//!
//! **`tracing`**: spans and events with target `memory_storage_turso::pool` and a `pool` field.
//!
//! | span | level | covers | other fields |
//! |---|---|---|---|
//! | `acquire` | TRACE | a checkout, from the call to the hand-over or the error | `wait_us`, recorded at the hand-over (0 on the fast path) |
//! | `create` | DEBUG | opening a connection: `connect` and the `after_connect` hook | |
//! | `validate` | DEBUG | a health check | |
//! | `return` | TRACE | a check-in: `is_broken`, `reset`, the `on_return` hook, back to the pool | |
//! | `close` | DEBUG | closing (dropping) a connection | `reason` |
//!
//! | event | level | fields |
//! |---|---|---|
//! | `checkout timed out` | WARN | `waited_ms`, `size`, `idle`, `in_use`, `connecting`, `waiting`, `max_size`, `last_error` |
//! | `could not open a connection` | WARN | `error` |
//! | `health check failed; closing the connection` | WARN | `error` |
//! | `connection broken ...; closing it` (in `close`) | INFO | |
//! | `connection held longer than the leak detection threshold ...` | WARN | `caller`, `held_for_ms` |
//! | `a connection reported as leaked was returned` | INFO | `caller`, `held_for_ms` |
//!
//! `create` and `validate` nest in the `acquire` that needed them. A span that no subscriber wants costs
//! one level check, and the two spans of every checkout are TRACE, so that turning on DEBUG for the
//! target does not build spans on the fast path. With `tracing-subscriber`, for example, the filter
//! `memory_storage_turso::pool=debug` shows connects, health checks, closes and every problem, and
//! `memory_storage_turso::pool=trace` adds each checkout (with its wait) and return.
//!
//! **`metrics`**: through the [`metrics`](https://docs.rs/metrics/0.24) facade, every metric labelled
//! `pool`. Handles are registered with the recorder in place when the pool is built, so install yours
//! first (`metrics::with_local_recorder` works too).
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `memory_storage_turso_pool_connections_open` | gauge | `size`: idle + in use + connecting |
//! | `memory_storage_turso_pool_connections_in_use` | gauge | held by callers |
//! | `memory_storage_turso_pool_connections_idle` | gauge | idle in the pool |
//! | `memory_storage_turso_pool_connections_connecting` | gauge | slots being opened |
//! | `memory_storage_turso_pool_connections_max` | gauge | the current maximum size |
//! | `memory_storage_turso_pool_waiting` | gauge | callers queued |
//! | `memory_storage_turso_pool_connections_created_total` | counter | connections opened |
//! | `memory_storage_turso_pool_connections_closed_total` | counter | closed, by `reason`: `broken`, `idle_timeout`, `max_lifetime`, `health_check`, `retired` |
//! | `memory_storage_turso_pool_checkouts_total` | counter | successful checkouts |
//! | `memory_storage_turso_pool_timeouts_total` | counter | checkouts that timed out |
//! | `memory_storage_turso_pool_connect_failures_total` | counter | failed connects |
//! | `memory_storage_turso_pool_health_checks_total` | counter | health checks, by `result`: `passed`, `failed` |
//! | `memory_storage_turso_pool_checkout_wait_seconds` | histogram | wait of each successful checkout (0 on the fast path) |
//!
//! Counters and the histogram are recorded as their events happen, next to the counters of
//! [`PoolStatistics`], so they agree with it. Gauges are *sampled* instead of being set on every change,
//! which would put a store per gauge into every checkout and return: each sample is read in one critical
//! section from the state that gates checkouts (the same read as [`state`](Pool::state)), and is
//! published by `Pool::record_metrics`, by every round of the maintenance task (every
//! `maintenance_interval` with a runtime adapter; the feature makes that task run), and when the pool
//! closes. Call `record_metrics` before a scrape for exact gauges.
//!
//! ```
//! # #[cfg(feature = "metrics")] {
//! # use memory_storage_turso::pool::{Manager, Pool};
//! # struct Unit;
//! # impl Manager for Unit {
//! #     type Connection = ();
//! #     type Error = std::convert::Infallible;
//! #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! // The pool registers its metrics with the recorder in place when it is built.
//! let pool = metrics::with_local_recorder(&recorder, || Pool::builder(Unit).name("jobs").build())
//!     .unwrap();
//! let conn = pool.get_blocking().unwrap();
//! pool.record_metrics(); // publishes the gauges now
//! let snapshot = snapshotter.snapshot().into_vec();
//! let value = |name: &str| {
//!     let found = snapshot.iter().find(|(key, ..)| key.key().name() == name);
//!     found.map(|(.., value)| value)
//! };
//! let checkouts = value("memory_storage_turso_pool_checkouts_total");
//! assert!(matches!(checkouts, Some(DebugValue::Counter(1))));
//! let in_use = value("memory_storage_turso_pool_connections_in_use");
//! assert!(matches!(in_use, Some(DebugValue::Gauge(n)) if n.0 == 1.0));
//! drop(conn);
//! # }
//! ```

mod acquire;
mod checkout;
mod config;
mod error;
mod guard;
mod hooks;
mod lifecycle;
mod manager;
mod parker;
mod shared;
mod shelves;
mod state;
mod stats;
mod timeouts;
mod waiters;

use std::sync::Arc;

pub use config::{
    ConfigError, PoolConfig, PoolConfigBuilder, ReuseOrder, MAX_DURATION, MAX_POOL_SIZE,
};
pub use error::{HookError, PoolError, PoolState, TimeoutError};
pub use guard::PooledConnection;
#[cfg(feature = "libsql")]
pub(crate) use hooks::panic_message;
pub use hooks::Hook;
pub use lifecycle::{ShutdownReport, SuspectedLeak};
pub use manager::Manager;
pub use stats::{ClosedConnections, PoolStatistics};

#[cfg(feature = "libsql")]
pub(crate) use parker::SpinGate;
pub(crate) use stats::CloseReason;

use crate::rt::{DynRuntime, Runtime};
use shared::Shared;

/// A pool of connections made by `M`. Cloning it is cheap and gives another handle to the same pool.
///
/// When the last handle is dropped the pool closes: idle connections are closed at once and
/// checked-out ones as they come back. With none checked out, the pool itself (its manager included)
/// is dropped before the handle's drop returns; the background tasks of a runtime adapter never keep
/// it alive, except one already at work as the last handle goes (a maintenance round opening
/// `min_idle` connections, or the timeout task ending a wait), which drops it when that work ends.
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
    _handle: Arc<Handle<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _handle: self._handle.clone(),
        }
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Closes the pool when the last `Pool` handle goes (guards keep only the shared state alive).
struct Handle<M: Manager>(Arc<Shared<M>>);

impl<M: Manager> Drop for Handle<M> {
    fn drop(&mut self) {
        self.0.close_pool();
    }
}

impl<M: Manager> Pool<M> {
    /// A builder for a pool over `manager`, with the default [`PoolConfig`].
    pub fn builder(manager: M) -> PoolBuilder<M> {
        PoolBuilder {
            manager,
            config: PoolConfig::default(),
            hooks: hooks::Hooks::default(),
            runtime: None,
            name: Arc::from("default"),
        }
    }

    /// A snapshot of the pool's gauges and counters.
    pub fn statistics(&self) -> PoolStatistics {
        let state = self.shared.lock();
        let gauges = state.gauges();
        let leaks = match self.shared.config.leak_detection_threshold {
            None => 0,
            Some(threshold) => {
                let now = std::time::Instant::now();
                state
                    .leases
                    .iter()
                    .flatten()
                    .filter(|l| now.saturating_duration_since(l.since) >= threshold)
                    .count()
            }
        };
        drop(state);
        self.shared.counters.snapshot(gauges, leaks)
    }

    /// The pool's gauges.
    pub fn state(&self) -> PoolState {
        self.shared.gauges()
    }

    /// The share of the maximum size held by callers, from 0.0 to 1.0.
    pub fn utilization(&self) -> f32 {
        let state = self.state();
        state.in_use as f32 / state.max_size as f32
    }

    /// Checkouts that could be served now without waiting: idle connections plus room to open more.
    pub fn available_connections(&self) -> usize {
        let state = self.state();
        if state.waiting > 0 {
            return 0;
        }
        state
            .max_size
            .saturating_sub(state.in_use + state.connecting)
    }

    /// Whether a checkout could be served now without waiting.
    pub fn has_capacity(&self) -> bool {
        self.available_connections() > 0
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.shared.manager
    }

    /// The pool's name (see [`PoolBuilder::name`]).
    pub fn name(&self) -> &str {
        self.shared.observe.name()
    }

    /// Publishes the pool's gauges (feature `metrics`): open, in use, idle, connecting, max and waiting,
    /// read in one critical section from the state that gates checkouts, like [`state`](Self::state).
    ///
    /// Every round of maintenance does this too (the background task, with a runtime adapter, every
    /// `maintenance_interval`; or [`maintain`](Self::maintain)), and so does closing the pool. Call it
    /// before a scrape for gauges that are exact at that moment, or in a loop of your own on a pool
    /// without a runtime adapter.
    #[cfg(feature = "metrics")]
    pub fn record_metrics(&self) {
        self.shared.observe.publish(|| self.shared.gauges());
    }

    /// The configuration the pool was built with (`max_connections` as built; see
    /// [`state`](Self::state) for the current maximum after a [`resize`](Self::resize)).
    pub fn config(&self) -> &PoolConfig {
        &self.shared.config
    }
}

/// Builds a [`Pool`]: configuration, hooks, and the runtime adapter for async timeouts and maintenance.
#[must_use]
pub struct PoolBuilder<M: Manager> {
    manager: M,
    config: PoolConfig,
    hooks: hooks::Hooks<M::Connection>,
    runtime: Option<Arc<dyn DynRuntime>>,
    name: Arc<str>,
}

impl<M: Manager> PoolBuilder<M> {
    /// Names the pool: the `pool` label of its metrics and the `pool` field of its spans and events.
    /// Default `"default"`; give each pool of a process its own name (the libSQL lanes are `"write"`
    /// and `"read"`, or `"{name}.write"` and `"{name}.read"` with `LanedPoolBuilder::name`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Arc::from(name);
        self
    }

    /// Uses `config` instead of the defaults.
    pub fn config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Uses `runtime` to time async checkouts and to run the background maintenance task.
    pub fn runtime<R: Runtime>(mut self, runtime: R) -> Self {
        self.runtime = Some(Arc::new(runtime));
        self
    }

    /// Runs `hook` on every new connection before first use. An error closes it and fails the checkout.
    pub fn after_connect(
        mut self,
        hook: impl Fn(&mut M::Connection) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.after_connect = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on every connection as it is handed out. An error closes it and fails the checkout.
    pub fn on_checkout(
        mut self,
        hook: impl Fn(&mut M::Connection) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.on_checkout = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on every connection as it comes back, after the manager's reset. An error closes it.
    pub fn on_return(
        mut self,
        hook: impl Fn(&mut M::Connection) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.on_return = Some(Arc::new(hook));
        self
    }

    /// Validates the configuration and builds the pool. With a runtime adapter, this also starts the
    /// maintenance task, which opens `min_idle` connections right away.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first bad field; [`ConfigError::Runtime`] for a runtime adapter
    /// whose timers cannot run (a tokio runtime built without its time driver).
    pub fn build(self) -> Result<Pool<M>, ConfigError> {
        self.config.validate()?;
        if let Some(runtime) = &self.runtime {
            runtime
                .check_timers()
                .map_err(|problem| ConfigError::Runtime { problem })?;
        }
        let shared = Arc::new(Shared::new(
            self.manager,
            self.config,
            self.hooks,
            self.runtime,
            self.name,
        ));
        lifecycle::spawn_maintenance(&shared);
        timeouts::spawn(&shared);
        Ok(Pool {
            _handle: Arc::new(Handle(shared.clone())),
            shared,
        })
    }
}
