//! Point reads and writes on a local libSQL file (WAL), through this crate and its rivals.
//!
//! Run with `cargo bench --bench libsql --features tokio`.
//!
//! # Point reads
//!
//! `SELECT value FROM t WHERE id = ?1` on a table of 10,000 rows (`id INTEGER PRIMARY KEY, value
//! TEXT`), reading the text of the row, with 1 caller and with 64 callers, pool of 8:
//!
//! * `ours_async`: a [`LanedPool`] with 8 readers, `read().await` and `query_row_cached` (the
//!   per-connection statement cache), on the tokio adapter; `ours_blocking`: the same lanes through
//!   `read_blocking()` from OS threads (the bench thread alone, or 64 threads).
//! * `old_design`: the older crate's pool, reproduced here: a semaphore of 8 permits, and on every
//!   checkout a fresh `Database::connect()` and a `SELECT 1`, then the query with `Connection::query`.
//!   Its database is built with libsql's defaults, as the older crate did
//!   (`libsql::Builder::new_local(path).build()`: busy timeout 0, no PRAGMAs).
//! * `deadpool_libsql`: deadpool-libsql 0.1 configured as its README shows: a `Manager` over a
//!   `libsql::Database` built with `Builder::new_local`, `Pool::builder(manager).max_size(8)`, and the
//!   query with `Connection::query` (libsql has no statement cache). It runs its test query
//!   (`SELECT ?`) on every recycle, that is on every checkout of a used connection.
//! * `raw`: the limit. Each caller has a connection of its own and one prepared statement, `reset()`
//!   before each use and after it; no pool at all. The reset after the read matters: a statement left
//!   after its row keeps its read transaction open, which pins a WAL snapshot (checkpoints cannot
//!   finish) and, as a side effect, keeps a SHARED lock on the file, so that every *other* read on it
//!   in this process skips the two `fcntl` calls (lock, unlock) that a read otherwise costs. Measured
//!   here: about 0.7-0.8 us less per read, which is a third of a pooled point read. The pool resets
//!   its statements when they go back (it must), so the raw limit does the same.
//!
//! Async callers are tokio tasks on a multi-thread runtime with 2 workers (the machine has 2 cores),
//! spawned at the start of each sample (included in the time); a single caller is one such task.
//! Local libSQL calls complete on their first poll, so a task never gives up its worker while it holds
//! a connection: with 2 workers at most 2 connections are in use at once, and with 64 tasks the pool
//! of 8 never runs dry (64 OS threads, which the kernel preempts, do make it run dry). Every contender
//! has its own copy of the database file, and only its own connections are open on it.
//!
//! # Writes
//!
//! 8 writers each insert 1,000 rows, one autocommit `INSERT` per row (no explicit transaction), into
//! `w(id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER, value TEXT)`. One criterion iteration is the
//! whole batch of 8,000 inserts.
//!
//! * `lanes`: the write lane of a [`LanedPool`] (one connection, callers queue for it), through
//!   `execute_cached`.
//! * `grouped`: the write lane's group commit, `LanedPool::execute`: each caller still sends one
//!   `INSERT` and waits until it is committed, and concurrent inserts share a transaction.
//! * `plain_pool`: a `Pool<LibsqlManager>` of 8 connections with the default `ConnectionSetup`
//!   (busy timeout 5 s, WAL, `synchronous=NORMAL`), through `execute_cached`, so that writers fight
//!   over the file lock and SQLite's busy handler orders them.
//! * Each runs as 8 tokio tasks (`*_async`) and as 8 OS threads (`*_blocking`).
//! * `old_design` (async): as above, a fresh connection and `SELECT 1` per insert, busy timeout 0. It
//!   can be too slow for criterion's 10 samples (8 to 10 s per batch when the disk is busy), so it runs
//!   [`OLD_WRITE_RUNS`] batches on its own after the criterion benchmarks, timed the same way, when the
//!   write group ran.
//!
//! Failed operations are counted, not retried, and a failed insert is a lost row: at the end the bench
//! checks that every write table holds exactly the rows whose insert succeeded.
//!
//! # Interleaved rounds
//!
//! Criterion measures one benchmark after another, so on a shared machine a burst of load from other
//! processes can fall on one contender and not on the next. After a full criterion run (no filter, not
//! `--test`) the bench therefore also runs every contender of each cell once per round, for
//! [`ROUNDS`] rounds, in an order that rotates from round to round: 10,000 point reads (500 for the
//! old design) or one write batch per run. Contenders of one round share the same load, so the ratios
//! are taken round by round, and their median (with the range) is reported next to criterion's.
//!
//! # Report
//!
//! Criterion prints its usual report. At the end the bench prints, for every benchmark, the median wall
//! time per operation over the measurement samples, its inverse (operations per second), the median
//! process CPU time per operation (all threads, user + system), the errors (lock errors, other
//! errors) summed over the measurement samples, and the latency of single operations (checkout
//! included) over those samples: p50, p99, p99.9 and max, in microseconds. The tail shows what
//! fairness buys: a pool whose writers fight over SQLite's lock lets one writer run on while the
//! others sleep in the busy handler (1 ms, 2 ms, 5 ms...), and the write lane queues them in turn;
//! then the ratios against the goals of issue 3, from wall
//! time and from CPU time. The same table goes to `target/criterion/libsql_summary.tsv`.
//!
//! On a shared machine wall time also measures how much CPU the other processes left us, and that
//! depends on the contender: 64 runnable OS threads get a larger share of a loaded machine than 2 tokio
//! workers. CPU time per operation does not depend on the load, but it misses time spent waiting (for
//! a lock, a wake-up, or an `fsync`), so read the two together.

mod support;

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::process_cpu_time;

use hdrhistogram::Histogram;

