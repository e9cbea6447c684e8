//! Group commit on the write lane (`LanedPool::execute`): acknowledged writes are committed, concurrent
//! statements share a transaction, a failing statement fails alone, a rolled-back group says so, and
//! cancelled callers neither run late nor leave the queue without a leader.
#![cfg(all(feature = "libsql", feature = "tokio"))]

use std::sync::Arc;

use memory_storage_turso::libsql::group_commit::MAX_GROUP;
use memory_storage_turso::libsql::{
    block_on, LanedPool, LibsqlDatabase, LibsqlError, StatementProblem,
};
use memory_storage_turso::rt::Tokio;

const SCHEMA: &str = "CREATE TABLE t(n INTEGER PRIMARY KEY, writer INTEGER NOT NULL);
     CREATE TRIGGER refuse_666 BEFORE INSERT ON t WHEN NEW.n = 666
     BEGIN SELECT RAISE(ROLLBACK, 'row 666 rolls back its transaction'); END;";

const INSERT: &str = "INSERT INTO t(n, writer) VALUES (?1, ?2)";

fn lanes(dir: &tempfile::TempDir) -> LanedPool {
    lanes_on(dir, None)
}

/// A tokio runtime with 2 workers.
fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Lanes for async callers too, on `rt`.
fn lanes_on(dir: &tempfile::TempDir, rt: Option<&tokio::runtime::Runtime>) -> LanedPool {
    let database = LibsqlDatabase::open_file(dir.path().join("group.db")).unwrap();
    let mut builder = LanedPool::builder(database).readers(2);
    if let Some(rt) = rt {
        builder = builder.runtime(Tokio::from_handle(rt.handle().clone()));
    }
    let lanes = builder.build().unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();
    lanes
}

fn rows(lanes: &LanedPool) -> Vec<i64> {
    let reader = lanes.read_blocking().unwrap();
    block_on(async {
        let mut rows = reader.query("SELECT n FROM t ORDER BY n", ()).await?;
        let mut all = Vec::new();
        while let Some(row) = rows.next().await? {
            all.push(row.get::<i64>(0)?);
        }
        Ok::<_, libsql::Error>(all)
    })
    .unwrap()
}

/// Waits (yielding) until `n` statements are queued for the next group.
fn until_queued(lanes: &LanedPool, n: usize) {
    while lanes.statistics().group_queued < n {
        std::thread::yield_now();
    }
}

/// Queues one thread's insert of each of `values` in this order while the test holds the write lane,
/// then lets the lane go: the leader takes them all as one group (up to `MAX_GROUP`). Returns each
/// insert's result.
fn one_group(lanes: &LanedPool, values: &[i64]) -> Vec<Result<u64, LibsqlError>> {
    let statements: Vec<(&str, Vec<libsql::Value>)> = values
        .iter()
        .enumerate()
        .map(|(at, &n)| (INSERT, vec![n.into(), (at as i64).into()]))
        .collect();
    one_group_of(lanes, &statements)
}

/// [`one_group`] for any statements and values.
fn one_group_of(
    lanes: &LanedPool,
    statements: &[(&str, Vec<libsql::Value>)],
) -> Vec<Result<u64, LibsqlError>> {
    let held = lanes.write_blocking().unwrap();
    std::thread::scope(|s| {
        let callers: Vec<_> = statements
            .iter()
            .enumerate()
            .map(|(at, (sql, values))| {
                let caller = s.spawn(move || lanes.execute_blocking(sql, values.clone()));
                until_queued(lanes, at + 1);
                caller
            })
            .collect();
        drop(held);
        callers.into_iter().map(|c| c.join().unwrap()).collect()
    })
}

#[test]
fn statements_queued_together_commit_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    let before = lanes.statistics();
    let values: Vec<i64> = (1..=20).collect();
    for result in one_group(&lanes, &values) {
        assert_eq!(result.unwrap(), 1);
    }
    let after = lanes.statistics();
    assert_eq!(after.grouped_statements - before.grouped_statements, 20);
    assert_eq!(after.group_commits - before.group_commits, 1, "{after:?}");
    assert_eq!(after.group_queued, 0);
    assert_eq!(rows(&lanes), values);
    assert_eq!(after.write.total_created, 1);
}

