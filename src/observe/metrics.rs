//! Metrics through the `metrics` facade (feature `metrics`), every one labelled `pool`.
//!
//! Handles are registered once per pool, with the recorder current when the pool is built, so recording
//! an event is a call on a handle and never looks a metric up. Counters and the histogram are recorded
//! where their event happens, next to the pool's own counters (so they agree with `statistics()`); the
//! gauges are sampled from the gate's state by [`PoolMetrics::publish`].

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use super::{reason_label, CloseReason};
use crate::pool::PoolState;

const OPEN: &str = "memory_storage_turso_pool_connections_open";
const IN_USE: &str = "memory_storage_turso_pool_connections_in_use";
const IDLE: &str = "memory_storage_turso_pool_connections_idle";
const CONNECTING: &str = "memory_storage_turso_pool_connections_connecting";
const MAX: &str = "memory_storage_turso_pool_connections_max";
const WAITING: &str = "memory_storage_turso_pool_waiting";
const CREATED: &str = "memory_storage_turso_pool_connections_created_total";
const CLOSED: &str = "memory_storage_turso_pool_connections_closed_total";
const CHECKOUTS: &str = "memory_storage_turso_pool_checkouts_total";
const TIMEOUTS: &str = "memory_storage_turso_pool_timeouts_total";
const CONNECT_FAILURES: &str = "memory_storage_turso_pool_connect_failures_total";
const HEALTH_CHECKS: &str = "memory_storage_turso_pool_health_checks_total";
const WAIT: &str = "memory_storage_turso_pool_checkout_wait_seconds";

/// Every reason, in `CloseReason` order (the index of a reason's counter).
const REASONS: [CloseReason; 5] = [
    CloseReason::Broken,
    CloseReason::IdleTimeout,
    CloseReason::MaxLifetime,
    CloseReason::HealthCheck,
    CloseReason::Retired,
];

/// The metric handles of one pool.
pub(super) struct PoolMetrics {
    pub(super) created: Counter,
    pub(super) closed: [Counter; 5],
    pub(super) timeouts: Counter,
    pub(super) connect_failures: Counter,
    checkouts: Counter,
    health_passed: Counter,
    health_failed: Counter,
    wait: Histogram,
    open: Gauge,
    in_use: Gauge,
    idle: Gauge,
    connecting: Gauge,
    max: Gauge,
    waiting: Gauge,
    /// Serializes [`publish`](Self::publish), so that gauges are set in the order they were read.
    publishing: Mutex<()>,
}

impl PoolMetrics {
    /// Describes the metrics and registers the handles of the pool `pool` with the current recorder.
    pub(super) fn register(pool: &str) -> Self {
        describe();
        let pool = pool.to_owned();
        let counter = |name: &'static str| metrics::counter!(name, "pool" => pool.clone());
        let gauge = |name: &'static str| metrics::gauge!(name, "pool" => pool.clone());
        let health = |result: &'static str| metrics::counter!(HEALTH_CHECKS, "pool" => pool.clone(), "result" => result);
        Self {
            created: counter(CREATED),
            closed: REASONS.map(|reason| {
                debug_assert_eq!(REASONS[reason as usize], reason);
                metrics::counter!(CLOSED, "pool" => pool.clone(), "reason" => reason_label(reason))
            }),
            timeouts: counter(TIMEOUTS),
            connect_failures: counter(CONNECT_FAILURES),
            checkouts: counter(CHECKOUTS),
            health_passed: health("passed"),
            health_failed: health("failed"),
            wait: metrics::histogram!(WAIT, "pool" => pool.clone()),
            open: gauge(OPEN),
            in_use: gauge(IN_USE),
            idle: gauge(IDLE),
            connecting: gauge(CONNECTING),
            max: gauge(MAX),
            waiting: gauge(WAITING),
            publishing: Mutex::new(()),
        }
    }

    #[inline]
    pub(super) fn checked_out(&self, waited: Duration) {
        self.checkouts.increment(1);
        self.wait.record(waited.as_secs_f64());
    }

    pub(super) fn health_checked(&self, passed: bool) {
        match passed {
            true => self.health_passed.increment(1),
            false => self.health_failed.increment(1),
        }
    }

    /// Sets the gauges from one snapshot of the gate's state, taken (by `gauges`) while holding the
    /// publication lock: two publications cannot cross, so the last snapshot taken is the one that stays.
    pub(super) fn publish(&self, gauges: impl FnOnce() -> PoolState) {
        let _order = self
            .publishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let state = gauges();
        self.open.set(state.size as f64);
        self.in_use.set(state.in_use as f64);
        self.idle.set(state.idle as f64);
        self.connecting.set(state.connecting as f64);
        self.max.set(state.max_size as f64);
        self.waiting.set(state.waiting as f64);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        OPEN,
        Unit::Count,
        "Open connections plus those being opened (idle + in use + connecting)."
    );
    describe_gauge!(IN_USE, Unit::Count, "Connections held by callers.");
    describe_gauge!(IDLE, Unit::Count, "Open connections idle in the pool.");
    describe_gauge!(
        CONNECTING,
        Unit::Count,
        "Slots reserved by callers opening a connection."
    );
    describe_gauge!(MAX, Unit::Count, "The pool's current maximum size.");
    describe_gauge!(WAITING, Unit::Count, "Callers queued for a connection.");
    describe_counter!(CREATED, Unit::Count, "Connections opened.");
    describe_counter!(CLOSED, Unit::Count, "Connections closed, by reason.");
    describe_counter!(CHECKOUTS, Unit::Count, "Successful checkouts.");
    describe_counter!(TIMEOUTS, Unit::Count, "Checkouts that timed out.");
    describe_counter!(
        CONNECT_FAILURES,
        Unit::Count,
        "Failed attempts to open a connection."
    );
    describe_counter!(HEALTH_CHECKS, Unit::Count, "Health checks, by result.");
    describe_histogram!(
        WAIT,
        Unit::Seconds,
        "Time from the call to the hand-over of each successful checkout (0 on the fast path)."
    );
}
