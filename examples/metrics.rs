//! The pool's metrics, exported: 8 threads read and write a temporary local file through the libSQL
//! lanes (pools named `write` and `read`), then the metrics are printed in the Prometheus text format,
//! next to each lane's `statistics()`.
//!
//! Run with `cargo run --example metrics --features metrics`.
//!
//! The recorder here is `metrics-util`'s `DebuggingRecorder`, which keeps everything in memory; in a
//! service, install an exporter (for example `metrics-exporter-prometheus`) instead, and call
//! `record_metrics` on each pool before a scrape (or leave the gauges to the maintenance task).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase, LibsqlError};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;

const THREADS: i64 = 8;
const OPERATIONS: i64 = 250;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Install the recorder before building the pools: they register their metrics as they are built.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .map_err(|_| "another metrics recorder is installed")?;

    let dir = tempfile::tempdir()?;
    let database = LibsqlDatabase::open_file(dir.path().join("metrics.db"))?;
    let lanes = LanedPool::builder(database).readers(4).build()?;
    block_on(async {
        let mut writer = lanes.write_blocking()?;
        writer
            .execute_schema(
                "CREATE TABLE samples(id INTEGER PRIMARY KEY, thread INTEGER, value REAL)",
            )
            .await
    })?;

    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let lanes = &lanes;
                s.spawn(move || {
                    for i in 0..OPERATIONS {
                        block_on(async {
                            if i % 4 == 0 {
                                let mut conn = lanes.write_blocking()?;
                                conn.execute_cached(
                                    "INSERT INTO samples(thread, value) VALUES (?1, ?2)",
                                    (thread, i as f64 * 0.5),
                                )
                                .await?;
                            } else {
                                let mut conn = lanes.read_blocking()?;
                                conn.query_row_cached(
                                    "SELECT avg(value) FROM samples WHERE thread = ?1",
                                    [thread],
                                    |row| row.get::<Option<f64>>(0),
                                )
                                .await?;
                            }
                            Ok::<_, LibsqlError>(())
                        })?;
                    }
                    Ok::<_, LibsqlError>(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a worker panicked"))
    })?;
    println!(
        "# {} operations from {THREADS} threads in {:?}\n",
        THREADS * OPERATIONS,
        started.elapsed()
    );

    // Gauges are sampled: publish them now, so that the export is exact.
    lanes.write_pool().record_metrics();
    lanes.read_pool().record_metrics();
    print!("{}", prometheus_text(&snapshotter));

    println!("\n# statistics() of each lane, for comparison");
    println!("# write: {:?}", lanes.write_pool().statistics());
    println!("# read:  {:?}", lanes.read_pool().statistics());
    Ok(())
}

/// The recorder's snapshot in the Prometheus text format; the histogram is shown as a summary.
fn prometheus_text(snapshotter: &Snapshotter) -> String {
    let mut families: BTreeMap<String, (MetricKind, Option<String>, Vec<String>)> = BTreeMap::new();
    for (key, _unit, description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key) = (key.kind(), key.key().clone());
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
            .collect();
        let name = key.name().to_owned();
        let family = families
            .entry(name.clone())
            .or_insert_with(|| (kind, description.map(|d| d.to_string()), Vec::new()));
        let with = |extra: Option<String>| {
            let all: Vec<String> = labels.iter().cloned().chain(extra).collect();
            format!("{{{}}}", all.join(","))
        };
        match value {
            DebugValue::Counter(n) => family.2.push(format!("{name}{} {n}", with(None))),
            DebugValue::Gauge(g) => family.2.push(format!("{name}{} {}", with(None), g.0)),
            DebugValue::Histogram(values) => {
                let mut values: Vec<f64> = values.iter().map(|v| v.0).collect();
                values.sort_by(f64::total_cmp);
                for q in [0.5, 0.9, 0.99] {
                    let at = ((values.len() as f64 * q).ceil() as usize).saturating_sub(1);
                    let v = values.get(at).copied().unwrap_or(0.0);
                    let quantile = Some(format!("quantile=\"{q}\""));
                    family.2.push(format!("{name}{} {v}", with(quantile)));
                }
                let sum: f64 = values.iter().sum();
                family.2.push(format!("{name}_sum{} {sum}", with(None)));
                family
                    .2
                    .push(format!("{name}_count{} {}", with(None), values.len()));
            }
        }
    }
    let mut text = String::new();
    for (name, (kind, description, samples)) in families {
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "summary",
        };
        if let Some(description) = description {
            let _ = writeln!(text, "# HELP {name} {description}");
        }
        let _ = writeln!(text, "# TYPE {name} {kind}");
        for sample in samples {
            let _ = writeln!(text, "{sample}");
        }
    }
    text
}
