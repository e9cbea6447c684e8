//! The pool's spans and events (feature `tracing`), seen by a subscriber that records them.
#![cfg(feature = "tracing")]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use common::TestManager;
use memory_storage_turso::pool::{Pool, PoolConfig, PoolError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Level, Metadata, Subscriber};

const TARGET: &str = "memory_storage_turso::pool";

#[derive(Debug, Clone)]
struct SpanRecord {
    id: u64,
    name: &'static str,
    target: String,
    level: Level,
    parent: Option<u64>,
    fields: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone)]
struct EventRecord {
    level: Level,
    target: String,
    /// The span the event happened in.
    span: Option<u64>,
    fields: BTreeMap<&'static str, String>,
}

impl EventRecord {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }
}

/// Everything the subscriber saw; spans are numbered from 1 in creation order.
#[derive(Debug, Default)]
struct Log {
    spans: Vec<SpanRecord>,
    events: Vec<EventRecord>,
    /// The spans each thread is in, innermost last.
    stacks: HashMap<ThreadId, Vec<u64>>,
}

impl Log {
    fn current(&self) -> Option<u64> {
        self.stacks.get(&thread::current().id())?.last().copied()
    }

    fn spans(&self, name: &str) -> Vec<&SpanRecord> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn span(&self, id: u64) -> &SpanRecord {
        &self.spans[id as usize - 1]
    }

    fn events(&self, message: &str) -> Vec<&EventRecord> {
        self.events
            .iter()
            .filter(|e| e.message().starts_with(message))
            .collect()
    }
}

/// A subscriber that records the spans and events of this crate, with their fields and parents.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Log>>);

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("memory_storage_turso")
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut log = self.0.lock().unwrap();
        let id = log.spans.len() as u64 + 1;
        let parent = match attrs.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if attrs.is_contextual() => log.current(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let metadata = attrs.metadata();
        log.spans.push(SpanRecord {
            id,
            name: metadata.name(),
            target: metadata.target().to_owned(),
            level: *metadata.level(),
            parent,
            fields,
        });
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut log = self.0.lock().unwrap();
        let index = span.into_u64() as usize - 1;
        values.record(&mut Fields(&mut log.spans[index].fields));
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut log = self.0.lock().unwrap();
        let span = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => log.current(),
            None => None,
        };
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let metadata = event.metadata();
        log.events.push(EventRecord {
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            span,
            fields,
        });
    }

    fn enter(&self, span: &Id) {
        let mut log = self.0.lock().unwrap();
        let stack = log.stacks.entry(thread::current().id()).or_default();
        stack.push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut log = self.0.lock().unwrap();
        let stack = log.stacks.entry(thread::current().id()).or_default();
        let at = stack.iter().rposition(|&id| id == span.into_u64());
        stack.remove(at.expect("exited a span that was not entered"));
    }
}

/// Runs `f` with a fresh recording subscriber as this thread's default, and returns what it recorded.
/// Threads that `f` starts join in with [`in_dispatch`].
///
/// `tracing` caches whether each callsite is enabled when it is first seen, from the subscribers alive
/// then. So one test records at a time, and tests do all their pool work inside `f`: a callsite first
/// seen by a thread with no recorder could stay disabled for the next test's recorder (seen: `acquire`
/// or `return` spans missing from a test's own recording, in up to 4 runs in 10).
fn record<T>(f: impl FnOnce() -> T) -> (T, Log) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recorder = Recorder::default();
    let value = tracing::subscriber::with_default(recorder.clone(), f);
    let log = std::mem::take(&mut *recorder.0.lock().unwrap());
    (value, log)
}

/// Runs `f` on this thread with `dispatch` as its default subscriber.
fn in_dispatch<T>(dispatch: &Dispatch, f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(dispatch, f)
}

/// Spins (without sleeping) until `condition` holds, failing after 10 s.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::yield_now();
    }
}

