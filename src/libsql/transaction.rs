//! [`Transaction`]: a libSQL transaction that cannot outlive the pooled connection it runs on.
//!
//! `libsql::Transaction` holds a clone of its connection's handle and has no lifetime. Kept past the
//! guard, it would act on the connection's next holder: its `commit` commits that holder's
//! transaction, and its drop (a `ROLLBACK` whenever the handle is inside a transaction) rolls it back.
//! This wrapper borrows the pooled connection mutably for as long as it lives, so such an escape does
//! not compile:
//!
//! ```compile_fail
//! use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let lanes = LanedPool::builder(LibsqlDatabase::open_file(dir.path().join("t.db")).unwrap())
//!     .build()
//!     .unwrap();
//! let escaped = {
//!     let mut writer = lanes.write_blocking().unwrap();
//!     block_on(writer.transaction()).unwrap()
//! }; // error: `writer` does not live long enough
//! ```

use std::marker::PhantomData;
use std::ops::Deref;

use super::connection::LibsqlConnection;

/// A transaction on a pooled connection, begun by [`LibsqlConnection::transaction`]. It derefs to
/// `libsql::Transaction` (and through it to the connection: `execute`, `query`, `prepare`). Dropping
/// it without [`commit`](Self::commit) rolls it back.
///
/// ```
/// use memory_storage_turso::libsql::{block_on, LanedPool, LibsqlDatabase};
///
/// let dir = tempfile::tempdir().unwrap();
/// let lanes = LanedPool::builder(LibsqlDatabase::open_file(dir.path().join("t.db")).unwrap())
///     .build()
///     .unwrap();
/// let mut writer = lanes.write_blocking().unwrap();
/// block_on(async {
///     writer.execute_schema("CREATE TABLE t(n INTEGER)").await?;
///     let tx = writer.transaction().await?; // BEGIN IMMEDIATE on the write lane
///     tx.execute("INSERT INTO t VALUES (1)", ()).await?;
///     tx.commit().await?;
///     Ok::<_, memory_storage_turso::libsql::LibsqlError>(())
/// })
/// .unwrap();
/// ```
pub struct Transaction<'conn> {
    inner: libsql::Transaction,
    _conn: PhantomData<&'conn mut LibsqlConnection>,
}

impl<'conn> Transaction<'conn> {
    pub(crate) fn new(inner: libsql::Transaction) -> Self {
        Self {
            inner,
            _conn: PhantomData,
        }
    }

    /// Commits the transaction.
    ///
    /// # Errors
    /// A libSQL error (a deferred foreign key broken, say); the transaction is then rolled back when the
    /// connection goes back to its pool.
    pub async fn commit(self) -> libsql::Result<()> {
        self.inner.commit().await
    }

    /// Rolls the transaction back.
    ///
    /// # Errors
    /// A libSQL error.
    pub async fn rollback(self) -> libsql::Result<()> {
        self.inner.rollback().await
    }
}

impl Deref for Transaction<'_> {
    type Target = libsql::Transaction;

    fn deref(&self) -> &libsql::Transaction {
        &self.inner
    }
}
