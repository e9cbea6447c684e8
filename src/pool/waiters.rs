//! The FIFO queue of callers waiting for a connection, and the hand-off of grants to them.
//!
//! Each waiter owns an entry in a small slab. When capacity frees up, the state pops the *oldest* queued
//! waiter, stores the grant in its entry, and wakes it through the entry's own event. So the grant cannot
//! be taken by anyone else: a caller that arrives later finds the capacity already gone. Entries and their
//! events are reused, so a steady state allocates nothing.

use std::collections::VecDeque;
use std::sync::Arc;

use event_listener::{Event, EventListener};

use super::state::Grant;

struct Entry<C> {
    event: Arc<Event>,
    grant: Option<Grant<C>>,
    closed: bool,
    occupied: bool,
}

/// What a waiter finds in its entry.
pub(crate) enum Taken<C> {
    /// Capacity was handed to it.
    Granted(Grant<C>),
    /// The pool closed while it waited.
    Closed,
    /// Nothing yet (a spurious wake-up).
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

    /// Queues a new waiter at the back. The listener is registered before the lock is released, so no
    /// grant can be missed.
    pub(crate) fn enqueue(&mut self) -> (usize, EventListener) {
        let key = match self.free.pop() {
            Some(key) => key,
            None => {
                self.entries.push(Entry {
                    event: Arc::new(Event::new()),
                    grant: None,
                    closed: false,
                    occupied: false,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[key];
        debug_assert!(!entry.occupied && entry.grant.is_none());
        entry.occupied = true;
        entry.closed = false;
        self.order.push_back(key);
        (key, entry.event.listen())
    }

    /// Hands `grant` to the oldest waiter and returns the event to notify once the lock is released.
    /// Gives the grant back if nobody waits.
    pub(crate) fn hand_off(&mut self, grant: Grant<C>) -> Result<Arc<Event>, Grant<C>> {
        let Some(key) = self.order.pop_front() else {
            return Err(grant);
        };
        let entry = &mut self.entries[key];
        entry.grant = Some(grant);
        Ok(entry.event.clone())
    }

    /// What the waiter `key` finds. A grant or a close frees the entry.
    pub(crate) fn take(&mut self, key: usize) -> Taken<C> {
        let entry = &mut self.entries[key];
        if let Some(grant) = entry.grant.take() {
            self.release(key);
            Taken::Granted(grant)
        } else if entry.closed {
            self.release(key);
            Taken::Closed
        } else {
            Taken::Waiting
        }
    }

    /// A fresh listener for a waiter that is still queued.
    pub(crate) fn listen(&self, key: usize) -> EventListener {
        self.entries[key].event.listen()
    }

    /// The waiter `key` gives up (cancelled or timed out). Returns a grant that reached it meanwhile, which
    /// the caller must pass on.
    pub(crate) fn cancel(&mut self, key: usize) -> Option<Grant<C>> {
        if let Some(position) = self.order.iter().position(|&k| k == key) {
            self.order.remove(position);
        }
        let grant = self.entries[key].grant.take();
        self.release(key);
        grant
    }

    /// Marks every queued waiter closed and returns their events to notify.
    pub(crate) fn close_all(&mut self) -> Vec<Arc<Event>> {
        let mut events = Vec::with_capacity(self.order.len());
        while let Some(key) = self.order.pop_front() {
            let entry = &mut self.entries[key];
            entry.closed = true;
            events.push(entry.event.clone());
        }
        events
    }

    fn release(&mut self, key: usize) {
        let entry = &mut self.entries[key];
        entry.occupied = false;
        entry.closed = false;
        self.free.push(key);
    }
}