use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use memory_storage_turso::libsql::{
    block_on, LanedPool, LibsqlDatabase, LibsqlError, LibsqlManager, LibsqlPool, OwnedConnection,
};
use memory_storage_turso::pool::{Pool, PoolConfig};
use memory_storage_turso::rt::Tokio;
use tokio::runtime::Runtime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Rows of the point-read table.
const ROWS: i64 = 10_000;
/// Connections of every pool (read lane, plain pool, deadpool-libsql, the old design's permits).
const POOL_SIZE: usize = 8;
/// Concurrent callers in the point-read cells.
const READERS: [usize; 2] = [1, 64];
/// Writers, and inserts per writer, in one write batch.
const WRITERS: usize = 8;
const INSERTS_PER_WRITER: u64 = 1_000;
/// Batches the old design's writes run (outside criterion).
const OLD_WRITE_RUNS: usize = 3;
/// Worker threads of the tokio runtime (the machine has 2 cores).
const TOKIO_WORKERS: usize = 2;

const POINT_READ: &str = "SELECT value FROM t WHERE id = ?1";
const INSERT: &str = "INSERT INTO w(writer, n, value) VALUES (?1, ?2, ?3)";
const INSERTED_VALUE: &str = "a row written by the write benchmark";

/// The id that caller `caller` reads in its operation `i`: 7,919 is prime to 10,000, so consecutive
/// operations walk the whole table in a scattered order.
fn point_id(caller: usize, i: u64) -> i64 {
    let step = caller as u64 * 1_000 + i;
    (step * 7_919 % ROWS as u64) as i64 + 1
}

fn expected_value(id: i64) -> String {
    format!("value of row {id:05}, a short text like a name or a title")
}

// ----------------------------------------------------------------------------------------------------
// Failures
// ----------------------------------------------------------------------------------------------------

/// A failed operation.
struct Failure {
    /// "database is locked" or busy (SQLite primary codes 5 and 6, with their extended codes).
    lock: bool,
    message: String,
}

impl Failure {
    fn libsql(error: libsql::Error) -> Self {
        let lock =
            matches!(error, libsql::Error::SqliteFailure(code, _) if matches!(code & 0xff, 5 | 6));
        Self {
            lock,
            message: error.to_string(),
        }
    }

    fn ours(error: LibsqlError) -> Self {
        match error {
            LibsqlError::Libsql(error) => Self::libsql(error),
            other => Self::other(other),
        }
    }

    fn other(error: impl std::fmt::Display) -> Self {
        Self {
            lock: false,
            message: error.to_string(),
        }
    }

    fn missing(id: i64) -> Self {
        Self::other(format!("row {id} not found"))
    }
}

impl From<libsql::Error> for Failure {
    fn from(error: libsql::Error) -> Self {
        Self::libsql(error)
    }
}

/// What the callers of one sample did.
#[derive(Clone)]
struct Tally {
    ok: u64,
    lock_errors: u64,
    other_errors: u64,
    first_error: Option<String>,
    /// Each operation's latency, from its call to its result (checkout included), in microseconds.
    latency_us: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            ok: 0,
            lock_errors: 0,
            other_errors: 0,
            first_error: None,
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 2).expect("histogram bounds"),
        }
    }
}

impl Tally {
    fn note(&mut self, outcome: Result<(), Failure>, took: Duration) {
        self.latency_us
            .saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        match outcome {
            Ok(()) => self.ok += 1,
            Err(failure) => {
                if failure.lock {
                    self.lock_errors += 1;
                } else {
                    self.other_errors += 1;
                }
                self.first_error.get_or_insert(failure.message);
            }
        }
    }

    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.lock_errors += other.lock_errors;
        self.other_errors += other.other_errors;
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms with the same bounds");
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn errors(&self) -> u64 {
        self.lock_errors + self.other_errors
    }
}

// ----------------------------------------------------------------------------------------------------
// Workers: what one caller holds, and one operation
// ----------------------------------------------------------------------------------------------------

/// One async caller's handle on a contender.
trait Worker: Send + 'static {
    /// Operation `i` of caller `caller`.
    fn op(&mut self, caller: usize, i: u64) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// One OS thread's handle on a contender.
trait BlockingWorker: Send + 'static {
    /// Operation `i` of caller `caller`.
    fn op_blocking(&mut self, caller: usize, i: u64) -> Result<(), Failure>;
}

/// Where the callers of a sample get their workers, and give them back.
trait Source {
    type Worker;
    fn take(&self, callers: usize) -> Vec<Self::Worker>;
    fn put(&self, _workers: Vec<Self::Worker>) {}
}

/// A source of clones of one pool handle.
struct Clones<W>(W);

impl<W: Clone> Source for Clones<W> {
    type Worker = W;
    fn take(&self, callers: usize) -> Vec<W> {
        vec![self.0.clone(); callers]
    }
}

fn check_value(id: i64, value: Option<String>) -> Result<(), Failure> {
    let value = value.ok_or_else(|| Failure::missing(id))?;
    debug_assert_eq!(value, expected_value(id));
    black_box(value);
    Ok(())
}

/// Point reads through the read lane and its statement cache.
#[derive(Clone)]
struct OursRead(LanedPool);

impl Worker for OursRead {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let id = point_id(caller, i);
        let mut conn = self.0.read().await.map_err(Failure::ours)?;
        let value = conn
            .query_row_cached(POINT_READ, [id], |row| row.get::<String>(0))
            .await
            .map_err(Failure::ours)?;
        check_value(id, value)
    }
}

impl BlockingWorker for OursRead {
    fn op_blocking(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let id = point_id(caller, i);
        let mut conn = self.0.read_blocking().map_err(Failure::ours)?;
        let value = block_on(conn.query_row_cached(POINT_READ, [id], |row| row.get::<String>(0)))
            .map_err(Failure::ours)?;
        check_value(id, value)
    }
}

/// The older crate's pool: a semaphore caps the connections, and every checkout opens a fresh one and
/// runs `SELECT 1` on it.
#[derive(Clone)]
struct OldDesign {
    database: Arc<libsql::Database>,
    permits: Arc<Semaphore>,
}

impl OldDesign {
    async fn open(path: &Path) -> Self {
        let database = libsql::Builder::new_local(path)
            .build()
            .await
            .expect("open the old design's database");
        Self {
            database: Arc::new(database),
            permits: Arc::new(Semaphore::new(POOL_SIZE)),
        }
    }

