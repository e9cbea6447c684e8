//! Queries return exactly the expected rows, in the documented order: episodes newest first (ties by
//! id), patterns and heuristics by success rate or confidence, highest first (ties by id).
#![cfg(feature = "libsql")]

mod storage_support;

use chrono::Duration;
use futures_lite::future::block_on;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::{
    Episode, EpisodeQuery, Heuristic, Pattern, PatternQuery, TaskType, TursoStorage,
};
use storage_support::*;

/// Ten episodes, of every combination the filters tell apart, stored in a shuffled order.
fn episodes() -> Vec<Episode> {
    let specs: [(TaskType, &str, Option<&str>, bool); 10] = [
        (TaskType::Debugging, "web", Some("rust"), true),
        (TaskType::Debugging, "web", Some("python"), false),
        (TaskType::Debugging, "cli", Some("rust"), true),
        (TaskType::Testing, "web", Some("rust"), true),
        (TaskType::Testing, "web", None, true),
        (TaskType::Testing, "cli", Some("rust"), false),
        (TaskType::Refactoring, "web", Some("rust"), false),
        (TaskType::Refactoring, "data", Some("sql"), true),
        (TaskType::Debugging, "web", Some("rust"), false),
        (TaskType::Other, "web", Some("rust"), true),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (task_type, domain, language, completed))| {
            let context = context(domain, language);
            // Offsets put the episodes in start order 0, 1, ..., 9 (seconds apart).
            let offset = i as i64 * 1000;
            if completed {
                full_episode(offset, task_type, context)
            } else {
                open_episode(offset, task_type, context)
            }
        })
        .collect()
}

fn storage_with(episodes: &[Episode]) -> TursoStorage<Blocking> {
    let storage = blocking_storage(":memory:");
    let mut shuffled = episodes.to_vec();
    shuffled.reverse();
    shuffled.swap(0, 4);
    for episode in &shuffled {
        block_on(storage.store_episode(episode)).unwrap();
    }
    storage
}

/// The episodes `expected` in the documented order: newest first.
fn newest_first(episodes: &[Episode], filter: impl Fn(&Episode) -> bool) -> Vec<Episode> {
    let mut expected: Vec<Episode> = episodes.iter().filter(|e| filter(e)).cloned().collect();
    expected.sort_by(|a, b| {
        b.start_time
            .cmp(&a.start_time)
            .then(a.episode_id.cmp(&b.episode_id))
    });
    expected
}

#[test]
fn episode_filters_return_exactly_the_matching_episodes_newest_first() {
    let all = episodes();
    let storage = storage_with(&all);
    let query = |query: EpisodeQuery| block_on(storage.query_episodes(&query)).unwrap();

    assert_eq!(query(EpisodeQuery::default()), newest_first(&all, |_| true));
    assert_eq!(
        query(EpisodeQuery {
            task_type: Some(TaskType::Debugging),
            ..EpisodeQuery::default()
        }),
        newest_first(&all, |e| e.task_type == TaskType::Debugging)
    );
    assert_eq!(
        query(EpisodeQuery {
            domain: Some("web".into()),
            ..EpisodeQuery::default()
        }),
        newest_first(&all, |e| e.context.domain == "web")
    );
    assert_eq!(
        query(EpisodeQuery {
            language: Some("rust".into()),
            ..EpisodeQuery::default()
        }),
        newest_first(&all, |e| e.context.language.as_deref() == Some("rust"))
    );
    assert_eq!(
        query(EpisodeQuery {
            completed_only: true,
            ..EpisodeQuery::default()
        }),
        newest_first(&all, Episode::is_complete)
    );
    let everything = EpisodeQuery {
        task_type: Some(TaskType::Debugging),
        domain: Some("web".into()),
        language: Some("rust".into()),
        completed_only: true,
        limit: None,
    };
    let expected = newest_first(&all, |e| {
        e.task_type == TaskType::Debugging
            && e.context.domain == "web"
            && e.context.language.as_deref() == Some("rust")
            && e.is_complete()
    });
    assert_eq!(expected.len(), 1);
    assert_eq!(query(everything), expected);
    assert!(query(EpisodeQuery {
        domain: Some("nowhere".into()),
        ..EpisodeQuery::default()
    })
    .is_empty());
}

#[test]
fn episode_limits_cut_the_ordered_list() {
    let all = episodes();
    let storage = storage_with(&all);
    let query = |query: EpisodeQuery| block_on(storage.query_episodes(&query)).unwrap();
    let ordered = newest_first(&all, |_| true);
    for limit in [0, 1, 3, 10, 11, usize::MAX] {
        let found = query(EpisodeQuery {
            limit: Some(limit),
            ..EpisodeQuery::default()
        });
        assert_eq!(found, ordered[..limit.min(ordered.len())], "limit {limit}");
    }
    let web = query(EpisodeQuery {
        domain: Some("web".into()),
        limit: Some(2),
        ..EpisodeQuery::default()
    });
    assert_eq!(web, newest_first(&all, |e| e.context.domain == "web")[..2]);
}

