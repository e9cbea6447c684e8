//! [`LibsqlError`]: what the libSQL layer fails with, with messages that say what to do.

use crate::pool::{HookError, PoolError, TimeoutError};

/// The result type of the libSQL layer.
pub type Result<T, E = LibsqlError> = std::result::Result<T, E>;

/// An error of the libSQL layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LibsqlError {
    /// A libSQL call failed. `SqliteFailure(5 | 517, ..)` is "database is locked": raise the busy
    /// timeout, or send writes through the write lane ([`LanedPool`](super::LanedPool)).
    #[error("libSQL error: {0}")]
    Libsql(#[from] libsql::Error),

    /// A checkout from the pool failed (timeout, closed pool, connect error, missing runtime adapter).
    #[error(transparent)]
    Pool(Box<PoolError<LibsqlError>>),

    /// The parameters given do not match the statement's placeholders. libSQL itself ignores such
    /// mistakes and silently runs with the previous bindings, so this layer refuses to run.
    ///
    /// Positional values must fill every slot up to the highest placeholder (`?3` takes three).
    /// Named values must cover every named placeholder (`:id`, `?3`). A slot below a numbered
    /// placeholder that no name reaches (an unused number, or an anonymous `?`) is bound to NULL, as
    /// on a fresh statement; an anonymous `?` above every numbered one cannot be bound by name.
    #[error("statement `{sql}` takes {expected} parameter(s) but was given {given}; pass exactly one value per placeholder")]
    ParameterCount {
        /// The SQL text.
        sql: String,
        /// How many placeholders need a value.
        expected: usize,
        /// How many values were given (named values: how many of those placeholders they cover).
        given: usize,
    },

    /// A named parameter that the statement does not have, or named values for anonymous `?`
    /// placeholders.
    #[error("statement `{sql}` has no parameter named `{name}`; its parameters are {known:?} (names include their prefix, such as `:id`)")]
    UnknownParameter {
        /// The SQL text.
        sql: String,
        /// The name given.
        name: String,
        /// The statement's parameter names (`None` for an anonymous `?`).
        known: Vec<Option<String>>,
    },

    /// The statement's text or values are refused before it runs: see [`StatementProblem`].
    #[error("statement `{sql}` {problem}")]
    Statement {
        /// The SQL text.
        sql: String,
        /// What is wrong with it.
        problem: StatementProblem,
    },

    /// Setting up a new connection failed (a PRAGMA, the init SQL or the init hook).
    #[error("setting up a new connection failed at {step}: {source}; check the init SQL / hook and the database path")]
    Setup {
        /// Which step failed.
        step: &'static str,
        /// Why.
        #[source]
        source: HookError,
    },

    /// The database kind does not support what was asked (for example lanes on a remote database).
    #[error("{0}")]
    Unsupported(String),

    /// A feature of this crate that the URL needs is not enabled.
    #[error(
        "`{url}` needs the `{feature}` feature of memory-storage-turso; enable it in Cargo.toml"
    )]
    FeatureDisabled {
        /// The URL or path given.
        url: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },

    /// A local database file could not be opened: its directory does not exist, or this process may
    /// not create, read or write it there.
    #[error(
        "could not open the database file `{path}`: {source}; check that its directory exists and \
         that this process may read and write the file and its directory"
    )]
    OpenFile {
        /// The path given.
        path: String,
        /// What SQLite said.
        #[source]
        source: libsql::Error,
    },

    /// A write sent through [`LanedPool::execute`](super::LanedPool::execute) was not committed,
    /// because the group it ran in was rolled back or could not run. Nothing of it is stored: retry it.
    #[error("the write was not committed, and nothing of it is stored: {reason}; retry it")]
    NotCommitted {
        /// Why the group was not committed.
        reason: String,
    },

    /// The write lane's one connection stayed checked out for the whole `connection_timeout`
    /// ([`LanedPool::write`](super::LanedPool::write) or [`execute`](super::LanedPool::execute)). The
    /// lane never has more than one connection, so `max_connections` cannot help. A caller that holds
    /// `write()` and then calls `write()` or `execute()` waits for itself until this error.
    #[error("{}", write_lane_timeout(.0))]
    WriteLaneTimeout(Box<TimeoutError>),

    /// An invalid pool configuration.
    #[error("invalid pool configuration: {0}")]
    Config(#[from] crate::pool::ConfigError),
}

