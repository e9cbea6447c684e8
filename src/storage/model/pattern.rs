//! What recurs across episodes: [`Pattern`] and its [`OutcomeStats`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TaskContext;

/// A regularity extracted from episodes. Serialized with a `type` tag in snake case:
/// `{"type": "tool_sequence", "id": "...", ...}`.
///
/// Success rates are fractions in `0.0..=1.0`. `avg_latency` is a [`chrono::Duration`], serialized
/// exactly (as chrono does: `[seconds, nanoseconds]`).
///
/// ```
/// use memory_storage_turso::storage::{Pattern, TaskContext};
///
/// let pattern = Pattern::ToolSequence {
///     id: uuid::Uuid::new_v4(),
///     tools: vec!["read_file".into(), "edit_file".into()],
///     context: TaskContext::default(),
///     success_rate: 0.9,
///     avg_latency: chrono::Duration::milliseconds(120),
///     occurrence_count: 12,
/// };
/// assert_eq!(pattern.kind(), "tool_sequence");
/// assert_eq!(pattern.context().unwrap().domain, "general");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pattern {
    /// Tools that were used in this order, and worked.
    ToolSequence {
        /// Unique id.
        id: Uuid,
        /// The tools, in order.
        tools: Vec<String>,
        /// Where the sequence was seen.
        context: TaskContext,
        /// How often it worked.
        success_rate: f32,
        /// How long the sequence took on average.
        avg_latency: chrono::Duration,
        /// How often it was seen.
        occurrence_count: usize,
    },
    /// A choice made under a condition, with how it turned out.
    DecisionPoint {
        /// Unique id.
        id: Uuid,
        /// When the choice arises.
        condition: String,
        /// What was chosen.
        action: String,
        /// How it turned out.
        outcome_stats: OutcomeStats,
        /// Where the choice was seen.
        context: TaskContext,
    },
    /// How an error was recovered from.
    ErrorRecovery {
        /// Unique id.
        id: Uuid,
        /// The kind of error.
        error_type: String,
        /// The steps that recovered from it.
        recovery_steps: Vec<String>,
        /// How often the recovery worked.
        success_rate: f32,
        /// Where the error was seen.
        context: TaskContext,
    },
    /// An approach that works when some context features are present.
    ContextPattern {
        /// Unique id.
        id: Uuid,
        /// The features that call for the approach.
        context_features: Vec<String>,
        /// The approach.
        recommended_approach: String,
        /// Ids of the episodes that support it.
        evidence: Vec<Uuid>,
        /// How often the approach worked.
        success_rate: f32,
    },
}

impl Pattern {
    /// The pattern's id.
    pub fn id(&self) -> Uuid {
        match self {
            Pattern::ToolSequence { id, .. }
            | Pattern::DecisionPoint { id, .. }
            | Pattern::ErrorRecovery { id, .. }
            | Pattern::ContextPattern { id, .. } => *id,
        }
    }

    /// The variant's snake-case name, as in the serialized `type` tag and the `pattern_type` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Pattern::ToolSequence { .. } => "tool_sequence",
            Pattern::DecisionPoint { .. } => "decision_point",
            Pattern::ErrorRecovery { .. } => "error_recovery",
            Pattern::ContextPattern { .. } => "context_pattern",
        }
    }

    /// How often the pattern worked; for a decision point, computed from its [`OutcomeStats`].
    pub fn success_rate(&self) -> f32 {
        match self {
            Pattern::ToolSequence { success_rate, .. }
            | Pattern::ErrorRecovery { success_rate, .. }
            | Pattern::ContextPattern { success_rate, .. } => *success_rate,
            Pattern::DecisionPoint { outcome_stats, .. } => outcome_stats.success_rate(),
        }
    }

    /// The task context the pattern was seen in; a [`Pattern::ContextPattern`] has none.
    pub fn context(&self) -> Option<&TaskContext> {
        match self {
            Pattern::ToolSequence { context, .. }
            | Pattern::DecisionPoint { context, .. }
            | Pattern::ErrorRecovery { context, .. } => Some(context),
            Pattern::ContextPattern { .. } => None,
        }
    }
}

/// How the outcomes of a decision add up.
///
/// ```
/// use memory_storage_turso::storage::OutcomeStats;
///
/// let stats = OutcomeStats { success_count: 3, failure_count: 1, total_count: 4, avg_duration_secs: 2.5 };
/// assert_eq!(stats.success_rate(), 0.75);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeStats {
    /// Outcomes that succeeded.
    pub success_count: usize,
    /// Outcomes that failed.
    pub failure_count: usize,
    /// All outcomes.
    pub total_count: usize,
    /// Average duration, in seconds.
    pub avg_duration_secs: f32,
}

impl OutcomeStats {
    /// `success_count / total_count`, or 0 when nothing was counted.
    pub fn success_rate(&self) -> f32 {
        if self.total_count == 0 {
            0.0
        } else {
            self.success_count as f32 / self.total_count as f32
        }
    }
}
