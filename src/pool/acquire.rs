//! Waiting for capacity, written once for both kinds of caller.
//!
//! [`begin`] takes free capacity or queues the caller, under one lock. A queued caller then polls its
//! [`Acquire`]: one `poll_grant` holds the whole state machine, and only the way to sleep differs. An
//! async caller registers its `Waker` and returns `Pending`; a thread registers its parker and parks
//! with a deadline. Whoever frees capacity stores the grant in the oldest waiter's ticket and wakes that
//! waiter directly, after releasing the lock; the waiter takes it from its ticket without the pool's
//! lock (see `waiters.rs`).
//!
//! An earlier version parked both kinds of caller on an `event-listener` listener per wait, in the idiom
//! of `async-lock`. Measured under saturation (128 tasks on a pool of 8), listening, polling and dropping
//! those listeners took about 12 % of a checkout, and the per-wait timer another 12 %; storing the
//! caller's own `Waker`/`Parker` in its ticket costs one small allocation per wait, and async deadlines
//! are enforced by one timeout task per pool (see `timeouts.rs`) instead of a timer per wait.

use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use super::error::PoolError;
use super::guard::PooledConnection;
use super::manager::Manager;
use super::parker::Parker;
use super::shared::Shared;
use super::state::{Effects, Grant};
use super::stats::CloseReason;
use super::waiters::{Ended, Sleeper, Taken, Ticket};

/// Capacity held by a caller: a connection (already in its guard), or a reserved slot to open one in.
pub(crate) enum Slot<'a, M: Manager> {
    Ready(PooledConnection<M>),
    Create(CreatePermit<'a, M>),
}

impl<'a, M: Manager> Slot<'a, M> {
    pub(crate) fn from_grant(shared: &'a Arc<Shared<M>>, grant: Grant<M::Connection>) -> Self {
        match grant {
            Grant::Conn(conn) => Slot::Ready(PooledConnection::new(shared.clone(), conn)),
            Grant::Create => Slot::Create(CreatePermit {
                shared,
                armed: true,
            }),
        }
    }
}

/// A reserved slot. Dropping it (a failed connect, a cancelled future) releases the slot to the next
/// waiter.
pub(crate) struct CreatePermit<'a, M: Manager> {
    pub(crate) shared: &'a Arc<Shared<M>>,
    armed: bool,
}

impl<M: Manager> CreatePermit<'_, M> {
    /// Puts a freshly opened connection in the slot. Fails if the pool closed meanwhile; the connection
    /// is then closed, before `shutdown` hears that the slot is free.
    pub(crate) fn complete(
        mut self,
        raw: M::Connection,
        now: Instant,
    ) -> Option<PooledConnection<M>> {
        self.armed = false;
        let mut state = self.shared.lock();
        if state.connected() {
            drop(state);
            let conn = self.shared.wrap_new(raw, now);
            return Some(PooledConnection::new(self.shared.clone(), conn));
        }
        let drained = state.in_use + state.connecting == 0;
        drop(state);
        let mut effects = Effects::default();
        effects.close.push((raw, CloseReason::Retired));
        self.shared.apply_released(effects, drained);
        None
    }
}

impl<M: Manager> Drop for CreatePermit<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.release(true, None);
        }
    }
}

/// What a caller gets under the lock: capacity at once, or a place in the FIFO queue.
pub(crate) enum Begin<C> {
    Granted(Grant<C>),
    Queued(Ticket<C>),
}

/// Takes this thread's shelved connection if nobody queues; else, under one lock: fails on a closed
/// pool, else takes free capacity, else queues the caller and registers how to wake it, so that it can
/// sleep at once. An async caller gives its `deadline`, which the timeout
/// task enforces.
pub(crate) fn begin<M: Manager>(
    shared: &Shared<M>,
    deadline: Option<Instant>,
    sleeper: Sleeper<'_>,
) -> Result<Begin<M::Connection>, PoolError<M::Error>> {
    if let Some(conn) = shared.shelves.take_own() {
        return Ok(Begin::Granted(Grant::Conn(conn)));
    }
    let mut state = shared.lock();
    if state.closed {
        return Err(PoolError::Closed);
    }
    if let Some(grant) = shared.take_free(&mut state) {
        return Ok(Begin::Granted(grant));
    }
    let thread = matches!(sleeper, Sleeper::Thread);
    let ticket = state.waiters.enqueue(deadline, sleeper);
    if thread && state.waiters.len() == 1 && state.may_spin() {
        // First in line: nobody will nudge this thread, so it nudges itself and spins once before it
        // sleeps (see `Parker`).
        Parker::current().nudge();
    }
    // Tell the timeout task if this deadline comes before the one it sleeps towards.
    let earlier = deadline.filter(|d| state.sweep_at.is_none_or(|at| *d < at));
    if earlier.is_some() {
        state.sweep_at = earlier;
    }
    drop(state);
    if earlier.is_some() {
        shared.deadlines.notify(1);
    }
    Ok(Begin::Queued(ticket))
}

