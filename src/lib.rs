//! A runtime-agnostic, sync-first connection pool for libSQL and Turso.
//!
//! Start with the [`guide`]: choosing a runtime, blocking use, lanes, remote databases, tuning, and
//! moving from the older crate's API.
//!
//! * [`pool`]: the generic core, `Pool<M: Manager>`, for threads and any async executor at once.
//! * [`rt`]: runtime adapters (features `tokio` and `smol`) for async timeouts and maintenance.
//! * `libsql`: the libSQL manager, write and read lanes, the statement cache, the older crate's
//!   `ConnectionPool`, and the r2d2 facade (feature `libsql`, on by default).
//! * `storage`: `TursoStorage`, episodic memory (episodes, patterns, heuristics) on the pool, with
//!   retries and a circuit breaker in `ResilientStorage` (feature `libsql`).
//!
//! Features `tracing` (spans and events) and `metrics` (gauges, counters and a wait histogram on the
//! `metrics` facade) make the pool observable; both are off by default and cost nothing then. The span,
//! event and metric names are listed under [Observability](pool#observability).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod guide;
#[cfg(feature = "libsql")]
pub mod libsql;
mod observe;
pub mod pool;
pub mod rt;
#[cfg(feature = "libsql")]
pub mod storage;
mod sync;

// The older crate's top-level names, so that its users' imports keep working.
#[cfg(feature = "libsql")]
pub use crate::libsql::ConnectionPool;
pub use crate::pool::{PoolConfig, PoolStatistics};
#[cfg(feature = "libsql")]
pub use crate::storage::{
    EpisodeQuery, PatternQuery, ResilientStorage, StorageStatistics, TursoConfig, TursoStorage,
};
