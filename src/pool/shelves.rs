//! Shelves: where a returned connection waits for its thread's next checkout, while nobody queues.
//!
//! Each thread has a shelf (threads share out a few shelves in turn, each on cache lines of its own).
//! A holder that returns a healthy connection while no caller waits puts it on its thread's shelf, and
//! that thread's next checkout takes it back, without the pool's lock. On a busy machine, two threads
//! that check out and return in turn then stop pulling the lock's cache line from each other's core on
//! every checkout (HikariCP's `ConcurrentBag` keeps a per-thread list for the same reason).
//!
//! A shelved connection still holds its slot in the gate (it counts in `in_use` there); the gauges
//! count it as idle. Fairness and reuse come first:
//! * The fast paths run only while the **attention** word is 0: no caller queued, the pool open and
//!   not above its maximum. The gate publishes the word whenever its lock is released.
//! * A caller that finds no idle connection under the lock, with nobody queued before it, first
//!   *announces* itself (sets the word), then looks on every shelf. A returner reads the word after it
//!   shelves. Each shelf's mutex orders the two: either the caller finds the connection, or the returner
//!   sees the word, takes its connection back and returns it through the gate, which hands it to the
//!   oldest waiter. No connection sleeps on a shelf while someone waits for one.
//! * Closing (and shrinking below what is open) sets the word, then empties every shelf through the
//!   gate, which closes what it must; a return that shelved meanwhile sees the word and takes its
//!   connection back. Growing and maintenance empty the shelves too. A shelved connection's idle
//!   timeout and lifetime are checked by the checkout that takes it, like an idle one's, and by each
//!   round of maintenance. A return onto a shelf reads no clock: the connection's deadlines count from
//!   its checkout, which also decides whether its return may rest on a shelf (`Shared::lend`).
//!
//! Shelves are off with FIFO reuse (which promises to spread use over all connections) and with leak
//! detection (whose leases live under the lock).

use super::state::Conn;
use crate::sync::{AtomicUsize, Mutex, Ordering::SeqCst};

/// Bits of the attention word. Any bit set turns the fast paths off.
pub(crate) const QUEUED: usize = 1;
pub(crate) const CLOSED: usize = 2;
pub(crate) const OVERSIZED: usize = 4;
/// Set by a caller that is about to look on the shelves before it queues.
const LOOKING: usize = 8;

/// The most shelves a pool has.
const MAX_SHELVES: usize = if cfg!(loom) { 1 } else { 8 };

/// What a shelf holds.
type Shelved<C> = Option<Box<Conn<C>>>;

/// One shelf, on cache lines of its own.
#[repr(align(128))]
struct Shelf<C>(Mutex<Shelved<C>>);

/// The shelves of one pool, and the attention word that guards them.
pub(crate) struct Shelves<C> {
    attention: AtomicUsize,
    shelves: Box<[Shelf<C>]>,
}

impl<C> Shelves<C> {
    /// `count` shelves (at most 8; 0 turns them off).
    pub(crate) fn new(count: usize) -> Self {
        Self {
            attention: AtomicUsize::new(0),
            shelves: (0..count.min(MAX_SHELVES))
                .map(|_| Shelf(Mutex::new(None)))
                .collect(),
        }
    }

    fn enabled(&self) -> bool {
        !self.shelves.is_empty()
    }

    fn own(&self) -> &Mutex<Shelved<C>> {
        &self.shelves[thread_number() % self.shelves.len()].0
    }

    /// Publishes the gate's attention bits (called under the gate's lock).
    pub(crate) fn publish(&self, bits: usize) {
        if self.enabled() && self.attention.load(SeqCst) != bits {
            self.attention.store(bits, SeqCst);
        }
    }

    /// Announces a caller about to look on the shelves before it queues (under the gate's lock).
    pub(crate) fn announce(&self) {
        if self.enabled() {
            self.attention.fetch_or(LOOKING, SeqCst);
        }
    }

    fn quiet(&self) -> bool {
        self.attention.load(SeqCst) == 0
    }

    /// Whether a return may try its thread's shelf now.
    pub(crate) fn open(&self) -> bool {
        self.enabled() && self.quiet()
    }

    /// The fast checkout: this thread's shelved connection, if nobody queues.
    pub(crate) fn take_own(&self) -> Option<Box<Conn<C>>> {
        if !self.open() {
            return None;
        }
        let mut shelf = self.own().try_lock().ok()?;
        shelf.take()
    }

    /// The fast return, for a caller that saw [`open`](Self::open): puts `conn` on this thread's shelf,
    /// so that the thread's next checkout takes the connection it returned last. Yields what must go
    /// through the gate instead: `conn` itself when the shelf is busy; else what the shelf held before,
    /// and, if someone started to wait meanwhile, whatever is still on the shelf (`conn`, or a
    /// connection another thread sharing the shelf put there), or nothing if a looker took it.
    pub(crate) fn shelve(&self, conn: Box<Conn<C>>) -> impl Iterator<Item = Box<Conn<C>>> {
        let (displaced, back) = self.put(conn);
        displaced.into_iter().chain(back)
    }

    fn put(&self, conn: Box<Conn<C>>) -> (Shelved<C>, Shelved<C>) {
        let own = self.own();
        let displaced = match own.try_lock() {
            Ok(mut shelf) => shelf.replace(conn),
            Err(_) => return (Some(conn), None),
        };
        if self.quiet() {
            return (displaced, None);
        }
        (displaced, crate::sync::lock(own).take())
    }

    /// Takes a connection from any shelf (under the gate's lock, after [`announce`](Self::announce)).
    pub(crate) fn take_any(&self) -> Option<Box<Conn<C>>> {
        self.shelves
            .iter()
            .find_map(|shelf| crate::sync::lock(&shelf.0).take())
    }

    /// Empties every shelf (under the gate's lock, with the attention word set).
    pub(crate) fn drain(&self) -> impl Iterator<Item = Box<Conn<C>>> + '_ {
        self.shelves
            .iter()
            .filter_map(|shelf| crate::sync::lock(&shelf.0).take())
    }

    /// How many connections are shelved (under the gate's lock; a fast path may move one meanwhile).
    pub(crate) fn count(&self) -> usize {
        self.shelves
            .iter()
            .filter(|shelf| crate::sync::lock(&shelf.0).is_some())
            .count()
    }
}

/// The calling thread's number, given out in turn as threads first ask. It picks the thread's shelf
/// and its share of the checkout counters.
pub(crate) fn thread_number() -> usize {
    #[cfg(loom)]
    {
        0
    }
    #[cfg(not(loom))]
    {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static NUMBER: usize = NEXT.fetch_add(1, Relaxed);
        }
        // During thread-local destruction any number serves.
        NUMBER.try_with(|number| *number).unwrap_or(0)
    }
}