    async fn checkout(&self) -> Result<(OwnedSemaphorePermit, OwnedConnection), Failure> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(Failure::other)?;
        // Guarded so that its close runs once (libsql 0.9.30 closes a dropped connection twice).
        let conn = OwnedConnection::local(self.database.connect()?).map_err(Failure::ours)?;
        let mut rows = conn.query("SELECT 1", ()).await?;
        while rows.next().await?.is_some() {}
        Ok((permit, conn))
    }
}

#[derive(Clone)]
struct OldRead(OldDesign);

impl Worker for OldRead {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let id = point_id(caller, i);
        let (_permit, conn) = self.0.checkout().await?;
        let mut rows = conn.query(POINT_READ, [id]).await?;
        let value = match rows.next().await? {
            Some(row) => Some(row.get::<String>(0)?),
            None => None,
        };
        check_value(id, value)
    }
}

#[derive(Clone)]
struct OldWrite(OldDesign);

impl Worker for OldWrite {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let (_permit, conn) = self.0.checkout().await?;
        conn.execute(INSERT, (caller as i64, i as i64, INSERTED_VALUE))
            .await?;
        Ok(())
    }
}

/// deadpool-libsql, used as its README shows.
#[derive(Clone)]
struct DeadpoolRead(deadpool_libsql::Pool);

impl Worker for DeadpoolRead {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let id = point_id(caller, i);
        let conn = self.0.get().await.map_err(Failure::other)?;
        let mut rows = conn.query(POINT_READ, [id]).await?;
        let value = match rows.next().await? {
            Some(row) => Some(row.get::<String>(0)?),
            None => None,
        };
        check_value(id, value)
    }
}

/// The limit: a connection of the caller's own and one prepared statement, reset before each use and
/// after it (which ends its read transaction, as the pool's statement cache does).
struct RawRead {
    statement: libsql::Statement,
    _conn: OwnedConnection,
}

impl Worker for RawRead {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let id = point_id(caller, i);
        self.statement.reset();
        let mut rows = self.statement.query([id]).await?;
        let value = match rows.next().await? {
            Some(row) => Some(row.get::<String>(0)?),
            None => None,
        };
        drop(rows);
        self.statement.reset();
        check_value(id, value)
    }
}

/// Raw connections, opened when first needed and kept for the whole benchmark.
struct RawSource {
    database: libsql::Database,
    spare: Mutex<Vec<RawRead>>,
}

impl Source for RawSource {
    type Worker = RawRead;

    fn take(&self, callers: usize) -> Vec<RawRead> {
        let mut spare = self.spare.lock().expect("raw workers");
        while spare.len() < callers {
            let conn = self.database.connect().expect("open a raw connection");
            let conn = OwnedConnection::local(conn).expect("guard the raw connection");
            let statement = block_on(conn.prepare(POINT_READ)).expect("prepare the point read");
            spare.push(RawRead {
                statement,
                _conn: conn,
            });
        }
        let keep = spare.len() - callers;
        spare.split_off(keep)
    }

    fn put(&self, workers: Vec<RawRead>) {
        self.spare.lock().expect("raw workers").extend(workers);
    }
}

/// Inserts through the write lane.
#[derive(Clone)]
struct LaneWrite(LanedPool);

impl Worker for LaneWrite {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let mut conn = self.0.write().await.map_err(Failure::ours)?;
        conn.execute_cached(INSERT, (caller as i64, i as i64, INSERTED_VALUE))
            .await
            .map_err(Failure::ours)?;
        Ok(())
    }
}

impl BlockingWorker for LaneWrite {
    fn op_blocking(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let mut conn = self.0.write_blocking().map_err(Failure::ours)?;
        block_on(conn.execute_cached(INSERT, (caller as i64, i as i64, INSERTED_VALUE)))
            .map_err(Failure::ours)?;
        Ok(())
    }
}

/// Inserts through the write lane's group commit (`LanedPool::execute`).
#[derive(Clone)]
struct GroupedWrite(LanedPool);

impl Worker for GroupedWrite {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        self.0
            .execute(INSERT, (caller as i64, i as i64, INSERTED_VALUE))
            .await
            .map_err(Failure::ours)?;
        Ok(())
    }
}

impl BlockingWorker for GroupedWrite {
    fn op_blocking(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        self.0
            .execute_blocking(INSERT, (caller as i64, i as i64, INSERTED_VALUE))
            .map_err(Failure::ours)?;
        Ok(())
    }
}

/// Inserts through a plain pool of 8 equal connections.
#[derive(Clone)]
struct PlainWrite(LibsqlPool);

impl Worker for PlainWrite {
    async fn op(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let mut conn = self.0.get().await.map_err(Failure::other)?;
        conn.execute_cached(INSERT, (caller as i64, i as i64, INSERTED_VALUE))
            .await
            .map_err(Failure::ours)?;
        Ok(())
    }
}

impl BlockingWorker for PlainWrite {
    fn op_blocking(&mut self, caller: usize, i: u64) -> Result<(), Failure> {
        let mut conn = self.0.get_blocking().map_err(Failure::other)?;
        block_on(conn.execute_cached(INSERT, (caller as i64, i as i64, INSERTED_VALUE)))
            .map_err(Failure::ours)?;
        Ok(())
    }
}

// ----------------------------------------------------------------------------------------------------
// Runs and samples
// ----------------------------------------------------------------------------------------------------

/// How many operations caller `index` of `callers` does in a sample of `iters` iterations.
#[derive(Clone, Copy)]
enum Split {
    /// The iterations are operations, shared out among the callers (point reads).
    Share,
    /// Every caller does this many operations per iteration (write batches).
    Each(u64),
}

impl Split {
    fn ops(self, iters: u64, callers: usize, index: usize) -> u64 {
        match self {
            Split::Share => {
                let callers = callers as u64;
                iters / callers + u64::from((index as u64) < iters % callers)
            }
            Split::Each(n) => iters * n,
        }
    }
}

/// What one call of a routine measured.
struct Run {
    wall: Duration,
    tally: Tally,
}

