//! The per-connection prepared-statement cache: least recently used, capacity configurable (default
//! 64, 0 turns it off).
//!
//! Measured facts behind it:
//!
//! * `Connection::query` prepares anew on every call (libsql has no statement cache): a reused prepared
//!   `SELECT 1` plus `reset()` took ~335 ns against ~1,400 ns for `query("SELECT 1")`.
//! * A reused `Statement` that is not `reset()` carries on from its old cursor, and new bind parameters
//!   are **silently ignored**. So every cached statement is reset before each use and when its guard
//!   drops.
//! * libsql ignores binding mistakes: too few values keep the previous call's bindings, extra values
//!   and unknown names are dropped, all without an error. So every call is checked against the
//!   statement's placeholders first, and a mismatch is an error
//!   ([`LibsqlError::ParameterCount`], [`LibsqlError::UnknownParameter`]).
//! * A partly read statement keeps its read snapshot and blocks WAL checkpoints until it is reset, which
//!   the reset on drop also ends.
//! * SQLite re-prepares a statement itself after a schema change, but a statement whose table was
//!   dropped fails only when it first steps, with `SqliteFailure(1, "no such table: ...")`. The cache is
//!   cleared when a cached statement fails with such a schema error, and after DDL run through
//!   [`LibsqlConnection::execute_schema`](super::LibsqlConnection::execute_schema) or
//!   [`execute_cached`](super::LibsqlConnection::execute_cached) (DDL is never cached itself).
//!
//! Remote connections and embedded replicas do not use the cache: a remote "prepare" is a `describe`
//! round trip to the server, and libsql counts a remote statement's parameters only after binding them,
//! so `execute_cached` and `query_cached` send their SQL and values directly there (the server checks
//! the values, and nothing carries over between calls).
//!
//! The guards ([`CachedStatement`](super::CachedStatement), [`CachedRows`](super::CachedRows)) borrow
//! the connection mutably, so at most one cached statement is in use at a time: two uses can never
//! share one SQLite statement.

use std::collections::HashMap;

use libsql::params::Params;

use super::error::{is_schema_error, LibsqlError, Result, StatementProblem};
use super::sql_text::{check_one_statement, is_schema_change};

/// The default capacity of a connection's statement cache.
pub const DEFAULT_STATEMENT_CACHE_CAPACITY: usize = 64;

/// Counters of one connection's statement cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatementCacheStats {
    /// Statements cached now.
    pub len: usize,
    /// The most statements kept (0: the cache is off).
    pub capacity: usize,
    /// Uses served by a cached statement.
    pub hits: u64,
    /// Uses that had to prepare a statement.
    pub misses: u64,
    /// Times the whole cache was cleared (schema changes, schema errors, explicit clears).
    pub clears: u64,
}

/// Which statement a guard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// An entry of the cache.
    Cached(usize),
    /// A statement prepared for one use (cache off, or DDL); finalized on release.
    Once,
}

/// A prepared statement and what its placeholders look like.
struct Entry {
    sql: Box<str>,
    statement: libsql::Statement,
    /// The name of each placeholder (`?NNN`, `:name`...), `None` for an anonymous `?`.
    parameter_names: Vec<Option<String>>,
    /// Whether it returns rows (`execute` refuses it).
    returns_rows: bool,
    last_used: u64,
}

pub(crate) struct StatementCache {
    capacity: usize,
    /// Off for remote statements, whose placeholder counts libsql does not know before binding (the
    /// server checks their arguments, and they carry no bindings over).
    check_bindings: bool,
    entries: Vec<Entry>,
    index: HashMap<Box<str>, usize>,
    once: Option<Entry>,
    tick: u64,
    /// The slot a guard holds. At most one, since guards borrow the connection mutably; still set at
    /// return only if a guard was leaked with `mem::forget`.
    in_use: Option<Slot>,
    /// A schema error was seen while a guard held a statement: clear when it is released.
    clear_pending: bool,
    stats: StatementCacheStats,
}

impl StatementCache {
    pub(crate) fn new(capacity: usize, check_bindings: bool) -> Self {
        Self {
            capacity,
            check_bindings,
            entries: Vec::with_capacity(capacity.min(DEFAULT_STATEMENT_CACHE_CAPACITY)),
            index: HashMap::with_capacity(capacity.min(DEFAULT_STATEMENT_CACHE_CAPACITY)),
            once: None,
            tick: 0,
            in_use: None,
            clear_pending: false,
            stats: StatementCacheStats {
                capacity,
                ..StatementCacheStats::default()
            },
        }
    }

    pub(crate) fn stats(&self) -> StatementCacheStats {
        StatementCacheStats {
            len: self.entries.len(),
            ..self.stats
        }
    }

