//! The per-connection statement cache: rebinding, cursors, schema changes, parameter checks, LRU.
#![cfg(feature = "libsql")]

use memory_storage_turso::libsql::{
    block_on, LibsqlDatabase, LibsqlError, LibsqlManager, LibsqlPool, LibsqlPooledConnection,
    StatementProblem,
};
use memory_storage_turso::pool::{Pool, PoolConfig};

fn pool_with_cache(capacity: usize) -> (tempfile::TempDir, LibsqlPool) {
    let dir = tempfile::tempdir().unwrap();
    let database = LibsqlDatabase::open_file(dir.path().join("cache.db")).unwrap();
    let config = PoolConfig::builder().max_connections(2).build().unwrap();
    let pool = Pool::builder(LibsqlManager::new(database).statement_cache_capacity(capacity))
        .config(config)
        .build()
        .unwrap();
    (dir, pool)
}

fn numbers_table(conn: &mut LibsqlPooledConnection, up_to: i64) {
    block_on(conn.execute_schema(&format!(
        "CREATE TABLE numbers(n INTEGER PRIMARY KEY, label TEXT);
         WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < {up_to})
         INSERT INTO numbers SELECT n, 'n' || n FROM c;"
    )))
    .unwrap();
}

fn notes_table(conn: &mut LibsqlPooledConnection) {
    block_on(conn.execute_schema("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)")).unwrap();
}

async fn all_pairs(conn: &libsql::Connection) -> Vec<(i64, String)> {
    let mut rows = conn
        .query("SELECT id, body FROM notes ORDER BY id", ())
        .await
        .unwrap();
    let mut pairs = Vec::new();
    while let Some(row) = rows.next().await.unwrap() {
        pairs.push((row.get::<i64>(0).unwrap(), row.get::<String>(1).unwrap()));
    }
    pairs
}

#[test]
fn rebinding_a_cached_insert_stores_the_new_values() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    notes_table(&mut conn);
    block_on(async {
        let sql = "INSERT INTO notes(id, body) VALUES (?1, ?2)";
        conn.execute_cached(sql, (1, "first")).await.unwrap();
        conn.execute_cached(sql, (2, "second")).await.unwrap();
        {
            let mut insert = conn.prepare_cached(sql).await.unwrap();
            insert.execute((3, "third")).await.unwrap();
            insert.execute((4, "fourth")).await.unwrap();
        }
        let stats = conn.statement_cache_stats();
        assert_eq!((stats.misses, stats.hits, stats.len), (1, 2, 1));
        assert_eq!(
            all_pairs(&conn).await,
            vec![
                (1, "first".to_owned()),
                (2, "second".to_owned()),
                (3, "third".to_owned()),
                (4, "fourth".to_owned()),
            ]
        );
    });
}

#[test]
fn a_partly_read_cached_select_does_not_leak_its_old_cursor() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    numbers_table(&mut conn, 10);
    let sql = "SELECT n FROM numbers WHERE n >= ?1 ORDER BY n";
    block_on(async {
        {
            let mut rows = conn.query_cached(sql, [1]).await.unwrap();
            let first = rows.next().await.unwrap().unwrap();
            assert_eq!(first.get::<i64>(0).unwrap(), 1);
            // Dropped after one row of ten: the old cursor would go on with 2.
        }
        {
            let mut rows = conn.query_cached(sql, [5]).await.unwrap();
            let first = rows.next().await.unwrap().unwrap();
            assert_eq!(
                first.get::<i64>(0).unwrap(),
                5,
                "new bindings, fresh cursor"
            );
        }
        // The same through one statement guard, queried twice.
        let mut select = conn.prepare_cached(sql).await.unwrap();
        {
            let mut rows = select.query([2]).await.unwrap();
            assert_eq!(
                rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap(),
                2
            );
        }
        let mut rows = select.query([8]).await.unwrap();
        let mut seen = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            seen.push(row.get::<i64>(0).unwrap());
        }
        assert_eq!(seen, vec![8, 9, 10]);
    });
    assert_eq!(conn.statement_cache_stats().misses, 1);
}

