//! `TursoStorage` itself: construction from URLs and databases, exact round trips, duplicate ids,
//! deletes, statistics, health, and the schema initialized twice and from 4 storages at once.
#![cfg(feature = "libsql")]

mod storage_support;

use std::sync::{Arc, Barrier};

use futures_lite::future::block_on;
use memory_storage_turso::libsql::{block_on as libsql_block_on, OwnedConnection};
use memory_storage_turso::pool::PoolConfig;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::schema::{READ_USER_VERSION, SCHEMA_VERSION};
use memory_storage_turso::storage::{
    DatabaseErrorKind, Episode, EpisodeQuery, SecurityError, StorageError, StorageStatistics,
    TaskType, TursoConfig, TursoStorage, TursoStorageBuilder,
};
use storage_support::*;
use uuid::Uuid;

fn user_version(path: &std::path::Path) -> u32 {
    libsql_block_on(async {
        let db = libsql::Builder::new_local(path).build().await.unwrap();
        let conn = OwnedConnection::local(db.connect().unwrap()).unwrap();
        let mut rows = conn.query(READ_USER_VERSION, ()).await.unwrap();
        let row = rows.next().await.unwrap().unwrap();
        row.get::<u32>(0).unwrap()
    })
}

#[test]
fn every_record_kind_makes_an_exact_round_trip() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    block_on(async {
        let episode = full_episode(0, TaskType::Debugging, context("web", Some("rust")));
        let pattern = tool_sequence(context("web", Some("rust")), 0.9);
        let heuristic = heuristic(0.7);
        storage.store_episode(&episode).await.unwrap();
        storage.store_pattern(&pattern).await.unwrap();
        storage.store_heuristic(&heuristic).await.unwrap();

        assert_eq!(
            storage.get_episode(episode.episode_id).await.unwrap(),
            Some(episode)
        );
        assert_eq!(
            storage.get_pattern(pattern.id()).await.unwrap(),
            Some(pattern)
        );
        assert_eq!(
            storage.get_heuristic(heuristic.heuristic_id).await.unwrap(),
            Some(heuristic)
        );
        assert_eq!(
            storage.get_statistics().await.unwrap(),
            StorageStatistics {
                episode_count: 1,
                pattern_count: 1,
                heuristic_count: 1
            }
        );
    });
}

#[test]
fn missing_ids_read_as_none() {
    let storage = blocking_storage(":memory:");
    block_on(async {
        assert_eq!(storage.get_episode(Uuid::new_v4()).await.unwrap(), None);
        assert_eq!(storage.get_pattern(Uuid::new_v4()).await.unwrap(), None);
        assert_eq!(storage.get_heuristic(Uuid::new_v4()).await.unwrap(), None);
    });
}

#[test]
fn storing_an_id_again_replaces_the_record() {
    let storage = blocking_storage(":memory:");
    block_on(async {
        let mut episode = full_episode(0, TaskType::Testing, context("web", None));
        storage.store_episode(&episode).await.unwrap();
        episode.task_description = String::from("changed");
        episode.context.domain = String::from("cli");
        episode.end_time = None;
        storage.store_episode(&episode).await.unwrap();
        assert_eq!(
            storage.get_episode(episode.episode_id).await.unwrap(),
            Some(episode.clone())
        );
        // The filter columns follow the replacement too.
        let by_domain = |domain: &str| EpisodeQuery {
            domain: Some(domain.into()),
            ..EpisodeQuery::default()
        };
        assert!(storage
            .query_episodes(&by_domain("web"))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            storage.query_episodes(&by_domain("cli")).await.unwrap(),
            [episode]
        );

        let mut pattern = tool_sequence(context("web", None), 0.2);
        storage.store_pattern(&pattern).await.unwrap();
        if let memory_storage_turso::storage::Pattern::ToolSequence { success_rate, .. } =
            &mut pattern
        {
            *success_rate = 0.8;
        }
        storage.store_pattern(&pattern).await.unwrap();
        assert_eq!(
            storage.get_pattern(pattern.id()).await.unwrap(),
            Some(pattern)
        );

        let mut heuristic = heuristic(0.1);
        storage.store_heuristic(&heuristic).await.unwrap();
        heuristic.confidence = 0.95;
        heuristic.updated_at = time(99);
        storage.store_heuristic(&heuristic).await.unwrap();
        assert_eq!(
            storage.get_heuristic(heuristic.heuristic_id).await.unwrap(),
            Some(heuristic)
        );

        let counts = storage.get_statistics().await.unwrap();
        assert_eq!(
            (
                counts.episode_count,
                counts.pattern_count,
                counts.heuristic_count
            ),
            (1, 1, 1)
        );
    });
}

