//! [`PoolStatistics`]: the gauges read from the gate's own state, and event counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::error::PoolState;

/// Why the pool closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The manager said it was broken, its reset failed, or a return hook failed.
    Broken,
    /// It sat idle longer than `idle_timeout`.
    IdleTimeout,
    /// It reached `max_lifetime`.
    MaxLifetime,
    /// Its health check failed or timed out.
    HealthCheck,
    /// The pool was closed, or shrunk by `resize`.
    Retired,
}

/// Counts of closed connections, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClosedConnections {
    /// Broken, failed to reset, or failed a return hook.
    pub broken: u64,
    /// Idle longer than `idle_timeout`.
    pub idle_timeout: u64,
    /// Older than `max_lifetime`.
    pub max_lifetime: u64,
    /// Failed or timed-out health check.
    pub health_check: u64,
    /// Closed because the pool shut down or shrank.
    pub retired: u64,
}

impl ClosedConnections {
    /// All closed connections.
    pub fn total(&self) -> u64 {
        self.broken + self.idle_timeout + self.max_lifetime + self.health_check + self.retired
    }
}

/// A snapshot of a pool. The first seven fields are those of the older crate.
///
/// Gauges (`active_connections`, `idle_connections`, `size`, `waiting`, ...) are read, in one critical
/// section, from the same state that gates checkouts, so they are always consistent with each other and
/// cannot drift. (A connection that a thread is taking from, or putting on, its own shelf at that
/// instant counts as either idle or active; `size` and their sum are exact.) Counters only ever grow.
///
/// ```
/// # use memory_storage_turso::pool::PoolStatistics;
/// let stats = PoolStatistics::default();
/// assert_eq!(stats.avg_wait_time_ms, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStatistics {
    /// Connections opened over the pool's life.
    pub total_created: usize,
    /// Health checks that passed.
    pub total_health_checks_passed: usize,
    /// Health checks that failed or timed out.
    pub total_health_checks_failed: usize,
    /// Slots held by callers now (checked out, or being checked before hand-over).
    pub active_connections: usize,
    /// Total time callers spent in checkout, in milliseconds.
    pub total_wait_time_ms: u64,
    /// Successful checkouts.
    pub total_checkouts: usize,
    /// `total_wait_time_ms / total_checkouts`.
    pub avg_wait_time_ms: u64,
    /// Open connections idle in the pool now.
    pub idle_connections: usize,
    /// Slots reserved by callers opening a connection now.
    pub connecting: usize,
    /// `idle + active + connecting`.
    pub size: usize,
    /// Callers queued now.
    pub waiting: usize,
    /// The current maximum size.
    pub max_size: usize,
    /// Connections closed, by reason.
    pub closed: ClosedConnections,
    /// Checkouts that timed out.
    pub timeouts: u64,
    /// Failed attempts to open a connection.
    pub connect_failures: u64,
    /// The longest single checkout, in milliseconds.
    pub max_wait_time_ms: u64,
    /// Connections held longer than `leak_detection_threshold` now.
    pub suspected_leaks: usize,
}

impl PoolStatistics {
    /// Recomputes `avg_wait_time_ms` (kept for the older crate's API).
    pub fn update_averages(&mut self) {
        self.avg_wait_time_ms = match self.total_checkouts {
            0 => 0,
            n => self.total_wait_time_ms / n as u64,
        };
    }

    /// The gauges alone.
    pub fn state(&self) -> PoolState {
        PoolState {
            size: self.size,
            idle: self.idle_connections,
            in_use: self.active_connections,
            connecting: self.connecting,
            waiting: self.waiting,
            max_size: self.max_size,
        }
    }
}

/// Event counters. They are not part of the gate, so they live outside its lock.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    created: AtomicU64,
    /// Counted on every checkout, so split by thread (see [`CheckoutCounts`]).
    checkouts: [CheckoutCounts; CHECKOUT_SHARDS],
    health_passed: AtomicU64,
    health_failed: AtomicU64,
    timeouts: AtomicU64,
    connect_failures: AtomicU64,
    closed: [AtomicU64; 5],
}

impl Counters {
    pub(crate) fn created(&self) {
        self.created.fetch_add(1, Relaxed);
    }

    pub(crate) fn checkout(&self, waited: Duration) {
        let counts = &self.checkouts[checkout_shard()];
        counts.checkouts.fetch_add(1, Relaxed);
        if !waited.is_zero() {
            let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            counts.wait_micros.fetch_add(micros, Relaxed);
            counts.max_wait_micros.fetch_max(micros, Relaxed);
        }
    }

    pub(crate) fn health_check(&self, passed: bool) {
        let counter = if passed {
            &self.health_passed
        } else {
            &self.health_failed
        };
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].fetch_add(1, Relaxed);
    }

    /// Combines the counters with the gauges into one snapshot.
    pub(crate) fn snapshot(&self, state: PoolState, suspected_leaks: usize) -> PoolStatistics {
        let get = |c: &AtomicU64| c.load(Relaxed);
        let closed = |r: CloseReason| get(&self.closed[r as usize]);
        let sum =
            |f: fn(&CheckoutCounts) -> &AtomicU64| self.checkouts.iter().map(f).map(get).sum();
        let max_wait_micros = self
            .checkouts
            .iter()
            .map(|c| get(&c.max_wait_micros))
            .max()
            .unwrap_or(0);
        let wait_micros: u64 = sum(|c| &c.wait_micros);
        let checkouts: u64 = sum(|c| &c.checkouts);
        let mut stats = PoolStatistics {
            total_created: get(&self.created) as usize,
            total_health_checks_passed: get(&self.health_passed) as usize,
            total_health_checks_failed: get(&self.health_failed) as usize,
            active_connections: state.in_use,
            total_wait_time_ms: wait_micros / 1000,
            total_checkouts: checkouts as usize,
            avg_wait_time_ms: 0,
            idle_connections: state.idle,
            connecting: state.connecting,
            size: state.size,
            waiting: state.waiting,
            max_size: state.max_size,
            closed: ClosedConnections {
                broken: closed(CloseReason::Broken),
                idle_timeout: closed(CloseReason::IdleTimeout),
                max_lifetime: closed(CloseReason::MaxLifetime),
                health_check: closed(CloseReason::HealthCheck),
                retired: closed(CloseReason::Retired),
            },
            timeouts: get(&self.timeouts),
            connect_failures: get(&self.connect_failures),
            max_wait_time_ms: max_wait_micros / 1000,
            suspected_leaks,
        };
        stats.update_averages();
        stats
    }
}

/// How many ways the checkout counters are split.
const CHECKOUT_SHARDS: usize = 8;

/// One thread's share of the checkout counters, on cache lines of its own. Every checkout updates
/// them; kept in one place, they were a cache line that each checkout pulled from the other core
/// under contention. A snapshot sums the shares.
#[derive(Debug, Default)]
#[repr(align(128))]
struct CheckoutCounts {
    checkouts: AtomicU64,
    wait_micros: AtomicU64,
    max_wait_micros: AtomicU64,
}

/// The calling thread's share of the checkout counters.
fn checkout_shard() -> usize {
    super::shelves::thread_number() % CHECKOUT_SHARDS
}
