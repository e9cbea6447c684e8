//! [`TursoStorageBuilder`]: opens the database a URL names (or wraps a caller's `libsql::Database`)
//! and builds the pools of a [`TursoStorage`].

use std::fmt;
use std::sync::Arc;

use crate::libsql::{
    block_on, ConnectionSetup, DatabaseKind, LanedPool, LibsqlDatabase, LibsqlManager, LibsqlPool,
    OwnedConnection,
};
use crate::pool::{Pool, PoolConfig};
use crate::rt::Runtime;

use super::config::TursoConfig;
use super::connections::Connections;
use super::error::{Result, SecurityError, StorageError};
use super::runtime::{default_runtime, is_blocking, DefaultRuntime};
use super::turso::TursoStorage;
use super::url::DatabaseTarget;

/// Builds a [`TursoStorage`]: the database, the settings, and the runtime adapter.
///
/// ```
/// use memory_storage_turso::rt::Blocking;
/// use memory_storage_turso::storage::{TursoConfig, TursoStorage};
///
/// let storage = futures_lite::future::block_on(async {
///     let storage = TursoStorage::builder(":memory:", "")
///         .config(TursoConfig { max_retries: 5, ..TursoConfig::default() })
///         .runtime(Blocking)
///         .build()
///         .await?;
///     storage.initialize_schema().await?;
///     Ok::<_, memory_storage_turso::storage::StorageError>(storage)
/// })
/// .unwrap();
/// assert_eq!(storage.config().max_retries, 5);
/// ```
#[must_use]
pub struct TursoStorageBuilder<R: Runtime = DefaultRuntime> {
    source: Source,
    config: TursoConfig,
    pool_config: PoolConfig,
    setup: ConnectionSetup,
    runtime: Result<R>,
    name: Option<String>,
}

enum Source {
    Target(std::result::Result<DatabaseTarget, SecurityError>),
    Database(Box<libsql::Database>),
}

impl<R: Runtime> fmt::Debug for TursoStorageBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Target(Ok(target)) => target.to_string(),
            Source::Target(Err(_)) => String::from("(refused URL)"),
            Source::Database(_) => String::from("(caller's libsql::Database)"),
        };
        f.debug_struct("TursoStorageBuilder")
            .field("source", &source)
            .field("config", &self.config)
            .field("pool_config", &self.pool_config)
            .field("setup", &self.setup)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TursoStorageBuilder<DefaultRuntime> {
    /// A builder for the database at `url` (see [`DatabaseTarget::parse`] for the URLs and tokens
    /// accepted); `token` is used only for remote URLs.
    pub(crate) fn from_url(url: &str, token: &str) -> Self {
        Self::new(Source::Target(DatabaseTarget::parse(url, token)))
    }

    /// A builder over a `libsql::Database` opened by the caller (see
    /// [`TursoStorage::from_database`]).
    pub fn from_database(database: libsql::Database) -> Self {
        Self::new(Source::Database(Box::new(database)))
    }

    fn new(source: Source) -> Self {
        TursoStorageBuilder {
            source,
            config: TursoConfig::default(),
            pool_config: PoolConfig::default(),
            setup: ConnectionSetup::default(),
            runtime: default_runtime(),
            name: None,
        }
    }
}

impl<R: Runtime> TursoStorageBuilder<R> {
    /// The storage's settings (default: [`TursoConfig::default`]).
    pub fn config(mut self, config: TursoConfig) -> Self {
        self.config = config;
        self
    }

    /// The pools' settings (default: [`PoolConfig::default`]). For a local database the write lane
    /// has one connection and the read lane `max_connections - 1` (at least 1); a remote database has
    /// one pool of `max_connections`. With `enable_pooling: false`, both are cut to one connection.
    pub fn pool_config(mut self, pool_config: PoolConfig) -> Self {
        self.pool_config = pool_config;
        self
    }

    /// What every new local connection gets (default: busy timeout 5 s, `foreign_keys`,
    /// `synchronous=NORMAL` under WAL; see [`ConnectionSetup`]).
    pub fn connection_setup(mut self, setup: ConnectionSetup) -> Self {
        self.setup = setup;
        self
    }

    /// Names the storage's pools, the `pool` label of their metrics: `"{name}.write"` and
    /// `"{name}.read"` for a local database, `"{name}"` for a remote one. Without it they are
    /// `"write"`, `"read"` and `"default"`: give each storage of a process a name of its own, or their
    /// metrics add up under one label.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The runtime adapter (see [`rt`](crate::rt)): `Tokio` (feature `tokio`), `Smol` (feature
    /// `smol`), [`Blocking`](crate::rt::Blocking) for blocking code, or one of your own.
    pub fn runtime<R2: Runtime>(self, runtime: R2) -> TursoStorageBuilder<R2> {
        TursoStorageBuilder {
            source: self.source,
            config: self.config,
            pool_config: self.pool_config,
            setup: self.setup,
            runtime: Ok(runtime),
            name: self.name,
        }
    }

    /// Opens the database and builds the pools. Connections are opened on first use; call
    /// [`TursoStorage::initialize_schema`] before storing anything.
    ///
    /// # Errors
    /// [`StorageError::Security`] for a refused URL or token; [`StorageError::Config`] for bad
    /// settings, a remote URL without the `remote` feature, or no default runtime here; a database
    /// error if a local file cannot be opened.
    pub async fn build(self) -> Result<TursoStorage<R>> {
        let (source, plan) = self.plan()?;
        let connections = match source {
            Source::Target(target) => match target? {
                DatabaseTarget::Local(path) => plan.laned(LibsqlDatabase::open_file(path)?)?,
                DatabaseTarget::Memory => plan.laned(LibsqlDatabase::open_memory()?)?,
                DatabaseTarget::Remote { url, token } => {
                    plan.remote(&url, token.expose_secret()).await?
                }
            },
            Source::Database(database) => plan.wrap(*database)?,
        };
        Ok(TursoStorage::from_parts(
            connections,
            plan.runtime,
            plan.config,
        ))
    }

