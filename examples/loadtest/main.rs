//! The main job: a load test of the pool on libSQL, with a live progress bar, latency percentiles,
//! errors by kind and pool statistics, optionally side by side with the older crate's design.
//!
//! ```text
//! cargo run --release --example loadtest                       # temporary local file, 64 tokio tasks
//! cargo run --release --example loadtest -- --compare old      # and the old design, with the ratio
//! cargo run --release --example loadtest -- --help             # every option
//! ```

mod args;
mod old_design;
mod report;
mod runner;
mod target;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memory_storage_turso::libsql::{
    block_on, DatabaseKind, LanedPool, LibsqlDatabase, LibsqlManager, LibsqlPool,
};
use memory_storage_turso::pool::{Pool, PoolConfig};
use memory_storage_turso::rt::Tokio;
use serde_json::json;

use args::{Args, RuntimeKind, Workload};
use memory_storage_turso::storage::TursoStorage;
use old_design::OldDesign;
use report::{pool_rows, RunReport};
use runner::Plan;
use target::{sample_episode, StorageTarget, Target};

/// The tokio runtime of `--runtime tokio` runs (and of remote databases): as many workers as cores.
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadtest: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where the database lives.
enum Location {
    /// A temporary directory, removed at the end unless `--keep`.
    Temporary(tempfile::TempDir),
    /// A path or URL the user gave.
    Given(String),
}

fn run(args: &Args) -> Result<(), String> {
    let location = match &args.url {
        None => Location::Temporary(
            tempfile::Builder::new()
                .prefix("loadtest-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?,
        ),
        Some(url) => Location::Given(url.clone()),
    };
    let database = open_database(&location, args)?;
    let local_file = match &location {
        Location::Temporary(dir) => Some(dir.path().join("loadtest.db")),
        Location::Given(_) if database.kind() == DatabaseKind::File => {
            Some(PathBuf::from(database.location()))
        }
        Location::Given(_) => None,
    };
    if args.compare.is_some() && local_file.is_none() {
        return Err(
            "--compare old needs a local database file (leave out --url, or give a file path)"
                .into(),
        );
    }
    if args.compare.is_some() && args.workload != Workload::Point {
        return Err("--compare old reproduces the old pool, so it needs --workload point".into());
    }

    let ours = match args.workload {
        Workload::Point => point_target(database, args)?,
        Workload::Storage => {
            Target::Storage(Box::new(storage_target(&location, &local_file, args)?))
        }
        Workload::Mixed => Target::Mixed(
            Box::new(point_target(database, args)?),
            Box::new(storage_target(&location, &local_file, args)?),
        ),
    };
    let description = format!(
        "{} workload: {} {} callers, {} operations, read ratio {:.2}, pool of {}, on {}",
        workload_name(args.workload),
        args.tasks,
        runtime_name(args.runtime),
        args.ops,
        args.read_ratio,
        args.pool_size,
        match (&location, &local_file) {
            (Location::Temporary(_), _) => "a temporary local file".to_string(),
            (_, Some(path)) => path.display().to_string(),
            (Location::Given(url), None) => redact(url),
        }
    );

    let mut runs = vec![run_one("this crate", ours, args)?];
    if args.compare.is_some() {
        let path = old_path(local_file.as_deref().expect("checked above"));
        let old = block_on(OldDesign::open(&path, args.pool_size as usize))
            .map_err(|e| format!("cannot open {} for the old design: {e}", path.display()))?;
        let old = Target::Old(Box::new(old));
        seed(&old, args.rows)?;
        runs.push(run_one("old design", old, args)?);
    }

    if args.json {
        let config = json!({
            "workload": workload_name(args.workload),
            "runtime": runtime_name(args.runtime),
            "tasks": args.tasks,
            "ops": args.ops,
            "pool_size": args.pool_size,
            "read_ratio": args.read_ratio,
            "rows": args.rows,
        });
        report::print_json(config, &runs);
    } else {
        report::print_table(&description, &runs);
    }
    if let Location::Temporary(dir) = location {
        if args.keep {
            let path = dir.keep();
            eprintln!("kept the database in {}", path.display());
        }
    }
    Ok(())
}

fn workload_name(workload: Workload) -> &'static str {
    match workload {
        Workload::Point => "point",
        Workload::Storage => "storage",
        Workload::Mixed => "mixed",
    }
}

