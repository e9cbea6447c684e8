//! The crate's diagnostics, emitted through `tracing` when that feature is on and dropped otherwise.

use std::panic::Location;
use std::time::Duration;

/// A connection has been held longer than the leak-detection threshold.
pub(crate) fn leak(caller: &'static Location<'static>, held_for: Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "memory_storage_turso::pool",
        caller = %caller,
        held_for_ms = held_for.as_millis() as u64,
        "connection held longer than the leak detection threshold; it may have leaked"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (caller, held_for);
}

/// A connection reported as a suspected leak has come back.
pub(crate) fn leak_returned(caller: &'static Location<'static>, held_for: Duration) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        target: "memory_storage_turso::pool",
        caller = %caller,
        held_for_ms = held_for.as_millis() as u64,
        "a connection reported as leaked was returned"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (caller, held_for);
}
