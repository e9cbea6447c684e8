//! The checkout-and-return cycle (get, then drop the guard) of our pool core against deadpool, bb8 and
//! r2d2, with a no-op manager and a pool of 8.
//!
//! Run with `cargo bench --bench pool_checkout --features tokio`.
//!
//! * `uncontended/*`: one caller doing get + drop in a loop. Ours blocking (`get_blocking`) and r2d2 run
//!   on the bench thread; ours async, deadpool and bb8 run as one tokio task on the runtime below.
//! * `parallel_2/*`: 2 callers (2 threads, or 2 tasks on the 2 workers) in a loop, each returning its
//!   connection at once: the pool never runs dry and nobody waits, but every checkout and return goes
//!   through state that both cores share. This is how most apps use a pool sized above their
//!   concurrency.
//! * `contended_N/*`: N concurrent callers (N = 32, 128, 512: 4x, 16x, 64x the pool size) share the
//!   iterations of one criterion sample. Async contenders run as N tokio tasks on a multi-thread runtime
//!   with 2 workers, spawned at the start of each sample (included in the time). Blocking contenders run
//!   as OS threads that live for the whole benchmark and are released together by a barrier for each
//!   sample; their count is capped at [`MAX_OS_THREADS`] (128), so the 512-caller cell runs 128 threads
//!   for them (64 runnable threads per core already; more only adds scheduler noise and spawn time).
//!   Each caller holds its connection across one `yield_now` (tokio's for tasks, the OS's for threads),
//!   so that holders are really interleaved and the pool runs out: without it a task never gives up its
//!   worker while holding, at most 2 connections are ever out, and nobody waits.
//!
//! Every pool is configured alike: max size 8, min idle 0, no health check or test on checkout (deadpool's
//! `recycle` is a no-op), a 5 s wait timeout and no create/recycle timeout, idle timeout 300 s and max
//! lifetime 30 min where the pool has them (deadpool has neither), LIFO reuse where it is a choice. Each
//! pool is pre-warmed to 8 open connections before measuring, and at the end each must still have opened
//! exactly 8 (no connection was ever closed or opened while measuring). Criterion reports wall time per
//! checkout; its throughput (elements per second) is the inverse.
//!
//! The machine this runs on is shared, so wall time also measures how much CPU the other processes left
//! us. Every sample therefore also reads the process's CPU time (all threads, user + system, on unix),
//! and the end of the run prints, for each benchmark, the median wall and CPU time per checkout over the
//! measurement samples and the CPU share the run got (CPU / wall, at most 2.0 here); the same table goes
//! to `target/criterion/pool_checkout_summary.tsv`. CPU time per checkout does not depend on the load of
//! the machine, but it counts only work: time in which the callers sat idle (all parked, nobody runnable)
//! shows up in wall time alone.
//!
//! The contended cells also record when the *first* caller finished its share, as a share of the
//! sample's wall time (`first_done`). With a fair pool every caller progresses at the same rate and all
//! finish near 100 %; a pool that lets a returning caller take its connection straight back (barging)
//! lets a few callers run through their whole share while the others starve, and shows a small number.
//! Barging saves a wake-up per checkout, so it raises throughput in this benchmark at the price of
//! latency for everyone else.
//!
//! After a full run (no filter, not `--test`), an interleaved pass runs every contender of each
//! contended cell once per round, in an order that rotates from round to round, and reports the median
//! time per checkout and the ratios taken round by round (ours against the best async rival, and ours
//! against r2d2 for threads), with their range. Contenders of one round share the machine's load.

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::process_cpu_time;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use memory_storage_turso::pool::{Manager, Pool, PoolConfig};
use memory_storage_turso::rt::Tokio;
use tokio::runtime::Runtime;

const POOL_SIZE: usize = 8;
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Concurrent callers in the contended cells: 4x, 16x and 64x the pool size.
const CALLERS: [usize; 3] = [32, 128, 512];
/// Callers in the cell where the pool never runs dry: one per core.
const PARALLEL_CALLERS: usize = 2;
/// Worker threads of the tokio runtime (the machine has 2 cores).
const TOKIO_WORKERS: usize = 2;
/// The most OS threads a blocking contender runs at once.
const MAX_OS_THREADS: usize = 128;

/// The same no-op manager for every pool: connections are plain numbers, opened and checked for free.
#[derive(Clone, Copy)]
struct Noop;

impl Manager for Noop {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }
}