fn field<'a>(fields: &'a BTreeMap<&'static str, String>, name: &str) -> &'a str {
    fields
        .get(name)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

/// Checks what every span and event of the pool has: the target, and the pool's name.
fn assert_all_of_pool(log: &Log, pool: &str) {
    assert!(!log.spans.is_empty(), "nothing was recorded");
    for span in &log.spans {
        assert_eq!(span.target, TARGET, "{span:?}");
        assert_eq!(field(&span.fields, "pool"), pool, "{span:?}");
    }
    for event in &log.events {
        assert_eq!(event.target, TARGET, "{event:?}");
        assert_eq!(field(&event.fields, "pool"), pool, "{event:?}");
    }
}

#[test]
fn blocking_checkouts_make_acquire_create_validate_return_and_close_spans() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO) // every reuse is health-checked
        .idle_timeout(None)
        .max_lifetime(None)
        .build()
        .unwrap();
    let ((stats, waiter_took), log) = record(|| {
        let pool = Pool::builder(manager.clone())
            .config(config)
            .name("traced")
            .build()
            .unwrap();
        drop(pool.get_blocking().unwrap()); // opens the connection
        drop(pool.get_blocking().unwrap()); // reuses it, after a health check
        let held = pool.get_blocking().unwrap();
        let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
        let waiter_took = thread::scope(|s| {
            // A fourth checkout, on another thread, waits for the one held here.
            let waiter = s.spawn(|| {
                in_dispatch(&dispatch, || {
                    let called = Instant::now();
                    drop(pool.get_blocking().unwrap());
                    called.elapsed()
                })
            });
            wait_until("the checkout waits", || pool.state().waiting == 1);
            drop(held);
            waiter.join().unwrap()
        });
        pool.close(); // closes the idle connection
        (pool.statistics(), waiter_took)
    });
    assert_all_of_pool(&log, "traced");
    assert_eq!(stats.total_checkouts, 4);
    assert_eq!(stats.total_created, 1);
    assert_eq!(stats.total_health_checks_passed, 3);
    assert_eq!(stats.closed.retired, 1);

    let acquires = log.spans("acquire");
    assert_eq!(acquires.len(), 4, "{:#?}", log.spans);
    let waits: Vec<u64> = acquires
        .iter()
        .map(|s| {
            assert_eq!(s.level, Level::TRACE);
            field(&s.fields, "wait_us").parse().unwrap()
        })
        .collect();
    // The waiter's wait includes parking until this thread gave its connection back, and lies within
    // its call.
    assert!(waits[3] > 0, "{waits:?}");
    assert!(
        u128::from(waits[3]) <= waiter_took.as_micros(),
        "{waits:?} {waiter_took:?}"
    );

    let creates = log.spans("create");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].level, Level::DEBUG);
    assert_eq!(
        creates[0].parent,
        Some(acquires[0].id),
        "create runs in acquire"
    );

    let validates = log.spans("validate");
    let parents: Vec<_> = validates.iter().map(|s| s.parent).collect();
    let expected: Vec<_> = acquires[1..].iter().map(|s| Some(s.id)).collect();
    assert_eq!(parents, expected, "each reuse is validated in its acquire");

    assert_eq!(log.spans("return").len(), 4, "one return per checkout");
    let closes = log.spans("close");
    assert_eq!(closes.len(), 1);
    assert_eq!(field(&closes[0].fields, "reason"), "retired");
    assert!(
        log.events.is_empty(),
        "nothing went wrong: {:#?}",
        log.events
    );
}

