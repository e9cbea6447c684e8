//! A tokio service on a temporary local file: 32 tasks write through the write lane and read through
//! the read lane, then the pool statistics are printed.
//!
//! Run with `cargo run --example tokio --features tokio`.

use std::time::Instant;

use memory_storage_turso::libsql::{offload, LanedPool, LibsqlDatabase, LibsqlError};
use memory_storage_turso::rt::Tokio;

const TASKS: i64 = 32;
const OPERATIONS: i64 = 500;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), LibsqlError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = LibsqlDatabase::open_file(dir.path().join("episodes.db"))?;
    let lanes = LanedPool::builder(database)
        .readers(4)
        .runtime(Tokio::current())
        .build()?;

    lanes
        .write()
        .await?
        .execute_schema(
            "CREATE TABLE episodes(id INTEGER PRIMARY KEY, task INTEGER NOT NULL, body TEXT NOT NULL);
             CREATE INDEX episodes_by_task ON episodes(task);",
        )
        .await?;

    let started = Instant::now();
    let workers: Vec<_> = (0..TASKS)
        .map(|task| {
            let lanes = lanes.clone();
            tokio::spawn(async move {
                for i in 0..OPERATIONS {
                    if i % 5 == 0 {
                        // One write in five: a short IMMEDIATE transaction on the write lane.
                        let mut writer = lanes.write().await?;
                        let tx = writer.transaction().await?;
                        tx.execute(
                            "INSERT INTO episodes(task, body) VALUES (?1, ?2)",
                            (task, format!("episode {i} of task {task}")),
                        )
                        .await?;
                        tx.commit().await?;
                    } else {
                        // Point reads by task through the statement cache on the read lane.
                        let mut reader = lanes.read().await?;
                        reader
                            .query_row_cached(
                                "SELECT count(*) FROM episodes WHERE task = ?1",
                                [task],
                                |row| row.get::<i64>(0),
                            )
                            .await?;
                    }
                }
                Ok::<_, LibsqlError>(())
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("a worker panicked")?;
    }
    let elapsed = started.elapsed();

    // A heavy report runs on tokio's blocking pool, so it does not stall the workers' threads.
    let reader = lanes.read().await?;
    let total = offload(&Tokio::current(), reader, |conn| {
        memory_storage_turso::libsql::block_on(conn.query_row_cached(
            "SELECT count(*) FROM episodes",
            (),
            |row| row.get::<i64>(0),
        ))
    })
    .await?;

    let stats = lanes.statistics();
    println!(
        "{} operations from {TASKS} tasks in {elapsed:?}; {} episodes stored",
        TASKS * OPERATIONS,
        total.unwrap_or_default()
    );
    println!("write lane: {:#?}", stats.write);
    println!("read lane: {:#?}", stats.read);
    Ok(())
}
