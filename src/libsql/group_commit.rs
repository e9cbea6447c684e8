//! Group commit: single-statement writes sent to the write lane, committed in groups.
//!
//! On the write lane, every autocommit `INSERT` is a transaction of its own: a `COMMIT` (a WAL append
//! and a wal-index update, about 12 µs of the 14 µs an insert costs alone) and a hand-off of the lane
//! to the next writer, which must be running to take it. With 8 threads on 2 cores the hand-offs cost
//! more than the inserts: 38–42 µs of CPU per insert, against 16 µs in a plain pool whose writers
//! fight over SQLite's lock and sleep in its busy handler. In one transaction, 8 inserts cost 3 µs
//! each. [`LanedPool::execute`](super::LanedPool::execute) gets that the way databases do, with a
//! group commit:
//!
//! * A caller queues its statement and its parameters. If nobody leads, it becomes the leader: it
//!   checks out the write lane, takes every queued statement (up to [`MAX_GROUP`]), runs them in one
//!   `BEGIN IMMEDIATE … COMMIT` on its own thread, and answers each caller after the `COMMIT`. The
//!   other callers wait for their answer.
//! * Once the group holding its own statement is committed, the leader hands the lead to the oldest
//!   caller still queued (who then runs the next group) and returns. Statements run in arrival order.
//! * A group of one statement runs in autocommit, as it would alone. A lone writer pays about what a
//!   checkout per statement costs: 20–23 µs per insert either way, from one task or one thread.
//!
//! Groups only form if callers are queued when a leader looks, and the callers just answered are
//! the likeliest to come back at once. Two measured details make that happen:
//!
//! * **An async leader gathers.** It yields to its executor once before its first group, so that the
//!   tasks ready to run queue behind it (on a single-threaded executor, where local libSQL calls never
//!   suspend, no task would otherwise ever find another's statement queued: 1,600 inserts from 8 smol
//!   tasks ran in 1,600 transactions). Then it keeps yielding, for up to 100 µs, while callers answered
//!   by the previous group have not come back yet (a count, reset when they miss the window). 8 tasks
//!   on 2 tokio workers: groups of about 6 and 5 µs per insert, against 11–12 µs without gathering
//!   and 16 µs for a plain pool.
//! * **A thread waiting for its answer spins first**, yielding between checks, for up to 200 µs
//!   (`SpinGate` in `src/pool/parker.rs`): a group takes tens of microseconds, and waking a parked
//!   thread on an idle virtual core took longer than that. 8 threads: 7.5–14 µs per insert spinning,
//!   19–22 µs parked. A thread leader does not gather: parking it to wait made each round trip two
//!   wake-ups long (50 µs per insert), and yielding it took its core from the callers it waited for.
//!   As in the pool, a spinner kept off its core for 500 µs stops spinning for a while, so that a
//!   machine busier than its cores falls back to parking (measured beside two CPU-bound processes:
//!   24–31 µs per insert with the fallback, 41–52 µs spinning regardless).
//!
//! What a caller can rely on:
//!
//! * **Acknowledged means committed.** `Ok` comes only after the `COMMIT` that holds the statement
//!   succeeded.
//! * **Statements fail alone.** A statement that fails with a constraint or a bad parameter gets its
//!   own error, and SQLite undoes only that statement: the rest of the group commits. A deferred
//!   constraint (a `DEFERRABLE INITIALLY DEFERRED` foreign key) is checked only at `COMMIT`, where it
//!   fails the whole group without saying whose row broke it: the group is then rolled back and its
//!   statements run again one by one, each in autocommit, so that the offender gets the constraint
//!   error and the others commit. If SQLite rolls the whole transaction back (an I/O error, a full
//!   disk, a trigger's `RAISE(ROLLBACK)`), or the `COMMIT` fails otherwise, every statement of the
//!   group that had run gets [`LibsqlError::NotCommitted`], which says that nothing of it is stored,
//!   so a retry is safe. The statements after it run in a new transaction.
//! * **One statement per call.** A text with several statements, none, or one that returns rows is
//!   refused and never runs ([`LibsqlError::Statement`]; it fails alone): libSQL would run only the
//!   first of several, and store a `RETURNING` statement's changes before failing.
//! * **Cancellation.** Dropping the future before a leader took its statement withdraws it; it never
//!   runs. Once taken, it runs and commits with its group, answered or not. A cancelled leader hands
//!   the lead on.
//! * Transaction control (`BEGIN`, `COMMIT`, `SAVEPOINT`…) is refused, also behind comments or an
//!   empty statement (`";COMMIT"`): it would end the group's transaction. So are `VACUUM`, `ATTACH`
//!   and `DETACH`, which cannot run inside one. Use [`LanedPool::write`](super::LanedPool::write)
//!   for them, and a transaction there for several statements that must commit together.
//!
//! Shown by `tests/libsql_group_commit.rs`; measured by `benches/libsql.rs` (`grouped_*`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};
use libsql::params::{IntoParams, Params};

