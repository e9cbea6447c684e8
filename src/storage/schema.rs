//! The database schema as data: tables, indexes and forward [`MIGRATIONS`] keyed by
//! `PRAGMA user_version`, plus the conversions of timestamps to and from their stored form.
//!
//! This module only describes the schema; the storage runs it. Three tables:
//!
//! * `episodes`: one row per [`Episode`](super::Episode). Nested values (context, steps, outcome,
//!   reward, reflection, pattern ids, metadata) are JSON text. The fields that queries filter on have
//!   their own columns: `task_type`, `domain` and `language` (copied from the context), `start_time`
//!   and `end_time`, and `completed`, a generated column that is 1 when `end_time` and `outcome` are
//!   both set, so that it can never disagree with them.
//! * `patterns`: the whole [`Pattern`](super::Pattern) as JSON in `data`, with `pattern_type`,
//!   `context_domain`, `context_language` (NULL for a context pattern, which has no task context) and
//!   `success_rate` in columns, and `created_at`/`updated_at` kept by the storage.
//! * `heuristics`: one column per field of [`Heuristic`](super::Heuristic), `evidence` as JSON.
//!
//! Timestamps are INTEGER milliseconds since the Unix epoch ([`timestamp_to_millis`]): they sort and
//! compare as numbers, and keep the precision the older crate lost. Ids are UUIDs in their hyphenated
//! text form.
//!
//! # Running the migrations
//!
//! Applying them is idempotent and safe from many processes at once when done like this:
//!
//! 1. `BEGIN IMMEDIATE`, which takes the write lock, so one process migrates at a time;
//! 2. read [`READ_USER_VERSION`] inside that transaction;
//! 3. run every statement of each of [`pending_migrations`]`(version)`, then its
//!    [`Migration::set_user_version`];
//! 4. `COMMIT`. `user_version` lives in the database header and commits or rolls back with the rest.
//!
//! A second process blocks at step 1, then finds the new version at step 2 and has nothing to do.
//! Every DDL statement also says `IF NOT EXISTS`. `PRAGMA user_version` cannot take a bound parameter,
//! so each migration carries its own literal statement: no SQL here is ever built by formatting.

use chrono::{DateTime, Utc};

/// The schema version this crate writes: the version of the last of [`MIGRATIONS`].
pub const SCHEMA_VERSION: u32 = 1;

/// Reads the schema version of a database (0 for a new one).
pub const READ_USER_VERSION: &str = "PRAGMA user_version";

/// One forward step of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The `user_version` a database has once this migration ran.
    pub version: u32,
    /// What it changes, for logs.
    pub description: &'static str,
    /// The statements to run, in order, inside one transaction.
    pub statements: &'static [&'static str],
    /// The statement that records `version`, run last in the same transaction.
    pub set_user_version: &'static str,
}

/// The `episodes` table.
pub const CREATE_EPISODES: &str = "\
CREATE TABLE IF NOT EXISTS episodes (
    episode_id       TEXT PRIMARY KEY NOT NULL,
    task_type        TEXT NOT NULL,
    task_description TEXT NOT NULL,
    context          TEXT NOT NULL,
    domain           TEXT NOT NULL,
    language         TEXT,
    start_time       INTEGER NOT NULL,
    end_time         INTEGER,
    steps            TEXT NOT NULL,
    outcome          TEXT,
    reward           TEXT,
    reflection       TEXT,
    patterns         TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    completed        INTEGER NOT NULL
                     GENERATED ALWAYS AS (end_time IS NOT NULL AND outcome IS NOT NULL) VIRTUAL
)";

/// The `patterns` table.
pub const CREATE_PATTERNS: &str = "\
CREATE TABLE IF NOT EXISTS patterns (
    pattern_id       TEXT PRIMARY KEY NOT NULL,
    pattern_type     TEXT NOT NULL,
    data             TEXT NOT NULL,
    context_domain   TEXT,
    context_language TEXT,
    success_rate     REAL NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
)";