#[test]
fn a_dropped_partial_read_does_not_hold_back_a_checkpoint() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    numbers_table(&mut conn, 1000);
    let other = pool.get_blocking().unwrap();
    block_on(async {
        {
            let mut rows = conn
                .query_cached("SELECT n FROM numbers ORDER BY n", ())
                .await
                .unwrap();
            rows.next().await.unwrap().unwrap();
        }
        other
            .execute("UPDATE numbers SET label = 'x' WHERE n = 1", ())
            .await
            .unwrap();
        let mut rows = other
            .query("PRAGMA wal_checkpoint(TRUNCATE)", ())
            .await
            .unwrap();
        let row = rows.next().await.unwrap().unwrap();
        let busy = row.get::<i64>(0).unwrap();
        assert_eq!(busy, 0, "no reader holds an old snapshot");
    });
}

#[test]
fn the_cache_is_cleared_on_schema_change() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    numbers_table(&mut conn, 3);
    block_on(async {
        let select = "SELECT * FROM numbers WHERE n = ?1";
        let read = |row: &libsql::Row| Ok(row.column_count());
        assert_eq!(
            conn.query_row_cached(select, [1], read).await.unwrap(),
            Some(2)
        );
        conn.execute_cached("UPDATE numbers SET label = ?1 WHERE n = ?2", ("one", 1))
            .await
            .unwrap();
        assert_eq!(conn.statement_cache_stats().len, 2);
        let clears = conn.statement_cache_stats().clears;

        // DDL through execute_schema clears the cache ...
        conn.execute_schema("ALTER TABLE numbers ADD COLUMN extra INTEGER")
            .await
            .unwrap();
        let stats = conn.statement_cache_stats();
        assert_eq!(stats.len, 0);
        assert_eq!(stats.clears, clears + 1);
        assert_eq!(
            conn.query_row_cached(select, [1], read).await.unwrap(),
            Some(3)
        );

        // ... and so does DDL through execute_cached, which is never cached itself.
        conn.execute_cached("CREATE INDEX numbers_label ON numbers(label)", ())
            .await
            .unwrap();
        assert_eq!(conn.statement_cache_stats().len, 0);
    });
}

#[test]
fn a_schema_error_from_a_cached_statement_clears_the_cache() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    numbers_table(&mut conn, 3);
    block_on(async {
        conn.execute_cached("CREATE TABLE other(x)", ())
            .await
            .unwrap();
        let count = "SELECT count(*) FROM numbers";
        let read = |row: &libsql::Row| row.get::<i64>(0);
        assert_eq!(
            conn.query_row_cached(count, (), read).await.unwrap(),
            Some(3)
        );
        conn.query_row_cached("SELECT count(*) FROM other", (), read)
            .await
            .unwrap();
        assert_eq!(conn.statement_cache_stats().len, 2);

        // Dropped behind the cache's back, through the raw connection.
        conn.execute("DROP TABLE numbers", ()).await.unwrap();
        let error = conn.query_row_cached(count, (), read).await.unwrap_err();
        assert!(error.to_string().contains("no such table"), "{error}");
        assert_eq!(
            conn.statement_cache_stats().len,
            0,
            "cleared after the schema error"
        );
    });
}

#[test]
fn parameter_mistakes_are_errors_not_silent_reuse_of_old_bindings() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    notes_table(&mut conn);
    block_on(async {
        let sql = "INSERT INTO notes(id, body) VALUES (?1, ?2)";
        conn.execute_cached(sql, (1, "kept")).await.unwrap();

        let too_few = conn.execute_cached(sql, [2]).await.unwrap_err();
        assert!(
            matches!(
                too_few,
                LibsqlError::ParameterCount {
                    expected: 2,
                    given: 1,
                    ..
                }
            ),
            "{too_few}"
        );
        let none = conn.execute_cached(sql, ()).await.unwrap_err();
        assert!(
            matches!(none, LibsqlError::ParameterCount { given: 0, .. }),
            "{none}"
        );
        let too_many = conn.execute_cached(sql, (3, "x", "y")).await.unwrap_err();
        assert!(
            matches!(too_many, LibsqlError::ParameterCount { given: 3, .. }),
            "{too_many}"
        );

        let named = "INSERT INTO notes(id, body) VALUES (:id, :body)";
        let unknown = conn
            .execute_cached(named, libsql::named_params! { ":id": 4, ":bdy": "typo" })
            .await
            .unwrap_err();
        assert!(
            matches!(unknown, LibsqlError::UnknownParameter { .. }),
            "{unknown}"
        );
        assert!(unknown.to_string().contains(":bdy"));
        let missing = conn
            .execute_cached(named, libsql::named_params! { ":id": 5 })
            .await
            .unwrap_err();
        assert!(
            matches!(missing, LibsqlError::ParameterCount { given: 1, .. }),
            "{missing}"
        );
        conn.execute_cached(named, libsql::named_params! { ":id": 6, ":body": "named" })
            .await
            .unwrap();

        // Only the two good inserts are stored: nothing ran with stale bindings.
        assert_eq!(
            all_pairs(&conn).await,
            vec![(1, "kept".to_owned()), (6, "named".to_owned())]
        );
    });
}

