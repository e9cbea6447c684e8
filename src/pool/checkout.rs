//! Checkout: the fast path, the wait, and the steps that turn capacity into a usable connection.

use std::future::Future;
use std::panic::Location;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::acquire::{begin, Acquire, Begin, Slot};
use super::error::{PoolError, TimeoutError};
use super::guard::PooledConnection;
use super::hooks;
use super::manager::Manager;
use super::shared::Shared;
use super::state::{Effects, Grant, Lease};
use super::stats::CloseReason;
use super::waiters::{Ended, Sleeper};
use super::Pool;
use crate::observe::Span;

type Checkout<M> = Result<PooledConnection<M>, PoolError<<M as Manager>::Error>>;

impl<M: Manager> Pool<M> {
    /// Checks out a connection, waiting up to `connection_timeout`. Works on any executor, given a
    /// runtime adapter for the timeout (see [`PoolBuilder::runtime`](super::PoolBuilder::runtime)).
    ///
    /// ```
    /// # #[cfg(feature = "smol")] {
    /// # use memory_storage_turso::pool::{Manager, Pool};
    /// # use memory_storage_turso::rt::Smol;
    /// # struct Unit;
    /// # impl Manager for Unit {
    /// #     type Connection = ();
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<(), Self::Error> { Ok(()) }
    /// # }
    /// let pool = Pool::builder(Unit).runtime(Smol).build().unwrap();
    /// smol::block_on(async {
    ///     let conn = pool.get().await.unwrap();
    ///     assert_eq!(pool.statistics().active_connections, 1);
    /// });
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`PoolError::Timeout`], [`PoolError::Closed`], [`PoolError::Connect`], [`PoolError::Hook`], and
    /// [`PoolError::NoRuntime`] on a pool built without a runtime adapter.
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Checkout<M>> + Send + '_ {
        self.get_timeout(self.shared.config.connection_timeout)
    }

    /// [`get`](Self::get) with a timeout of its own.
    #[track_caller]
    pub fn get_timeout(&self, timeout: Duration) -> impl Future<Output = Checkout<M>> + Send + '_ {
        let caller = Location::caller();
        async move { get_async(&self.shared, timeout, caller).await }
    }

    /// Checks out a connection from a thread, parking it for up to `connection_timeout`. Needs no runtime.
    ///
    /// Waiting is bounded by the timeout; opening or health-checking a connection is as fast as the
    /// manager makes it (it runs in place, with no timer).
    #[track_caller]
    pub fn get_blocking(&self) -> Checkout<M> {
        get_blocking(
            &self.shared,
            self.shared.config.connection_timeout,
            Location::caller(),
        )
    }

    /// [`get_blocking`](Self::get_blocking) with a timeout of its own.
    #[track_caller]
    pub fn get_blocking_timeout(&self, timeout: Duration) -> Checkout<M> {
        get_blocking(&self.shared, timeout, Location::caller())
    }

    /// Checks out a connection only if one is free now (or a slot is free to open one): never waits for
    /// another holder. `Ok(None)` when the pool is full, or when others are already queued.
    ///
    /// Opening a connection, or health-checking one that idled past the bypass window, runs in place
    /// with no timer, as in [`get_blocking`](Self::get_blocking): it takes as long as the manager
    /// takes.
    #[track_caller]
    pub fn try_get(&self) -> Result<Option<PooledConnection<M>>, PoolError<M::Error>> {
        let shared = &self.shared;
        let caller = Location::caller();
        let span = shared.observe.acquire_span();
        let _entered = span.enter();
        let started = Instant::now();
        let grant = match shared.shelves.take_own() {
            Some(conn) => Grant::Conn(conn),
            None => {
                let mut state = shared.lock();
                if state.closed {
                    return Err(PoolError::Closed);
                }
                match shared.take_free(&mut state) {
                    Some(grant) => grant,
                    None => return Ok(None),
                }
            }
        };
        let slot = match ready_now(shared, Slot::from_grant(shared, grant), started) {
            Ok(guard) => return hand_over(shared, guard, Duration::ZERO, caller, &span).map(Some),
            Err(slot) => slot,
        };
        let guard = future::block_on(finish(shared, slot, false))?;
        hand_over(shared, guard, started.elapsed(), caller, &span).map(Some)
    }
}