    /// [`build`](Self::build) for a [`Source::Database`], which needs no await.
    pub(crate) fn build_from_database(self) -> Result<TursoStorage<R>> {
        let (source, plan) = self.plan()?;
        let Source::Database(database) = source else {
            unreachable!("build_from_database is called on builders of a libsql::Database only")
        };
        let connections = plan.wrap(*database)?;
        Ok(TursoStorage::from_parts(
            connections,
            plan.runtime,
            plan.config,
        ))
    }

    fn plan(self) -> Result<(Source, Plan<R>)> {
        self.config.validate()?;
        self.pool_config
            .validate()
            .map_err(|error| StorageError::Config {
                setting: error.field(),
                problem: error.to_string(),
            })?;
        let plan = Plan {
            runtime: self.runtime?,
            config: self.config,
            pool_config: self.pool_config,
            setup: self.setup,
            name: self.name,
        };
        Ok((self.source, plan))
    }
}

/// Everything but the database: what the pools are built from.
struct Plan<R> {
    runtime: R,
    config: TursoConfig,
    pool_config: PoolConfig,
    setup: ConnectionSetup,
    name: Option<String>,
}

impl<R: Runtime> Plan<R> {
    /// Connections of a pool of one, when pooling is off.
    fn max_connections(&self) -> usize {
        if self.config.enable_pooling {
            self.pool_config.max_connections
        } else {
            1
        }
    }

    /// Write and read lanes over a local database.
    fn laned(&self, database: LibsqlDatabase) -> Result<Connections> {
        let readers = self.max_connections().saturating_sub(1).max(1);
        let mut builder = LanedPool::builder(database)
            .readers(readers)
            .setup(self.setup.clone())
            .config(self.pool_config.clone());
        if let Some(name) = &self.name {
            builder = builder.name(name);
        }
        if !is_blocking::<R>() {
            builder = builder.runtime(self.runtime.clone());
        }
        Ok(Connections::laned(builder.build()?, is_blocking::<R>()))
    }

    /// One pool over `database`, of `max_connections`.
    fn single(
        &self,
        database: LibsqlDatabase,
        max_connections: usize,
        local: bool,
    ) -> Result<Connections> {
        let mut config = self.pool_config.clone();
        config.max_connections = max_connections;
        config.min_idle = config.min_idle.min(max_connections);
        let manager = LibsqlManager::new(database).setup(self.setup.clone());
        let mut builder = Pool::builder(manager).config(config);
        if let Some(name) = &self.name {
            builder = builder.name(name);
        }
        if !is_blocking::<R>() {
            builder = builder.runtime(self.runtime.clone());
        }
        let pool: LibsqlPool = builder.build().map_err(crate::libsql::LibsqlError::from)?;
        Ok(Connections::single(pool, local, is_blocking::<R>()))
    }

    /// One pool over a remote database.
    #[cfg(feature = "remote")]
    async fn remote(&self, url: &str, token: &str) -> Result<Connections> {
        super::runtime::tokio_for_remote::<R>()?;
        let database = LibsqlDatabase::open_remote(url, token).await?;
        Ok(self
            .single(database, self.max_connections(), false)?
            .over_http())
    }

    #[cfg(not(feature = "remote"))]
    async fn remote(&self, url: &str, _token: &str) -> Result<Connections> {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StorageError::Config {
            setting: "url",
            problem: format!(
                "a {scheme}: URL names a remote database, which needs the `remote` feature of \
                 memory-storage-turso: enable it in Cargo.toml (features = [\"remote\"])"
            ),
        })
    }

    /// Pools over a `libsql::Database` opened by the caller. Its kind is not visible, so it is probed
    /// with local-only calls: a remote database (or an embedded replica) gets one pool; a private
    /// in-memory database, which exists once per connection, gets one connection that is never
    /// closed; a local file gets lanes (and the probe connection stays open beside them).
    fn wrap(&self, database: libsql::Database) -> Result<Connections> {
        // Guarded if it has a SQLite handle, an embedded replica's included (see `OwnedConnection`).
        let probe = OwnedConnection::new(database.connect()?)?;
        let database = LibsqlDatabase::from_libsql(Arc::new(database));
        if probe.probe_kind() != DatabaseKind::Unknown {
            // A remote database, or an embedded replica (whose writes go to its primary): both
            // through libsql's HTTP client.
            #[cfg(feature = "remote")]
            super::runtime::tokio_for_remote::<R>()?;
            let connections = self.single(database, self.max_connections(), false)?;
            return Ok(connections.over_http());
        }
        let main_file = block_on(main_file(&probe))?;
        if main_file.is_empty() {
            let private = Plan {
                pool_config: PoolConfig {
                    idle_timeout: None,
                    max_lifetime: None,
                    ..self.pool_config.clone()
                },
                runtime: self.runtime.clone(),
                config: self.config.clone(),
                setup: self.setup.clone(),
                name: self.name.clone(),
            };
            return private.single(database, 1, true);
        }
        Ok(self.laned(database)?.with_anchor(probe))
    }
}

/// The file of the `main` database of a local connection; empty for a private in-memory database.
async fn main_file(conn: &libsql::Connection) -> Result<String> {
    let mut rows = conn
        .query(
            "SELECT file FROM pragma_database_list WHERE name = 'main'",
            (),
        )
        .await?;
    let file = match rows.next().await? {
        Some(row) => row.get::<Option<String>>(0)?,
        None => None,
    };
    Ok(file.unwrap_or_default())
}