/// `callers` tokio tasks share the sample; the time from the first spawn to the last completion.
fn run_tasks<S>(rt: &Runtime, source: &S, callers: usize, split: Split, iters: u64) -> Run
where
    S: Source,
    S::Worker: Worker,
{
    let workers = source.take(callers);
    let (wall, tally, workers) = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(index, mut worker)| {
                let ops = split.ops(iters, callers, index);
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for i in 0..ops {
                        let begun = Instant::now();
                        let outcome = worker.op(index, i).await;
                        tally.note(outcome, begun.elapsed());
                    }
                    (worker, tally)
                })
            })
            .collect();
        let mut total = Tally::default();
        let mut workers = Vec::with_capacity(callers);
        for task in tasks {
            let (worker, tally) = task.await.expect("bench task");
            total.add(tally);
            workers.push(worker);
        }
        (start.elapsed(), total, workers)
    });
    source.put(workers);
    Run { wall, tally }
}

/// One thread (the bench thread) alone.
fn run_alone<W: BlockingWorker>(worker: &mut W, iters: u64) -> Run {
    let mut tally = Tally::default();
    let start = Instant::now();
    for i in 0..iters {
        let begun = Instant::now();
        let outcome = worker.op_blocking(0, i);
        tally.note(outcome, begun.elapsed());
    }
    Run {
        wall: start.elapsed(),
        tally,
    }
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
    tally: Mutex<Tally>,
}

impl Crew {
    fn new<W: BlockingWorker + Clone>(worker: &W, callers: usize, split: Split) -> Self {
        let signals = Arc::new(CrewSignals {
            start: Barrier::new(callers + 1),
            done: Barrier::new(callers + 1),
            iters: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            tally: Mutex::new(Tally::default()),
        });
        let threads = (0..callers)
            .map(|index| {
                let mut worker = worker.clone();
                let signals = signals.clone();
                std::thread::Builder::new()
                    .name(format!("bench-caller-{index}"))
                    .stack_size(512 * 1024)
                    .spawn(move || loop {
                        signals.start.wait();
                        if signals.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let iters = signals.iters.load(Ordering::Acquire);
                        let mut tally = Tally::default();
                        for i in 0..split.ops(iters, callers, index) {
                            let begun = Instant::now();
                            let outcome = worker.op_blocking(index, i);
                            tally.note(outcome, begun.elapsed());
                        }
                        signals.tally.lock().expect("tally").add(tally);
                        signals.done.wait();
                    })
                    .expect("spawn a bench thread")
            })
            .collect();
        Self { threads, signals }
    }

    fn run(&self, iters: u64) -> Run {
        self.signals.iters.store(iters, Ordering::Release);
        // The clock starts before the release: once released, the callers may run for a long while
        // before this thread is scheduled again (64 runnable threads on 2 cores).
        let start = Instant::now();
        self.signals.start.wait();
        self.signals.done.wait();
        let wall = start.elapsed();
        let tally = std::mem::take(&mut *self.signals.tally.lock().expect("tally"));
        Run { wall, tally }
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

/// One call of a benchmark routine.
struct Sample {
    bench: String,
    ops: u64,
    wall: Duration,
    cpu: Option<Duration>,
    tally: Tally,
}

/// Every call of every routine, warm-up included.
static SAMPLES: Mutex<Vec<Sample>> = Mutex::new(Vec::new());
/// Each benchmark's number of measurement samples (the last calls of its routine), in run order.
static MEASURED: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// Runs one call of a routine and records it with its CPU time; returns its wall time.
fn recorded(bench: &str, ops: u64, routine: impl FnOnce() -> Run) -> Duration {
    let cpu_before = process_cpu_time();
    let run = routine();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    SAMPLES.lock().expect("samples").push(Sample {
        bench: bench.to_owned(),
        ops,
        wall: run.wall,
        cpu,
        tally: run.tally,
    });
    run.wall
}

fn measured(bench: &str, samples: usize) {
    MEASURED
        .lock()
        .expect("measured")
        .push((bench.to_owned(), samples));
}

// ----------------------------------------------------------------------------------------------------
// Databases and contenders
// ----------------------------------------------------------------------------------------------------

/// Creates a database file in WAL mode with the point-read table (10,000 rows) and the empty write
/// table, then closes it.
fn create_database(path: &Path) {
    block_on(async {
        let database = libsql::Builder::new_local(path).build().await?;
        let conn = OwnedConnection::local(database.connect()?)?;
        let mut rows = conn.query("PRAGMA journal_mode=WAL", ()).await?;
        while rows.next().await?.is_some() {}
        drop(rows);
        conn.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE w(id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, n INTEGER NOT NULL,
                            value TEXT NOT NULL);",
        )
        .await?;
        let tx = conn.transaction().await?;
        {
            let insert = tx
                .prepare("INSERT INTO t(id, value) VALUES (?1, ?2)")
                .await?;
            for id in 1..=ROWS {
                insert.reset();
                insert.execute((id, expected_value(id))).await?;
            }
        }
        tx.commit().await?;
        Ok::<_, LibsqlError>(())
    })
    .expect("create a bench database");
}

struct Contenders {
    dir: tempfile::TempDir,
    lanes: LanedPool,
    old: OldDesign,
    deadpool: deadpool_libsql::Pool,
    raw: RawSource,
    write_lanes: LanedPool,
    grouped: LanedPool,
    plain: LibsqlPool,
    old_write: OldDesign,
}

impl Contenders {
    fn new(rt: &Runtime) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = |name: &str| -> PathBuf {
            let path = dir.path().join(name);
            create_database(&path);
            path
        };
        let tokio = Tokio::from_handle(rt.handle().clone());
        let lanes = LanedPool::builder(
            LibsqlDatabase::open_file(file("ours.db")).expect("open the lanes' database"),
        )
        .readers(POOL_SIZE)
        .runtime(tokio.clone())
        .build()
        .expect("build the lanes");
        let write_lanes = LanedPool::builder(
            LibsqlDatabase::open_file(file("ours_write.db")).expect("open the lanes' database"),
        )
        .readers(POOL_SIZE)
        .runtime(tokio.clone())
        .build()
        .expect("build the write lanes");
        let grouped = LanedPool::builder(
            LibsqlDatabase::open_file(file("grouped_write.db")).expect("open the group's database"),
        )
        .readers(1)
        .runtime(tokio.clone())
        .build()
        .expect("build the group-commit lanes");
        let plain = Pool::builder(LibsqlManager::new(
            LibsqlDatabase::open_file(file("plain_write.db")).expect("open the plain database"),
        ))
        .config(
            PoolConfig::builder()
                .max_connections(POOL_SIZE)
                .build()
                .expect("pool config"),
        )
        .runtime(tokio)
        .build()
        .expect("build the plain pool");
        let old_path = file("old.db");
        let old_write_path = file("old_write.db");
        let deadpool_path = file("deadpool.db");
        let raw_path = file("raw.db");
        let (old, old_write, deadpool, raw) = rt.block_on(async {
            let deadpool_database = libsql::Builder::new_local(&deadpool_path)
                .build()
                .await
                .expect("open deadpool-libsql's database");
            let deadpool = deadpool_libsql::Pool::builder(
                deadpool_libsql::Manager::from_libsql_database(deadpool_database),
            )
            .max_size(POOL_SIZE)
            .build()
            .expect("build deadpool-libsql");
            let raw = RawSource {
                database: libsql::Builder::new_local(&raw_path)
                    .build()
                    .await
                    .expect("open the raw database"),
                spare: Mutex::new(Vec::new()),
            };
            (
                OldDesign::open(&old_path).await,
                OldDesign::open(&old_write_path).await,
                deadpool,
                raw,
            )
        });
        let contenders = Self {
            dir,
            lanes,
            old,
            deadpool,
            raw,
            write_lanes,
            grouped,
            plain,
            old_write,
        };
        contenders.warm_up(rt);
        contenders
    }