fn runtime_name(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Tokio => "tokio",
        RuntimeKind::Smol => "smol",
        RuntimeKind::Threads => "thread",
    }
}

/// Shows a URL without its query string, where tokens sometimes hide.
fn redact(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_string()
}

fn old_path(path: &Path) -> PathBuf {
    let mut name = path.file_stem().unwrap_or_default().to_os_string();
    name.push("-old-design.db");
    path.with_file_name(name)
}

fn open_database(location: &Location, args: &Args) -> Result<LibsqlDatabase, String> {
    match location {
        Location::Temporary(dir) => LibsqlDatabase::open_file(dir.path().join("loadtest.db"))
            .map_err(|e| format!("cannot open the temporary database: {e}")),
        Location::Given(url) => {
            let opened = tokio_runtime().block_on(LibsqlDatabase::open(url, args.token.as_deref()));
            opened.map_err(|e| format!("cannot open {}: {e}", redact(url)))
        }
    }
}

fn pool_config(args: &Args) -> Result<PoolConfig, String> {
    PoolConfig::builder()
        .max_connections(args.pool_size as usize)
        .connection_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// This crate's pool over `database`, with the key-value table seeded.
fn point_target(database: LibsqlDatabase, args: &Args) -> Result<Target, String> {
    let target = pool_target(database, args)?;
    seed(&target, args.rows)?;
    Ok(target)
}

fn pool_target(database: LibsqlDatabase, args: &Args) -> Result<Target, String> {
    let config = pool_config(args)?;
    if database.kind().runs_locally() {
        let builder = LanedPool::builder(database)
            .readers(args.pool_size as usize)
            .config(config);
        let builder =
            match args.runtime {
                RuntimeKind::Tokio => {
                    builder.runtime(Tokio::from_handle(tokio_runtime().handle().clone()))
                }
                #[cfg(feature = "smol")]
                RuntimeKind::Smol => builder.runtime(memory_storage_turso::rt::Smol),
                #[cfg(not(feature = "smol"))]
                RuntimeKind::Smol => return Err(
                    "--runtime smol needs the `smol` feature: add `--features smol` to cargo run"
                        .into(),
                ),
                RuntimeKind::Threads => builder,
            };
        return builder
            .build()
            .map(Target::Lanes)
            .map_err(|e| e.to_string());
    }
    if args.runtime != RuntimeKind::Tokio {
        return Err(
            "a remote database runs on libsql's tokio-based client: use --runtime tokio".into(),
        );
    }
    let pool: LibsqlPool = Pool::builder(LibsqlManager::new(database))
        .config(config)
        .runtime(Tokio::from_handle(tokio_runtime().handle().clone()))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Target::Pool(pool))
}

/// `TursoStorage` on the same database, with its schema and `rows` episodes stored.
fn storage_target(
    location: &Location,
    local_file: &Option<PathBuf>,
    args: &Args,
) -> Result<StorageTarget, String> {
    let url = match (location, local_file) {
        (_, Some(path)) => format!("file:{}", path.display()),
        (Location::Given(url), None) => url.clone(),
        (Location::Temporary(_), None) => unreachable!("a temporary database is a local file"),
    };
    let runtime = tokio_runtime();
    runtime.block_on(async {
        let storage = TursoStorage::builder(&url, args.token.as_deref().unwrap_or(""))
            .pool_config(pool_config(args)?)
            .runtime(Tokio::from_handle(runtime.handle().clone()))
            .build()
            .await
            .map_err(|e| format!("cannot open the storage: {e}"))?;
        storage
            .initialize_schema()
            .await
            .map_err(|e| format!("cannot create the storage schema: {e}"))?;
        let mut ids = Vec::with_capacity(args.rows as usize);
        let episodes: Vec<_> = (0..args.rows)
            .map(|n| sample_episode(&format!("episode {n}")))
            .collect();
        for batch in episodes.chunks(500) {
            storage
                .store_episodes(batch)
                .await
                .map_err(|e| format!("cannot store the initial episodes: {e}"))?;
            ids.extend(batch.iter().map(|e| e.episode_id));
        }
        Ok(StorageTarget { storage, ids })
    })
}

