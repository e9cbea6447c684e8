//! The smol adapter, which also serves async-std and other executors.

use std::future::Future;
use std::time::Duration;

use super::Runtime;

/// Runs the crate's timers on async-io and blocking work on the `blocking` thread pool, the two pieces
/// smol itself is made of.
///
/// None of these needs the caller to run inside a particular executor, so the same adapter works under
/// `smol::block_on`, async-std, or a hand-rolled executor. A background task (the pool's maintenance,
/// which mostly sleeps) gets a thread of the blocking pool, where `async_io::block_on` drives it; so the
/// adapter needs no executor of its own and does not pull in the `smol` crate.
///
/// ```
/// use std::time::Duration;
/// use memory_storage_turso::rt::{Runtime, Smol};
/// smol::block_on(async {
///     Smol.sleep(Duration::from_millis(1)).await;
///     assert_eq!(Smol.unblock(|| 2 + 2).await, 4);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Smol;

impl Runtime for Smol {
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        let timer = async_io::Timer::after(duration);
        async move {
            timer.await;
        }
    }

    fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        blocking::unblock(move || async_io::block_on(future)).detach();
    }

    fn unblock<T, F>(&self, work: F) -> impl Future<Output = T> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        blocking::unblock(work)
    }
}
