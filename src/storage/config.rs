//! [`TursoConfig`]: the storage's own settings, as the older crate had them.

use std::time::Duration;

use super::error::StorageError;

/// Settings of the storage: how transient failures are retried, and whether connections are pooled.
/// The fields and defaults are those of the older crate.
///
/// ```
/// use memory_storage_turso::storage::TursoConfig;
///
/// let config = TursoConfig { max_retries: 5, ..TursoConfig::default() };
/// assert_eq!(config.retry_base_delay_ms, 100);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TursoConfig {
    /// How many times a transient failure is retried after the first attempt. Default 3.
    pub max_retries: u32,
    /// The backoff before the first retry, in milliseconds; it doubles with each retry. Default 100.
    pub retry_base_delay_ms: u64,
    /// The longest backoff, in milliseconds. Default 5000.
    pub retry_max_delay_ms: u64,
    /// Whether connections are pooled. Default true.
    pub enable_pooling: bool,
}

impl Default for TursoConfig {
    fn default() -> Self {
        TursoConfig {
            max_retries: 3,
            retry_base_delay_ms: 100,
            retry_max_delay_ms: 5000,
            enable_pooling: true,
        }
    }
}

impl TursoConfig {
    /// The most retries accepted. More would hold a caller for minutes on a failing database.
    pub const MAX_RETRIES: u32 = 100;

    /// The longest delay accepted for either retry setting: one hour.
    pub const MAX_DELAY_MS: u64 = 60 * 60 * 1000;

    /// Checks that the settings are consistent: at most [`MAX_RETRIES`](Self::MAX_RETRIES) retries,
    /// delays of at most [`MAX_DELAY_MS`](Self::MAX_DELAY_MS), and a base delay no longer than the
    /// maximum one.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.max_retries > Self::MAX_RETRIES {
            return Err(StorageError::Config {
                setting: "max_retries",
                problem: format!(
                    "{} is more than the limit of {}",
                    self.max_retries,
                    Self::MAX_RETRIES
                ),
            });
        }
        for (setting, value) in [
            ("retry_base_delay_ms", self.retry_base_delay_ms),
            ("retry_max_delay_ms", self.retry_max_delay_ms),
        ] {
            if value > Self::MAX_DELAY_MS {
                return Err(StorageError::Config {
                    setting,
                    problem: format!(
                        "{value} ms is more than the limit of {} ms",
                        Self::MAX_DELAY_MS
                    ),
                });
            }
        }
        if self.retry_base_delay_ms > self.retry_max_delay_ms {
            return Err(StorageError::Config {
                setting: "retry_base_delay_ms",
                problem: format!(
                    "{} ms is more than retry_max_delay_ms ({} ms): raise the maximum or lower the base",
                    self.retry_base_delay_ms, self.retry_max_delay_ms
                ),
            });
        }
        Ok(())
    }

    /// The backoff before the first retry.
    pub fn retry_base_delay(&self) -> Duration {
        Duration::from_millis(self.retry_base_delay_ms)
    }

    /// The longest backoff.
    pub fn retry_max_delay(&self) -> Duration {
        Duration::from_millis(self.retry_max_delay_ms)
    }
}
