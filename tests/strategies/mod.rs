//! Proptest strategies for every domain type, shared by the storage tests.
//!
//! Times are whole milliseconds (the precision storage keeps), between the years 1 and 9999;
//! floating-point values are finite (JSON has no NaN or infinity) and include subnormals, zeros and
//! negative numbers.
#![allow(dead_code)]

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use memory_storage_turso::storage::{
    ComplexityLevel, Episode, Evidence, ExecutionResult, ExecutionStep, Heuristic, OutcomeStats,
    Pattern, Reflection, RewardScore, TaskContext, TaskOutcome, TaskType,
};
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use uuid::Uuid;

/// The payloads of the older crate's SQL-injection tests.
pub const INJECTION_PAYLOADS: [&str; 5] = [
    "'; DROP TABLE episodes; --",
    "' UNION SELECT * FROM episodes; --",
    "' OR '1'='1",
    "admin'--",
    "1'; UPDATE episodes SET task_description='hacked'; --",
];

/// Any text: arbitrary Unicode (quotes, NUL, emoji), the injection payloads, and the empty string.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        1 => proptest::sample::select(INJECTION_PAYLOADS.to_vec()).prop_map(str::to_owned),
        1 => Just(String::new()),
    ]
}

pub fn texts() -> impl Strategy<Value = Vec<String>> {
    vec(text(), 0..4)
}

pub fn metadata() -> impl Strategy<Value = HashMap<String, String>> {
    hash_map(text(), text(), 0..4)
}

pub fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// A timestamp with millisecond precision, between the years 1 and 9999.
pub fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800_000i64..=253_402_300_799_999)
        .prop_map(|millis| DateTime::from_timestamp_millis(millis).expect("in chrono's range"))
}

/// A finite `f32`, of any magnitude and sign.
pub fn finite_f32() -> impl Strategy<Value = f32> {
    use proptest::num::f32::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    (NORMAL | SUBNORMAL | ZERO | POSITIVE | NEGATIVE).prop_filter("finite", |x| x.is_finite())
}

/// A finite `f64`, of any magnitude and sign.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    (NORMAL | SUBNORMAL | ZERO | POSITIVE | NEGATIVE).prop_filter("finite", |x| x.is_finite())
}

/// Any JSON value, nested up to three levels.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_f64().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

pub fn task_type() -> impl Strategy<Value = TaskType> {
    proptest::sample::select(TaskType::ALL.to_vec())
}

pub fn complexity() -> impl Strategy<Value = ComplexityLevel> {
    prop_oneof![
        Just(ComplexityLevel::Simple),
        Just(ComplexityLevel::Moderate),
        Just(ComplexityLevel::Complex),
    ]
}

pub fn task_context() -> impl Strategy<Value = TaskContext> {
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        complexity(),
        text(),
        texts(),
    )
        .prop_map(
            |(language, framework, complexity, domain, tags)| TaskContext {
                language,
                framework,
                complexity,
                domain,
                tags,
            },
        )
}

pub fn execution_result() -> impl Strategy<Value = ExecutionResult> {
    prop_oneof![
        text().prop_map(|output| ExecutionResult::Success { output }),
        text().prop_map(|message| ExecutionResult::Error { message }),
        Just(ExecutionResult::Timeout),
    ]
}

pub fn execution_step() -> impl Strategy<Value = ExecutionStep> {
    (
        any::<usize>(),
        timestamp(),
        text(),
        text(),
        json_value(),
        proptest::option::of(execution_result()),
        any::<u64>(),
        proptest::option::of(any::<usize>()),
        metadata(),
    )
        .prop_map(
            |(
                step_number,
                timestamp,
                tool,
                action,
                parameters,
                result,
                latency_ms,
                tokens_used,
                metadata,
            )| ExecutionStep {
                step_number,
                timestamp,
                tool,
                action,
                parameters,
                result,
                latency_ms,
                tokens_used,
                metadata,
            },
        )
}

pub fn task_outcome() -> impl Strategy<Value = TaskOutcome> {
    prop_oneof![
        (text(), texts())
            .prop_map(|(verdict, artifacts)| TaskOutcome::Success { verdict, artifacts }),
        (text(), texts(), texts()).prop_map(|(verdict, completed, failed)| {
            TaskOutcome::PartialSuccess {
                verdict,
                completed,
                failed,
            }
        }),
        (text(), proptest::option::of(text())).prop_map(|(reason, error_details)| {
            TaskOutcome::Failure {
                reason,
                error_details,
            }
        }),
    ]
}

