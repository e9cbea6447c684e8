//! Patterns: store, get, query.
//!
//! A pattern is stored whole as JSON, with its kind, context domain and language, and success rate
//! in columns for the queries. Queries list the most successful first (`success_rate` descending,
//! then `pattern_id` ascending).

use uuid::Uuid;

use crate::rt::Runtime;

use super::codec::{finite, from_json, limit, millis, not_nan, to_json};
use super::error::Result;
use super::model::{now_millis, Pattern, PatternQuery};
use super::turso::TursoStorage;

const UPSERT: &str = "\
INSERT INTO patterns (pattern_id, pattern_type, data, context_domain, context_language, \
success_rate, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
ON CONFLICT (pattern_id) DO UPDATE SET pattern_type = excluded.pattern_type, \
data = excluded.data, context_domain = excluded.context_domain, \
context_language = excluded.context_language, success_rate = excluded.success_rate, \
updated_at = excluded.updated_at";

const SELECT_BY_ID: &str = "SELECT data FROM patterns WHERE pattern_id = ?1";

const SELECT_MATCHING: &str = "\
SELECT data FROM patterns \
WHERE (?1 IS NULL OR context_domain = ?1) AND (?2 IS NULL OR context_language = ?2) \
AND (?3 IS NULL OR success_rate >= ?3) \
ORDER BY success_rate DESC, pattern_id LIMIT ?4";

impl<R: Runtime> TursoStorage<R> {
    /// Stores `pattern`, replacing the one with the same id if there is one (which keeps its
    /// `created_at` column).
    ///
    /// # Errors
    /// [`StorageError::InvalidValue`](super::StorageError::InvalidValue) for a success rate or an
    /// average duration that is NaN or infinite (nothing is written);
    /// [`StorageError::Serialization`](super::StorageError::Serialization) if a value cannot be
    /// JSON; a database error otherwise.
    pub async fn store_pattern(&self, pattern: &Pattern) -> Result<()> {
        match pattern {
            Pattern::ToolSequence { success_rate, .. }
            | Pattern::ErrorRecovery { success_rate, .. }
            | Pattern::ContextPattern { success_rate, .. } => {
                finite("pattern success_rate", *success_rate)?;
            }
            Pattern::DecisionPoint { outcome_stats, .. } => finite(
                "pattern outcome_stats avg_duration_secs",
                outcome_stats.avg_duration_secs,
            )?,
        }
        let data = to_json("pattern", pattern)?;
        let context = pattern.context();
        let params = (
            pattern.id().to_string(),
            pattern.kind(),
            data,
            context.map(|context| context.domain.as_str()),
            context.and_then(|context| context.language.as_deref()),
            f64::from(pattern.success_rate()),
            millis(&now_millis()),
        );
        self.execute_write(UPSERT, params).await?;
        Ok(())
    }

    /// The pattern with id `pattern_id`, or `None`.
    ///
    /// # Errors
    /// A database error, or a [`StorageError::Serialization`](super::StorageError::Serialization)
    /// if the stored JSON cannot be read back.
    pub async fn get_pattern(&self, pattern_id: Uuid) -> Result<Option<Pattern>> {
        let mut conn = self.read_connection().await?;
        let data = conn
            .query_row_cached(SELECT_BY_ID, [pattern_id.to_string()], |row| {
                row.get::<String>(0)
            })
            .await?;
        data.map(|data| from_json("pattern", &data)).transpose()
    }

    /// The patterns that match every filter of `query`, most successful first, at most
    /// `query.limit` of them. A domain or language filter leaves out context patterns, which have
    /// no task context.
    ///
    /// # Errors
    /// [`StorageError::InvalidValue`](super::StorageError::InvalidValue) for a NaN
    /// `min_success_rate`; otherwise as [`get_pattern`](Self::get_pattern).
    pub async fn query_patterns(&self, query: &PatternQuery) -> Result<Vec<Pattern>> {
        not_nan("pattern query min_success_rate", query.min_success_rate)?;
        let params = (
            query.domain.as_deref(),
            query.language.as_deref(),
            query.min_success_rate.map(f64::from),
            limit(query.limit),
        );
        let mut conn = self.read_connection().await?;
        let mut rows = conn.query_cached(SELECT_MATCHING, params).await?;
        let mut patterns = Vec::new();
        while let Some(row) = rows.next().await? {
            patterns.push(from_json("pattern", &row.get::<String>(0)?)?);
        }
        Ok(patterns)
    }
}