/// Creates the table and fills it to `rows` rows.
fn seed(target: &Target, rows: u64) -> Result<(), String> {
    // Each guard lives until its `fill` returns: no clone of a connection outlives its owner.
    let seeded = async {
        let filled: Result<(), Box<dyn std::error::Error>> = match target {
            Target::Lanes(lanes) => {
                let writer = lanes.write_blocking()?;
                fill(&writer, rows).await
            }
            Target::Pool(pool) => {
                let conn = pool.get().await?;
                fill(&conn, rows).await
            }
            Target::Old(old) => {
                let checked = old.get().await?;
                fill(&checked.conn, rows).await
            }
            Target::Storage(_) | Target::Mixed(..) => {
                unreachable!("only point targets have the table")
            }
        };
        filled
    };
    let result = match target {
        Target::Pool(_) => tokio_runtime().block_on(seeded),
        _ => block_on(seeded),
    };
    result.map_err(|e| format!("cannot create the test table: {e}"))
}

/// Creates the table on `conn` and fills it to `rows` rows.
async fn fill(conn: &libsql::Connection, rows: u64) -> Result<(), Box<dyn std::error::Error>> {
    const CREATE: &str =
        "CREATE TABLE IF NOT EXISTS kv(id INTEGER PRIMARY KEY, value TEXT NOT NULL)";
    const INSERT: &str = "INSERT OR IGNORE INTO kv(id, value) VALUES (?1, ?2)";
    conn.execute(CREATE, ()).await?;
    let tx = conn.transaction().await?;
    for id in 1..=rows as i64 {
        tx.execute(INSERT, (id, format!("value {id}"))).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn run_one(name: &'static str, target: Target, args: &Args) -> Result<RunReport, String> {
    let plan = Plan {
        tasks: args.tasks,
        ops: args.ops,
        rows: args.rows,
        read_ratio: args.read_ratio,
        deadline: args.duration.map(|d| Instant::now() + d),
        runtime: args.runtime,
    };
    let done = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(name, args);
    let outcome = std::thread::scope(|s| {
        let ticker = s.spawn(|| {
            while !progress.is_finished() {
                progress.set_position(done.load(Relaxed));
                std::thread::sleep(Duration::from_millis(100)); // the bar's refresh rate
            }
        });
        let target = Arc::new(target);
        let outcome = runner::run(target.clone(), plan, done.clone());
        progress.finish_and_clear();
        ticker.join().expect("progress ticker");
        let pool = pool_report(&target, "");
        close(&target);
        (outcome, pool)
    });
    let (outcome, pool) = outcome;
    Ok(RunReport {
        name,
        outcome,
        pool,
    })
}

/// The pool statistics of a target, as report rows.
fn pool_report(target: &Target, prefix: &str) -> Vec<(String, u64)> {
    match target {
        Target::Lanes(lanes) => {
            let stats = lanes.statistics();
            let mut rows = pool_rows(prefix, &stats.read);
            rows.push((
                format!("{prefix}write lane connections"),
                stats.write.total_created as u64,
            ));
            rows.push((
                format!("{prefix}write lane checkouts"),
                stats.write.total_checkouts as u64,
            ));
            rows.push((
                format!("{prefix}writes (group commit)"),
                stats.grouped_statements,
            ));
            rows.push((format!("{prefix}write transactions"), stats.group_commits));
            rows
        }
        Target::Pool(pool) => pool_rows(prefix, &pool.statistics()),
        Target::Old(old) => vec![
            (
                format!("{prefix}connections created"),
                old.created.load(Relaxed),
            ),
            (
                format!("{prefix}health checks"),
                old.health_checks.load(Relaxed),
            ),
        ],
        Target::Storage(storage) => {
            let stats = block_on(storage.storage.pool_statistics()).expect("storage is pooled");
            pool_rows(prefix, &stats)
        }
        Target::Mixed(point, storage) => {
            let mut rows = pool_report(point, "point: ");
            rows.extend(pool_report(
                &Target::Storage(Box::new(StorageTarget {
                    storage: storage.storage.clone(),
                    ids: Vec::new(),
                })),
                "storage: ",
            ));
            rows
        }
    }
}

/// Closes what the target opened, so that the database files are released before the next run.
fn close(target: &Target) {
    match target {
        Target::Lanes(lanes) => lanes.close(),
        Target::Mixed(point, _) => close(point),
        Target::Pool(_) | Target::Old(_) | Target::Storage(_) => {}
    }
}

fn progress_bar(name: &str, args: &Args) -> ProgressBar {
    let bar = ProgressBar::new(args.ops);
    if args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar.set_prefix(name.to_string());
    bar
}