use super::block_on;
use super::connection::{LibsqlConnection, TransactionMode};
use super::error::{LibsqlError, Result, SQLITE_CONSTRAINT};
use super::sql_text::first_keyword;
use super::LibsqlPool;
use crate::pool::SpinGate;
use crate::sync::lock;

/// The most statements one group commits together.
pub const MAX_GROUP: usize = 128;

/// How long an async leader waits, at most, for the callers it just answered to come back with
/// their next statement before it runs a group without them.
const GATHER_FOR: Duration = Duration::from_micros(100);

/// The queue of statements waiting for the write lane, and who leads.
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    /// How followers on threads spin for their answer.
    spin: SpinGate,
    statements: AtomicU64,
    groups: AtomicU64,
    not_committed: AtomicU64,
}

/// What went through a [`GroupCommit`] so far.
pub(crate) struct Counts {
    pub(crate) statements: u64,
    pub(crate) groups: u64,
    pub(crate) not_committed: u64,
    pub(crate) queued: usize,
}

/// Invariant: `entries` is empty unless someone leads (`led`).
#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    led: bool,
    /// Callers answered since, who may come back with their next statement (a hint).
    rejoining: usize,
}

/// One queued statement and where its answer goes.
struct Entry {
    sql: Box<str>,
    params: Params,
    reply: Arc<Reply>,
}

impl Entry {
    /// Takes the statement out, to run it (the entry keeps where its answer goes).
    fn take_statement(&mut self) -> (Box<str>, Params) {
        (
            std::mem::take(&mut self.sql),
            std::mem::replace(&mut self.params, Params::None),
        )
    }
}

/// A caller's mailbox: empty, or its answer, or the lead.
#[derive(Default)]
struct Reply {
    mail: Mutex<Option<Mail>>,
    ready: Event,
}

/// What a waiting caller receives.
enum Mail {
    Lead,
    Answer(Result<u64>),
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            queue: Mutex::default(),
            spin: SpinGate::new(),
            statements: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            not_committed: AtomicU64::new(0),
        }
    }
}

impl GroupCommit {
    /// How many statements went through, in how many transactions (groups), how many of them were
    /// not committed, and how many wait in the queue for the next group.
    pub(crate) fn counts(&self) -> Counts {
        let queued = self.lock().entries.len();
        Counts {
            statements: self.statements.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            not_committed: self.not_committed.load(Ordering::Relaxed),
            queued,
        }
    }

    /// Runs `sql` in the next group, waiting with `.await`.
    pub(crate) async fn execute(
        &self,
        lane: &LibsqlPool,
        sql: &str,
        params: impl IntoParams,
    ) -> Result<u64> {
        let mut ticket = self.join(sql, params)?;
        if !ticket.leads {
            let received = ticket.reply.received_async().await;
            if let Some(answer) = ticket.follow(received) {
                return answer;
            }
        }
        let mut conn = match lane.get().await {
            Ok(conn) => conn,
            Err(error) => return ticket.fail_everyone(LibsqlError::from_write_lane(error)),
        };
        let mut leader = Leader::default();
        loop {
            if let Some(answer) = ticket.lead(&mut leader, &mut conn, true) {
                return answer;
            }
            futures_lite::future::yield_now().await;
        }
    }

