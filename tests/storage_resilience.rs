//! Resilience with injected faults and fake time: retries happen only for transient errors and stay
//! within their backoff bounds; the circuit breaker opens, half-opens and closes as specified.
#![cfg(feature = "libsql")]

use std::cell::Cell;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use memory_storage_turso::rt::Runtime;
use memory_storage_turso::storage::{
    BreakerConfig, BreakerState, BreakerStats, CircuitBreaker, CircuitOpen, DatabaseErrorKind,
    RetryPolicy, SecurityError, StorageError, TursoConfig,
};
use proptest::prelude::*;

/// A runtime whose timer records each pause and returns at once.
#[derive(Clone, Default)]
struct FakeTimer {
    pauses: Arc<Mutex<Vec<Duration>>>,
}

impl FakeTimer {
    fn pauses(&self) -> Vec<Duration> {
        self.pauses.lock().unwrap().clone()
    }
}

impl Runtime for FakeTimer {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        self.pauses.lock().unwrap().push(duration);
        std::future::ready(())
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        std::thread::spawn(move || block_on(future));
    }

    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        std::future::ready(work())
    }
}

fn busy() -> StorageError {
    StorageError::database(DatabaseErrorKind::Busy, "database is locked")
}

/// Runs `policy.retry` over a scripted sequence of results (the last one repeats), and returns the
/// result, how many attempts were made, and the pauses taken.
fn run_script(
    policy: &RetryPolicy,
    script: Vec<fn() -> Result<u32, StorageError>>,
) -> (Result<u32, StorageError>, usize, Vec<Duration>) {
    let timer = FakeTimer::default();
    let attempts = Cell::new(0);
    let result = block_on(policy.retry(&timer, StorageError::is_transient, || {
        let attempt = attempts.get();
        attempts.set(attempt + 1);
        let outcome = script[attempt.min(script.len() - 1)]();
        async move { outcome }
    }));
    (result, attempts.get(), timer.pauses())
}

fn assert_within_caps(policy: &RetryPolicy, pauses: &[Duration]) {
    for (retry, pause) in pauses.iter().enumerate() {
        let cap = policy.delay_cap(retry as u32);
        assert!(*pause <= cap, "pause {retry} was {pause:?}, over {cap:?}");
    }
}

#[test]
fn transient_errors_are_retried_until_success() {
    let policy = RetryPolicy::default();
    let (result, attempts, pauses) =
        run_script(&policy, vec![|| Err(busy()), || Err(busy()), || Ok(7)]);
    assert_eq!(result.unwrap(), 7);
    assert_eq!(attempts, 3);
    assert_eq!(pauses.len(), 2);
    assert_within_caps(&policy, &pauses);
}

#[test]
fn retries_stop_after_max_retries_with_the_last_error() {
    let policy = RetryPolicy::default();
    let (result, attempts, pauses) = run_script(
        &policy,
        vec![|| {
            Err(StorageError::database(
                DatabaseErrorKind::Network,
                "connection reset",
            ))
        }],
    );
    let error = result.unwrap_err();
    assert!(error.to_string().contains("connection reset"), "{error}");
    assert_eq!(attempts, 1 + 3);
    assert_eq!(pauses.len(), 3);
    assert_within_caps(&policy, &pauses);
}

#[test]
fn zero_max_retries_means_one_attempt() {
    let policy = RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    };
    let (result, attempts, pauses) = run_script(&policy, vec![|| Err(busy())]);
    assert!(result.is_err());
    assert_eq!((attempts, pauses.len()), (1, 0));
}

#[test]
fn permanent_errors_are_never_retried() {
    let permanent: [fn() -> Result<u32, StorageError>; 6] = [
        || {
            Err(StorageError::database(
                DatabaseErrorKind::Constraint,
                "UNIQUE constraint failed",
            ))
        },
        || {
            Err(StorageError::database(
                DatabaseErrorKind::Sql,
                "no such table: episodes",
            ))
        },
        || {
            Err(StorageError::database(
                DatabaseErrorKind::Other,
                "disk I/O error",
            ))
        },
        || Err(StorageError::not_found("episode", uuid::Uuid::nil())),
        || Err(SecurityError::BlankToken.into()),
        || {
            Err(CircuitOpen {
                state: BreakerState::Open,
                retry_after: Duration::from_secs(1),
            }
            .into())
        },
    ];
    for fail in permanent {
        let (result, attempts, pauses) = run_script(&RetryPolicy::default(), vec![fail]);
        let error = result.unwrap_err();
        assert!(!error.is_transient(), "{error}");
        assert_eq!((attempts, pauses.len()), (1, 0), "{error}");
    }
}

