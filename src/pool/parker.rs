//! [`Parker`]: how a blocked thread waits for its turn, spinning briefly before it sleeps.
//!
//! A hand-off to a sleeping thread costs a wake-up: a system call, and on an idle core (or a virtual
//! one) tens of microseconds before the thread runs. When connections are held briefly and threads
//! outnumber them, as on the libSQL write lane, that wake-up is most of the cost of each turn. So the
//! pool wakes the thread that has just become first in line *early*, as it grants the connection to
//! the one before it (a nudge; a thread that queues first in line nudges itself). The nudged thread
//! spins on its flag for up to [`SPIN`], yielding the core between short bursts so that a holder
//! queued behind it on the same core runs first, and if the connection comes back meanwhile it takes
//! it without sleeping; if not, it parks as before and the grant wakes it.
//!
//! Yielding has a cost when the machine is busier than its cores: a yield can hand the core to
//! another process for a whole time slice, and a spinner that is runnable but not running when its
//! grant comes waits for that slice, where a parked thread would have been woken at once. Measured
//! with two CPU-bound processes beside 8 threads taking turns: 250 to 570 us per turn with spinning,
//! against 10 to 50 us parked. So a spinner whose yield kept it off the core for more than
//! [`DESCHEDULED`] reports it, and the pool stops nudging for a while ([`SpinBackoff`]).
//!
//! Order is unchanged (grants still go strictly to the oldest waiter): only the wake-up latency of the
//! next in line is hidden behind the current holder's work. This is the "first waiter spins while the
//! owner runs" rule of adaptive mutexes, bounded: a long hold costs each waiter at most one nudge and
//! [`SPIN`] of spinning. Measured on 2 cores, 8 threads taking turns on the write lane for one
//! `INSERT` each: 50 us per turn with plain parking, 21 us with the nudge (one thread alone: 15 us).
//! A waiter spins only while fewer connections are out than there are cores
//! ([`worth_spinning`]), so never on a single core, nor under loom (which models the parking, not the
//! time).
//!
//! [`SpinGate`] applies the same spin and the same backoff to threads that wait for news from a
//! running thread rather than for a connection: the followers of the write lane's group commit,
//! waiting for their leader's answer.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[cfg(not(loom))]
use std::time::Instant;

use crate::sync::Thread;

/// How long a nudged thread spins (and yields) for its grant before it parks.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const SPIN: Duration = Duration::from_micros(200);
/// A yield that kept the spinner off its core longer than this means other threads compete for it.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const DESCHEDULED: Duration = Duration::from_micros(500);
/// The fewest and the most hand-offs without nudges after a spinner was descheduled.
const MIN_PAUSE: u32 = 64;
const MAX_PAUSE: u32 = 16_384;
/// Checks of the flag between two yields.
#[cfg(not(loom))]
const SPINS_PER_YIELD: usize = 4;

/// A waiting thread's handle. Its flags say there is news for it (a grant, a close, a timeout), and
/// that it was nudged (woken early to spin).
pub(crate) struct Parker {
    thread: Thread,
    news: AtomicBool,
    nudged: AtomicBool,
}

impl Parker {
    /// The calling thread's parker (one per thread, reused across waits).
    pub(crate) fn current() -> Arc<Parker> {
        #[cfg(not(loom))]
        {
            thread_local! {
                static PARKER: Arc<Parker> = Arc::new(Parker::new());
            }
            // During thread-local destruction (a checkout from another thread-local's destructor)
            // the cached parker may be gone: a fresh one serves as well.
            PARKER
                .try_with(Arc::clone)
                .unwrap_or_else(|_| Arc::new(Parker::new()))
        }
        #[cfg(loom)]
        Arc::new(Parker::new())
    }

    fn new() -> Self {
        Self {
            thread: crate::sync::current_thread(),
            news: AtomicBool::new(false),
            nudged: AtomicBool::new(false),
        }
    }

