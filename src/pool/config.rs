//! [`PoolConfig`]: sizes, timeouts and maintenance settings, with a builder that validates them.

use std::time::{Duration, Instant};

/// The largest pool this crate accepts. SQLite gains nothing from more connections than this, and a
/// bigger number is almost always a unit mistake.
pub const MAX_POOL_SIZE: usize = 65_536;

/// The longest duration accepted for any setting (about 100 years), so that `Instant + duration` can
/// never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Which idle connection a checkout takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReuseOrder {
    /// The one this thread returned last (the default). Else the most recently returned one in the
    /// pool's idle list; a connection resting on another thread's shelf is taken only when that list
    /// is empty. Keeps a small hot set warm and lets the rest reach their idle timeout. Without leak
    /// detection, a thread's checkout and return then skip the pool's lock while nobody waits (see the
    /// pool's design notes).
    #[default]
    Lifo,
    /// The least recently returned one. Spreads use evenly over all connections.
    Fifo,
}

/// Settings of a pool. The first four fields and their defaults are those of the older crate.
///
/// Build one with [`PoolConfig::builder`], which validates, or fill the fields and call
/// [`PoolConfig::validate`]; the pool validates again when it is built.
///
/// ```
/// use std::time::Duration;
/// use memory_storage_turso::pool::PoolConfig;
///
/// let config = PoolConfig::builder()
///     .max_connections(8)
///     .min_idle(2)
///     .connection_timeout(Duration::from_secs(1))
///     .build()
///     .unwrap();
/// assert_eq!(config.max_connections, 8);
///
/// let error = PoolConfig::builder().max_connections(4).min_idle(5).build().unwrap_err();
/// assert_eq!(error.field(), "min_idle");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Most connections open at once, idle or in use. Default 10.
    pub max_connections: usize,
    /// How long a checkout may wait for a connection, including opening or checking one. Default 5 s.
    pub connection_timeout: Duration,
    /// Whether idle connections are health-checked at checkout. Default true.
    pub enable_health_check: bool,
    /// How long one health check may take (async callers with a runtime adapter). Default 2 s.
    pub health_check_timeout: Duration,
    /// Idle connections the pool keeps open, refilled by the maintenance task. Default 0.
    pub min_idle: usize,
    /// An idle connection beyond `min_idle` is closed after this long unused: when a checkout finds it
    /// (with `min_idle` 0; else it is kept, and health-checked if health checks are on, since it may be
    /// one the pool keeps), by reaps of the idle list and the threads' shelves, and by the maintenance
    /// task. A reap runs at a connection's return when a checkout found it a quarter of this past its
    /// last return through the pool's queue, and at every close of an expired or idled-out
    /// connection. Default 300 s; `None` keeps them.
    ///
    /// A use counts from its checkout until its return records its end. A return onto the thread's
    /// shelf (LIFO reuse, see [`pool`](super)) reads no clock, so there the checkout stands: a connection
    /// held longer than this is replaced at its next checkout, and one held longer than
    /// [`health_check_bypass`](Self::health_check_bypass) is checked.
    pub idle_timeout: Option<Duration>,
    /// A connection this old (minus up to 2.5 % random jitter, so that connections opened together do
    /// not all expire together) is never handed out again. It is closed at the first of its return
    /// through the pool's queue, its next checkout, or a reap (see
    /// [`idle_timeout`](Self::idle_timeout)) or round of maintenance. Default 30 min; `None` keeps
    /// them.
    pub max_lifetime: Option<Duration>,
    /// A connection used within this window is handed out without a health check (HikariCP's
    /// `aliveBypassWindowMs`). Default 500 ms.
    pub health_check_bypass: Duration,
    /// Report a connection held longer than this as a suspected leak, with the holder's source location.
    /// Default `None` (off).
    pub leak_detection_threshold: Option<Duration>,
    /// Which idle connection a checkout takes. Default LIFO.
    pub reuse_order: ReuseOrder,
    /// How often the background task (with a runtime adapter) reaps and refills. Default 30 s.
    pub maintenance_interval: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connection_timeout: Duration::from_secs(5),
            enable_health_check: true,
            health_check_timeout: Duration::from_secs(2),
            min_idle: 0,
            idle_timeout: Some(Duration::from_secs(300)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            health_check_bypass: Duration::from_millis(500),
            leak_detection_threshold: None,
            reuse_order: ReuseOrder::Lifo,
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

/// A setting of [`PoolConfig`] that makes no sense. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_connections` is 0.
    #[error("max_connections is 0: a pool needs at least one connection; set it to 1 or more")]
    ZeroMaxConnections,
    /// `max_connections` is above [`MAX_POOL_SIZE`].
    #[error("max_connections is {0}, above the limit of {MAX_POOL_SIZE}; use a smaller pool")]
    TooManyConnections(usize),
    /// `min_idle` is larger than `max_connections`.
    #[error("min_idle ({min_idle}) is larger than max_connections ({max_connections}); lower min_idle or raise max_connections")]
    MinIdleAboveMax {
        /// The configured `min_idle`.
        min_idle: usize,
        /// The configured `max_connections`.
        max_connections: usize,
    },
    /// A duration that must be positive is zero.
    #[error("{field} is zero; give it a positive duration")]
    ZeroDuration {
        /// The field's name.
        field: &'static str,
    },
    /// A duration is so long that adding it to the current time would overflow.
    #[error("{field} is {value:?}, longer than the supported maximum of about 100 years; use a shorter duration")]
    DurationTooLong {
        /// The field's name.
        field: &'static str,
        /// The configured value.
        value: Duration,
    },
    /// The runtime adapter cannot run timers here (see [`Runtime::check_timers`](crate::rt::Runtime::check_timers)).
    #[error("the runtime adapter cannot time checkouts: {problem}")]
    Runtime {
        /// What is missing, and how to add it.
        problem: String,
    },
}

