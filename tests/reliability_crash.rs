//! Crash durability: the `crash_writer` example stores episodes through `TursoStorage` from 4 threads
//! (so single writes share group commits) and prints each id once the store call returned `Ok`; this
//! test kills it with SIGKILL at a random moment, 20 times in a row on the same database file, then
//! reopens the file and checks that every acknowledged id is stored and that `PRAGMA integrity_check`
//! says `ok`.
//!
//! What it shows, and what it does not: the storage runs its files in WAL mode with
//! `synchronous=NORMAL`. A commit is in the WAL (in the OS page cache) when the call returns, which
//! survives the crash of the process, as tested here. Commits are not synced to disk one by one, so a
//! power loss or an OS crash may lose the last ones (SQLite guarantees the file stays consistent, but
//! that is not tested here: it needs a machine to pull the plug on).
//!
//! `CRASH_LOOPS=200 cargo test --release --all-features --test reliability_crash` runs a longer loop
//! (the README's testing section has the command).
#![cfg(all(unix, feature = "libsql"))]

mod storage_support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

mod example_build;

use futures_lite::future::block_on;
use memory_storage_turso::libsql::LibsqlDatabase;
use storage_support::{blocking_storage, TempDb};
use uuid::Uuid;

/// Builds the example (a no-op when it is fresh) and returns its path.
fn crash_writer() -> &'static Path {
    example_build::example("crash_writer")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one run of the writer acknowledged before it was killed.
struct Round {
    acknowledged: Vec<Uuid>,
    delay: Duration,
}

/// Starts the writer on `db`, waits for its first acknowledged id, lets it run for a random delay, and
/// kills it with SIGKILL. Returns every id it printed in full.
fn run_and_kill(db: &Path, max_delay_ms: u64) -> Round {
    let mut child = Command::new(crash_writer())
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the crash writer starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (first_tx, first_rx) = mpsc::channel();
    // Drains stdout as the writer prints, so that it never blocks on a full pipe, until EOF (the kill).
    let reader = thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut ids = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).expect("reading stdout");
            // A line without its newline was cut by the kill: it was never printed in full.
            if read == 0 || line.last() != Some(&b'\n') {
                return ids;
            }
            let text = std::str::from_utf8(&line[..line.len() - 1]).expect("UTF-8");
            let id = Uuid::parse_str(text).unwrap_or_else(|_| panic!("not an id: {text:?}"));
            if ids.is_empty() {
                let _ = first_tx.send(());
            }
            ids.push(id);
        }
    });
    if first_rx.recv().is_err() {
        // Stdout closed before a single id: the writer failed on its own.
        let status = child.wait().expect("the writer's status");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("the crash writer exited ({status}) before acknowledging anything:\n{stderr}");
    }
    // The random moment of the crash, measured from the first acknowledged write.
    let delay = Duration::from_millis(fastrand::u64(0..=max_delay_ms));
    thread::sleep(delay);
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("the writer's status");
    let acknowledged = reader.join().expect("the stdout reader");
    if status.signal() != Some(libc::SIGKILL) {
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("piped stderr")
            .read_to_string(&mut stderr)
            .unwrap();
        panic!("the crash writer ended with {status} before it was killed:\n{stderr}");
    }
    Round {
        acknowledged,
        delay,
    }
}

#[test]
fn every_acknowledged_episode_survives_sigkill() {
    let loops = env("CRASH_LOOPS", 20);
    let max_delay_ms = env("CRASH_MAX_DELAY_MS", 40);
    let db = TempDb::new();
    let path = db.path();
    let mut acknowledged = Vec::new();
    let mut per_round = Vec::new();
    for _ in 0..loops {
        let round = run_and_kill(&path, max_delay_ms);
        per_round.push((round.acknowledged.len(), round.delay.as_millis()));
        acknowledged.extend(round.acknowledged);
    }

    // The file is consistent, whatever the kills interrupted.
    {
        let database = LibsqlDatabase::open_file(&path).unwrap();
        let conn = database.connect().unwrap();
        let check = block_on(async {
            let mut rows = conn.query("PRAGMA integrity_check", ()).await?;
            let mut lines = Vec::new();
            while let Some(row) = rows.next().await? {
                lines.push(row.get::<String>(0)?);
            }
            Ok::<_, libsql::Error>(lines)
        })
        .unwrap();
        assert_eq!(check, ["ok"], "PRAGMA integrity_check");
    }

    // Every acknowledged write is there, and reads back whole.
    let storage = blocking_storage(&db.url);
    block_on(async {
        for id in &acknowledged {
            let episode = storage
                .get_episode(*id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("acknowledged episode {id} is missing"));
            assert!(
                episode.task_description.starts_with("crash writer "),
                "{id}: {:?}",
                episode.task_description
            );
            assert!(episode.metadata.contains_key("write"), "{id}");
            assert_eq!(episode.steps.len(), 1, "{id}");
        }
        let stored = storage.get_statistics().await.unwrap().episode_count;
        assert!(stored >= acknowledged.len());
        // Stored but not acknowledged: at most the writes in flight at each kill (each of the
        // writer's 4 threads, a batch of 4 at most).
        assert!(
            stored <= acknowledged.len() + 4 * 4 * loops as usize,
            "{stored} stored, {} acknowledged",
            acknowledged.len()
        );
        eprintln!(
            "crash loop: {loops} SIGKILLs, {} acknowledged episodes all present, {stored} stored, \
             integrity ok; (acknowledged, delay ms) per round: {per_round:?}",
            acknowledged.len()
        );
    });
}
