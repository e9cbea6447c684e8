//! The FIFO queue of callers waiting for a connection, and the hand-off of grants to them.
//!
//! Each waiter owns an entry in a small slab. When capacity frees up, the state pops the *oldest* queued
//! waiter, stores the grant in its entry, and returns the waiter's wake-up handle (a task's `Waker` or a
//! thread's `Thread`) to be woken once the lock is released. The grant cannot be taken by anyone else: a
//! caller that arrives later finds the capacity already gone. Entries are reused and registering a waker
//! clones it at most once per wait, so a steady state allocates nothing.

use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use std::sync::Arc;

use super::parker::Parker;
use super::state::{Few, Grant};

/// How to wake a waiter.
pub(crate) enum Wake {
    Task(Waker),
    Thread(Arc<Parker>),
}

impl Wake {
    pub(crate) fn wake(self) {
        match self {
            Wake::Task(waker) => waker.wake(),
            Wake::Thread(parker) => parker.notify(),
        }
    }
}

/// Who is about to sleep, as it registers.
pub(crate) enum Sleeper<'a> {
    Task(&'a Waker),
    Thread,
}

/// Why a wait ended without a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Closed,
    TimedOut,
}

struct Entry<C> {
    grant: Option<Grant<C>>,
    ended: Option<Ended>,
    wake: Option<Wake>,
    /// When the timeout task should end this wait (async waiters; threads time out themselves).
    deadline: Option<Instant>,
    occupied: bool,
}

/// What a waiter finds in its entry.
pub(crate) enum Taken<C> {
    /// Capacity was handed to it.
    Granted(Grant<C>),
    /// The wait ended without a grant.
    Ended(Ended),
    /// Nothing yet.
    Waiting,
}

/// Waiters, oldest first, with their entries.
pub(crate) struct WaitQueue<C> {
    entries: Vec<Entry<C>>,
    free: Vec<usize>,
    order: VecDeque<usize>,
}

impl<C> Default for WaitQueue<C> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
        }
    }
}

impl<C> WaitQueue<C> {
    /// Callers still waiting (granted ones are no longer counted).
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Queues a new waiter at the back and returns its key. It registers how to wake it with
    /// [`park`](Self::park) before it sleeps.
    pub(crate) fn enqueue(&mut self, deadline: Option<Instant>) -> usize {
        let key = match self.free.pop() {
            Some(key) => key,
            None => {
                self.entries.push(Entry {
                    grant: None,
                    ended: None,
                    wake: None,
                    deadline: None,
                    occupied: false,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[key];
        debug_assert!(!entry.occupied && entry.grant.is_none() && entry.wake.is_none());
        entry.occupied = true;
        entry.ended = None;
        entry.deadline = deadline;
        self.order.push_back(key);
        key
    }

    /// Hands `grant` to the oldest waiter and returns how to wake it once the lock is released (nothing
    /// if it has not gone to sleep yet: it will find the grant when it looks). Gives the grant back if
    /// nobody waits.
    pub(crate) fn hand_off(&mut self, grant: Grant<C>) -> Result<Option<Wake>, Grant<C>> {
        let Some(key) = self.order.pop_front() else {
            return Err(grant);
        };
        let entry = &mut self.entries[key];
        entry.grant = Some(grant);
        Ok(entry.wake.take())
    }

    /// The parker of the first waiter in line, if it is a thread (the one to nudge, see [`Parker`]).
    pub(crate) fn first_thread(&self) -> Option<&Arc<Parker>> {
        let &key = self.order.front()?;
        match &self.entries[key].wake {
            Some(Wake::Thread(parker)) => Some(parker),
            _ => None,
        }
    }

    /// What the waiter `key` finds. A grant or an end frees the entry.
    pub(crate) fn take(&mut self, key: usize) -> Taken<C> {
        let entry = &mut self.entries[key];
        if let Some(grant) = entry.grant.take() {
            self.release(key);
            Taken::Granted(grant)
        } else if let Some(ended) = entry.ended {
            self.release(key);
            Taken::Ended(ended)
        } else {
            Taken::Waiting
        }
    }

    /// Registers how to wake the waiter `key`, which is still queued.
    pub(crate) fn park(&mut self, key: usize, sleeper: Sleeper<'_>) {
        let wake = &mut self.entries[key].wake;
        match (sleeper, &*wake) {
            (Sleeper::Task(waker), Some(Wake::Task(known))) if known.will_wake(waker) => {}
            (Sleeper::Task(waker), _) => *wake = Some(Wake::Task(waker.clone())),
            (Sleeper::Thread, Some(Wake::Thread(_))) => {}
            (Sleeper::Thread, _) => {
                let parker = Parker::current();
                parker.reset();
                *wake = Some(Wake::Thread(parker));
            }
        }
    }

    /// The waiter `key` gives up (cancelled or timed out). Returns a grant that reached it meanwhile,
    /// which the caller must pass on.
    pub(crate) fn cancel(&mut self, key: usize) -> Option<Grant<C>> {
        if let Some(position) = self.order.iter().position(|&k| k == key) {
            self.order.remove(position);
        }
        let grant = self.entries[key].grant.take();
        self.release(key);
        grant
    }

    /// Ends every queued wait with `Closed`, and collects who to wake.
    pub(crate) fn close_all(&mut self, wake: &mut Few<Wake>) {
        while let Some(key) = self.order.pop_front() {
            let entry = &mut self.entries[key];
            entry.ended = Some(Ended::Closed);
            wake.extend(entry.wake.take());
        }
    }

    /// Ends the waits whose deadline has passed, collects who to wake, and returns the earliest deadline
    /// still pending.
    pub(crate) fn expire(&mut self, now: Instant, wake: &mut Few<Wake>) -> Option<Instant> {
        let entries = &mut self.entries;
        let mut next: Option<Instant> = None;
        self.order.retain(|&key| {
            let entry = &mut entries[key];
            match entry.deadline {
                Some(deadline) if deadline <= now => {
                    entry.ended = Some(Ended::TimedOut);
                    wake.extend(entry.wake.take());
                    false
                }
                Some(deadline) => {
                    next = Some(next.map_or(deadline, |n| n.min(deadline)));
                    true
                }
                None => true,
            }
        });
        next
    }

    fn release(&mut self, key: usize) {
        let entry = &mut self.entries[key];
        entry.occupied = false;
        entry.ended = None;
        entry.wake = None;
        entry.deadline = None;
        self.free.push(key);
    }
}
