//! Running the schema's migrations: [`TursoStorage::initialize_schema`].

use crate::libsql::LibsqlConnection;
use crate::rt::Runtime;

use super::error::Result;
use super::schema::{pending_migrations, Migration, READ_USER_VERSION};
use super::transaction;
use super::turso::TursoStorage;

impl<R: Runtime> TursoStorage<R> {
    /// Creates or upgrades the tables and indexes to [`SCHEMA_VERSION`](super::schema::SCHEMA_VERSION).
    ///
    /// Idempotent, and safe from many storages and processes at once: in one `BEGIN IMMEDIATE`
    /// transaction it reads `PRAGMA user_version`, applies the pending [`MIGRATIONS`](super::schema::MIGRATIONS)
    /// and records the new version, so one caller migrates and the others, queued on the write lock,
    /// then find nothing to do. A database of a newer version is left as it is.
    ///
    /// # Errors
    /// A database error; nothing is changed then.
    pub async fn initialize_schema(&self) -> Result<()> {
        let mut conn = self.write_connection().await?;
        transaction::begin(&mut conn).await?;
        let applied = apply_pending(&mut conn).await;
        let applied = transaction::end(&mut conn, applied).await?;
        if !applied.is_empty() {
            // No cached statement may outlive the schema it was prepared for.
            conn.clear_statement_cache();
        }
        Ok(())
    }
}

/// Applies the migrations the database still needs, inside the caller's transaction, and returns
/// them.
async fn apply_pending(conn: &mut LibsqlConnection) -> Result<&'static [Migration]> {
    let version = conn
        .query_row_cached(READ_USER_VERSION, (), |row| row.get::<u32>(0))
        .await?
        .unwrap_or(0);
    let pending = pending_migrations(version);
    for migration in pending {
        for statement in migration.statements {
            conn.execute(statement, ()).await?;
        }
        conn.execute(migration.set_user_version, ()).await?;
    }
    Ok(pending)
}