/// A queued caller waiting for its grant. Dropping it leaves the queue and passes on a grant that
/// arrived meanwhile. Async callers poll it with their `Waker`, threads with [`wait_until`](Self::wait_until).
pub(crate) struct Acquire<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    /// Our ticket, until the grant (or the end of the wait) is picked up.
    ticket: Option<Ticket<M::Connection>>,
}

impl<'a, M: Manager> Acquire<'a, M> {
    /// The wait of a caller that [`begin`] queued.
    pub(crate) fn queued(shared: &'a Arc<Shared<M>>, ticket: Ticket<M::Connection>) -> Self {
        Self {
            shared,
            ticket: Some(ticket),
        }
    }

    /// Picks up the grant if it has arrived, else registers `sleeper` to be woken. Only a grant that
    /// meets a closed pool takes the pool's lock, to pass it on.
    pub(crate) fn poll_grant(&mut self, sleeper: Sleeper<'_>) -> Poll<Result<Slot<'a, M>, Ended>> {
        let ticket = self.ticket.as_ref().expect("polled after completion");
        match ticket.poll(sleeper) {
            Taken::Waiting => Poll::Pending,
            Taken::Ended(ended) => {
                self.ticket = None;
                Poll::Ready(Err(ended))
            }
            Taken::Granted(grant) => {
                self.ticket = None;
                if self.shared.closing.is_closed() {
                    self.pass_on(grant);
                    return Poll::Ready(Err(Ended::Closed));
                }
                Poll::Ready(Ok(Slot::from_grant(self.shared, grant)))
            }
        }
    }

    /// Passes on a grant this waiter will not use.
    fn pass_on(&self, mut grant: Grant<M::Connection>) {
        let mut effects = Effects::default();
        self.shared.settle(&mut grant);
        let mut state = self.shared.lock();
        state.pass_on(grant, &mut effects);
        let drained = state.closed && state.in_use + state.connecting == 0;
        drop(state);
        self.shared.apply_released(effects, drained);
    }

    /// Waits on this thread until the grant arrives or `deadline` passes. At the deadline a grant that
    /// arrived meanwhile is taken rather than wasted.
    /// The thread was registered by [`begin`], so it parks first and looks after each wake-up; woken
    /// early as the next in line, it spins briefly for its grant (see [`Parker`]).
    pub(crate) fn wait_until(mut self, deadline: Option<Instant>) -> Result<Slot<'a, M>, Ended> {
        let parker = Parker::current();
        loop {
            crate::sync::park_until(deadline);
            if parker.take_nudge() && !parker.has_news() {
                self.shared.spun(parker.spin());
            }
            parker.clear();
            if let Poll::Ready(result) = self.poll_grant(Sleeper::Thread) {
                return result;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.give_up().ok_or(Ended::TimedOut);
            }
        }
    }

    /// Leaves the queue; returns a grant that arrived meanwhile, unless the pool closed.
    fn give_up(&mut self) -> Option<Slot<'a, M>> {
        let ticket = self.ticket.take()?;
        let grant = self.shared.lock().waiters.cancel(&ticket)?;
        if self.shared.closing.is_closed() {
            self.pass_on(grant);
            return None;
        }
        Some(Slot::from_grant(self.shared, grant))
    }
}

impl<M: Manager> Drop for Acquire<'_, M> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let grant = self.shared.lock().waiters.cancel(&ticket);
        if let Some(grant) = grant {
            self.pass_on(grant);
        }
    }
}