impl deadpool::managed::Manager for Noop {
    type Type = u64;
    type Error = Infallible;

    async fn create(&self) -> Result<u64, Infallible> {
        Ok(0)
    }

    async fn recycle(
        &self,
        _conn: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

impl bb8::ManageConnection for Noop {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }

    async fn is_valid(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

impl r2d2::ManageConnection for Noop {
    type Connection = u64;
    type Error = Infallible;

    fn connect(&self) -> Result<u64, Infallible> {
        Ok(0)
    }

    fn is_valid(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

/// What a caller does with its connection: look at it, and in the contended cells let others run.
async fn hold_async(conn: &u64, contended: bool) {
    black_box(conn);
    if contended {
        tokio::task::yield_now().await;
    }
}

fn hold_blocking(conn: &u64, contended: bool) {
    black_box(conn);
    if contended {
        std::thread::yield_now();
    }
}

/// A pool checked out from tasks.
trait AsyncContender: Clone + Send + Sync + 'static {
    /// One get, hold, drop.
    fn cycle(&self, contended: bool) -> impl Future<Output = ()> + Send;
}

/// A pool checked out from threads.
trait BlockingContender: Clone + Send + Sync + 'static {
    /// One get, hold, drop.
    fn cycle(&self, contended: bool);
}

/// Our pool, used through `get().await`.
#[derive(Clone)]
struct OursAsync(Pool<Noop>);

/// Our pool, used through `get_blocking()`.
#[derive(Clone)]
struct OursBlocking(Pool<Noop>);

impl AsyncContender for OursAsync {
    async fn cycle(&self, contended: bool) {
        let conn = self.0.get().await.expect("checkout");
        hold_async(&conn, contended).await;
    }
}

impl BlockingContender for OursBlocking {
    fn cycle(&self, contended: bool) {
        let conn = self.0.get_blocking().expect("checkout");
        hold_blocking(&conn, contended);
    }
}

impl AsyncContender for deadpool::managed::Pool<Noop> {
    async fn cycle(&self, contended: bool) {
        let conn = self.get().await.expect("checkout");
        hold_async(&conn, contended).await;
    }
}

impl AsyncContender for bb8::Pool<Noop> {
    async fn cycle(&self, contended: bool) {
        let conn = self.get().await.expect("checkout");
        hold_async(&conn, contended).await;
    }
}

impl BlockingContender for r2d2::Pool<Noop> {
    fn cycle(&self, contended: bool) {
        let conn = self.get().expect("checkout");
        hold_blocking(&conn, contended);
    }
}

fn our_config() -> PoolConfig {
    PoolConfig::builder()
        .max_connections(POOL_SIZE)
        .min_idle(0)
        .enable_health_check(false)
        .connection_timeout(WAIT_TIMEOUT)
        .idle_timeout(Some(IDLE_TIMEOUT))
        .max_lifetime(Some(MAX_LIFETIME))
        .build()
        .expect("valid config")
}

/// Every pool, built alike and pre-warmed to `POOL_SIZE` open connections.
struct Contenders {
    ours_blocking: OursBlocking,
    ours_async: OursAsync,
    deadpool: deadpool::managed::Pool<Noop>,
    bb8: bb8::Pool<Noop>,
    r2d2: r2d2::Pool<Noop>,
}

impl Contenders {
    fn new(rt: &Runtime) -> Self {
        // Ours from threads, as it is meant to be used there: no runtime adapter.
        let ours_blocking = Pool::builder(Noop)
            .config(our_config())
            .build()
            .expect("our pool");
        let ours_async = Pool::builder(Noop)
            .config(our_config())
            .runtime(Tokio::from_handle(rt.handle().clone()))
            .build()
            .expect("our pool");
        let deadpool = deadpool::managed::Pool::builder(Noop)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(None)
            .recycle_timeout(None)
            .queue_mode(deadpool::managed::QueueMode::Lifo)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("deadpool");
        let bb8 = rt
            .block_on(
                bb8::Pool::builder()
                    .max_size(POOL_SIZE as u32)
                    .min_idle(None)
                    .test_on_check_out(false)
                    .connection_timeout(WAIT_TIMEOUT)
                    .idle_timeout(Some(IDLE_TIMEOUT))
                    .max_lifetime(Some(MAX_LIFETIME))
                    .queue_strategy(bb8::QueueStrategy::Lifo)
                    .build(Noop),
            )
            .expect("bb8");
        let r2d2 = r2d2::Pool::builder()
            .max_size(POOL_SIZE as u32)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(WAIT_TIMEOUT)
            .idle_timeout(Some(IDLE_TIMEOUT))
            .max_lifetime(Some(MAX_LIFETIME))
            .build(Noop)
            .expect("r2d2");

        // Pre-warm: hold all 8 at once so that every pool opens all of its connections.
        let held: Vec<_> = (0..POOL_SIZE)
            .map(|_| ours_blocking.get_blocking().expect("warm"))
            .collect();
        drop(held);
        let held: Vec<_> = (0..POOL_SIZE).map(|_| r2d2.get().expect("warm")).collect();
        drop(held);
        rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..POOL_SIZE {
                held.push(ours_async.get().await.expect("warm"));
            }
            drop(held);
            let mut held = Vec::new();
            for _ in 0..POOL_SIZE {
                held.push(deadpool.get().await.expect("warm"));
            }
            drop(held);
            let mut held = Vec::new();
            for _ in 0..POOL_SIZE {
                held.push(bb8.get().await.expect("warm"));
            }
            drop(held);
        });

        let contenders = Self {
            ours_blocking: OursBlocking(ours_blocking),
            ours_async: OursAsync(ours_async),
            deadpool,
            bb8,
            r2d2,
        };
        contenders.assert_warm("after pre-warming");
        contenders
    }

    /// Each pool holds its 8 connections, idle, and has never opened another.
    fn assert_warm(&self, when: &str) {
        for (name, pool) in [
            ("ours_blocking", &self.ours_blocking.0),
            ("ours_async", &self.ours_async.0),
        ] {
            let stats = pool.statistics();
            assert_eq!(
                (stats.size, stats.idle_connections, stats.total_created),
                (POOL_SIZE, POOL_SIZE, POOL_SIZE),
                "{name} {when}: {stats:?}"
            );
        }
        let status = self.deadpool.status();
        assert_eq!(
            (status.size, status.available),
            (POOL_SIZE, POOL_SIZE),
            "deadpool {when}: {status:?}"
        );
        let state = self.bb8.state();
        assert_eq!(
            (state.connections, state.idle_connections),
            (POOL_SIZE as u32, POOL_SIZE as u32),
            "bb8 {when}: {state:?}"
        );
        // bb8 counts a new connection in a task of its own, after it is already in the pool: the count
        // may lag right after pre-warming.
        assert!(
            state.statistics.connections_created <= POOL_SIZE as u64,
            "bb8 {when}: {state:?}"
        );
        let state = self.r2d2.state();
        assert_eq!(
            (state.connections, state.idle_connections),
            (POOL_SIZE as u32, POOL_SIZE as u32),
            "r2d2 {when}: {state:?}"
        );
    }
}

/// One call of a benchmark routine: its iterations, wall time and process CPU time.
struct Sample {
    bench: String,
    iters: u64,
    wall: Duration,
    cpu: Option<Duration>,
    first_done: Option<Duration>,
}

/// What a routine measured: its wall time and, with several callers, when the first one finished.
struct Run {
    wall: Duration,
    first_done: Option<Duration>,
}

impl Run {
    fn alone(wall: Duration) -> Self {
        Self {
            wall,
            first_done: None,
        }
    }
}

/// Several callers at once.
#[derive(Clone, Copy)]
struct Crowd {
    callers: usize,
    /// Whether each caller holds its connection across a `yield_now`, so that the pool runs dry.
    hold: bool,
}

impl Crowd {
    fn name(self) -> String {
        match self.hold {
            true => format!("contended_{}", self.callers),
            false => format!("parallel_{}", self.callers),
        }
    }
}

/// The crowded cells: 2 callers that never drain the pool, then 32, 128 and 512 that do.
fn crowds() -> impl Iterator<Item = Crowd> {
    let parallel = Crowd {
        callers: PARALLEL_CALLERS,
        hold: false,
    };
    std::iter::once(parallel).chain(CALLERS.into_iter().map(|callers| Crowd {
        callers,
        hold: true,
    }))
}

/// Every call of every routine, warm-up included; the measurement samples are the last `SAMPLE_SIZE` of
/// each benchmark.
static SAMPLES: Mutex<Vec<Sample>> = Mutex::new(Vec::new());

/// Criterion's samples per benchmark.
const SAMPLE_SIZE: usize = 20;

/// Runs one call of a routine (which returns its own wall time) and records it with its CPU time.
fn recorded(bench: &str, iters: u64, routine: impl FnOnce() -> Run) -> Duration {
    let cpu_before = process_cpu_time();
    let run = routine();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    SAMPLES.lock().expect("samples").push(Sample {
        bench: bench.to_owned(),
        iters,
        wall: run.wall,
        cpu,
        first_done: run.first_done,
    });
    run.wall
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Prints the medians of the measurement samples of every benchmark that ran, and returns the table.
fn summarize() -> String {
    let samples = SAMPLES.lock().expect("samples");
    let mut benches: Vec<&str> = Vec::new();
    for sample in samples.iter() {
        if !benches.contains(&sample.bench.as_str()) {
            benches.push(&sample.bench);
        }
    }
    if benches.is_empty() {
        return String::new();
    }
    let mut table = String::from(
        "bench\tsamples\twall_ns_per_checkout\tcpu_ns_per_checkout\tcpu_share\tfirst_done_pct\n",
    );
    for bench in benches {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.bench == bench).collect();
        let measured = &mine[mine.len().saturating_sub(SAMPLE_SIZE)..];
        let per_iter = |d: Duration, iters: u64| d.as_nanos() as f64 / iters.max(1) as f64;
        let wall = median(measured.iter().map(|s| per_iter(s.wall, s.iters)).collect());
        let cpu_values: Option<Vec<f64>> = measured
            .iter()
            .map(|s| s.cpu.map(|cpu| per_iter(cpu, s.iters)))
            .collect();
        let cpu = cpu_values.map_or(f64::NAN, median);
        let wall_total: Duration = measured.iter().map(|s| s.wall).sum();
        let cpu_total: Option<Duration> = measured.iter().map(|s| s.cpu).sum();
        let share = cpu_total.map_or(f64::NAN, |c| c.as_secs_f64() / wall_total.as_secs_f64());
        let first_values: Option<Vec<f64>> = measured
            .iter()
            .map(|s| {
                s.first_done
                    .map(|first| 100.0 * first.as_secs_f64() / s.wall.as_secs_f64())
            })
            .collect();
        let first = first_values.map_or(f64::NAN, median);
        table.push_str(&format!(
            "{bench}\t{}\t{wall:.1}\t{cpu:.1}\t{share:.2}\t{first:.0}\n",
            measured.len()
        ));
    }
    println!("\nMedians per checkout over the measurement samples (ns):\n{table}");
    table
}

/// Writes the report to `target/criterion/pool_checkout_summary.tsv`.
fn save(report: &str) {
    let dir = std::path::Path::new(
        &std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()),
    )
    .join("criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("pool_checkout_summary.tsv"), report);
    }
}

