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
//!
//! # Errors from the database
//!
//! libSQL errors become [`StorageError::Database`] with a [`DatabaseErrorKind`], which decides what
//! [`ResilientStorage`] retries ([`StorageError::is_transient`]):
//!
//! | libSQL error | kind | retried |
//! |---|---|---|
//! | SQLite `SQLITE_BUSY` (5; extended codes such as 517, 261) | `Busy` | yes |
//! | SQLite `SQLITE_LOCKED` (6; extended codes such as 262) | `Locked` | yes |
//! | a checkout that outlasted `connection_timeout` | `Timeout` | yes |
//! | a write whose group commit was rolled back by another write of the group (`LibsqlError::NotCommitted`) | `NotCommitted` | yes |
//! | connecting failed; Hrana transport errors (HTTP failure, closed stream, HTTP 5xx) | `Network` | yes |
//! | SQLite `SQLITE_CONSTRAINT` (19; extended codes such as 1555, 2067, 1811) | `Constraint` | no |
//! | SQLite `SQLITE_ERROR` (1), `MISMATCH` (20), `RANGE` (25), syntax and parameter errors | `Sql` | no |
//! | a local file that cannot be opened (missing directory, no permission: `LibsqlError::OpenFile`) | `Other` | no |
//! | a remote error that names a SQLite code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT`, ...) | as that code | as that code |
//! | anything else (I/O, corruption, a closed pool, bad column types, HTTP 4xx) | `Other` | no |

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
