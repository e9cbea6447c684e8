//! [`ResilientStorage`]: a [`TursoStorage`] whose calls retry transient failures and go through a
//! circuit breaker.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::libsql::LaneStatistics;
use crate::pool::PoolStatistics;
use crate::rt::Runtime;

use super::error::{Result, StorageError};
use super::model::{Episode, EpisodeQuery, Heuristic, Pattern, PatternQuery};
use super::resilience::{
    BreakerConfig, BreakerState, BreakerStats, CircuitBreaker, Clock, RetryPolicy, SystemClock,
};
use super::runtime::DefaultRuntime;
use super::turso::{StorageStatistics, TursoStorage};

/// A [`TursoStorage`] with retries and a circuit breaker, and the same methods.
///
/// Each call of a storage method is one call through the [`CircuitBreaker`]:
///
/// 1. The breaker admits it, or refuses it at once with [`StorageError::CircuitOpen`] (open, or
///    half-open with all its probes in flight).
/// 2. The [`RetryPolicy`] of the storage's [`TursoConfig`](super::TursoConfig) runs it, and retries
///    transient errors only ([`StorageError::is_transient`]: busy or locked, network, timeout) after
///    a pause of exponential backoff with full jitter, on the storage's runtime timer. Constraint,
///    SQL, serialization and other errors return at once.
/// 3. The result settles the call in the breaker: a transient error that outlasted its retries is a
///    failure; anything else, errors included, shows a database that answers, and is a success.
///
/// `failure_threshold` failed calls in a row open the breaker; after `cool_down` it lets
/// `half_open_max_probes` calls through, and the first to finish closes it (success) or opens it
/// again (failure). [`health_check`](Self::health_check) reflects the breaker.
///
/// Stores are upserts and deletes of missing ids succeed, so a retried write never duplicates or
/// fails on what an earlier attempt did; a batch is one transaction, retried whole.
///
/// Cloning gives another handle to the same storage and breaker.
///
/// ```
/// use memory_storage_turso::rt::Blocking;
/// use memory_storage_turso::storage::{BreakerState, ResilientStorage, TursoStorage};
///
/// futures_lite::future::block_on(async {
///     let storage = TursoStorage::builder(":memory:", "").runtime(Blocking).build().await?;
///     let storage = ResilientStorage::new(storage);
///     storage.initialize_schema().await?;
///     assert!(storage.health_check().await?);
///     assert_eq!(storage.breaker_state(), BreakerState::Closed);
///     assert_eq!(storage.breaker_statistics().successful_calls, 2);
///     Ok::<_, memory_storage_turso::storage::StorageError>(())
/// })
/// .unwrap();
/// ```
pub struct ResilientStorage<R: Runtime = DefaultRuntime, C: Clock = SystemClock> {
    storage: TursoStorage<R>,
    retry: RetryPolicy,
    breaker: Arc<CircuitBreaker<C>>,
}

impl<R: Runtime, C: Clock> Clone for ResilientStorage<R, C> {
    fn clone(&self) -> Self {
        ResilientStorage {
            storage: self.storage.clone(),
            retry: self.retry,
            breaker: self.breaker.clone(),
        }
    }
}

impl<R: Runtime, C: Clock> std::fmt::Debug for ResilientStorage<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResilientStorage")
            .field("storage", &self.storage)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl<R: Runtime> ResilientStorage<R> {
    /// Wraps `storage` with a breaker of the default settings ([`BreakerConfig::default`]).
    pub fn new(storage: TursoStorage<R>) -> Self {
        let breaker = CircuitBreaker::new(BreakerConfig::default())
            .expect("the default breaker settings are valid");
        Self::from_breaker(storage, breaker)
    }

    /// Wraps `storage` with a breaker of `config`.
    ///
    /// # Errors
    /// [`StorageError::Config`] if `config` is invalid.
    pub fn with_breaker(storage: TursoStorage<R>, config: BreakerConfig) -> Result<Self> {
        Ok(Self::from_breaker(storage, CircuitBreaker::new(config)?))
    }
}

impl<R: Runtime, C: Clock> ResilientStorage<R, C> {
    /// Wraps `storage` with a breaker of `config` that reads the time from `clock` (tests use a fake
    /// one).
    ///
    /// # Errors
    /// [`StorageError::Config`] if `config` is invalid.
    pub fn with_breaker_and_clock(
        storage: TursoStorage<R>,
        config: BreakerConfig,
        clock: C,
    ) -> Result<Self> {
        Ok(Self::from_breaker(
            storage,
            CircuitBreaker::with_clock(config, clock)?,
        ))
    }

    fn from_breaker(storage: TursoStorage<R>, breaker: CircuitBreaker<C>) -> Self {
        ResilientStorage {
            retry: RetryPolicy::from(storage.config()),
            storage,
            breaker: Arc::new(breaker),
        }
    }

    /// The storage underneath, for calls without retries or breaker.
    pub fn storage(&self) -> &TursoStorage<R> {
        &self.storage
    }