/// The share of `iters` cycles that caller `index` of `callers` does.
fn share(iters: u64, callers: usize, index: usize) -> u64 {
    let callers = callers as u64;
    iters / callers + u64::from((index as u64) < iters % callers)
}

/// One caller in a loop on the bench thread.
fn run_blocking_alone<C: BlockingContender>(pool: &C, iters: u64) -> Run {
    let start = Instant::now();
    for _ in 0..iters {
        pool.cycle(false);
    }
    Run::alone(start.elapsed())
}

/// One caller in a loop, as a task on a runtime worker.
fn run_async_alone<C: AsyncContender>(rt: &Runtime, pool: &C, iters: u64) -> Run {
    let pool = pool.clone();
    let wall = rt
        .block_on(rt.spawn(async move {
            let start = Instant::now();
            for _ in 0..iters {
                pool.cycle(false).await;
            }
            start.elapsed()
        }))
        .expect("bench task");
    Run::alone(wall)
}

/// `callers` tasks sharing `iters` cycles; the time from the first spawn to the last completion.
fn run_async_crowd<C: AsyncContender>(rt: &Runtime, pool: &C, crowd: Crowd, iters: u64) -> Run {
    let Crowd { callers, hold } = crowd;
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|index| share(iters, callers, index))
            .filter(|&n| n > 0)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..n {
                        pool.cycle(hold).await;
                    }
                    Instant::now()
                })
            })
            .collect();
        let mut first_done = None::<Instant>;
        for task in tasks {
            let done = task.await.expect("bench task");
            first_done = Some(first_done.map_or(done, |first| first.min(done)));
        }
        Run {
            wall: start.elapsed(),
            first_done: first_done.map(|first| first.saturating_duration_since(start)),
        }
    })
}