pub fn reward_score() -> impl Strategy<Value = RewardScore> {
    proptest::array::uniform6(finite_f32()).prop_map(
        |[total, base, efficiency, complexity_bonus, quality_multiplier, learning_bonus]| {
            RewardScore {
                total,
                base,
                efficiency,
                complexity_bonus,
                quality_multiplier,
                learning_bonus,
            }
        },
    )
}

pub fn reflection() -> impl Strategy<Value = Reflection> {
    (texts(), texts(), texts(), timestamp()).prop_map(
        |(successes, improvements, insights, generated_at)| Reflection {
            successes,
            improvements,
            insights,
            generated_at,
        },
    )
}

pub fn episode() -> impl Strategy<Value = Episode> {
    let identity = (uuid(), task_type(), text(), task_context());
    let timeline = (
        timestamp(),
        proptest::option::of(timestamp()),
        vec(execution_step(), 0..3),
    );
    let results = (
        proptest::option::of(task_outcome()),
        proptest::option::of(reward_score()),
        proptest::option::of(reflection()),
        vec(uuid(), 0..3),
        metadata(),
    );
    (identity, timeline, results).prop_map(
        |(
            (episode_id, task_type, task_description, context),
            (start_time, end_time, steps),
            (outcome, reward, reflection, patterns, metadata),
        )| Episode {
            episode_id,
            task_type,
            task_description,
            context,
            start_time,
            end_time,
            steps,
            outcome,
            reward,
            reflection,
            patterns,
            metadata,
        },
    )
}

/// Any `chrono::Duration` chrono can represent, to the nanosecond.
pub fn duration() -> impl Strategy<Value = chrono::Duration> {
    (-(i64::MAX / 1000)..=(i64::MAX / 1000), 0u32..1_000_000_000)
        .prop_filter_map("in chrono's range", |(secs, nanos)| {
            chrono::Duration::new(secs, nanos)
        })
}

pub fn outcome_stats() -> impl Strategy<Value = OutcomeStats> {
    (any::<usize>(), any::<usize>(), any::<usize>(), finite_f32()).prop_map(
        |(success_count, failure_count, total_count, avg_duration_secs)| OutcomeStats {
            success_count,
            failure_count,
            total_count,
            avg_duration_secs,
        },
    )
}

pub fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        (
            uuid(),
            texts(),
            task_context(),
            finite_f32(),
            duration(),
            any::<usize>()
        )
            .prop_map(
                |(id, tools, context, success_rate, avg_latency, occurrence_count)| {
                    Pattern::ToolSequence {
                        id,
                        tools,
                        context,
                        success_rate,
                        avg_latency,
                        occurrence_count,
                    }
                }
            ),
        (uuid(), text(), text(), outcome_stats(), task_context()).prop_map(
            |(id, condition, action, outcome_stats, context)| Pattern::DecisionPoint {
                id,
                condition,
                action,
                outcome_stats,
                context,
            }
        ),
        (uuid(), text(), texts(), finite_f32(), task_context()).prop_map(
            |(id, error_type, recovery_steps, success_rate, context)| Pattern::ErrorRecovery {
                id,
                error_type,
                recovery_steps,
                success_rate,
                context,
            }
        ),
        (uuid(), texts(), text(), vec(uuid(), 0..4), finite_f32()).prop_map(
            |(id, context_features, recommended_approach, evidence, success_rate)| {
                Pattern::ContextPattern {
                    id,
                    context_features,
                    recommended_approach,
                    evidence,
                    success_rate,
                }
            }
        ),
    ]
}

pub fn evidence() -> impl Strategy<Value = Evidence> {
    (vec(uuid(), 0..4), finite_f32(), any::<usize>()).prop_map(
        |(episode_ids, success_rate, sample_size)| Evidence {
            episode_ids,
            success_rate,
            sample_size,
        },
    )
}

pub fn heuristic() -> impl Strategy<Value = Heuristic> {
    (
        uuid(),
        text(),
        text(),
        finite_f32(),
        evidence(),
        timestamp(),
        timestamp(),
    )
        .prop_map(
            |(heuristic_id, condition, action, confidence, evidence, created_at, updated_at)| {
                Heuristic {
                    heuristic_id,
                    condition,
                    action,
                    confidence,
                    evidence,
                    created_at,
                    updated_at,
                }
            },
        )
}
