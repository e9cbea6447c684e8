//! A test manager with counters and fault injection, shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use memory_storage_turso::pool::Manager;

/// What the manager saw, shared with the connections it made.
#[derive(Debug, Default)]
pub struct Seen {
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub closes: AtomicU64,
    pub validations: AtomicU64,
    pub resets: AtomicU64,
    /// Ids of connections currently handed to a holder (checked by `TestConn::enter`).
    pub held: Mutex<HashSet<u64>>,
}

/// Fault switches, flipped by tests.
#[derive(Debug, Default)]
pub struct Faults {
    /// Fail this many upcoming connects.
    pub fail_connects: AtomicU32,
    /// Fail every validation while set.
    pub fail_validation: AtomicBool,
    /// Fail every reset while set.
    pub fail_reset: AtomicBool,
    /// Permille of connects that fail at random (chaos).
    pub connect_failure_permille: AtomicU32,
    /// Permille of validations that fail at random (chaos).
    pub validation_failure_permille: AtomicU32,
    /// Upper bound, in microseconds, of random delays in connect and validate (chaos).
    pub max_delay_micros: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct TestManager {
    pub seen: Arc<Seen>,
    pub faults: Arc<Faults>,
    next_id: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
#[error("injected failure: {0}")]
pub struct Injected(pub &'static str);

/// A connection that knows its id, counts its own close, and can be marked dirty or broken.
#[derive(Debug)]
pub struct TestConn {
    pub id: u64,
    pub dirty: bool,
    pub broken: bool,
    pub uses: u64,
    seen: Arc<Seen>,
}

impl TestConn {
    /// Marks the connection held; panics if another holder has it (invariant: no double hand-out).
    pub fn enter(&mut self) {
        assert!(
            self.seen.held.lock().unwrap().insert(self.id),
            "connection {} handed to two holders",
            self.id
        );
        self.uses += 1;
    }

    pub fn leave(&mut self) {
        assert!(self.seen.held.lock().unwrap().remove(&self.id));
    }
}

impl Drop for TestConn {
    fn drop(&mut self) {
        self.seen.held.lock().unwrap().remove(&self.id);
        self.seen.closes.fetch_add(1, SeqCst);
    }
}

fn roll(permille: u32) -> bool {
    permille > 0 && fastrand::u32(0..1000) < permille
}

async fn random_delay(max_micros: u64) {
    if max_micros > 0 {
        let micros = fastrand::u64(0..=max_micros);
        if micros > max_micros / 2 {
            std::thread::sleep(std::time::Duration::from_micros(micros));
        } else {
            futures_lite::future::yield_now().await;
        }
    }
}

impl TestManager {
    pub fn live(&self) -> u64 {
        self.seen.connects.load(SeqCst) - self.seen.closes.load(SeqCst)
    }
}

impl Manager for TestManager {
    type Connection = TestConn;
    type Error = Injected;

    async fn connect(&self) -> Result<TestConn, Injected> {
        random_delay(self.faults.max_delay_micros.load(SeqCst)).await;
        let planned = self
            .faults
            .fail_connects
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if planned || roll(self.faults.connect_failure_permille.load(SeqCst)) {
            self.seen.connect_failures.fetch_add(1, SeqCst);
            return Err(Injected("connect"));
        }
        self.seen.connects.fetch_add(1, SeqCst);
        Ok(TestConn {
            id: self.next_id.fetch_add(1, SeqCst),
            dirty: false,
            broken: false,
            uses: 0,
            seen: self.seen.clone(),
        })
    }

    async fn validate(&self, conn: &mut TestConn) -> Result<(), Injected> {
        self.seen.validations.fetch_add(1, SeqCst);
        random_delay(self.faults.max_delay_micros.load(SeqCst)).await;
        if conn.broken
            || self.faults.fail_validation.load(SeqCst)
            || roll(self.faults.validation_failure_permille.load(SeqCst))
        {
            return Err(Injected("validate"));
        }
        Ok(())
    }

    fn reset(&self, conn: &mut TestConn) -> Result<(), Injected> {
        self.seen.resets.fetch_add(1, SeqCst);
        if self.faults.fail_reset.load(SeqCst) {
            return Err(Injected("reset"));
        }
        conn.dirty = false;
        Ok(())
    }

    fn is_broken(&self, conn: &mut TestConn) -> bool {
        conn.broken
    }
}

/// Counts of a pool that must always agree.
pub fn assert_consistent<M: Manager>(pool: &memory_storage_turso::pool::Pool<M>) {
    let s = pool.statistics();
    assert_eq!(
        s.size,
        s.idle_connections + s.active_connections + s.connecting,
        "{s:?}"
    );
    assert!(s.size <= s.max_size || s.active_connections > 0, "{s:?}");
    if s.waiting > 0 {
        assert_eq!(
            s.idle_connections, 0,
            "idle connections while callers wait: {s:?}"
        );
    }
}