    /// Opens every pool's 8 connections, and checks that each contender reads the right rows.
    fn warm_up(&self, rt: &Runtime) {
        let held: Vec<_> = (0..POOL_SIZE)
            .map(|_| self.lanes.read_blocking().expect("warm the read lane"))
            .collect();
        drop(held);
        let held: Vec<_> = (0..POOL_SIZE)
            .map(|_| self.plain.get_blocking().expect("warm the plain pool"))
            .collect();
        drop(held);
        drop(
            self.write_lanes
                .write_blocking()
                .expect("warm the write lane"),
        );
        drop(
            self.grouped
                .write_blocking()
                .expect("warm the group's lane"),
        );
        rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..POOL_SIZE {
                held.push(self.deadpool.get().await.expect("warm deadpool-libsql"));
            }
        });
        for caller in 0..3 {
            for i in 0..3 {
                let check = |outcome: Result<(), Failure>, who: &str| {
                    if let Err(failure) = outcome {
                        panic!("{who} fails a point read: {}", failure.message);
                    }
                };
                check(OursRead(self.lanes.clone()).op_blocking(caller, i), "ours");
                rt.block_on(async {
                    check(OldRead(self.old.clone()).op(caller, i).await, "old design");
                    check(
                        DeadpoolRead(self.deadpool.clone()).op(caller, i).await,
                        "deadpool-libsql",
                    );
                    let mut raw = self.raw.take(1);
                    check(raw[0].op(caller, i).await, "raw");
                    self.raw.put(raw);
                });
            }
        }
    }

    /// Checks reuse (no pool opened more than its size) and that every write table holds exactly the
    /// rows whose insert succeeded.
    fn check_after(&self, rt: &Runtime) {
        let read = self.lanes.statistics().read;
        println!(
            "\nread lane: {} connections opened, {} checkouts, {} health checks",
            read.total_created, read.total_checkouts, read.total_health_checks_passed
        );
        assert!(
            read.total_created <= POOL_SIZE,
            "read lane reopened: {read:?}"
        );
        let write = self.write_lanes.statistics().write;
        assert_eq!(write.total_created, 1, "write lane reopened: {write:?}");
        let grouped = self.grouped.statistics();
        assert_eq!(
            grouped.write.total_created, 1,
            "group's lane reopened: {grouped:?}"
        );
        println!(
            "group commit: {} inserts in {} transactions ({:.1} per transaction)",
            grouped.grouped_statements,
            grouped.group_commits,
            grouped.grouped_statements as f64 / grouped.group_commits.max(1) as f64
        );
        let plain = self.plain.statistics();
        assert!(plain.total_created <= POOL_SIZE, "plain pool: {plain:?}");
        let status = self.deadpool.status();
        assert!(status.size <= POOL_SIZE, "deadpool-libsql: {status:?}");

        let samples = SAMPLES.lock().expect("samples");
        let interleaved = INTERLEAVED.lock().expect("interleaved");
        let succeeded = |prefix: &str| -> u64 {
            let mine = |bench: &str| bench.starts_with("writes/") && bench.contains(prefix);
            let criterion: u64 = samples
                .iter()
                .filter(|s| mine(&s.bench))
                .map(|s| s.tally.ok)
                .sum();
            let rounds: u64 = interleaved
                .iter()
                .filter(|s| mine(&s.bench))
                .map(|s| s.tally.ok)
                .sum();
            criterion + rounds
        };
        let count = |conn: &libsql::Connection| -> u64 {
            block_on(async {
                let mut rows = conn.query("SELECT count(*) FROM w", ()).await?;
                let row = rows.next().await?.expect("a count");
                row.get::<i64>(0)
            })
            .expect("count the written rows") as u64
        };
        let lanes_rows = count(&self.write_lanes.read_blocking().expect("write lanes"));
        assert_eq!(lanes_rows, succeeded("/lanes_"), "rows of the write lane");
        let grouped_rows = count(&self.grouped.read_blocking().expect("group's lanes"));
        assert_eq!(
            grouped_rows,
            succeeded("/grouped_"),
            "rows of the group commit"
        );
        let plain_rows = count(&self.plain.get_blocking().expect("plain pool"));
        assert_eq!(
            plain_rows,
            succeeded("/plain_pool_"),
            "rows of the plain pool"
        );
        let old_rows = rt.block_on(async {
            let (_permit, conn) = self.old_write.checkout().await.unwrap_or_else(|failure| {
                panic!("old design checkout: {}", failure.message);
            });
            count(&conn)
        });
        assert_eq!(old_rows, succeeded("/old_design"), "rows of the old design");
        println!(
            "rows written: lanes {lanes_rows}, plain pool {plain_rows}, old design {old_rows}: \
             each equals its successful inserts"
        );
    }
}