/// OS threads that live for one benchmark; each sample releases them together and waits for all.
struct Crew {
    threads: Vec<JoinHandle<()>>,
    signals: Arc<CrewSignals>,
}

struct CrewSignals {
    start: Barrier,
    done: Barrier,
    iters: AtomicU64,
    stop: AtomicBool,
    /// When the first thread of the current sample finished its share.
    first_done: Mutex<Option<Instant>>,
}

impl Crew {
    fn new<C: BlockingContender>(pool: &C, crowd: Crowd) -> Self {
        let threads = crowd.callers.min(MAX_OS_THREADS);
        let signals = Arc::new(CrewSignals {
            start: Barrier::new(threads + 1),
            done: Barrier::new(threads + 1),
            iters: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            first_done: Mutex::new(None),
        });
        let threads = (0..threads)
            .map(|index| {
                let pool = pool.clone();
                let signals = signals.clone();
                std::thread::Builder::new()
                    .name(format!("bench-caller-{index}"))
                    .stack_size(256 * 1024)
                    .spawn(move || loop {
                        signals.start.wait();
                        if signals.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let iters = signals.iters.load(Ordering::Acquire);
                        for _ in 0..share(iters, threads, index) {
                            pool.cycle(crowd.hold);
                        }
                        let now = Instant::now();
                        signals
                            .first_done
                            .lock()
                            .expect("first done")
                            .get_or_insert(now);
                        signals.done.wait();
                    })
                    .expect("spawn a bench thread")
            })
            .collect();
        Self { threads, signals }
    }

