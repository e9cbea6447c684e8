//! Observability: the one place where the pool reports what it does, as `tracing` spans and events
//! (feature `tracing`) and as `metrics` (feature `metrics`). The public side (names, levels, labels) is
//! documented in [`crate::pool`]'s module docs.
//!
//! The pool calls an [`Observer`] at the few points where something happens: a checkout is done, a
//! connection is opened, validated, returned or closed, a wait times out, a leak is found. Those methods
//! are `#[inline]` and compile to nothing when both features are off, and [`Span`] is then a zero-sized
//! type, so the pool's fast path does no extra work. With the features on:
//!
//! * spans and events cost one check of `tracing`'s level filter unless a subscriber wants them, so a
//!   fast-path checkout creates no span by default (`acquire` and `return` are `TRACE` spans). An async
//!   checkout enters its span around the steps that report and wraps only its slow part in it
//!   ([`Span::instrument`]), since wrapping the whole checkout future would cost every checkout a move
//!   of that future (measured: about 25 ns of a 170 ns checkout);
//! * counters and the wait histogram are handles registered once, when the pool is built, so recording
//!   is one call on a handle (a branch when no recorder is installed);
//! * gauges are not touched on the hot path at all: they are sampled from the gate's state (see
//!   [`Observer::publish`]).
//!
//! Subscribers and recorders are user code, so nothing here is ever called with the pool's lock held:
//! leak reports found under the lock travel in `Effects` as [`Notes`] and are emitted after it.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::pool::PoolState;

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "tracing")]
mod trace;

use crate::pool::CloseReason;

/// The per-pool observer: the pool's name, and its metric handles.
pub(crate) struct Observer {
    name: Arc<str>,
    #[cfg(feature = "metrics")]
    metrics: metrics::PoolMetrics,
}

impl Observer {
    /// An observer for the pool `name`; registers its metrics with the current recorder.
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            #[cfg(feature = "metrics")]
            metrics: metrics::PoolMetrics::register(&name),
            name,
        }
    }

    /// The pool's name: the `pool` label of its metrics and the `pool` field of its spans.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The span of one checkout, from the call to the hand-over; its wait is recorded by
    /// [`checked_out`](Self::checked_out).
    #[inline]
    pub(crate) fn acquire_span(&self) -> Span {
        Span {
            #[cfg(feature = "tracing")]
            inner: trace::acquire(&self.name),
        }
    }

    /// The span of opening a connection (connect and the `after_connect` hook).
    #[inline]
    pub(crate) fn create_span(&self) -> Span {
        Span {
            #[cfg(feature = "tracing")]
            inner: trace::create(&self.name),
        }
    }

    /// The span of a health check.
    #[inline]
    pub(crate) fn validate_span(&self) -> Span {
        Span {
            #[cfg(feature = "tracing")]
            inner: trace::validate(&self.name),
        }
    }

    /// The span of a check-in: `is_broken`, `reset`, the `on_return` hook, and the return to the pool.
    #[inline]
    pub(crate) fn return_span(&self) -> Span {
        Span {
            #[cfg(feature = "tracing")]
            inner: trace::check_in(&self.name),
        }
    }

    /// The span of closing one connection.
    #[inline]
    pub(crate) fn close_span(&self, reason: CloseReason) -> Span {
        #[cfg(not(feature = "tracing"))]
        let _ = reason;
        Span {
            #[cfg(feature = "tracing")]
            inner: trace::close(&self.name, reason_label(reason)),
        }
    }

    /// A checkout was handed over after `waited` (zero on the fast path).
    #[inline]
    pub(crate) fn checked_out(&self, span: &Span, waited: Duration) {
        #[cfg(feature = "tracing")]
        span.inner.record("wait_us", trace::micros(waited));
        #[cfg(feature = "metrics")]
        self.metrics.checked_out(waited);
        let _ = (span, waited);
    }

    /// A checkout gave up after `waited`, with the pool in `state`.
    #[inline]
    pub(crate) fn timed_out(&self, waited: Duration, state: &PoolState, last_error: Option<&str>) {
        #[cfg(feature = "tracing")]
        trace::timed_out(&self.name, waited, state, last_error);
        #[cfg(feature = "metrics")]
        self.metrics.timeouts.increment(1);
        let _ = (waited, state, last_error);
    }

    /// A connection was opened.
    #[inline]
    pub(crate) fn created(&self) {
        #[cfg(feature = "metrics")]
        self.metrics.created.increment(1);
    }

    /// Opening a connection failed.
    #[inline]
    pub(crate) fn connect_failed(&self, error: &dyn std::fmt::Display) {
        #[cfg(feature = "tracing")]
        trace::connect_failed(&self.name, error);
        #[cfg(feature = "metrics")]
        self.metrics.connect_failures.increment(1);
        let _ = error;
    }

    /// A health check passed (`None`) or failed with `error`.
    #[inline]
    pub(crate) fn health_checked(&self, error: Option<&str>) {
        #[cfg(feature = "tracing")]
        if let Some(error) = error {
            trace::health_check_failed(&self.name, error);
        }
        #[cfg(feature = "metrics")]
        self.metrics.health_checked(error.is_none());
        let _ = error;
    }

    /// A connection is being closed for `reason` (inside its close span).
    #[inline]
    pub(crate) fn closed(&self, reason: CloseReason) {
        #[cfg(feature = "tracing")]
        if reason == CloseReason::Broken {
            trace::broken(&self.name);
        }
        #[cfg(feature = "metrics")]
        self.metrics.closed[reason as usize].increment(1);
        let _ = reason;
    }

    /// Publishes the gauges from `gauges`, a snapshot of the gate's state. Publications are serialized, so
    /// a later snapshot is never overwritten by an earlier one. Must be called without the pool's lock.
    #[inline]
    pub(crate) fn publish(&self, gauges: impl FnOnce() -> PoolState) {
        #[cfg(feature = "metrics")]
        self.metrics.publish(gauges);
        #[cfg(not(feature = "metrics"))]
        let _ = gauges;
    }

    /// Emits the reports gathered under the lock.
    #[inline]
    pub(crate) fn emit(&self, notes: Notes) {
        #[cfg(feature = "tracing")]
        for note in notes.0 {
            match note {
                Note::Leak { caller, held_for } => trace::leak(&self.name, caller, held_for),
                Note::LeakReturned { caller, held_for } => {
                    trace::leak_returned(&self.name, caller, held_for)
                }
            }
        }
        let _ = notes;
    }
}

