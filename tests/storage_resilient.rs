//! `ResilientStorage` with real faults injected into a local file, on a fake runtime (its timer records
//! each pause and returns at once) and a fake clock: only transient errors are retried, pauses stay
//! within their caps, and the breaker opens, half-opens (one probe at a time) and closes.
//!
//! The faults are real SQLite errors: a second connection that holds the write lock (`BEGIN
//! IMMEDIATE`) makes the storage's writes fail with SQLITE_BUSY (its busy timeout is 0 here), a
//! trigger makes them fail with a constraint error, and a dropped table with an SQL error. The fake
//! timer's pauses are where a test releases the lock, so the schedule is exact.
#![cfg(feature = "libsql")]

mod storage_support;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use memory_storage_turso::libsql::{ConnectionSetup, OwnedConnection};
use memory_storage_turso::rt::Runtime;
use memory_storage_turso::storage::{
    BreakerConfig, BreakerState, CircuitOpen, DatabaseErrorKind, ResilientStorage, StorageError,
    TaskType, TursoConfig, TursoStorage,
};
use storage_support::*;

type PauseHook = Box<dyn FnMut(usize) + Send>;

/// A runtime whose timer records each pause, runs the test's hook with the pause's index, and returns
/// at once. Spawned background work (pool maintenance) is dropped; blocking work runs in place.
#[derive(Clone, Default)]
struct FakeRuntime {
    pauses: Arc<Mutex<Vec<Duration>>>,
    hook: Arc<Mutex<Option<PauseHook>>>,
}

impl FakeRuntime {
    fn pauses(&self) -> Vec<Duration> {
        self.pauses.lock().unwrap().clone()
    }

    fn on_pause(&self, hook: impl FnMut(usize) + Send + 'static) {
        *self.hook.lock().unwrap() = Some(Box::new(hook));
    }
}

impl Runtime for FakeRuntime {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        let index = {
            let mut pauses = self.pauses.lock().unwrap();
            pauses.push(duration);
            pauses.len() - 1
        };
        // Taken out while it runs, so that the hook may make calls of its own.
        let hook = self.hook.lock().unwrap().take();
        if let Some(mut hook) = hook {
            hook(index);
            self.hook.lock().unwrap().get_or_insert(hook);
        }
        std::future::ready(())
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(future);
    }

    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        std::future::ready(work())
    }
}

/// A clock that moves only when told to.
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

/// A local file, a storage on it (busy timeout 0, on the fake runtime), and a second connection to
/// inject faults with.
struct Faulty {
    db: TempDb,
    runtime: FakeRuntime,
    storage: TursoStorage<FakeRuntime>,
    /// Shared with unlock hooks, so that its last owner is always the guard.
    raw: Arc<OwnedConnection>,
}

impl Faulty {
    fn new(config: TursoConfig) -> Self {
        let db = TempDb::new();
        let runtime = FakeRuntime::default();
        let storage = block_on(
            TursoStorage::builder(&db.url, "")
                .config(config)
                .connection_setup(ConnectionSetup::default().busy_timeout(Duration::ZERO))
                .runtime(runtime.clone())
                .build(),
        )
        .unwrap();
        block_on(storage.initialize_schema()).unwrap();
        let raw = block_on(libsql::Builder::new_local(db.path()).build())
            .unwrap()
            .connect()
            .unwrap();
        let raw = Arc::new(OwnedConnection::local(raw).unwrap());
        Faulty {
            db,
            runtime,
            storage,
            raw,
        }
    }

    fn resilient(
        &self,
        breaker: BreakerConfig,
        clock: &FakeClock,
    ) -> ResilientStorage<FakeRuntime, impl memory_storage_turso::storage::Clock> {
        ResilientStorage::with_breaker_and_clock(self.storage.clone(), breaker, clock.reader())
            .unwrap()
    }

    /// Takes the write lock from another connection, until [`unlock`](Self::unlock).
    fn lock(&self) {
        block_on(self.raw.execute("BEGIN IMMEDIATE", ())).unwrap();
    }

    /// A closure that releases the lock, for a pause hook.
    fn unlocker(&self) -> impl FnMut() + Send + 'static {
        let raw = self.raw.clone();
        move || {
            if !raw.is_autocommit() {
                block_on(raw.execute("COMMIT", ())).unwrap();
            }
        }
    }

    fn write_checkouts(&self) -> usize {
        self.storage
            .lane_statistics()
            .unwrap()
            .write
            .total_checkouts
    }
}

fn config(max_retries: u32) -> TursoConfig {
    TursoConfig {
        max_retries,
        retry_base_delay_ms: 100,
        retry_max_delay_ms: 250,
        enable_pooling: true,
    }
}

