//! The timeout task: one per pool with a runtime adapter, it ends async waits at their deadlines.
//!
//! A timer per waiting checkout (register, poll, deregister) cost about an eighth of a checkout under
//! saturation. Instead, each async waiter records its deadline in its ticket, and this task sleeps
//! until the earliest one, ends the waits that are due (they fail with a timeout error), and sleeps again.
//! A waiter whose deadline comes before the one the task sleeps towards wakes it early (see `begin`).
//! Threads do not need it: they park with their own deadline.

use std::sync::{Arc, Weak};
use std::time::Instant;

use futures_lite::future;

use super::manager::Manager;
use super::shared::Shared;
use super::state::Effects;

/// Starts the timeout task on the pool's runtime. It holds only a weak reference, and ends when the pool
/// closes or is dropped.
pub(crate) fn spawn<M: Manager>(shared: &Arc<Shared<M>>) {
    let Some(runtime) = shared.runtime.clone() else {
        return;
    };
    let weak: Weak<Shared<M>> = Arc::downgrade(shared);
    let closing = shared.closing.clone();
    let sleeper = runtime.clone();
    // Nobody waits yet: the task starts by waiting, and takes the pool only when woken.
    let mut closed = closing.listen();
    let mut earlier = shared.deadlines.listen();
    let mut next: Option<Instant> = None;
    runtime.spawn(Box::pin(async move {
        loop {
            let woken = future::or(closed, earlier);
            match next {
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    future::or(woken, sleeper.sleep(left)).await
                }
                None => woken.await,
            }
            closed = closing.listen();
            if closing.is_closed() {
                return;
            }
            let Some(shared) = weak.upgrade() else { return };
            earlier = shared.deadlines.listen();
            let now = Instant::now();
            let mut effects = Effects::default();
            next = {
                let mut state = shared.lock();
                if state.closed {
                    return;
                }
                let next = state.waiters.expire(now, &mut effects.wake);
                state.sweep_at = next;
                next
            };
            shared.apply(effects);
        }
    }));
}
