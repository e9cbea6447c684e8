//! [`OwnedConnection`]: a `libsql::Connection` whose SQLite handle is closed exactly once.
//!
//! libsql 0.9.30 closes a local connection's handle **twice** when the last `libsql::Connection` clone
//! drops: its `LibsqlConnection` wrapper calls `sqlite3_close_v2` in its `Drop`, and the inner
//! connection's own `Drop` calls it again, because the only guard is "am I the last clone", which is
//! still true the second time (tursodatabase/libsql#2251, #2264; fixes are open upstream, none is
//! released). The second call reads the freed `sqlite3` struct. Usually that returns `SQLITE_MISUSE`
//! unseen, but it crashed this crate's tests (SIGSEGV in `sqlite3SafetyCheckSickOrOk`, 1 run in 12 to
//! 27 beside two CPU hogs) when the heap page was gone, and when another thread has already reused the
//! block for a new connection the second close lands on *that* connection.
//!
//! The close is guarded by a count of the handle's owners, and every prepared statement owns the
//! handle too. So an `OwnedConnection` keeps one prepared `SELECT 1` (never run, so it holds no lock
//! and pins no snapshot) and drops it **after** the connection: when the `libsql::Connection` goes,
//! the statement still owns the handle and neither of libsql's two closes runs; when the statement
//! goes, its single close runs, and SQLite frees the handle once the statement is finalized. Remote
//! connections speak Hrana and have no SQLite handle, so nothing is kept for them.
//!
//! What this cannot cover: a clone of the `libsql::Connection` that outlives its `OwnedConnection`
//! (keep none), and a connection handed out with [`OwnedConnection::into_libsql`].
//! `tests/libsql_close_once.rs` checks under valgrind that every connection this crate opens is closed
//! without reading freed memory.

use std::fmt;
use std::ops::Deref;

use super::database::DatabaseKind;
use super::error::Result;

/// A `libsql::Connection` that closes its SQLite handle exactly once when dropped (see the module
/// docs for the libsql bug this works around). Derefs to `libsql::Connection`.
///
/// [`LibsqlDatabase::connect`](super::LibsqlDatabase::connect) returns one; wrap a connection you
/// opened yourself with [`new`](Self::new).
///
/// ```
/// use memory_storage_turso::libsql::{block_on, OwnedConnection};
///
/// let database = block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
/// let conn = OwnedConnection::new(database.connect().unwrap()).unwrap();
/// assert!(conn.guards_close());
/// block_on(conn.execute("CREATE TABLE t(x)", ())).unwrap();
/// drop(conn); // one sqlite3_close_v2, not two
/// ```
pub struct OwnedConnection {
    // Field order is drop order: the connection goes first, while `keeper` still owns the handle.
    conn: libsql::Connection,
    /// A statement that owns the handle, dropped last so that its close is the only one.
    keeper: Option<libsql::Statement>,
}

impl OwnedConnection {
    /// Wraps a connection of any kind, and guards its close if it has a SQLite handle in this process:
    /// a local file or in-memory database, or an embedded replica (whose connection is remote to most
    /// of libsql's API but local underneath). Told without I/O: only such connections answer libsql's
    /// reserved-bytes query. (libsql asks by passing 0, which SQLite also records as the reserve this
    /// connection wants; a `VACUUM` keeps the file's own reserve all the same.) A Hrana (remote)
    /// connection is wrapped as it is, with no round trip.
    ///
    /// # Errors
    /// A libSQL error if SQLite cannot prepare the guard statement (the connection is unusable).
    pub fn new(conn: libsql::Connection) -> Result<Self> {
        if conn.get_reserved_bytes().is_ok() {
            Self::local(conn)
        } else {
            Ok(Self::unguarded(conn))
        }
    }

    /// Wraps a connection to a database that runs in this process (a file, an in-memory database,
    /// an embedded replica). Prepares `SELECT 1`, which reads nothing and needs no runtime.
    ///
    /// # Errors
    /// A libSQL error if SQLite cannot prepare the statement (the connection is unusable).
    pub fn local(conn: libsql::Connection) -> Result<Self> {
        let keeper = super::block_on(conn.prepare("SELECT 1"))?;
        Ok(Self {
            conn,
            keeper: Some(keeper),
        })
    }

    /// Wraps a remote connection, which libsql closes correctly: nothing is kept.
    pub fn remote(conn: libsql::Connection) -> Self {
        Self::unguarded(conn)
    }

    /// Wraps a connection without a guard.
    fn unguarded(conn: libsql::Connection) -> Self {
        Self { conn, keeper: None }
    }

    /// Whether a statement guards the close (false for remote connections).
    pub fn guards_close(&self) -> bool {
        self.keeper.is_some()
    }

    /// What a connection of a caller's `libsql::Database` is connected to, told without I/O:
    /// [`Remote`](DatabaseKind::Remote) with no SQLite handle here, [`Replica`](DatabaseKind::Replica)
    /// with one under an API that refuses an authorizer (an embedded replica sends its writes to the
    /// primary), else [`Unknown`](DatabaseKind::Unknown): a local file or in-memory database. Clearing
    /// the authorizer of a local connection changes nothing.
    pub(crate) fn probe_kind(&self) -> DatabaseKind {
        if !self.guards_close() {
            DatabaseKind::Remote
        } else if self.conn.authorizer(None).is_err() {
            DatabaseKind::Replica
        } else {
            DatabaseKind::Unknown
        }
    }

    /// Unwraps the `libsql::Connection`. Dropping its last clone then closes a local handle twice
    /// (see the module docs): wrap it again with [`new`](Self::new) before it goes.
    pub fn into_libsql(self) -> libsql::Connection {
        self.conn
    }
}

impl Deref for OwnedConnection {
    type Target = libsql::Connection;

    fn deref(&self) -> &libsql::Connection {
        &self.conn
    }
}

impl fmt::Debug for OwnedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedConnection")
            .field("guards_close", &self.guards_close())
            .finish_non_exhaustive()
    }
}