#[test]
fn a_permanent_error_after_transient_ones_stops_the_retries() {
    let (result, attempts, pauses) = run_script(
        &RetryPolicy::default(),
        vec![
            || Err(busy()),
            || {
                Err(StorageError::database(
                    DatabaseErrorKind::Constraint,
                    "NOT NULL",
                ))
            },
            || Ok(1),
        ],
    );
    assert!(matches!(
        result,
        Err(StorageError::Database {
            kind: DatabaseErrorKind::Constraint,
            ..
        })
    ));
    assert_eq!((attempts, pauses.len()), (2, 1));
}

#[test]
fn every_transient_kind_is_retried() {
    for kind in [
        DatabaseErrorKind::Busy,
        DatabaseErrorKind::Locked,
        DatabaseErrorKind::Network,
        DatabaseErrorKind::Timeout,
    ] {
        assert!(StorageError::database(kind, "x").is_transient(), "{kind:?}");
    }
}

#[test]
fn the_policy_comes_from_turso_config() {
    let config = TursoConfig {
        max_retries: 5,
        retry_base_delay_ms: 20,
        retry_max_delay_ms: 300,
        enable_pooling: false,
    };
    let policy = RetryPolicy::from(&config);
    assert_eq!(policy.max_retries, 5);
    assert_eq!(policy.base_delay, Duration::from_millis(20));
    assert_eq!(policy.max_delay, Duration::from_millis(300));
    assert_eq!(
        RetryPolicy::default(),
        RetryPolicy::from(&TursoConfig::default())
    );
    assert_eq!(
        [0, 1, 2, 3, 4].map(|retry| policy.delay_cap(retry)),
        [20, 40, 80, 160, 300].map(Duration::from_millis)
    );
}

#[test]
fn turso_config_validation() {
    TursoConfig::default().validate().unwrap();
    let inverted = TursoConfig {
        retry_base_delay_ms: 6000,
        ..TursoConfig::default()
    };
    let error = inverted.validate().unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Config {
                setting: "retry_base_delay_ms",
                ..
            }
        ),
        "{error}"
    );
    let too_many = TursoConfig {
        max_retries: 1000,
        ..TursoConfig::default()
    };
    assert!(matches!(
        too_many.validate(),
        Err(StorageError::Config {
            setting: "max_retries",
            ..
        })
    ));
}

#[test]
fn the_jitter_spreads_pauses_over_the_whole_range() {
    let policy = RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(1),
    };
    let pauses: Vec<Duration> = (0..200)
        .flat_map(|_| run_script(&policy, vec![|| Err(busy())]).2)
        .collect();
    assert_eq!(pauses.len(), 200);
    assert!(pauses.iter().all(|p| *p <= Duration::from_secs(1)));
    assert!(pauses.iter().any(|p| *p < Duration::from_millis(250)));
    assert!(pauses.iter().any(|p| *p > Duration::from_millis(750)));
}

proptest! {
    #[test]
    fn backoff_stays_within_its_cap(
        base_ms in 0u64..10_000,
        max_ms in 0u64..120_000,
        retry in 0u32..80,
        fraction in 0.0f64..=1.0,
    ) {
        let policy = RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        };
        let exact_cap_ms = (u128::from(base_ms) << retry.min(100)).min(u128::from(max_ms));
        prop_assert_eq!(policy.delay_cap(retry).as_millis(), exact_cap_ms);
        let cap = policy.delay_cap(retry);
        let delay = policy.backoff(retry, fraction);
        prop_assert!(delay <= cap);
        // Full jitter: the pause is the fraction of the cap, to float precision.
        let expected = cap.as_secs_f64() * fraction;
        prop_assert!((delay.as_secs_f64() - expected).abs() <= 1e-9 + expected * 1e-12);
    }

    #[test]
    fn retries_match_the_failures_and_the_limit(failures in 0usize..10, max_retries in 0u32..6) {
        let policy = RetryPolicy { max_retries, ..RetryPolicy::default() };
        let timer = FakeTimer::default();
        let attempts = Cell::new(0);
        let result = block_on(policy.retry(&timer, StorageError::is_transient, || {
            let attempt = attempts.get();
            attempts.set(attempt + 1);
            async move { if attempt < failures { Err(busy()) } else { Ok(attempt) } }
        }));
        let retries = failures.min(max_retries as usize);
        prop_assert_eq!(attempts.get(), retries + 1);
        prop_assert_eq!(result.is_ok(), failures <= max_retries as usize);
        let pauses = timer.pauses();
        prop_assert_eq!(pauses.len(), retries);
        for (retry, pause) in pauses.iter().enumerate() {
            prop_assert!(*pause <= policy.delay_cap(retry as u32));
        }
    }
}

