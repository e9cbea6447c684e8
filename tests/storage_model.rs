//! The domain model: exact serde round trips of every type, and the serialized names.
#![cfg(feature = "libsql")]

mod strategies;

use std::fmt::Debug;

use memory_storage_turso::storage::{
    now_millis, ComplexityLevel, Episode, EpisodeQuery, ExecutionResult, ExecutionStep, Heuristic,
    OutcomeStats, Pattern, PatternQuery, TaskContext, TaskOutcome, TaskType,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// Serializes `value` to JSON text and back, and checks that nothing changed.
fn assert_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: T =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    prop_assert_eq!(&back, value, "JSON was {}", text);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn episodes_round_trip(episode in strategies::episode()) {
        assert_round_trip(&episode)?;
    }

    #[test]
    fn patterns_round_trip(pattern in strategies::pattern()) {
        assert_round_trip(&pattern)?;
    }

    #[test]
    fn heuristics_round_trip(heuristic in strategies::heuristic()) {
        assert_round_trip(&heuristic)?;
    }

    #[test]
    fn parts_round_trip_on_their_own(
        context in strategies::task_context(),
        step in strategies::execution_step(),
        outcome in strategies::task_outcome(),
        reward in strategies::reward_score(),
        reflection in strategies::reflection(),
        stats in strategies::outcome_stats(),
        evidence in strategies::evidence(),
        task_type in strategies::task_type(),
    ) {
        assert_round_trip(&context)?;
        assert_round_trip(&step)?;
        assert_round_trip(&outcome)?;
        assert_round_trip(&reward)?;
        assert_round_trip(&reflection)?;
        assert_round_trip(&stats)?;
        assert_round_trip(&evidence)?;
        assert_round_trip(&task_type)?;
    }

    #[test]
    fn queries_round_trip(
        task_type in proptest::option::of(strategies::task_type()),
        domain in proptest::option::of(strategies::text()),
        language in proptest::option::of(strategies::text()),
        limit in proptest::option::of(any::<usize>()),
        completed_only in any::<bool>(),
        min_success_rate in proptest::option::of(strategies::finite_f32()),
    ) {
        let episodes = EpisodeQuery {
            task_type,
            domain: domain.clone(),
            language: language.clone(),
            limit,
            completed_only,
        };
        assert_round_trip(&episodes)?;
        assert_round_trip(&PatternQuery { domain, language, min_success_rate, limit })?;
    }

    #[test]
    fn task_type_text_forms_agree(task_type in strategies::task_type()) {
        let json = serde_json::to_value(task_type).unwrap();
        prop_assert_eq!(json.as_str(), Some(task_type.as_str()));
        prop_assert_eq!(task_type.to_string(), task_type.as_str());
        prop_assert_eq!(task_type.as_str().parse::<TaskType>().unwrap(), task_type);
    }
}

#[test]
fn task_types_serialize_in_snake_case() {
    let names: Vec<String> = TaskType::ALL
        .iter()
        .map(|t| {
            serde_json::to_value(t)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "code_generation",
            "debugging",
            "refactoring",
            "testing",
            "analysis",
            "documentation",
            "other"
        ]
    );
    let error = "CodeGeneration".parse::<TaskType>().unwrap_err();
    assert!(error.to_string().contains("code_generation"), "{error}");
}

#[test]
fn tagged_enums_name_their_variant_in_snake_case() {
    let outcome = TaskOutcome::PartialSuccess {
        verdict: "half".into(),
        completed: vec!["a".into()],
        failed: vec![],
    };
    assert_eq!(
        serde_json::to_value(&outcome).unwrap(),
        json!({"type": "partial_success", "verdict": "half", "completed": ["a"], "failed": []})
    );
    assert_eq!(
        serde_json::to_value(ExecutionResult::Timeout).unwrap(),
        json!({"type": "timeout"})
    );
    let pattern = Pattern::DecisionPoint {
        id: uuid::Uuid::nil(),
        condition: "c".into(),
        action: "a".into(),
        outcome_stats: OutcomeStats {
            success_count: 1,
            failure_count: 1,
            total_count: 2,
            avg_duration_secs: 0.5,
        },
        context: TaskContext::default(),
    };
    let value = serde_json::to_value(&pattern).unwrap();
    assert_eq!(value["type"], "decision_point");
    assert_eq!(value["type"], pattern.kind());
    assert_eq!(value["context"]["complexity"], "moderate");
    assert_eq!(pattern.success_rate(), 0.5);
}

#[test]
fn constructors_use_millisecond_times_that_survive_storage() {
    let mut episode = Episode::new("task".into(), TaskContext::default(), TaskType::Testing);
    episode.add_step(ExecutionStep::new(1, "tool".into(), "act".into()));
    episode.complete(TaskOutcome::Failure {
        reason: "r".into(),
        error_details: None,
    });
    let heuristic = Heuristic::new("c".into(), "a".into(), 0.5);
    let times = [
        episode.start_time,
        episode.end_time.unwrap(),
        episode.steps[0].timestamp,
        heuristic.created_at,
        heuristic.updated_at,
        now_millis(),
    ];
    for time in times {
        assert_eq!(time.timestamp_subsec_nanos() % 1_000_000, 0, "{time}");
    }
    assert!(episode.is_complete());
    assert!(episode.duration().unwrap() >= chrono::Duration::zero());
    assert_eq!(episode.steps[0].parameters, json!({}));
    assert!(!episode.steps[0].is_success());
}

#[test]
fn defaults_match_the_older_crate() {
    let context = TaskContext::default();
    assert_eq!(context.domain, "general");
    assert_eq!(context.complexity, ComplexityLevel::Moderate);
    assert_eq!(EpisodeQuery::default().limit, None);
    assert!(!EpisodeQuery::default().completed_only);
    assert_eq!(PatternQuery::default().min_success_rate, None);
    assert_eq!(
        OutcomeStats {
            success_count: 0,
            failure_count: 0,
            total_count: 0,
            avg_duration_secs: 0.0
        }
        .success_rate(),
        0.0
    );
}