#[cfg(feature = "tokio")]
#[test]
fn an_async_checkout_runs_in_its_acquire_span_and_a_timeout_is_an_event() {
    use memory_storage_turso::rt::Tokio;

    let manager = TestManager::default();
    let config = PoolConfig::builder().max_connections(1).build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (stats, log) = record(|| {
        runtime.block_on(async {
            let pool = Pool::builder(manager.clone())
                .config(config)
                .runtime(Tokio::current())
                .name("async")
                .build()
                .unwrap();
            let held = pool.get().await.unwrap(); // opens the connection
            let error = pool
                .get_timeout(Duration::from_millis(5))
                .await
                .unwrap_err();
            assert!(error.is_timeout(), "{error}");
            drop(held);
            drop(pool.get().await.unwrap()); // the fast path: idle, trusted, no wait
            pool.statistics()
        })
    });
    assert_all_of_pool(&log, "async");
    assert_eq!((stats.total_checkouts, stats.timeouts), (2, 1));

    let acquires = log.spans("acquire");
    assert_eq!(acquires.len(), 3, "{:#?}", log.spans);
    let creates = log.spans("create");
    assert_eq!(creates.len(), 1);
    assert_eq!(
        creates[0].parent,
        Some(acquires[0].id),
        "create runs in acquire"
    );
    assert!(field(&acquires[0].fields, "wait_us").parse::<u64>().is_ok());
    assert!(
        !acquires[1].fields.contains_key("wait_us"),
        "a timed-out checkout was never handed over"
    );
    assert_eq!(field(&acquires[2].fields, "wait_us"), "0", "the fast path");

    let timeouts = log.events("checkout timed out");
    assert_eq!(timeouts.len(), 1, "{:#?}", log.events);
    let timeout = timeouts[0];
    assert_eq!(timeout.level, Level::WARN);
    assert_eq!(
        timeout.span,
        Some(acquires[1].id),
        "the event is in its acquire"
    );
    assert!(field(&timeout.fields, "waited_ms").parse::<u64>().unwrap() >= 5);
    assert_eq!(field(&timeout.fields, "in_use"), "1");
    assert_eq!(field(&timeout.fields, "max_size"), "1");
    assert_eq!(log.spans("return").len(), 2);
}

#[test]
fn failed_connects_timeouts_leaks_failed_health_checks_and_broken_connections_are_events() {
    let manager = TestManager::default();
    let config = PoolConfig::builder()
        .max_connections(1)
        .health_check_bypass(Duration::ZERO)
        .leak_detection_threshold(Some(Duration::from_millis(1)))
        .idle_timeout(None)
        .max_lifetime(None)
        .build()
        .unwrap();
    let mut leak_line = 0;
    let (stats, log) = record(|| {
        let pool = Pool::builder(manager.clone())
            .config(config)
            .name("faulty")
            .build()
            .unwrap();
        manager.faults.fail_connects.store(1, SeqCst);
        let error = pool.get_blocking().unwrap_err();
        assert!(matches!(error, PoolError::Connect(_)), "{error}");

        leak_line = line!() + 1;
        let held = pool.get_blocking().unwrap();
        let error = pool
            .get_blocking_timeout(Duration::from_millis(1))
            .unwrap_err();
        assert!(error.is_timeout(), "{error}");
        wait_until("the holder is past the leak threshold", || {
            !pool.leaks().is_empty()
        });
        pool.maintain_blocking(); // reports the leak
        drop(held); // reports its return

        manager.faults.fail_validation.store(true, SeqCst);
        let mut conn = pool.get_blocking().unwrap(); // fails the check, so a new one is opened
        manager.faults.fail_validation.store(false, SeqCst);
        conn.broken = true;
        drop(conn);
        pool.statistics()
    });
    assert_all_of_pool(&log, "faulty");
    assert_eq!(stats.connect_failures, 1);
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.total_health_checks_failed, 1);
    assert_eq!(stats.closed.health_check, 1);
    assert_eq!(stats.closed.broken, 1);

    // A failed connect: a WARN in the create span, itself in the acquire span.
    let failed = log.events("could not open a connection");
    assert_eq!(failed.len(), 1, "{:#?}", log.events);
    assert_eq!(failed[0].level, Level::WARN);
    assert!(field(&failed[0].fields, "error").contains("injected failure: connect"));
    let create = log.span(failed[0].span.expect("in a span"));
    assert_eq!(create.name, "create");
    assert_eq!(log.span(create.parent.unwrap()).name, "acquire");

    // The timeout, with the gauges and the last error.
    let timeouts = log.events("checkout timed out");
    assert_eq!(timeouts.len(), 1, "{:#?}", log.events);
    assert_eq!(timeouts[0].level, Level::WARN);
    assert_eq!(log.span(timeouts[0].span.unwrap()).name, "acquire");
    assert_eq!(field(&timeouts[0].fields, "in_use"), "1");
    assert_eq!(field(&timeouts[0].fields, "size"), "1");
    assert!(field(&timeouts[0].fields, "last_error").contains("injected failure: connect"));

    // The leak names the holder, and so does its return (other short holds may be reported too).
    let holder = format!("{}:{leak_line}:", file!());
    let of_holder = |message: &str| {
        log.events(message)
            .into_iter()
            .filter(|e| field(&e.fields, "caller").starts_with(&holder))
            .collect::<Vec<_>>()
    };
    let leaks = of_holder("connection held longer than the leak detection threshold");
    assert_eq!(leaks.len(), 1, "{:#?}", log.events);
    assert_eq!(leaks[0].level, Level::WARN);
    assert!(
        field(&leaks[0].fields, "held_for_ms")
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let returned = of_holder("a connection reported as leaked was returned");
    assert_eq!(returned.len(), 1, "{:#?}", log.events);
    assert_eq!(returned[0].level, Level::INFO);

    // The failed health check: a WARN in the validate span, then the close, in the same acquire.
    let unhealthy = log.events("health check failed");
    assert_eq!(unhealthy.len(), 1, "{:#?}", log.events);
    assert_eq!(unhealthy[0].level, Level::WARN);
    assert!(field(&unhealthy[0].fields, "error").contains("injected failure: validate"));
    let validate = log.span(unhealthy[0].span.unwrap());
    assert_eq!(validate.name, "validate");
    let closes = log.spans("close");
    let by_reason = |reason: &str| -> Vec<&SpanRecord> {
        closes
            .iter()
            .copied()
            .filter(|s| field(&s.fields, "reason") == reason)
            .collect()
    };
    let health_close = by_reason("health_check");
    assert_eq!(health_close.len(), 1);
    assert_eq!(
        health_close[0].parent, validate.parent,
        "both in the acquire"
    );

    // The broken connection: closed in its return span, with an INFO inside the close span.
    let broken_close = by_reason("broken");
    assert_eq!(broken_close.len(), 1);
    assert_eq!(log.span(broken_close[0].parent.unwrap()).name, "return");
    let broken = log.events("connection broken");
    assert_eq!(broken.len(), 1, "{:#?}", log.events);
    assert_eq!(broken[0].level, Level::INFO);
    assert_eq!(broken[0].span, Some(broken_close[0].id));
}

