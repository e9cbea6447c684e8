//! The synchronisation primitives of the pool's state, swapped for loom's models under `--cfg loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison: no user code ever runs while the pool's lock is held, so a poisoned lock
/// can only come from a bug in the pool itself, and the state it guards is still consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