    /// Forgets earlier waits; called under the pool's lock as the thread registers for a new one, so
    /// that every notification or nudge meant for this wait comes after it.
    pub(crate) fn reset(&self) {
        self.news.store(false, Ordering::Relaxed);
        self.nudged.store(false, Ordering::Relaxed);
    }

    /// Tells the thread that its ticket changed, and wakes it. The wake-up comes first, so that a
    /// thread that sees the news while spinning also finds the wake-up to consume (see
    /// [`spin`](Self::spin)).
    pub(crate) fn notify(&self) {
        self.thread.unpark();
        self.news.store(true, Ordering::Release);
    }

    /// Wakes the thread early, so that it spins for the grant that is coming.
    pub(crate) fn nudge(&self) {
        #[cfg(not(loom))]
        {
            self.nudged.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }

    /// Whether the thread was nudged since it last asked (and forgets it).
    pub(crate) fn take_nudge(&self) -> bool {
        self.nudged.swap(false, Ordering::Acquire)
    }

    /// Forgets the news seen so far; called before the thread looks at its ticket.
    pub(crate) fn clear(&self) {
        self.news.store(false, Ordering::Relaxed);
    }

    /// Whether there is news.
    pub(crate) fn has_news(&self) -> bool {
        self.news.load(Ordering::Acquire)
    }

    /// Spins until there is news or [`SPIN`] has passed. Call on the parker's thread after a nudge.
    /// It yields the core between short bursts of spinning, so that a holder queued behind it on the
    /// same core runs first. News seen while spinning comes with a wake-up that found the thread
    /// awake; it is consumed here, so that the thread's next park does not return at once for nothing.
    pub(crate) fn spin(&self) -> Spun {
        let spun = spin_until(|| self.has_news());
        if spun == Spun::News {
            #[cfg(not(loom))]
            std::thread::park_timeout(Duration::ZERO);
        }
        spun
    }
}

/// Spins until `ready` says so or [`SPIN`] has passed, yielding the core between short bursts.
/// Under loom, does not spin.
pub(crate) fn spin_until(mut ready: impl FnMut() -> bool) -> Spun {
    #[cfg(not(loom))]
    {
        let start = Instant::now();
        let mut last = start;
        loop {
            for _ in 0..SPINS_PER_YIELD {
                if ready() {
                    return Spun::News;
                }
                std::hint::spin_loop();
            }
            std::thread::yield_now();
            let now = Instant::now();
            if now - last >= DESCHEDULED {
                return Spun::Descheduled;
            }
            if now - start >= SPIN {
                return Spun::TimedOut;
            }
            last = now;
        }
    }
    #[cfg(loom)]
    {
        let _ = &mut ready;
        Spun::TimedOut
    }
}

/// How a spin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(loom, allow(dead_code))]
pub(crate) enum Spun {
    /// The news came.
    News,
    /// [`SPIN`] passed without news.
    TimedOut,
    /// A yield gave the core away for longer than [`DESCHEDULED`]: other threads want the cores, and a
    /// spinner that is runnable but not running when its grant comes waits a whole time slice for
    /// it, where a parked thread is woken at once. The pool stops nudging for a while.
    Descheduled,
}

/// How many hand-offs the pool goes without nudges after a spinner was descheduled: 4 times more after
/// each descheduled spin, half as many after each spin that got its news, between 64 and 16,384. A busy
/// machine thus soon stops spinning, and a passing burst (a checkpoint on another thread) pauses it
/// only briefly. Races between updates only blur the heuristic.
pub(crate) struct SpinBackoff(AtomicU32);

impl SpinBackoff {
    pub(crate) fn new() -> Self {
        Self(AtomicU32::new(MIN_PAUSE))
    }

    /// A spin got its news.
    fn succeeded(&self) {
        let pause = self.0.load(Ordering::Relaxed);
        if pause > MIN_PAUSE {
            self.0.store((pause / 2).max(MIN_PAUSE), Ordering::Relaxed);
        }
    }

    /// Learns from how a spin ended: returns the pause to start when the spinner was descheduled.
    pub(crate) fn learn(&self, spun: Spun) -> Option<u32> {
        match spun {
            Spun::News => {
                self.succeeded();
                None
            }
            Spun::Descheduled => Some(self.failed()),
            Spun::TimedOut => None,
        }
    }