/// The common case, with no await: an idle connection that needs no health check and has not expired.
fn ready_now<'a, M: Manager>(
    shared: &Shared<M>,
    slot: Slot<'a, M>,
    now: Instant,
) -> Result<PooledConnection<M>, Slot<'a, M>> {
    match slot {
        Slot::Ready(mut guard) => {
            let conn = guard.conn.as_mut().expect("a guard holds its connection");
            shared.take_in_hand(conn, now);
            if shared.expired(conn, now).is_none() && !shared.needs_validation(conn, now) {
                shared.lend(conn, now);
                Ok(guard)
            } else {
                Err(Slot::Ready(guard))
            }
        }
        slot => Err(slot),
    }
}

async fn get_async<M: Manager>(
    shared: &Arc<Shared<M>>,
    timeout: Duration,
    caller: &'static Location<'static>,
) -> Checkout<M> {
    let Some(runtime) = shared.runtime.as_ref() else {
        return Err(PoolError::NoRuntime);
    };
    // The acquire span is entered around the steps that report, and wraps only the slow part: wrapping
    // this whole future would cost the fast path a move of it.
    let span = shared.observe.acquire_span();
    let started = Instant::now();
    let deadline = started.checked_add(timeout);
    // Take capacity, or queue with this task's waker, in one critical section; then wait for the grant.
    // The timeout task ends the wait at the deadline.
    let mut waiting: Option<Acquire<'_, M>> = None;
    let granted = future::poll_fn(|cx| match waiting.as_mut() {
        None => match begin(shared, deadline, Sleeper::Task(cx.waker())) {
            Err(error) => Poll::Ready(Err(error)),
            Ok(Begin::Granted(grant)) => Poll::Ready(Ok((Slot::from_grant(shared, grant), false))),
            Ok(Begin::Queued(ticket)) => {
                waiting = Some(Acquire::queued(shared, ticket));
                Poll::Pending
            }
        },
        Some(acquire) => acquire.poll_grant(Sleeper::Task(cx.waker())).map(|got| {
            got.map(|slot| (slot, true))
                .map_err(|ended| span.in_scope(|| ended_error(shared, ended, started)))
        }),
    })
    .await;
    drop(waiting);
    let (slot, waited) = granted?;
    let now = if waited { Instant::now() } else { started };
    let slot = match ready_now(shared, slot, now) {
        Ok(guard) => {
            let waited = if waited {
                now - started
            } else {
                Duration::ZERO
            };
            return span.in_scope(|| hand_over(shared, guard, waited, caller, &span));
        }
        Err(slot) => slot,
    };
    // Opening or checking a connection: under a timer of its own, for what is left of the timeout.
    let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
    let work = async {
        let guard = finish(shared, slot, true).await?;
        hand_over(shared, guard, started.elapsed(), caller, &span)
    };
    let expiry = async {
        runtime.sleep(left).await;
        Err(timed_out(shared, started))
    };
    span.clone().instrument(future::or(work, expiry)).await
}

fn get_blocking<M: Manager>(
    shared: &Arc<Shared<M>>,
    timeout: Duration,
    caller: &'static Location<'static>,
) -> Checkout<M> {
    let span = shared.observe.acquire_span();
    let _entered = span.enter();
    let started = Instant::now();
    let slot = match begin(shared, None, Sleeper::Thread)? {
        Begin::Granted(grant) => {
            match ready_now(shared, Slot::from_grant(shared, grant), started) {
                Ok(guard) => return hand_over(shared, guard, Duration::ZERO, caller, &span),
                Err(slot) => slot,
            }
        }
        Begin::Queued(ticket) => {
            let slot = Acquire::queued(shared, ticket)
                .wait_until(started.checked_add(timeout))
                .map_err(|ended| ended_error(shared, ended, started))?;
            let now = Instant::now();
            match ready_now(shared, slot, now) {
                Ok(guard) => return hand_over(shared, guard, now - started, caller, &span),
                Err(slot) => slot,
            }
        }
    };
    let guard = future::block_on(finish(shared, slot, false))?;
    hand_over(shared, guard, started.elapsed(), caller, &span)
}

fn ended_error<M: Manager>(
    shared: &Shared<M>,
    ended: Ended,
    started: Instant,
) -> PoolError<M::Error> {
    match ended {
        Ended::Closed => PoolError::Closed,
        Ended::TimedOut => timed_out(shared, started),
    }
}

fn timed_out<M: Manager>(shared: &Shared<M>, started: Instant) -> PoolError<M::Error> {
    shared.counters.timeout();
    let (state, last_error) = {
        let state = shared.lock();
        (state.gauges(), state.last_error.clone())
    };
    let waited = started.elapsed();
    shared
        .observe
        .timed_out(waited, &state, last_error.as_deref());
    PoolError::Timeout(Box::new(TimeoutError {
        waited,
        state,
        last_error,
    }))
}

