//! Spans and events through the `tracing` facade (feature `tracing`), all with target
//! [`TARGET`] and a `pool` field naming the pool.
//!
//! The spans of every checkout (`acquire`, `return`) are `TRACE`, so that a subscriber at `DEBUG` or
//! above costs a fast-path checkout one level check and nothing else; the spans of rarer work (`create`,
//! `validate`, `close`) are `DEBUG`.

use std::panic::Location;
use std::time::Duration;

use tracing::field::Empty;
use tracing::Span;

use crate::pool::PoolState;

/// The target of every span and event of the pool.
pub(super) const TARGET: &str = "memory_storage_turso::pool";

#[inline]
pub(super) fn acquire(pool: &str) -> Span {
    tracing::trace_span!(target: TARGET, "acquire", pool, wait_us = Empty)
}

#[inline]
pub(super) fn create(pool: &str) -> Span {
    tracing::debug_span!(target: TARGET, "create", pool)
}

#[inline]
pub(super) fn validate(pool: &str) -> Span {
    tracing::debug_span!(target: TARGET, "validate", pool)
}

#[inline]
pub(super) fn check_in(pool: &str) -> Span {
    tracing::trace_span!(target: TARGET, "return", pool)
}

#[inline]
pub(super) fn close(pool: &str, reason: &'static str) -> Span {
    tracing::debug_span!(target: TARGET, "close", pool, reason)
}

pub(super) fn timed_out(pool: &str, waited: Duration, state: &PoolState, last_error: Option<&str>) {
    tracing::warn!(
        target: TARGET,
        pool,
        waited_ms = millis(waited),
        size = state.size,
        idle = state.idle,
        in_use = state.in_use,
        connecting = state.connecting,
        waiting = state.waiting,
        max_size = state.max_size,
        last_error,
        "checkout timed out"
    );
}

pub(super) fn connect_failed(pool: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(target: TARGET, pool, error = %error, "could not open a connection");
}

pub(super) fn health_check_failed(pool: &str, error: &str) {
    tracing::warn!(target: TARGET, pool, error, "health check failed; closing the connection");
}

pub(super) fn broken(pool: &str) {
    tracing::info!(
        target: TARGET,
        pool,
        "connection broken (is_broken, a failed reset, or a failed hook); closing it"
    );
}

pub(super) fn leak(pool: &str, caller: &'static Location<'static>, held_for: Duration) {
    tracing::warn!(
        target: TARGET,
        pool,
        caller = %caller,
        held_for_ms = millis(held_for),
        "connection held longer than the leak detection threshold; it may have leaked"
    );
}

pub(super) fn leak_returned(pool: &str, caller: &'static Location<'static>, held_for: Duration) {
    tracing::info!(
        target: TARGET,
        pool,
        caller = %caller,
        held_for_ms = millis(held_for),
        "a connection reported as leaked was returned"
    );
}

#[inline]
pub(super) fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
