//! The gate: idle connections, slot counts and waiters, changed only in short critical sections.
//!
//! Every slot of the pool is in exactly one place: an idle connection, a slot held by a caller (`in_use`),
//! or a slot reserved by a caller opening a connection (`connecting`). So `size = idle + in_use +
//! connecting`, and a slot only moves between those places under the lock. Capacity that frees up goes to
//! the oldest waiter first (a hand-off), so waiters exist only while the pool is full.
//!
//! The methods here never block, never call user code, and never drop a connection (closing one may be
//! slow): anything to close or wake is returned in [`Effects`] and carried out after the lock is released.

use std::collections::VecDeque;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::ReuseOrder;
use super::error::PoolState;
use super::parker::{self, Parker};
use super::shelves;
use super::stats::CloseReason;
use super::waiters::{WaitQueue, Wake};
use crate::observe::Notes;

/// An open connection with its deadlines, computed when it is created or returned (or, handed straight
/// to a waiter, when the waiter takes it) so that checkout only compares instants. The pool keeps it
/// boxed, so that checkout and return move a pointer, not the connection (a libSQL connection with
/// its statement cache is a few hundred bytes).
pub(crate) struct Conn<C> {
    pub(crate) raw: C,
    /// When it must be closed (creation + max lifetime - jitter).
    pub(crate) expires_at: Option<Instant>,
    /// A checkout after this sends its return through the gate, not onto its thread's shelf, and that
    /// return reaps the pool: its expiry, or a quarter of the idle timeout after it last passed the
    /// gate (see `Shared::reap_every`), whichever comes first. (A checkout past its expiry closes it
    /// instead, and that close reaps: `Shared::reap_all`.)
    pub(crate) gate_after: Option<Instant>,
    /// When it has idled out (last use + idle timeout).
    pub(crate) idle_until: Option<Instant>,
    /// When it needs a health check again (last use + bypass window).
    pub(crate) trusted_until: Instant,
    /// Handed straight from its last holder to a waiter, without reading the clock: `idle_until` and
    /// `trusted_until` are stale until the new holder records the use (see `Shared::take_in_hand`).
    /// Idle connections are never in hand.
    pub(crate) in_hand: bool,
    /// Its next return may rest on its thread's shelf without reading the clock: set at each checkout,
    /// which records the use, while `gate_after` had not come (see `Shared::lend`).
    pub(crate) may_shelve: bool,
}

impl<C> Conn<C> {
    /// Records a use at `now`.
    pub(crate) fn touch(&mut self, now: Instant, idle_timeout: Option<Duration>, bypass: Duration) {
        self.idle_until = idle_timeout.and_then(|t| now.checked_add(t));
        self.trusted_until = now.checked_add(bypass).unwrap_or(now);
        self.in_hand = false;
    }

    fn idled_out(&self, now: Instant) -> bool {
        self.idle_until.is_some_and(|at| now >= at)
    }
}

/// Capacity given to a caller: a connection, or the right to open one in a reserved slot.
pub(crate) enum Grant<C> {
    Conn(Box<Conn<C>>),
    Create,
}

/// Work to do once the lock is released.
#[must_use]
pub(crate) struct Effects<C> {
    pub(crate) wake: Few<Wake>,
    /// The thread first in line after a hand-off, woken early to spin (see [`Parker`]).
    pub(crate) nudge: Option<Arc<Parker>>,
    pub(crate) close: Few<(C, CloseReason)>,
    /// Reports for the observer (zero-sized without the `tracing` feature).
    pub(crate) notes: Notes,
}

impl<C> Default for Effects<C> {
    fn default() -> Self {
        Self {
            wake: Few::default(),
            nudge: None,
            close: Few::default(),
            notes: Notes::default(),
        }
    }
}

impl<C> Effects<C> {
    pub(crate) fn is_empty(&self) -> bool {
        self.wake.is_empty()
            && self.nudge.is_none()
            && self.close.is_empty()
            && self.notes.is_empty()
    }
}

/// A list that holds its first item inline: most critical sections wake or close at most one thing, and
/// they should not allocate to say so.
pub(crate) struct Few<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T> Few<T> {
    pub(crate) fn push(&mut self, item: T) {
        match self.first {
            None => self.first = Some(item),
            Some(_) => self.rest.push(item),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }
}

impl<T> Extend<T> for Few<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        for item in items {
            self.push(item);
        }
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        self.first.into_iter().chain(self.rest)
    }
}

/// A checked-out connection's holder, for leak detection.
pub(crate) struct Lease {
    pub(crate) since: Instant,
    pub(crate) caller: &'static Location<'static>,
    pub(crate) reported: bool,
}