fn lenient_breaker() -> BreakerConfig {
    BreakerConfig {
        failure_threshold: 100,
        ..BreakerConfig::default()
    }
}

fn assert_within_caps(
    storage: &ResilientStorage<FakeRuntime, impl memory_storage_turso::storage::Clock>,
    pauses: &[Duration],
) {
    for (retry, pause) in pauses.iter().enumerate() {
        let cap = storage.retry_policy().delay_cap(retry as u32);
        assert!(
            *pause <= cap,
            "pause {retry} was {pause:?}, over its cap {cap:?}"
        );
        assert!(
            cap <= Duration::from_millis(250),
            "caps stop at retry_max_delay_ms"
        );
    }
}

fn is_busy(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::Database {
            kind: DatabaseErrorKind::Busy,
            ..
        }
    )
}

#[test]
fn busy_writes_are_retried_until_the_lock_is_released() {
    let faulty = Faulty::new(config(5));
    let storage = faulty.resilient(lenient_breaker(), &FakeClock::new());
    let episode = full_episode(0, TaskType::Debugging, context("web", None));
    faulty.lock();
    let mut unlock = faulty.unlocker();
    faulty.runtime.on_pause(move |index| {
        if index == 1 {
            unlock();
        }
    });

    block_on(storage.store_episode(&episode)).unwrap();

    let pauses = faulty.runtime.pauses();
    assert_eq!(
        pauses.len(),
        2,
        "two busy attempts, then the third succeeded"
    );
    assert_within_caps(&storage, &pauses);
    assert_eq!(
        faulty.write_checkouts(),
        1 + 3,
        "the schema, then three attempts"
    );
    assert_eq!(
        block_on(storage.get_episode(episode.episode_id)).unwrap(),
        Some(episode)
    );
    let stats = storage.breaker_statistics();
    assert_eq!(
        (
            stats.total_calls,
            stats.successful_calls,
            stats.failed_calls
        ),
        (2, 2, 0)
    );
}

#[test]
fn retries_stop_after_max_retries_with_the_busy_error() {
    let faulty = Faulty::new(config(4));
    let storage = faulty.resilient(lenient_breaker(), &FakeClock::new());
    faulty.lock();
    let error =
        block_on(storage.store_episode(&full_episode(0, TaskType::Other, context("x", None))))
            .unwrap_err();
    assert!(is_busy(&error), "{error:?}");
    assert!(error.is_transient());
    let pauses = faulty.runtime.pauses();
    assert_eq!(pauses.len(), 4);
    assert_within_caps(&storage, &pauses);
    assert_eq!(
        faulty.write_checkouts(),
        1 + 5,
        "the schema, then 1 + max_retries attempts"
    );
    let stats = storage.breaker_statistics();
    assert_eq!((stats.failed_calls, stats.consecutive_failures), (1, 1));
    assert_eq!(stats.state, BreakerState::Closed);

    // The batch is retried whole, and stays all-or-nothing.
    (faulty.unlocker())();
    faulty.lock();
    let mut unlock = faulty.unlocker();
    faulty.runtime.on_pause(move |_| unlock());
    let batch: Vec<_> = (0..3)
        .map(|i| full_episode(i, TaskType::Other, context("x", None)))
        .collect();
    block_on(storage.store_episodes(&batch)).unwrap();
    assert_eq!(block_on(storage.get_statistics()).unwrap().episode_count, 3);
}

#[test]
fn constraint_errors_are_not_retried_and_do_not_trip_the_breaker() {
    let faulty = Faulty::new(config(5));
    let storage = faulty.resilient(
        BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::default()
        },
        &FakeClock::new(),
    );
    block_on(faulty.raw.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON episodes BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    ))
    .unwrap();
    let checkouts = faulty.write_checkouts();
    let error =
        block_on(storage.store_episode(&full_episode(0, TaskType::Other, context("x", None))))
            .unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Database {
                kind: DatabaseErrorKind::Constraint,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(faulty.runtime.pauses().is_empty(), "no retry");
    assert_eq!(faulty.write_checkouts(), checkouts + 1, "one attempt");
    let stats = storage.breaker_statistics();
    assert_eq!(stats.state, BreakerState::Closed, "the database answered");
    assert_eq!((stats.successful_calls, stats.consecutive_failures), (1, 0));
}

