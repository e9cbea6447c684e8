//! Every libSQL connection this crate opens is closed once, without reading freed memory.
//!
//! libsql 0.9.30 calls `sqlite3_close_v2` twice on a local connection's handle when its last clone
//! drops (see `OwnedConnection`). The second call reads the freed `sqlite3` struct: valgrind reports
//! it every time, while a plain run shows nothing until the freed block is reused or unmapped (then a
//! crash, or a close of another connection). So each check runs a workload of this file, in a child
//! process of this test binary, under `valgrind --error-exitcode`.
//!
//! Without valgrind installed the checks print a notice and pass, unless `REQUIRE_VALGRIND=1` (which
//! `.ci/run` sets) makes that a failure.
#![cfg(feature = "libsql")]

use std::process::Command;

use memory_storage_turso::libsql::{
    block_on, ConnectionPool, LanedPool, LibsqlDatabase, LibsqlManager, OwnedConnection,
};
use memory_storage_turso::pool::{Pool, PoolConfig};

/// The exit code valgrind uses when it found an error.
const VALGRIND_ERROR: i32 = 86;

/// Runs the ignored test `workload` of this binary under valgrind and returns whether valgrind found
/// no error, or `None` without valgrind.
fn clean_under_valgrind(workload: &str) -> Option<bool> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        let required = std::env::var("REQUIRE_VALGRIND").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "REQUIRE_VALGRIND=1 but valgrind is not installed"
        );
        println!("valgrind is not installed: skipping the {workload} check");
        return None;
    }
    let output = Command::new("valgrind")
        .args([
            "--quiet",
            &format!("--error-exitcode={VALGRIND_ERROR}"),
            "--leak-check=no",
        ])
        .arg(std::env::current_exe().expect("the test binary"))
        .args([workload, "--exact", "--ignored", "--test-threads=1"])
        .output()
        .expect("run valgrind");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    match output.status.code() {
        Some(0) => Some(true),
        Some(VALGRIND_ERROR) => {
            println!("valgrind's report of {workload}:\n{report}");
            Some(false)
        }
        other => panic!("{workload} failed under valgrind (exit {other:?}):\n{report}"),
    }
}

#[test]
fn connections_opened_by_this_crate_are_closed_once() {
    if let Some(clean) = clean_under_valgrind("workload_of_this_crate") {
        assert!(
            clean,
            "a connection was closed twice (see valgrind's report above)"
        );
    }
}

/// Shows that the check can fail: a plain `libsql::Connection` is still closed twice by the libsql
/// version in use. When libsql fixes it, this fails, and `OwnedConnection` can go.
#[test]
fn libsql_itself_still_closes_a_dropped_connection_twice() {
    if let Some(clean) = clean_under_valgrind("workload_of_plain_libsql") {
        assert!(
            !clean,
            "libsql closed its connection once: the workaround is no longer needed"
        );
    }
}

#[test]
#[ignore = "run under valgrind by workload_of_plain_libsql's check"]
fn workload_of_plain_libsql() {
    let database = block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
    let conn = database.connect().unwrap();
    block_on(conn.execute("CREATE TABLE t(x)", ())).unwrap();
    drop(conn);
}

