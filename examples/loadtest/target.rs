//! The systems under test: this crate's pool (lanes for local files, one pool for remote databases) and
//! the old design, behind one interface of point reads and writes.

use memory_storage_turso::libsql::{
    block_on, LanedPool, LibsqlError, LibsqlPool, LibsqlPooledConnection,
};

use memory_storage_turso::rt::Tokio;
use memory_storage_turso::storage::{
    Episode, ExecutionStep, StorageError, TaskContext, TaskType, TursoStorage,
};
use uuid::Uuid;

use crate::old_design::OldDesign;

const READ: &str = "SELECT value FROM kv WHERE id = ?1";
const WRITE: &str = "UPDATE kv SET value = ?1 WHERE id = ?2";

/// What a run goes through.
pub enum Target {
    /// A local database: a write lane and read lanes.
    Lanes(LanedPool),
    /// A remote database: one pool (the server orders writes).
    Pool(LibsqlPool),
    /// The older crate's design.
    Old(Box<OldDesign>),
    /// Episodic memory through `TursoStorage`.
    Storage(Box<StorageTarget>),
    /// Point operations and storage operations, half each.
    Mixed(Box<Target>, Box<StorageTarget>),
}

/// `TursoStorage` and the ids of the episodes stored before the run.
pub struct StorageTarget {
    pub storage: TursoStorage<Tokio>,
    pub ids: Vec<Uuid>,
}

impl StorageTarget {
    async fn read(&self, id: i64) -> Result<(), OpError> {
        let episode_id = self.ids[id as usize % self.ids.len()];
        let found = self
            .storage
            .get_episode(episode_id)
            .await
            .map_err(storage_kind)?;
        found
            .map(|_| ())
            .ok_or_else(|| "missing episode".to_string())
    }

    async fn write(&self, value: &str) -> Result<(), OpError> {
        self.storage
            .store_episode(&sample_episode(value))
            .await
            .map_err(storage_kind)
    }
}

/// An episode of realistic size: a context, a few steps with parameters.
pub fn sample_episode(description: &str) -> Episode {
    let context = TaskContext {
        language: Some("rust".into()),
        domain: "loadtest".into(),
        tags: vec!["pool".into(), "libsql".into()],
        ..TaskContext::default()
    };
    let mut episode = Episode::new(description.into(), context, TaskType::Testing);
    for n in 0..3 {
        let mut step =
            ExecutionStep::new(n + 1, "cargo".into(), format!("step {n} of {description}"));
        step.parameters = serde_json::json!({ "args": ["test", "--release"], "attempt": n });
        step.latency_ms = 12;
        episode.steps.push(step);
    }
    episode
}

fn storage_kind(error: StorageError) -> OpError {
    if error.is_transient() {
        format!("transient: {error}")
    } else {
        error.to_string()
    }
}

/// An operation's failure, by kind.
pub type OpError = String;

impl Target {
    /// Reads one row by primary key.
    pub async fn read(&self, id: i64) -> Result<(), OpError> {
        match self {
            Target::Lanes(lanes) => read_pooled(lanes.read().await.map_err(kind)?, id).await,
            Target::Pool(pool) => {
                read_pooled(pool.get().await.map_err(|e| kind(e.into()))?, id).await
            }
            Target::Old(old) => {
                let checked = old.get().await.map_err(kind)?;
                let mut rows = checked.conn.query(READ, [id]).await.map_err(libsql_kind)?;
                rows.next().await.map_err(libsql_kind)?;
                Ok(())
            }
            Target::Storage(storage) => storage.read(id).await,
            Target::Mixed(point, _) if fastrand::bool() => Box::pin(point.read(id)).await,
            Target::Mixed(_, storage) => storage.read(id).await,
        }
    }

    /// Updates one row by primary key.
    pub async fn write(&self, id: i64, value: &str) -> Result<(), OpError> {
        match self {
            Target::Lanes(lanes) => {
                lanes.execute(WRITE, (value, id)).await.map_err(kind)?;
                Ok(())
            }
            Target::Pool(pool) => {
                write_pooled(pool.get().await.map_err(|e| kind(e.into()))?, id, value).await
            }
            Target::Old(old) => {
                let checked = old.get().await.map_err(kind)?;
                checked
                    .conn
                    .execute(WRITE, (value, id))
                    .await
                    .map_err(libsql_kind)?;
                Ok(())
            }
            Target::Storage(storage) => storage.write(value).await,
            Target::Mixed(point, _) if fastrand::bool() => Box::pin(point.write(id, value)).await,
            Target::Mixed(_, storage) => storage.write(value).await,
        }
    }

    /// [`read`](Self::read) for threads: a blocking checkout, then the local query in place.
    pub fn read_blocking(&self, id: i64) -> Result<(), OpError> {
        match self {
            Target::Lanes(lanes) => block_on(read_pooled(lanes.read_blocking().map_err(kind)?, id)),
            Target::Pool(pool) => block_on(read_pooled(
                pool.get_blocking().map_err(|e| kind(e.into()))?,
                id,
            )),
            Target::Mixed(point, _) if fastrand::bool() => point.read_blocking(id),
            Target::Mixed(_, storage) => block_on(storage.read(id)),
            Target::Old(_) | Target::Storage(_) => block_on(self.read(id)),
        }
    }

    /// [`write`](Self::write) for threads.
    pub fn write_blocking(&self, id: i64, value: &str) -> Result<(), OpError> {
        match self {
            Target::Lanes(lanes) => {
                lanes.execute_blocking(WRITE, (value, id)).map_err(kind)?;
                Ok(())
            }
            Target::Pool(pool) => block_on(write_pooled(
                pool.get_blocking().map_err(|e| kind(e.into()))?,
                id,
                value,
            )),
            Target::Mixed(point, _) if fastrand::bool() => point.write_blocking(id, value),
            Target::Mixed(_, storage) => block_on(storage.write(value)),
            Target::Old(_) | Target::Storage(_) => block_on(self.write(id, value)),
        }
    }
}

async fn read_pooled(mut conn: LibsqlPooledConnection, id: i64) -> Result<(), OpError> {
    conn.query_row_cached(READ, [id], |row| row.get::<String>(0))
        .await
        .map_err(kind)?
        .ok_or_else(|| "missing row".to_string())?;
    Ok(())
}

async fn write_pooled(
    mut conn: LibsqlPooledConnection,
    id: i64,
    value: &str,
) -> Result<(), OpError> {
    conn.execute_cached(WRITE, (value, id))
        .await
        .map_err(kind)?;
    Ok(())
}

fn kind(error: LibsqlError) -> OpError {
    if error.is_locked() {
        "database is locked".into()
    } else if error.is_timeout() {
        "checkout timeout".into()
    } else {
        error.to_string()
    }
}

fn libsql_kind(error: libsql::Error) -> OpError {
    kind(LibsqlError::from(error))
}
