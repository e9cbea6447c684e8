//! Episodic-memory storage for libSQL and Turso: [`TursoStorage`] and [`ResilientStorage`], with the
//! domain model, URL and token checks, the schema, and resilience (retries and a circuit breaker).
//!
//! * [`TursoStorage`]: episodes, patterns and heuristics on a local file, in memory, or on a remote
//!   libSQL server or Turso database, on tokio, smol or plain threads ([`DefaultRuntime`]); built
//!   with [`TursoStorage::new`] or [`TursoStorage::builder`].
//! * [`ResilientStorage`]: the same methods, with retries of transient failures and a circuit
//!   breaker.
//! * [`model`]: [`Episode`], [`Pattern`], [`Heuristic`] and their parts, with the fields of the older
//!   crate, `serde`-serializable; [`EpisodeQuery`] and [`PatternQuery`].
//! * [`url`]: [`DatabaseTarget::parse`] checks a URL and token (secure schemes only, plain `http://`
//!   only to loopback, no blank tokens) into a local, in-memory or remote target; the token is an
//!   [`AuthToken`] that never prints.
//! * [`schema`]: the tables, indexes and forward migrations, as data.
//! * [`resilience`]: [`RetryPolicy`] (exponential backoff, full jitter, transient errors only) and
//!   [`CircuitBreaker`] (closed, open, half-open with bounded probes).
//! * [`TursoConfig`] and [`StorageError`].

mod builder;
mod codec;
mod config;
mod connections;
mod episodes;
mod error;
mod heuristics;
mod libsql_error;
mod migrate;
pub mod model;
mod patterns;
pub mod resilience;
mod resilient;
mod runtime;
pub mod schema;
mod transaction;
mod turso;
pub mod url;

pub use self::builder::TursoStorageBuilder;

pub use self::config::TursoConfig;
pub use self::error::{BoxError, DatabaseErrorKind, Result, SecurityError, StorageError};
pub use self::model::{
    now_millis, ComplexityLevel, Episode, EpisodeQuery, Evidence, ExecutionResult, ExecutionStep,
    Heuristic, OutcomeStats, Pattern, PatternQuery, Reflection, RewardScore, TaskContext,
    TaskOutcome, TaskType, UnknownTaskType,
};
pub use self::resilience::{
    BreakerConfig, BreakerPermit, BreakerState, BreakerStats, CircuitBreaker, CircuitOpen, Clock,
    RetryPolicy, SystemClock,
};
pub use self::resilient::ResilientStorage;
pub use self::runtime::DefaultRuntime;
pub use self::turso::{StorageStatistics, TursoStorage};
pub use self::url::{AuthToken, DatabaseTarget, MAX_URL_LEN};