    /// Runs `sql` in the next group, waiting on this thread.
    pub(crate) fn execute_blocking(
        &self,
        lane: &LibsqlPool,
        sql: &str,
        params: impl IntoParams,
    ) -> Result<u64> {
        let mut ticket = self.join(sql, params)?;
        if !ticket.leads {
            let received = ticket.reply.received_blocking(&self.spin);
            if let Some(answer) = ticket.follow(received) {
                return answer;
            }
        }
        let mut conn = match lane.get_blocking() {
            Ok(conn) => conn,
            Err(error) => return ticket.fail_everyone(LibsqlError::from_write_lane(error)),
        };
        ticket
            .lead(&mut Leader::default(), &mut conn, false)
            .expect("a leader that does not gather runs until it has its answer")
    }

    /// Queues a statement; its caller leads if nobody does.
    fn join(&self, sql: &str, params: impl IntoParams) -> Result<Ticket<'_>> {
        refuse_transaction_control(sql)?;
        let params = params.into_params()?;
        let reply = Arc::new(Reply::default());
        let mut queue = self.lock();
        queue.entries.push_back(Entry {
            sql: sql.into(),
            params,
            reply: reply.clone(),
        });
        queue.rejoining = queue.rejoining.saturating_sub(1);
        let leads = !std::mem::replace(&mut queue.led, true);
        Ok(Ticket {
            group: self,
            reply,
            leads,
            done: false,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the queue is locked; a poisoned lock still guards a consistent queue.
        lock(&self.queue)
    }
}

/// What a leader does next.
enum Step {
    /// Wait (yield) for more statements.
    Gather,
    /// Run this group.
    Run(Group),
    /// Its own statement is committed: return.
    Finish,
}

/// What a leader keeps between its steps.
#[derive(Default)]
struct Leader {
    own: Option<Result<u64>>,
    /// Callers answered by the last group.
    answered: usize,
    gathering_until: Option<Instant>,
    /// Whether it yielded once before its first group.
    yielded: bool,
}

impl Leader {
    fn run(
        &mut self,
        commit: &GroupCommit,
        mut group: Group,
        conn: &mut LibsqlConnection,
        own: &Arc<Reply>,
    ) {
        self.answered = group.len();
        group.run(conn);
        if let Some((statements, reason)) = group.not_committed() {
            commit
                .not_committed
                .fetch_add(statements as u64, Ordering::Relaxed);
            report_not_committed(statements, reason);
        }
        if let Some(answer) = group.answer_all(own) {
            self.own = Some(answer);
            self.answered -= 1;
        }
    }
}

/// Gives the lead to the oldest queued caller, or ends it if nobody is queued.
fn pass_lead(queue: &mut Queue) {
    match queue.entries.front() {
        Some(next) => next.reply.send(Mail::Lead),
        None => queue.led = false,
    }
}

/// A caller's place in the group commit. Dropped unanswered (a cancelled future, a panic), it
/// withdraws its statement if no leader took it, and hands the lead on if it had it.
struct Ticket<'g> {
    group: &'g GroupCommit,
    reply: Arc<Reply>,
    leads: bool,
    done: bool,
}

