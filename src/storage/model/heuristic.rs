//! A learned rule of thumb: [`Heuristic`] and the [`Evidence`] behind it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::now_millis;

/// "When `condition`, do `action`", with a confidence and the evidence for it.
///
/// ```
/// use memory_storage_turso::storage::Heuristic;
///
/// let heuristic = Heuristic::new("a test is flaky".into(), "look for shared state".into(), 0.7);
/// assert_eq!(heuristic.created_at, heuristic.updated_at);
/// assert_eq!(heuristic.evidence.sample_size, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heuristic {
    /// Unique id.
    pub heuristic_id: Uuid,
    /// When the rule applies.
    pub condition: String,
    /// What it recommends.
    pub action: String,
    /// How sure we are, from 0.0 to 1.0.
    pub confidence: f32,
    /// What supports it.
    pub evidence: Evidence,
    /// When it was first learned.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Heuristic {
    /// A new heuristic with a random id, no evidence yet, created now (to the millisecond).
    pub fn new(condition: String, action: String, confidence: f32) -> Self {
        let now = now_millis();
        Heuristic {
            heuristic_id: Uuid::new_v4(),
            condition,
            action,
            confidence,
            evidence: Evidence {
                episode_ids: Vec::new(),
                success_rate: 0.0,
                sample_size: 0,
            },
            created_at: now,
            updated_at: now,
        }
    }
}

/// The episodes behind a heuristic, and how often following it worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Ids of the supporting episodes.
    pub episode_ids: Vec<Uuid>,
    /// How often following the heuristic worked, from 0.0 to 1.0.
    pub success_rate: f32,
    /// How many episodes were looked at.
    pub sample_size: usize,
}
