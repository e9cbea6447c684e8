//! [`RetryPolicy`]: retrying transient failures with exponential backoff and full jitter.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::rt::Runtime;
use crate::storage::config::TursoConfig;

/// How a failed call is retried: at most `max_retries` times, and before retry number `n` (counted
/// from 0) a random pause in `0..=min(max_delay, base_delay * 2^n)` ("full jitter", which spreads
/// callers that failed together so that they do not retry together).
///
/// Only errors the caller's classifier calls transient are retried; for storage errors that is
/// [`StorageError::is_transient`](crate::storage::StorageError::is_transient). The pauses go through
/// the [`Runtime`]'s timer, so a test can run them on a fake one.
///
/// ```
/// use std::time::Duration;
/// use memory_storage_turso::rt::Blocking;
/// use memory_storage_turso::storage::{DatabaseErrorKind, RetryPolicy, StorageError};
///
/// let policy = RetryPolicy { base_delay: Duration::ZERO, ..RetryPolicy::default() };
/// let mut attempts = 0;
/// let result = futures_lite::future::block_on(policy.retry(&Blocking, StorageError::is_transient, || {
///     attempts += 1;
///     let attempt = attempts;
///     async move {
///         if attempt < 3 {
///             Err(StorageError::database(DatabaseErrorKind::Busy, "database is locked"))
///         } else {
///             Ok(attempt)
///         }
///     }
/// }));
/// assert_eq!(result.unwrap(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default 3.
    pub max_retries: u32,
    /// The cap of the first pause; it doubles with each retry. Default 100 ms.
    pub base_delay: Duration,
    /// The cap of every pause. Default 5 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::from(&TursoConfig::default())
    }
}

impl From<&TursoConfig> for RetryPolicy {
    fn from(config: &TursoConfig) -> Self {
        RetryPolicy {
            max_retries: config.max_retries,
            base_delay: config.retry_base_delay(),
            max_delay: config.retry_max_delay(),
        }
    }
}

impl RetryPolicy {
    /// The longest pause before retry number `retry` (from 0): `min(max_delay, base_delay * 2^retry)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use memory_storage_turso::storage::RetryPolicy;
    ///
    /// let policy = RetryPolicy::default();
    /// assert_eq!(policy.delay_cap(0), Duration::from_millis(100));
    /// assert_eq!(policy.delay_cap(2), Duration::from_millis(400));
    /// assert_eq!(policy.delay_cap(10), Duration::from_secs(5));
    /// ```
    pub fn delay_cap(&self, retry: u32) -> Duration {
        2u32.checked_pow(retry)
            .and_then(|factor| self.base_delay.checked_mul(factor))
            .map_or(self.max_delay, |delay| delay.min(self.max_delay))
    }

    /// The pause before retry number `retry` for a random `fraction` in `0.0..=1.0`:
    /// `fraction * delay_cap(retry)`. A fraction outside that range is clamped into it (NaN counts
    /// as 0).
    pub fn backoff(&self, retry: u32, fraction: f64) -> Duration {
        let cap = self.delay_cap(retry);
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        Duration::try_from_secs_f64(cap.as_secs_f64() * fraction)
            .map_or(cap, |delay| delay.min(cap))
    }

    /// Runs `operation` until it succeeds, fails with an error `is_transient` rejects, or has been
    /// retried `max_retries` times; returns its last result. Pauses between attempts with
    /// [`backoff`](Self::backoff) on `runtime`'s timer.
    pub async fn retry<R, T, E, Op, Fut>(
        &self,
        runtime: &R,
        is_transient: impl Fn(&E) -> bool,
        mut operation: Op,
    ) -> Result<T, E>
    where
        R: Runtime,
        Op: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut retry = 0;
        loop {
            match operation().await {
                Err(error) if retry < self.max_retries && is_transient(&error) => {
                    runtime.sleep(self.backoff(retry, random_fraction())).await;
                    retry += 1;
                }
                result => return result,
            }
        }
    }
}

/// A random fraction in `0.0..1.0`, from the standard library's randomly keyed hasher over a
/// counter: plenty for spreading retries, and no extra dependency.
fn random_fraction() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bits = RandomState::new().hash_one(COUNTER.fetch_add(1, Relaxed));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_fractions_are_in_range_and_vary() {
        let fractions: Vec<f64> = (0..1000).map(|_| random_fraction()).collect();
        assert!(fractions.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(fractions.iter().any(|f| *f < 0.25));
        assert!(fractions.iter().any(|f| *f > 0.75));
    }

    #[test]
    fn delay_cap_saturates_instead_of_overflowing() {
        let policy = RetryPolicy {
            max_retries: 100,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::MAX,
        };
        assert_eq!(policy.delay_cap(31), Duration::from_secs(1 << 31));
        assert_eq!(policy.delay_cap(32), Duration::MAX);
        assert_eq!(policy.backoff(200, 1.0), Duration::MAX);
    }

    #[test]
    fn backoff_clamps_odd_fractions() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(0, f64::NAN), Duration::ZERO);
        assert_eq!(policy.backoff(0, -1.0), Duration::ZERO);
        assert_eq!(policy.backoff(0, 7.0), Duration::from_millis(100));
        assert_eq!(policy.backoff(1, 0.5), Duration::from_millis(100));
    }
}
