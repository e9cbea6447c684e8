//! What the storage layer can fail with: [`StorageError`], the [`SecurityError`]s of URL and token
//! checks, and the [`DatabaseErrorKind`] that decides what is retried.
//!
//! No message here ever contains an auth token.

use std::fmt;

use uuid::Uuid;

use super::resilience::CircuitOpen;

/// A boxed error from a lower layer, kept as the [`source`](std::error::Error::source) of a
/// [`StorageError::Database`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result of a storage call.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The database URL or auth token was refused before anything was opened.
    #[error(transparent)]
    Security(#[from] SecurityError),
    /// A setting is out of range or inconsistent.
    #[error("invalid storage setting `{setting}`: {problem}")]
    Config {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it, and what would be accepted.
        problem: String,
    },
    /// A value of a record or of a query cannot be used as given, such as a NaN score. Nothing was
    /// written.
    #[error("invalid {field}: {problem}")]
    InvalidValue {
        /// The field, such as `episode reward total`.
        field: &'static str,
        /// What is wrong with it, and what would be accepted.
        problem: String,
    },
    /// No record has this id.
    #[error("{what} {id} was not found: it was never stored, or it was deleted")]
    NotFound {
        /// The kind of record: `episode`, `pattern` or `heuristic`.
        what: &'static str,
        /// The id that was looked up.
        id: Uuid,
    },
    /// A value could not be turned into JSON, or stored JSON could not be read back.
    #[error("could not serialize or deserialize {what}: {source}")]
    Serialization {
        /// What was being converted, such as `episode steps`.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The database failed; [`DatabaseErrorKind`] says whether retrying can help.
    #[error("{kind}: {message}")]
    Database {
        /// What kind of failure, which decides [`StorageError::is_transient`].
        kind: DatabaseErrorKind,
        /// The database's own description.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The circuit breaker rejected the call without trying it.
    #[error(transparent)]
    CircuitOpen(#[from] CircuitOpen),
}

impl StorageError {
    /// A [`StorageError::Database`] with no underlying error.
    pub fn database(kind: DatabaseErrorKind, message: impl Into<String>) -> Self {
        StorageError::Database {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// A [`StorageError::Database`] that keeps `source` as its cause.
    pub fn database_with_source(
        kind: DatabaseErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        StorageError::Database {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A [`StorageError::NotFound`] for the record kind `what` (`episode`, `pattern` or `heuristic`).
    pub fn not_found(what: &'static str, id: Uuid) -> Self {
        StorageError::NotFound { what, id }
    }

    /// A [`StorageError::Serialization`] while converting `what`.
    pub fn serialization(what: &'static str, source: serde_json::Error) -> Self {
        StorageError::Serialization { what, source }
    }

    /// Whether trying again may succeed: the database was busy or locked, the network failed, or a
    /// call timed out. Everything else (constraint and SQL errors, bad input, security and
    /// configuration errors, an open circuit) would fail the same way again.
    ///
    /// ```
    /// use memory_storage_turso::storage::{DatabaseErrorKind, StorageError};
    ///
    /// assert!(StorageError::database(DatabaseErrorKind::Busy, "database is locked").is_transient());
    /// assert!(!StorageError::database(DatabaseErrorKind::Constraint, "UNIQUE failed").is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Database { kind, .. } => kind.is_transient(),
            _ => false,
        }
    }
}

/// The kinds of database failure, split by whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatabaseErrorKind {
    /// Another connection holds a lock on the database (`SQLITE_BUSY`). Transient.
    Busy,
    /// A table is locked by another statement (`SQLITE_LOCKED`). Transient.
    Locked,
    /// The remote database could not be reached, or the connection dropped. Transient.
    Network,
    /// A call took too long. Transient.
    Timeout,
    /// A constraint (unique, not null, foreign key, check) was violated. Not transient.
    Constraint,
    /// The SQL failed: a syntax error, a missing table or column. Not transient.
    Sql,
    /// The write was part of a group commit that was rolled back because of another write in the
    /// group; nothing of it is stored. Transient.
    NotCommitted,
    /// Any other failure. Not transient.
    Other,
}

impl DatabaseErrorKind {
    /// Whether trying again may succeed: true for `Busy`, `Locked`, `Network` and `Timeout`.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            DatabaseErrorKind::Busy
                | DatabaseErrorKind::Locked
                | DatabaseErrorKind::Network
                | DatabaseErrorKind::Timeout
                | DatabaseErrorKind::NotCommitted
        )
    }
}

impl fmt::Display for DatabaseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseErrorKind::Busy => {
                "the database is busy, another connection holds its lock (transient: retry, or raise \
                 the busy timeout)"
            }
            DatabaseErrorKind::Locked => {
                "a table is locked by another statement (transient: retry once that statement is done)"
            }
            DatabaseErrorKind::Network => {
                "the remote database could not be reached (transient: retry, and check the URL and the \
                 network if it persists)"
            }
            DatabaseErrorKind::Timeout => "the database call timed out (transient: retry)",
            DatabaseErrorKind::NotCommitted => {
                "the write was rolled back with the group commit it joined, because of another write \
                 (transient: nothing of it is stored, retry it)"
            }
            DatabaseErrorKind::Constraint => {
                "a database constraint was violated (not retried: the data must change)"
            }
            DatabaseErrorKind::Sql => {
                "the SQL statement failed (not retried: check that initialize_schema() has run)"
            }
            DatabaseErrorKind::Other => "the database failed",
        })
    }
}