#[test]
fn numbered_placeholders_bound_by_name_need_only_the_placeholders_the_text_has() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    notes_table(&mut conn);
    block_on(async {
        // `?2` is never written, so SQLite's second slot is a gap that no value can fill.
        let gap = "INSERT INTO notes(id, body) VALUES (?1, ?3)";
        conn.execute_cached(gap, libsql::named_params! { "?1": 1, "?3": "gap" })
            .await
            .unwrap();
        let missing = conn
            .execute_cached(gap, libsql::named_params! { "?1": 2 })
            .await
            .unwrap_err();
        assert!(
            matches!(
                missing,
                LibsqlError::ParameterCount {
                    expected: 2,
                    given: 1,
                    ..
                }
            ),
            "{missing}"
        );

        // An anonymous `?` after the numbered ones cannot be reached by a name.
        let anonymous = "INSERT INTO notes(id, body) VALUES (?1, ?)";
        let unreachable = conn
            .execute_cached(anonymous, libsql::named_params! { "?1": 3 })
            .await
            .unwrap_err();
        assert!(
            matches!(unreachable, LibsqlError::ParameterCount { given: 1, .. }),
            "{unreachable}"
        );

        assert_eq!(all_pairs(&conn).await, vec![(1, "gap".to_owned())]);
    });
}

#[test]
fn a_slot_no_name_reaches_is_null_not_the_previous_call_s_value() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    notes_table(&mut conn);
    block_on(async {
        // The anonymous `?` is slot 1, below `?2`: SQLite reports it like a gap, so a binding by name
        // may leave it out. It must then read NULL, as on a fresh statement, and never keep the value
        // of the cached statement's previous call (libsql binds only the slots it is given).
        let sql = "INSERT INTO notes(body, id) VALUES (?, ?2)";
        conn.execute_cached(sql, ("secret of call 1", 1))
            .await
            .unwrap();
        conn.execute_cached(sql, libsql::named_params! { "?2": 2 })
            .await
            .unwrap();
        let body = conn
            .query_row_cached("SELECT body FROM notes WHERE id = 2", (), |row| {
                row.get::<Option<String>>(0)
            })
            .await
            .unwrap();
        assert_eq!(
            body,
            Some(None),
            "row 2 kept the binding of the previous call"
        );
    });
}