// ----------------------------------------------------------------------------------------------------
// Benchmarks
// ----------------------------------------------------------------------------------------------------

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Operations one criterion iteration stands for.
fn ops_per_iter(split: Split, callers: usize) -> u64 {
    match split {
        Split::Share => 1,
        Split::Each(n) => n * callers as u64,
    }
}

fn bench_tasks<S>(
    group: &mut Group<'_>,
    id: &str,
    samples: usize,
    rt: &Runtime,
    source: &S,
    callers: usize,
    split: Split,
) where
    S: Source,
    S::Worker: Worker,
{
    let name = id.rsplit('/').next().unwrap_or(id);
    let per_iter = ops_per_iter(split, callers);
    group.sample_size(samples);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            recorded(id, iters * per_iter, || {
                run_tasks(rt, source, callers, split, iters)
            })
        });
    });
    measured(id, samples);
}

fn bench_threads<W: BlockingWorker + Clone>(
    group: &mut Group<'_>,
    id: &str,
    samples: usize,
    worker: &W,
    callers: usize,
    split: Split,
) {
    let name = id.rsplit('/').next().unwrap_or(id);
    let per_iter = ops_per_iter(split, callers);
    group.sample_size(samples);
    group.bench_function(name, |b| {
        if callers == 1 && matches!(split, Split::Share) {
            let mut worker = worker.clone();
            b.iter_custom(|iters| recorded(id, iters, || run_alone(&mut worker, iters)));
        } else {
            let crew = Crew::new(worker, callers, split);
            b.iter_custom(|iters| recorded(id, iters * per_iter, || crew.run(iters)));
        }
    });
    measured(id, samples);
}

fn libsql_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TOKIO_WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let contenders = Contenders::new(&rt);
    println!("databases in {}", contenders.dir.path().display());

    for callers in READERS {
        let cell = format!("reads_{callers}");
        let mut group = c.benchmark_group(&cell);
        group.throughput(Throughput::Elements(1));
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(3));
        let g = &mut group;
        let ours = OursRead(contenders.lanes.clone());
        let id = |name: &str| format!("{cell}/{name}");
        bench_tasks(
            g,
            &id("ours_async"),
            20,
            &rt,
            &Clones(ours.clone()),
            callers,
            Split::Share,
        );
        bench_threads(g, &id("ours_blocking"), 20, &ours, callers, Split::Share);
        let deadpool = Clones(DeadpoolRead(contenders.deadpool.clone()));
        bench_tasks(
            g,
            &id("deadpool_libsql"),
            20,
            &rt,
            &deadpool,
            callers,
            Split::Share,
        );
        bench_tasks(
            g,
            &id("raw"),
            20,
            &rt,
            &contenders.raw,
            callers,
            Split::Share,
        );
        let old = Clones(OldRead(contenders.old.clone()));
        bench_tasks(g, &id("old_design"), 10, &rt, &old, callers, Split::Share);
        group.finish();
    }

    let cell = format!("writes/{WRITERS}x{INSERTS_PER_WRITER}");
    {
        let mut group = c.benchmark_group(&cell);
        group.throughput(Throughput::Elements(WRITERS as u64 * INSERTS_PER_WRITER));
        group.sampling_mode(SamplingMode::Flat);
        group.warm_up_time(Duration::from_millis(500));
        group.measurement_time(Duration::from_secs(4));
        let g = &mut group;
        let id = |name: &str| format!("{cell}/{name}");
        let each = Split::Each(INSERTS_PER_WRITER);
        let lanes = LaneWrite(contenders.write_lanes.clone());
        let plain = PlainWrite(contenders.plain.clone());
        let grouped = GroupedWrite(contenders.grouped.clone());
        bench_tasks(
            g,
            &id("lanes_async"),
            10,
            &rt,
            &Clones(lanes.clone()),
            WRITERS,
            each,
        );
        bench_tasks(
            g,
            &id("plain_pool_async"),
            10,
            &rt,
            &Clones(plain.clone()),
            WRITERS,
            each,
        );
        bench_tasks(
            g,
            &id("grouped_async"),
            10,
            &rt,
            &Clones(grouped.clone()),
            WRITERS,
            each,
        );
        bench_threads(g, &id("lanes_blocking"), 10, &lanes, WRITERS, each);
        bench_threads(g, &id("grouped_blocking"), 10, &grouped, WRITERS, each);
        bench_threads(g, &id("plain_pool_blocking"), 10, &plain, WRITERS, each);
        group.finish();
    }

    // The old design's writes, outside criterion: a few batches, timed like the others. They run with
    // the write group, so that a filter that leaves out the writes (`-- reads`) leaves them out too.
    if measured_fully("writes/") {
        let id = format!("{cell}/old_design");
        let old = Clones(OldWrite(contenders.old_write.clone()));
        println!("\n{id}: {OLD_WRITE_RUNS} batches outside criterion");
        for _ in 0..OLD_WRITE_RUNS {
            let per_iter = WRITERS as u64 * INSERTS_PER_WRITER;
            let wall = recorded(&id, per_iter, || {
                run_tasks(&rt, &old, WRITERS, Split::Each(INSERTS_PER_WRITER), 1)
            });
            println!("  one batch: {wall:?}");
        }
        measured(&id, OLD_WRITE_RUNS);
    }

    // Interleaved rounds of every contender, after a full criterion run (not with a filter or `--test`).
    for callers in READERS {
        let cell = format!("reads_{callers}");
        if !measured_fully(&format!("{cell}/")) {
            continue;
        }
        let ours = OursRead(contenders.lanes.clone());
        let ours_async = Clones(ours.clone());
        let deadpool = Clones(DeadpoolRead(contenders.deadpool.clone()));
        let old = Clones(OldRead(contenders.old.clone()));
        let crew = (callers > 1).then(|| Crew::new(&ours, callers, Split::Share));
        let mut alone = ours.clone();
        let rt = &rt;
        let share = Split::Share;
        interleave(
            &cell,
            vec![
                (
                    "ours_async",
                    ROUND_READS,
                    Box::new(|| run_tasks(rt, &ours_async, callers, share, ROUND_READS)),
                ),
                (
                    "ours_blocking",
                    ROUND_READS,
                    Box::new(|| match &crew {
                        Some(crew) => crew.run(ROUND_READS),
                        None => run_alone(&mut alone, ROUND_READS),
                    }),
                ),
                (
                    "deadpool_libsql",
                    ROUND_READS,
                    Box::new(|| run_tasks(rt, &deadpool, callers, share, ROUND_READS)),
                ),
                (
                    "raw",
                    ROUND_READS,
                    Box::new(|| run_tasks(rt, &contenders.raw, callers, share, ROUND_READS)),
                ),
                (
                    "old_design",
                    ROUND_OLD_READS,
                    Box::new(|| run_tasks(rt, &old, callers, share, ROUND_OLD_READS)),
                ),
            ],
        );
    }
    if measured_fully("writes/") {
        let lanes = LaneWrite(contenders.write_lanes.clone());
        let plain = PlainWrite(contenders.plain.clone());
        let grouped = GroupedWrite(contenders.grouped.clone());
        let each = Split::Each(INSERTS_PER_WRITER);
        let lanes_async = Clones(lanes.clone());
        let plain_async = Clones(plain.clone());
        let grouped_async = Clones(grouped.clone());
        let lanes_crew = Crew::new(&lanes, WRITERS, each);
        let plain_crew = Crew::new(&plain, WRITERS, each);
        let grouped_crew = Crew::new(&grouped, WRITERS, each);
        let batch = WRITERS as u64 * INSERTS_PER_WRITER;
        let rt = &rt;
        interleave(
            &cell,
            vec![
                (
                    "lanes_async",
                    batch,
                    Box::new(|| run_tasks(rt, &lanes_async, WRITERS, each, 1)),
                ),
                (
                    "plain_pool_async",
                    batch,
                    Box::new(|| run_tasks(rt, &plain_async, WRITERS, each, 1)),
                ),
                (
                    "grouped_async",
                    batch,
                    Box::new(|| run_tasks(rt, &grouped_async, WRITERS, each, 1)),
                ),
                ("lanes_blocking", batch, Box::new(|| lanes_crew.run(1))),
                ("grouped_blocking", batch, Box::new(|| grouped_crew.run(1))),
                ("plain_pool_blocking", batch, Box::new(|| plain_crew.run(1))),
            ],
        );
    }

    contenders.check_after(&rt);
    summarize();
}

