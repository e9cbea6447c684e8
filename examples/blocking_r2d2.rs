//! A blocking app with r2d2 on a temporary local file: 8 threads insert and read through
//! `r2d2::Pool<LibsqlConnectionManager>`, then the pool state is printed.
//!
//! Run with `cargo run --example blocking_r2d2 --features r2d2`.

use std::time::Instant;

use memory_storage_turso::libsql::r2d2::LibsqlConnectionManager;
use memory_storage_turso::libsql::{block_on, LibsqlDatabase, LibsqlError};

const THREADS: i64 = 8;
const OPERATIONS: i64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let database = LibsqlDatabase::open_file(dir.path().join("metrics.db"))?;
    let manager = LibsqlConnectionManager::new(database)?;
    let pool = r2d2::Pool::builder().max_size(4).build(manager)?;

    block_on(pool.get()?.execute_schema(
        "CREATE TABLE metrics(id INTEGER PRIMARY KEY, thread INTEGER, value REAL)",
    ))?;

    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let pool = &pool;
                s.spawn(
                    move || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                        for i in 0..OPERATIONS {
                            let mut conn = pool.get()?;
                            block_on(async {
                                if i % 2 == 0 {
                                    conn.execute_cached(
                                        "INSERT INTO metrics(thread, value) VALUES (?1, ?2)",
                                        (thread, i as f64 * 0.5),
                                    )
                                    .await?;
                                } else {
                                    conn.query_row_cached(
                                        "SELECT avg(value) FROM metrics WHERE thread = ?1",
                                        [thread],
                                        |row| row.get::<f64>(0),
                                    )
                                    .await?;
                                }
                                Ok::<_, LibsqlError>(())
                            })?;
                        }
                        Ok(())
                    },
                )
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .expect("a worker panicked")
                .map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    })?;
    let elapsed = started.elapsed();

    let conn = pool.get()?;
    let rows = block_on(async {
        let mut rows = conn.query("SELECT count(*) FROM metrics", ()).await?;
        rows.next().await?.expect("a row").get::<i64>(0)
    })?;
    println!(
        "{} operations from {THREADS} threads in {elapsed:?}; {rows} rows",
        THREADS * OPERATIONS
    );
    println!("{:?}", pool.state());
    Ok(())
}
