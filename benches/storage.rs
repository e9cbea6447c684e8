//! The storage under load: `store_episode`, `get_episode` and `query_episodes` on a temporary local
//! file, on tokio (2 worker threads).
//!
//! * criterion measures one call at a time, and 1,000 calls from 100 concurrent tasks;
//! * then a report runs each operation 1,000 times from 100 concurrent tasks (10 calls each),
//!   records every call's latency in an HDR histogram, and prints p50, p95 and p99 against the older
//!   crate's roadmap targets: episode creation P95 < 50 ms, retrieval P95 < 100 ms, and 1,000
//!   concurrent operations < 5 s.
//!
//! Run with `cargo bench --bench storage --features tokio`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use hdrhistogram::Histogram;
use memory_storage_turso::rt::Tokio;
use memory_storage_turso::storage::{
    ComplexityLevel, Episode, EpisodeQuery, ExecutionResult, ExecutionStep, TaskContext,
    TaskOutcome, TaskType, TursoStorage,
};
use uuid::Uuid;

const TASKS: usize = 100;
const CALLS_PER_TASK: usize = 10;
/// Episodes stored before the runs, so that reads and queries have data to find.
const PRELOADED: usize = 2_000;
const DOMAINS: usize = 10;

struct Bench {
    runtime: tokio::runtime::Runtime,
    storage: TursoStorage<Tokio>,
    ids: Arc<Vec<Uuid>>,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file:{}", dir.path().join("bench.db").display());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (storage, ids) = runtime.block_on(async {
            let storage = TursoStorage::new(&url, "").await.unwrap();
            storage.initialize_schema().await.unwrap();
            let episodes: Vec<Episode> = (0..PRELOADED).map(episode).collect();
            for chunk in episodes.chunks(500) {
                storage.store_episodes(chunk).await.unwrap();
            }
            let ids = episodes.iter().map(|e| e.episode_id).collect();
            (storage, Arc::new(ids))
        });
        Bench {
            runtime,
            storage,
            ids,
            _dir: dir,
        }
    }
}

/// A realistic episode: a context, three steps with JSON parameters, an outcome and metadata.
fn episode(n: usize) -> Episode {
    let context = TaskContext {
        language: Some("rust".into()),
        framework: Some("tokio".into()),
        complexity: ComplexityLevel::Moderate,
        domain: format!("domain-{}", n % DOMAINS),
        tags: vec!["bench".into(), "storage".into()],
    };
    let mut episode = Episode::new(
        format!("benchmark task {n}: implement and test a feature"),
        context,
        TaskType::CodeGeneration,
    );
    for step in 1..=3 {
        let mut execution = ExecutionStep::new(step, "edit_file".into(), "apply a change".into());
        execution.parameters =
            serde_json::json!({"path": format!("src/file_{step}.rs"), "line": step * 10});
        execution.result = Some(ExecutionResult::Success {
            output: "ok".into(),
        });
        execution.latency_ms = 12;
        episode.add_step(execution);
    }
    episode.metadata.insert("run".into(), "bench".into());
    episode.complete(TaskOutcome::Success {
        verdict: "tests pass".into(),
        artifacts: vec!["src/lib.rs".into()],
    });
    episode
}

#[derive(Clone, Copy)]
enum Operation {
    Store,
    Get,
    Query,
}

impl Operation {
    const ALL: [Operation; 3] = [Operation::Store, Operation::Get, Operation::Query];

    fn name(self) -> &'static str {
        match self {
            Operation::Store => "store_episode",
            Operation::Get => "get_episode",
            Operation::Query => "query_episodes",
        }
    }

    /// The older roadmap's P95 target.
    fn p95_target(self) -> Duration {
        match self {
            Operation::Store => Duration::from_millis(50),
            Operation::Get | Operation::Query => Duration::from_millis(100),
        }
    }

    /// Call number `n` of this operation.
    async fn call(self, storage: &TursoStorage<Tokio>, ids: &[Uuid], n: usize) {
        match self {
            Operation::Store => storage.store_episode(&episode(n)).await.unwrap(),
            Operation::Get => {
                let found = storage.get_episode(ids[n % ids.len()]).await.unwrap();
                assert!(found.is_some());
            }
            Operation::Query => {
                let query = EpisodeQuery {
                    domain: Some(format!("domain-{}", n % DOMAINS)),
                    limit: Some(10),
                    ..EpisodeQuery::default()
                };
                assert_eq!(storage.query_episodes(&query).await.unwrap().len(), 10);
            }
        }
    }
}

