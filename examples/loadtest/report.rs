//! The end-of-run report: a table for people, or one JSON object for scripts.

use memory_storage_turso::pool::PoolStatistics;
use serde_json::{json, Value};

use crate::runner::Outcome;

/// One run's results, with the pool's view of it.
pub struct RunReport {
    pub name: &'static str,
    pub outcome: Outcome,
    /// Pool gauges and counters, as `(label, value)` pairs.
    pub pool: Vec<(String, u64)>,
}

impl RunReport {
    pub fn throughput(&self) -> f64 {
        self.outcome.ops() as f64 / self.outcome.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile(&self, q: f64) -> u64 {
        self.outcome.latency.value_at_quantile(q)
    }

    fn to_json(&self) -> Value {
        let latency = &self.outcome.latency;
        json!({
            "name": self.name,
            "ops": self.outcome.ops() + self.outcome.failed(),
            "succeeded": self.outcome.ops(),
            "failed": self.outcome.failed(),
            "seconds": self.outcome.elapsed.as_secs_f64(),
            "throughput_ops_per_sec": self.throughput(),
            "latency_us": {
                "p50": self.percentile(0.50),
                "p95": self.percentile(0.95),
                "p99": self.percentile(0.99),
                "max": latency.max(),
                "mean": latency.mean(),
            },
            "errors": self.outcome.errors,
            "pool": self.pool.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The statistics of this crate's pool, as report rows, each label after `prefix`.
pub fn pool_rows(prefix: &str, stats: &PoolStatistics) -> Vec<(String, u64)> {
    let rows: [(&str, u64); 9] = [
        ("connections created", stats.total_created as u64),
        ("checkouts", stats.total_checkouts as u64),
        (
            "health checks",
            (stats.total_health_checks_passed + stats.total_health_checks_failed) as u64,
        ),
        ("max size", stats.max_size as u64),
        ("open at end", stats.size as u64),
        ("checkout timeouts", stats.timeouts),
        ("avg wait (ms)", stats.avg_wait_time_ms),
        ("max wait (ms)", stats.max_wait_time_ms),
        ("connections closed", stats.closed.total()),
    ];
    rows.into_iter()
        .map(|(label, value)| (format!("{prefix}{label}"), value))
        .collect()
}

/// Prints the human report: one column per run, and the ratio when there are two.
pub fn print_table(description: &str, runs: &[RunReport]) {
    println!("\n{description}\n");
    let header: Vec<&str> = runs.iter().map(|r| r.name).collect();
    print!("{:<26}", "");
    for name in &header {
        print!("{name:>16}");
    }
    if runs.len() == 2 {
        print!("{:>12}", "ratio");
    }
    println!();
    let row = |label: &str, values: Vec<f64>, higher_is_better: bool, decimals: usize| {
        print!("{label:<26}");
        for v in &values {
            print!("{v:>16.decimals$}");
        }
        if let [ours, theirs] = values[..] {
            let ratio = if higher_is_better {
                ours / theirs.max(1e-9)
            } else {
                theirs / ours.max(1e-9)
            };
            print!("{:>11.1}×", ratio);
        }
        println!();
    };
    row(
        "throughput (ok ops/s)",
        runs.iter().map(RunReport::throughput).collect(),
        true,
        0,
    );
    for (label, q) in [
        ("p50 latency (µs)", 0.5),
        ("p95 latency (µs)", 0.95),
        ("p99 latency (µs)", 0.99),
    ] {
        row(
            label,
            runs.iter().map(|r| r.percentile(q) as f64).collect(),
            false,
            0,
        );
    }
    row(
        "max latency (µs)",
        runs.iter()
            .map(|r| r.outcome.latency.max() as f64)
            .collect(),
        false,
        0,
    );
    print!("{:<26}", "successful operations");
    for r in runs {
        print!("{:>16}", r.outcome.ops());
    }
    println!();
    print!("{:<26}", "failed operations");
    for r in runs {
        print!("{:>16}", r.outcome.failed());
    }
    println!();
    if runs.len() == 2 {
        println!("\n(ratio: how many times better the first column is; above 1.0 means better;");
        println!(" throughput and latency count successful operations only)");
    }
    for r in runs {
        if !r.outcome.errors.is_empty() {
            println!("\nerrors of {}:", r.name);
            for (kind, count) in &r.outcome.errors {
                println!("  {count:>10}  {kind}");
            }
        }
        println!("\npool statistics of {}:", r.name);
        for (label, value) in &r.pool {
            println!("  {label:<24}{value:>12}");
        }
    }
}

/// Prints the JSON report.
pub fn print_json(config: Value, runs: &[RunReport]) {
    let mut report = json!({
        "config": config,
        "runs": runs.iter().map(RunReport::to_json).collect::<Vec<_>>(),
    });
    if let [ours, theirs] = runs {
        report["ratio"] = json!({
            "throughput": ours.throughput() / theirs.throughput().max(1e-9),
            "p99_latency": theirs.percentile(0.99) as f64 / (ours.percentile(0.99).max(1)) as f64,
        });
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("a JSON report")
    );
}
