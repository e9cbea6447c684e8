//! Helpers shared by the storage tests: storages on temporary files, and sample records.
#![allow(dead_code)]

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures_lite::future::block_on;
use memory_storage_turso::rt::Blocking;
use memory_storage_turso::storage::{
    ComplexityLevel, Episode, Evidence, ExecutionResult, ExecutionStep, Heuristic, Pattern,
    Reflection, RewardScore, TaskContext, TaskOutcome, TaskType, TursoStorage,
};
use uuid::Uuid;

/// A temporary directory and the `file:` URL of a database inside it.
pub struct TempDb {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl TempDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file:{}", dir.path().join("memory.db").display());
        TempDb { dir, url }
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("memory.db")
    }
}

/// A storage for blocking code on `url`, with its schema.
pub fn blocking_storage(url: &str) -> TursoStorage<Blocking> {
    block_on(async {
        let storage = TursoStorage::builder(url, "")
            .runtime(Blocking)
            .build()
            .await
            .unwrap();
        storage.initialize_schema().await.unwrap();
        storage
    })
}

/// A fixed time, with milliseconds.
pub fn time(offset_millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_123 + offset_millis).unwrap()
}

/// A context in `domain`, with `language`.
pub fn context(domain: &str, language: Option<&str>) -> TaskContext {
    TaskContext {
        language: language.map(str::to_owned),
        framework: Some("tokio".into()),
        complexity: ComplexityLevel::Complex,
        domain: domain.to_owned(),
        tags: vec!["async".into(), "db".into()],
    }
}

/// An episode with every field set, started at `time(offset_millis)`.
pub fn full_episode(offset_millis: i64, task_type: TaskType, context: TaskContext) -> Episode {
    let start = time(offset_millis);
    Episode {
        episode_id: Uuid::new_v4(),
        task_type,
        task_description: format!("task at {offset_millis}"),
        context,
        start_time: start,
        end_time: Some(start + Duration::milliseconds(1500)),
        steps: vec![ExecutionStep {
            step_number: 1,
            timestamp: start + Duration::milliseconds(7),
            tool: "read_file".into(),
            action: "read the source".into(),
            parameters: serde_json::json!({"path": "src/lib.rs", "lines": [1, 2, 3], "big": 1.5e300}),
            result: Some(ExecutionResult::Success {
                output: "ok".into(),
            }),
            latency_ms: 42,
            tokens_used: Some(1234),
            metadata: HashMap::from([("k".into(), "v".into())]),
        }],
        outcome: Some(TaskOutcome::PartialSuccess {
            verdict: "mostly".into(),
            completed: vec!["a".into()],
            failed: vec!["b".into()],
        }),
        reward: Some(RewardScore {
            total: 0.75,
            base: 0.5,
            efficiency: 1.1,
            complexity_bonus: 0.2,
            quality_multiplier: 0.9,
            learning_bonus: 0.05,
        }),
        reflection: Some(Reflection {
            successes: vec!["fast".into()],
            improvements: vec!["test more".into()],
            insights: vec!["cache".into()],
            generated_at: start + Duration::milliseconds(2000),
        }),
        patterns: vec![Uuid::new_v4()],
        metadata: HashMap::from([("user".into(), "alice".into())]),
    }
}

/// An episode that has not ended (no end time, no outcome).
pub fn open_episode(offset_millis: i64, task_type: TaskType, context: TaskContext) -> Episode {
    Episode {
        end_time: None,
        outcome: None,
        ..full_episode(offset_millis, task_type, context)
    }
}

/// A tool-sequence pattern in `context` with `success_rate`.
pub fn tool_sequence(context: TaskContext, success_rate: f32) -> Pattern {
    Pattern::ToolSequence {
        id: Uuid::new_v4(),
        tools: vec!["grep".into(), "edit".into()],
        context,
        success_rate,
        avg_latency: Duration::milliseconds(250),
        occurrence_count: 3,
    }
}

/// A context pattern (no task context) with `success_rate`.
pub fn context_pattern(success_rate: f32) -> Pattern {
    Pattern::ContextPattern {
        id: Uuid::new_v4(),
        context_features: vec!["monorepo".into()],
        recommended_approach: "build one crate at a time".into(),
        evidence: vec![Uuid::new_v4()],
        success_rate,
    }
}

/// A heuristic with `confidence`.
pub fn heuristic(confidence: f32) -> Heuristic {
    Heuristic {
        heuristic_id: Uuid::new_v4(),
        condition: "tests are flaky".into(),
        action: "look for shared state".into(),
        confidence,
        evidence: Evidence {
            episode_ids: vec![Uuid::new_v4()],
            success_rate: 0.8,
            sample_size: 10,
        },
        created_at: time(-86_400_000),
        updated_at: time(5),
    }
}