// The circuit breaker, on a fake clock.

#[derive(Clone)]
struct FakeClock(Arc<Mutex<Instant>>);

impl FakeClock {
    fn new() -> Self {
        FakeClock(Arc::new(Mutex::new(Instant::now())))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }

    fn reader(&self) -> impl Fn() -> Instant + Send + Sync + 'static {
        let now = self.0.clone();
        move || *now.lock().unwrap()
    }
}

const COOL_DOWN: Duration = Duration::from_secs(30);

fn breaker(
    threshold: u32,
    probes: u32,
) -> (
    CircuitBreaker<impl Fn() -> Instant + Send + Sync>,
    FakeClock,
) {
    let clock = FakeClock::new();
    let config = BreakerConfig {
        failure_threshold: threshold,
        cool_down: COOL_DOWN,
        half_open_max_probes: probes,
    };
    (
        CircuitBreaker::with_clock(config, clock.reader()).unwrap(),
        clock,
    )
}

fn stats(
    state: BreakerState,
    [total, successful, failed, rejected]: [u64; 4],
    consecutive_failures: u32,
    times_opened: u64,
) -> BreakerStats {
    BreakerStats {
        state,
        total_calls: total,
        successful_calls: successful,
        failed_calls: failed,
        rejected_calls: rejected,
        consecutive_failures,
        times_opened,
    }
}

#[test]
fn the_breaker_opens_after_the_threshold_of_consecutive_failures() {
    let (breaker, _clock) = breaker(3, 1);
    breaker.try_acquire().unwrap().record_failure();
    breaker.try_acquire().unwrap().record_failure();
    breaker.try_acquire().unwrap().record_success();
    breaker.try_acquire().unwrap().record_failure();
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [5, 1, 4, 0], 2, 0)
    );
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Open, [6, 1, 5, 0], 3, 1)
    );
}

#[test]
fn an_open_breaker_rejects_until_the_cool_down_has_passed() {
    let (breaker, clock) = breaker(1, 1);
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(Duration::from_secs(10));
    let rejection = breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejection,
        CircuitOpen {
            state: BreakerState::Open,
            retry_after: Duration::from_secs(20)
        }
    );
    assert!(rejection.to_string().contains("20s"), "{rejection}");

    clock.advance(Duration::from_secs(20) - Duration::from_millis(1));
    assert!(breaker.try_acquire().is_err());
    assert_eq!(breaker.state(), BreakerState::Open);

    clock.advance(Duration::from_millis(1));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::HalfOpen, [3, 0, 1, 2], 1, 1)
    );
}

#[test]
fn a_half_open_breaker_admits_at_most_its_probes() {
    let (breaker, clock) = breaker(1, 2);
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(COOL_DOWN);
    let first = breaker.try_acquire().unwrap();
    let second = breaker.try_acquire().unwrap();
    assert!(first.is_probe() && second.is_probe());
    for _ in 0..3 {
        assert_eq!(
            breaker.try_acquire().unwrap_err(),
            CircuitOpen {
                state: BreakerState::HalfOpen,
                retry_after: Duration::ZERO
            }
        );
    }
    assert_eq!(breaker.statistics().rejected_calls, 3);
    drop((first, second));
}

#[test]
fn a_successful_probe_closes_the_breaker() {
    let (breaker, clock) = breaker(2, 1);
    breaker.try_acquire().unwrap().record_failure();
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(COOL_DOWN);
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [3, 1, 2, 0], 0, 1)
    );
    let permit = breaker.try_acquire().unwrap();
    assert!(!permit.is_probe());
    permit.record_success();
}