    /// Runs `iters` cycles spread over the crew; the time from the release to the last thread done.
    fn run(&self, iters: u64) -> Run {
        self.signals.iters.store(iters, Ordering::Release);
        *self.signals.first_done.lock().expect("first done") = None;
        // The clock starts before the release: once released, the threads may run (or even finish)
        // before this thread is scheduled again.
        let start = Instant::now();
        self.signals.start.wait();
        self.signals.done.wait();
        let wall = start.elapsed();
        let first_done = *self.signals.first_done.lock().expect("first done");
        Run {
            wall,
            first_done: first_done.map(|first| first.saturating_duration_since(start)),
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.signals.stop.store(true, Ordering::Release);
        self.signals.start.wait();
        for thread in self.threads.drain(..) {
            thread.join().expect("bench thread");
        }
    }
}

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn bench_blocking<C: BlockingContender>(
    group: &mut Group<'_>,
    cell: &str,
    name: &str,
    pool: &C,
    crowd: Option<Crowd>,
) {
    let id = format!("{cell}/{name}");
    group.bench_function(name, |b| match crowd {
        None => b.iter_custom(|iters| recorded(&id, iters, || run_blocking_alone(pool, iters))),
        Some(crowd) => {
            let crew = Crew::new(pool, crowd);
            b.iter_custom(|iters| recorded(&id, iters, || crew.run(iters)));
        }
    });
}

fn bench_async<C: AsyncContender>(
    group: &mut Group<'_>,
    cell: &str,
    name: &str,
    rt: &Runtime,
    pool: &C,
    crowd: Option<Crowd>,
) {
    let id = format!("{cell}/{name}");
    group.bench_function(name, |b| match crowd {
        None => b.iter_custom(|iters| recorded(&id, iters, || run_async_alone(rt, pool, iters))),
        Some(crowd) => {
            b.iter_custom(|iters| recorded(&id, iters, || run_async_crowd(rt, pool, crowd, iters)))
        }
    });
}

fn pool_checkout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TOKIO_WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pools = Contenders::new(&rt);

    let cells = [("uncontended".to_owned(), None)]
        .into_iter()
        .chain(crowds().map(|crowd| (crowd.name(), Some(crowd))));
    for (name, crowd) in cells {
        let mut group = c.benchmark_group(&name);
        group.throughput(Throughput::Elements(1));
        let g = &mut group;
        bench_blocking(g, &name, "ours_blocking", &pools.ours_blocking, crowd);
        bench_async(g, &name, "ours_async", &rt, &pools.ours_async, crowd);
        bench_async(g, &name, "deadpool", &rt, &pools.deadpool, crowd);
        bench_async(g, &name, "bb8", &rt, &pools.bb8, crowd);
        bench_blocking(g, &name, "r2d2", &pools.r2d2, crowd);
        group.finish();
    }
    pools.assert_warm("after measuring");
    let mut report = summarize();
    if measured_fully() {
        report.push_str(&interleave(&rt, &pools));
        pools.assert_warm("after the interleaved rounds");
    }
    save(&report);
}