impl Ticket<'_> {
    /// Takes what a waiting caller received: its answer (returned), or the lead.
    fn follow(&mut self, received: Mail) -> Option<Result<u64>> {
        match received {
            Mail::Answer(answer) => {
                self.done = true;
                Some(answer)
            }
            Mail::Lead => {
                self.leads = true;
                None
            }
        }
    }

    /// Runs groups on `conn` until this caller's own statement is committed (its answer; the lead is
    /// handed on), or until the leader should wait for more statements (`None`; only if it may
    /// `gather`).
    fn lead(
        &mut self,
        leader: &mut Leader,
        conn: &mut LibsqlConnection,
        gather: bool,
    ) -> Option<Result<u64>> {
        loop {
            match self.step(leader, gather) {
                Step::Gather => return None,
                Step::Run(group) => leader.run(self.group, group, conn, &self.reply),
                Step::Finish => return leader.own.take(),
            }
        }
    }

    /// The leader's next step: wait for more statements (only if it may `gather`), run a group, or
    /// hand the lead on once its own statement is committed.
    fn step(&mut self, leader: &mut Leader, gather: bool) -> Step {
        let mut queue = self.group.lock();
        queue.rejoining += std::mem::take(&mut leader.answered);
        if leader.own.is_some() {
            self.done = true;
            // This caller comes back too, most likely.
            queue.rejoining += 1;
            pass_lead(&mut queue);
            return Step::Finish;
        }
        // A first yield lets the tasks that are ready to run (on a single-threaded executor, all the
        // others) queue their statements behind this one.
        if gather && !leader.yielded {
            leader.yielded = true;
            return Step::Gather;
        }
        // Callers answered a moment ago usually come back with their next statement at once; waiting
        // for them a little makes the group, and its one COMMIT, serve them all.
        if gather && queue.entries.len() < MAX_GROUP && queue.rejoining > 0 {
            let until = *leader
                .gathering_until
                .get_or_insert_with(|| Instant::now() + GATHER_FOR);
            if Instant::now() < until {
                return Step::Gather;
            }
            // Those who did not come back in time are not writing any more.
            queue.rejoining = 0;
        }
        leader.gathering_until = None;
        let take = queue.entries.len().min(MAX_GROUP);
        let group = Group::new(queue.entries.drain(..take).collect());
        drop(queue);
        self.group
            .statements
            .fetch_add(take as u64, Ordering::Relaxed);
        self.group.groups.fetch_add(1, Ordering::Relaxed);
        Step::Run(group)
    }

    /// The lane could not be checked out: every queued statement fails with it.
    fn fail_everyone(mut self, error: LibsqlError) -> Result<u64> {
        let entries: Vec<Entry> = self.group.lock().entries.drain(..).collect();
        let reason = format!("the write lane could not be checked out: {error}");
        for entry in entries {
            if !Arc::ptr_eq(&entry.reply, &self.reply) {
                entry.reply.send(Mail::Answer(Err(not_committed(&reason))));
            }
        }
        self.done = true;
        pass_lead(&mut self.group.lock());
        Err(error)
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = self.group.lock();
        if let Some(at) = queue
            .entries
            .iter()
            .position(|entry| Arc::ptr_eq(&entry.reply, &self.reply))
        {
            queue.entries.remove(at);
        }
        // The lead may have been sent after this caller last looked: it is sent under the queue lock.
        let sent_lead = matches!(*lock(&self.reply.mail), Some(Mail::Lead));
        if self.leads || sent_lead {
            pass_lead(&mut queue);
        }
    }
}

impl Reply {
    fn send(&self, mail: Mail) {
        *lock(&self.mail) = Some(mail);
        self.ready.notify(1);
    }

    fn take(&self) -> Option<Mail> {
        lock(&self.mail).take()
    }

    fn received_blocking(&self, spin: &SpinGate) -> Mail {
        // The leader answers within one group's time: spinning a little saves the wake-up.
        if spin.spin_until(|| lock(&self.mail).is_some()) {
            if let Some(received) = self.take() {
                return received;
            }
        }
        loop {
            if let Some(received) = self.take() {
                return received;
            }
            let listener = self.ready.listen();
            if let Some(received) = self.take() {
                return received;
            }
            listener.wait();
        }
    }

    async fn received_async(&self) -> Mail {
        loop {
            if let Some(received) = self.take() {
                return received;
            }
            let listener = self.ready.listen();
            if let Some(received) = self.take() {
                return received;
            }
            listener.await;
        }
    }
}