/// The `heuristics` table.
pub const CREATE_HEURISTICS: &str = "\
CREATE TABLE IF NOT EXISTS heuristics (
    heuristic_id TEXT PRIMARY KEY NOT NULL,
    condition    TEXT NOT NULL,
    action       TEXT NOT NULL,
    confidence   REAL NOT NULL,
    evidence     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
)";

/// The indexes: episodes by task type, by start time (newest first) and by domain; patterns by
/// context; heuristics by confidence (highest first).
pub const CREATE_INDEXES: [&str; 5] = [
    "CREATE INDEX IF NOT EXISTS idx_episodes_task_type ON episodes (task_type)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_start_time ON episodes (start_time DESC)",
    "CREATE INDEX IF NOT EXISTS idx_episodes_domain ON episodes (domain)",
    "CREATE INDEX IF NOT EXISTS idx_patterns_context ON patterns (context_domain, context_language)",
    "CREATE INDEX IF NOT EXISTS idx_heuristics_confidence ON heuristics (confidence DESC)",
];

/// Every migration, oldest first. Version `n` is at index `n - 1`.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "initial schema: episodes, patterns and heuristics, with their indexes",
    statements: &[
        CREATE_EPISODES,
        CREATE_PATTERNS,
        CREATE_HEURISTICS,
        CREATE_INDEXES[0],
        CREATE_INDEXES[1],
        CREATE_INDEXES[2],
        CREATE_INDEXES[3],
        CREATE_INDEXES[4],
    ],
    set_user_version: "PRAGMA user_version = 1",
}];

/// The migrations a database at `current_version` still needs, oldest first; empty when it is up to
/// date, or newer than this crate.
///
/// ```
/// use memory_storage_turso::storage::schema::{pending_migrations, SCHEMA_VERSION};
///
/// assert_eq!(pending_migrations(0).len(), 1);
/// assert!(pending_migrations(SCHEMA_VERSION).is_empty());
/// ```
pub fn pending_migrations(current_version: u32) -> &'static [Migration] {
    let done = MIGRATIONS
        .iter()
        .take_while(|migration| migration.version <= current_version)
        .count();
    &MIGRATIONS[done..]
}

/// A timestamp as stored: milliseconds since the Unix epoch. Finer digits are dropped (rounded
/// toward the past).
///
/// ```
/// use memory_storage_turso::storage::schema::{millis_to_timestamp, timestamp_to_millis};
///
/// let time = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
/// assert_eq!(timestamp_to_millis(&time), 1_700_000_000_123);
/// assert_eq!(millis_to_timestamp(1_700_000_000_123), Some(time));
/// ```
pub fn timestamp_to_millis(time: &DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

/// A stored timestamp read back; `None` if `millis` is outside the range `chrono` can represent.
pub fn millis_to_timestamp(millis: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_from_one_and_record_their_version() {
        for (index, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version as usize, index + 1);
            assert_eq!(
                migration.set_user_version,
                format!("PRAGMA user_version = {}", migration.version)
            );
            assert!(!migration.statements.is_empty());
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(SCHEMA_VERSION));
    }

    #[test]
    fn pending_migrations_skip_what_is_done() {
        assert_eq!(pending_migrations(0), MIGRATIONS);
        assert!(pending_migrations(SCHEMA_VERSION).is_empty());
        assert!(pending_migrations(SCHEMA_VERSION + 5).is_empty());
    }

    #[test]
    fn statements_are_idempotent_and_take_no_values() {
        for statement in MIGRATIONS.iter().flat_map(|m| m.statements) {
            assert!(statement.contains("IF NOT EXISTS"), "{statement}");
            assert!(!statement.contains(['{', '}', '\'']), "{statement}");
        }
    }

    #[test]
    fn timestamps_truncate_to_the_millisecond_toward_the_past() {
        let time = DateTime::from_timestamp(-1, 999_999_999).unwrap();
        assert_eq!(timestamp_to_millis(&time), -1);
        assert_eq!(
            millis_to_timestamp(-1),
            DateTime::from_timestamp(-1, 999_000_000)
        );
        assert_eq!(millis_to_timestamp(i64::MAX), None);
    }
}
