//! Episodic-memory storage for libSQL and Turso: the domain model, URL and token checks, the schema,
//! and resilience (retries and a circuit breaker).
//!
//! * [`model`]: [`Episode`], [`Pattern`], [`Heuristic`] and their parts, with the fields of the older
//!   crate, `serde`-serializable; [`EpisodeQuery`] and [`PatternQuery`].
//! * [`url`]: [`DatabaseTarget::parse`] checks a URL and token (secure schemes only, plain `http://`
//!   only to loopback, no blank tokens) into a local, in-memory or remote target; the token is an
//!   [`AuthToken`] that never prints.
//! * [`schema`]: the tables, indexes and forward migrations, as data.
//! * [`resilience`]: [`RetryPolicy`] (exponential backoff, full jitter, transient errors only) and
//!   [`CircuitBreaker`] (closed, open, half-open with bounded probes).
//! * [`TursoConfig`] and [`StorageError`].

mod config;
mod error;
pub mod model;
pub mod resilience;
pub mod schema;
pub mod url;

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
pub use self::url::{AuthToken, DatabaseTarget, MAX_URL_LEN};