#[test]
fn episodes_that_start_together_are_ordered_by_id() {
    let storage = blocking_storage(":memory:");
    let mut same_time: Vec<Episode> = (0..5)
        .map(|_| full_episode(0, TaskType::Other, context("x", None)))
        .collect();
    for episode in &same_time {
        block_on(storage.store_episode(episode)).unwrap();
    }
    same_time.sort_by_key(|e| e.episode_id);
    let found = block_on(storage.query_episodes(&EpisodeQuery::default())).unwrap();
    assert_eq!(found, same_time);
}

#[test]
fn episodes_since_a_time_include_it_newest_first() {
    let all = episodes();
    let storage = storage_with(&all);
    let since = all[6].start_time;
    let found = block_on(storage.query_episodes_since(since)).unwrap();
    assert_eq!(found, newest_first(&all, |e| e.start_time >= since));
    assert_eq!(found.len(), 4);
    let later = since + Duration::milliseconds(1);
    assert_eq!(
        block_on(storage.query_episodes_since(later)).unwrap().len(),
        3,
        "the boundary is inclusive to the millisecond"
    );
    let future = all[9].start_time + Duration::days(1);
    assert!(block_on(storage.query_episodes_since(future))
        .unwrap()
        .is_empty());
}

fn by_success_rate(patterns: &[Pattern], filter: impl Fn(&Pattern) -> bool) -> Vec<Pattern> {
    let mut expected: Vec<Pattern> = patterns.iter().filter(|p| filter(p)).cloned().collect();
    expected.sort_by(|a, b| {
        b.success_rate()
            .total_cmp(&a.success_rate())
            .then(a.id().to_string().cmp(&b.id().to_string()))
    });
    expected
}

#[test]
fn pattern_filters_return_exactly_the_matching_patterns_most_successful_first() {
    let patterns = vec![
        tool_sequence(context("web", Some("rust")), 0.9),
        tool_sequence(context("web", Some("python")), 0.4),
        tool_sequence(context("cli", Some("rust")), 0.7),
        tool_sequence(context("web", Some("rust")), 0.5),
        tool_sequence(context("web", None), 0.95),
        context_pattern(0.99),
        context_pattern(0.1),
    ];
    let storage = blocking_storage(":memory:");
    for pattern in patterns.iter().rev() {
        block_on(storage.store_pattern(pattern)).unwrap();
    }
    let query = |query: PatternQuery| block_on(storage.query_patterns(&query)).unwrap();
    let domain_of = |p: &Pattern| p.context().map(|c| c.domain.clone());
    let language_of = |p: &Pattern| p.context().and_then(|c| c.language.clone());

    assert_eq!(
        query(PatternQuery::default()),
        by_success_rate(&patterns, |_| true)
    );
    assert_eq!(
        query(PatternQuery {
            domain: Some("web".into()),
            ..PatternQuery::default()
        }),
        by_success_rate(&patterns, |p| domain_of(p).as_deref() == Some("web"))
    );
    assert_eq!(
        query(PatternQuery {
            language: Some("rust".into()),
            ..PatternQuery::default()
        }),
        by_success_rate(&patterns, |p| language_of(p).as_deref() == Some("rust"))
    );
    assert_eq!(
        query(PatternQuery {
            min_success_rate: Some(0.7),
            ..PatternQuery::default()
        }),
        by_success_rate(&patterns, |p| p.success_rate() >= 0.7)
    );
    let combined = query(PatternQuery {
        domain: Some("web".into()),
        language: Some("rust".into()),
        min_success_rate: Some(0.5),
        limit: Some(1),
    });
    assert_eq!(combined, [patterns[0].clone()]);
    assert_eq!(
        query(PatternQuery {
            limit: Some(3),
            ..PatternQuery::default()
        }),
        by_success_rate(&patterns, |_| true)[..3]
    );
    assert!(query(PatternQuery {
        min_success_rate: Some(1.0),
        ..PatternQuery::default()
    })
    .is_empty());
}

#[test]
fn heuristics_above_a_confidence_most_confident_first() {
    let heuristics: Vec<Heuristic> = [0.2, 0.9, 0.5, 0.5, 0.75, 0.0]
        .into_iter()
        .map(heuristic)
        .collect();
    let storage = blocking_storage(":memory:");
    for heuristic in &heuristics {
        block_on(storage.store_heuristic(heuristic)).unwrap();
    }
    let expected = |min: f32| {
        let mut expected: Vec<Heuristic> = heuristics
            .iter()
            .filter(|h| h.confidence >= min)
            .cloned()
            .collect();
        expected.sort_by(|a, b| {
            b.confidence
                .total_cmp(&a.confidence)
                .then(a.heuristic_id.to_string().cmp(&b.heuristic_id.to_string()))
        });
        expected
    };
    for min in [0.0, 0.5, 0.51, 0.9, 0.95, -1.0] {
        let found = block_on(storage.get_heuristics(min)).unwrap();
        assert_eq!(found, expected(min), "min_confidence {min}");
    }
    assert_eq!(block_on(storage.get_heuristics(0.5)).unwrap().len(), 4);
}
