//! [`CircuitBreaker`]: stop calling a failing database for a while, then probe it.
//!
//! ```text
//!            failure_threshold consecutive failures
//!   Closed ─────────────────────────────────────────▶ Open ◀──────────┐
//!     ▲                                                 │ cool_down    │ a probe fails
//!     │ a probe succeeds                                ▼ elapsed      │
//!     └──────────────────────────────────────────── HalfOpen ─────────┘
//!                                         (at most half_open_max_probes calls at once)
//! ```
//!
//! "Now" comes from a [`Clock`], so tests drive the cool-down with a fake clock instead of sleeping.

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::storage::error::StorageError;

/// Where the breaker's "now" comes from. [`SystemClock`] is the real one; any
/// `Fn() -> Instant + Send + Sync` closure is a clock too, which is how tests fake time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real clock: [`Instant::now`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl<F> Clock for F
where
    F: Fn() -> Instant + Send + Sync + 'static,
{
    fn now(&self) -> Instant {
        self()
    }
}

/// Settings of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default 5.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets probes through. Default 30 s.
    pub cool_down: Duration,
    /// How many probe calls may run at once while half-open. Default 1.
    pub half_open_max_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
            half_open_max_probes: 1,
        }
    }
}

impl BreakerConfig {
    /// Checks that the threshold and the probe count are at least 1, and that the cool-down is at
    /// most [`MAX_DURATION`](crate::pool::MAX_DURATION).
    pub fn validate(&self) -> Result<(), StorageError> {
        let problem = if self.failure_threshold == 0 {
            Some(("failure_threshold", "must be at least 1"))
        } else if self.half_open_max_probes == 0 {
            Some((
                "half_open_max_probes",
                "must be at least 1, or the breaker could never close again",
            ))
        } else if self.cool_down > crate::pool::MAX_DURATION {
            Some(("cool_down", "must be at most 100 years"))
        } else {
            None
        };
        match problem {
            Some((setting, problem)) => Err(StorageError::Config {
                setting,
                problem: problem.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// The state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls are rejected until the cool-down has passed.
    Open,
    /// A bounded number of probe calls go through; the first result decides.
    HalfOpen,
}

/// What a [`CircuitBreaker`] has seen. Every call that asked for a permit counts in `total_calls`, then
/// in exactly one of `successful_calls`, `failed_calls` and `rejected_calls` once it is decided
/// (a permit dropped without a result counts in none of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerStats {
    /// The state now.
    pub state: BreakerState,
    /// Calls that asked to go through.
    pub total_calls: u64,
    /// Calls that went through and succeeded.
    pub successful_calls: u64,
    /// Calls that went through and failed.
    pub failed_calls: u64,
    /// Calls the breaker refused.
    pub rejected_calls: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// How many times the breaker has opened.
    pub times_opened: u64,
}

/// A call refused by an open (or fully probed half-open) [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct CircuitOpen {
    /// [`BreakerState::Open`] or [`BreakerState::HalfOpen`].
    pub state: BreakerState,
    /// How long until the breaker lets a probe through; zero when half-open (the probes in flight
    /// decide).
    pub retry_after: Duration,
}

impl CircuitOpen {
    fn message(&self) -> String {
        match self.state {
            BreakerState::HalfOpen => "the circuit breaker is half-open and its probe calls are still \
                                       running: try again once they finish"
                .to_owned(),
            _ => format!(
                "the circuit breaker is open after repeated database failures: calls are refused for \
                 another {:?} to let the database recover, then a probe call is let through",
                self.retry_after
            ),
        }
    }
}

/// A circuit breaker, generic over its [`Clock`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
/// use memory_storage_turso::storage::{BreakerConfig, BreakerState, CircuitBreaker};
///
/// let now = Arc::new(Mutex::new(Instant::now()));
/// let clock = { let now = now.clone(); move || *now.lock().unwrap() };
/// let config = BreakerConfig {
///     failure_threshold: 2,
///     cool_down: Duration::from_secs(10),
///     half_open_max_probes: 1,
/// };
/// let breaker = CircuitBreaker::with_clock(config, clock).unwrap();
///
/// breaker.try_acquire().unwrap().record_failure();
/// breaker.try_acquire().unwrap().record_failure();
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(breaker.try_acquire().is_err());
///
/// *now.lock().unwrap() += Duration::from_secs(10);
/// let probe = breaker.try_acquire().unwrap();
/// assert_eq!(breaker.state(), BreakerState::HalfOpen);
/// probe.record_success();
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
pub struct CircuitBreaker<C = SystemClock> {
    config: BreakerConfig,
    clock: C,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Counts transitions into half-open, so that a probe admitted in an earlier half-open period
    /// cannot decide (or free a slot of) a later one.
    generation: u64,
    stats: BreakerStats,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probes_in_flight: u32 },
}

impl<C> fmt::Debug for CircuitBreaker<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("config", &self.config)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker<SystemClock> {
    /// A breaker on the real clock.
    pub fn new(config: BreakerConfig) -> Result<Self, StorageError> {
        CircuitBreaker::with_clock(config, SystemClock)
    }
}

impl<C: Clock> CircuitBreaker<C> {
    /// A breaker that reads the time from `clock`.
    pub fn with_clock(config: BreakerConfig, clock: C) -> Result<Self, StorageError> {
        config.validate()?;
        Ok(CircuitBreaker {
            config,
            clock,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                generation: 0,
                stats: BreakerStats {
                    state: BreakerState::Closed,
                    total_calls: 0,
                    successful_calls: 0,
                    failed_calls: 0,
                    rejected_calls: 0,
                    consecutive_failures: 0,
                    times_opened: 0,
                },
            }),
        })
    }

    /// The breaker's settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state now (an open breaker whose cool-down has passed is half-open).
    pub fn state(&self) -> BreakerState {
        self.statistics().state
    }

    /// The statistics now.
    pub fn statistics(&self) -> BreakerStats {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.half_open_if_cooled_down(now);
        inner.stats.state = inner.phase.state();
        inner.stats
    }

    /// Asks to make a call: a permit to report the call's result through, or [`CircuitOpen`] if the
    /// breaker refuses it. Dropping the permit without a result frees its probe slot and changes
    /// nothing else, so a cancelled call cannot wedge the breaker half-open.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_, C>, CircuitOpen> {
        let now = self.clock.now();
        let mut inner = self.lock();
        inner.stats.total_calls += 1;
        inner.half_open_if_cooled_down(now);
        match inner.phase {
            Phase::Closed => Ok(BreakerPermit::new(self, None)),
            Phase::Open { until } => {
                inner.stats.rejected_calls += 1;
                Err(CircuitOpen {
                    state: BreakerState::Open,
                    retry_after: until.saturating_duration_since(now),
                })
            }
            Phase::HalfOpen { probes_in_flight }
                if probes_in_flight < self.config.half_open_max_probes =>
            {
                inner.phase = Phase::HalfOpen {
                    probes_in_flight: probes_in_flight + 1,
                };
                Ok(BreakerPermit::new(self, Some(inner.generation)))
            }
            Phase::HalfOpen { .. } => {
                inner.stats.rejected_calls += 1;
                Err(CircuitOpen {
                    state: BreakerState::HalfOpen,
                    retry_after: Duration::ZERO,
                })
            }
        }
    }

    /// Runs `operation` if the breaker lets it through, and records its result. Errors for which
    /// `is_failure` is false (a constraint violation, a missing row: the database answered) count as
    /// successes. A refused call returns `E::from(CircuitOpen)` without running `operation`.
    pub async fn call<T, E, Op, Fut>(
        &self,
        is_failure: impl Fn(&E) -> bool,
        operation: Op,
    ) -> Result<T, E>
    where
        E: From<CircuitOpen>,
        Op: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire()?;
        let result = operation().await;
        match &result {
            Err(error) if is_failure(error) => permit.record_failure(),
            _ => permit.record_success(),
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No user code runs under this lock (the clock is read before taking it), so a poisoned lock
        // still guards consistent state.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn settle(&self, probe_generation: Option<u64>, succeeded: bool) {
        let now = self.clock.now();
        let mut inner = self.lock();
        let is_current_probe = inner.release_probe(probe_generation);
        if succeeded {
            inner.stats.successful_calls += 1;
            inner.stats.consecutive_failures = 0;
            if is_current_probe {
                inner.phase = Phase::Closed;
            }
        } else {
            inner.stats.failed_calls += 1;
            inner.stats.consecutive_failures = inner.stats.consecutive_failures.saturating_add(1);
            let opens = match inner.phase {
                Phase::Closed => inner.stats.consecutive_failures >= self.config.failure_threshold,
                Phase::HalfOpen { .. } => is_current_probe,
                Phase::Open { .. } => false,
            };
            if opens {
                inner.phase = Phase::Open {
                    until: now + self.config.cool_down,
                };
                inner.stats.times_opened += 1;
            }
        }
    }

    fn abandon(&self, probe_generation: Option<u64>) {
        self.lock().release_probe(probe_generation);
    }
}