#[test]
fn a_queue_longer_than_a_group_is_committed_in_groups_of_at_most_max_group() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    let before = lanes.statistics();
    let queued = MAX_GROUP + MAX_GROUP / 2;
    let values: Vec<i64> = (1..=queued as i64).collect();
    for result in one_group(&lanes, &values) {
        assert_eq!(result.unwrap(), 1);
    }
    let after = lanes.statistics();
    // The leader runs the first MAX_GROUP (its own among them) and hands the lead to the next
    // queued caller, who runs the rest.
    assert_eq!(after.group_commits - before.group_commits, 2, "{after:?}");
    assert_eq!(
        after.grouped_statements - before.grouped_statements,
        queued as u64
    );
    assert_eq!(rows(&lanes), values);
}

#[test]
fn a_failing_statement_fails_alone_and_its_group_commits_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    lanes.execute_blocking(INSERT, (3, 0)).unwrap();
    // 3 exists already: that insert breaks the primary key, and SQLite undoes that statement only.
    let results = one_group(&lanes, &[1, 2, 3, 4]);
    assert!(results[0].is_ok() && results[1].is_ok() && results[3].is_ok());
    let error = results[2].as_ref().unwrap_err();
    assert_eq!(error.sqlite_code().map(|c| c & 0xff), Some(19), "{error}");
    assert_eq!(rows(&lanes), [1, 2, 3, 4]);
    assert_eq!(lanes.statistics().group_not_committed, 0);
}

#[test]
fn a_statement_that_rolls_back_the_transaction_reports_the_group_before_it_as_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    let results = one_group(&lanes, &[1, 2, 666, 4, 5]);
    for earlier in &results[..2] {
        let error = earlier.as_ref().unwrap_err();
        assert!(
            matches!(error, LibsqlError::NotCommitted { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("retry"), "{error}");
    }
    let own = results[2].as_ref().unwrap_err();
    assert!(own.to_string().contains("row 666"), "{own}");
    // The statements after it run in a new transaction and commit.
    assert!(results[3].is_ok() && results[4].is_ok(), "{results:?}");
    assert_eq!(rows(&lanes), [4, 5], "only acknowledged rows are stored");
    assert_eq!(lanes.statistics().group_not_committed, 2);
    // Retrying what was not committed works.
    for n in [1, 2] {
        lanes.execute_blocking(INSERT, (n, 0)).unwrap();
    }
    assert_eq!(rows(&lanes), [1, 2, 4, 5]);
}

#[test]
fn transaction_control_is_refused_before_it_reaches_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    // Behind comments or an empty statement too: SQLite skips those and would run the rest.
    for sql in [
        "BEGIN",
        "/* x */ commit",
        "SAVEPOINT s",
        "ROLLBACK",
        ";ROLLBACK",
        "/* x */;COMMIT",
        " ; begin",
    ] {
        let error = lanes.execute_blocking(sql, ()).unwrap_err();
        assert!(matches!(error, LibsqlError::Unsupported(_)), "{error:?}");
        assert!(error.to_string().contains("LanedPool::write"), "{error}");
    }
    assert_eq!(lanes.statistics().grouped_statements, 0);
    // A wrong parameter count is the caller's own error, and leaves the lane usable.
    let error = lanes.execute_blocking(INSERT, [1]).unwrap_err();
    assert!(
        matches!(error, LibsqlError::ParameterCount { .. }),
        "{error:?}"
    );
    lanes.execute_blocking(INSERT, (1, 0)).unwrap();
    assert_eq!(rows(&lanes), [1]);
}

#[test]
fn a_pragma_is_refused_so_that_it_cannot_change_the_write_lane_for_later_writers() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    for sql in [
        "PRAGMA foreign_keys=OFF",
        "/* c */ pragma synchronous = OFF",
    ] {
        let error = lanes.execute_blocking(sql, ()).unwrap_err();
        assert!(matches!(error, LibsqlError::Unsupported(_)), "{error:?}");
        assert!(error.to_string().contains("LanedPool::write"), "{error}");
    }
    let mut writer = lanes.write_blocking().unwrap();
    let on = block_on(writer.query_row_cached("PRAGMA foreign_keys", (), |r| r.get::<i64>(0)));
    assert_eq!(
        on.unwrap(),
        Some(1),
        "foreign keys stay on for the next writer"
    );
}