/// Turns capacity into a connection that is fit to hand out: closes expired ones, health-checks stale
/// ones, and opens a new one where there is none. The slot is held throughout; dropping the future at any
/// await releases it.
async fn finish<'a, M: Manager>(
    shared: &'a Arc<Shared<M>>,
    mut slot: Slot<'a, M>,
    timed: bool,
) -> Checkout<M> {
    loop {
        slot = match slot {
            Slot::Ready(mut guard) => {
                let now = Instant::now();
                let conn = guard.conn.as_mut().expect("a guard holds its connection");
                shared.take_in_hand(conn, now);
                let reason = match shared.expired(conn, now) {
                    Some(reason) => reason,
                    None if !shared.needs_validation(conn, now)
                        || shared.validate(&mut conn.raw, timed).await =>
                    {
                        shared.lend(conn, now);
                        return Ok(guard);
                    }
                    None => CloseReason::HealthCheck,
                };
                replace(shared, guard, reason, now)?
            }
            Slot::Create(permit) => {
                let raw = shared.open().await?;
                return permit
                    .complete(raw, Instant::now())
                    .ok_or(PoolError::Closed);
            }
        };
    }
}

/// Closes the guard's connection for `reason` and fills the same slot with another idle connection, or
/// with the right to open one. A connection closed for its age reaps the pool first (see
/// `Shared::reap_all`).
fn replace<'a, M: Manager>(
    shared: &'a Arc<Shared<M>>,
    mut guard: PooledConnection<M>,
    reason: CloseReason,
    now: Instant,
) -> Result<Slot<'a, M>, PoolError<M::Error>> {
    let old = guard.conn.take().expect("a guard holds its connection");
    let mut effects = Effects::default();
    effects.close.push((old.raw, reason));
    let mut state = shared.lock();
    if matches!(reason, CloseReason::MaxLifetime | CloseReason::IdleTimeout) {
        shared.reap_all(&mut state, now, &mut effects);
    }
    let grant = state.replace(shared.config.reuse_order, &mut effects);
    // On a closed pool the slot was released: that may have been the last one `shutdown` waits for.
    let drained = state.closed && state.in_use + state.connecting == 0;
    drop(state);
    shared.apply_released(effects, drained);
    match grant {
        None => Err(PoolError::Closed),
        Some(Grant::Conn(conn)) => {
            guard.conn = Some(conn);
            Ok(Slot::Ready(guard))
        }
        Some(grant @ Grant::Create) => Ok(Slot::from_grant(shared, grant)),
    }
}

/// The last step of every checkout: the checkout hook, the leak-detection lease, and the statistics.
fn hand_over<M: Manager>(
    shared: &Shared<M>,
    mut guard: PooledConnection<M>,
    waited: Duration,
    caller: &'static Location<'static>,
    span: &Span,
) -> Checkout<M> {
    if shared.hooks.on_checkout.is_some() {
        if let Err(error) = hooks::run(&shared.hooks.on_checkout, &mut *guard) {
            let conn = guard.conn.take().expect("a guard holds its connection");
            shared.close(conn.raw, CloseReason::Broken);
            shared.release(false, None);
            return Err(PoolError::Hook(error));
        }
    }
    if shared.config.leak_detection_threshold.is_some() {
        let lease = Lease {
            since: Instant::now(),
            caller,
            reported: false,
        };
        guard.lease = Some(shared.lock().add_lease(lease));
    }
    shared.counters.checkout(waited);
    shared.observe.checked_out(span, waited);
    guard.handed_out = true;
    Ok(guard)
}

impl<M: Manager> Shared<M> {
    /// The health check in its span, under `health_check_timeout` when a timer is available. Whether it
    /// passed; a failure is counted, reported, and remembered for timeout reports.
    async fn validate(&self, raw: &mut M::Connection, timed: bool) -> bool {
        let validate = async {
            let check = async { self.manager.validate(raw).await.map_err(|e| e.to_string()) };
            let checked = match (&self.runtime, timed) {
                (Some(runtime), true) => {
                    let limit = self.config.health_check_timeout;
                    let expiry = async move {
                        runtime.sleep(limit).await;
                        Err(format!("health check timed out after {limit:?}"))
                    };
                    future::or(check, expiry).await
                }
                _ => check.await,
            };
            self.counters.health_check(checked.is_ok());
            self.observe
                .health_checked(checked.as_ref().err().map(String::as_str));
            if let Err(error) = &checked {
                self.record_error(error);
            }
            checked.is_ok()
        };
        self.observe.validate_span().instrument(validate).await
    }
}
