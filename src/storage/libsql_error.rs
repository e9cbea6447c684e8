//! How errors of the libSQL layer become [`StorageError`]s, and so which of them are retried: see the
//! table in the [storage module's documentation](super#errors-from-the-database).
//!
//! The remote client reports server errors as text, so remote errors are classified by the SQLite code
//! names and the Hrana error kinds in their messages.

use super::error::{DatabaseErrorKind, StorageError};
use crate::libsql::LibsqlError;
use crate::pool::PoolError;

const SQLITE_ERROR: i32 = 1;
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_CONSTRAINT: i32 = 19;
const SQLITE_MISMATCH: i32 = 20;
const SQLITE_RANGE: i32 = 25;

impl From<LibsqlError> for StorageError {
    fn from(error: LibsqlError) -> Self {
        let kind = match &error {
            LibsqlError::Libsql(error) => classify(error),
            LibsqlError::Pool(error) => match error.as_ref() {
                PoolError::Timeout(_) => DatabaseErrorKind::Timeout,
                _ => DatabaseErrorKind::Other,
            },
            LibsqlError::WriteLaneTimeout(_) => DatabaseErrorKind::Timeout,
            LibsqlError::ParameterCount { .. }
            | LibsqlError::UnknownParameter { .. }
            | LibsqlError::Statement { .. } => DatabaseErrorKind::Sql,
            LibsqlError::NotCommitted { .. } => DatabaseErrorKind::NotCommitted,
            LibsqlError::Setup { source, .. } => source
                .downcast_ref::<libsql::Error>()
                .map_or(DatabaseErrorKind::Other, classify),
            _ => DatabaseErrorKind::Other,
        };
        StorageError::database_with_source(kind, error.to_string(), error)
    }
}

impl From<libsql::Error> for StorageError {
    fn from(error: libsql::Error) -> Self {
        StorageError::from(LibsqlError::from(error))
    }
}

/// The kind of a libSQL error.
pub(crate) fn classify(error: &libsql::Error) -> DatabaseErrorKind {
    match error {
        libsql::Error::SqliteFailure(code, _) | libsql::Error::RemoteSqliteFailure(_, code, _) => {
            kind_of_code(*code)
        }
        libsql::Error::ConnectionFailed(_) => DatabaseErrorKind::Network,
        libsql::Error::Hrana(source) => kind_of_hrana_message(&source.to_string()),
        libsql::Error::Sqlite3SyntaxError(..)
        | libsql::Error::Sqlite3UnsupportedStatement
        | libsql::Error::Sqlite3ParserError(_)
        | libsql::Error::ExecuteReturnedRows => DatabaseErrorKind::Sql,
        _ => DatabaseErrorKind::Other,
    }
}

/// The kind of a SQLite result code (primary or extended: the primary code is its low byte).
pub(crate) fn kind_of_code(code: i32) -> DatabaseErrorKind {
    match code & 0xff {
        SQLITE_BUSY => DatabaseErrorKind::Busy,
        SQLITE_LOCKED => DatabaseErrorKind::Locked,
        SQLITE_CONSTRAINT => DatabaseErrorKind::Constraint,
        SQLITE_ERROR | SQLITE_MISMATCH | SQLITE_RANGE => DatabaseErrorKind::Sql,
        _ => DatabaseErrorKind::Other,
    }
}

