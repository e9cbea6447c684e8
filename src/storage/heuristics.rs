//! Heuristics: store, get, list by confidence.
//!
//! Every field has its own column (the evidence as JSON), `created_at` and `updated_at` included,
//! which the older crate lost. Lists put the most confident first (`confidence` descending, then
//! `heuristic_id` ascending).

use uuid::Uuid;

use crate::rt::Runtime;

use super::codec::{finite, from_json, from_text, millis, not_nan, text, timestamp, to_json};
use super::error::Result;
use super::model::Heuristic;
use super::turso::TursoStorage;

const UPSERT: &str = "\
INSERT INTO heuristics (heuristic_id, condition, action, confidence, evidence, created_at, \
updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
ON CONFLICT (heuristic_id) DO UPDATE SET condition = excluded.condition, \
action = excluded.action, confidence = excluded.confidence, evidence = excluded.evidence, \
created_at = excluded.created_at, updated_at = excluded.updated_at";

const SELECT_BY_ID: &str = "\
SELECT heuristic_id, CAST(condition AS BLOB), CAST(action AS BLOB), confidence, evidence, \
created_at, updated_at FROM heuristics WHERE heuristic_id = ?1";

const SELECT_CONFIDENT: &str = "\
SELECT heuristic_id, CAST(condition AS BLOB), CAST(action AS BLOB), confidence, evidence, \
created_at, updated_at FROM heuristics WHERE confidence >= ?1 ORDER BY confidence DESC, heuristic_id";

impl<R: Runtime> TursoStorage<R> {
    /// Stores `heuristic`, replacing the one with the same id if there is one.
    ///
    /// # Errors
    /// [`StorageError::InvalidValue`](super::StorageError::InvalidValue) for a confidence or an
    /// evidence success rate that is NaN or infinite (nothing is written);
    /// [`StorageError::Serialization`](super::StorageError::Serialization) if the evidence cannot
    /// be JSON; a database error otherwise.
    pub async fn store_heuristic(&self, heuristic: &Heuristic) -> Result<()> {
        finite("heuristic confidence", heuristic.confidence)?;
        finite(
            "heuristic evidence success_rate",
            heuristic.evidence.success_rate,
        )?;
        let params = (
            heuristic.heuristic_id.to_string(),
            heuristic.condition.as_str(),
            heuristic.action.as_str(),
            f64::from(heuristic.confidence),
            to_json("heuristic evidence", &heuristic.evidence)?,
            millis(&heuristic.created_at),
            millis(&heuristic.updated_at),
        );
        self.execute_write(UPSERT, params).await?;
        Ok(())
    }

    /// The heuristic with id `heuristic_id`, or `None`.
    ///
    /// # Errors
    /// A database error, or a [`StorageError::Serialization`](super::StorageError::Serialization)
    /// if the stored row cannot be read back.
    pub async fn get_heuristic(&self, heuristic_id: Uuid) -> Result<Option<Heuristic>> {
        let mut conn = self.read_connection().await?;
        let mut rows = conn
            .query_cached(SELECT_BY_ID, [heuristic_id.to_string()])
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(read_heuristic(&row)?)),
            None => Ok(None),
        }
    }

    /// The heuristics with a confidence of at least `min_confidence`, most confident first.
    ///
    /// # Errors
    /// [`StorageError::InvalidValue`](super::StorageError::InvalidValue) for a NaN
    /// `min_confidence`; otherwise as [`get_heuristic`](Self::get_heuristic).
    pub async fn get_heuristics(&self, min_confidence: f32) -> Result<Vec<Heuristic>> {
        not_nan("min_confidence", Some(min_confidence))?;
        let mut conn = self.read_connection().await?;
        let mut rows = conn
            .query_cached(SELECT_CONFIDENT, [f64::from(min_confidence)])
            .await?;
        let mut heuristics = Vec::new();
        while let Some(row) = rows.next().await? {
            heuristics.push(read_heuristic(&row)?);
        }
        Ok(heuristics)
    }
}

/// A heuristic read back from the columns of `SELECT_*` (condition and action as BLOBs: see
/// [`text`]).
fn read_heuristic(row: &libsql::Row) -> Result<Heuristic> {
    Ok(Heuristic {
        heuristic_id: from_text("heuristic id", row.get::<String>(0)?)?,
        condition: text("heuristic condition", row.get::<Vec<u8>>(1)?)?,
        action: text("heuristic action", row.get::<Vec<u8>>(2)?)?,
        // A REAL written from an f32 reads back as that f32 exactly.
        confidence: row.get::<f64>(3)? as f32,
        evidence: from_json("heuristic evidence", &row.get::<String>(4)?)?,
        created_at: timestamp("heuristic created_at", row.get::<i64>(5)?)?,
        updated_at: timestamp("heuristic updated_at", row.get::<i64>(6)?)?,
    })
}
