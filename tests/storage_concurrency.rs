//! 64 tasks mixing reads and writes on one local file, on tokio, on smol, and from 64 blocking
//! threads: no errors, and every row present at the end.
#![cfg(feature = "libsql")]

mod storage_support;

use futures_lite::future::block_on;
use memory_storage_turso::rt::{Blocking, Runtime};
use memory_storage_turso::storage::{Episode, EpisodeQuery, StorageError, TaskType, TursoStorage};
use storage_support::*;
use uuid::Uuid;

const TASKS: usize = 64;
const ROUNDS: usize = 6;
/// Per round: one episode alone, two in a batch.
const EPISODES_PER_TASK: usize = ROUNDS * 3;

/// One task's work: stores episodes (alone and in batches), reads each back, queries its own domain
/// and the statistics. Returns the ids it stored.
async fn workload<R: Runtime>(
    storage: TursoStorage<R>,
    task: usize,
) -> Result<Vec<Uuid>, StorageError> {
    let domain = format!("task-{task}");
    let mut stored = Vec::new();
    for round in 0..ROUNDS {
        let offset = (task * 1000 + round * 10) as i64;
        let single = full_episode(offset, TaskType::Testing, context(&domain, Some("rust")));
        storage.store_episode(&single).await?;
        let batch: Vec<Episode> = (1..3)
            .map(|i| full_episode(offset + i, TaskType::Analysis, context(&domain, None)))
            .collect();
        storage.store_episodes(&batch).await?;

        for episode in std::iter::once(&single).chain(&batch) {
            let read = storage.get_episode(episode.episode_id).await?;
            assert_eq!(read.as_ref(), Some(episode));
            stored.push(episode.episode_id);
        }
        let mine = storage
            .query_episodes(&EpisodeQuery {
                domain: Some(domain.clone()),
                ..EpisodeQuery::default()
            })
            .await?;
        assert_eq!(mine.len(), stored.len(), "a task sees all its own writes");
        let counts = storage.get_statistics().await?;
        assert!(counts.episode_count >= stored.len());
    }
    Ok(stored)
}

/// Every task succeeded and every episode is there.
fn verify<R: Runtime>(storage: &TursoStorage<R>, results: Vec<Result<Vec<Uuid>, StorageError>>) {
    let errors: Vec<&StorageError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{} errors: {errors:?}", errors.len());
    let ids: Vec<Uuid> = results.into_iter().flat_map(Result::unwrap).collect();
    assert_eq!(ids.len(), TASKS * EPISODES_PER_TASK);
    block_on(async {
        let counts = storage.get_statistics().await.unwrap();
        assert_eq!(counts.episode_count, TASKS * EPISODES_PER_TASK);
        for id in ids {
            assert!(
                storage.get_episode(id).await.unwrap().is_some(),
                "{id} is missing"
            );
        }
    });
    let stats = block_on(storage.pool_statistics()).unwrap();
    assert_eq!(stats.active_connections, 0, "every connection went back");
    assert_eq!(stats.timeouts, 0);
    let lanes = storage.lane_statistics().unwrap();
    assert_eq!(
        lanes.write.total_created, 1,
        "one writer connection served every write"
    );
}

#[cfg(feature = "tokio")]
#[test]
fn sixty_four_tokio_tasks() {
    let db = TempDb::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let storage = TursoStorage::new(&db.url, "").await.unwrap();
        storage.initialize_schema().await.unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| tokio::spawn(workload(storage.clone(), task)))
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        tokio::task::block_in_place(|| verify(&storage, results));
    });
}

#[cfg(feature = "smol")]
#[test]
fn sixty_four_smol_tasks() {
    use memory_storage_turso::rt::Smol;

    let db = TempDb::new();
    let storage = smol::block_on(async {
        let storage = TursoStorage::builder(&db.url, "")
            .runtime(Smol)
            .build()
            .await
            .unwrap();
        storage.initialize_schema().await.unwrap();
        storage
    });
    let executor = smol::Executor::new();
    let results = std::thread::scope(|scope| {
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        // A second thread runs the executor too, so tasks really run in parallel.
        let executor = &executor;
        scope.spawn(move || smol::block_on(executor.run(stopped.recv())));
        let results = smol::block_on(executor.run(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| executor.spawn(workload(storage.clone(), task)))
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await);
            }
            results
        }));
        drop(stop);
        results
    });
    verify(&storage, results);
}

#[test]
fn sixty_four_blocking_threads() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..TASKS)
            .map(|task| {
                let storage: TursoStorage<Blocking> = storage.clone();
                scope.spawn(move || block_on(workload(storage, task)))
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    });
    verify(&storage, results);
}
