//! The end-of-run report: a table for people, or one JSON object for scripts.

use memory_storage_turso::pool::PoolStatistics;
use std::fmt::Write as _;

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
    let mut out = String::new();
    writeln!(out, "\n{description}\n").unwrap();
    let header: Vec<&str> = runs.iter().map(|r| r.name).collect();
    write!(out, "{:<26}", "").unwrap();
    for name in &header {
        write!(out, "{name:>16}").unwrap();
    }
    if runs.len() == 2 {
        write!(out, "{:>12}", "ratio").unwrap();
    }
    writeln!(out).unwrap();
    let row = |out: &mut String,
               label: &str,
               values: Vec<f64>,
               higher_is_better: bool,
               decimals: usize| {
        write!(out, "{label:<26}").unwrap();
        for v in &values {
            write!(out, "{v:>16.decimals$}").unwrap();
        }
        if let [ours, theirs] = values[..] {
            let ratio = if higher_is_better {
                ours / theirs.max(1e-9)
            } else {
                theirs / ours.max(1e-9)
            };
            write!(out, "{:>11.1}×", ratio).unwrap();
        }
        writeln!(out).unwrap();
    };
    row(
        &mut out,
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
            &mut out,
            label,
            runs.iter().map(|r| r.percentile(q) as f64).collect(),
            false,
            0,
        );
    }
    row(
        &mut out,
        "max latency (µs)",
        runs.iter()
            .map(|r| r.outcome.latency.max() as f64)
            .collect(),
        false,
        0,
    );
    write!(out, "{:<26}", "successful operations").unwrap();
    for r in runs {
        write!(out, "{:>16}", r.outcome.ops()).unwrap();
    }
    writeln!(out).unwrap();
    write!(out, "{:<26}", "failed operations").unwrap();
    for r in runs {
        write!(out, "{:>16}", r.outcome.failed()).unwrap();
    }
    writeln!(out).unwrap();
    if runs.len() == 2 {
        writeln!(
            out,
            "\n(ratio: how many times better the first column is; above 1.0 means better;"
        )
        .unwrap();
        writeln!(
            out,
            " throughput and latency count successful operations only)"
        )
        .unwrap();
    }
    for r in runs {
        if !r.outcome.errors.is_empty() {
            writeln!(out, "\nerrors of {}:", r.name).unwrap();
            for (kind, count) in &r.outcome.errors {
                writeln!(out, "  {count:>10}  {kind}").unwrap();
            }
        }
        writeln!(out, "\npool statistics of {}:", r.name).unwrap();
        for (label, value) in &r.pool {
            writeln!(out, "  {label:<24}{value:>12}").unwrap();
        }
    }
    emit(&out);
}

/// Prints the JSON report.
pub fn print_json(config: Value, runs: &[RunReport]) {
    let mut out = String::new();
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
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&report).expect("a JSON report")
    )
    .unwrap();
    emit(&out);
}

/// Writes the report to stdout; a reader that stopped reading (`| head`) is not an error.
fn emit(report: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(report.as_bytes());
}
