//! The tokio adapter.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::Runtime;

/// Runs the crate's timers, maintenance and blocking work on a tokio runtime.
///
/// The runtime needs its time driver (`enable_time`, or `enable_all`): a pool's builder refuses it
/// otherwise ([`ConfigError::Runtime`](crate::pool::ConfigError::Runtime)).
///
/// ```
/// use std::time::Duration;
/// use memory_storage_turso::rt::{Runtime, Tokio};
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let tokio = Tokio::from_handle(rt.handle().clone());
/// rt.block_on(tokio.sleep(Duration::from_millis(1)));
/// ```
#[derive(Debug, Clone)]
pub struct Tokio {
    handle: tokio::runtime::Handle,
}

impl Tokio {
    /// The runtime of the calling task.
    ///
    /// # Panics
    /// Outside a tokio runtime. Use [`Tokio::try_current`] or [`Tokio::from_handle`] there.
    pub fn current() -> Self {
        Self::from_handle(tokio::runtime::Handle::current())
    }

    /// The runtime of the calling task, or `None` outside one.
    pub fn try_current() -> Option<Self> {
        tokio::runtime::Handle::try_current()
            .ok()
            .map(Self::from_handle)
    }

    /// A given runtime, usable from any thread for the pool's timers, spawning and blocking work.
    /// (A remote database's calls, which go through libsql's HTTP client, must still run inside this
    /// runtime: in one of its tasks, or under `Handle::block_on`.)
    pub fn from_handle(handle: tokio::runtime::Handle) -> Self {
        Self { handle }
    }
}

impl Runtime for Tokio {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        // Entering the handle lets the timer register with this runtime even from a foreign thread.
        let _entered = self.handle.enter();
        tokio::time::sleep(duration)
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(future));
    }

    /// Work handed to a runtime that has shut down never starts there: it runs in place instead.
    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // The work stays reachable from here: a task the runtime cancels before it starts is dropped
        // with its closure, and the work would be lost with it.
        let work = Arc::new(Mutex::new(Some(work)));
        let task = {
            let work = work.clone();
            self.handle
                .spawn_blocking(move || take(&work).map(|work| work()))
        };
        async move {
            match task.await {
                Ok(Some(value)) => value,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Ok(None) | Err(_) => match take(&work) {
                    Some(work) => work(),
                    None => unreachable!("the blocking task took the work, so it ran it"),
                },
            }
        }
    }

    /// tokio has no query for its time driver, and making a timer without one panics: this makes one
    /// (the panic, if any, is caught, and printed by the panic hook; under `panic = "abort"` it
    /// aborts). It cannot tell a runtime that has shut down: keep the runtime running while its pools
    /// are in use.
    fn check_timers(&self) -> Result<(), String> {
        let _entered = self.handle.enter();
        std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).map_err(|_| {
            String::from(
                "the tokio runtime has no time driver, so async checkouts could not time out: build \
                 it with `enable_time()` or `enable_all()`",
            )
        })
    }
}

/// Takes the work out of its cell, once.
fn take<F>(work: &Mutex<Option<F>>) -> Option<F> {
    work.lock().unwrap_or_else(PoisonError::into_inner).take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_work_runs_in_place_once_the_runtime_is_gone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tokio = Tokio::from_handle(runtime.handle().clone());
        drop(runtime);
        assert_eq!(futures_lite::future::block_on(tokio.unblock(|| 6 * 7)), 42);
    }

    #[test]
    fn a_runtime_without_timers_is_found_out() {
        let timeless = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let error = Tokio::from_handle(timeless.handle().clone())
            .check_timers()
            .unwrap_err();
        assert!(error.contains("enable_time()"), "{error}");
        let timed = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        assert!(Tokio::from_handle(timed.handle().clone())
            .check_timers()
            .is_ok());
    }
}
