//! What a checkout can fail with.

use std::fmt;
use std::time::Duration;

/// An error from a user hook; any error type converts into it with `?` or `.into()`.
pub type HookError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a checkout failed. `E` is the manager's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError<E> {
    /// No connection became available within `connection_timeout`.
    #[error(transparent)]
    Timeout(Box<TimeoutError>),
    /// The pool was closed (by `close`, `shutdown`, or dropping its last handle) before or while waiting.
    #[error("the pool is closed: it was shut down, or its last handle was dropped")]
    Closed,
    /// The manager could not open a connection.
    #[error("could not open a connection: {0}")]
    Connect(#[source] E),
    /// A hook (after connect, on checkout) failed or panicked. The connection was closed.
    #[error("a pool hook failed, and its connection was closed: {0}")]
    Hook(#[source] HookError),
    /// An async checkout on a pool without a runtime adapter, which could not time out.
    #[error(
        "an async get needs a runtime adapter to enforce connection_timeout: build the pool with \
         `.runtime(Tokio::current())` (feature \"tokio\") or `.runtime(Smol)` (feature \"smol\"), \
         or call get_blocking() from a thread"
    )]
    NoRuntime,
}

impl<E> PoolError<E> {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, PoolError::Timeout(_))
    }

    /// Whether the pool was closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PoolError::Closed)
    }
}

/// The gauges of a pool at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolState {
    /// Open connections plus those being opened: `idle + in_use + connecting`.
    pub size: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Slots held by callers: checked out, or being checked before hand-over.
    pub in_use: usize,
    /// Slots reserved by a caller that is opening a connection.
    pub connecting: usize,
    /// Callers queued for a connection.
    pub waiting: usize,
    /// The pool's current maximum size.
    pub max_size: usize,
}

impl fmt::Display for PoolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "size {}/{}, idle {}, in use {}, connecting {}, waiting {}",
            self.size, self.max_size, self.idle, self.in_use, self.connecting, self.waiting
        )
    }
}

/// The details of a checkout timeout: how long it waited, what the pool looked like, and the last
/// connect or validation error the pool saw (often the real cause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutError {
    /// How long the caller waited.
    pub waited: Duration,
    /// The pool's gauges when the wait ended.
    pub state: PoolState,
    /// The last error from `connect` or `validate`, if any.
    pub last_error: Option<String>,
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for a connection ({}); raise connection_timeout or \
             max_connections, or return connections sooner",
            self.waited, self.state
        )?;
        if let Some(error) = &self.last_error {
            write!(f, "; last connection error: {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for TimeoutError {}