#[test]
fn a_deferred_foreign_key_broken_at_commit_fails_only_its_own_statement() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    block_on(lanes.write_blocking().unwrap().execute_schema(
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);
         CREATE TABLE child(id INTEGER PRIMARY KEY,
             parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);",
    ))
    .unwrap();
    let parent = "INSERT INTO parent(id) VALUES (?1)";
    let child = "INSERT INTO child(id, parent) VALUES (?1, ?2)";
    // SQLite checks the deferred key only at the group's COMMIT, which fails for all of them. In the
    // group, the last insert also failed, on the offender's row (child 1).
    let results = one_group_of(
        &lanes,
        &[
            (parent, vec![1.into()]),
            (child, vec![1.into(), 99.into()]),
            (parent, vec![2.into()]),
            (child, vec![2.into(), 1.into()]),
            (child, vec![1.into(), 2.into()]),
        ],
    );
    let error = results[1].as_ref().unwrap_err();
    assert!(error.to_string().contains("FOREIGN KEY"), "{error}");
    for own in [0, 2, 3, 4] {
        assert_eq!(results[own].as_ref().unwrap(), &1, "{results:?}");
    }
    let reader = lanes.read_blocking().unwrap();
    let count = |sql: &str| {
        block_on(async {
            let mut rows = reader.query(sql, ()).await?;
            rows.next().await?.unwrap().get::<String>(0)
        })
        .unwrap()
    };
    assert_eq!(count("SELECT group_concat(id) FROM parent"), "1,2");
    assert_eq!(
        count("SELECT group_concat(id || ':' || parent) FROM child"),
        "1:2,2:1"
    );
    assert_eq!(lanes.statistics().group_not_committed, 0);
}

#[test]
fn a_text_that_is_not_one_statement_or_returns_rows_is_refused_and_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    let two = "INSERT INTO t(n, writer) VALUES (1, 0); INSERT INTO t(n, writer) VALUES (2, 0)";
    let returning = "INSERT INTO t(n, writer) VALUES (?1, ?2) RETURNING n";
    for (sql, expected) in [
        (two, StatementProblem::SeveralStatements),
        ("  -- nothing to run\n;", StatementProblem::Empty),
    ] {
        let error = lanes.execute_blocking(sql, ()).unwrap_err();
        assert!(
            matches!(&error, LibsqlError::Statement { problem, .. } if *problem == expected),
            "{error:?}"
        );
    }
    // Alone, and inside a group whose other statements commit.
    let error = lanes.execute_blocking(returning, (3, 0)).unwrap_err();
    assert!(error.to_string().contains("query_cached"), "{error}");
    let results = one_group_of(
        &lanes,
        &[
            (INSERT, vec![4.into(), 0.into()]),
            (returning, vec![5.into(), 0.into()]),
            (INSERT, vec![6.into(), 0.into()]),
        ],
    );
    assert!(
        matches!(
            &results[1],
            Err(LibsqlError::Statement {
                problem: StatementProblem::ReturnsRows,
                ..
            })
        ),
        "{results:?}"
    );
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(rows(&lanes), [4, 6], "only what was acknowledged is stored");
}

#[test]
fn a_cancelled_caller_is_withdrawn_and_a_cancelled_leader_hands_the_lead_on() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let lanes = Arc::new(lanes_on(&dir, Some(&rt)));
    rt.block_on(async {
        let held = lanes.write().await.unwrap();
        // The first caller leads: it waits for the write lane, which the test holds.
        let mut leader = Box::pin(lanes.execute(INSERT, (1, 0)));
        assert!(futures_lite::future::poll_once(&mut leader).await.is_none());
        // The second queues behind it.
        let mut follower = Box::pin(lanes.execute(INSERT, (2, 0)));
        assert!(futures_lite::future::poll_once(&mut follower)
            .await
            .is_none());
        // A third, on a thread, queues last.
        let third = {
            let lanes = lanes.clone();
            std::thread::spawn(move || lanes.execute_blocking(INSERT, (3, 0)))
        };
        until_queued(&lanes, 3);
        // Cancel the follower (withdrawn: it never runs), then the leader (it hands the lead on).
        drop(follower);
        assert_eq!(lanes.statistics().group_queued, 2);
        drop(leader);
        assert_eq!(lanes.statistics().group_queued, 1);
        drop(held);
        assert_eq!(third.join().unwrap().unwrap(), 1);
    });
    assert_eq!(rows(&lanes), [3]);
    assert_eq!(lanes.statistics().group_queued, 0);
}

