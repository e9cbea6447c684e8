//! Episodes: store (one or a batch), get, query, delete.
//!
//! Queries list the newest first (`start_time` descending, then `episode_id` ascending for episodes
//! that started in the same millisecond). Every filter is a bound parameter, `NULL` meaning "no
//! filter", so one cached statement serves every combination.

use chrono::{DateTime, Utc};
use libsql::params::IntoParams;
use uuid::Uuid;

use crate::libsql::{block_on, offload, LibsqlConnection};
use crate::rt::Runtime;

use super::codec::{
    finite, from_json, from_optional_json, from_text, limit, millis, shallow, text, timestamp,
    to_json, to_optional_json,
};
use super::error::Result;
use super::model::{Episode, EpisodeQuery};
use super::transaction;
use super::turso::TursoStorage;

const UPSERT: &str = "\
INSERT INTO episodes (episode_id, task_type, task_description, context, domain, language, \
start_time, end_time, steps, outcome, reward, reflection, patterns, metadata) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
ON CONFLICT (episode_id) DO UPDATE SET task_type = excluded.task_type, \
task_description = excluded.task_description, context = excluded.context, \
domain = excluded.domain, language = excluded.language, start_time = excluded.start_time, \
end_time = excluded.end_time, steps = excluded.steps, outcome = excluded.outcome, \
reward = excluded.reward, reflection = excluded.reflection, patterns = excluded.patterns, \
metadata = excluded.metadata";

const SELECT_BY_ID: &str = "\
SELECT episode_id, task_type, CAST(task_description AS BLOB), context, start_time, end_time, steps, \
outcome, reward, reflection, patterns, metadata FROM episodes WHERE episode_id = ?1";

const SELECT_MATCHING: &str = "\
SELECT episode_id, task_type, CAST(task_description AS BLOB), context, start_time, end_time, steps, \
outcome, reward, reflection, patterns, metadata FROM episodes \
WHERE (?1 IS NULL OR task_type = ?1) AND (?2 IS NULL OR domain = ?2) \
AND (?3 IS NULL OR language = ?3) AND (?4 = 0 OR completed = 1) \
ORDER BY start_time DESC, episode_id LIMIT ?5";

const SELECT_SINCE: &str = "\
SELECT episode_id, task_type, CAST(task_description AS BLOB), context, start_time, end_time, steps, \
outcome, reward, reflection, patterns, metadata FROM episodes WHERE start_time >= ?1 \
ORDER BY start_time DESC, episode_id";

const DELETE: &str = "DELETE FROM episodes WHERE episode_id = ?1";

impl<R: Runtime> TursoStorage<R> {
    /// Stores `episode`, replacing the one with the same id if there is one.
    ///
    /// # Errors
    /// [`StorageError::InvalidValue`](super::StorageError::InvalidValue) for a reward score that is
    /// NaN or infinite (nothing is written);
    /// [`StorageError::Serialization`](super::StorageError::Serialization) if a value cannot be
    /// written as JSON; a database error otherwise.
    pub async fn store_episode(&self, episode: &Episode) -> Result<()> {
        let row = EpisodeRow::new(episode)?;
        self.execute_write(UPSERT, row.params()).await?;
        Ok(())
    }

    /// Stores every episode of `episodes` in one transaction: all of them or, on error, none.
    /// Duplicate ids replace earlier ones, as in [`store_episode`](Self::store_episode). A local
    /// batch of [`OFFLOAD_BATCH_SIZE`](Self::OFFLOAD_BATCH_SIZE) or more runs on the runtime's
    /// blocking pool.
    ///
    /// # Errors
    /// As [`store_episode`](Self::store_episode); nothing is stored then.
    pub async fn store_episodes(&self, episodes: &[Episode]) -> Result<()> {
        let rows = episodes
            .iter()
            .map(EpisodeRow::new)
            .collect::<Result<Vec<_>>>()?;
        let mut conn = self.write_connection().await?;
        if self.is_local() && rows.len() >= Self::OFFLOAD_BATCH_SIZE {
            offload(self.runtime(), conn, move |conn| {
                block_on(upsert_in_transaction(conn, &rows))
            })
            .await
        } else {
            upsert_in_transaction(&mut conn, &rows).await
        }
    }

    /// The episode with id `episode_id`, or `None`.
    ///
    /// # Errors
    /// A database error, or a [`StorageError::Serialization`](super::StorageError::Serialization)
    /// if the stored row cannot be read back.
    pub async fn get_episode(&self, episode_id: Uuid) -> Result<Option<Episode>> {
        let mut conn = self.read_connection().await?;
        let mut rows = conn
            .query_cached(SELECT_BY_ID, [episode_id.to_string()])
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(read_episode(&row)?)),
            None => Ok(None),
        }
    }

    /// The episodes that match every filter of `query`, newest first, at most `query.limit` of them.
    ///
    /// # Errors
    /// As [`get_episode`](Self::get_episode).
    pub async fn query_episodes(&self, query: &EpisodeQuery) -> Result<Vec<Episode>> {
        let params = (
            query.task_type.map(|task_type| task_type.as_str()),
            query.domain.as_deref(),
            query.language.as_deref(),
            query.completed_only,
            limit(query.limit),
        );
        let mut conn = self.read_connection().await?;
        read_episodes(&mut conn, SELECT_MATCHING, params).await
    }

    /// The episodes that started at `since` or later, newest first.
    ///
    /// # Errors
    /// As [`get_episode`](Self::get_episode).
    pub async fn query_episodes_since(&self, since: DateTime<Utc>) -> Result<Vec<Episode>> {
        let mut conn = self.read_connection().await?;
        read_episodes(&mut conn, SELECT_SINCE, [millis(&since)]).await
    }

    /// Deletes the episode with id `episode_id`. Deleting an id that is not stored succeeds and
    /// changes nothing.
    ///
    /// # Errors
    /// A database error.
    pub async fn delete_episode(&self, episode_id: Uuid) -> Result<()> {
        self.execute_write(DELETE, [episode_id.to_string()]).await?;
        Ok(())
    }
}