// ----------------------------------------------------------------------------------------------------
// Interleaved rounds
// ----------------------------------------------------------------------------------------------------

/// Rounds of the interleaved pass, and checkouts per contender and round (async; blocking callers,
/// about 10 times slower per checkout, do a tenth).
const ROUNDS: usize = 11;
const ROUND_CHECKOUTS: u64 = 200_000;

/// Whether every benchmark ran its full measurement (no filter left one out, and this is not `--test`).
fn measured_fully() -> bool {
    let samples = SAMPLES.lock().expect("samples");
    let cells = 1 + crowds().count();
    let contenders = 5;
    let mut benches: Vec<&str> = samples.iter().map(|s| s.bench.as_str()).collect();
    benches.sort_unstable();
    benches.dedup();
    benches.len() == cells * contenders
        && benches
            .iter()
            .all(|b| samples.iter().filter(|s| s.bench == *b).count() > SAMPLE_SIZE)
}

/// Criterion measures one benchmark after another, and on this machine a whole benchmark can fall in a
/// fast or a slow mode of the tokio workers (see `features.md`), or in a burst of load from other
/// processes. So each contended cell also runs every contender once per round, in an order that rotates
/// from round to round, and the ratios are taken round by round, between runs that shared the machine.
fn interleave(rt: &Runtime, pools: &Contenders) -> String {
    let mut report = format!(
        "\nInterleaved rounds ({ROUNDS} per cell; {ROUND_CHECKOUTS} checkouts per async run, a tenth per \
         blocking run): median ns per checkout\ncell\tours_async\tdeadpool\tbb8\tours_blocking\tr2d2\t\
         ours_async_vs_best_async_rival\tours_blocking_vs_r2d2\n"
    );
    for crowd in crowds() {
        let ours_crew = Crew::new(&pools.ours_blocking, crowd);
        let r2d2_crew = Crew::new(&pools.r2d2, crowd);
        // Threads that queue are about 10 times slower per checkout than tasks.
        let blocking = if crowd.hold {
            ROUND_CHECKOUTS / 10
        } else {
            ROUND_CHECKOUTS
        };
        let mut runs: Vec<Box<dyn FnMut() -> f64 + '_>> = vec![
            Box::new(|| {
                per_checkout(
                    run_async_crowd(rt, &pools.ours_async, crowd, ROUND_CHECKOUTS),
                    ROUND_CHECKOUTS,
                )
            }),
            Box::new(|| {
                per_checkout(
                    run_async_crowd(rt, &pools.deadpool, crowd, ROUND_CHECKOUTS),
                    ROUND_CHECKOUTS,
                )
            }),
            Box::new(|| {
                per_checkout(
                    run_async_crowd(rt, &pools.bb8, crowd, ROUND_CHECKOUTS),
                    ROUND_CHECKOUTS,
                )
            }),
            Box::new(|| per_checkout(ours_crew.run(blocking), blocking)),
            Box::new(|| per_checkout(r2d2_crew.run(blocking), blocking)),
        ];
        let mut times = vec![Vec::with_capacity(ROUNDS); runs.len()];
        for round in 0..ROUNDS {
            for k in 0..runs.len() {
                let who = (round + k) % runs.len();
                times[who].push(runs[who]());
            }
        }
        let async_ratios: Vec<f64> = (0..ROUNDS)
            .map(|r| times[1][r].min(times[2][r]) / times[0][r])
            .collect();
        let blocking_ratios: Vec<f64> = (0..ROUNDS).map(|r| times[4][r] / times[3][r]).collect();
        let medians: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}", median(t.clone())))
            .collect();
        report.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            crowd.name(),
            medians.join("\t"),
            spread(async_ratios),
            spread(blocking_ratios),
        ));
    }
    println!("{report}");
    report
}

fn per_checkout(run: Run, checkouts: u64) -> f64 {
    run.wall.as_nanos() as f64 / checkouts as f64
}

/// "median (min-max)" of `values`.
fn spread(values: Vec<f64>) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({min:.2}-{max:.2})", median(values))
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = pool_checkout
}
criterion_main!(benches);
