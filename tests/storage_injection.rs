//! The older crate's 10 SQL-injection tests, as behaviour: each payload, wherever it goes, is stored and
//! read back verbatim, and every table stays intact (same counts, nothing rewritten to 'hacked').
#![cfg(feature = "libsql")]

mod storage_support;
mod strategies;

use std::collections::HashMap;

use futures_lite::future::block_on;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::{
    Episode, EpisodeQuery, PatternQuery, StorageStatistics, TaskOutcome, TaskType, TursoStorage,
};
use storage_support::*;
use strategies::INJECTION_PAYLOADS;

/// A storage with one episode, pattern and heuristic that no payload touches.
struct Fixture {
    _db: TempDb,
    storage: TursoStorage<Blocking>,
    sentinel: Episode,
}

impl Fixture {
    fn new() -> Self {
        let db = TempDb::new();
        let storage = blocking_storage(&db.url);
        let sentinel = full_episode(-1, TaskType::Other, context("sentinel", Some("rust")));
        block_on(async {
            storage.store_episode(&sentinel).await.unwrap();
            storage
                .store_pattern(&tool_sequence(context("sentinel", None), 0.5))
                .await
                .unwrap();
            storage.store_heuristic(&heuristic(0.5)).await.unwrap();
        });
        Fixture {
            _db: db,
            storage,
            sentinel,
        }
    }

    /// Stores one episode per payload, with `place` putting the payload in it, and checks that each
    /// reads back verbatim (by id, and through a query on its domain) and that nothing else changed.
    fn store_each_payload(&self, place: impl Fn(&mut Episode, &str)) {
        block_on(async {
            let mut stored = Vec::new();
            for (i, payload) in INJECTION_PAYLOADS.into_iter().enumerate() {
                let mut episode = full_episode(i as i64, TaskType::Debugging, context("web", None));
                place(&mut episode, payload);
                self.storage.store_episode(&episode).await.unwrap();
                let read = self.storage.get_episode(episode.episode_id).await.unwrap();
                assert_eq!(read.as_ref(), Some(&episode), "payload {payload:?}");

                let same_domain = EpisodeQuery {
                    domain: Some(episode.context.domain.clone()),
                    ..EpisodeQuery::default()
                };
                let found = self.storage.query_episodes(&same_domain).await.unwrap();
                assert!(found.contains(&episode), "payload {payload:?}");
                stored.push(episode);
            }
            self.assert_intact(stored.len()).await;
        });
    }

    async fn assert_intact(&self, stored: usize) {
        let storage = &self.storage;
        assert_eq!(
            storage.get_statistics().await.unwrap(),
            StorageStatistics {
                episode_count: 1 + stored,
                pattern_count: 1,
                heuristic_count: 1,
            },
            "every table is there, with only the rows stored"
        );
        assert_eq!(
            storage
                .get_episode(self.sentinel.episode_id)
                .await
                .unwrap()
                .as_ref(),
            Some(&self.sentinel)
        );
        let everything = storage
            .query_episodes(&EpisodeQuery::default())
            .await
            .unwrap();
        assert_eq!(everything.len(), 1 + stored);
        assert!(everything.iter().all(|e| e.task_description != "hacked"));
        assert_eq!(
            storage
                .query_patterns(&PatternQuery::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(storage.get_heuristics(0.0).await.unwrap().len(), 1);
    }
}

#[test]
fn payloads_in_the_task_description() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.task_description = payload.to_owned();
    });
}

#[test]
fn payloads_in_metadata_values_and_keys() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.metadata = HashMap::from([
            ("note".to_owned(), payload.to_owned()),
            (payload.to_owned(), "key".to_owned()),
        ]);
    });
}

#[test]
fn payloads_in_a_step_tool() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.steps[0].tool = payload.to_owned();
    });
}

#[test]
fn payloads_in_step_parameters() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.steps[0].parameters = serde_json::json!({ "query": payload, payload: [payload] });
    });
}

#[test]
fn payloads_in_the_outcome_reason() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.outcome = Some(TaskOutcome::Failure {
            reason: payload.to_owned(),
            error_details: None,
        });
    });
}

#[test]
fn payloads_in_the_outcome_details() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.outcome = Some(TaskOutcome::Failure {
            reason: "crashed".to_owned(),
            error_details: Some(payload.to_owned()),
        });
    });
}

#[test]
fn payloads_in_the_context_domain() {
    // The domain has its own column and is a query filter: the query above binds the payload.
    Fixture::new().store_each_payload(|episode, payload| {
        episode.context.domain = payload.to_owned();
    });
}

#[test]
fn payloads_in_the_context_language() {
    let fixture = Fixture::new();
    fixture.store_each_payload(|episode, payload| {
        episode.context.language = Some(payload.to_owned());
    });
    // The language is a query filter too.
    for payload in INJECTION_PAYLOADS {
        let query = EpisodeQuery {
            language: Some(payload.to_owned()),
            ..EpisodeQuery::default()
        };
        let found = block_on(fixture.storage.query_episodes(&query)).unwrap();
        assert_eq!(found.len(), 1, "payload {payload:?}");
        assert_eq!(found[0].context.language.as_deref(), Some(payload));
    }
}

#[test]
fn payloads_in_the_context_tags() {
    Fixture::new().store_each_payload(|episode, payload| {
        episode.context.tags = vec![payload.to_owned(), "plain".to_owned()];
    });
}

#[test]
fn payloads_in_patterns_heuristics_and_filters() {
    let fixture = Fixture::new();
    let storage = &fixture.storage;
    block_on(async {
        for payload in INJECTION_PAYLOADS {
            let pattern = tool_sequence(context(payload, Some(payload)), 0.6);
            let mut rule = heuristic(0.6);
            rule.condition = payload.to_owned();
            rule.action = payload.to_owned();
            storage.store_pattern(&pattern).await.unwrap();
            storage.store_heuristic(&rule).await.unwrap();
            assert_eq!(
                storage.get_pattern(pattern.id()).await.unwrap(),
                Some(pattern.clone())
            );
            assert_eq!(
                storage.get_heuristic(rule.heuristic_id).await.unwrap(),
                Some(rule)
            );
            let query = PatternQuery {
                domain: Some(payload.to_owned()),
                language: Some(payload.to_owned()),
                ..PatternQuery::default()
            };
            assert_eq!(storage.query_patterns(&query).await.unwrap(), [pattern]);
        }
        let counts = storage.get_statistics().await.unwrap();
        assert_eq!(
            (
                counts.episode_count,
                counts.pattern_count,
                counts.heuristic_count
            ),
            (
                1,
                1 + INJECTION_PAYLOADS.len(),
                1 + INJECTION_PAYLOADS.len()
            )
        );
        // Filters made of payloads match nothing else.
        let query = EpisodeQuery {
            domain: Some("' OR '1'='1".to_owned()),
            ..EpisodeQuery::default()
        };
        assert!(storage.query_episodes(&query).await.unwrap().is_empty());
    });
}