/// The pool's state behind its one lock.
pub(crate) struct State<C> {
    pub(crate) idle: VecDeque<Box<Conn<C>>>,
    pub(crate) in_use: usize,
    pub(crate) connecting: usize,
    pub(crate) max: usize,
    pub(crate) closed: bool,
    pub(crate) waiters: WaitQueue<C>,
    /// The last connect or validation error, for timeout reports.
    pub(crate) last_error: Option<String>,
    /// Holders of checked-out connections, when leak detection is on.
    pub(crate) leases: Vec<Option<Lease>>,
    /// When the timeout task will next look at waiters' deadlines (`None`: when told to).
    pub(crate) sweep_at: Option<Instant>,
    /// Hand-offs left before waiters may spin again (see [`State::may_spin`]).
    spin_pause: u32,
}

impl<C> State<C> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            idle: VecDeque::new(),
            in_use: 0,
            connecting: 0,
            max,
            closed: false,
            waiters: WaitQueue::default(),
            last_error: None,
            leases: Vec::new(),
            spin_pause: 0,
            sweep_at: None,
        }
    }

    /// Whether the thread next in line may be woken early to spin: only while fewer connections are
    /// out than there are cores ([`parker::worth_spinning`]), and not for a while after a spinner lost
    /// its core to another thread.
    pub(crate) fn may_spin(&mut self) -> bool {
        if !parker::worth_spinning(self.in_use) {
            return false;
        }
        if self.spin_pause > 0 {
            self.spin_pause -= 1;
            return false;
        }
        true
    }

    /// After a hand-off: wakes the thread now first in line early, if spinning may pay, so that it
    /// spins for the next grant (see [`Parker`]).
    fn nudge_next(&mut self, effects: &mut Effects<C>) {
        if self.waiters.first_thread().is_some() && self.may_spin() {
            effects.nudge = self.waiters.first_thread().cloned();
        }
    }

    /// A spinner lost its core to another thread (the machine is busier than its cores): spinning
    /// would make waiters miss their wake-ups, so nobody is nudged for the next `hand_offs` hand-offs
    /// that would have nudged a thread.
    pub(crate) fn pause_spinning(&mut self, hand_offs: u32) {
        self.spin_pause = hand_offs;
    }

    /// Open connections plus slots being opened.
    pub(crate) fn size(&self) -> usize {
        self.idle.len() + self.in_use + self.connecting
    }

    /// The gauges, with `shelved` of the connections counted in `in_use` resting on their threads'
    /// shelves (see `shelves.rs`): those count as idle.
    pub(crate) fn gauges(&self, shelved: usize) -> PoolState {
        PoolState {
            size: self.size(),
            idle: self.idle.len() + shelved,
            in_use: self.in_use - shelved,
            connecting: self.connecting,
            waiting: self.waiters.len(),
            max_size: self.max,
        }
    }

    /// The attention bits the shelves' fast paths obey (see `shelves.rs`): 0 while nobody queues and
    /// the pool is open and within its maximum.
    pub(crate) fn attention(&self) -> usize {
        let mut bits = 0;
        if !self.waiters.is_empty() {
            bits |= shelves::QUEUED;
        }
        if self.closed {
            bits |= shelves::CLOSED;
        }
        if self.size() > self.max {
            bits |= shelves::OVERSIZED;
        }
        bits
    }

    /// An idle connection for a caller with nobody queued before it (`Shared::take_free` checks).
    pub(crate) fn take_idle(&mut self, order: ReuseOrder) -> Option<Box<Conn<C>>> {
        let conn = self.pop_idle(order)?;
        self.in_use += 1;
        Some(conn)
    }

    /// Reserves a slot to open a connection in, if the pool has room, for a caller with nobody queued
    /// before it (`Shared::take_free` checks).
    pub(crate) fn reserve(&mut self) -> Option<Grant<C>> {
        if self.size() >= self.max {
            return None;
        }
        self.connecting += 1;
        Some(Grant::Create)
    }

    fn pop_idle(&mut self, order: ReuseOrder) -> Option<Box<Conn<C>>> {
        match order {
            ReuseOrder::Lifo => self.idle.pop_back(),
            ReuseOrder::Fifo => self.idle.pop_front(),
        }
    }

    /// Whether a connection checked in now goes straight to a waiter.
    pub(crate) fn hands_off(&self) -> bool {
        !self.closed && self.size() <= self.max && !self.waiters.is_empty()
    }

    /// A holder gives back a healthy connection. It goes to the oldest waiter, else to the idle list;
    /// on a closed or oversized pool it is closed. The slot leaves `in_use` unless it is handed on.
    pub(crate) fn check_in(&mut self, conn: Box<Conn<C>>, effects: &mut Effects<C>) {
        if self.closed || self.size() > self.max {
            self.in_use -= 1;
            effects.close.push((conn.raw, CloseReason::Retired));
            return;
        }
        match self.waiters.hand_off(Grant::Conn(conn)) {
            Ok(wake) => {
                effects.wake.extend(wake);
                self.nudge_next(effects);
            }
            Err(Grant::Conn(conn)) => {
                debug_assert!(!conn.in_hand, "an idle connection's deadlines are current");
                self.in_use -= 1;
                self.idle.push_back(conn);
            }
            Err(Grant::Create) => unreachable!("hand_off returns the grant it was given"),
        }
    }

    /// A slot held by a caller is given up without a connection (the connection was closed, detached,
    /// or never opened). The freed capacity goes to the oldest waiter as the right to open a connection.
    pub(crate) fn release(&mut self, connecting: bool, effects: &mut Effects<C>) {
        if connecting {
            self.connecting -= 1;
        } else {
            self.in_use -= 1;
        }
        self.grant_free_capacity(effects);
    }

    /// Gives every free slot to a waiter, oldest first.
    pub(crate) fn grant_free_capacity(&mut self, effects: &mut Effects<C>) {
        while !self.closed && self.size() < self.max && !self.waiters.is_empty() {
            match self.waiters.hand_off(Grant::Create) {
                Ok(wake) => {
                    self.connecting += 1;
                    effects.wake.extend(wake);
                    self.nudge_next(effects);
                }
                Err(_) => break,
            }
        }
    }

    /// A caller holding an `in_use` slot closed its connection (expired, failed its health check) and
    /// needs another: an idle one if there is one, else the right to open one in the same slot.
    /// `None` if the pool closed meanwhile; the slot is then released.
    pub(crate) fn replace(
        &mut self,
        order: ReuseOrder,
        effects: &mut Effects<C>,
    ) -> Option<Grant<C>> {
        if self.closed {
            self.release(false, effects);
            return None;
        }
        if let Some(conn) = self.pop_idle(order) {
            return Some(Grant::Conn(conn));
        }
        self.in_use -= 1;
        self.connecting += 1;
        Some(Grant::Create)
    }

    /// A caller opened a connection in its reserved slot. `false` if the pool closed meanwhile: the slot is
    /// then released and the caller must close the connection.
    pub(crate) fn connected(&mut self) -> bool {
        self.connecting -= 1;
        if self.closed {
            return false;
        }
        self.in_use += 1;
        true
    }

    /// Passes on a grant whose waiter gave up, as if the capacity had just freed up.
    pub(crate) fn pass_on(&mut self, grant: Grant<C>, effects: &mut Effects<C>) {
        match grant {
            Grant::Conn(conn) => self.check_in(conn, effects),
            Grant::Create => self.release(true, effects),
        }
    }

    /// Closes the pool: no more checkouts, every waiter fails, idle connections are closed.
    pub(crate) fn close(&mut self, effects: &mut Effects<C>) {
        self.closed = true;
        self.waiters.close_all(&mut effects.wake);
        effects.close.extend(
            self.idle
                .drain(..)
                .map(|conn| (conn.raw, CloseReason::Retired)),
        );
    }

    /// Changes the maximum size. Growing serves waiters at once; shrinking closes idle connections now and
    /// the others as they come back.
    pub(crate) fn resize(&mut self, max: usize, effects: &mut Effects<C>) {
        self.max = max;
        while self.size() > self.max {
            match self.idle.pop_front() {
                Some(conn) => effects.close.push((conn.raw, CloseReason::Retired)),
                None => break,
            }
        }
        self.grant_free_capacity(effects);
    }

    /// Closes idle connections past their lifetime, and those idle longer than `idle_timeout` beyond
    /// `min_idle` (least recently used first).
    pub(crate) fn reap(&mut self, now: Instant, min_idle: usize, effects: &mut Effects<C>) {
        let mut index = 0;
        while index < self.idle.len() {
            let conn = &self.idle[index];
            let reason = if conn.expires_at.is_some_and(|at| now >= at) {
                Some(CloseReason::MaxLifetime)
            } else if self.idle.len() > min_idle && conn.idled_out(now) {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    let conn = self.idle.remove(index).expect("index is in bounds");
                    effects.close.push((conn.raw, reason));
                }
                None => index += 1,
            }
        }
    }

    /// Reaps only the least recently used idle connection, if it has idled out: O(1), for the return path.
    pub(crate) fn reap_oldest(&mut self, now: Instant, min_idle: usize, effects: &mut Effects<C>) {
        if self.idle.len() > min_idle && self.idle.front().is_some_and(|conn| conn.idled_out(now)) {
            let conn = self.idle.pop_front().expect("front exists");
            effects.close.push((conn.raw, CloseReason::IdleTimeout));
        }
    }

    /// Records a holder for leak detection and returns its key.
    pub(crate) fn add_lease(&mut self, lease: Lease) -> usize {
        match self.leases.iter().position(Option::is_none) {
            Some(key) => {
                self.leases[key] = Some(lease);
                key
            }
            None => {
                self.leases.push(Some(lease));
                self.leases.len() - 1
            }
        }
    }
}