    /// A statement for `sql`, from the cache or freshly prepared. Every use resets it first
    /// ([`CachedStatement`](super::CachedStatement) does).
    pub(crate) async fn acquire(&mut self, conn: &libsql::Connection, sql: &str) -> Result<Slot> {
        self.release_leaked();
        if self.clear_pending {
            self.clear();
        }
        self.tick += 1;
        if let Some(&slot) = self.index.get(sql) {
            let entry = &mut self.entries[slot];
            entry.last_used = self.tick;
            self.stats.hits += 1;
            self.in_use = Some(Slot::Cached(slot));
            return Ok(Slot::Cached(slot));
        }
        self.stats.misses += 1;
        check_one_statement(sql).map_err(|problem| LibsqlError::Statement {
            sql: sql.to_owned(),
            problem,
        })?;
        let statement = conn.prepare(sql).await?;
        let parameter_names = (1..=statement.parameter_count())
            .map(|i| statement.parameter_name(i as i32).map(str::to_owned))
            .collect();
        let entry = Entry {
            sql: sql.into(),
            returns_rows: statement.column_count() > 0,
            statement,
            parameter_names,
            last_used: self.tick,
        };
        let slot = if self.capacity == 0 || is_schema_change(sql) {
            self.once = Some(entry);
            Slot::Once
        } else {
            if self.entries.len() >= self.capacity {
                self.evict_least_recently_used();
            }
            self.index.insert(entry.sql.clone(), self.entries.len());
            self.entries.push(entry);
            Slot::Cached(self.entries.len() - 1)
        };
        self.in_use = Some(slot);
        Ok(slot)
    }

    fn entry(&self, slot: Slot) -> &Entry {
        match slot {
            Slot::Cached(i) => &self.entries[i],
            Slot::Once => self.once.as_ref().expect("a one-use statement is held"),
        }
    }

    pub(crate) fn statement(&self, slot: Slot) -> &libsql::Statement {
        &self.entry(slot).statement
    }

    pub(crate) fn sql(&self, slot: Slot) -> &str {
        &self.entry(slot).sql
    }

    /// Resets the statement (ends its cursor and read snapshot). Bindings stay; the next use binds anew.
    pub(crate) fn reset(&self, slot: Slot) {
        self.statement(slot).reset();
    }

    /// Gives back the statement a guard held: resets it, finalizes a one-use statement, and carries out
    /// a clear that a schema error asked for.
    pub(crate) fn release(&mut self, slot: Slot) {
        self.in_use = None;
        match slot {
            Slot::Cached(i) => self.entries[i].statement.reset(),
            Slot::Once => drop(self.once.take()),
        }
        if self.clear_pending {
            self.clear();
        }
    }

    /// Releases a statement whose guard was leaked with `mem::forget` (also run when the connection
    /// returns to the pool).
    pub(crate) fn release_leaked(&mut self) {
        if let Some(slot) = self.in_use {
            self.release(slot);
        }
    }

    /// Notes a failed use: a schema error clears the cache once the statement is released.
    pub(crate) fn note_error(&mut self, error: &libsql::Error) {
        if is_schema_error(error) {
            self.clear_pending = true;
        }
    }

    /// Notes that `sql` ran: DDL clears the cache once the statement is released.
    pub(crate) fn note_success(&mut self, slot: Slot) {
        if is_schema_change(self.sql(slot)) {
            self.clear_pending = true;
        }
    }

    /// Finalizes every cached statement.
    pub(crate) fn clear(&mut self) {
        debug_assert!(!matches!(self.in_use, Some(Slot::Cached(_))));
        self.entries.clear();
        self.index.clear();
        self.clear_pending = false;
        self.stats.clears += 1;
    }

    fn evict_least_recently_used(&mut self) {
        let Some(oldest) = (0..self.entries.len()).min_by_key(|&i| self.entries[i].last_used)
        else {
            return;
        };
        let evicted = self.entries.swap_remove(oldest);
        self.index.remove(&evicted.sql);
        if let Some(moved) = self.entries.get(oldest) {
            *self
                .index
                .get_mut(&moved.sql)
                .expect("every entry is indexed") = oldest;
        }
    }

    /// Whether the statement returns rows.
    pub(crate) fn returns_rows(&self, slot: Slot) -> bool {
        self.entry(slot).returns_rows
    }

    /// Turns values bound by name into one value per slot, NULL where no name reaches (a gap below a
    /// `?NNN`, or an anonymous `?` there, which SQLite cannot tell apart). libsql binds only the slots
    /// named, so any other slot would keep the value of the statement's previous call; a fresh
    /// statement reads NULL there, and so does this one. Call after [`check_params`](Self::check_params).
    pub(crate) fn bind_every_slot(&self, slot: Slot, params: Params) -> Params {
        let Params::Named(values) = params else {
            return params;
        };
        if !self.check_bindings {
            return Params::Named(values);
        }
        let names = &self.entry(slot).parameter_names;
        let mut slots = vec![libsql::Value::Null; names.len()];
        for (name, value) in values {
            if let Some(i) = names
                .iter()
                .position(|n| n.as_deref() == Some(name.as_str()))
            {
                slots[i] = value;
            }
        }
        Params::Positional(slots)
    }

