//! The libSQL layer: a SQLite-aware [`Manager`](crate::pool::Manager) for every kind of libSQL
//! database, write and read lanes, a per-connection statement cache, the older crate's API, and an r2d2
//! facade.
//!
//! # Parts
//!
//! | type | what it is |
//! |---|---|
//! | [`LibsqlDatabase`] | which database: local file (WAL), in memory, remote (feature `remote`), embedded replica (feature `replica`) |
//! | [`ConnectionSetup`] | what each new connection gets: busy timeout 5 s, `foreign_keys`, `synchronous=NORMAL` under WAL, init SQL / hook |
//! | [`LibsqlManager`] | connect + setup, `SELECT 1` health check, `ROLLBACK` on return |
//! | [`LibsqlConnection`] | the pooled connection: derefs to `libsql::Connection`, adds the statement cache |
//! | [`OwnedConnection`] | a `libsql::Connection` that closes its SQLite handle once (libsql 0.9.30 closes it twice) |
//! | [`LanedPool`] | for local databases: one writer connection (`BEGIN IMMEDIATE`) and N `query_only` readers, with group commit for single-statement writes |
//! | [`ConnectionPool`], [`PooledConnection`] | the older crate's API, unchanged |
//! | `r2d2::LibsqlConnectionManager` | `r2d2::ManageConnection` (feature `r2d2`) |
//! | [`offload`] | runs heavy work on the runtime's blocking pool |
//!
//! # Design
//!
//! Connections are opened once and reused: opening one costs ~25–30 µs plus a schema parse of ~60–80 µs
//! at first use, against ~1.4 µs for a query on a warm connection and ~0.3 µs for a cached prepared
//! statement. The pool never health-checks on every checkout: `SELECT 1` runs only on connections idle
//! longer than `health_check_bypass` (500 ms).
//!
//! Local libSQL futures complete on their first poll, so the same connection serves async tasks and
//! plain threads ([`block_on`] drives them without an executor). Long work belongs on a blocking pool:
//! see [`offload`].
//!
//! **In memory**, `:memory:` would give each connection its own private database, and a shared-cache
//! URI reports table locks (`SQLITE_LOCKED`, 262) that no busy timeout waits for. This layer uses
//! SQLite's `memdb` VFS under a unique name (`file:/NAME?vfs=memdb`), which shares one database among
//! the pool's connections with ordinary, busy-timeout-aware locking; see [`LibsqlDatabase::open_memory`]
//! and the measurements in [`database`](LibsqlDatabase).
//!
//! # Per-connection state you must not leave behind
//!
//! A connection goes back to the pool with whatever session state its holder left, and the next holder
//! gets it. The pool rolls back an open transaction and resets cached statements, but it cannot see
//! the rest, which carries over:
//!
//! * `PRAGMA query_only`, `PRAGMA foreign_keys` and other connection PRAGMAs;
//! * the busy timeout (`Connection::busy_timeout`);
//! * TEMP tables, views and triggers;
//! * `ATTACH`ed databases;
//! * clones of the `libsql::Connection`, which are the same handle and keep it open.
//! * anything libSQL hands out that holds a clone of the handle: `libsql::Rows` from the connection's own
//!   `query` (a partly read one keeps a read snapshot open, so the next holder reads old data and
//!   checkpoints stall), `libsql::Statement`, and `libsql::Transaction` from the connection's own
//!   `transaction` (its commit or drop would act on the next holder's transaction). Use
//!   [`LibsqlConnection::query_cached`] and [`LibsqlConnection::transaction`], whose rows and
//!   transactions borrow the pooled connection and so cannot outlive it.
//!
//! Undo such changes before dropping the guard, or call [`LibsqlConnection::mark_broken`] so that the
//! pool closes the connection instead of reusing it.
//!
//! # Events
//!
//! Besides the pool's own spans and events (see [`crate::pool`]), this layer reports two problems as
//! `tracing` warnings (feature `tracing`), with targets under `memory_storage_turso::libsql`:
//!
//! | event | target | fields |
//! |---|---|---|
//! | `write lane: WAL checkpoint failed; ...` | `...::libsql::checkpoint` | `error` |
//! | `write lane: a group was not committed; ...` | `...::libsql::group_commit` | `statements`, `reason` |
//!
//! [`LaneStatistics`] has the matching counts: `checkpoints` (those that succeeded) and
//! `group_not_committed`.
//!
//! # Features
//!
//! `libsql` (default) brings this module with libsql's `core` only: no tokio, no HTTP stack. `remote`
//! adds `libsql/remote` and `libsql/tls` (without `tls`, libsql panics when a remote database is
//! built), `replica` adds embedded replicas, and `r2d2` the r2d2 facade.

mod checkpoint;
mod compat;
mod connection;
mod database;
mod error;
pub mod group_commit;
mod lanes;
mod manager;
mod offload;
mod owned;
#[cfg(feature = "r2d2")]
pub mod r2d2;
mod setup;
mod sql_text;
mod statement_cache;
mod transaction;

pub use checkpoint::DEFAULT_CHECKPOINT_AFTER_CHANGES;
pub use compat::{ConnectionPool, PooledConnection};
pub use connection::{CachedRow, CachedRows, CachedStatement, LibsqlConnection, TransactionMode};
pub use database::{DatabaseKind, LibsqlDatabase};
pub use error::{LibsqlError, Result, StatementProblem};
pub use lanes::{LaneStatistics, LanedPool, LanedPoolBuilder, DEFAULT_READERS};
pub use manager::LibsqlManager;
pub use offload::offload;
pub use owned::OwnedConnection;
pub use setup::{ConnectionSetup, InitHook};
pub use statement_cache::{StatementCacheStats, DEFAULT_STATEMENT_CACHE_CAPACITY};
pub use transaction::Transaction;

/// A pool of libSQL connections.
pub type LibsqlPool = crate::pool::Pool<LibsqlManager>;

/// A connection checked out of a [`LibsqlPool`]; derefs to [`LibsqlConnection`].
pub type LibsqlPooledConnection = crate::pool::PooledConnection<LibsqlManager>;

/// Drives a future to completion on this thread. Local libSQL futures complete on their first poll, so
/// this runs them with no executor (in threads, r2d2 code, hooks, or [`offload`]ed work).
///
/// ```
/// let value = memory_storage_turso::libsql::block_on(async { 40 + 2 });
/// assert_eq!(value, 42);
/// ```
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(future)
}