/// 100 tasks × 10 calls of `operation`; every call's latency in microseconds, and the wall time.
fn concurrent_run(bench: &Bench, operation: Operation, first: usize) -> (Histogram<u64>, Duration) {
    bench.runtime.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (storage, ids) = (bench.storage.clone(), bench.ids.clone());
                tokio::spawn(async move {
                    let mut latencies = Histogram::<u64>::new(3).unwrap();
                    for call in 0..CALLS_PER_TASK {
                        let n = first + task * CALLS_PER_TASK + call;
                        let call_started = Instant::now();
                        operation.call(&storage, &ids, n).await;
                        latencies.record(micros(call_started.elapsed())).unwrap();
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Histogram::<u64>::new(3).unwrap();
        for task in tasks {
            latencies.add(task.await.unwrap()).unwrap();
        }
        (latencies, started.elapsed())
    })
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn benches(c: &mut Criterion) {
    let bench = Bench::new();
    let mut next = PRELOADED;

    let mut single = c.benchmark_group("one call");
    single.measurement_time(Duration::from_secs(3));
    single.warm_up_time(Duration::from_secs(1));
    for operation in Operation::ALL {
        single.bench_function(operation.name(), |b| {
            b.iter(|| {
                next += 1;
                bench
                    .runtime
                    .block_on(operation.call(&bench.storage, &bench.ids, next));
            })
        });
    }
    single.finish();

    let mut concurrent = c.benchmark_group("1,000 calls from 100 tasks");
    concurrent.sample_size(10);
    concurrent.measurement_time(Duration::from_secs(5));
    concurrent.warm_up_time(Duration::from_secs(1));
    for operation in Operation::ALL {
        concurrent.bench_function(operation.name(), |b| {
            b.iter_custom(|iterations| {
                (0..iterations)
                    .map(|_| {
                        next += TASKS * CALLS_PER_TASK;
                        concurrent_run(&bench, operation, next).1
                    })
                    .sum()
            })
        });
    }
    concurrent.finish();
}

criterion_group!(storage_benches, benches);

/// The percentile report, on a fresh database.
fn report() {
    let bench = Bench::new();
    let mut first = PRELOADED;
    println!();
    println!(
        "Latency of one call while 100 tasks make 10 calls each (1,000 calls), local file, tokio with \
         2 workers, {PRELOADED} episodes preloaded:"
    );
    println!();
    println!("| operation | p50 | p95 | p99 | max | 1,000 calls took | P95 target | P95 under target by | 1,000 ops target (5 s) under by |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for operation in Operation::ALL {
        let (latencies, wall) = concurrent_run(&bench, operation, first);
        first += TASKS * CALLS_PER_TASK;
        let p95 = Duration::from_micros(latencies.value_at_quantile(0.95));
        let millis = |micros: u64| format!("{:.2} ms", micros as f64 / 1000.0);
        println!(
            "| `{}` | {} | {} | {} | {} | {:.1} ms | < {} ms | {:.0}× | {:.0}× |",
            operation.name(),
            millis(latencies.value_at_quantile(0.50)),
            millis(latencies.value_at_quantile(0.95)),
            millis(latencies.value_at_quantile(0.99)),
            millis(latencies.max()),
            wall.as_secs_f64() * 1000.0,
            operation.p95_target().as_millis(),
            operation.p95_target().as_secs_f64() / p95.as_secs_f64().max(1e-6),
            5.0 / wall.as_secs_f64(),
        );
    }
}

fn main() {
    storage_benches();
    Criterion::default().configure_from_args().final_summary();
    report();
}
