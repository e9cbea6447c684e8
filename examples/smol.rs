//! A smol app on a temporary local file: 16 tasks share one pool of 4 connections for a mixed
//! workload, then the pool statistics are printed.
//!
//! Run with `cargo run --example smol --features smol`.

use std::time::Instant;

use memory_storage_turso::libsql::{LibsqlDatabase, LibsqlError, LibsqlManager};
use memory_storage_turso::pool::{Pool, PoolConfig};
use memory_storage_turso::rt::Smol;

const TASKS: i64 = 16;
const OPERATIONS: i64 = 500;

fn main() -> Result<(), LibsqlError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = LibsqlDatabase::open_file(dir.path().join("notes.db"))?;
    let config = PoolConfig::builder().max_connections(4).build()?;
    let pool = Pool::builder(LibsqlManager::new(database))
        .config(config)
        .runtime(Smol)
        .build()?;

    smol::block_on(async {
        pool.get()
            .await?
            .execute_schema("CREATE TABLE notes(id INTEGER PRIMARY KEY, author INTEGER, body TEXT)")
            .await?;

        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|author| {
                let pool = pool.clone();
                smol::spawn(async move {
                    for i in 0..OPERATIONS {
                        let mut conn = pool.get().await?;
                        if i % 4 == 0 {
                            conn.execute_cached(
                                "INSERT INTO notes(author, body) VALUES (?1, ?2)",
                                (author, format!("note {i}")),
                            )
                            .await?;
                        } else {
                            let mut rows = conn
                                .query_cached(
                                    "SELECT body FROM notes WHERE author = ?1 ORDER BY id DESC LIMIT 3",
                                    [author],
                                )
                                .await?;
                            while let Some(row) = rows.next().await? {
                                let _body: String = row.get(0)?;
                            }
                        }
                        drop(conn);
                        smol::future::yield_now().await;
                    }
                    Ok::<_, LibsqlError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed();

        let mut conn = pool.get().await?;
        let notes = conn
            .query_row_cached("SELECT count(*) FROM notes", (), |row| row.get::<i64>(0))
            .await?;
        println!(
            "{} operations from {TASKS} tasks in {elapsed:?}; {} notes; statement cache of one \
             connection: {:?}",
            TASKS * OPERATIONS,
            notes.unwrap_or_default(),
            conn.statement_cache_stats()
        );
        Ok::<_, LibsqlError>(())
    })?;

    println!("{:#?}", pool.statistics());
    Ok(())
}
