//! The tokio adapter.

use std::future::Future;
use std::time::Duration;

use super::Runtime;

/// Runs the crate's timers, maintenance and blocking work on a tokio runtime.
///
/// The runtime needs its time driver (`enable_time`, or `enable_all`).
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

    /// A given runtime, usable from any thread.
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

    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let task = self.handle.spawn_blocking(work);
        async move {
            match task.await {
                Ok(value) => value,
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                Err(error) => panic!("blocking task was cancelled by its runtime: {error}"),
            }
        }
    }
}
