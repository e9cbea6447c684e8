//! The write lane's own WAL checkpoints: its connection runs with `wal_autocheckpoint=0`, it
//! checkpoints after the rows it changed reach the threshold, the WAL stays bounded, and closing the
//! lanes closes the checkpoint connection too.
#![cfg(feature = "libsql")]

use std::path::{Path, PathBuf};

use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase, LibsqlError};

const SCHEMA: &str = "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)";

/// The size of the WAL file of `db` (0 when there is none).
fn wal_bytes(db: &Path) -> u64 {
    std::fs::metadata(journal(db, "-wal")).map_or(0, |m| m.len())
}

fn journal(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The bytes of a WAL of `frames` frames of 4 KiB pages (a 32-byte header, 24 bytes per frame).
fn wal_size_of(frames: u64) -> u64 {
    32 + frames * (4096 + 24)
}

/// A new directory `name` in `dir`.
fn subdir(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir(&path).unwrap();
    path
}

/// Lanes over a new WAL file in `dir`, with the schema, checkpointing after `changes` rows.
fn lanes(dir: &Path, changes: u64) -> (LanedPool, PathBuf) {
    let path = dir.join("notes.db");
    let database = LibsqlDatabase::open_file(&path).unwrap();
    assert!(database.is_wal());
    let lanes = LanedPool::builder(database)
        .readers(1)
        .checkpoint_after_changes(changes)
        .build()
        .unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();
    (lanes, path)
}

/// Inserts `rows` rows, one autocommit `INSERT` per checkout of the write lane; returns the largest WAL
/// seen after each 500.
fn insert_one_by_one(lanes: &LanedPool, db: &Path, rows: u64) -> u64 {
    let mut largest_wal = 0;
    for n in 0..rows {
        let mut writer = lanes.write_blocking().unwrap();
        block_on(
            writer.execute_cached("INSERT INTO notes(body) VALUES (?1)", [format!("note {n}")]),
        )
        .unwrap();
        drop(writer);
        if n % 500 == 499 {
            largest_wal = largest_wal.max(wal_bytes(db));
        }
    }
    largest_wal
}

fn count_notes(lanes: &LanedPool) -> i64 {
    let mut reader = lanes.read_blocking().unwrap();
    block_on(reader.query_row_cached("SELECT count(*) FROM notes", (), |r| r.get::<i64>(0)))
        .unwrap()
        .unwrap()
}

#[test]
fn the_write_lane_checkpoints_once_per_threshold_of_changed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (lanes, db) = lanes(dir.path(), 100);
    let writer = lanes.write_blocking().unwrap();
    let pragma = |name: &str| {
        block_on(async {
            let mut rows = writer.query(&format!("PRAGMA {name}"), ()).await?;
            rows.next().await?.expect("a row").get::<i64>(0)
        })
        .unwrap()
    };
    assert_eq!(
        pragma("wal_autocheckpoint"),
        0,
        "SQLite must not checkpoint inside the lane's commits"
    );
    // SQLite cuts the WAL back to this when it restarts it, so a larger file means new frames.
    assert_eq!(pragma("journal_size_limit"), WAL_LIMIT as i64);
    drop(writer);
    assert_eq!(lanes.statistics().checkpoints, 0);

    insert_one_by_one(&lanes, &db, 1_000);
    assert_eq!(
        lanes.statistics().checkpoints,
        10,
        "one checkpoint per 100 rows"
    );

    // Rows changed inside one transaction count once they went back, all together.
    let mut writer = lanes.write_blocking().unwrap();
    block_on(async {
        let tx = writer.transaction().await?;
        tx.execute("UPDATE notes SET body = body || '!' WHERE id <= 250", ())
            .await?;
        tx.commit().await?;
        Ok::<_, LibsqlError>(())
    })
    .unwrap();
    assert_eq!(
        lanes.statistics().checkpoints,
        10,
        "not while the lane is held"
    );
    drop(writer);
    assert_eq!(lanes.statistics().checkpoints, 11);
    assert_eq!(count_notes(&lanes), 1_000);
}

#[test]
fn the_wal_stays_bounded_by_the_lanes_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 6_000;

    // The default threshold (1,000 rows): the WAL restarts after each checkpoint.
    let (checkpointed, db) = lanes(&subdir(dir.path(), "rows"), 1_000);
    let bounded = insert_one_by_one(&checkpointed, &db, rows);
    assert!(checkpointed.statistics().checkpoints >= 5);
    assert!(
        bounded <= wal_size_of(2_500),
        "the WAL grew to {bounded} bytes with checkpoints every 1,000 rows"
    );
    assert_eq!(count_notes(&checkpointed), rows as i64);

    // A row threshold never reached: the WAL's size (16 MiB, read every 8 returns) sets the pace.
    // Without it, 6,000 commits leave a WAL of about 6,000 frames (24 MiB).
    let (by_size, db) = lanes(&subdir(dir.path(), "size"), u64::MAX);
    let bounded = insert_one_by_one(&by_size, &db, rows);
    assert!(
        by_size.statistics().checkpoints >= 1,
        "{:?}",
        by_size.statistics()
    );
    assert!(
        bounded <= WAL_LIMIT + wal_size_of(16),
        "the WAL grew to {bounded} bytes"
    );
    assert_eq!(count_notes(&by_size), rows as i64);
}