#[test]
fn a_closed_write_lane_fails_every_queued_statement() {
    let dir = tempfile::tempdir().unwrap();
    let lanes = lanes(&dir);
    let held = lanes.write_blocking().unwrap();
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..3)
            .map(|n| {
                let caller = s.spawn({
                    let lanes = &lanes;
                    move || lanes.execute_blocking(INSERT, (n, 0))
                });
                until_queued(&lanes, n as usize + 1);
                caller
            })
            .collect();
        lanes.close();
        for caller in callers {
            let error = caller.join().unwrap().unwrap_err();
            assert!(
                error.to_string().contains("closed"),
                "every queued caller learns the lane closed: {error}"
            );
        }
    });
    drop(held);
    assert_eq!(lanes.statistics().group_queued, 0);
}

/// Threads and tokio tasks write at once: every acknowledged insert is stored exactly once, nothing
/// else is, and the statements shared transactions.
#[test]
fn threads_and_tasks_writing_at_once_lose_no_acknowledged_row() {
    const THREADS: i64 = 6;
    const TASKS: i64 = 6;
    const EACH: i64 = 300;
    // Above the row that the trigger rolls back.
    const FIRST: i64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let rt = two_workers();
    let lanes = Arc::new(lanes_on(&dir, Some(&rt)));
    let before = lanes.statistics();
    let threads: Vec<_> = (0..THREADS)
        .map(|writer| {
            let lanes = lanes.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let n = FIRST + writer * EACH + i;
                    assert_eq!(lanes.execute_blocking(INSERT, (n, writer)).unwrap(), 1);
                }
            })
        })
        .collect();
    rt.block_on(async {
        let tasks: Vec<_> = (THREADS..THREADS + TASKS)
            .map(|writer| {
                let lanes = lanes.clone();
                tokio::spawn(async move {
                    for i in 0..EACH {
                        let n = FIRST + writer * EACH + i;
                        assert_eq!(lanes.execute(INSERT, (n, writer)).await.unwrap(), 1);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    for thread in threads {
        thread.join().unwrap();
    }
    let total = (THREADS + TASKS) * EACH;
    assert_eq!(rows(&lanes), (FIRST..FIRST + total).collect::<Vec<_>>());
    let after = lanes.statistics();
    let statements = after.grouped_statements - before.grouped_statements;
    let groups = after.group_commits - before.group_commits;
    assert_eq!(statements, total as u64);
    assert!(groups <= statements && groups > 0, "{after:?}");
    assert_eq!(after.group_queued, 0);
    assert_eq!(after.write.active_connections, 0);
    assert_eq!(after.write.total_created, 1, "{after:?}");
}

/// The async path on smol: tasks share groups there too (a leader gathers by yielding to whatever
/// executor runs it).
#[cfg(feature = "smol")]
#[test]
fn tasks_on_smol_share_groups() {
    const TASKS: i64 = 8;
    const EACH: i64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("smol.db")).unwrap();
    let lanes = LanedPool::builder(database)
        .runtime(memory_storage_turso::rt::Smol)
        .build()
        .unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();
    let before = lanes.statistics();
    let executor = smol::Executor::new();
    smol::block_on(executor.run(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|writer| {
                let lanes = lanes.clone();
                executor.spawn(async move {
                    for i in 0..EACH {
                        let n = 1_000 + writer * EACH + i;
                        lanes.execute(INSERT, (n, writer)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    }));
    assert_eq!(
        rows(&lanes),
        (1_000..1_000 + TASKS * EACH).collect::<Vec<_>>()
    );
    let after = lanes.statistics();
    let statements = after.grouped_statements - before.grouped_statements;
    let groups = after.group_commits - before.group_commits;
    assert_eq!(statements, (TASKS * EACH) as u64);
    // On one executor thread, a leader's yield runs the other tasks, which queue behind it.
    assert!(
        groups < statements,
        "{groups} groups for {statements} statements"
    );
}

/// Tasks that give up at random points of their calls (after 1 to 4 polls) beside threads that never
/// do: no caller is left without a leader (the test ends), every acknowledged insert is stored, and
/// nothing is stored that was not sent.
#[test]
fn callers_cancelled_at_random_points_leave_no_queue_without_a_leader() {
    const TASKS: i64 = 8;
    const THREADS: i64 = 2;
    const EACH: i64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let rt = two_workers();
    let lanes = Arc::new(lanes_on(&dir, Some(&rt)));
    let threads: Vec<_> = (0..THREADS)
        .map(|writer| {
            let lanes = lanes.clone();
            std::thread::spawn(move || {
                let each = (0..EACH).map(|i| 1_000 + writer * EACH + i);
                each.inspect(|&n| {
                    assert_eq!(lanes.execute_blocking(INSERT, (n, writer)).unwrap(), 1)
                })
                .collect::<Vec<i64>>()
            })
        })
        .collect();
    let (acknowledged_by_tasks, cancelled) = rt.block_on(async {
        let tasks: Vec<_> = (THREADS..THREADS + TASKS)
            .map(|writer| {
                let lanes = lanes.clone();
                tokio::spawn(async move {
                    let (mut acknowledged, mut cancelled) = (Vec::new(), 0);
                    for i in 0..EACH {
                        let n = 1_000 + writer * EACH + i;
                        let mut call = Box::pin(lanes.execute(INSERT, (n, writer)));
                        let mut result = None;
                        for _ in 0..fastrand::u32(1..5) {
                            result = futures_lite::future::poll_once(&mut call).await;
                            if result.is_some() {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                        drop(call);
                        match result {
                            Some(result) => {
                                assert_eq!(result.unwrap(), 1);
                                acknowledged.push(n);
                            }
                            None => cancelled += 1,
                        }
                    }
                    (acknowledged, cancelled)
                })
            })
            .collect();
        let (mut all, mut cancelled) = (Vec::new(), 0);
        for task in tasks {
            let (acknowledged, gave_up) = task.await.unwrap();
            all.extend(acknowledged);
            cancelled += gave_up;
        }
        (all, cancelled)
    });
    // A call's first poll never completes (a leader yields once, a follower waits), so every call
    // polled once is cancelled: about a quarter of the tasks' calls.
    assert!(cancelled > 0);
    let mut acknowledged = acknowledged_by_tasks;
    for thread in threads {
        acknowledged.extend(thread.join().unwrap());
    }
    acknowledged.sort_unstable();
    let stored = rows(&lanes);
    // Every acknowledged insert is stored; the others were withdrawn, or committed unanswered.
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|n| stored.binary_search(n).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    let sent = 1_000..1_000 + (THREADS + TASKS) * EACH;
    assert!(stored.iter().all(|n| sent.contains(n)));
    assert!(stored.len() <= acknowledged.len() + cancelled);
    let statistics = lanes.statistics();
    assert_eq!(statistics.group_queued, 0, "{statistics:?}");
    assert_eq!(statistics.write.active_connections, 0, "{statistics:?}");
}

/// In memory (SQLite's `memdb`, shared by the lanes' connections) the group commit works the same.
#[test]
fn threads_share_groups_on_an_in_memory_database() {
    let lanes = LanedPool::builder(LibsqlDatabase::open_memory().unwrap())
        .readers(1)
        .build()
        .unwrap();
    block_on(lanes.write_blocking().unwrap().execute_schema(SCHEMA)).unwrap();
    std::thread::scope(|s| {
        for writer in 0..4_i64 {
            let lanes = &lanes;
            s.spawn(move || {
                for i in 0..100 {
                    let n = 1_000 + writer * 100 + i;
                    assert_eq!(lanes.execute_blocking(INSERT, (n, writer)).unwrap(), 1);
                }
            });
        }
    });
    assert_eq!(rows(&lanes), (1_000..1_400).collect::<Vec<_>>());
    assert_eq!(lanes.statistics().grouped_statements, 400);
}
