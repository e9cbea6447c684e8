//! Memory stability: a million checkouts leave the live heap where it was after warm-up.
//!
//! This test binary counts every allocation through a global allocator that wraps the system one
//! (the crate itself has no `unsafe`; this small, well-known wrapper lives only here), and reads the
//! resident set size from `/proc/self/status` on Linux. Three phases, each measured between a
//! warm-up and the end of its run, with no other test in this binary:
//!
//! 1. threads checking out of a pool with a free connection (the common path);
//! 2. threads and tokio tasks contending for a pool of 2, with waiters queued, leak detection on;
//! 3. a libSQL pool, each checkout running a cached query (SQLite's own memory is outside the
//!    counter, so the resident set size is checked too).
//!
//! Phase 1 runs 1,000,000 checkouts (about a second in a debug build), phase 2 half as many, phase 3
//! a tenth; `MEMORY_CHECKOUTS=10000000 cargo test --release --all-features --test
//! reliability_memory` sets the count (the README's testing section has the command). The figures
//! are printed with `--nocapture`.
#![cfg(all(feature = "libsql", feature = "tokio"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use memory_storage_turso::libsql::{LibsqlDatabase, LibsqlManager};
use memory_storage_turso::pool::{Manager, Pool, PoolConfig};
use memory_storage_turso::rt::Tokio;

/// The system allocator, counting live bytes and blocks and every allocation.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counters are atomics
// and never touch the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Relaxed);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Relaxed);
            LIVE_BLOCKS.fetch_add(1, Relaxed);
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size() as isize, Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The live heap and the resident set size at one moment.
#[derive(Clone, Copy)]
struct Snapshot {
    bytes: isize,
    blocks: isize,
    allocations: u64,
    rss_kib: Option<u64>,
}

fn snapshot() -> Snapshot {
    Snapshot {
        bytes: LIVE_BYTES.load(Relaxed),
        blocks: LIVE_BLOCKS.load(Relaxed),
        allocations: ALLOCATIONS.load(Relaxed),
        rss_kib: rss_kib(),
    }
}

/// The resident set size, from `/proc/self/status` (Linux).
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Growth allowed in the live heap after warm-up: a few blocks' worth of noise (tokio frees a
/// finished task on its worker thread, which may be just after the join), far below what even one
/// leaked byte per checkout would add over the run.
const LIVE_BOUND_BYTES: isize = 16 * 1024;
/// Growth allowed in the resident set size: the allocator may keep some freed pages around.
const RSS_BOUND_KIB: u64 = 8 * 1024;

/// Checks and reports the growth between `before` and `after` over `checkouts`.
fn check(phase: &str, checkouts: u64, before: Snapshot, after: Snapshot, took: Duration) {
    let bytes = after.bytes - before.bytes;
    let blocks = after.blocks - before.blocks;
    let per_checkout = (after.allocations - before.allocations) as f64 / checkouts as f64;
    let rss = before.rss_kib.zip(after.rss_kib);
    eprintln!(
        "memory, {phase}: {checkouts} checkouts in {took:.2?}; live heap {} -> {} bytes ({bytes:+}), \
         {} -> {} blocks ({blocks:+}); {per_checkout:.3} allocations per checkout; RSS {}",
        before.bytes,
        after.bytes,
        before.blocks,
        after.blocks,
        rss.map_or(String::from("not available"), |(b, a)| format!(
            "{b} -> {a} KiB ({:+} KiB)",
            a as i64 - b as i64
        )),
    );
    assert!(
        bytes <= LIVE_BOUND_BYTES,
        "{phase}: the live heap grew by {bytes} bytes ({blocks} blocks) over {checkouts} checkouts"
    );
    if let Some((before, after)) = rss {
        assert!(
            after.saturating_sub(before) <= RSS_BOUND_KIB,
            "{phase}: the resident set grew from {before} to {after} KiB"
        );
    }
}

/// A manager whose connections are plain numbers: the pool's own costs, nothing else.
struct Numbers;

impl Manager for Numbers {
    type Connection = u64;
    type Error = std::convert::Infallible;

    async fn connect(&self) -> Result<u64, Self::Error> {
        Ok(0)
    }
}

fn checkouts() -> u64 {
    std::env::var("MEMORY_CHECKOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
fn a_million_checkouts_leave_the_heap_as_it_was() {
    let total = checkouts();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();

    // 1. Threads, a free connection each time.
    let config = PoolConfig::builder().max_connections(4).build().unwrap();
    let pool = Pool::builder(Numbers).config(config).build().unwrap();
    let run = |count: u64| {
        for _ in 0..count {
            *pool.get_blocking().unwrap() += 1;
        }
    };
    run(10_000);
    let (before, started) = (snapshot(), Instant::now());
    run(total);
    check(
        "uncontended threads",
        total,
        before,
        snapshot(),
        started.elapsed(),
    );
    assert_eq!(pool.statistics().total_checkouts as u64, total + 10_000);
    drop(pool);

    // 2. Two threads and two tokio tasks on a pool of 2: callers queue and are handed connections.
    let config = PoolConfig::builder()
        .max_connections(2)
        .leak_detection_threshold(Some(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let pool = Pool::builder(Numbers)
        .config(config)
        .runtime(Tokio::from_handle(runtime.handle().clone()))
        .build()
        .unwrap();
    let contend = |count: u64| {
        let each = count / 4;
        thread::scope(|s| {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let pool = pool.clone();
                    runtime.spawn(async move {
                        for _ in 0..each {
                            *pool.get().await.unwrap() += 1;
                        }
                    })
                })
                .collect();
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..each {
                        *pool.get_blocking().unwrap() += 1;
                    }
                });
            }
            for task in tasks {
                runtime.block_on(task).unwrap();
            }
        });
        each * 4
    };
    contend(20_000);
    let (before, started) = (snapshot(), Instant::now());
    let done = contend(total / 2);
    check(
        "contended threads and tokio tasks",
        done,
        before,
        snapshot(),
        started.elapsed(),
    );
    assert_eq!(pool.statistics().total_created, 2);
    drop(pool);

    // 3. libSQL: each checkout runs a cached query on a shared in-memory database.
    let config = PoolConfig::builder().max_connections(2).build().unwrap();
    let database = LibsqlDatabase::open_memory().unwrap();
    let pool = Pool::builder(LibsqlManager::new(database))
        .config(config)
        .build()
        .unwrap();
    let query = |count: u64| {
        for n in 0..count as i64 {
            let mut conn = pool.get_blocking().unwrap();
            let echoed = block_on(conn.query_row_cached("SELECT ?1", [n], |row| row.get::<i64>(0)));
            assert_eq!(echoed.unwrap(), Some(n));
        }
    };
    let libsql_checkouts = (total / 10).max(10_000);
    query(10_000);
    let (before, started) = (snapshot(), Instant::now());
    query(libsql_checkouts);
    check(
        "libSQL, a cached query each",
        libsql_checkouts,
        before,
        snapshot(),
        started.elapsed(),
    );
    assert_eq!(pool.statistics().total_created, 1);
}
