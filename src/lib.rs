//! A runtime-agnostic, sync-first connection pool for libSQL and Turso.
//!
//! * [`pool`]: the generic core, `Pool<M: Manager>`, for threads and any async executor at once.
//! * [`rt`]: runtime adapters (features `tokio` and `smol`) for async timeouts and maintenance.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod pool;
pub mod rt;
#[cfg(feature = "libsql")]
pub mod storage;
mod sync;
mod trace;
