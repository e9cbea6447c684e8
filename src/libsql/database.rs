//! [`LibsqlDatabase`]: which database the pool connects to, opened and prepared before any pooled
//! connection exists.
//!
//! # Measured facts behind this module
//!
//! * `:memory:` is private to each connection: a pool over it would hand out unrelated empty databases.
//! * A shared-cache URI (`file:NAME?mode=memory&cache=shared`) shares one database, but shared-cache
//!   locking is per table and ignores `busy_timeout`: with 4 writers and 4 readers on one table, 724 of
//!   600 operations' statements failed with `SqliteFailure(262, "database table is locked")`.
//! * The `memdb` VFS (`file:/NAME?vfs=memdb`) shares one database with ordinary file locking, which the
//!   busy timeout covers: the same load had 0 errors. So in-memory databases use `memdb`, with a unique
//!   name per [`LibsqlDatabase`].
//! * A shared in-memory database disappears when its last connection closes. So every local
//!   [`LibsqlDatabase`] keeps one connection of its own open for its whole life: the *anchor*.
//! * SQLite removes a WAL file's `-wal`/`-shm` files when a closing connection can lock the database
//!   file exclusively. Pool connections closing at the same moment can each see the other and both
//!   leave them behind. So the anchor of a WAL file opens the WAL at once: in WAL mode a connection
//!   then holds a shared lock on the file for the rest of its life, no pool connection's close removes
//!   the files, and the anchor, closed when the last pool over the database is dropped, removes them.
//! * Connections opened before `PRAGMA journal_mode=WAL` keep the old mode, so WAL is switched on
//!   through the anchor when the database is opened, before any pool opens a connection. The PRAGMA
//!   returns a row, so it runs through `query` (`execute` fails with `ExecuteReturnedRows`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;

use super::error::{LibsqlError, Result};
use super::owned::OwnedConnection;
use super::setup::ConnectionSetup;

/// What kind of database a [`LibsqlDatabase`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseKind {
    /// A local file.
    File,
    /// An in-memory database shared by all connections of one [`LibsqlDatabase`].
    Memory,
    /// A remote libSQL server or Turso database, over Hrana (feature `remote`).
    Remote,
    /// An embedded replica: a local file synced from a remote primary (feature `replica`).
    Replica,
    /// A `libsql::Database` handed in by the caller, of a kind this layer cannot see (the
    /// [`ConnectionPool`](super::ConnectionPool) compatibility API). Each new connection is probed,
    /// without I/O: one that turns out to be remote is treated as [`Remote`](DatabaseKind::Remote), one
    /// of an embedded replica as [`Replica`](DatabaseKind::Replica), else as local.
    Unknown,
}

impl DatabaseKind {
    /// Whether every statement runs on SQLite in this process (file, memory, and unknown databases
    /// that probed local). Only these get the PRAGMA setup, the statement cache with its binding
    /// checks, and a `ROLLBACK` on return; remote connections and embedded replicas (whose writes go
    /// to the primary) send statements as they are, and are closed if returned inside a transaction.
    pub fn runs_locally(self) -> bool {
        matches!(
            self,
            DatabaseKind::File | DatabaseKind::Memory | DatabaseKind::Unknown
        )
    }
}

/// A database to pool connections to: a local file, an in-memory database, a remote server, or an
/// embedded replica. Cheap to share: managers hold it in an `Arc`.
///
/// Local databases keep one connection of their own open for their whole life (see the module docs),
/// and files are switched to WAL here, before any pool opens a connection.
///
/// ```
/// use memory_storage_turso::libsql::{DatabaseKind, LibsqlDatabase};
///
/// let dir = tempfile::tempdir().unwrap();
/// let file = LibsqlDatabase::open_file(dir.path().join("app.db")).unwrap();
/// assert_eq!(file.kind(), DatabaseKind::File);
///
/// let memory = LibsqlDatabase::open_memory().unwrap();
/// assert_eq!(memory.kind(), DatabaseKind::Memory);
/// ```
pub struct LibsqlDatabase {
    database: Arc<libsql::Database>,
    kind: DatabaseKind,
    location: String,
    wal: bool,
    /// Keeps a local database (and its WAL files, or its memory) alive between pooled connections.
    _anchor: Option<OwnedConnection>,
}

