//! The domain model: episodes, patterns and heuristics, with the fields and names of the older crate.
//!
//! Every type is `serde`-serializable. Enums serialize their variant names in snake case
//! ([`TaskType::CodeGeneration`] is `"code_generation"`); the enums with fields ([`TaskOutcome`],
//! [`ExecutionResult`], [`Pattern`]) carry a `type` tag.
//!
//! # Time precision
//!
//! Storage keeps timestamps as whole milliseconds since the Unix epoch, so a value with finer digits
//! comes back truncated to the millisecond. The constructors ([`Episode::new`], [`Episode::complete`],
//! [`ExecutionStep::new`], [`Heuristic::new`]) take the time from [`now_millis`], so what they build
//! makes an exact round trip; use [`now_millis`] too when setting a time by hand. Durations
//! ([`Pattern::ToolSequence`]'s `avg_latency`) are kept exactly.
//!
//! Floating-point fields must be finite: JSON has no NaN or infinity. The storage refuses a record
//! with a NaN or infinite score with [`StorageError::InvalidValue`](super::StorageError::InvalidValue),
//! before writing anything, and a NaN query threshold likewise.

use chrono::{DateTime, SubsecRound, Utc};

mod context;
mod episode;
mod heuristic;
mod pattern;
mod query;

pub use self::context::{ComplexityLevel, TaskContext, TaskType, UnknownTaskType};
pub use self::episode::{
    Episode, ExecutionResult, ExecutionStep, Reflection, RewardScore, TaskOutcome,
};
pub use self::heuristic::{Evidence, Heuristic};
pub use self::pattern::{OutcomeStats, Pattern};
pub use self::query::{EpisodeQuery, PatternQuery};

/// The current time, truncated to the millisecond: the precision storage keeps.
///
/// ```
/// use memory_storage_turso::storage::now_millis;
///
/// assert_eq!(now_millis().timestamp_subsec_nanos() % 1_000_000, 0);
/// ```
pub fn now_millis() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