impl Inner {
    fn half_open_if_cooled_down(&mut self, now: Instant) {
        if let Phase::Open { until } = self.phase {
            if now >= until {
                self.phase = Phase::HalfOpen {
                    probes_in_flight: 0,
                };
                self.generation += 1;
            }
        }
    }

    /// Frees the probe slot of a permit admitted in `probe_generation`, if that half-open period is
    /// still going; returns whether it was.
    fn release_probe(&mut self, probe_generation: Option<u64>) -> bool {
        match (&mut self.phase, probe_generation) {
            (Phase::HalfOpen { probes_in_flight }, Some(generation))
                if generation == self.generation =>
            {
                *probes_in_flight -= 1;
                true
            }
            _ => false,
        }
    }
}

impl Phase {
    fn state(self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

/// Leave to make one call through a [`CircuitBreaker`]; report how it went with
/// [`record_success`](Self::record_success) or [`record_failure`](Self::record_failure).
#[must_use = "report the call's result with record_success or record_failure"]
pub struct BreakerPermit<'a, C: Clock = SystemClock> {
    breaker: &'a CircuitBreaker<C>,
    /// The half-open period this permit probes in, if it is a probe.
    probe_generation: Option<u64>,
    settled: bool,
}

impl<'a, C: Clock> BreakerPermit<'a, C> {
    fn new(breaker: &'a CircuitBreaker<C>, probe_generation: Option<u64>) -> Self {
        BreakerPermit {
            breaker,
            probe_generation,
            settled: false,
        }
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe_generation.is_some()
    }

    /// The call succeeded: resets the failure count, and closes a half-open breaker.
    pub fn record_success(mut self) {
        self.settled = true;
        self.breaker.settle(self.probe_generation, true);
    }

    /// The call failed: counts a failure, which opens a closed breaker at the threshold and reopens a
    /// half-open one.
    pub fn record_failure(mut self) {
        self.settled = true;
        self.breaker.settle(self.probe_generation, false);
    }
}

impl<C: Clock> fmt::Debug for BreakerPermit<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("is_probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}

impl<C: Clock> Drop for BreakerPermit<'_, C> {
    fn drop(&mut self) {
        if !self.settled {
            self.breaker.abandon(self.probe_generation);
        }
    }
}
