//! [`Checkpointer`]: WAL checkpoints for the write lane, run after its connection went back.
//!
//! SQLite checkpoints a WAL file automatically: the connection whose commit takes the WAL past 1,000
//! pages copies the pages back into the database file (with an `fsync` of each file) before its
//! `COMMIT` returns. In a pool of equal connections that costs little: the lock is already released
//! and other writers go on meanwhile. On the write lane it stalls every writer, because the lane has a
//! single connection and the checkpoint runs while its holder still holds it. Measured: the lane's
//! inserts were 2 to 3 times slower than those of a plain pool, and as fast with checkpoints off.
//!
//! So the write lane's connection runs with `PRAGMA wal_autocheckpoint=0`, counts the rows its
//! holders change, and once they reach a threshold (1,000 by default) the holder that returns it runs
//! `PRAGMA wal_checkpoint(PASSIVE)` on a connection of its own, after the lane was handed to the next
//! writer. Rows are a proxy for pages: large rows, and DDL such as `CREATE INDEX` (which changes no
//! row), write many pages for few rows. So every [`SIZE_CHECK_EVERY`]th return also reads the size of
//! the `-wal` file, and checkpoints once it passes [`WAL_BYTES_LIMIT`] and grew by a quarter of it
//! since the last checkpoint this check ran. The lane's connection sets `journal_size_limit` to the
//! same size, so that SQLite cuts the file back to it when it restarts the log after a checkpoint.
//! The limit is a backstop, above what small rows reach between two row-count checkpoints (the log
//! restarts only at the first commit after a checkpoint that copied every frame, so such a WAL
//! reaches 5 to 10 MiB): a 4 MiB limit fired on most returns there and made 8 writers' group commits
//! 15 % slower. The growth rule keeps it from firing on every check while a reader's snapshot keeps
//! the log from restarting. Measured: 400 inserts of 256 KiB rows left a 104 MiB WAL before this
//! check. A passive checkpoint never waits for a lock and never blocks
//! writers or readers; at most one runs at a time (a holder that finds one running goes on). A failed
//! checkpoint loses nothing (the pages stay in the WAL, which only grows until the next one) and is
//! retried at the next threshold.
//!
//! The checkpoint runs on the returning thread (an executor thread, for async callers), as SQLite's
//! own automatic checkpoint does. Handing it to the runtime's blocking pool instead was tried and
//! dropped: in an A/B run of `benches/libsql.rs` on 2 cores, 8 writers' inserts went from 1.06x to
//! 0.85x a plain pool's throughput with tasks, and from 0.58x to 0.33x with threads.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use super::database::{query_text, run_to_end, LibsqlDatabase};
use super::owned::OwnedConnection;

/// The default number of changed rows between two checkpoints of the write lane.
pub const DEFAULT_CHECKPOINT_AFTER_CHANGES: u64 = 1_000;

/// A `-wal` file larger than this is checkpointed whatever the count of changed rows (16 MiB: four
/// times SQLite's own threshold of 1,000 pages of 4 KiB). Also the lane's `journal_size_limit`.
pub(crate) const WAL_BYTES_LIMIT: u64 = 16 * 1024 * 1024;

/// The write lane's `journal_size_limit`: [`WAL_BYTES_LIMIT`].
pub(crate) const JOURNAL_SIZE_LIMIT: &str = "PRAGMA journal_size_limit=16777216";

/// How many returns of the lane pass between two reads of the `-wal` file's size.
const SIZE_CHECK_EVERY: u64 = 8;

/// Runs passive WAL checkpoints on a connection of its own once enough rows changed.
pub(crate) struct Checkpointer {
    database: Arc<LibsqlDatabase>,
    after_changes: u64,
    pending: AtomicU64,
    completed: AtomicU64,
    /// The `-wal` file, and the returns of the lane counted to read its size now and then.
    wal_path: PathBuf,
    returns: AtomicU64,
    /// The WAL's size when the size check last asked for a checkpoint (0 once it was back under the
    /// limit).
    checkpointed_at_bytes: AtomicU64,
    /// The checkpoint connection (opened at the first checkpoint), or `Closed`.
    conn: Mutex<Slot>,
}

