//! The schema, run on a real libSQL database the way its documentation says: every statement is valid,
//! the indexes exist with the right columns and order, `completed` follows `end_time` and `outcome`,
//! and migrating is idempotent, also from several connections at once.
#![cfg(feature = "libsql")]

use std::path::PathBuf;
use std::time::Duration;

use futures_lite::future::block_on;
use libsql::{params, Builder, Connection};
use memory_storage_turso::libsql::OwnedConnection;
use memory_storage_turso::storage::schema::{
    millis_to_timestamp, pending_migrations, timestamp_to_millis, MIGRATIONS, READ_USER_VERSION,
    SCHEMA_VERSION,
};

async fn user_version(conn: &Connection) -> u32 {
    let mut rows = conn.query(READ_USER_VERSION, ()).await.unwrap();
    let row = rows
        .next()
        .await
        .unwrap()
        .expect("PRAGMA user_version returns a row");
    u32::try_from(row.get::<i64>(0).unwrap()).unwrap()
}

/// The procedure of the schema module's documentation.
async fn migrate(conn: &Connection) -> Result<usize, libsql::Error> {
    conn.execute("BEGIN IMMEDIATE", ()).await?;
    let pending = pending_migrations(user_version(conn).await);
    for migration in pending {
        for statement in migration.statements {
            conn.execute(statement, ()).await?;
        }
        conn.execute(migration.set_user_version, ()).await?;
    }
    conn.execute("COMMIT", ()).await?;
    Ok(pending.len())
}

async fn strings(
    conn: &Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
) -> Vec<String> {
    let mut rows = conn.query(sql, params).await.unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        out.push(row.get::<String>(0).unwrap());
    }
    out
}

fn memory_connection() -> OwnedConnection {
    block_on(async {
        let db = Builder::new_local(":memory:").build().await.unwrap();
        OwnedConnection::local(db.connect().unwrap()).unwrap()
    })
}

#[test]
fn migrations_create_the_tables_and_indexes_once() {
    let conn = memory_connection();
    block_on(async {
        assert_eq!(user_version(&conn).await, 0);
        assert_eq!(migrate(&conn).await.unwrap(), MIGRATIONS.len());
        assert_eq!(user_version(&conn).await, SCHEMA_VERSION);
        assert_eq!(
            migrate(&conn).await.unwrap(),
            0,
            "a second run has nothing to do"
        );

        let tables = strings(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
            (),
        )
        .await;
        assert_eq!(tables, ["episodes", "heuristics", "patterns"]);

        // (index, [(column, descending)])
        let expected: [(&str, &[(&str, i64)]); 5] = [
            ("idx_episodes_task_type", &[("task_type", 0)]),
            ("idx_episodes_start_time", &[("start_time", 1)]),
            ("idx_episodes_domain", &[("domain", 0)]),
            (
                "idx_patterns_context",
                &[("context_domain", 0), ("context_language", 0)],
            ),
            ("idx_heuristics_confidence", &[("confidence", 1)]),
        ];
        for (index, columns) in expected {
            let mut rows = conn
                .query(
                    "SELECT name, desc FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
                    params![index],
                )
                .await
                .unwrap();
            let mut found = Vec::new();
            while let Some(row) = rows.next().await.unwrap() {
                found.push((row.get::<String>(0).unwrap(), row.get::<i64>(1).unwrap()));
            }
            let expected: Vec<(String, i64)> =
                columns.iter().map(|(c, d)| (c.to_string(), *d)).collect();
            assert_eq!(found, expected, "{index}");
        }
    });
}

#[test]
fn completed_follows_end_time_and_outcome_and_times_keep_milliseconds() {
    let conn = memory_connection();
    block_on(async {
        migrate(&conn).await.unwrap();
        let start = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let insert = "INSERT INTO episodes (episode_id, task_type, task_description, context, domain, \
                      language, start_time, end_time, steps, outcome, reward, reflection, patterns, \
                      metadata) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7, ?8, ?9, NULL, NULL, ?10, \
                      ?11)";
        let millis = timestamp_to_millis(&start);
        for (id, end, outcome) in [
            ("open", None, None),
            ("ended-without-outcome", Some(millis + 5), None),
            ("done", Some(millis + 5), Some("{\"type\":\"timeout\"}")),
        ] {
            conn.execute(
                insert,
                params![
                    id,
                    "testing",
                    "'; DROP TABLE episodes; --",
                    "{}",
                    "general",
                    millis,
                    end,
                    "[]",
                    outcome,
                    "[]",
                    "{}"
                ],
            )
            .await
            .unwrap();
        }
        let completed = strings(
            &conn,
            "SELECT episode_id FROM episodes WHERE completed = ?1 ORDER BY episode_id",
            params![1],
        )
        .await;
        assert_eq!(completed, ["done"]);

        let mut rows = conn
            .query(
                "SELECT start_time, task_description FROM episodes WHERE episode_id = ?1",
                params!["done"],
            )
            .await
            .unwrap();
        let row = rows.next().await.unwrap().unwrap();
        assert_eq!(millis_to_timestamp(row.get::<i64>(0).unwrap()), Some(start));
        assert_eq!(row.get::<String>(1).unwrap(), "'; DROP TABLE episodes; --");

        let write_completed = conn.execute("UPDATE episodes SET completed = 0", ()).await;
        assert!(
            write_completed.is_err(),
            "a generated column cannot be written"
        );
    });
}

#[test]
fn migrating_from_several_connections_at_once_is_safe() {
    let path = temp_db_path();
    let database = block_on(Builder::new_local(&path).build()).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let conn = OwnedConnection::local(database.connect().unwrap()).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                scope.spawn(move || block_on(migrate(&conn)).unwrap())
            })
            .collect();
        let applied: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(applied, MIGRATIONS.len(), "exactly one connection migrated");
    });
    let conn = OwnedConnection::local(database.connect().unwrap()).unwrap();
    assert_eq!(block_on(user_version(&conn)), SCHEMA_VERSION);
    drop((conn, database));
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn temp_db_path() -> PathBuf {
    let unique = format!(
        "memory-storage-turso-schema-{}-{}.db",
        std::process::id(),
        uuid::Uuid::new_v4()
    );
    std::env::temp_dir().join(unique)
}
