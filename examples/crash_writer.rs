//! Writes episodes through `TursoStorage` into one database file until it is killed, and prints each
//! episode's id on stdout (flushed) only after the store call returned `Ok`: every id printed is an
//! acknowledged write.
//!
//! `tests/reliability_crash.rs` runs it, kills it with SIGKILL at a random moment, again and again on
//! the same file, and then checks that every printed id is stored and that the file passes
//! `PRAGMA integrity_check`.
//!
//! Four threads write at once. Most writes are single `store_episode` calls, which concurrent threads
//! commit together through the write lane's group commit; every eighth is a `store_episodes` batch of
//! four in one transaction, whose ids are printed once the whole batch is committed. Descriptions of varying
//! length (up to ~2 KB) make the WAL grow and checkpoint along the way, so kills also land in the
//! middle of checkpoints.
//!
//! Durability: the storage runs the file in WAL mode with `synchronous=NORMAL`. A commit is then in
//! the WAL, in the operating system's page cache, when the call returns, so it survives the crash of
//! the process (what this program is for). It is not synced to disk at every commit, so a power loss
//! or an OS crash can lose the last commits (never corrupt the file).
//!
//! Run with `cargo run --example crash_writer -- PATH` (stop it with Ctrl-C).

use std::error::Error;
use std::io::Write;
use std::process::ExitCode;

use futures_lite::future::block_on;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::{
    Episode, ExecutionResult, ExecutionStep, TaskContext, TaskType, TursoStorage,
};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: crash_writer DATABASE_PATH");
        return ExitCode::from(2);
    };
    match block_on(write_until_killed(&path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("crash_writer: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Threads writing at once.
const WRITERS: usize = 4;

async fn write_until_killed(path: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let storage = TursoStorage::builder(&format!("file:{path}"), "")
        .runtime(Blocking)
        .build()
        .await?;
    storage.initialize_schema().await?;
    let storage = &storage;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS as u64)
            .map(|writer| s.spawn(move || block_on(write_forever(storage, writer))))
            .collect();
        // A writer only returns with an error: report the first.
        for writer in writers {
            writer.join().expect("a writer thread panicked")?;
        }
        Ok(())
    })
}

/// Writes episodes until the process is killed, printing each id once its write is acknowledged.
async fn write_forever(
    storage: &TursoStorage<Blocking>,
    writer: u64,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let pid = std::process::id();
    for n in 0u64.. {
        let batch: Vec<Episode> = if n % 8 == 7 {
            let batch: Vec<Episode> = (0..4).map(|i| episode(pid, writer, n, i)).collect();
            storage.store_episodes(&batch).await?;
            batch
        } else {
            let episode = episode(pid, writer, n, 0);
            storage.store_episode(&episode).await?;
            vec![episode]
        };
        // Acknowledged: only now may the ids be printed (whole lines, under the stdout lock).
        let mut out = std::io::stdout().lock();
        for episode in &batch {
            writeln!(out, "{}", episode.episode_id)?;
        }
        out.flush()?;
    }
    Ok(())
}

/// The `part`-th episode of write number `n` of writer `writer` of process `pid`.
fn episode(pid: u32, writer: u64, n: u64, part: u64) -> Episode {
    let padding = "x".repeat(fastrand::usize(0..2048));
    let mut episode = Episode::new(
        format!("crash writer {pid}/{writer} write {n} part {part} {padding}"),
        TaskContext::default(),
        TaskType::Testing,
    );
    let mut step = ExecutionStep::new(1, "crash_writer".into(), "store".into());
    step.result = Some(ExecutionResult::Success {
        output: format!("write {n}"),
    });
    episode.add_step(step);
    episode
        .metadata
        .insert("writer_pid".into(), pid.to_string());
    episode.metadata.insert("write".into(), n.to_string());
    episode
}
