//! Filters for listing episodes and patterns: [`EpisodeQuery`] and [`PatternQuery`].

use serde::{Deserialize, Serialize};

use super::TaskType;

/// Which episodes to list. Every `None` (and `completed_only: false`) means "no filter"; the default
/// lists everything.
///
/// ```
/// use memory_storage_turso::storage::{EpisodeQuery, TaskType};
///
/// let query = EpisodeQuery {
///     task_type: Some(TaskType::Debugging),
///     limit: Some(20),
///     ..EpisodeQuery::default()
/// };
/// assert!(!query.completed_only);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EpisodeQuery {
    /// Only episodes of this type.
    pub task_type: Option<TaskType>,
    /// Only episodes whose context has this domain.
    pub domain: Option<String>,
    /// Only episodes whose context has this language.
    pub language: Option<String>,
    /// At most this many episodes.
    pub limit: Option<usize>,
    /// Only episodes that have ended (with an end time and an outcome).
    pub completed_only: bool,
}

/// Which patterns to list. Every `None` means "no filter"; the default lists everything.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PatternQuery {
    /// Only patterns whose context has this domain.
    pub domain: Option<String>,
    /// Only patterns whose context has this language.
    pub language: Option<String>,
    /// Only patterns that worked at least this often (a fraction, 0.0 to 1.0).
    pub min_success_rate: Option<f32>,
    /// At most this many patterns.
    pub limit: Option<usize>,
}
