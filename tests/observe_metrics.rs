//! The pool's metrics (feature `metrics`), read from a debugging recorder and checked against
//! `statistics()`.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::thread;
use std::time::{Duration, Instant};

use common::TestManager;
use memory_storage_turso::pool::{Pool, PoolConfig, PoolError, PoolStatistics};
use metrics::Unit;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

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

/// What the recorder received. Its snapshots drain it (counters and gauges are swapped to 0, histograms
/// emptied), so counters and histograms add up over [`update`](Self::update)s, and a gauge keeps the
/// value of the last snapshot.
#[derive(Default)]
struct Metrics {
    counters: HashMap<String, u64>,
    gauges: HashMap<String, f64>,
    histograms: HashMap<String, Vec<f64>>,
    units: HashMap<String, Unit>,
}

/// A metric's name and sorted labels, as one string.
fn id(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    format!("{name}{labels:?}")
}

impl Metrics {
    fn update(&mut self, snapshotter: &Snapshotter) {
        for (key, unit, _, value) in snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
            let id = id(key.name(), &labels);
            if let Some(unit) = unit {
                self.units.insert(key.name().to_owned(), unit);
            }
            match value {
                DebugValue::Counter(n) => *self.counters.entry(id).or_default() += n,
                DebugValue::Gauge(value) => {
                    self.gauges.insert(id, value.0);
                }
                DebugValue::Histogram(values) => self
                    .histograms
                    .entry(id)
                    .or_default()
                    .extend(values.iter().map(|v| v.0)),
            }
        }
    }

    fn taken(snapshotter: &Snapshotter) -> Self {
        let mut metrics = Self::default();
        metrics.update(snapshotter);
        metrics
    }

    fn labels<'a>(pool: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut labels = vec![("pool", pool)];
        labels.extend_from_slice(extra);
        labels
    }

    fn counter(&self, name: &str, pool: &str, extra: &[(&str, &str)]) -> u64 {
        let id = id(name, &Self::labels(pool, extra));
        *self
            .counters
            .get(&id)
            .unwrap_or_else(|| panic!("no counter {id}"))
    }

    fn gauge(&self, name: &str, pool: &str) -> usize {
        let id = id(name, &Self::labels(pool, &[]));
        let value = *self
            .gauges
            .get(&id)
            .unwrap_or_else(|| panic!("no gauge {id}"));
        assert!(value >= 0.0 && value.fract() == 0.0, "{id} = {value}");
        value as usize
    }

    /// Every value recorded, in seconds.
    fn histogram(&self, name: &str, pool: &str) -> &[f64] {
        let id = id(name, &Self::labels(pool, &[]));
        self.histograms
            .get(&id)
            .unwrap_or_else(|| panic!("no histogram {id}"))
    }
}

/// Checks every counter and gauge of `pool` against its statistics.
fn assert_agree(metrics: &Metrics, pool: &str, stats: &PoolStatistics) {
    let counter = |name, extra: &[(&str, &str)]| metrics.counter(name, pool, extra);
    assert_eq!(
        counter(CREATED, &[]),
        stats.total_created as u64,
        "{stats:?}"
    );
    let closed = [
        ("broken", stats.closed.broken),
        ("idle_timeout", stats.closed.idle_timeout),
        ("max_lifetime", stats.closed.max_lifetime),
        ("health_check", stats.closed.health_check),
        ("retired", stats.closed.retired),
    ];
    for (reason, count) in closed {
        assert_eq!(counter(CLOSED, &[("reason", reason)]), count, "{reason}");
    }
    assert_eq!(counter(TIMEOUTS, &[]), stats.timeouts);
    assert_eq!(counter(CHECKOUTS, &[]), stats.total_checkouts as u64);
    assert_eq!(counter(CONNECT_FAILURES, &[]), stats.connect_failures);
    let passed = counter(HEALTH_CHECKS, &[("result", "passed")]);
    let failed = counter(HEALTH_CHECKS, &[("result", "failed")]);
    assert_eq!(passed, stats.total_health_checks_passed as u64);
    assert_eq!(failed, stats.total_health_checks_failed as u64);

    let gauge = |name| metrics.gauge(name, pool);
    assert_eq!(gauge(OPEN), stats.size, "{stats:?}");
    assert_eq!(gauge(IN_USE), stats.active_connections, "{stats:?}");
    assert_eq!(gauge(IDLE), stats.idle_connections, "{stats:?}");
    assert_eq!(gauge(CONNECTING), stats.connecting, "{stats:?}");
    assert_eq!(gauge(MAX), stats.max_size, "{stats:?}");
    assert_eq!(gauge(WAITING), stats.waiting, "{stats:?}");
}