/// What is wrong with a statement, found before it runs (see [`LibsqlError::Statement`]). Each would
/// otherwise run something other than what the caller asked for, without an error.
///
/// ```
/// use memory_storage_turso::libsql::{block_on, LibsqlError, LibsqlManager, LibsqlDatabase, StatementProblem};
/// use memory_storage_turso::pool::Pool;
///
/// let pool = Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap())).build().unwrap();
/// let mut conn = pool.get_blocking().unwrap();
/// block_on(async {
///     conn.execute_schema("CREATE TABLE t(n INTEGER)").await.unwrap();
///     let two = "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)";
///     let error = conn.execute_cached(two, ()).await.unwrap_err();
///     assert!(matches!(
///         error,
///         LibsqlError::Statement { problem: StatementProblem::SeveralStatements, .. }
///     ));
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementProblem {
    /// The text holds no statement: only whitespace, comments or `;`.
    #[error("holds no statement (only whitespace, comments or `;`); pass one SQL statement")]
    Empty,

    /// The text holds more than one statement. libSQL prepares the first and silently drops the rest.
    #[error(
        "holds more than one statement, and libSQL would run the first and silently skip the rest; \
         send one statement per call, or run a script with `execute_schema` or `execute_batch`"
    )]
    SeveralStatements,

    /// `execute` was given a statement that returns rows (a `SELECT`, a `PRAGMA` that reports, an
    /// `INSERT … RETURNING`). libSQL would run it, store its changes, and then report an error.
    #[error(
        "returns rows, so it was not run: `execute` would store its changes and then fail; run it with \
         `query_cached` or `query_row_cached` and read the rows"
    )]
    ReturnsRows,

    /// A text or blob value longer than libSQL can bind: it passes lengths to SQLite as 32-bit
    /// integers, so a longer value would be cut short or read past its end.
    #[error(
        "was given value {parameter} of {bytes} bytes, more than the {max} bytes a value can have; \
         store it in smaller pieces"
    )]
    ValueTooLarge {
        /// The parameter: its position from 1, or its name.
        parameter: String,
        /// The value's length in bytes.
        bytes: usize,
        /// The longest value libSQL can bind.
        max: usize,
    },
}

impl From<PoolError<LibsqlError>> for LibsqlError {
    fn from(error: PoolError<LibsqlError>) -> Self {
        // A connect error is already ours: do not wrap it twice.
        match error {
            PoolError::Connect(inner) => inner,
            other => LibsqlError::Pool(Box::new(other)),
        }
    }
}

impl LibsqlError {
    /// A checkout error of the write lane: a timeout says what only the write lane can cause.
    pub(crate) fn from_write_lane(error: PoolError<LibsqlError>) -> Self {
        match error {
            PoolError::Timeout(timeout) => LibsqlError::WriteLaneTimeout(timeout),
            other => other.into(),
        }
    }

    /// The SQLite extended result code, if this is a SQLite failure (local or remote).
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            LibsqlError::Libsql(libsql::Error::SqliteFailure(code, _)) => Some(*code),
            LibsqlError::Libsql(libsql::Error::RemoteSqliteFailure(_, code, _)) => Some(*code),
            _ => None,
        }
    }

    /// Whether this is "database is locked" or "database table is locked" (SQLITE_BUSY or
    /// SQLITE_LOCKED, with any extended code): a transient error that a retry may cure.
    pub fn is_locked(&self) -> bool {
        self.sqlite_code()
            .is_some_and(|code| matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
    }

    /// Whether this is a checkout timeout.
    pub fn is_timeout(&self) -> bool {
        match self {
            LibsqlError::Pool(error) => error.is_timeout(),
            LibsqlError::WriteLaneTimeout(_) => true,
            _ => false,
        }
    }
}

fn write_lane_timeout(timeout: &TimeoutError) -> String {
    let mut message = format!(
        "timed out after {:?} waiting for the write lane, whose one connection stayed checked out \
         ({}); a caller that holds `write()` and then calls `write()` or `execute()` waits for \
         itself, so drop the first guard or run the statement on it; otherwise keep write \
         transactions short, or raise connection_timeout",
        timeout.waited, timeout.state
    );
    if let Some(error) = &timeout.last_error {
        message.push_str("; last connection error: ");
        message.push_str(error);
    }
    message
}

pub(crate) const SQLITE_ERROR: i32 = 1;
pub(crate) const SQLITE_BUSY: i32 = 5;
pub(crate) const SQLITE_LOCKED: i32 = 6;
pub(crate) const SQLITE_SCHEMA: i32 = 17;
pub(crate) const SQLITE_CONSTRAINT: i32 = 19;

/// Whether `error` says a prepared statement no longer fits the schema: SQLITE_SCHEMA, or a table or
/// column that is gone (SQLite re-prepares statements itself, and reports a dropped object as a plain
/// SQLITE_ERROR "no such table/column" when it runs a cached statement).
pub(crate) fn is_schema_error(error: &libsql::Error) -> bool {
    match error {
        libsql::Error::SqliteFailure(code, message) => {
            code & 0xff == SQLITE_SCHEMA
                || (code & 0xff == SQLITE_ERROR
                    && (message.starts_with("no such table")
                        || message.starts_with("no such column")))
        }
        _ => false,
    }
}
