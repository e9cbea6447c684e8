//! Resilience against a flaky database: [`RetryPolicy`] retries transient failures with backoff, and
//! [`CircuitBreaker`] stops calling a database that keeps failing until it has had time to recover.
//!
//! Both are generic over time: pauses go through a [`Runtime`](crate::rt::Runtime)'s timer, and the
//! breaker reads "now" from a [`Clock`], so tests run them without sleeping.

mod breaker;
mod retry;

pub use self::breaker::{
    BreakerConfig, BreakerPermit, BreakerState, BreakerStats, CircuitBreaker, CircuitOpen, Clock,
    SystemClock,
};
pub use self::retry::RetryPolicy;