/// Spins (without sleeping) until `condition` holds, failing after 10 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

fn build(recorder: &DebuggingRecorder, name: &str, config: PoolConfig) -> Pool<TestManager> {
    metrics::with_local_recorder(recorder, || {
        Pool::builder(TestManager::default())
            .config(config)
            .name(name)
            .build()
            .unwrap()
    })
}

#[test]
fn metrics_agree_with_statistics_after_a_workload() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let config = PoolConfig::builder()
        .max_connections(2)
        .health_check_bypass(Duration::ZERO) // every reuse is health-checked
        .idle_timeout(None)
        .max_lifetime(None)
        .build()
        .unwrap();
    let pool = build(&recorder, "main", config);
    let faults = pool.manager().faults.clone();

    let mut a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    let error = pool
        .get_blocking_timeout(Duration::from_millis(1))
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    a.broken = true;
    drop(a); // closed: broken
    drop(b);
    faults.fail_validation.store(true, SeqCst);
    drop(pool.get_blocking().unwrap()); // b fails its check (closed: health_check), a new one is opened
    faults.fail_validation.store(false, SeqCst);
    let held = pool.get_blocking().unwrap();
    faults.fail_connects.store(1, SeqCst);
    let error = pool.get_blocking().unwrap_err();
    assert!(matches!(error, PoolError::Connect(_)), "{error}");
    drop(held);
    let (e, f) = (pool.get_blocking().unwrap(), pool.get_blocking().unwrap());
    drop((e, f));
    pool.resize(1).unwrap(); // closes one of the two idle connections: retired
    for _ in 0..10 {
        drop(pool.get_blocking().unwrap());
    }

    // Hold the connection while another thread waits for it, and publish the gauges meanwhile.
    let held = pool.get_blocking().unwrap();
    let mut metrics = Metrics::default();
    let stats_during = thread::scope(|s| {
        let waiter = s.spawn(|| drop(pool.get_blocking().unwrap()));
        wait_until("the checkout waits", || pool.state().waiting == 1);
        // Quiet now: the holder is here and the waiter is parked.
        pool.record_metrics();
        metrics.update(&snapshotter);
        let stats = pool.statistics();
        drop(held);
        waiter.join().unwrap();
        stats
    });
    assert_eq!((stats_during.size, stats_during.active_connections), (1, 1));
    assert_eq!(
        (stats_during.idle_connections, stats_during.waiting),
        (0, 1)
    );
    assert_agree(&metrics, "main", &stats_during);

    pool.close(); // publishes the gauges once more
    metrics.update(&snapshotter);
    let stats = pool.statistics();
    assert_agree(&metrics, "main", &stats);
    assert_eq!(
        (stats.size, stats.idle_connections, stats.waiting),
        (0, 0, 0)
    );

    // What the workload did, by construction.
    assert_eq!(stats.total_created, 4);
    assert_eq!(stats.total_checkouts, 18);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(
        (
            stats.total_health_checks_passed,
            stats.total_health_checks_failed
        ),
        (14, 1)
    );
    let closed = stats.closed;
    assert_eq!(
        (closed.broken, closed.health_check, closed.retired),
        (1, 1, 2)
    );

    // One wait per checkout, summing to the statistics' wait time.
    let waits = metrics.histogram(WAIT, "main");
    assert_eq!(waits.len(), stats.total_checkouts);
    assert!(waits.iter().all(|w| *w >= 0.0));
    let sum_ms = waits.iter().sum::<f64>() * 1e3;
    let max_ms = waits.iter().fold(0.0_f64, |m, w| m.max(*w)) * 1e3;
    assert!(
        (sum_ms - stats.total_wait_time_ms as f64).abs() <= 1.0 + waits.len() as f64 / 1e3,
        "{sum_ms} ms against {} ms",
        stats.total_wait_time_ms
    );
    assert!((max_ms - stats.max_wait_time_ms as f64).abs() <= 1.0);
    assert_eq!(metrics.units.get(WAIT), Some(&Unit::Seconds));
}