/// The size past which the write lane checkpoints whatever the rows (once the WAL grew by a quarter
/// of it since the last such checkpoint).
const WAL_LIMIT: u64 = 16 * 1024 * 1024;

/// The most a WAL of 256 KiB rows can reach: the limit, a quarter more, and 8 returns' rows.
const LARGE_ROWS_BOUND: u64 = WAL_LIMIT + WAL_LIMIT / 4 + 8 * (32 + 66 * (4096 + 24));

#[test]
fn large_rows_and_index_builds_are_checkpointed_by_the_wals_size() {
    let dir = tempfile::tempdir().unwrap();
    let (lanes, db) = lanes(dir.path(), 1_000);
    let insert = "INSERT INTO notes(body) VALUES (?1)";
    let body = "x".repeat(256 * 1024);
    // 42 MiB in 160 rows, far from 1,000 changed rows.
    let mut largest = 0;
    for _ in 0..160 {
        lanes.execute_blocking(insert, [body.as_str()]).unwrap();
        largest = largest.max(wal_bytes(&db));
    }
    assert!(
        lanes.statistics().checkpoints >= 1,
        "{:?}",
        lanes.statistics()
    );
    assert!(
        largest <= LARGE_ROWS_BOUND,
        "the WAL grew to {largest} bytes"
    );

    // An index build writes a copy of every body and changes no row.
    let before = lanes.statistics().checkpoints;
    lanes
        .execute_blocking("CREATE INDEX notes_by_body ON notes(body)", ())
        .unwrap();
    assert!(wal_bytes(&db) > WAL_LIMIT);
    for n in 0..8 {
        lanes
            .execute_blocking(insert, [format!("note {n}")])
            .unwrap();
    }
    assert!(
        lanes.statistics().checkpoints > before,
        "{:?}",
        lanes.statistics()
    );
    assert_eq!(count_notes(&lanes), 168);
}

/// How many of this process's file descriptors are open on `db`: one per open SQLite connection (and
/// per closed one whose descriptor SQLite keeps while another connection holds a lock on the file).
#[cfg(target_os = "linux")]
fn descriptors_on(db: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target == db)
        .count()
}

#[test]
fn closing_and_dropping_the_lanes_closes_every_connection_and_the_wal_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (lanes, db) = lanes(dir.path(), 10);
    let db = db.canonicalize().unwrap();
    insert_one_by_one(&lanes, &db, 100);
    assert_eq!(lanes.statistics().checkpoints, 10);
    // The database's anchor, the writer and the checkpoint connection (no reader was needed yet).
    #[cfg(target_os = "linux")]
    assert_eq!(descriptors_on(&db), 3);

    lanes.close();
    assert!(matches!(lanes.write_blocking(), Err(LibsqlError::Pool(_))));
    // The anchor holds the WAL (and a lock that keeps SQLite from closing the other connections'
    // descriptors) until the last pool over the database is dropped; then every connection is closed
    // and the last one removed the WAL files.
    drop(lanes);
    #[cfg(target_os = "linux")]
    assert_eq!(descriptors_on(&db), 0, "a connection outlived the lanes");
    for suffix in ["-wal", "-shm"] {
        assert!(!journal(&db, suffix).exists(), "{suffix} left behind");
    }

    let database = LibsqlDatabase::open_file(&db).unwrap();
    let conn = database.connect().unwrap();
    let (count, integrity) = block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM notes", ()).await?;
        let count = rows.next().await?.expect("a row").get::<i64>(0)?;
        let mut rows = conn.query("PRAGMA integrity_check", ()).await?;
        let integrity = rows.next().await?.expect("a row").get::<String>(0)?;
        Ok::<_, libsql::Error>((count, integrity))
    })
    .unwrap();
    assert_eq!((count, integrity.as_str()), (100, "ok"));
}

#[test]
fn a_database_opened_by_file_uri_is_checkpointed_by_size_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let database = LibsqlDatabase::open_file(format!("file:{}", path.display())).unwrap();
    let lanes = LanedPool::builder(database).readers(1).build().unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();
    let body = "x".repeat(256 * 1024);
    for _ in 0..100 {
        lanes
            .execute_blocking("INSERT INTO notes(body) VALUES (?1)", [body.as_str()])
            .unwrap();
    }
    assert!(path.exists(), "the URI named this file");
    assert!(
        lanes.statistics().checkpoints >= 1,
        "{:?}",
        lanes.statistics()
    );
    assert!(wal_bytes(&path) <= LARGE_ROWS_BOUND);
}