/// The kind of a Hrana (remote) error, from its message: a SQLite code name if the server sent one,
/// else the kind of Hrana failure.
fn kind_of_hrana_message(message: &str) -> DatabaseErrorKind {
    const BY_CODE_NAME: [(&str, DatabaseErrorKind); 4] = [
        ("SQLITE_BUSY", DatabaseErrorKind::Busy),
        ("SQLITE_LOCKED", DatabaseErrorKind::Locked),
        ("SQLITE_CONSTRAINT", DatabaseErrorKind::Constraint),
        ("SQLITE_ERROR", DatabaseErrorKind::Sql),
    ];
    if let Some((_, kind)) = BY_CODE_NAME.iter().find(|(name, _)| message.contains(name)) {
        return *kind;
    }
    let server_error = message
        .strip_prefix("api error: `status=5")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    // `http::Error` is the HTTP client refusing to build the request (a bad URI, say): no retry helps.
    if message.starts_with("http error: `http::Error(") {
        DatabaseErrorKind::Other
    } else if server_error
        || message.starts_with("http error")
        || message.starts_with("stream closed")
    {
        DatabaseErrorKind::Network
    } else if message.starts_with("stream error") || message.starts_with("cursor error") {
        DatabaseErrorKind::Sql
    } else {
        DatabaseErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DatabaseErrorKind::*;

    fn sqlite(code: i32) -> DatabaseErrorKind {
        classify(&libsql::Error::SqliteFailure(code, String::from("x")))
    }

    #[test]
    fn sqlite_codes() {
        for (code, kind) in [
            (5, Busy),
            (517, Busy),
            (261, Busy),
            (6, Locked),
            (262, Locked),
            (19, Constraint),
            (1555, Constraint),
            (2067, Constraint),
            (1811, Constraint),
            (1, Sql),
            (20, Sql),
            (25, Sql),
            (10, Other),
            (11, Other),
            (9, Other),
        ] {
            assert_eq!(sqlite(code), kind, "code {code}");
        }
        let remote = libsql::Error::RemoteSqliteFailure(0, 2067, String::from("UNIQUE"));
        assert_eq!(classify(&remote), Constraint);
    }

    #[test]
    fn hrana_messages() {
        for (message, kind) in [
            ("http error: `hyper::Error(Connect, ConnectError(\"tcp connect error\"))`", Network),
            ("http error: `http::Error(InvalidUri(InvalidUriChar))`", Other),
            ("stream closed: `eof`", Network),
            ("api error: `status=503 Service Unavailable, body=`", Network),
            ("api error: `status=401 Unauthorized, body=`", Other),
            ("stream error: `Error { message: \"no such table: x\", code: \"SQLITE_ERROR\" }`", Sql),
            ("stream error: `Error { message: \"UNIQUE failed\", code: \"SQLITE_CONSTRAINT_PRIMARYKEY\" }`", Constraint),
            ("stream error: `Error { message: \"locked\", code: \"SQLITE_BUSY\" }`", Busy),
            ("stream error: `Error { message: \"syntax\", code: \"SQL_PARSE_ERROR\" }`", Sql),
            ("json error: `eof`", Other),
        ] {
            assert_eq!(kind_of_hrana_message(message), kind, "{message}");
            let error = libsql::Error::Hrana(message.into());
            assert_eq!(classify(&error), kind, "{message}");
        }
        assert_eq!(
            classify(&libsql::Error::ConnectionFailed("refused".into())),
            Network
        );
    }

    #[test]
    fn library_errors() {
        let error = StorageError::from(LibsqlError::ParameterCount {
            sql: String::from("SELECT ?1"),
            expected: 1,
            given: 0,
        });
        assert!(matches!(error, StorageError::Database { kind: Sql, .. }));
        let error = StorageError::from(LibsqlError::Pool(Box::new(PoolError::Closed)));
        assert!(matches!(error, StorageError::Database { kind: Other, .. }));
        assert!(!error.is_transient());
        let busy = StorageError::from(libsql::Error::SqliteFailure(517, String::from("locked")));
        assert!(busy.is_transient());
        assert!(std::error::Error::source(&busy).is_some());
        // A write of a group commit that another write rolled back: nothing stored, so retried.
        let rolled_back = StorageError::from(LibsqlError::NotCommitted {
            reason: String::from("the group's COMMIT failed"),
        });
        assert!(matches!(
            rolled_back,
            StorageError::Database {
                kind: DatabaseErrorKind::NotCommitted,
                ..
            }
        ));
        assert!(rolled_back.is_transient());
    }
}