#[test]
fn a_batch_is_stored_whole_and_duplicates_keep_the_last() {
    let storage = blocking_storage(":memory:");
    block_on(async {
        let episodes: Vec<Episode> = (0..10)
            .map(|i| full_episode(i, TaskType::Analysis, context("data", None)))
            .collect();
        let mut again = episodes[3].clone();
        again.task_description = String::from("second copy wins");
        let mut batch = episodes.clone();
        batch.push(again.clone());
        storage.store_episodes(&batch).await.unwrap();
        assert_eq!(storage.get_statistics().await.unwrap().episode_count, 10);
        assert_eq!(
            storage.get_episode(again.episode_id).await.unwrap(),
            Some(again)
        );
        for episode in &episodes[4..] {
            assert_eq!(
                storage
                    .get_episode(episode.episode_id)
                    .await
                    .unwrap()
                    .as_ref(),
                Some(episode)
            );
        }
        storage.store_episodes(&[]).await.unwrap();
    });
}

#[test]
fn a_failing_batch_stores_nothing() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    // A trigger that refuses one description makes the 3rd insert of the batch fail.
    libsql_block_on(async {
        let raw = libsql::Builder::new_local(db.path()).build().await.unwrap();
        OwnedConnection::local(raw.connect().unwrap())
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON episodes \
                 WHEN NEW.task_description = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .await
            .unwrap();
    });
    block_on(async {
        let mut batch: Vec<Episode> = (0..5)
            .map(|i| full_episode(i, TaskType::Other, context("x", None)))
            .collect();
        batch[2].task_description = String::from("refused");
        let error = storage.store_episodes(&batch).await.unwrap_err();
        assert!(
            matches!(
                error,
                StorageError::Database {
                    kind: DatabaseErrorKind::Constraint,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(storage.get_statistics().await.unwrap().episode_count, 0);
        // The write lane is clean afterwards.
        storage.store_episode(&batch[0]).await.unwrap();
        assert_eq!(storage.get_statistics().await.unwrap().episode_count, 1);
    });
}

#[test]
fn a_big_batch_runs_on_the_blocking_pool_and_is_stored() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    let size = TursoStorage::<Blocking>::OFFLOAD_BATCH_SIZE * 2;
    block_on(async {
        let batch: Vec<Episode> = (0..size as i64)
            .map(|i| full_episode(i, TaskType::Other, context("x", None)))
            .collect();
        storage.store_episodes(&batch).await.unwrap();
        assert_eq!(storage.get_statistics().await.unwrap().episode_count, size);
        let newest = storage
            .query_episodes(&EpisodeQuery {
                limit: Some(1),
                ..EpisodeQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(newest, [batch[size - 1].clone()]);
    });
}

#[test]
fn deleting_removes_the_episode_and_a_missing_id_is_not_an_error() {
    let storage = blocking_storage(":memory:");
    block_on(async {
        let kept = full_episode(0, TaskType::Other, context("x", None));
        let deleted = full_episode(1, TaskType::Other, context("x", None));
        storage
            .store_episodes(&[kept.clone(), deleted.clone()])
            .await
            .unwrap();
        storage.delete_episode(deleted.episode_id).await.unwrap();
        assert_eq!(storage.get_episode(deleted.episode_id).await.unwrap(), None);
        assert_eq!(
            storage.get_episode(kept.episode_id).await.unwrap(),
            Some(kept)
        );
        // Deleting it again, or an id never stored, succeeds and changes nothing.
        storage.delete_episode(deleted.episode_id).await.unwrap();
        storage.delete_episode(Uuid::new_v4()).await.unwrap();
        assert_eq!(storage.get_statistics().await.unwrap().episode_count, 1);
    });
}

#[test]
fn scores_that_are_not_finite_are_refused_before_anything_is_written() {
    let storage = blocking_storage(":memory:");
    block_on(async {
        let good = full_episode(0, TaskType::Other, context("x", None));
        storage.store_episode(&good).await.unwrap();
        let mut nan = full_episode(1, TaskType::Other, context("x", None));
        nan.reward.as_mut().unwrap().total = f32::NAN;
        let error = storage.store_episode(&nan).await.unwrap_err();
        assert!(
            matches!(
                error,
                StorageError::InvalidValue {
                    field: "episode reward total",
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("NaN is not a finite number"),
            "{error}"
        );
        // In a batch, the bad episode keeps the good ones out too.
        let other = full_episode(2, TaskType::Other, context("x", None));
        assert!(storage.store_episodes(&[other, nan]).await.is_err());
        let mut infinite = heuristic(f32::INFINITY);
        assert!(matches!(
            storage.store_heuristic(&infinite).await,
            Err(StorageError::InvalidValue {
                field: "heuristic confidence",
                ..
            })
        ));
        infinite.confidence = 0.5;
        infinite.evidence.success_rate = f32::NEG_INFINITY;
        assert!(storage.store_heuristic(&infinite).await.is_err());
        assert!(storage
            .store_pattern(&tool_sequence(context("x", None), f32::NAN))
            .await
            .is_err());
        assert!(storage.get_heuristics(f32::NAN).await.is_err());
        // Every query still reads what is stored: nothing unreadable got in.
        assert_eq!(
            storage
                .query_episodes(&EpisodeQuery::default())
                .await
                .unwrap(),
            vec![good]
        );
        assert_eq!(
            storage.get_statistics().await.unwrap(),
            StorageStatistics {
                episode_count: 1,
                pattern_count: 0,
                heuristic_count: 0
            }
        );
    });
}

#[test]
fn text_with_nul_characters_comes_back_whole() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    block_on(async {
        let mut episode = full_episode(0, TaskType::Other, context("a\0b", Some("\0")));
        episode.task_description = "before\0after\0".into();
        storage.store_episode(&episode).await.unwrap();
        let read = storage.get_episode(episode.episode_id).await.unwrap();
        assert_eq!(read.as_ref(), Some(&episode));
        let query = EpisodeQuery {
            domain: Some("a\0b".into()),
            ..EpisodeQuery::default()
        };
        assert_eq!(storage.query_episodes(&query).await.unwrap(), vec![episode]);
        let mut rule = heuristic(0.5);
        rule.condition = "\0".into();
        rule.action = "run\0this".into();
        storage.store_heuristic(&rule).await.unwrap();
        assert_eq!(
            storage.get_heuristic(rule.heuristic_id).await.unwrap(),
            Some(rule.clone())
        );
        assert_eq!(storage.get_heuristics(0.0).await.unwrap(), vec![rule]);
    });
}

#[test]
fn a_file_in_a_missing_directory_is_an_open_error_not_a_network_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no such directory").join("memory.db");
    let error = block_on(
        TursoStorage::builder(&format!("file:{}", path.display()), "")
            .runtime(Blocking)
            .build(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Database {
                kind: DatabaseErrorKind::Other,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        !error.is_transient(),
        "retrying cannot create the directory"
    );
    let message = error.to_string();
    assert!(
        message.contains("could not open the database file"),
        "{message}"
    );
    assert!(message.contains("no such directory"), "{message}");
    assert!(
        message.contains("check that its directory exists"),
        "{message}"
    );
}

#[test]
fn health_and_pool_statistics() {
    let db = TempDb::new();
    let config = PoolConfig::builder().max_connections(5).build().unwrap();
    let storage = block_on(
        TursoStorage::builder(&db.url, "")
            .pool_config(config)
            .runtime(Blocking)
            .build(),
    )
    .unwrap();
    assert!(storage.is_local());
    assert!(block_on(storage.health_check()).unwrap());
    let lanes = storage.lane_statistics().unwrap();
    assert_eq!((lanes.write.max_size, lanes.read.max_size), (1, 4));
    let stats = block_on(storage.pool_statistics()).unwrap();
    assert_eq!(stats.max_size, 5);
    assert_eq!(stats.total_checkouts, 1, "the health check read once");
    assert_eq!(block_on(storage.pool_utilization()), Some(0.0));
    // A clone shares the pools.
    assert!(block_on(storage.clone().health_check()).unwrap());
    assert_eq!(
        block_on(storage.pool_statistics()).unwrap().total_checkouts,
        2
    );
}

#[test]
fn without_pooling_each_lane_has_one_connection() {
    let config = TursoConfig {
        enable_pooling: false,
        ..TursoConfig::default()
    };
    let storage = block_on(
        TursoStorage::builder(":memory:", "")
            .config(config)
            .runtime(Blocking)
            .build(),
    )
    .unwrap();
    let lanes = storage.lane_statistics().unwrap();
    assert_eq!((lanes.write.max_size, lanes.read.max_size), (1, 1));
    block_on(storage.initialize_schema()).unwrap();
    for _ in 0..5 {
        assert!(block_on(storage.health_check()).unwrap());
    }
    let lanes = storage.lane_statistics().unwrap();
    assert_eq!(lanes.read.total_created, 1, "the connection is reused");
}

#[test]
fn initialize_schema_twice_is_harmless() {
    let db = TempDb::new();
    let storage = blocking_storage(&db.url);
    let episode = full_episode(0, TaskType::Other, context("x", None));
    block_on(storage.store_episode(&episode)).unwrap();
    block_on(storage.initialize_schema()).unwrap();
    assert_eq!(
        block_on(storage.get_episode(episode.episode_id)).unwrap(),
        Some(episode)
    );
    assert_eq!(user_version(&db.path()), SCHEMA_VERSION);
}

#[test]
fn four_storages_initialize_one_file_at_once() {
    let db = TempDb::new();
    let start = Arc::new(Barrier::new(4));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let (start, url) = (start.clone(), db.url.clone());
            scope.spawn(move || {
                start.wait();
                block_on(async {
                    let storage = TursoStorage::builder(&url, "")
                        .runtime(Blocking)
                        .build()
                        .await
                        .unwrap();
                    storage.initialize_schema().await.unwrap();
                    assert!(storage.health_check().await.unwrap());
                    assert_eq!(storage.get_statistics().await.unwrap().episode_count, 0);
                });
            });
        }
    });
    assert_eq!(user_version(&db.path()), SCHEMA_VERSION);
}

#[test]
fn calls_before_initialize_schema_fail_with_a_sql_error() {
    let storage = block_on(
        TursoStorage::builder(":memory:", "")
            .runtime(Blocking)
            .build(),
    )
    .unwrap();
    let error = block_on(storage.get_episode(Uuid::new_v4())).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Database {
                kind: DatabaseErrorKind::Sql,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("initialize_schema"), "{error}");
}

#[test]
fn from_database_on_a_local_file_uses_lanes() {
    let db = TempDb::new();
    let database = libsql_block_on(libsql::Builder::new_local(db.path()).build()).unwrap();
    let storage = block_on(
        TursoStorageBuilder::from_database(database)
            .runtime(Blocking)
            .build(),
    )
    .unwrap();
    assert!(storage.lane_statistics().is_some());
    block_on(async {
        storage.initialize_schema().await.unwrap();
        let episode = full_episode(0, TaskType::Other, context("x", None));
        storage.store_episode(&episode).await.unwrap();
        assert_eq!(
            storage.get_episode(episode.episode_id).await.unwrap(),
            Some(episode)
        );
    });
    drop(storage);
    assert_eq!(user_version(&db.path()), SCHEMA_VERSION);
}

#[test]
fn from_database_on_a_private_memory_database_keeps_one_connection() {
    let database = libsql_block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
    let storage = block_on(
        TursoStorageBuilder::from_database(database)
            .runtime(Blocking)
            .build(),
    )
    .unwrap();
    assert!(storage.lane_statistics().is_none());
    assert_eq!(block_on(storage.pool_statistics()).unwrap().max_size, 1);
    block_on(async {
        storage.initialize_schema().await.unwrap();
        let episode = full_episode(0, TaskType::Other, context("x", None));
        storage.store_episode(&episode).await.unwrap();
        assert_eq!(
            storage.get_episode(episode.episode_id).await.unwrap(),
            Some(episode)
        );
    });
}

#[test]
fn refused_urls_are_security_errors_and_the_token_never_shows() {
    const TOKEN: &str = "tok_SECRET_123";
    for url in [
        "http://bad.com",
        "ftp://x.com/db",
        "LIBSQL://x.turso.io",
        "mysql://x/db",
    ] {
        let error =
            block_on(TursoStorage::builder(url, TOKEN).runtime(Blocking).build()).unwrap_err();
        assert!(
            matches!(error, StorageError::Security(_)),
            "{url}: {error:?}"
        );
        assert!(!format!("{error} {error:?}").contains(TOKEN));
    }
    let error = block_on(
        TursoStorage::builder("libsql://x.turso.io", " ")
            .runtime(Blocking)
            .build(),
    )
    .unwrap_err();
    assert!(
        matches!(error, StorageError::Security(SecurityError::BlankToken)),
        "{error:?}"
    );

    let builder = TursoStorage::builder("libsql://x.turso.io", TOKEN).runtime(Blocking);
    assert!(!format!("{builder:?}").contains(TOKEN));
}

#[cfg(not(feature = "remote"))]
#[test]
fn remote_urls_need_the_remote_feature() {
    let error = block_on(
        TursoStorage::builder("libsql://x.turso.io", "token")
            .runtime(Blocking)
            .build(),
    )
    .unwrap_err();
    assert!(matches!(error, StorageError::Config { .. }), "{error:?}");
    assert!(error.to_string().contains("`remote` feature"), "{error}");
}

#[test]
fn bad_settings_are_refused() {
    let config = TursoConfig {
        retry_base_delay_ms: 10_000,
        retry_max_delay_ms: 10,
        ..TursoConfig::default()
    };
    let error = block_on(
        TursoStorage::builder(":memory:", "")
            .config(config)
            .runtime(Blocking)
            .build(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        StorageError::Config {
            setting: "retry_base_delay_ms",
            ..
        }
    ));
    let pool_config = PoolConfig {
        max_connections: 0,
        ..PoolConfig::default()
    };
    let error = block_on(
        TursoStorage::builder(":memory:", "")
            .pool_config(pool_config)
            .runtime(Blocking)
            .build(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        StorageError::Config {
            setting: "max_connections",
            ..
        }
    ));
}

#[cfg(feature = "tokio")]
#[test]
fn the_default_runtime_is_tokio_and_needs_one() {
    let error = block_on(TursoStorage::new(":memory:", "")).unwrap_err();
    assert!(
        matches!(
            error,
            StorageError::Config {
                setting: "runtime",
                ..
            }
        ),
        "{error:?}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let storage: TursoStorage<memory_storage_turso::rt::Tokio> =
            TursoStorage::with_config(":memory:", "", TursoConfig::default())
                .await
                .unwrap();
        storage.initialize_schema().await.unwrap();
        assert!(storage.health_check().await.unwrap());
        let episode = full_episode(0, TaskType::Other, context("x", None));
        storage.store_episode(&episode).await.unwrap();
        assert_eq!(
            storage.get_episode(episode.episode_id).await.unwrap(),
            Some(episode)
        );

        let database = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let wrapped = TursoStorage::from_database(database).unwrap();
        wrapped.initialize_schema().await.unwrap();
    });
}
