//! [`PooledConnection`], the guard that holds a slot for its whole life.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::manager::Manager;
use super::shared::Shared;
use super::state::Conn;

/// A checked-out connection. It derefs to the connection, and its slot stays taken until it is dropped.
///
/// Dropping it returns the connection: the manager's `is_broken` and `reset` run first (also when the
/// holder is panicking), and a connection that fails them is closed, never reused dirty.
/// [`detach`](Self::detach) takes the connection out of the pool for good.
///
/// ```
/// # use memory_storage_turso::pool::{Manager, Pool, PoolConfig};
/// # struct Unit;
/// # impl Manager for Unit {
/// #     type Connection = Vec<u8>;
/// #     type Error = std::convert::Infallible;
/// #     async fn connect(&self) -> Result<Vec<u8>, Self::Error> { Ok(Vec::new()) }
/// # }
/// let pool = Pool::builder(Unit).build().unwrap();
/// let mut conn = pool.get_blocking().unwrap();
/// conn.push(1); // DerefMut to the connection
/// assert_eq!(pool.statistics().active_connections, 1);
/// drop(conn);
/// assert_eq!(pool.statistics().idle_connections, 1);
/// ```
pub struct PooledConnection<M: Manager> {
    shared: Arc<Shared<M>>,
    /// `None` only while the pool swaps the connection during checkout, or after `detach`.
    pub(crate) conn: Option<Box<Conn<M::Connection>>>,
    /// The leak-detection record of this checkout.
    pub(crate) lease: Option<usize>,
    /// Whether the checkout finished (so the return hook runs): a guard dropped while the pool was still
    /// checking its connection returns it without the hook.
    pub(crate) handed_out: bool,
}

impl<M: Manager> PooledConnection<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>, conn: Box<Conn<M::Connection>>) -> Self {
        Self {
            shared,
            conn: Some(conn),
            lease: None,
            handed_out: false,
        }
    }

    /// Takes the connection out of the pool: its slot is freed at once and the pool forgets it.
    ///
    /// ```
    /// # use memory_storage_turso::pool::{Manager, Pool};
    /// # struct Unit;
    /// # impl Manager for Unit {
    /// #     type Connection = u8;
    /// #     type Error = std::convert::Infallible;
    /// #     async fn connect(&self) -> Result<u8, Self::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Unit).build().unwrap();
    /// let raw: u8 = pool.get_blocking().unwrap().detach();
    /// assert_eq!(raw, 7);
    /// assert_eq!(pool.statistics().size, 0);
    /// ```
    pub fn detach(mut self) -> M::Connection {
        let conn = self.conn.take().expect("a guard holds its connection");
        self.shared.closed_one();
        self.shared.release(false, self.lease.take());
        conn.raw
    }
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self
            .conn
            .as_ref()
            .expect("a guard holds its connection")
            .raw
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self
            .conn
            .as_mut()
            .expect("a guard holds its connection")
            .raw
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared
                .check_in(conn, self.lease.take(), self.handed_out);
        }
    }
}

impl<M: Manager> fmt::Debug for PooledConnection<M>
where
    M::Connection: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledConnection")
            .field("connection", &self.conn.as_ref().map(|c| &c.raw))
            .finish()
    }
}