/// Why a database URL or auth token was refused.
///
/// Messages name the rule that was broken and what to use instead. They quote the scheme or host of
/// the URL where that helps, and never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// The URL is empty or only whitespace.
    #[error(
        "the database URL is empty: pass libsql://HOST or https://HOST for a remote database, \
         file:PATH for a local file, or :memory:"
    )]
    EmptyUrl,
    /// The URL is longer than [`MAX_URL_LEN`](super::MAX_URL_LEN).
    #[error(
        "the database URL is {length} bytes long, over the limit of {limit}: check what was passed"
    )]
    UrlTooLong {
        /// The URL's length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// The URL contains a control character, such as a newline.
    #[error(
        "the database URL contains a control character at byte {position}: remove it (a trailing \
         newline from a file or an environment variable is a common cause)"
    )]
    ControlCharacter {
        /// The byte offset of the first control character.
        position: usize,
    },
    /// The URL does not start with `scheme:`, `file:` or `:memory:`.
    #[error(
        "the database URL has no scheme: write file:PATH for a local file (file:data/memory.db), \
         libsql://HOST or https://HOST for a remote database, or :memory:"
    )]
    MissingScheme,
    /// The scheme is not one of `libsql`, `https`, `http` (loopback only) or `file`.
    #[error("{}", unsupported_scheme_message(scheme))]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// Plain `http://` to a host that is not loopback.
    #[error(
        "plain http:// is allowed only for loopback hosts (127.0.0.0/8, [::1], localhost), and {host} \
         is not one: the auth token would cross the network unencrypted. Use https://{host} or \
         libsql://{host} instead"
    )]
    InsecureTransport {
        /// The host of the refused URL.
        host: String,
    },
    /// The URL embeds credentials (`user:password@` or an `authToken` query parameter).
    #[error(
        "the database URL carries credentials ({what}): pass the auth token as the token argument \
         instead, so that the URL can be shown and logged safely"
    )]
    CredentialsInUrl {
        /// Which kind of credential was found.
        what: &'static str,
    },
    /// The URL cannot be parsed.
    #[error("the database URL is malformed: {reason}")]
    MalformedUrl {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `file:` URL with nothing after `file:`.
    #[error("the local database path is empty: write file:PATH, such as file:data/memory.db")]
    EmptyPath,
    /// A remote URL with an empty or whitespace-only token.
    #[error(
        "a remote database needs an auth token, and the one given is empty or blank: pass the \
         database's token (for Turso: `turso db tokens create <database>`)"
    )]
    BlankToken,
    /// The token contains a control character, such as a newline.
    #[error(
        "the auth token contains a control character: remove it (a trailing newline from a file or \
         an environment variable is a common cause)"
    )]
    TokenControlCharacter,
}

fn unsupported_scheme_message(scheme: &str) -> String {
    let lower = scheme.to_ascii_lowercase();
    if matches!(lower.as_str(), "libsql" | "https" | "http" | "file") {
        format!(
            "the URL scheme {scheme}: is refused because schemes are matched in lower case: write \
             {lower}: instead"
        )
    } else {
        format!(
            "the URL scheme {scheme}: is not supported, this crate only talks to libSQL and Turso: use \
             libsql://HOST or https://HOST for a remote database, file:PATH for a local file, or \
             :memory:"
        )
    }
}