#[cfg(feature = "libsql")]
#[test]
fn a_group_commit_that_was_rolled_back_is_a_warning() {
    use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase, LibsqlError};

    // Everything runs while the recorder is in place, so that no callsite is first seen without it.
    let dir = tempfile::tempdir().unwrap();
    let ((results, not_committed), log) = record(|| {
        let database = LibsqlDatabase::open_file(dir.path().join("group.db")).unwrap();
        let lanes = LanedPool::builder(database).build().unwrap();
        block_on(lanes.write_blocking().unwrap().execute_schema(
            "CREATE TABLE t(n INTEGER PRIMARY KEY);
             CREATE TRIGGER refuse_3 BEFORE INSERT ON t WHEN NEW.n = 3
             BEGIN SELECT RAISE(ROLLBACK, 'row 3 rolls back its transaction'); END;",
        ))
        .unwrap();
        // Three inserts queue while the test holds the write lane, then run as one group: the third
        // rolls the group back.
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let held = lanes.write_blocking().unwrap();
        thread::scope(|s| {
            let callers: Vec<_> = [1, 2, 3]
                .into_iter()
                .enumerate()
                .map(|(at, n)| {
                    let (dispatch, lanes) = (&dispatch, &lanes);
                    let caller = s.spawn(move || {
                        in_dispatch(dispatch, || {
                            lanes.execute_blocking("INSERT INTO t(n) VALUES (?1)", [n])
                        })
                    });
                    wait_until("the insert is queued", || {
                        lanes.statistics().group_queued > at
                    });
                    caller
                })
                .collect();
            drop(held);
            let results = callers
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>();
            (results, lanes.statistics().group_not_committed)
        })
    });
    for earlier in &results[..2] {
        assert!(
            matches!(earlier, Err(LibsqlError::NotCommitted { .. })),
            "{results:?}"
        );
    }
    let warnings = log.events("write lane: a group was not committed");
    assert_eq!(warnings.len(), 1, "{:?}", log.events);
    assert_eq!(warnings[0].level, Level::WARN);
    assert_eq!(field(&warnings[0].fields, "statements"), "2");
    assert!(
        field(&warnings[0].fields, "reason").contains("row 3 rolls back"),
        "{:?}",
        warnings[0]
    );
    assert_eq!(not_committed, 2);
}
