//! A guide to the crate: choosing a runtime, blocking use, lanes, remote databases and replicas, tuning,
//! and moving from the older crate's API. This module holds documentation only.
//!
//! # Choosing a runtime
//!
//! The pool core needs no executor. A runtime adapter adds two things: a timer for async checkouts
//! (their `connection_timeout`) and a place for the pool's background tasks (maintenance, and the task
//! that times out async waiters).
//!
//! | you run on | build the pool with | cargo features |
//! |---|---|---|
//! | tokio | `.runtime(Tokio::current())` | `tokio` (default) |
//! | smol, async-std, any other executor | `.runtime(Smol)` | `smol` (default) |
//! | plain threads | nothing; call `get_blocking()` | none |
//! | threads and tasks at once | the adapter of the tasks; threads call `get_blocking()` | |
//!
//! An async `get()` on a pool built without an adapter fails with `PoolError::NoRuntime` at once, every
//! time: a wait that could never time out is a configuration error, not a hang.
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use memory_storage_turso::pool::{Manager, Pool};
//! use memory_storage_turso::rt::Tokio;
//! # struct Unit;
//! # impl Manager for Unit {
//! #     type Connection = ();
//! #     type Error = std::convert::Infallible;
//! #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
//! let pool = Pool::builder(Unit)
//!     .runtime(Tokio::from_handle(runtime.handle().clone()))
//!     .build()
//!     .unwrap();
//! runtime.block_on(async { pool.get().await.unwrap() }); // a task
//! drop(pool.get_blocking().unwrap()); // a thread, on the same pool
//! # }
//! ```
//!
//! # Blocking use
//!
//! `get_blocking()` parks the thread (with the pool's timeout as its deadline) and needs no runtime;
//! `try_get()` never waits. Local libSQL calls complete on their first poll, so a thread runs them with
//! [`futures_lite::future::block_on`] (re-exported as `libsql::block_on`) and no executor. Apps built on
//! r2d2 can keep it: the `r2d2` feature implements `r2d2::ManageConnection` for libSQL files with the same
//! setup and reset rules.
//!
//! ```
//! # #[cfg(feature = "libsql")] {
//! use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
//!
//! let lanes = LanedPool::builder(LibsqlDatabase::open_memory().unwrap()).build().unwrap();
//! let writer = lanes.write_blocking().unwrap();
//! block_on(writer.execute("CREATE TABLE t(n INTEGER)", ())).unwrap();
//! # }
//! ```
//!
//! In async code, keep long local work (a big batch, a full scan) off the executor's threads with
//! `libsql::offload`, which runs it on the runtime's blocking pool (`spawn_blocking` on tokio, `unblock`
//! on smol).
//!
//! # Lanes
//!
//! SQLite takes one writer at a time. Several connections that all write fight over the file lock, and a
//! deferred transaction that reads and then writes can fail with `SQLITE_BUSY` even with a busy timeout.
//! `LanedPool` gives a local database one write lane with exactly one connection, whose transactions
//! begin `IMMEDIATE`, and a read lane of N connections opened `query_only`. Writers queue fairly in the
//! pool instead of at the file lock: 8 writers × 1,000 inserts finish with 0 errors, where a plain pool
//! with libsql's defaults saw hundreds of thousands of "database is locked" errors (`tests/libsql_lanes.rs`).
//! Send a single write statement through `execute()` (or `execute_blocking()`): concurrent callers'
//! statements are committed together in one transaction (a group commit), and each call returns once
//! its statement is committed. Use `write()` for transactions of several statements and `read()` for
//! the rest; `TursoStorage` does so itself. With 8 concurrent writers, `execute()` inserts 2 to 3 times
//! faster than a plain pool whose writers fight over SQLite's lock, where a checkout of the lane per
//! insert is slower than that pool: each turn on the lane is a hand-off to the next writer, and each
//! insert a commit of its own. The write lane runs the WAL checkpoints itself, after its connection
//! went back, so that no queued writer waits for one (`LanedPoolBuilder::checkpoint_after_changes`).
//!
//! # Remote databases and embedded replicas
//!
//! The `remote` feature adds `libsql://` and `https://` databases (and `http://` for loopback servers),
//! over libsql's HTTP client, which runs on tokio: a remote storage (or one over an embedded replica,
//! whose writes go to its primary) takes the `Tokio` adapter (the builder refuses another), and its
//! calls must run inside that runtime, built with `enable_all()` (a call from outside fails with a
//! `Config` error rather than a panic in the client). Remote databases need no lanes (the server orders
//! writes), so they get one pool; a health check costs a round trip (about 1.4 ms on loopback), which
//! is why it runs only on connections idle longer than `health_check_bypass`. Connections that come back
//! inside a transaction are closed rather than rolled back over the network. The `replica` feature adds
//! embedded replicas: a local file kept in sync with a remote primary (`LibsqlDatabase::open_replica`).
//! Tokens are never printed: `AuthToken`'s `Debug` and `Display` show `[redacted]`.
//!
//! # Tuning
//!
//! * **Pool size.** A local SQLite file gains little from more read connections than cores; remote
//!   databases from about as many as requests in flight. The write lane always has one.
//! * **`connection_timeout`** (5 s) bounds the whole checkout: waiting, opening and checking. A timeout
//!   error carries the pool's gauges and the last connect or health-check error, which is usually the
//!   real cause.
//! * **`busy_timeout`** (`ConnectionSetup::busy_timeout`, 5 s; libsql's own default is 0) is how long
//!   SQLite itself waits for a lock held by another connection or process.
//! * **`health_check_bypass`** (500 ms): connections used within it are not checked. Set it to zero to
//!   check every checkout (the older crate's behaviour, at a measurable cost). A use that ended on the
//!   fast path counts from its checkout, so a connection held longer than the window may be checked at
//!   its next checkout (`PoolConfig::idle_timeout` says more).
//! * **`min_idle`, `idle_timeout`, `max_lifetime`**: kept by the maintenance task (with a runtime
//!   adapter) and, lazily, at checkout and return. Lifetimes are jittered by up to 2.5 % so that
//!   connections opened together do not expire together.
//! * **`leak_detection_threshold`**: off by default; when set, `Pool::leaks()` and (with the `tracing`
//!   feature) a warning name the source line that has held a connection too long.
//!
//! # Moving from the older crate
//!
//! The older crate's names stay at the top level: `TursoStorage`, `TursoConfig`, `PoolConfig`,
//! `PoolStatistics`, `ConnectionPool`, `ResilientStorage`, `EpisodeQuery`, `PatternQuery`; their
//! signatures are unchanged (`tests/storage_compat.rs` runs code written for the older crate). What
//! changes underneath:
//!
//! * Connections are reused: a checkout no longer opens a connection and runs `SELECT 1`.
//! * A checkout's slot is held until its guard is dropped (the older storage gave its permit back before
//!   running the query, so the cap never held).
//! * `file:` and `:memory:` URLs open local databases (the older crate treated every URL as remote);
//!   plain `http://` is refused except for loopback hosts.
//! * `PoolStatistics` gained fields (idle, waiting, closed by reason, timeouts, ...), all read from the
//!   pool's own state; `PooledConnection::connection()` keeps its `Option` return type.
//! * Timestamps are stored in milliseconds and every field comes back exactly; heuristics keep their
//!   `created_at` and `updated_at`.
//! * The domain types (`Episode`, `Pattern`, `Heuristic`, ...) live in `storage` instead of a separate
//!   core crate: change their import path.