/// The statements of one transaction, and their answers once run. Dropped before it answered (a
/// panic in the leader), it tells each caller that its statement was not committed.
struct Group {
    entries: Vec<Entry>,
    answers: Vec<Result<u64>>,
}

impl Group {
    fn new(entries: Vec<Entry>) -> Self {
        Self {
            answers: Vec::with_capacity(entries.len()),
            entries,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Runs every statement, in one transaction unless there is only one.
    fn run(&mut self, conn: &mut LibsqlConnection) {
        let mut statements: Vec<(Box<str>, Params)> =
            self.entries.iter_mut().map(Entry::take_statement).collect();
        if statements.len() == 1 {
            let (sql, params) = statements.pop().expect("one statement");
            self.answers
                .push(block_on(conn.execute_cached(&sql, params)));
            return;
        }
        // Answers from `first_open` on belong to the transaction that is open now.
        let mut first_open = 0;
        let mut open = begin(conn);
        for (sql, params) in &statements {
            if let Err(reason) = &open {
                self.answers.push(Err(not_committed(reason)));
                continue;
            }
            // The values are kept for a rerun alone (see `rerun_alone`).
            let answer = block_on(conn.execute_cached(sql, params.clone()));
            if answer.is_err() && conn.is_autocommit() {
                // SQLite rolled the whole transaction back: the statements before this one are gone.
                let reason = format!(
                    "a statement of the same group failed and SQLite rolled the whole group back ({})",
                    answer.as_ref().err().map(ToString::to_string).unwrap_or_default()
                );
                self.undo_from(first_open, &reason);
                self.answers.push(answer);
                first_open = self.answers.len();
                open = begin(conn);
                continue;
            }
            self.answers.push(answer);
        }
        if open.is_ok() {
            if let Err(error) = block_on(conn.execute_cached("COMMIT", ())) {
                if !conn.is_autocommit() {
                    // The pool's return path would roll back too; the next group needs it now.
                    let _ = block_on(conn.execute("ROLLBACK", ()));
                }
                if is_constraint(&error) && conn.is_autocommit() {
                    self.rerun_alone(conn, first_open, &statements);
                } else {
                    self.undo_from(first_open, &format!("the group's COMMIT failed: {error}"));
                }
            }
        }
    }

    /// Runs again, each in a transaction of its own, the statements from `from` on that ran in a group
    /// whose `COMMIT` failed on a constraint. Only deferred constraints (a `DEFERRABLE INITIALLY
    /// DEFERRED` foreign key) are checked at `COMMIT`, so the group cannot tell whose row broke it;
    /// alone, the offending statement fails with the constraint error and the others commit. Those
    /// that failed in the group run again too: they may have failed on a row of the offender's, which
    /// the rollback removed. Those refused before they ran (a bad parameter count) keep their error.
    fn rerun_alone(
        &mut self,
        conn: &mut LibsqlConnection,
        from: usize,
        statements: &[(Box<str>, Params)],
    ) {
        for (answer, (sql, params)) in self.answers[from..].iter_mut().zip(&statements[from..]) {
            if matches!(answer, Ok(_) | Err(LibsqlError::Libsql(_))) {
                *answer = block_on(conn.execute_cached(sql, params.clone()));
            }
        }
    }

    /// How many statements of the group were not committed, and why (the first reason), if any were.
    fn not_committed(&self) -> Option<(usize, &str)> {
        let mut reasons = self.answers.iter().filter_map(|answer| match answer {
            Err(LibsqlError::NotCommitted { reason }) => Some(reason.as_str()),
            _ => None,
        });
        let first = reasons.next()?;
        Some((1 + reasons.count(), first))
    }

    /// Turns the successes from `from` on into "not committed".
    fn undo_from(&mut self, from: usize, reason: &str) {
        for answer in &mut self.answers[from..] {
            if answer.is_ok() {
                *answer = Err(not_committed(reason));
            }
        }
    }

    /// Answers every caller but `own`, and returns `own`'s answer if it was in this group.
    fn answer_all(&mut self, own: &Arc<Reply>) -> Option<Result<u64>> {
        let mut own_answer = None;
        for (entry, answer) in self.entries.drain(..).zip(self.answers.drain(..)) {
            if Arc::ptr_eq(&entry.reply, own) {
                own_answer = Some(answer);
            } else {
                entry.reply.send(Mail::Answer(answer));
            }
        }
        own_answer
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for entry in self.entries.drain(..) {
            entry.reply.send(Mail::Answer(Err(not_committed(
                "the leader of its group panicked before the group was committed",
            ))));
        }
    }
}

/// Begins the group's transaction the way the lane does (`BEGIN IMMEDIATE`).
fn begin(conn: &mut LibsqlConnection) -> Result<(), String> {
    let sql = match conn.transaction_mode() {
        TransactionMode::Immediate => "BEGIN IMMEDIATE",
        TransactionMode::Deferred => "BEGIN",
    };
    block_on(conn.execute_cached(sql, ()))
        .map(drop)
        .map_err(|error| format!("the group's BEGIN failed: {error}"))
}

/// Tells the `tracing` subscriber (feature `tracing`) that a group was rolled back.
fn report_not_committed(statements: usize, reason: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        statements,
        reason,
        "write lane: a group was not committed; its statements failed with NotCommitted (safe to retry)"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (statements, reason);
}

/// Whether `error` is a constraint violation (SQLITE_CONSTRAINT, with any extended code).
fn is_constraint(error: &LibsqlError) -> bool {
    error
        .sqlite_code()
        .is_some_and(|code| code & 0xff == SQLITE_CONSTRAINT)
}

fn not_committed(reason: &str) -> LibsqlError {
    LibsqlError::NotCommitted {
        reason: reason.to_owned(),
    }
}

/// Refuses statements that would end or nest the group's transaction, or cannot run inside one.
fn refuse_transaction_control(sql: &str) -> Result<()> {
    const CONTROL: [&str; 6] = ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"];
    const OUTSIDE_ONLY: [&str; 3] = ["VACUUM", "ATTACH", "DETACH"];
    let first = first_keyword(sql);
    let is = |keywords: &[&str]| keywords.iter().any(|k| first.eq_ignore_ascii_case(k));
    if is(&CONTROL) {
        return Err(LibsqlError::Unsupported(format!(
            "`{sql}` is transaction control, which would end the group's transaction; run statements \
             that must commit together in a transaction on LanedPool::write()"
        )));
    }
    if first.eq_ignore_ascii_case("PRAGMA") {
        return Err(LibsqlError::Unsupported(format!(
            "`{sql}` is a PRAGMA: alone it would change the write lane's connection for every later \
             writer, and inside a group many PRAGMAs do nothing; run it on LanedPool::write(), and put \
             connection settings in the lanes' ConnectionSetup"
        )));
    }
    if is(&OUTSIDE_ONLY) {
        return Err(LibsqlError::Unsupported(format!(
            "`{sql}` cannot run inside a transaction, and a group runs in one; run it on \
             LanedPool::write()"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::refuse_transaction_control;

    #[test]
    fn refuses_transaction_control_behind_whitespace_and_comments() {
        for sql in [
            "BEGIN",
            "  commit",
            "-- a comment\nEND",
            "/* c */ ROLLBACK TO s",
            "SAVEPOINT s",
            "release s",
            "VACUUM",
            "attach 'x.db' AS x",
            ";ROLLBACK",
            "/* x */;COMMIT",
            " ; ;\n-- c\nbegin immediate",
            "PRAGMA foreign_keys=OFF",
            "/* c */ pragma synchronous = OFF",
        ] {
            assert!(refuse_transaction_control(sql).is_err(), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET begin_at = 1",
            "DELETE FROM t",
        ] {
            assert!(refuse_transaction_control(sql).is_ok(), "{sql}");
        }
    }
}
