//! The state every handle and guard of one pool shares, and the steps that touch a single connection.

use std::hash::{BuildHasher, RandomState};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::Event;

use super::config::PoolConfig;
use super::config::ReuseOrder;
use super::error::{PoolError, PoolState};
use super::hooks::{self, Hooks};
use super::manager::Manager;
use super::parker::{SpinBackoff, Spun};
use super::shelves::Shelves;
use super::state::{Conn, Effects, Grant, State};
use super::stats::{CloseReason, Counters};
use crate::observe::Observer;
use crate::rt::DynRuntime;
use crate::sync::{lock, Mutex, MutexGuard};
use std::ops::{Deref, DerefMut};

pub(crate) struct Shared<M: Manager> {
    pub(crate) manager: M,
    pub(crate) config: PoolConfig,
    pub(crate) hooks: Hooks<M::Connection>,
    pub(crate) runtime: Option<Arc<dyn DynRuntime>>,
    pub(crate) state: Mutex<State<M::Connection>>,
    /// Where returned connections wait for their thread's next checkout while nobody queues.
    pub(crate) shelves: Shelves<M::Connection>,
    pub(crate) counters: Counters,
    /// Spans, events and metrics (see `crate::observe`).
    pub(crate) observe: Observer,
    /// Notified whenever a closed pool's last held slot is released, after its connection was closed.
    pub(crate) drained: Event,
    /// Connections opened and not yet dropped (nor detached). A slot is released under the lock, but
    /// its connection is dropped after: `shutdown` counts as drained only once this is 0 too.
    pub(crate) live: AtomicUsize,
    /// Set and notified once when the pool closes, to stop the background tasks.
    pub(crate) closing: Arc<Closing>,
    /// Notified when a waiter's deadline comes before the one the timeout task sleeps towards.
    pub(crate) deadlines: Event,
    jitter: AtomicU64,
    /// Returns that rest on a shelf skip the gate, where idle connections are reaped: a checkout sends a
    /// connection's return through it instead at least every quarter of the idle timeout
    /// (`Conn::gate_after`; `None`: no idle timeout), and that return reaps the whole pool.
    reap_every: Option<Duration>,
    /// How long to stop nudging waiters after a spinner was descheduled.
    pub(crate) spin_backoff: SpinBackoff,
}

/// How the pool's background tasks learn that it closed. They hold it beside a `Weak` of the pool and
/// look at it *before* upgrading: a task woken by the close then ends without taking a strong
/// reference, so it cannot be the one that keeps the pool (and its manager's connections) alive for a
/// moment after the last handle was dropped.
#[derive(Default)]
pub(crate) struct Closing {
    closed: AtomicBool,
    event: Event,
}

impl Closing {
    /// Marks the pool closed and wakes the tasks.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    /// Whether the pool closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// A listener for the close (register it before checking [`is_closed`](Self::is_closed)).
    pub(crate) fn listen(&self) -> event_listener::EventListener {
        self.event.listen()
    }
}

impl<M: Manager> Shared<M> {
    pub(crate) fn new(
        manager: M,
        config: PoolConfig,
        hooks: Hooks<M::Connection>,
        runtime: Option<Arc<dyn DynRuntime>>,
        name: Arc<str>,
    ) -> Self {
        // Shelves keep a thread's connection for its next checkout: not with FIFO reuse, which
        // promises to spread use, nor with leak detection, whose leases live under the lock.
        let shelves = match (config.reuse_order, config.leak_detection_threshold) {
            (ReuseOrder::Lifo, None) => config.max_connections,
            _ => 0,
        };
        Self {
            reap_every: config.idle_timeout.map(|timeout| timeout / 4),
            state: Mutex::new(State::new(config.max_connections)),
            shelves: Shelves::new(shelves),
            manager,
            config,
            hooks,
            runtime,
            counters: Counters::default(),
            observe: Observer::new(name),
            drained: Event::new(),
            live: AtomicUsize::new(0),
            closing: Arc::default(),
            deadlines: Event::new(),
            jitter: AtomicU64::new(RandomState::new().hash_one(0u8)),
            spin_backoff: SpinBackoff::new(),
        }
    }