/// A span of the pool's work: a `tracing` span with the feature, a zero-sized nothing without it.
#[derive(Clone)]
pub(crate) struct Span {
    #[cfg(feature = "tracing")]
    inner: tracing::Span,
}

impl Span {
    /// Enters the span until the guard is dropped (for threads; futures use [`instrument`](Self::instrument)).
    #[inline]
    pub(crate) fn enter(&self) -> Entered<'_> {
        Entered {
            #[cfg(feature = "tracing")]
            _inner: self.inner.enter(),
            _span: std::marker::PhantomData,
        }
    }

    /// Runs `f` inside the span.
    #[inline]
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _entered = self.enter();
        f()
    }

    /// Runs `future` inside the span: entered on every poll.
    #[inline]
    pub(crate) fn instrument<F: Future>(self, future: F) -> impl Future<Output = F::Output> {
        #[cfg(feature = "tracing")]
        return tracing::Instrument::instrument(future, self.inner);
        #[cfg(not(feature = "tracing"))]
        future
    }
}

/// An entered [`Span`]; leaves it when dropped.
#[must_use = "the span is left when the guard is dropped"]
pub(crate) struct Entered<'a> {
    #[cfg(feature = "tracing")]
    _inner: tracing::span::Entered<'a>,
    _span: std::marker::PhantomData<&'a Span>,
}

/// Reports found under the pool's lock, emitted by [`Observer::emit`] once it is released. Without the
/// `tracing` feature there is nothing to report, and this is a zero-sized type that is always empty.
#[derive(Default)]
pub(crate) struct Notes(#[cfg(feature = "tracing")] Vec<Note>);

impl Notes {
    /// A connection has been held longer than the leak-detection threshold.
    #[inline]
    pub(crate) fn leak(&mut self, caller: &'static Location<'static>, held_for: Duration) {
        #[cfg(feature = "tracing")]
        self.0.push(Note::Leak { caller, held_for });
        let _ = (caller, held_for);
    }

    /// A connection reported as a suspected leak has come back.
    #[inline]
    pub(crate) fn leak_returned(&mut self, caller: &'static Location<'static>, held_for: Duration) {
        #[cfg(feature = "tracing")]
        self.0.push(Note::LeakReturned { caller, held_for });
        let _ = (caller, held_for);
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(feature = "tracing")]
        return self.0.is_empty();
        #[cfg(not(feature = "tracing"))]
        true
    }
}

#[cfg(feature = "tracing")]
enum Note {
    Leak {
        caller: &'static Location<'static>,
        held_for: Duration,
    },
    LeakReturned {
        caller: &'static Location<'static>,
        held_for: Duration,
    },
}

/// The `reason` label of a close.
#[cfg_attr(not(any(feature = "tracing", feature = "metrics")), allow(dead_code))]
pub(crate) fn reason_label(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::Broken => "broken",
        CloseReason::IdleTimeout => "idle_timeout",
        CloseReason::MaxLifetime => "max_lifetime",
        CloseReason::HealthCheck => "health_check",
        CloseReason::Retired => "retired",
    }
}
