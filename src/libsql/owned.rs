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

use super::error::Result;

/// A `libsql::Connection` that closes its SQLite handle exactly once when dropped (see the module
/// docs for the libsql bug this works around). Derefs to `libsql::Connection`.
///
/// [`LibsqlDatabase::connect`](super::LibsqlDatabase::connect) returns one; wrap a connection you
/// opened yourself with [`local`](Self::local).
///
/// ```
/// use memory_storage_turso::libsql::{block_on, OwnedConnection};
///
/// let database = block_on(libsql::Builder::new_local(":memory:").build()).unwrap();
/// let conn = OwnedConnection::local(database.connect().unwrap()).unwrap();
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
    /// Wraps a connection to a database that runs in this process (a file, an in-memory database,
    /// an embedded replica). Prepares `SELECT 1`, which reads nothing and needs no runtime.
    ///
    /// # Errors
    /// A libSQL error if SQLite cannot prepare the statement (the connection is unusable).
    pub fn local(conn: libsql::Connection) -> Result<Self> {
        let keeper = super::block_on(conn.prepare("SELECT 1"))?;
        Ok(Self::keeping(conn, keeper))
    }

    /// Wraps a remote connection, which libsql closes correctly: nothing is kept.
    pub fn remote(conn: libsql::Connection) -> Self {
        Self::unguarded(conn)
    }

    /// Wraps a connection of a kind not yet known, without a guard.
    pub(crate) fn unguarded(conn: libsql::Connection) -> Self {
        Self { conn, keeper: None }
    }

    /// Wraps `conn` with `keeper`, a statement prepared locally on it.
    pub(crate) fn keeping(conn: libsql::Connection, keeper: libsql::Statement) -> Self {
        Self {
            conn,
            keeper: Some(keeper),
        }
    }

    /// Whether a statement guards the close (false for remote connections).
    pub fn guards_close(&self) -> bool {
        self.keeper.is_some()
    }

    /// Unwraps the `libsql::Connection`. Dropping its last clone then closes a local handle twice
    /// (see the module docs): wrap it again with [`local`](Self::local) before it goes.
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