impl fmt::Debug for LibsqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibsqlDatabase")
            .field("kind", &self.kind)
            .field("location", &self.location)
            .field("wal", &self.wal)
            .finish_non_exhaustive()
    }
}

impl LibsqlDatabase {
    /// Opens what `target` names: `:memory:` for a fresh in-memory database, a `libsql://`, `https://`,
    /// `http://` or `wss://` URL for a remote database (feature `remote`; `auth_token` is used only
    /// there), and anything else as a local file path.
    ///
    /// # Errors
    /// [`LibsqlError::FeatureDisabled`] for a URL without the `remote` feature; a libSQL error if the
    /// file cannot be opened.
    pub async fn open(target: &str, auth_token: Option<&str>) -> Result<Self> {
        if target == ":memory:" {
            return Self::open_memory();
        }
        if is_remote_url(target) {
            #[cfg(feature = "remote")]
            return Self::open_remote(target, auth_token.unwrap_or_default()).await;
            #[cfg(not(feature = "remote"))]
            {
                let _ = auth_token;
                return Err(LibsqlError::FeatureDisabled {
                    url: target.to_owned(),
                    feature: "remote",
                });
            }
        }
        Self::open_file(target)
    }

    /// Opens (or creates) a local database file in WAL mode. Needs no runtime.
    ///
    /// # Errors
    /// [`LibsqlError::OpenFile`] if the file cannot be opened or created (a missing directory, no
    /// permission); a libSQL error if it is not a database or cannot be switched to WAL.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_file_with(path.as_ref(), true)
    }

    /// Opens (or creates) a local database file and leaves its journal mode as it is (a new file gets
    /// SQLite's default, `DELETE`). Prefer [`open_file`](Self::open_file).
    ///
    /// # Errors
    /// [`LibsqlError::OpenFile`] if the file cannot be opened or created.
    pub fn open_file_keep_journal(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_file_with(path.as_ref(), false)
    }

    fn open_file_with(path: &Path, wal: bool) -> Result<Self> {
        let open_error = |source| LibsqlError::OpenFile {
            path: path.display().to_string(),
            source,
        };
        let database = block_on(libsql::Builder::new_local(path).build()).map_err(open_error)?;
        // libsql reports a file it cannot open as `ConnectionFailed`, the error of an unreachable
        // server: say what it is instead.
        let anchor = OwnedConnection::local(database.connect().map_err(open_error)?)?;
        if wal {
            let mode = switch_to_wal(&anchor)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(LibsqlError::Unsupported(format!(
                    "could not switch `{}` to WAL (journal mode is `{mode}`); use \
                     open_file_keep_journal to keep it",
                    path.display()
                )));
            }
            hold_the_wal(&anchor).map_err(|error| match error {
                LibsqlError::Libsql(source) => open_error(source),
                other => other,
            })?;
        }
        Ok(Self {
            database: Arc::new(database),
            kind: DatabaseKind::File,
            location: path.display().to_string(),
            wal,
            _anchor: Some(anchor),
        })
    }

    /// Creates a new, empty in-memory database that every connection of this value shares. It lives as
    /// long as this value (and any pool built on it). Needs no runtime.
    ///
    /// It uses SQLite's `memdb` VFS under a unique name (see the module docs for why not a shared-cache
    /// URI). There is no WAL in memory; the busy timeout orders writers and readers.
    ///
    /// # Errors
    /// A libSQL error if SQLite cannot open it.
    pub fn open_memory() -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "file:/memory-storage-turso-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let database = block_on(libsql::Builder::new_local(PathBuf::from(&name)).build())?;
        let anchor = OwnedConnection::local(database.connect()?)?;
        Ok(Self {
            database: Arc::new(database),
            kind: DatabaseKind::Memory,
            location: name,
            wal: false,
            _anchor: Some(anchor),
        })
    }

    /// Connects to a remote libSQL server or Turso database (`libsql://`, `https://`, `http://`).
    /// Its connections need a tokio runtime when they run queries.
    ///
    /// # Errors
    /// A libSQL error if the URL is malformed.
    #[cfg(feature = "remote")]
    pub async fn open_remote(url: &str, auth_token: &str) -> Result<Self> {
        // The `tls` feature is always on with `remote`, so `build` cannot hit libsql's "tls feature is
        // disabled" panic.
        let database = libsql::Builder::new_remote(url.to_owned(), auth_token.to_owned())
            .build()
            .await?;
        Ok(Self {
            database: Arc::new(database),
            kind: DatabaseKind::Remote,
            location: url.to_owned(),
            wal: false,
            _anchor: None,
        })
    }

    /// Opens an embedded replica: reads run on the local file at `path`, writes go to the remote primary
    /// at `url`. Call [`sync`](Self::sync) to pull changes. Needs a tokio runtime.
    ///
    /// The replica manages its own journal, so this layer sets no journal mode on it.
    ///
    /// # Errors
    /// A libSQL error if the replica cannot be opened or its first sync fails.
    #[cfg(feature = "replica")]
    pub async fn open_replica(path: impl AsRef<Path>, url: &str, auth_token: &str) -> Result<Self> {
        let path = path.as_ref();
        let database =
            libsql::Builder::new_remote_replica(path, url.to_owned(), auth_token.to_owned())
                .build()
                .await?;
        let anchor = OwnedConnection::local(database.connect()?)?;
        Ok(Self {
            database: Arc::new(database),
            kind: DatabaseKind::Replica,
            location: path.display().to_string(),
            wal: false,
            _anchor: Some(anchor),
        })
    }

    /// Pulls the latest changes from the primary into an embedded replica.
    ///
    /// # Errors
    /// [`LibsqlError::Unsupported`] on a database that is not a replica; a libSQL error if the sync
    /// fails.
    #[cfg(feature = "replica")]
    pub async fn sync(&self) -> Result<()> {
        if self.kind != DatabaseKind::Replica {
            return Err(LibsqlError::Unsupported(format!(
                "sync() works on embedded replicas only; this database is {:?}",
                self.kind
            )));
        }
        self.database.sync().await?;
        Ok(())
    }

    /// Wraps a `libsql::Database` opened by the caller, of unknown kind (it is treated as local).
    ///
    /// This layer cannot switch it to WAL safely, because connections may already be open; switch it
    /// yourself before opening any, or use [`open_file`](Self::open_file). No anchor connection is kept.
    pub fn from_libsql(database: Arc<libsql::Database>) -> Self {
        Self {
            database,
            kind: DatabaseKind::Unknown,
            location: String::from("(caller's libsql::Database)"),
            wal: false,
            _anchor: None,
        }
    }

    /// Opens a new raw connection (no pool, no setup), guarded so that dropping it closes its SQLite
    /// handle once (see [`OwnedConnection`]). A connection to a remote database has no SQLite handle
    /// and needs no guard; on a database of [`DatabaseKind::Unknown`] kind, [`OwnedConnection::new`]
    /// tells which it is.
    ///
    /// # Errors
    /// A libSQL error if SQLite (or the remote client) cannot open one.
    pub fn connect(&self) -> Result<OwnedConnection> {
        let conn = self.database.connect()?;
        match self.kind {
            DatabaseKind::File | DatabaseKind::Memory | DatabaseKind::Replica => {
                OwnedConnection::local(conn)
            }
            DatabaseKind::Remote => Ok(OwnedConnection::remote(conn)),
            DatabaseKind::Unknown => OwnedConnection::new(conn),
        }
    }

    /// What kind of database this is.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Refuses a remote database or an embedded replica for `what`, which runs only on local SQLite.
    /// A caller's `libsql::Database` ([`DatabaseKind::Unknown`]) is probed, without I/O, through one
    /// connection.
    pub(crate) fn require_local(&self, what: &str, instead: &str) -> Result<()> {
        let kind = match self.kind {
            DatabaseKind::Unknown => self.connect()?.probe_kind(),
            kind => kind,
        };
        if matches!(kind, DatabaseKind::Remote | DatabaseKind::Replica) {
            return Err(LibsqlError::Unsupported(format!(
                "{what} are for local databases, and this is a {kind:?} database: {instead}"
            )));
        }
        Ok(())
    }

    /// Whether each connection of this database opens a database of its own: a caller's
    /// `libsql::Database` on `:memory:` or on an empty path, for which SQLite reports no file.
    /// Only a database of [`DatabaseKind::Unknown`] kind can be one (probed through one connection).
    pub(crate) fn private_to_each_connection(&self) -> Result<bool> {
        if self.kind != DatabaseKind::Unknown {
            return Ok(false);
        }
        let conn = self.connect()?;
        if conn.probe_kind() != DatabaseKind::Unknown {
            return Ok(false);
        }
        let sql = "SELECT ifnull(file, '') FROM pragma_database_list WHERE name = 'main'";
        Ok(block_on(query_text(&conn, sql))?.is_empty())
    }

    /// Whether this layer switched the file to WAL.
    pub fn is_wal(&self) -> bool {
        self.wal
    }

    /// The path, memdb name or URL.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The underlying `libsql::Database`.
    pub fn libsql(&self) -> &Arc<libsql::Database> {
        &self.database
    }
}

