//! The storage on a remote libSQL server or Turso database: runs when `LIBSQL_TEST_URL` (and, if the
//! server needs one, `LIBSQL_TEST_TOKEN`) is set, and prints a skip notice otherwise.
//!
//! The server may be shared and keep data between runs, so every check is about records of this run
//! (fresh ids, a domain of its own), never about absolute counts.
#![cfg(all(feature = "remote", feature = "tokio"))]

mod storage_support;
mod strategies;

use memory_storage_turso::storage::{
    EpisodeQuery, PatternQuery, ResilientStorage, TaskType, TursoStorage,
};
use storage_support::*;

/// The server's URL and token, or `None` (with a notice) when the suite is to be skipped.
fn server() -> Option<(String, String)> {
    match std::env::var("LIBSQL_TEST_URL") {
        Ok(url) if !url.is_empty() => Some((
            url,
            // A local server without authentication ignores the token, but it may not be blank.
            std::env::var("LIBSQL_TEST_TOKEN").unwrap_or_else(|_| String::from("unused")),
        )),
        _ => {
            eprintln!(
                "skipped: set LIBSQL_TEST_URL (and LIBSQL_TEST_TOKEN) to run the remote storage suite"
            );
            None
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A domain no other run uses.
fn run_domain() -> String {
    format!("remote-run-{}", uuid::Uuid::new_v4())
}

async fn remote_storage(url: &str, token: &str) -> TursoStorage {
    let storage = TursoStorage::new(url, token).await.unwrap();
    assert!(!storage.is_local());
    assert!(storage.lane_statistics().is_none());
    storage.initialize_schema().await.unwrap();
    storage.initialize_schema().await.unwrap();
    storage
}

#[test]
fn remote_round_trips_queries_and_deletes() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let storage = remote_storage(&url, &token).await;
        assert!(storage.health_check().await.unwrap());
        let domain = run_domain();

        let episodes: Vec<_> = (0..4)
            .map(|i| full_episode(i, TaskType::Testing, context(&domain, Some("rust"))))
            .collect();
        storage.store_episode(&episodes[0]).await.unwrap();
        storage.store_episodes(&episodes[1..]).await.unwrap();
        for episode in &episodes {
            assert_eq!(
                storage
                    .get_episode(episode.episode_id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(episode)
            );
        }
        let query = EpisodeQuery {
            domain: Some(domain.clone()),
            limit: Some(2),
            ..EpisodeQuery::default()
        };
        let newest = storage.query_episodes(&query).await.unwrap();
        assert_eq!(newest, [episodes[3].clone(), episodes[2].clone()]);

        storage
            .delete_episode(episodes[0].episode_id)
            .await
            .unwrap();
        storage
            .delete_episode(episodes[0].episode_id)
            .await
            .unwrap();
        assert_eq!(
            storage.get_episode(episodes[0].episode_id).await.unwrap(),
            None
        );

        let pattern = tool_sequence(context(&domain, Some("rust")), 0.8);
        storage.store_pattern(&pattern).await.unwrap();
        assert_eq!(
            storage.get_pattern(pattern.id()).await.unwrap(),
            Some(pattern.clone())
        );
        let patterns = storage
            .query_patterns(&PatternQuery {
                domain: Some(domain.clone()),
                ..PatternQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(patterns, [pattern]);

        let rule = heuristic(0.625);
        storage.store_heuristic(&rule).await.unwrap();
        assert_eq!(
            storage.get_heuristic(rule.heuristic_id).await.unwrap(),
            Some(rule.clone())
        );
        assert!(storage.get_heuristics(0.6).await.unwrap().contains(&rule));

        let counts = storage.get_statistics().await.unwrap();
        assert!(counts.episode_count >= 3 && counts.pattern_count >= 1);
    });
}

#[test]
fn remote_injection_payloads_come_back_verbatim() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let storage = remote_storage(&url, &token).await;
        for payload in strategies::INJECTION_PAYLOADS {
            let mut episode = full_episode(0, TaskType::Debugging, context(payload, Some(payload)));
            episode.task_description = payload.to_owned();
            episode.steps[0].tool = payload.to_owned();
            storage.store_episode(&episode).await.unwrap();
            assert_eq!(
                storage.get_episode(episode.episode_id).await.unwrap(),
                Some(episode)
            );
        }
        let everything = storage
            .query_episodes(&EpisodeQuery::default())
            .await
            .unwrap();
        assert!(everything.iter().all(|e| e.task_description != "hacked"));
    });
}

#[test]
fn remote_concurrent_tasks_through_the_resilient_storage() {
    let Some((url, token)) = server() else { return };
    runtime().block_on(async {
        let storage = ResilientStorage::new(remote_storage(&url, &token).await);
        let domain = run_domain();
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let (storage, domain) = (storage.clone(), domain.clone());
                tokio::spawn(async move {
                    let episode = full_episode(task, TaskType::Analysis, context(&domain, None));
                    storage.store_episode(&episode).await?;
                    let read = storage.get_episode(episode.episode_id).await?;
                    assert_eq!(read, Some(episode));
                    Ok::<_, memory_storage_turso::storage::StorageError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mine = storage
            .query_episodes(&EpisodeQuery {
                domain: Some(domain),
                ..EpisodeQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.len(), 16);
        assert!(storage.health_check().await.unwrap());
        assert_eq!(storage.breaker_statistics().failed_calls, 0);
    });
}

/// Runs with no server: a remote URL nobody listens on fails with a transient network error.
#[test]
fn an_unreachable_server_is_a_transient_network_error() {
    runtime().block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let storage = TursoStorage::new(&format!("http://127.0.0.1:{port}"), "token")
            .await
            .unwrap();
        let error = storage.health_check().await.unwrap_err();
        assert!(
            matches!(
                error,
                memory_storage_turso::storage::StorageError::Database {
                    kind: memory_storage_turso::storage::DatabaseErrorKind::Network,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_transient());
    });
}