    /// A spinner was descheduled; returns the hand-offs to go without nudges.
    fn failed(&self) -> u32 {
        let pause = self.0.load(Ordering::Relaxed);
        self.0
            .store(pause.saturating_mul(4).min(MAX_PAUSE), Ordering::Relaxed);
        pause
    }
}

/// Lets threads that wait for news from a running thread (the followers of a group commit, waiting
/// for their leader's answer) spin instead of sleeping, and stops them for a while when spinning
/// stops paying: after a spinner was descheduled, the next [`SpinBackoff`] waits park at once.
#[cfg(feature = "libsql")]
pub(crate) struct SpinGate {
    backoff: SpinBackoff,
    /// Waits left that park without spinning.
    pause: AtomicU32,
}

#[cfg(feature = "libsql")]
impl SpinGate {
    pub(crate) fn new() -> Self {
        Self {
            backoff: SpinBackoff::new(),
            pause: AtomicU32::new(0),
        }
    }

    /// Spins until `ready` says so (true) or spinning stops paying (false). On a single core, or
    /// during a pause, returns false at once.
    pub(crate) fn spin_until(&self, ready: impl FnMut() -> bool) -> bool {
        if cores() < 2 {
            return false;
        }
        let pause = self.pause.load(Ordering::Relaxed);
        if pause > 0 {
            self.pause.store(pause - 1, Ordering::Relaxed);
            return false;
        }
        let spun = spin_until(ready);
        // Spinners descheduled by the same burst of load count once.
        let counted = !(spun == Spun::Descheduled && self.pause.load(Ordering::Relaxed) > 0);
        if counted {
            if let Some(pause) = self.backoff.learn(spun) {
                self.pause.store(pause, Ordering::Relaxed);
            }
        }
        spun == Spun::News
    }
}

/// The number of cores this process may use.
#[cfg_attr(loom, allow(dead_code))]
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Whether a waiter should spin while `holders` connections are out: only if every holder can be
/// running on a core of its own with one core left for the spinner. With more holders than that, some
/// holder is waiting for a core, and a spinner would take it (64 threads sharing 8 connections on 2
/// cores ran twice as slow with spinning). This stands in for the adaptive mutex's "spin while the
/// owner is on a CPU", which a pool cannot see.
pub(crate) fn worth_spinning(holders: usize) -> bool {
    #[cfg(loom)]
    {
        let _ = holders;
        false
    }
    #[cfg(not(loom))]
    {
        holders < cores()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_fourfold_when_spinners_are_descheduled_and_halves_when_they_succeed() {
        let backoff = SpinBackoff::new();
        let pauses: Vec<u32> = (0..7).map(|_| backoff.failed()).collect();
        assert_eq!(pauses, [64, 256, 1_024, 4_096, 16_384, 16_384, 16_384]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), 8_192);
        for _ in 0..20 {
            backoff.succeeded();
        }
        assert_eq!(backoff.failed(), MIN_PAUSE);
    }

    #[cfg(feature = "libsql")]
    #[test]
    fn a_gate_spins_for_news_and_parks_at_once_while_paused() {
        let spins = cores() >= 2;
        let gate = SpinGate::new();
        assert_eq!(gate.spin_until(|| true), spins);
        gate.pause.store(2, Ordering::Relaxed);
        let mut asked = 0;
        for _ in 0..2 {
            assert!(!gate.spin_until(|| {
                asked += 1;
                true
            }));
        }
        assert_eq!(asked, 0, "a paused gate does not spin");
        assert_eq!(gate.spin_until(|| true), spins, "the pause is over");
    }

    #[test]
    fn a_spin_ends_with_the_news_that_came_before_it() {
        let parker = Parker::new();
        parker.notify();
        assert_eq!(parker.spin(), Spun::News);
        parker.reset();
        assert!(!parker.has_news() && !parker.take_nudge());
    }
}