    /// How calls are retried (from the storage's [`TursoConfig`](super::TursoConfig)).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The breaker's statistics: total, successful, failed and rejected calls, consecutive failures,
    /// and how often it opened.
    pub fn breaker_statistics(&self) -> BreakerStats {
        self.breaker.statistics()
    }

    /// Runs `operation` through the breaker with retries, as described on the type.
    async fn call<T, Op, Fut>(&self, operation: Op) -> Result<T>
    where
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.breaker
            .call(StorageError::is_transient, || {
                self.retry.retry(
                    self.storage.runtime(),
                    StorageError::is_transient,
                    operation,
                )
            })
            .await
    }

    /// Whether the database is usable, as far as the breaker knows: `Ok(false)` while the breaker
    /// refuses calls (without touching the database); otherwise one `SELECT 1` through the breaker,
    /// without retries (a half-open breaker takes it as a probe): `Ok(true)` if it answers,
    /// `Ok(false)` on a transient failure.
    ///
    /// # Errors
    /// A failure that is not transient (the check itself is broken).
    pub async fn health_check(&self) -> Result<bool> {
        let checked = self
            .breaker
            .call(StorageError::is_transient, || self.storage.health_check())
            .await;
        match checked {
            Ok(healthy) => Ok(healthy),
            Err(StorageError::CircuitOpen(_)) => Ok(false),
            Err(error) if error.is_transient() => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// [`TursoStorage::initialize_schema`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn initialize_schema(&self) -> Result<()> {
        self.call(|| self.storage.initialize_schema()).await
    }

    /// [`TursoStorage::get_statistics`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn get_statistics(&self) -> Result<StorageStatistics> {
        self.call(|| self.storage.get_statistics()).await
    }

    /// [`TursoStorage::pool_statistics`].
    pub async fn pool_statistics(&self) -> Option<PoolStatistics> {
        self.storage.pool_statistics().await
    }

    /// [`TursoStorage::pool_utilization`].
    pub async fn pool_utilization(&self) -> Option<f32> {
        self.storage.pool_utilization().await
    }

    /// [`TursoStorage::lane_statistics`].
    pub fn lane_statistics(&self) -> Option<LaneStatistics> {
        self.storage.lane_statistics()
    }

    /// [`TursoStorage::store_episode`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn store_episode(&self, episode: &Episode) -> Result<()> {
        self.call(|| self.storage.store_episode(episode)).await
    }

    /// [`TursoStorage::store_episodes`], with retries of the whole batch.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn store_episodes(&self, episodes: &[Episode]) -> Result<()> {
        self.call(|| self.storage.store_episodes(episodes)).await
    }

    /// [`TursoStorage::get_episode`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn get_episode(&self, episode_id: Uuid) -> Result<Option<Episode>> {
        self.call(|| self.storage.get_episode(episode_id)).await
    }

    /// [`TursoStorage::query_episodes`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn query_episodes(&self, query: &EpisodeQuery) -> Result<Vec<Episode>> {
        self.call(|| self.storage.query_episodes(query)).await
    }

    /// [`TursoStorage::query_episodes_since`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn query_episodes_since(&self, since: DateTime<Utc>) -> Result<Vec<Episode>> {
        self.call(|| self.storage.query_episodes_since(since)).await
    }

    /// [`TursoStorage::delete_episode`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn delete_episode(&self, episode_id: Uuid) -> Result<()> {
        self.call(|| self.storage.delete_episode(episode_id)).await
    }

    /// [`TursoStorage::store_pattern`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn store_pattern(&self, pattern: &Pattern) -> Result<()> {
        self.call(|| self.storage.store_pattern(pattern)).await
    }

    /// [`TursoStorage::get_pattern`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn get_pattern(&self, pattern_id: Uuid) -> Result<Option<Pattern>> {
        self.call(|| self.storage.get_pattern(pattern_id)).await
    }

    /// [`TursoStorage::query_patterns`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn query_patterns(&self, query: &PatternQuery) -> Result<Vec<Pattern>> {
        self.call(|| self.storage.query_patterns(query)).await
    }

    /// [`TursoStorage::store_heuristic`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn store_heuristic(&self, heuristic: &Heuristic) -> Result<()> {
        self.call(|| self.storage.store_heuristic(heuristic)).await
    }

    /// [`TursoStorage::get_heuristic`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn get_heuristic(&self, heuristic_id: Uuid) -> Result<Option<Heuristic>> {
        self.call(|| self.storage.get_heuristic(heuristic_id)).await
    }

    /// [`TursoStorage::get_heuristics`], with retries.
    ///
    /// # Errors
    /// As there, and [`StorageError::CircuitOpen`].
    pub async fn get_heuristics(&self, min_confidence: f32) -> Result<Vec<Heuristic>> {
        self.call(|| self.storage.get_heuristics(min_confidence))
            .await
    }
}