#[test]
fn sql_errors_are_not_retried() {
    let faulty = Faulty::new(config(5));
    let storage = faulty.resilient(lenient_breaker(), &FakeClock::new());
    block_on(faulty.raw.execute("DROP TABLE episodes", ())).unwrap();
    let error = block_on(storage.get_episode(uuid::Uuid::new_v4())).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Database {
                kind: DatabaseErrorKind::Sql,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(faulty.runtime.pauses().is_empty(), "no retry");
    drop(faulty.db);
}

#[test]
fn the_breaker_opens_rejects_half_opens_and_closes() {
    let faulty = Faulty::new(config(1));
    let clock = FakeClock::new();
    let breaker = BreakerConfig {
        failure_threshold: 2,
        cool_down: Duration::from_secs(30),
        half_open_max_probes: 1,
    };
    let storage = faulty.resilient(breaker, &clock);
    let episode = full_episode(0, TaskType::Other, context("x", None));
    faulty.lock();

    for _ in 0..2 {
        let error = block_on(storage.store_episode(&episode)).unwrap_err();
        assert!(is_busy(&error), "{error:?}");
    }
    assert_eq!(storage.breaker_state(), BreakerState::Open);
    assert_eq!(faulty.runtime.pauses().len(), 2, "one retry per call");

    // Open: calls are refused without touching the database, and the health check says so.
    let (writes, reads) = (
        faulty.write_checkouts(),
        storage.lane_statistics().unwrap().read.total_checkouts,
    );
    let error = block_on(storage.store_episode(&episode)).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::CircuitOpen(CircuitOpen {
                state: BreakerState::Open,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(!block_on(storage.health_check()).unwrap());
    assert_eq!(faulty.write_checkouts(), writes);
    assert_eq!(
        storage.lane_statistics().unwrap().read.total_checkouts,
        reads
    );
    assert_eq!(faulty.runtime.pauses().len(), 2);

    // Cool-down over: one probe, which fails and reopens the breaker for a full cool-down.
    clock.advance(Duration::from_secs(30));
    assert_eq!(storage.breaker_state(), BreakerState::HalfOpen);
    assert!(is_busy(
        &block_on(storage.store_episode(&episode)).unwrap_err()
    ));
    assert_eq!(storage.breaker_state(), BreakerState::Open);
    clock.advance(Duration::from_secs(29));
    assert_eq!(storage.breaker_state(), BreakerState::Open);

    // Next cool-down: the lock is gone, the probe succeeds, the breaker closes.
    clock.advance(Duration::from_secs(1));
    (faulty.unlocker())();
    block_on(storage.store_episode(&episode)).unwrap();
    assert_eq!(storage.breaker_state(), BreakerState::Closed);
    assert!(block_on(storage.health_check()).unwrap());

    let stats = storage.breaker_statistics();
    assert_eq!(stats.times_opened, 2);
    assert_eq!(stats.failed_calls, 3);
    assert_eq!(
        stats.rejected_calls, 2,
        "the store and the health check while open"
    );
    assert_eq!(stats.successful_calls, 2);
    assert_eq!(stats.total_calls, 7);
    assert_eq!(stats.consecutive_failures, 0);
}

#[test]
fn a_half_open_breaker_lets_one_probe_through_at_a_time() {
    let faulty = Faulty::new(config(3));
    let clock = FakeClock::new();
    let breaker = BreakerConfig {
        failure_threshold: 1,
        cool_down: Duration::from_secs(10),
        half_open_max_probes: 1,
    };
    let storage = faulty.resilient(breaker, &clock);
    let episode = full_episode(0, TaskType::Other, context("x", None));
    faulty.lock();
    assert!(is_busy(
        &block_on(storage.store_episode(&episode)).unwrap_err()
    ));
    assert_eq!(storage.breaker_state(), BreakerState::Open);
    let pauses_before_probe = faulty.runtime.pauses().len();
    clock.advance(Duration::from_secs(10));

    // The probe fails once (busy) and pauses before its retry: meanwhile, other calls are refused.
    let (other, mut unlock) = (storage.clone(), faulty.unlocker());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in_hook = seen.clone();
    faulty.runtime.on_pause(move |_| {
        let refused = block_on(other.get_statistics()).unwrap_err();
        let healthy = block_on(other.health_check()).unwrap();
        seen_in_hook
            .lock()
            .unwrap()
            .push((refused.to_string(), healthy));
        assert!(
            matches!(
                refused,
                StorageError::CircuitOpen(CircuitOpen {
                    state: BreakerState::HalfOpen,
                    ..
                })
            ),
            "{refused:?}"
        );
        unlock();
    });
    block_on(storage.store_episode(&episode)).unwrap();

    assert_eq!(faulty.runtime.pauses().len(), pauses_before_probe + 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        !seen[0].1,
        "the health check reports the busy half-open breaker"
    );
    assert_eq!(storage.breaker_state(), BreakerState::Closed);
    assert_eq!(storage.breaker_statistics().rejected_calls, 2);
}