/// Whether `target` is a URL that needs the remote client.
fn is_remote_url(target: &str) -> bool {
    ["libsql://", "https://", "http://", "wss://", "ws://"]
        .iter()
        .any(|scheme| target.starts_with(scheme))
}

/// Switches the file of `anchor` to WAL and returns the journal mode it is in then.
///
/// The switch takes an exclusive lock for a moment. When other connections (other processes, other
/// `LibsqlDatabase`s on the same file) are opening or using the file at the same time, SQLite can
/// report "database is locked" at once, without calling the busy handler (measured: 14 failures in
/// 800 concurrent opens, with a busy timeout set). So the switch is retried for up to the default busy
/// timeout.
fn switch_to_wal(anchor: &libsql::Connection) -> Result<String> {
    retry_while_locked(|| block_on(query_text(anchor, "PRAGMA journal_mode=WAL")))
}

/// Runs `step` again while it fails with a lock error, for up to the default busy timeout: the anchor
/// runs with libSQL's busy timeout of 0, and other processes or threads may be opening the same file.
fn retry_while_locked<T>(mut step: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + ConnectionSetup::default().busy_timeout_value();
    loop {
        match step() {
            Err(error) if error.is_locked() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            result => return result,
        }
    }
}

/// Makes the anchor open the WAL with one read. A connection that has opened the WAL keeps a shared
/// lock on the database file for the rest of its life, so no other connection's close can take the
/// exclusive lock that removing the `-wal`/`-shm` files needs; the anchor, closed last, removes them.
/// Without it, two pool connections closing at the same moment could each see the other and both
/// leave the files behind (seen in 3 to 8 % of the runs of a shutdown test).
fn hold_the_wal(anchor: &libsql::Connection) -> Result<()> {
    retry_while_locked(|| {
        block_on(run_to_end(anchor, "SELECT 1 FROM sqlite_master LIMIT 1")).map_err(Into::into)
    })
}

/// Runs a statement and steps through all its rows (a health check, a PRAGMA that returns rows).
pub(crate) async fn run_to_end(conn: &libsql::Connection, sql: &str) -> libsql::Result<()> {
    let mut rows = conn.query(sql, ()).await?;
    while rows.next().await?.is_some() {}
    Ok(())
}

/// Runs a statement that returns one text value (such as a PRAGMA) and returns it.
pub(crate) async fn query_text(conn: &libsql::Connection, sql: &str) -> Result<String> {
    let mut rows = conn.query(sql, ()).await?;
    let row = rows
        .next()
        .await?
        .ok_or(libsql::Error::QueryReturnedNoRows)?;
    Ok(row.get::<String>(0)?)
}
