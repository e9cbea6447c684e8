//! One recorded task: [`Episode`], its [`ExecutionStep`]s, and how it ended ([`TaskOutcome`],
//! [`RewardScore`], [`Reflection`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{now_millis, TaskContext, TaskType};

/// A task from start to finish: what was asked, the steps taken, and how it went.
///
/// ```
/// use memory_storage_turso::storage::{Episode, TaskContext, TaskOutcome, TaskType};
///
/// let context = TaskContext::default();
/// let mut episode = Episode::new("Add a login endpoint".into(), context, TaskType::CodeGeneration);
/// assert!(!episode.is_complete());
/// episode.complete(TaskOutcome::Success { verdict: "tests pass".into(), artifacts: vec![] });
/// assert!(episode.is_complete());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Unique id.
    pub episode_id: Uuid,
    /// The kind of work.
    pub task_type: TaskType,
    /// What was asked.
    pub task_description: String,
    /// Where the task happened.
    pub context: TaskContext,
    /// When the task started.
    pub start_time: DateTime<Utc>,
    /// When it ended; `None` while in progress.
    pub end_time: Option<DateTime<Utc>>,
    /// The steps taken, in order.
    pub steps: Vec<ExecutionStep>,
    /// How it ended; `None` while in progress.
    pub outcome: Option<TaskOutcome>,
    /// The score it earned.
    pub reward: Option<RewardScore>,
    /// What was learned from it.
    pub reflection: Option<Reflection>,
    /// Ids of the patterns extracted from it.
    pub patterns: Vec<Uuid>,
    /// Free-form key-value data.
    pub metadata: HashMap<String, String>,
}

impl Episode {
    /// A new, in-progress episode with a random id, starting now (to the millisecond).
    pub fn new(task_description: String, context: TaskContext, task_type: TaskType) -> Self {
        Episode {
            episode_id: Uuid::new_v4(),
            task_type,
            task_description,
            context,
            start_time: now_millis(),
            end_time: None,
            steps: Vec::new(),
            outcome: None,
            reward: None,
            reflection: None,
            patterns: Vec::new(),
            metadata: HashMap::new(),
        }
    }

    /// Whether the episode has ended: it has both an end time and an outcome. This is the `completed`
    /// column of the schema.
    pub fn is_complete(&self) -> bool {
        self.end_time.is_some() && self.outcome.is_some()
    }

    /// How long the episode took, once it has ended.
    pub fn duration(&self) -> Option<chrono::Duration> {
        self.end_time.map(|end| end - self.start_time)
    }

    /// Appends a step.
    pub fn add_step(&mut self, step: ExecutionStep) {
        self.steps.push(step);
    }

    /// Ends the episode now (to the millisecond) with `outcome`.
    pub fn complete(&mut self, outcome: TaskOutcome) {
        self.end_time = Some(now_millis());
        self.outcome = Some(outcome);
    }
}

/// One step of an episode: a tool call and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionStep {
    /// Position in the episode, from 1.
    pub step_number: usize,
    /// When the step ran.
    pub timestamp: DateTime<Utc>,
    /// The tool or function used.
    pub tool: String,
    /// What the step did.
    pub action: String,
    /// The tool's input.
    pub parameters: serde_json::Value,
    /// The result; `None` if not known yet.
    pub result: Option<ExecutionResult>,
    /// How long the step took, in milliseconds.
    pub latency_ms: u64,
    /// Tokens spent, if counted.
    pub tokens_used: Option<usize>,
    /// Free-form key-value data.
    pub metadata: HashMap<String, String>,
}

impl ExecutionStep {
    /// A step taken now (to the millisecond), with empty parameters (`{}`) and no result yet.
    pub fn new(step_number: usize, tool: String, action: String) -> Self {
        ExecutionStep {
            step_number,
            timestamp: now_millis(),
            tool,
            action,
            parameters: serde_json::Value::Object(serde_json::Map::new()),
            result: None,
            latency_ms: 0,
            tokens_used: None,
            metadata: HashMap::new(),
        }
    }

    /// Whether the step has a successful result.
    pub fn is_success(&self) -> bool {
        self.result
            .as_ref()
            .is_some_and(ExecutionResult::is_success)
    }
}

/// The result of one step. Serialized with a `type` tag: `{"type": "success", "output": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecutionResult {
    /// The step worked.
    Success {
        /// What it produced.
        output: String,
    },
    /// The step failed.
    Error {
        /// What went wrong.
        message: String,
    },
    /// The step ran out of time.
    Timeout,
}

impl ExecutionResult {
    /// Whether this is [`ExecutionResult::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, ExecutionResult::Success { .. })
    }
}

/// How a task ended. Serialized with a `type` tag: `{"type": "failure", "reason": "...", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TaskOutcome {
    /// Everything was done.
    Success {
        /// A summary of the result.
        verdict: String,
        /// Files or other outputs produced.
        artifacts: Vec<String>,
    },
    /// Some of it was done.
    PartialSuccess {
        /// A summary of the result.
        verdict: String,
        /// What was done.
        completed: Vec<String>,
        /// What was not.
        failed: Vec<String>,
    },
    /// The task failed.
    Failure {
        /// Why, in short.
        reason: String,
        /// Details, such as an error message.
        error_details: Option<String>,
    },
}

/// The score of an episode, from its outcome and how it got there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RewardScore {
    /// The final score.
    pub total: f32,
    /// The score from the outcome alone.
    pub base: f32,
    /// The multiplier for speed and economy.
    pub efficiency: f32,
    /// The bonus for a hard task.
    pub complexity_bonus: f32,
    /// The multiplier for the quality of the result.
    pub quality_multiplier: f32,
    /// The bonus for learning something new.
    pub learning_bonus: f32,
}

/// What was learned from an episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reflection {
    /// What went well.
    pub successes: Vec<String>,
    /// What could be better.
    pub improvements: Vec<String>,
    /// Lessons worth keeping.
    pub insights: Vec<String>,
    /// When the reflection was written.
    pub generated_at: DateTime<Utc>,
}