/// Opens and closes connections on every path of this crate: database anchors, pooled connections
/// (closed by the pool, as broken, by shutdown), the write lane's checkpointer, the old API's pool over
/// a caller's database, detached connections, the r2d2 facade, the storage, and a caller's embedded
/// replica.
#[test]
#[ignore = "run under valgrind by connections_opened_by_this_crate_are_closed_once"]
fn workload_of_this_crate() {
    let dir = tempfile::tempdir().unwrap();

    // A pool over a file, and one in memory: reuse, a broken connection, a detached one, then drop.
    for database in [
        LibsqlDatabase::open_file(dir.path().join("pool.db")).unwrap(),
        LibsqlDatabase::open_memory().unwrap(),
    ] {
        let raw: OwnedConnection = database.connect().unwrap();
        let pool = Pool::builder(LibsqlManager::new(database))
            .config(PoolConfig {
                max_connections: 2,
                ..PoolConfig::default()
            })
            .build()
            .unwrap();
        let mut conn = pool.get_blocking().unwrap();
        block_on(conn.execute_schema("CREATE TABLE t(x)")).unwrap();
        block_on(conn.execute_cached("INSERT INTO t VALUES (?1)", [1])).unwrap();
        conn.mark_broken();
        drop(conn);
        let detached = pool.get_blocking().unwrap().detach().into_owned();
        block_on(detached.execute("INSERT INTO t VALUES (2)", ())).unwrap();
        drop((detached, raw, pool));
    }

    // Lanes whose write lane checkpoints on a connection of its own.
    let lanes = LanedPool::builder(LibsqlDatabase::open_file(dir.path().join("lanes.db")).unwrap())
        .checkpoint_after_changes(1)
        .build()
        .unwrap();
    lanes
        .execute_blocking("CREATE TABLE t(x)", ())
        .expect("create");
    for x in 0..3 {
        lanes
            .execute_blocking("INSERT INTO t VALUES (?1)", [x])
            .unwrap();
    }
    assert!(lanes.statistics().checkpoints > 0, "the checkpointer ran");
    drop(lanes);

    // The old API over a caller's libsql::Database (of unknown kind: probed, then guarded).
    let caller = block_on(libsql::Builder::new_local(dir.path().join("old.db")).build()).unwrap();
    let old = block_on(ConnectionPool::new(caller.into(), PoolConfig::default())).unwrap();
    let conn = old.get_blocking().unwrap();
    block_on(conn.connection().unwrap().execute("CREATE TABLE t(x)", ())).unwrap();
    drop(conn);
    block_on(old.shutdown()).unwrap();
    drop(old);

    #[cfg(feature = "r2d2")]
    {
        use memory_storage_turso::libsql::r2d2::LibsqlConnectionManager;
        let database = LibsqlDatabase::open_file(dir.path().join("r2d2.db")).unwrap();
        let pool = r2d2::Pool::builder()
            .max_size(2)
            .build(LibsqlConnectionManager::new(database).unwrap())
            .unwrap();
        block_on(pool.get().unwrap().execute_schema("CREATE TABLE t(x)")).unwrap();
        drop(pool);
    }

    // The storage, over a URL and over a caller's database.
    {
        use memory_storage_turso::rt::Blocking;
        use memory_storage_turso::storage::{TursoStorage, TursoStorageBuilder};
        let path = dir.path().join("storage.db");
        let url = format!("file:{}", path.display());
        let storage = block_on(TursoStorage::builder(&url, "").runtime(Blocking).build()).unwrap();
        block_on(storage.initialize_schema()).unwrap();
        drop(storage);
        let caller = block_on(libsql::Builder::new_local(&path).build()).unwrap();
        let storage = block_on(
            TursoStorageBuilder::from_database(caller)
                .runtime(Blocking)
                .build(),
        )
        .unwrap();
        block_on(storage.get_statistics()).unwrap();
        drop(storage);
    }

    // A caller's embedded replica (a SQLite handle under a remote API), through the old API and the
    // storage.
    #[cfg(feature = "replica")]
    {
        use memory_storage_turso::storage::TursoStorageBuilder;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let replica = |name: &str| {
            let builder = libsql::Builder::new_local_replica(dir.path().join(name));
            runtime.block_on(builder.build()).unwrap()
        };
        let old = block_on(ConnectionPool::new(
            replica("old-replica.db").into(),
            PoolConfig::default(),
        ))
        .unwrap();
        block_on(old.get_blocking().unwrap().query("SELECT 1", ())).unwrap();
        drop(old);
        // A replica's writes go to its primary through libsql's HTTP client: it takes the Tokio adapter.
        let tokio = memory_storage_turso::rt::Tokio::from_handle(runtime.handle().clone());
        let storage = runtime
            .block_on(
                TursoStorageBuilder::from_database(replica("storage-replica.db"))
                    .runtime(tokio)
                    .build(),
            )
            .unwrap();
        drop(storage);
    }
}