/// Whether every benchmark whose id starts with `prefix` ran its full measurement (none was left out
/// by a filter, and this is not `--test`).
fn measured_fully(prefix: &str) -> bool {
    let samples = SAMPLES.lock().expect("samples");
    let benches = MEASURED.lock().expect("measured");
    let mut mine = benches
        .iter()
        .filter(|(bench, _)| bench.starts_with(prefix))
        .peekable();
    mine.peek().is_some()
        && mine.all(|(bench, count)| samples.iter().filter(|s| &s.bench == bench).count() >= *count)
}

// ----------------------------------------------------------------------------------------------------
// Interleaved rounds
// ----------------------------------------------------------------------------------------------------

/// Rounds of the interleaved pass.
const ROUNDS: usize = 15;
/// Point reads per contender and round (the old design does fewer: it is about 50x slower).
const ROUND_READS: u64 = 10_000;
const ROUND_OLD_READS: u64 = 500;

/// A contender of an interleaved round: its name, the operations of one run, and the run.
type Entrant<'a> = (&'static str, u64, Box<dyn FnMut() -> Run + 'a>);

/// One contender's runs in the interleaved pass.
struct Series {
    bench: String,
    wall_us: Vec<f64>,
    cpu_us: Vec<f64>,
    tally: Tally,
}

static INTERLEAVED: Mutex<Vec<Series>> = Mutex::new(Vec::new());

/// Runs every contender of a cell once per round, in an order that rotates from round to round, so
/// that each round's contenders share the same machine load; ratios are then taken round by round.
fn interleave(cell: &str, mut entrants: Vec<Entrant<'_>>) {
    println!("\n{cell}: {ROUNDS} interleaved rounds");
    let mut series: Vec<Series> = entrants
        .iter()
        .map(|(name, ..)| Series {
            bench: format!("{cell}/{name}"),
            wall_us: Vec::new(),
            cpu_us: Vec::new(),
            tally: Tally::default(),
        })
        .collect();
    let n = entrants.len();
    for round in 0..ROUNDS {
        for k in 0..n {
            let index = (round + k) % n;
            let (_, ops, run) = &mut entrants[index];
            let cpu_before = process_cpu_time();
            let result = run();
            let cpu = process_cpu_time()
                .zip(cpu_before)
                .map(|(after, before)| after.saturating_sub(before));
            let per_op = |d: Duration| d.as_secs_f64() * 1e6 / *ops as f64;
            let entry = &mut series[index];
            entry.wall_us.push(per_op(result.wall));
            entry.cpu_us.push(cpu.map_or(f64::NAN, per_op));
            entry.tally.add(result.tally);
        }
    }
    INTERLEAVED.lock().expect("interleaved").extend(series);
}

// ----------------------------------------------------------------------------------------------------
// Summary
// ----------------------------------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The medians of one benchmark's measurement samples.
struct Medians {
    bench: String,
    samples: usize,
    wall_us: f64,
    cpu_us: f64,
    tally: Tally,
    ops: u64,
}