impl ConfigError {
    /// The name of the field that is wrong.
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::ZeroMaxConnections | ConfigError::TooManyConnections(_) => {
                "max_connections"
            }
            ConfigError::MinIdleAboveMax { .. } => "min_idle",
            ConfigError::ZeroDuration { field } | ConfigError::DurationTooLong { field, .. } => {
                field
            }
            ConfigError::Runtime { .. } => "runtime",
        }
    }
}

impl PoolConfig {
    /// A builder that starts from the defaults.
    pub fn builder() -> PoolConfigBuilder {
        PoolConfigBuilder {
            config: PoolConfig::default(),
        }
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::ZeroMaxConnections);
        }
        if self.max_connections > MAX_POOL_SIZE {
            return Err(ConfigError::TooManyConnections(self.max_connections));
        }
        if self.min_idle > self.max_connections {
            return Err(ConfigError::MinIdleAboveMax {
                min_idle: self.min_idle,
                max_connections: self.max_connections,
            });
        }
        let required = [
            ("connection_timeout", Some(self.connection_timeout)),
            ("health_check_timeout", Some(self.health_check_timeout)),
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
            ("leak_detection_threshold", self.leak_detection_threshold),
            ("maintenance_interval", Some(self.maintenance_interval)),
        ];
        for (field, value) in required {
            match value {
                Some(d) if d.is_zero() => return Err(ConfigError::ZeroDuration { field }),
                Some(d) => check_not_too_long(field, d)?,
                None => {}
            }
        }
        check_not_too_long("health_check_bypass", self.health_check_bypass)
    }
}

fn check_not_too_long(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value > MAX_DURATION || Instant::now().checked_add(value).is_none() {
        return Err(ConfigError::DurationTooLong { field, value });
    }
    Ok(())
}

/// Builds a validated [`PoolConfig`]. Every setter is named after its field.
#[derive(Debug, Clone)]
#[must_use]
pub struct PoolConfigBuilder {
    config: PoolConfig,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {
        impl PoolConfigBuilder {
            $(
                $(#[$doc])*
                pub fn $field(mut self, value: $ty) -> Self {
                    self.config.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// See [`PoolConfig::max_connections`].
    max_connections: usize,
    /// See [`PoolConfig::connection_timeout`].
    connection_timeout: Duration,
    /// See [`PoolConfig::enable_health_check`].
    enable_health_check: bool,
    /// See [`PoolConfig::health_check_timeout`].
    health_check_timeout: Duration,
    /// See [`PoolConfig::min_idle`].
    min_idle: usize,
    /// See [`PoolConfig::idle_timeout`].
    idle_timeout: Option<Duration>,
    /// See [`PoolConfig::max_lifetime`].
    max_lifetime: Option<Duration>,
    /// See [`PoolConfig::health_check_bypass`].
    health_check_bypass: Duration,
    /// See [`PoolConfig::leak_detection_threshold`].
    leak_detection_threshold: Option<Duration>,
    /// See [`PoolConfig::reuse_order`].
    reuse_order: ReuseOrder,
    /// See [`PoolConfig::maintenance_interval`].
    maintenance_interval: Duration,
}

impl PoolConfigBuilder {
    /// Validates and returns the configuration.
    pub fn build(self) -> Result<PoolConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_older_crate_and_validate() {
        let config = PoolConfig::default();
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.connection_timeout, Duration::from_secs(5));
        assert!(config.enable_health_check);
        assert_eq!(config.health_check_timeout, Duration::from_secs(2));
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(config.max_lifetime, Some(Duration::from_secs(1800)));
        assert_eq!(config.health_check_bypass, Duration::from_millis(500));
        assert_eq!(config.leak_detection_threshold, None);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn each_nonsense_setting_names_its_field() {
        let zero = Duration::ZERO;
        let huge = Duration::MAX;
        let cases: Vec<(PoolConfigBuilder, &str)> = vec![
            (PoolConfig::builder().max_connections(0), "max_connections"),
            (
                PoolConfig::builder().max_connections(usize::MAX),
                "max_connections",
            ),
            (
                PoolConfig::builder().max_connections(2).min_idle(3),
                "min_idle",
            ),
            (
                PoolConfig::builder().connection_timeout(zero),
                "connection_timeout",
            ),
            (
                PoolConfig::builder().health_check_timeout(zero),
                "health_check_timeout",
            ),
            (
                PoolConfig::builder().idle_timeout(Some(zero)),
                "idle_timeout",
            ),
            (
                PoolConfig::builder().max_lifetime(Some(zero)),
                "max_lifetime",
            ),
            (
                PoolConfig::builder().leak_detection_threshold(Some(zero)),
                "leak_detection_threshold",
            ),
            (
                PoolConfig::builder().maintenance_interval(zero),
                "maintenance_interval",
            ),
            (
                PoolConfig::builder().connection_timeout(huge),
                "connection_timeout",
            ),
            (
                PoolConfig::builder().max_lifetime(Some(huge)),
                "max_lifetime",
            ),
            (
                PoolConfig::builder().health_check_bypass(huge),
                "health_check_bypass",
            ),
        ];
        for (builder, field) in cases {
            let error = builder.build().expect_err(field);
            assert_eq!(error.field(), field, "{error}");
            assert!(error.to_string().contains(field), "{error}");
        }
    }

    #[test]
    fn options_that_turn_features_off_are_valid() {
        let config = PoolConfig::builder()
            .max_connections(1)
            .min_idle(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .health_check_bypass(Duration::ZERO)
            .build()
            .unwrap();
        assert_eq!(config.min_idle, 1);
    }
}