/// An episode in its stored form, serialized before a connection is checked out.
struct EpisodeRow {
    episode_id: String,
    task_type: &'static str,
    task_description: String,
    context: String,
    domain: String,
    language: Option<String>,
    start_time: i64,
    end_time: Option<i64>,
    steps: String,
    outcome: Option<String>,
    reward: Option<String>,
    reflection: Option<String>,
    patterns: String,
    metadata: String,
}

impl EpisodeRow {
    fn new(episode: &Episode) -> Result<Self> {
        if let Some(reward) = &episode.reward {
            for (field, value) in [
                ("episode reward total", reward.total),
                ("episode reward base", reward.base),
                ("episode reward efficiency", reward.efficiency),
                ("episode reward complexity_bonus", reward.complexity_bonus),
                (
                    "episode reward quality_multiplier",
                    reward.quality_multiplier,
                ),
                ("episode reward learning_bonus", reward.learning_bonus),
            ] {
                finite(field, value)?;
            }
        }
        for step in &episode.steps {
            shallow("episode step parameters", &step.parameters)?;
        }
        Ok(EpisodeRow {
            episode_id: episode.episode_id.to_string(),
            task_type: episode.task_type.as_str(),
            task_description: episode.task_description.clone(),
            context: to_json("episode context", &episode.context)?,
            domain: episode.context.domain.clone(),
            language: episode.context.language.clone(),
            start_time: millis(&episode.start_time),
            end_time: episode.end_time.as_ref().map(millis),
            steps: to_json("episode steps", &episode.steps)?,
            outcome: to_optional_json("episode outcome", episode.outcome.as_ref())?,
            reward: to_optional_json("episode reward", episode.reward.as_ref())?,
            reflection: to_optional_json("episode reflection", episode.reflection.as_ref())?,
            patterns: to_json("episode patterns", &episode.patterns)?,
            metadata: to_json("episode metadata", &episode.metadata)?,
        })
    }

    /// The values of [`UPSERT`]'s placeholders.
    fn params(&self) -> impl libsql::params::IntoParams + '_ {
        (
            self.episode_id.as_str(),
            self.task_type,
            self.task_description.as_str(),
            self.context.as_str(),
            self.domain.as_str(),
            self.language.as_deref(),
            self.start_time,
            self.end_time,
            self.steps.as_str(),
            self.outcome.as_deref(),
            self.reward.as_deref(),
            self.reflection.as_deref(),
            self.patterns.as_str(),
            self.metadata.as_str(),
        )
    }

    async fn upsert(&self, conn: &mut LibsqlConnection) -> Result<()> {
        conn.execute_cached(UPSERT, self.params()).await?;
        Ok(())
    }
}

/// Stores `rows` in one write transaction.
async fn upsert_in_transaction(conn: &mut LibsqlConnection, rows: &[EpisodeRow]) -> Result<()> {
    transaction::begin(conn).await?;
    let mut result = Ok(());
    for row in rows {
        result = row.upsert(conn).await;
        if result.is_err() {
            break;
        }
    }
    transaction::end(conn, result).await
}

/// Every episode `sql` (one of `SELECT_*`) finds.
async fn read_episodes(
    conn: &mut LibsqlConnection,
    sql: &str,
    params: impl IntoParams,
) -> Result<Vec<Episode>> {
    let mut rows = conn.query_cached(sql, params).await?;
    let mut episodes = Vec::new();
    while let Some(row) = rows.next().await? {
        episodes.push(read_episode(&row)?);
    }
    Ok(episodes)
}

/// An episode read back from the columns of `SELECT_*` (the description as a BLOB: see
/// [`text`]).
fn read_episode(row: &libsql::Row) -> Result<Episode> {
    Ok(Episode {
        episode_id: from_text("episode id", row.get::<String>(0)?)?,
        task_type: from_text("episode task type", row.get::<String>(1)?)?,
        task_description: text("episode task description", row.get::<Vec<u8>>(2)?)?,
        context: from_json("episode context", &row.get::<String>(3)?)?,
        start_time: timestamp("episode start time", row.get::<i64>(4)?)?,
        end_time: row
            .get::<Option<i64>>(5)?
            .map(|millis| timestamp("episode end time", millis))
            .transpose()?,
        steps: from_json("episode steps", &row.get::<String>(6)?)?,
        outcome: from_optional_json("episode outcome", row.get::<Option<String>>(7)?)?,
        reward: from_optional_json("episode reward", row.get::<Option<String>>(8)?)?,
        reflection: from_optional_json("episode reflection", row.get::<Option<String>>(9)?)?,
        patterns: from_json("episode patterns", &row.get::<String>(10)?)?,
        metadata: from_json("episode metadata", &row.get::<String>(11)?)?,
    })
}
