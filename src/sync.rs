//! The synchronisation primitives of the pool's state, swapped for loom's models under `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{current as current_thread, Thread};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::{current as current_thread, Thread};

/// Parks the calling thread until it is unparked or `deadline` passes (or spuriously: callers
/// re-check). Loom does not model time, so under loom this parks until unparked.
pub(crate) fn park_until(deadline: Option<std::time::Instant>) {
    #[cfg(loom)]
    {
        let _ = deadline;
        loom::thread::park();
    }
    #[cfg(not(loom))]
    match deadline {
        None => std::thread::park(),
        Some(deadline) => {
            std::thread::park_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        }
    }
}

/// Locks `mutex`, ignoring poison: no user code ever runs while the pool's lock is held, so a poisoned lock
/// can only come from a bug in the pool itself, and the state it guards is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