#[test]
fn a_failed_probe_reopens_the_breaker_for_a_full_cool_down() {
    let (breaker, clock) = breaker(2, 1);
    breaker.try_acquire().unwrap().record_failure();
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(COOL_DOWN + Duration::from_secs(5));
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Open, [3, 0, 3, 0], 3, 2)
    );
    assert_eq!(breaker.try_acquire().unwrap_err().retry_after, COOL_DOWN);
    clock.advance(COOL_DOWN);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn a_dropped_probe_frees_its_slot() {
    let (breaker, clock) = breaker(1, 1);
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(COOL_DOWN);
    let probe = breaker.try_acquire().unwrap();
    assert!(breaker.try_acquire().is_err());
    drop(probe);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker.try_acquire().unwrap().record_success();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [4, 1, 1, 1], 0, 1)
    );
}

#[test]
fn a_probe_from_an_earlier_half_open_period_decides_nothing() {
    let (breaker, clock) = breaker(1, 2);
    breaker.try_acquire().unwrap().record_failure();
    clock.advance(COOL_DOWN);
    let stale = breaker.try_acquire().unwrap();
    breaker.try_acquire().unwrap().record_failure();
    assert_eq!(breaker.state(), BreakerState::Open);
    clock.advance(COOL_DOWN);
    let fresh = breaker.try_acquire().unwrap();
    stale.record_success();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let other = breaker.try_acquire().unwrap();
    assert!(
        breaker.try_acquire().is_err(),
        "the stale probe freed a fresh slot"
    );
    fresh.record_success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    other.record_success();
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [6, 3, 2, 1], 0, 2)
    );
}

#[test]
fn call_counts_only_classified_failures_and_skips_rejected_work() {
    let (breaker, clock) = breaker(2, 1);
    let is_failure = StorageError::is_transient;
    let ran = Cell::new(0);
    let run = |result: fn() -> Result<(), StorageError>| {
        block_on(breaker.call(is_failure, || {
            ran.set(ran.get() + 1);
            async move { result() }
        }))
    };

    assert!(run(|| Err(StorageError::not_found("episode", uuid::Uuid::nil()))).is_err());
    assert!(run(|| Err(busy())).is_err());
    assert!(run(|| Ok(())).is_ok());
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [3, 2, 1, 0], 0, 0)
    );

    assert!(run(|| Err(busy())).is_err());
    assert!(run(|| Err(busy())).is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
    let rejected = run(|| Ok(()));
    assert!(
        matches!(rejected, Err(StorageError::CircuitOpen(_))),
        "{rejected:?}"
    );
    assert_eq!(ran.get(), 5);

    clock.advance(COOL_DOWN);
    assert!(run(|| Ok(())).is_ok());
    assert_eq!(ran.get(), 6);
    assert_eq!(
        breaker.statistics(),
        stats(BreakerState::Closed, [7, 3, 3, 1], 0, 1)
    );
}

#[test]
fn breaker_config_is_validated() {
    let bad = [
        BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        },
        BreakerConfig {
            half_open_max_probes: 0,
            ..BreakerConfig::default()
        },
        BreakerConfig {
            cool_down: Duration::MAX,
            ..BreakerConfig::default()
        },
    ];
    for config in bad {
        assert!(
            matches!(
                CircuitBreaker::new(config),
                Err(StorageError::Config { .. })
            ),
            "{config:?}"
        );
    }
    let breaker = CircuitBreaker::new(BreakerConfig::default()).unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.config().failure_threshold, 5);
}

proptest! {
    /// Any sequence of calls keeps the statistics consistent with what happened.
    #[test]
    fn statistics_add_up(steps in proptest::collection::vec(0u8..4, 0..60)) {
        let (breaker, clock) = breaker(3, 2);
        let (mut admitted, mut rejected, mut successes, mut failures) = (0u64, 0u64, 0u64, 0u64);
        for step in steps {
            match step {
                0 | 1 => match breaker.try_acquire() {
                    Ok(permit) if step == 0 => {
                        admitted += 1;
                        successes += 1;
                        permit.record_success();
                    }
                    Ok(permit) => {
                        admitted += 1;
                        failures += 1;
                        permit.record_failure();
                    }
                    Err(_) => rejected += 1,
                },
                2 => clock.advance(COOL_DOWN / 2),
                _ => match breaker.try_acquire() {
                    Ok(permit) => {
                        admitted += 1;
                        drop(permit);
                    }
                    Err(_) => rejected += 1,
                },
            }
        }
        let stats = breaker.statistics();
        prop_assert_eq!(stats.total_calls, admitted + rejected);
        prop_assert_eq!(stats.rejected_calls, rejected);
        prop_assert_eq!(stats.successful_calls, successes);
        prop_assert_eq!(stats.failed_calls, failures);
        prop_assert!(stats.times_opened <= failures);
    }
}
