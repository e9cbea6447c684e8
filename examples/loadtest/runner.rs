//! Runs callers on the chosen runtime until the operations or the time run out, and collects latencies
//! and errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::args::RuntimeKind;
use crate::target::{OpError, Target};

/// How a run is driven.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub tasks: u64,
    pub ops: u64,
    pub rows: u64,
    pub read_ratio: f64,
    pub deadline: Option<Instant>,
    pub runtime: RuntimeKind,
}

/// What the callers saw.
pub struct Outcome {
    pub elapsed: Duration,
    /// Latency of every successful operation, in microseconds.
    pub latency: Histogram<u64>,
    /// Failed operations by kind.
    pub errors: BTreeMap<String, u64>,
}

impl Outcome {
    /// Successful operations.
    pub fn ops(&self) -> u64 {
        self.latency.len()
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One caller's tally.
struct Tally {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            errors: BTreeMap::new(),
        }
    }

    fn record(&mut self, started: Instant, result: Result<(), OpError>) {
        match result {
            Ok(()) => {
                let micros = started.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                self.latency.record(micros).expect("latency within bounds");
            }
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }
}

/// Hands out operation numbers until the budget or the deadline is spent.
struct Budget {
    next: AtomicU64,
    ops: u64,
    deadline: Option<Instant>,
    done: Arc<AtomicU64>,
}

impl Budget {
    fn take(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.next.fetch_add(1, Relaxed);
        (n < self.ops).then_some(n)
    }
}

/// One operation: a read or a write of a random row.
enum Op {
    Read(i64),
    Write(i64, String),
}

fn next_op(plan: &Plan, n: u64) -> Op {
    let id = fastrand::i64(1..=plan.rows as i64);
    if fastrand::f64() < plan.read_ratio {
        Op::Read(id)
    } else {
        Op::Write(id, format!("value {n}"))
    }
}

/// Runs the plan against `target`; `done` counts finished operations for the progress bar.
pub fn run(target: Arc<Target>, plan: Plan, done: Arc<AtomicU64>) -> Outcome {
    let budget = Arc::new(Budget {
        next: AtomicU64::new(0),
        ops: plan.ops,
        deadline: plan.deadline,
        done,
    });
    let started = Instant::now();
    let tallies = match plan.runtime {
        RuntimeKind::Threads => run_threads(&target, &plan, &budget),
        RuntimeKind::Tokio => run_tokio(&target, &plan, &budget),
        RuntimeKind::Smol => run_smol(&target, &plan, &budget),
    };
    let elapsed = started.elapsed();
    let mut total = Tally::new();
    for tally in tallies {
        total.latency.add(&tally.latency).expect("same bounds");
        for (kind, count) in tally.errors {
            *total.errors.entry(kind).or_default() += count;
        }
    }
    Outcome {
        elapsed,
        latency: total.latency,
        errors: total.errors,
    }
}

async fn caller(target: Arc<Target>, plan: Plan, budget: Arc<Budget>) -> Tally {
    let mut tally = Tally::new();
    while let Some(n) = budget.take() {
        let started = Instant::now();
        let result = match next_op(&plan, n) {
            Op::Read(id) => target.read(id).await,
            Op::Write(id, value) => target.write(id, &value).await,
        };
        tally.record(started, result);
        budget.done.fetch_add(1, Relaxed);
        // One operation per turn, as in a service where each request is a task of its own.
        futures_lite::future::yield_now().await;
    }
    tally
}

fn run_threads(target: &Arc<Target>, plan: &Plan, budget: &Arc<Budget>) -> Vec<Tally> {
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..plan.tasks)
            .map(|_| {
                s.spawn(|| {
                    let mut tally = Tally::new();
                    while let Some(n) = budget.take() {
                        let started = Instant::now();
                        let result = match next_op(plan, n) {
                            Op::Read(id) => target.read_blocking(id),
                            Op::Write(id, value) => target.write_blocking(id, &value),
                        };
                        tally.record(started, result);
                        budget.done.fetch_add(1, Relaxed);
                    }
                    tally
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|c| c.join().expect("caller thread"))
            .collect()
    })
}

fn run_tokio(target: &Arc<Target>, plan: &Plan, budget: &Arc<Budget>) -> Vec<Tally> {
    let runtime = crate::tokio_runtime();
    runtime.block_on(async {
        let callers: Vec<_> = (0..plan.tasks)
            .map(|_| tokio::spawn(caller(target.clone(), *plan, budget.clone())))
            .collect();
        let mut tallies = Vec::with_capacity(callers.len());
        for caller in callers {
            tallies.push(caller.await.expect("caller task"));
        }
        tallies
    })
}

fn run_smol(target: &Arc<Target>, plan: &Plan, budget: &Arc<Budget>) -> Vec<Tally> {
    let executor = smol::Executor::new();
    let callers: Vec<_> = (0..plan.tasks)
        .map(|_| executor.spawn(caller(target.clone(), *plan, budget.clone())))
        .collect();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(|| smol::block_on(executor.run(stopped.recv())));
        }
        let tallies = smol::block_on(executor.run(async {
            let mut tallies = Vec::with_capacity(callers.len());
            for caller in callers {
                tallies.push(caller.await);
            }
            tallies
        }));
        drop(stop);
        tallies
    })
}
