//! Waiting for capacity, written once for both kinds of caller.
//!
//! [`Acquire`] is an [`EventListenerFuture`]: one `poll_with_strategy` holds the whole state machine
//! (try the fast path, else queue, else pick up the grant). Async callers poll it with the non-blocking
//! strategy; blocking callers drive it with [`Deadline`], which parks the thread on the same listener with
//! a deadline. This is the idiom of `async-lock`'s own primitives, plus a deadline.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use event_listener::{EventListener, Listener};
use event_listener_strategy::{EventListenerFuture, Strategy};

use super::error::PoolError;
use super::guard::PooledConnection;
use super::manager::Manager;
use super::shared::Shared;
use super::state::{Effects, Grant};
use super::waiters::Taken;

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
    /// is then closed.
    pub(crate) fn complete(
        mut self,
        raw: M::Connection,
        now: Instant,
    ) -> Result<PooledConnection<M>, M::Connection> {
        self.armed = false;
        let mut state = self.shared.lock();
        if state.connected() {
            drop(state);
            let conn = self.shared.wrap_new(raw, now);
            return Ok(PooledConnection::new(self.shared.clone(), conn));
        }
        let drained = state.in_use + state.connecting == 0;
        drop(state);
        self.shared.apply_released(Effects::default(), drained);
        Err(raw)
    }
}

impl<M: Manager> Drop for CreatePermit<'_, M> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.release(true, None);
        }
    }
}

/// Waits for capacity: the fast path first, then a place in the FIFO queue.
pub(crate) struct Acquire<'a, M: Manager> {
    shared: &'a Arc<Shared<M>>,
    /// Our entry in the wait queue, while queued or granted but not yet picked up.
    key: Option<usize>,
    listener: Option<EventListener>,
}

impl<'a, M: Manager> Acquire<'a, M> {
    pub(crate) fn new(shared: &'a Arc<Shared<M>>) -> Self {
        Self {
            shared,
            key: None,
            listener: None,
        }
    }

    /// Gives up waiting (on a timeout). A grant that arrived meanwhile is taken rather than wasted.
    pub(crate) fn give_up(&mut self) -> Option<Slot<'a, M>> {
        let key = self.key.take()?;
        let mut state = self.shared.lock();
        let grant = state.waiters.cancel(key)?;
        if state.closed {
            let mut effects = Effects::default();
            state.pass_on(grant, &mut effects);
            drop(state);
            self.shared.apply(effects);
            return None;
        }
        drop(state);
        Some(Slot::from_grant(self.shared, grant))
    }
}

impl<'a, M: Manager> EventListenerFuture for Acquire<'a, M> {
    type Output = Result<Slot<'a, M>, PoolError<M::Error>>;

    fn poll_with_strategy<'s, S: Strategy<'s>>(
        self: Pin<&mut Self>,
        strategy: &mut S,
        context: &mut S::Context,
    ) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            if this.listener.is_some() && strategy.poll(&mut this.listener, context).is_pending() {
                return Poll::Pending;
            }
            let mut state = this.shared.lock();
            let Some(key) = this.key else {
                if state.closed {
                    return Poll::Ready(Err(PoolError::Closed));
                }
                if let Some(grant) = state.try_take(this.shared.config.reuse_order) {
                    drop(state);
                    return Poll::Ready(Ok(Slot::from_grant(this.shared, grant)));
                }
                let (key, listener) = state.waiters.enqueue();
                this.key = Some(key);
                this.listener = Some(listener);
                continue;
            };
            match state.waiters.take(key) {
                Taken::Granted(grant) => {
                    this.key = None;
                    if state.closed {
                        let mut effects = Effects::default();
                        state.pass_on(grant, &mut effects);
                        drop(state);
                        this.shared.apply(effects);
                        return Poll::Ready(Err(PoolError::Closed));
                    }
                    drop(state);
                    return Poll::Ready(Ok(Slot::from_grant(this.shared, grant)));
                }
                Taken::Closed => {
                    this.key = None;
                    return Poll::Ready(Err(PoolError::Closed));
                }
                Taken::Waiting => this.listener = Some(state.waiters.listen(key)),
            }
        }
    }
}

impl<M: Manager> Drop for Acquire<'_, M> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut state = self.shared.lock();
        if let Some(grant) = state.waiters.cancel(key) {
            let mut effects = Effects::default();
            state.pass_on(grant, &mut effects);
            let drained = state.closed && state.in_use + state.connecting == 0;
            drop(state);
            self.shared.apply_released(effects, drained);
        }
    }
}

/// The blocking strategy with an optional deadline. When the deadline passes it reports `Pending` and
/// sets `expired`, and the caller gives up.
pub(crate) struct Deadline {
    at: Option<Instant>,
    pub(crate) expired: bool,
}

impl Deadline {
    pub(crate) fn new(at: Option<Instant>) -> Self {
        Self { at, expired: false }
    }
}

impl Strategy<'_> for Deadline {
    type Context = ();
    type Future = std::future::Ready<()>;

    fn poll<T, L: Listener<T> + Unpin>(
        &mut self,
        listener: &mut Option<L>,
        _context: &mut (),
    ) -> Poll<T> {
        let listener = listener.take().expect("polled without a listener");
        let notified = match self.at {
            None => Some(listener.wait()),
            Some(at) => listener.wait_deadline(at),
        };
        match notified {
            Some(value) => Poll::Ready(value),
            None => {
                self.expired = true;
                Poll::Pending
            }
        }
    }

    fn wait(&mut self, listener: EventListener) -> Self::Future {
        let _ = self.poll(&mut Some(listener), &mut ());
        std::future::ready(())
    }
}