enum Slot {
    Unopened,
    Open(OwnedConnection),
    Closed,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("after_changes", &self.after_changes)
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    /// A checkpointer for `database` that checkpoints after `after_changes` (> 0) changed rows.
    pub(crate) fn new(database: Arc<LibsqlDatabase>, after_changes: u64) -> Self {
        Self {
            wal_path: wal_path(&database),
            returns: AtomicU64::new(0),
            checkpointed_at_bytes: AtomicU64::new(0),
            database,
            after_changes,
            pending: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            conn: Mutex::new(Slot::Unopened),
        }
    }

    /// Counts rows changed by a holder of the write lane.
    pub(crate) fn count(&self, changes: u64) {
        if changes > 0 {
            self.pending.fetch_add(changes, Ordering::Relaxed);
        }
    }

    /// Checkpoints if enough rows changed since the last checkpoint (or the WAL grew past
    /// [`WAL_BYTES_LIMIT`]) and no other checkpoint runs. Returns whether it ran one that succeeded.
    pub(crate) fn checkpoint_if_due(&self) -> bool {
        if self.pending.load(Ordering::Relaxed) < self.after_changes && !self.wal_too_large() {
            return false;
        }
        let mut slot = match self.conn.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::WouldBlock) => return false,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        self.pending.store(0, Ordering::Relaxed);
        if matches!(*slot, Slot::Unopened) {
            match self.database.connect() {
                Ok(conn) => *slot = Slot::Open(conn),
                Err(error) => {
                    report_failure(&error);
                    return false;
                }
            }
        }
        let Slot::Open(conn) = &*slot else {
            return false;
        };
        match super::block_on(run_to_end(conn, "PRAGMA wal_checkpoint(PASSIVE)")) {
            Ok(()) => {
                self.completed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(error) => {
                report_failure(&error);
                // A fresh connection next time, in case this one is in a bad state.
                *slot = Slot::Unopened;
                false
            }
        }
    }

    /// Whether this is a return that reads the WAL's size, and it is over the limit and grew by a
    /// quarter of it since this check last asked for a checkpoint (or shrank since: the log restarted).
    fn wal_too_large(&self) -> bool {
        if self.returns.fetch_add(1, Ordering::Relaxed) % SIZE_CHECK_EVERY != 0 {
            return false;
        }
        let Ok(wal) = std::fs::metadata(&self.wal_path) else {
            return false;
        };
        let bytes = wal.len();
        if bytes <= WAL_BYTES_LIMIT {
            self.checkpointed_at_bytes.store(0, Ordering::Relaxed);
            return false;
        }
        let last = self.checkpointed_at_bytes.load(Ordering::Relaxed);
        let restarted = bytes < last;
        if !restarted && bytes < last.saturating_add(WAL_BYTES_LIMIT / 4) {
            return false;
        }
        self.checkpointed_at_bytes.store(bytes, Ordering::Relaxed);
        true
    }

    /// How many checkpoints succeeded.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Closes the checkpoint connection for good (so that closing the lanes closes every connection
    /// and SQLite can remove the `-wal` and `-shm` files).
    pub(crate) fn close(&self) {
        let mut slot = crate::sync::lock(&self.conn);
        *slot = Slot::Closed;
    }
}

/// The `-wal` file of `database`, named after SQLite's own name for the main file: the location given
/// may be a `file:` URI, or relative. The location itself if SQLite does not say.
fn wal_path(database: &LibsqlDatabase) -> PathBuf {
    let main_file = database.connect().ok().and_then(|conn| {
        let sql = "SELECT file FROM pragma_database_list WHERE name = 'main'";
        super::block_on(query_text(&conn, sql)).ok()
    });
    let main_file = main_file.unwrap_or_else(|| database.location().to_owned());
    PathBuf::from(format!("{main_file}-wal"))
}

fn report_failure(error: &dyn std::fmt::Display) {
    #[cfg(feature = "tracing")]
    tracing::warn!(error = %error, "write lane: WAL checkpoint failed; the WAL keeps its pages until the next");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_journal_size_limit_is_the_wal_limit() {
        let limit = super::JOURNAL_SIZE_LIMIT.rsplit('=').next().unwrap();
        assert_eq!(limit.parse::<u64>().unwrap(), super::WAL_BYTES_LIMIT);
    }
}