#[test]
fn age_based_closes_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let short = Some(Duration::from_millis(1));
    let base = || {
        PoolConfig::builder()
            .max_connections(1)
            .enable_health_check(false)
    };
    let idle = build(
        &recorder,
        "idle",
        base()
            .idle_timeout(short)
            .max_lifetime(None)
            .build()
            .unwrap(),
    );
    let old = build(
        &recorder,
        "old",
        base()
            .idle_timeout(None)
            .max_lifetime(short)
            .build()
            .unwrap(),
    );
    // Open a connection in each, then run maintenance until the clock has passed the limit and the
    // reaper closed it (a round of maintenance also publishes the gauges).
    drop(idle.get_blocking().unwrap());
    drop(old.get_blocking().unwrap());
    wait_until("the connection idled out", || {
        idle.maintain_blocking();
        idle.statistics().closed.idle_timeout > 0
    });
    wait_until("the connection reached its lifetime", || {
        old.maintain_blocking();
        old.statistics().closed.max_lifetime > 0
    });
    let metrics = Metrics::taken(&snapshotter);
    for pool in [&idle, &old] {
        let stats = pool.statistics();
        assert_eq!((stats.total_created, stats.size), (1, 0));
        assert_agree(&metrics, pool.name(), &stats);
    }
    assert!(metrics.counter(CLOSED, "idle", &[("reason", "idle_timeout")]) > 0);
    assert!(metrics.counter(CLOSED, "old", &[("reason", "max_lifetime")]) > 0);
    // Each pool's metrics are its own.
    assert_eq!(
        metrics.counter(CLOSED, "idle", &[("reason", "max_lifetime")]),
        0
    );
    assert_eq!(
        metrics.counter(CLOSED, "old", &[("reason", "idle_timeout")]),
        0
    );
}

#[cfg(feature = "tokio")]
#[test]
fn the_maintenance_task_publishes_the_gauges() {
    use memory_storage_turso::rt::Tokio;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let config = PoolConfig::builder()
        .max_connections(3)
        .maintenance_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    let pool = metrics::with_local_recorder(&recorder, || {
        let _entered = runtime.enter();
        Pool::builder(TestManager::default())
            .config(config)
            .runtime(Tokio::current())
            .name("maintained")
            .build()
            .unwrap()
    });
    let held = [pool.get_blocking().unwrap(), pool.get_blocking().unwrap()];
    // No record_metrics here: only the background task can publish these. (Each snapshot resets the
    // recorder's gauges to 0, so a condition met in one snapshot was published after the previous one.)
    let gauges = || {
        let metrics = Metrics::taken(&snapshotter);
        let gauge = |name| metrics.gauge(name, "maintained");
        (gauge(OPEN), gauge(IN_USE), gauge(IDLE), gauge(MAX))
    };
    wait_until("the task publishes 2 in use", || gauges() == (2, 2, 0, 3));
    drop(held);
    wait_until("the task publishes 2 idle", || gauges() == (2, 0, 2, 3));
}

/// Laned pools (and storages) of one process publish under their own names, so that neither their
/// gauges nor their counters mix.
#[cfg(feature = "libsql")]
#[test]
fn named_lanes_publish_apart() {
    use memory_storage_turso::libsql::{LanedPool, LibsqlDatabase};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let laned = |name: &str| {
        metrics::with_local_recorder(&recorder, || {
            LanedPool::builder(LibsqlDatabase::open_memory().unwrap())
                .name(name)
                .readers(2)
                .build()
                .unwrap()
        })
    };
    let (a, b) = (laned("a"), laned("b"));
    let held = a.read_blocking().unwrap();
    drop(b.read_blocking().unwrap());
    a.read_pool().record_metrics();
    b.read_pool().record_metrics();
    let metrics = Metrics::taken(&snapshotter);
    assert_agree(&metrics, "a.read", &a.statistics().read);
    assert_agree(&metrics, "b.read", &b.statistics().read);
    assert_eq!(metrics.gauge(IN_USE, "a.read"), 1);
    assert_eq!(metrics.gauge(IN_USE, "b.read"), 0);
    assert_eq!(metrics.counter(CHECKOUTS, "b.read", &[]), 1);
    drop(held);
}