#[test]
fn a_text_that_libsql_would_run_only_in_part_is_refused_before_anything_runs() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    notes_table(&mut conn);
    block_on(async {
        let problem = |error: LibsqlError| match error {
            LibsqlError::Statement { problem, .. } => problem,
            other => panic!("expected a statement error, got {other:?}"),
        };
        // libsql alone answers Ok(1) here and never stores the second row.
        let two = "INSERT INTO notes VALUES (1, 'a;b'); INSERT INTO notes VALUES (2, 'c')";
        let error = conn.execute_cached(two, ()).await.unwrap_err();
        assert!(
            error.to_string().contains("more than one statement"),
            "{error}"
        );
        assert_eq!(problem(error), StatementProblem::SeveralStatements);
        let error = conn
            .query_cached("SELECT 1; SELECT 2", ())
            .await
            .unwrap_err();
        assert_eq!(problem(error), StatementProblem::SeveralStatements);
        // libsql alone fails with SQLite's "not an error".
        let error = conn.execute_cached(" -- nothing\n", ()).await.unwrap_err();
        assert_eq!(problem(error), StatementProblem::Empty);
        // libsql alone stores the row, then fails with "Execute returned rows".
        let returning = "INSERT INTO notes VALUES (?1, ?2) RETURNING id";
        let error = conn.execute_cached(returning, (3, "x")).await.unwrap_err();
        assert_eq!(problem(error), StatementProblem::ReturnsRows);
        assert_eq!(all_pairs(&conn).await, []);
        // A trailing `;`, quoted `;` and comments are one statement; RETURNING reads through a query.
        conn.execute_cached("INSERT INTO notes VALUES (4, 'x;y'); -- done", ())
            .await
            .unwrap();
        let id = conn
            .query_row_cached(returning, (5, "z"), |row| row.get::<i64>(0))
            .await
            .unwrap();
        assert_eq!(id, Some(5));
    });
    drop(conn);
    let conn = pool.get_blocking().unwrap();
    let stored = block_on(all_pairs(&conn));
    assert_eq!(stored, [(4, "x;y".to_owned()), (5, "z".to_owned())]);
}

#[test]
fn least_recently_used_statements_are_evicted_at_capacity() {
    let (_dir, pool) = pool_with_cache(2);
    let mut conn = pool.get_blocking().unwrap();
    let read = |row: &libsql::Row| row.get::<i64>(0);
    block_on(async {
        for sql in ["SELECT 1", "SELECT 2", "SELECT 1", "SELECT 3"] {
            conn.query_row_cached(sql, (), read).await.unwrap();
        }
        let stats = conn.statement_cache_stats();
        assert_eq!((stats.len, stats.hits, stats.misses), (2, 1, 3));
        // SELECT 1 was used more recently than SELECT 2, so SELECT 2 went.
        conn.query_row_cached("SELECT 1", (), read).await.unwrap();
        assert_eq!(conn.statement_cache_stats().hits, 2);
        assert_eq!(
            conn.query_row_cached("SELECT 2", (), read).await.unwrap(),
            Some(2)
        );
        assert_eq!(conn.statement_cache_stats().misses, 4);
    });
}

#[test]
fn capacity_zero_turns_the_cache_off() {
    let (_dir, pool) = pool_with_cache(0);
    let mut conn = pool.get_blocking().unwrap();
    block_on(async {
        for n in 0..3 {
            let value = conn
                .query_row_cached("SELECT ?1 + 1", [n], |row| row.get::<i64>(0))
                .await
                .unwrap();
            assert_eq!(value, Some(n + 1));
        }
    });
    let stats = conn.statement_cache_stats();
    assert_eq!(
        (stats.len, stats.capacity, stats.hits, stats.misses),
        (0, 0, 0, 3)
    );
}

#[test]
fn the_cache_lives_with_its_connection_across_checkouts() {
    let (_dir, pool) = pool_with_cache(64);
    let config_one = pool.get_blocking().unwrap();
    drop(config_one);
    for _ in 0..5 {
        let mut conn = pool.get_blocking().unwrap();
        block_on(conn.query_row_cached("SELECT 42", (), |row| row.get::<i64>(0))).unwrap();
    }
    let conn = pool.get_blocking().unwrap();
    let stats = conn.statement_cache_stats();
    assert_eq!((stats.misses, stats.hits), (1, 4));
    assert_eq!(pool.statistics().total_created, 1);
}

#[test]
fn a_leaked_statement_guard_is_reset_when_the_connection_returns() {
    let (_dir, pool) = pool_with_cache(64);
    let mut conn = pool.get_blocking().unwrap();
    numbers_table(&mut conn, 5);
    block_on(async {
        let mut rows = conn
            .query_cached("SELECT n FROM numbers ORDER BY n", ())
            .await
            .unwrap();
        rows.next().await.unwrap();
        std::mem::forget(rows);
    });
    drop(conn);
    let mut conn = pool.get_blocking().unwrap();
    let first = block_on(
        conn.query_row_cached("SELECT n FROM numbers ORDER BY n", (), |r| r.get::<i64>(0)),
    )
    .unwrap();
    assert_eq!(first, Some(1));
}