    /// Checks `params` against the statement's placeholders, because libsql ignores binding mistakes,
    /// and against the longest value libsql can bind.
    pub(crate) fn check_params(&self, slot: Slot, params: &Params) -> Result<()> {
        let entry = self.entry(slot);
        check_value_sizes(params, MAX_VALUE_BYTES).map_err(|problem| LibsqlError::Statement {
            sql: entry.sql.to_string(),
            problem,
        })?;
        if !self.check_bindings {
            return Ok(());
        }
        let expected = entry.parameter_names.len();
        let count_error = |expected, given| LibsqlError::ParameterCount {
            sql: entry.sql.to_string(),
            expected,
            given,
        };
        match params {
            Params::None if expected == 0 => Ok(()),
            Params::None => Err(count_error(expected, 0)),
            Params::Positional(values) if values.len() == expected => Ok(()),
            Params::Positional(values) => Err(count_error(expected, values.len())),
            Params::Named(values) => {
                let required = slots_a_named_binding_must_cover(&entry.parameter_names);
                let mut covered = vec![false; entry.parameter_names.len()];
                for (name, _) in values {
                    let position = entry
                        .parameter_names
                        .iter()
                        .position(|known| known.as_deref() == Some(name.as_str()));
                    match position {
                        Some(i) => covered[i] = true,
                        None => {
                            return Err(LibsqlError::UnknownParameter {
                                sql: entry.sql.to_string(),
                                name: name.clone(),
                                known: entry.parameter_names.clone(),
                            })
                        }
                    }
                }
                if required.iter().zip(&covered).all(|(r, c)| *c || !*r) {
                    Ok(())
                } else {
                    let expected = required.iter().filter(|r| **r).count();
                    Err(count_error(
                        expected,
                        covered.iter().filter(|c| **c).count(),
                    ))
                }
            }
        }
    }
}

/// Which placeholder slots a binding by name must cover.
///
/// A slot with a name (`:id`, `@id`, `$id`, `?2`) must be covered. A slot without a name is either
/// an anonymous `?`, which no name can reach (so a named binding cannot cover it and is refused),
/// or a gap left by numbered placeholders: `SELECT ?2` has two slots and no first placeholder.
/// SQLite reports both without a name. An anonymous `?` takes the slot after the highest one
/// used so far, so an unnamed slot above every `?NNN` is surely an anonymous `?`; an unnamed slot
/// below one may be a gap and is not required.
fn slots_a_named_binding_must_cover(names: &[Option<String>]) -> Vec<bool> {
    let highest_numbered = names
        .iter()
        .rposition(|name| name.as_deref().is_some_and(|n| n.starts_with('?')));
    names
        .iter()
        .enumerate()
        .map(|(i, name)| name.is_some() || highest_numbered.is_none_or(|highest| i > highest))
        .collect()
}

/// The longest text or blob libsql can bind: it passes lengths to SQLite as an `i32`.
const MAX_VALUE_BYTES: usize = i32::MAX as usize;

/// Refuses a text or blob value longer than `max` bytes ([`MAX_VALUE_BYTES`]: libsql would cut it
/// short).
fn check_value_sizes(params: &Params, max: usize) -> std::result::Result<(), StatementProblem> {
    fn len(value: &libsql::Value) -> usize {
        match value {
            libsql::Value::Text(text) => text.len(),
            libsql::Value::Blob(blob) => blob.len(),
            _ => 0,
        }
    }
    let too_large = |parameter: String, bytes: usize| StatementProblem::ValueTooLarge {
        parameter,
        bytes,
        max,
    };
    match params {
        Params::None => Ok(()),
        Params::Positional(values) => match values
            .iter()
            .enumerate()
            .find(|(_, value)| len(value) > max)
        {
            Some((i, value)) => Err(too_large((i + 1).to_string(), len(value))),
            None => Ok(()),
        },
        Params::Named(values) => match values.iter().find(|(_, value)| len(value) > max) {
            Some((name, value)) => Err(too_large(name.clone(), len(value))),
            None => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{check_value_sizes, StatementProblem};
    use libsql::params::Params;
    use libsql::Value;

    #[test]
    fn values_longer_than_libsql_can_bind_are_refused_by_position_or_name() {
        let fits = Params::Positional(vec![Value::Integer(1), Value::Text("abcd".into())]);
        assert_eq!(check_value_sizes(&fits, 4), Ok(()));
        let long = Params::Positional(vec![Value::Integer(1), Value::Blob(vec![0; 5])]);
        assert_eq!(
            check_value_sizes(&long, 4),
            Err(StatementProblem::ValueTooLarge {
                parameter: "2".into(),
                bytes: 5,
                max: 4
            })
        );
        let named = Params::Named(vec![(":body".into(), Value::Text("abcde".into()))]);
        assert!(matches!(
            check_value_sizes(&named, 4),
            Err(StatementProblem::ValueTooLarge { parameter, .. }) if parameter == ":body"
        ));
        assert_eq!(check_value_sizes(&Params::None, 0), Ok(()));
    }
}