fn summarize() {
    let samples = SAMPLES.lock().expect("samples");
    let benches = MEASURED.lock().expect("measured");
    let mut rows: Vec<Medians> = Vec::new();
    for (bench, count) in benches.iter() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| &s.bench == bench).collect();
        let kept = &mine[mine.len().saturating_sub(*count)..];
        if kept.len() < *count {
            continue; // left out by a filter, or run once by `--test`
        }
        let per_op = |d: Duration, ops: u64| d.as_secs_f64() * 1e6 / ops.max(1) as f64;
        let wall_us = median(kept.iter().map(|s| per_op(s.wall, s.ops)).collect());
        let cpu: Option<Vec<f64>> = kept
            .iter()
            .map(|s| s.cpu.map(|cpu| per_op(cpu, s.ops)))
            .collect();
        let mut tally = Tally::default();
        let mut ops = 0;
        for sample in kept {
            ops += sample.ops;
            tally.add(sample.tally.clone());
        }
        rows.push(Medians {
            bench: bench.clone(),
            samples: kept.len(),
            wall_us,
            cpu_us: cpu.map_or(f64::NAN, median),
            tally,
            ops,
        });
    }

    let mut table = String::from(
        "bench\tsamples\twall_us_per_op\tops_per_s\tcpu_us_per_op\tops_measured\tlock_errors\tother_errors\terror_pct\tp50_us\tp99_us\tp99_9_us\tmax_us\n",
    );
    for row in &rows {
        let latency = &row.tally.latency_us;
        table.push_str(&format!(
            "{}\t{}\t{:.2}\t{:.0}\t{:.2}\t{}\t{}\t{}\t{:.2}\t{}\t{}\t{}\t{}\n",
            row.bench,
            row.samples,
            row.wall_us,
            1e6 / row.wall_us,
            row.cpu_us,
            row.ops,
            row.tally.lock_errors,
            row.tally.other_errors,
            100.0 * row.tally.errors() as f64 / row.ops.max(1) as f64,
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            latency.value_at_quantile(0.999),
            latency.max(),
        ));
    }
    println!("\nMedians per operation over the measurement samples:\n{table}");
    for row in rows.iter().filter(|r| r.tally.first_error.is_some()) {
        println!(
            "{}: first error: {}",
            row.bench,
            row.tally.first_error.as_deref().unwrap_or_default()
        );
    }

    let medians = |bench: &str| rows.iter().find(|r| r.bench == bench);
    // Throughput ratio of `ours` to `other`, on wall time and on CPU time per operation.
    let ratio = |ours: &str, other: &str| -> (f64, f64) {
        match (medians(ours), medians(other)) {
            (Some(ours), Some(other)) => (other.wall_us / ours.wall_us, other.cpu_us / ours.cpu_us),
            _ => (f64::NAN, f64::NAN),
        }
    };
    let mut ratios = String::from(
        "\nRatios: throughput of ours / throughput of the other, from wall time (and from CPU time)\n",
    );
    for (ours, other, goal) in goals() {
        let (wall, cpu) = ratio(&ours, &other);
        if wall.is_nan() {
            continue; // one of them was left out by a filter
        }
        let verdict = if wall >= goal { "met" } else { "missed" };
        ratios.push_str(&format!(
            "{ours} / {other} = {wall:.2} (CPU {cpu:.2}), goal >= {goal}: {verdict}\n"
        ));
    }
    ratios.push_str(&interleaved_report());
    println!("{ratios}");
    table.push_str(&ratios);

    let dir = Path::new(&std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()))
        .join("criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("libsql_summary.tsv"), table);
    }
}

/// The goals of issue 3: (ours, the other, the least throughput ratio of ours to the other's).
fn goals() -> Vec<(String, String, f64)> {
    let mut goals = Vec::new();
    for callers in READERS {
        for ours in ["ours_async", "ours_blocking"] {
            for (other, goal) in [("old_design", 20.0), ("deadpool_libsql", 1.5), ("raw", 0.8)] {
                goals.push((
                    format!("reads_{callers}/{ours}"),
                    format!("reads_{callers}/{other}"),
                    goal,
                ));
            }
        }
    }
    let cell = format!("writes/{WRITERS}x{INSERTS_PER_WRITER}");
    for (ours, other) in [
        ("lanes_async", "plain_pool_async"),
        ("lanes_blocking", "plain_pool_blocking"),
        ("grouped_async", "plain_pool_async"),
        ("grouped_blocking", "plain_pool_blocking"),
        ("lanes_async", "old_design"),
    ] {
        goals.push((format!("{cell}/{ours}"), format!("{cell}/{other}"), 1.0));
    }
    goals
}

/// The interleaved pass: medians per operation over the rounds, and the ratios taken round by round.
fn interleaved_report() -> String {
    let series = INTERLEAVED.lock().expect("interleaved");
    if series.is_empty() {
        return String::new();
    }
    let mut report = format!(
        "\nInterleaved rounds ({ROUNDS}): medians per operation over the rounds\n\
         bench\twall_us_per_op\tops_per_s\tcpu_us_per_op\tlock_errors\tother_errors\n"
    );
    for entry in series.iter() {
        let wall = median(entry.wall_us.clone());
        report.push_str(&format!(
            "{}\t{wall:.2}\t{:.0}\t{:.2}\t{}\t{}\n",
            entry.bench,
            1e6 / wall,
            median(entry.cpu_us.clone()),
            entry.tally.lock_errors,
            entry.tally.other_errors,
        ));
    }
    report.push_str(
        "\nInterleaved ratios, round by round: median (min-max) from wall time, median from CPU time\n",
    );
    let find = |bench: &str| series.iter().find(|s| s.bench == bench);
    for (ours, other, goal) in goals() {
        let (Some(ours_series), Some(other_series)) = (find(&ours), find(&other)) else {
            continue;
        };
        let per_round = |pick: fn(&Series) -> &Vec<f64>| -> Vec<f64> {
            pick(other_series)
                .iter()
                .zip(pick(ours_series))
                .map(|(other, ours)| other / ours)
                .collect()
        };
        let wall = per_round(|s| &s.wall_us);
        let low = wall.iter().copied().fold(f64::INFINITY, f64::min);
        let high = wall.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let wall = median(wall);
        let cpu = median(per_round(|s| &s.cpu_us));
        let verdict = if wall >= goal { "met" } else { "missed" };
        report.push_str(&format!(
            "{ours} / {other} = {wall:.2} ({low:.2}-{high:.2}) (CPU {cpu:.2}), goal >= {goal}: \
             {verdict}\n"
        ));
    }
    report
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = libsql_benches
}
criterion_main!(benches);
