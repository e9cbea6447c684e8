//! Runtime adapters: timers, spawning and a blocking pool, behind cargo features.
//!
//! The pool core never names an executor. Everything it needs from one (a timer for async timeouts and a
//! place to run the optional maintenance task) goes through [`Runtime`]. Two adapters ship with the crate:
//!
//! | feature | adapter | timer | spawn | blocking pool |
//! |---|---|---|---|---|
//! | `tokio` | `Tokio` | `tokio::time::sleep` | `Handle::spawn` | `spawn_blocking` |
//! | `smol` | `Smol` | `async_io::Timer` | a blocking-pool thread | `blocking::unblock` |
//!
//! `Smol` also serves async-std and any other executor: its timer runs on async-io's own reactor thread.
//! Blocking callers need no adapter at all: their waits use deadlines, not timers.
//!
//! ```
//! # #[cfg(feature = "tokio")] {
//! use memory_storage_turso::rt::{Runtime, Tokio};
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! rt.block_on(async {
//!     let tokio = Tokio::current();
//!     let answer = tokio.unblock(|| 6 * 7).await;
//!     assert_eq!(answer, 42);
//! });
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

#[cfg(feature = "smol")]
mod smol;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "smol")]
pub use self::smol::Smol;
#[cfg(feature = "tokio")]
pub use self::tokio::Tokio;

/// A boxed, sendable future, as the type-erased runtime hands them out.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the crate needs from an async runtime.
///
/// Implement it to run the pool's timers and maintenance on an executor the crate does not ship an
/// adapter for.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static;

    /// Runs `future` in the background, detached.
    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static;

    /// Runs blocking work (a long query, a big batch) on the runtime's blocking pool, so that it does not
    /// stall the executor's worker threads. A panic inside `work` is resumed in the awaiting task.
    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static;

    /// Checks that [`sleep`](Self::sleep) works here. A pool's builder calls it once and refuses an
    /// adapter whose timers cannot run, since its async checkouts could then never time out. The
    /// default finds nothing wrong.
    ///
    /// # Errors
    /// What is missing, and how to add it.
    fn check_timers(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The object-safe part of [`Runtime`] that the pool keeps behind an `Arc<dyn _>`, so that `Pool<M>` stays
/// generic over the manager only.
pub(crate) trait DynRuntime: Send + Sync + 'static {
    fn sleep(&self, duration: Duration) -> BoxFuture<()>;
    fn spawn(&self, future: BoxFuture<()>);
    fn check_timers(&self) -> Result<(), String>;
}

impl<R: Runtime> DynRuntime for R {
    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(Runtime::sleep(self, duration))
    }

    fn spawn(&self, future: BoxFuture<()>) {
        Runtime::spawn(self, future)
    }

    fn check_timers(&self) -> Result<(), String> {
        Runtime::check_timers(self)
    }
}

/// The adapter for blocking use, with no executor: [`Runtime::unblock`] runs the work in place and
/// [`Runtime::sleep`] parks the polling thread.
///
/// It lets code that is generic over a runtime (such as the storage layer) run from plain threads with
/// `futures_lite::future::block_on`. Do not hand it to a pool that async tasks share: its sleep blocks the
/// thread that polls it.
///
/// ```
/// use memory_storage_turso::rt::{Blocking, Runtime};
/// let value = futures_lite::future::block_on(Blocking.unblock(|| 1 + 1));
/// assert_eq!(value, 2);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking;

// The futures must be `'static`, which an `async fn` capturing `&self` would not be.
#[allow(clippy::manual_async_fn)]
impl Runtime for Blocking {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        async move { std::thread::sleep(duration) }
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        std::thread::spawn(move || futures_lite::future::block_on(future));
    }

    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        async move { work() }
    }
}