    pub(crate) fn lock(&self) -> Gate<'_, M::Connection> {
        Gate {
            state: lock(&self.state),
            shelves: &self.shelves,
        }
    }

    pub(crate) fn gauges(&self) -> PoolState {
        self.lock().gauges()
    }

    /// Capacity for a caller that arrives now, under the lock: an idle connection, else a shelved
    /// one, else a slot to open one in. `None` when the pool is full or others are queued.
    pub(crate) fn take_free(
        &self,
        state: &mut State<M::Connection>,
    ) -> Option<Grant<M::Connection>> {
        if !state.waiters.is_empty() {
            return None;
        }
        if let Some(conn) = state.take_idle(self.config.reuse_order) {
            return Some(Grant::Conn(conn));
        }
        // Announced first, so that a connection shelved from now on is either found here or taken
        // back by its returner and handed to this caller through the gate.
        self.shelves.announce();
        if let Some(conn) = self.shelves.take_any() {
            return Some(Grant::Conn(conn));
        }
        state.reserve()
    }

    /// Returns every shelved connection through the gate (to close it, reap it, or hand it on).
    /// Reaps as maintenance does: the shelves are emptied into the idle list, and what expired or
    /// idled out there is closed. Runs where a connection's age showed (a return past its
    /// `gate_after`, and every close of an expired or idled-out connection), so that a connection a
    /// departed thread left on its shelf is closed in time without a runtime adapter, even when
    /// every connection expires before its `gate_after` for reaping comes.
    pub(crate) fn reap_all(
        &self,
        state: &mut State<M::Connection>,
        now: Instant,
        effects: &mut Effects<M::Connection>,
    ) {
        self.unshelve_all(state, effects);
        state.reap(now, self.config.min_idle, effects);
    }

    pub(crate) fn unshelve_all(
        &self,
        state: &mut State<M::Connection>,
        effects: &mut Effects<M::Connection>,
    ) {
        self.shelves.publish(state.attention());
        for conn in self.shelves.drain() {
            state.check_in(conn, effects);
        }
    }

    /// Learns from how a nudged waiter's spin ended: a descheduled spinner pauses spinning for a
    /// while (see [`SpinBackoff`]).
    pub(crate) fn spun(&self, spun: Spun) {
        if let Some(hand_offs) = self.spin_backoff.learn(spun) {
            self.lock().pause_spinning(hand_offs);
        }
    }

    /// Carries out what a critical section decided: wakes waiters, closes connections, then reports.
    pub(crate) fn apply(&self, effects: Effects<M::Connection>) {
        for waiter in effects.wake {
            waiter.wake();
        }
        if let Some(next) = effects.nudge {
            next.nudge();
        }
        for (conn, reason) in effects.close {
            self.close(conn, reason);
        }
        self.observe.emit(effects.notes);
    }

    /// Applies `effects`, and tells `shutdown` if a closed pool has just drained.
    pub(crate) fn apply_released(&self, effects: Effects<M::Connection>, drained: bool) {
        self.apply(effects);
        if drained {
            self.drained.notify(usize::MAX);
        }
    }

    pub(crate) fn close(&self, conn: M::Connection, reason: CloseReason) {
        self.counters.closed(reason);
        let span = self.observe.close_span(reason);
        let _entered = span.enter();
        self.observe.closed(reason);
        // A connection's destructor is user code: a panic there must not unwind into the pool.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(conn)));
        self.closed_one();
    }

    /// Counts a connection that is gone (closed, or detached). On a closed pool the last one tells
    /// `shutdown`, whose slot may have been released before (SeqCst against `Closing`: either this
    /// sees the pool closed, or `shutdown`, which reads the count after closing, sees it).
    pub(crate) fn closed_one(&self) {
        if self.live.fetch_sub(1, Ordering::SeqCst) == 1 && self.closing.is_closed() {
            self.drained.notify(usize::MAX);
        }
    }

    /// Wraps a freshly opened connection with its deadline, jittered down by up to 2.5 % so that
    /// connections opened together do not all expire together.
    pub(crate) fn wrap_new(&self, raw: M::Connection, now: Instant) -> Box<Conn<M::Connection>> {
        let expires_at = self.config.max_lifetime.map(|lifetime| {
            let spread = lifetime.as_nanos() as u64 / 40;
            let jitter = if spread == 0 {
                0
            } else {
                self.next_random() % spread
            };
            now + lifetime - Duration::from_nanos(jitter)
        });
        let mut conn = Box::new(Conn {
            raw,
            gate_after: self.gate_after(expires_at, now),
            expires_at,
            idle_until: None,
            trusted_until: now,
            in_hand: false,
            may_shelve: false,
        });
        self.lend(&mut conn, now);
        conn
    }

    /// Records a checkout of `conn` at `now`, the start of a use: its idle timeout and health-check
    /// window count from here until a return through the gate records the use's end. While its
    /// `gate_after` has not come, its return may then rest on a shelf with no clock read.
    pub(crate) fn lend(&self, conn: &mut Conn<M::Connection>, now: Instant) {
        self.touch(conn, now);
        conn.may_shelve = conn.gate_after.is_none_or(|gate| now < gate);
    }

    /// Records a use of `conn` at `now`.
    fn touch(&self, conn: &mut Conn<M::Connection>, now: Instant) {
        conn.touch(
            now,
            self.config.idle_timeout,
            self.config.health_check_bypass,
        );
    }

    /// Records the use of a connection handed straight from its last holder (see `Conn::in_hand`)
    /// as its new holder takes it at `now`.
    pub(crate) fn take_in_hand(&self, conn: &mut Conn<M::Connection>, now: Instant) {
        if conn.in_hand {
            self.touch(conn, now);
        }
    }

    /// Makes a grant whose waiter gave up fit to go back to the idle list.
    pub(crate) fn settle(&self, grant: &mut Grant<M::Connection>) {
        if let Grant::Conn(conn) = grant {
            if conn.in_hand {
                self.take_in_hand(conn, Instant::now());
            }
        }
    }

    fn next_random(&self) -> u64 {
        // SplitMix64 over a shared counter: cheap, and good enough to spread expiry times.
        let mut z = self.jitter.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// When a connection that passes the gate at `now` should pass it again: at its expiry, or after
    /// [`reap_every`](Self::reap_every), whichever comes first.
    fn gate_after(&self, expires_at: Option<Instant>, now: Instant) -> Option<Instant> {
        let reap = self.reap_every.and_then(|every| now.checked_add(every));
        match (expires_at, reap) {
            (Some(expiry), Some(reap)) => Some(expiry.min(reap)),
            (expiry, reap) => expiry.or(reap),
        }
    }

    /// Why `conn` must not be handed out at `now`, if it must not.
    pub(crate) fn expired(&self, conn: &Conn<M::Connection>, now: Instant) -> Option<CloseReason> {
        if conn.expires_at.is_some_and(|at| now >= at) {
            return Some(CloseReason::MaxLifetime);
        }
        // With `min_idle`, an idled-out connection may be one the pool keeps: it is health-checked
        // rather than closed and reopened (returns and maintenance reap beyond `min_idle`).
        if self.config.min_idle == 0 && conn.idle_until.is_some_and(|at| now >= at) {
            return Some(CloseReason::IdleTimeout);
        }
        None
    }

    /// Whether `conn` has been unused long enough to need a health check.
    pub(crate) fn needs_validation(&self, conn: &Conn<M::Connection>, now: Instant) -> bool {
        self.config.enable_health_check && now >= conn.trusted_until
    }

    /// Takes back a connection from a holder: checks and cleans it, then returns it to the pool or
    /// closes it. Runs in the guard's `Drop`, so nothing here may panic or block for long.
    pub(crate) fn check_in(
        &self,
        mut conn: Box<Conn<M::Connection>>,
        lease: Option<usize>,
        handed_out: bool,
    ) {
        let span = self.observe.return_span();
        let _entered = span.enter();
        let manager = &self.manager;
        let healthy = catch_unwind(AssertUnwindSafe(|| {
            !manager.is_broken(&mut conn.raw)
                && manager.reset(&mut conn.raw).is_ok()
                && (!handed_out || hooks::run(&self.hooks.on_return, &mut conn.raw).is_ok())
        }))
        .unwrap_or(false);
        // A connection whose checkout did not finish (a cancelled health check, say) keeps the
        // deadlines of its last real use: it is not touched, and never shelved.
        if healthy && handed_out && lease.is_none() && conn.may_shelve && self.shelves.open() {
            // It takes its thread's shelf, its deadlines counted from its checkout. What the shelf held
            // before, and the connection itself if someone started to wait meanwhile, go through the
            // gate as they are: their deadlines count from their checkouts too.
            for conn in self.shelves.shelve(conn) {
                self.return_to_gate(conn, true, None, None, false);
            }
            let _ = catch_unwind(AssertUnwindSafe(|| manager.after_return()));
            return;
        }
        self.return_to_gate(conn, healthy, lease, None, handed_out);
        let _ = catch_unwind(AssertUnwindSafe(|| manager.after_return()));
    }

    /// Returns a connection to the gate: to the oldest waiter, else to the idle list; closed if
    /// unhealthy or expired. `used` says it was used just now (else its deadlines are current).
    fn return_to_gate(
        &self,
        mut conn: Box<Conn<M::Connection>>,
        healthy: bool,
        lease: Option<usize>,
        mut now: Option<Instant>,
        used: bool,
    ) {
        // The clock is read only when needed: a connection handed straight to a waiter is timed by
        // its new holder, who reads the clock anyway.
        let mut effects = Effects::default();
        let mut state = self.lock();
        if let Some(key) = lease {
            let at = *now.get_or_insert_with(Instant::now);
            self.end_lease(&mut state, key, at, &mut effects);
        }
        if !healthy {
            effects.close.push((conn.raw, CloseReason::Broken));
            state.release(false, &mut effects);
        } else if state.hands_off() {
            // The new holder records the use and checks the max lifetime as it takes it.
            conn.in_hand = used;
            state.check_in(conn, &mut effects);
        } else {
            let now = *now.get_or_insert_with(Instant::now);
            if conn.expires_at.is_some_and(|at| now >= at) {
                effects.close.push((conn.raw, CloseReason::MaxLifetime));
                state.release(false, &mut effects);
                self.reap_all(&mut state, now, &mut effects);
            } else {
                if used {
                    self.touch(&mut conn, now);
                }
                // Every return reaps the oldest idle connection if it idled out. One past its
                // `gate_after` (not expired: that was closed above) is due to reap as maintenance
                // does: the shelves too, since a thread that stopped using the pool leaves its
                // shelved connection there.
                let reap_all = conn.gate_after.is_some_and(|gate| now >= gate);
                conn.gate_after = self.gate_after(conn.expires_at, now);
                state.check_in(conn, &mut effects);
                if reap_all {
                    self.reap_all(&mut state, now, &mut effects);
                } else {
                    state.reap_oldest(now, self.config.min_idle, &mut effects);
                }
            }
        }
        let drained = state.closed && state.in_use + state.connecting == 0;
        drop(state);
        if !effects.is_empty() || drained {
            self.apply_released(effects, drained);
        }
    }

    /// Gives up a slot without a connection (`connecting`: a reserved slot, else a held one, with its
    /// leak-detection lease).
    pub(crate) fn release(&self, connecting: bool, lease: Option<usize>) {
        let mut effects = Effects::default();
        let mut state = self.lock();
        if let Some(key) = lease {
            self.end_lease(&mut state, key, Instant::now(), &mut effects);
        }
        state.release(connecting, &mut effects);
        let drained = state.closed && state.in_use + state.connecting == 0;
        drop(state);
        self.apply_released(effects, drained);
    }

    /// Ends a checkout's lease; a leak that was reported is reported as returned. Also checks the other
    /// leases, so that leaks are found without a maintenance task.
    fn end_lease(
        &self,
        state: &mut State<M::Connection>,
        key: usize,
        now: Instant,
        effects: &mut Effects<M::Connection>,
    ) {
        if let Some(lease) = state.leases[key].take() {
            if lease.reported {
                let held_for = now.saturating_duration_since(lease.since);
                effects.notes.leak_returned(lease.caller, held_for);
            }
        }
        self.report_leaks(state, now, effects);
    }

    /// Opens a connection and runs the `after_connect` hook on it, in the `create` span. A failed connect
    /// is counted and remembered for timeout reports; a failed hook closes the connection.
    pub(crate) async fn open(&self) -> Result<M::Connection, PoolError<M::Error>> {
        let open = async {
            let mut raw = match self.manager.connect().await {
                Ok(raw) => raw,
                Err(error) => {
                    self.counters.connect_failed();
                    self.observe.connect_failed(&error);
                    self.record_error(&error);
                    return Err(PoolError::Connect(error));
                }
            };
            self.counters.created();
            self.live.fetch_add(1, Relaxed);
            self.observe.created();
            if let Err(error) = hooks::run(&self.hooks.after_connect, &mut raw) {
                self.close(raw, CloseReason::Broken);
                return Err(PoolError::Hook(error));
            }
            Ok(raw)
        };
        self.observe.create_span().instrument(open).await
    }

    /// Remembers the last connect or validation error for timeout reports.
    pub(crate) fn record_error(&self, error: &dyn std::fmt::Display) {
        self.lock().last_error = Some(error.to_string());
    }
}

/// The gate's lock, held. Releasing it publishes the attention word that the shelves' fast paths obey.
pub(crate) struct Gate<'a, C> {
    state: MutexGuard<'a, State<C>>,
    shelves: &'a Shelves<C>,
}

impl<C> Gate<'_, C> {
    /// The gauges, with shelved connections counted as idle.
    pub(crate) fn gauges(&self) -> PoolState {
        self.state.gauges(self.shelves.count())
    }
}

impl<C> Deref for Gate<'_, C> {
    type Target = State<C>;

    fn deref(&self) -> &State<C> {
        &self.state
    }
}

impl<C> DerefMut for Gate<'_, C> {
    fn deref_mut(&mut self) -> &mut State<C> {
        &mut self.state
    }
}

impl<C> Drop for Gate<'_, C> {
    fn drop(&mut self) {
        self.shelves.publish(self.state.attention());
    }
}
