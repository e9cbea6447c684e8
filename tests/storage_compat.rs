//! Code written against the older crate's API, unchanged but for the domain types' import path: it
//! compiles and behaves as before (on tokio, as the older crate required).
#![cfg(all(feature = "libsql", feature = "tokio"))]

use std::sync::Arc;
use std::time::Duration;

use memory_storage_turso::storage::{Episode, TaskContext, TaskType};
use memory_storage_turso::{ConnectionPool, EpisodeQuery, PoolConfig, TursoConfig, TursoStorage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_storage_code_runs_unchanged() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("file:{}", dir.path().join("memory.db").display());
    let pool_config = PoolConfig {
        max_connections: 20,
        connection_timeout: Duration::from_secs(10),
        enable_health_check: true,
        health_check_timeout: Duration::from_secs(2),
        ..PoolConfig::default()
    };
    let storage =
        TursoStorage::new_with_pool_config(&url, "", TursoConfig::default(), pool_config).await?;
    storage.initialize_schema().await?;
    assert!(storage.health_check().await?);

    let episode = Episode::new(
        "refactor the parser".into(),
        TaskContext::default(),
        TaskType::Refactoring,
    );
    storage.store_episode(&episode).await?;
    assert_eq!(
        storage.get_episode(episode.episode_id).await?,
        Some(episode.clone())
    );
    let query = EpisodeQuery {
        task_type: Some(TaskType::Refactoring),
        limit: Some(10),
        ..Default::default()
    };
    assert_eq!(storage.query_episodes(&query).await?.len(), 1);
    assert_eq!(storage.get_statistics().await?.episode_count, 1);

    let stats = storage.pool_statistics().await.expect("pooled");
    assert!(stats.total_created >= 1);
    assert!(stats.total_checkouts >= 4);
    assert_eq!(storage.pool_utilization().await, Some(0.0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_pool_code_runs_unchanged() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = libsql::Builder::new_local(dir.path().join("pool.db"))
        .build()
        .await?;
    let pool = ConnectionPool::new(Arc::new(db), PoolConfig::default()).await?;
    let conn = pool.get().await?;
    conn.connection().unwrap().query("SELECT 1", ()).await?;
    drop(conn);
    let stats = pool.statistics().await;
    assert_eq!(
        stats.total_created, 1,
        "the connection is reused, not opened per checkout"
    );
    assert_eq!(stats.active_connections, 0);
    assert!(pool.has_capacity().await);
    assert_eq!(pool.available_connections().await, 10);
    assert_eq!(pool.utilization().await, 0.0);
    pool.shutdown().await?;
    Ok(())
}
