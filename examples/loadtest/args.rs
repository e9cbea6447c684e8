//! Command-line options.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Load test for the memory-storage-turso pool: runs a workload on many tasks and reports throughput,
/// latency percentiles, errors and pool statistics.
///
/// With no options it runs point reads and writes on a temporary local libSQL file, which is removed at
/// the end.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadtest", version, about, long_about = None)]
pub struct Args {
    /// Database URL: a file path or `file:` URL, `:memory:`, or a remote `libsql://` / `https://` URL
    /// (remote needs the `remote` feature). Default: a temporary local file.
    #[arg(long)]
    pub url: Option<String>,

    /// Auth token for a remote URL. Never printed.
    #[arg(long, env = "LIBSQL_AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Concurrent callers (tasks, or threads with `--runtime threads`).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub tasks: u64,

    /// Total operations, spread over the callers.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: u64,

    /// Connections in the pool (read lane size for local files; the write lane always has one).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub pool_size: u64,

    /// Share of operations that are reads, from 0.0 to 1.0.
    #[arg(long, default_value_t = 0.9, value_parser = parse_ratio)]
    pub read_ratio: f64,

    /// What each operation does.
    #[arg(long, value_enum, default_value_t = Workload::Point)]
    pub workload: Workload,

    /// How callers run.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Tokio)]
    pub runtime: RuntimeKind,

    /// Stop after this long even if `--ops` are not done, e.g. `30s`, `2m`, `500ms`.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Rows in the point-workload table, and episodes stored before a storage run.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rows: u64,

    /// Also run the same workload through the old design (a fresh connection and a `SELECT 1` on every
    /// checkout) and print both side by side with the ratio.
    #[arg(long, value_enum)]
    pub compare: Option<Compare>,

    /// Print one JSON object instead of the human report (no progress bar).
    #[arg(long)]
    pub json: bool,

    /// Keep the temporary database file and print its path.
    #[arg(long)]
    pub keep: bool,
}

/// The operations of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Point reads by primary key and single-row updates on a key-value table.
    Point,
    /// Episodic memory through `TursoStorage`: `get_episode` reads and `store_episode` writes.
    Storage,
    /// Half point operations, half storage operations, on one database.
    Mixed,
}

/// How the callers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// Tasks on a multi-threaded tokio runtime.
    Tokio,
    /// Tasks on a smol executor.
    Smol,
    /// One OS thread per caller, with blocking checkouts.
    Threads,
}

/// What to compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compare {
    /// The older crate's design: a fresh connection and a `SELECT 1` on every checkout.
    Old,
}

fn parse_ratio(text: &str) -> Result<f64, String> {
    let ratio: f64 = text.parse().map_err(|_| {
        format!("`{text}` is not a number; give a share between 0.0 and 1.0, e.g. 0.9")
    })?;
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(format!(
            "{ratio} is outside 0.0..=1.0; give a share such as 0.9"
        ))
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}`; use ms, s, m or h"
            ))
        }
    };
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
