//! Which runtime adapter a storage uses when none is named: [`DefaultRuntime`].

use crate::rt::{Blocking, Runtime};

use super::error::StorageError;

/// The runtime adapter of a [`TursoStorage`](super::TursoStorage) when none is named: here
/// [`Tokio`](crate::rt::Tokio) (feature `tokio`), so the constructors must run inside a tokio runtime.
///
/// It is `Tokio` with feature `tokio`, else `Smol` with feature `smol`, else `Blocking`. For another
/// choice, name the adapter with [`TursoStorage::builder`](super::TursoStorage::builder)`(..).runtime(..)`.
#[cfg(feature = "tokio")]
pub type DefaultRuntime = crate::rt::Tokio;

/// The runtime adapter of a [`TursoStorage`](super::TursoStorage) when none is named: here
/// [`Smol`](crate::rt::Smol) (feature `smol`, not `tokio`), which also serves async-std.
///
/// It is `Tokio` with feature `tokio`, else `Smol` with feature `smol`, else `Blocking`. For another
/// choice, name the adapter with [`TursoStorage::builder`](super::TursoStorage::builder)`(..).runtime(..)`.
#[cfg(all(feature = "smol", not(feature = "tokio")))]
pub type DefaultRuntime = crate::rt::Smol;

/// The runtime adapter of a [`TursoStorage`](super::TursoStorage) when none is named: here
/// [`Blocking`] (neither `tokio` nor `smol` is enabled), for code that drives the storage's futures
/// with `futures_lite::future::block_on`.
///
/// It is `Tokio` with feature `tokio`, else `Smol` with feature `smol`, else `Blocking`. For another
/// choice, name the adapter with [`TursoStorage::builder`](super::TursoStorage::builder)`(..).runtime(..)`.
#[cfg(not(any(feature = "tokio", feature = "smol")))]
pub type DefaultRuntime = Blocking;

/// The [`DefaultRuntime`] for the calling context.
pub(crate) fn default_runtime() -> Result<DefaultRuntime, StorageError> {
    #[cfg(feature = "tokio")]
    {
        crate::rt::Tokio::try_current().ok_or_else(|| StorageError::Config {
            setting: "runtime",
            problem: String::from(
                "the default runtime is tokio (feature `tokio`), and this was called outside a tokio \
                 runtime: call it inside one, or name the adapter with \
                 TursoStorage::builder(url, token).runtime(..)",
            ),
        })
    }
    #[cfg(not(feature = "tokio"))]
    {
        Ok(DefaultRuntime::default())
    }
}

/// Refuses an adapter other than [`Tokio`](crate::rt::Tokio) for a remote database or an embedded
/// replica, whose calls (a replica's writes) go through libsql's HTTP client and need tokio's
/// reactor.
#[cfg(feature = "remote")]
pub(crate) fn tokio_for_remote<R: Runtime>() -> Result<(), StorageError> {
    if std::any::TypeId::of::<R>() == std::any::TypeId::of::<crate::rt::Tokio>() {
        return Ok(());
    }
    Err(StorageError::Config {
        setting: "runtime",
        problem: String::from(
            "a remote database (or an embedded replica's primary) is reached through libsql's HTTP \
             client, which runs on tokio: use the Tokio adapter (the default with feature `tokio`), \
             and call the storage inside that tokio runtime, with its IO and time drivers \
             (`enable_all()`)",
        ),
    })
}

/// Whether `R` is the [`Blocking`] adapter. Its timer parks the polling thread, so a storage on it
/// checks connections out with the pools' blocking calls (parked on a deadline), never with their
/// async ones (whose timeout would park the thread for the whole timeout).
pub(crate) fn is_blocking<R: Runtime>() -> bool {
    std::any::TypeId::of::<R>() == std::any::TypeId::of::<Blocking>()
}
