//! [`ConnectionSetup`]: what every new connection gets before its first use.
//!
//! Measured facts behind the defaults:
//!
//! * libSQL's `busy_timeout` defaults to **0**, which turns every lock into an error: 4 writers on their
//!   own connections got hundreds of thousands of "database is locked" errors for 400 transactions, and
//!   0 with a 5 s timeout. The default here is 5 s.
//! * `execute("PRAGMA journal_mode=WAL")` fails with `ExecuteReturnedRows` (yet changes the mode).
//!   PRAGMAs therefore run through `execute_batch`, which accepts rows.
//! * `busy_timeout` is a no-op on remote connections, and PRAGMAs there would cost a round trip each, so
//!   remote connections and embedded replicas get only the user's init SQL and hook.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::database::DatabaseKind;
use super::error::{LibsqlError, Result};
use crate::pool::{panic_message, HookError};

/// A user hook run on every new connection, after the built-in setup and the init SQL.
pub type InitHook = Arc<dyn Fn(&libsql::Connection) -> Result<(), HookError> + Send + Sync>;

/// The setup of every new connection.
///
/// ```
/// use std::time::Duration;
/// use memory_storage_turso::libsql::ConnectionSetup;
///
/// let setup = ConnectionSetup::default()
///     .busy_timeout(Duration::from_secs(2))
///     .init_sql("PRAGMA cache_size = -8000;");
/// assert_eq!(setup.busy_timeout_value(), Duration::from_secs(2));
/// ```
#[derive(Clone)]
#[must_use]
pub struct ConnectionSetup {
    busy_timeout: Duration,
    /// `Some(on)`: run `PRAGMA foreign_keys=ON|OFF`; `None`: leave libsql's compiled-in default (ON).
    foreign_keys: Option<bool>,
    synchronous_normal: bool,
    init_sql: Option<String>,
    init_hook: Option<InitHook>,
}

impl Default for ConnectionSetup {
    /// `busy_timeout` 5 s, `foreign_keys` on, `synchronous=NORMAL` under WAL, no init SQL or hook.
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            foreign_keys: Some(true),
            synchronous_normal: true,
            init_sql: None,
            init_hook: None,
        }
    }
}

impl fmt::Debug for ConnectionSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSetup")
            .field("busy_timeout", &self.busy_timeout)
            .field("foreign_keys", &self.foreign_keys)
            .field("synchronous_normal", &self.synchronous_normal)
            .field("init_sql", &self.init_sql)
            .field("init_hook", &self.init_hook.is_some())
            .finish()
    }
}

impl ConnectionSetup {
    /// libSQL's own settings: busy timeout 0 and no PRAGMAs at all (foreign keys stay as compiled in).
    /// A baseline for comparisons; not for production.
    pub fn libsql_defaults() -> Self {
        Self {
            busy_timeout: Duration::ZERO,
            foreign_keys: None,
            synchronous_normal: false,
            init_sql: None,
            init_hook: None,
        }
    }

    /// How long a statement waits for a lock before failing with "database is locked". Default 5 s;
    /// `Duration::ZERO` fails at once (libSQL's default).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Whether foreign keys are enforced on each connection: `PRAGMA foreign_keys=ON` or `=OFF`.
    /// Default true. (libsql compiles SQLite with foreign keys on, so `false` must say so.)
    pub fn foreign_keys(mut self, on: bool) -> Self {
        self.foreign_keys = Some(on);
        self
    }

    /// Whether to run `PRAGMA synchronous=NORMAL` on connections to a WAL file (safe under WAL: a power
    /// loss can lose the last commits but never corrupts). Default true.
    pub fn synchronous_normal(mut self, on: bool) -> Self {
        self.synchronous_normal = on;
        self
    }

    /// SQL run with `execute_batch` on every new connection, after the built-in PRAGMAs. It may contain
    /// several statements, and PRAGMAs that return rows.
    pub fn init_sql(mut self, sql: impl Into<String>) -> Self {
        self.init_sql = Some(sql.into());
        self
    }

    /// A hook run on every new connection, last. An error closes the connection and fails the checkout,
    /// and so does a panic, which is caught and reported as [`LibsqlError::Setup`] (`panicked: ...`).
    /// Local libSQL calls complete at once, so the hook may drive them with
    /// [`block_on`](super::block_on).
    pub fn init_hook(
        mut self,
        hook: impl Fn(&libsql::Connection) -> Result<(), HookError> + Send + Sync + 'static,
    ) -> Self {
        self.init_hook = Some(Arc::new(hook));
        self
    }

    /// The busy timeout this setup applies.
    pub fn busy_timeout_value(&self) -> Duration {
        self.busy_timeout
    }

    /// Applies the setup to a new connection of a database of `kind` (`wal`: the file is in WAL mode).
    pub(crate) async fn apply(
        &self,
        conn: &libsql::Connection,
        kind: DatabaseKind,
        wal: bool,
    ) -> Result<()> {
        if kind.runs_locally() {
            // libsql casts the milliseconds to `i32`: a longer timeout would wrap negative, which
            // SQLite takes as no busy handler at all. Cap it at the longest SQLite can wait.
            let longest = Duration::from_millis(i32::MAX as u64);
            conn.busy_timeout(self.busy_timeout.min(longest))
                .map_err(|e| setup_error("busy_timeout", e))?;
            let mut pragmas = String::new();
            match self.foreign_keys {
                Some(true) => pragmas.push_str("PRAGMA foreign_keys=ON;"),
                Some(false) => pragmas.push_str("PRAGMA foreign_keys=OFF;"),
                None => {}
            }
            if self.synchronous_normal && wal {
                pragmas.push_str("PRAGMA synchronous=NORMAL;");
            }
            if !pragmas.is_empty() {
                conn.execute_batch(&pragmas)
                    .await
                    .map_err(|e| setup_error("the connection PRAGMAs", e))?;
            }
        }
        if let Some(sql) = &self.init_sql {
            conn.execute_batch(sql)
                .await
                .map_err(|e| setup_error("the init SQL", e))?;
        }
        if let Some(hook) = &self.init_hook {
            // A panic in the hook fails the setup like an error: it must not unwind through the pool.
            catch_unwind(AssertUnwindSafe(|| hook(conn)))
                .unwrap_or_else(|panic| Err(panic_message(&*panic).into()))
                .map_err(|source| LibsqlError::Setup {
                    step: "the init hook",
                    source,
                })?;
        }
        Ok(())
    }
}

pub(crate) fn setup_error(step: &'static str, error: libsql::Error) -> LibsqlError {
    LibsqlError::Setup {
        step,
        source: Box::new(error),
    }
}
