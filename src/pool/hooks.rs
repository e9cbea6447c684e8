//! Optional user hooks, run after connect, on checkout and on return. A panic in a hook is caught and
//! treated as an error: it never unwinds through the pool.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::error::HookError;

/// A hook: inspects or prepares a connection, and may refuse it with an error.
pub type Hook<C> = Arc<dyn Fn(&mut C) -> Result<(), HookError> + Send + Sync>;

pub(crate) struct Hooks<C> {
    pub(crate) after_connect: Option<Hook<C>>,
    pub(crate) on_checkout: Option<Hook<C>>,
    pub(crate) on_return: Option<Hook<C>>,
}

impl<C> Default for Hooks<C> {
    fn default() -> Self {
        Self {
            after_connect: None,
            on_checkout: None,
            on_return: None,
        }
    }
}

/// Runs `hook` (if any) on `conn`, turning a panic into an error.
#[inline]
pub(crate) fn run<C>(hook: &Option<Hook<C>>, conn: &mut C) -> Result<(), HookError> {
    match hook {
        None => Ok(()),
        Some(hook) => catch_unwind(AssertUnwindSafe(|| hook(conn)))
            .unwrap_or_else(|panic| Err(panic_message(&*panic).into())),
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload");
    format!("panicked: {text}")
}
