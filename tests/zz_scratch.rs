use futures_lite::future::block_on;
use libsql::Builder;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn mem_concurrency(path: &'static str) {
    let db = Arc::new(block_on(Builder::new_local(path).build()).unwrap());
    let keep = db.connect().unwrap();
    keep.busy_timeout(Duration::from_secs(5)).unwrap();
    match block_on(keep.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")) {
        Ok(_) => {}
        Err(e) => {
            println!("{path}: create error {e}");
            return;
        }
    }
    let other = db.connect().unwrap();
    let r = block_on(async {
        let mut rows = other.query("SELECT count(*) FROM t", ()).await?;
        rows.next().await.map(|r| r.unwrap().get::<i64>(0))
    });
    println!("{path}: other sees table: {r:?}");
    let errors = Arc::new(AtomicU64::new(0));
    let mut hs = vec![];
    for w in 0..8 {
        let db = db.clone();
        let errors = errors.clone();
        hs.push(std::thread::spawn(move || {
            let c = db.connect().unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            for i in 0..150 {
                let r = if w % 2 == 0 {
                    block_on(async {
                        let tx = c.transaction().await?;
                        for k in 0..20 {
                            tx.execute("INSERT INTO t(v) VALUES (?1)", [i as i64 + k])
                                .await?;
                        }
                        tx.commit().await
                    })
                } else {
                    block_on(async {
                        let mut rows = c.query("SELECT v FROM t", ()).await?;
                        while rows.next().await?.is_some() {}
                        Ok::<(), libsql::Error>(())
                    })
                };
                if let Err(e) = r {
                    if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                        println!("{path}: err {e:?}");
                    }
                }
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    println!("{path}: errors {}", errors.load(Ordering::Relaxed));
}

#[test]
fn scratch_memory() {
    mem_concurrency("file:scratch_a?mode=memory&cache=shared");
    mem_concurrency("file:/scratch_b?vfs=memdb");
}

#[test]
fn scratch_statements() {
    block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let db = Builder::new_local(dir.path().join("x.db"))
            .build()
            .await
            .unwrap();
        let c = db.connect().unwrap();
        c.execute_batch(
            "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1,'x'),(2,'y'),(3,'z');",
        )
        .await
        .unwrap();
        let s = c.prepare("SELECT * FROM t WHERE a >= ?1").await.unwrap();
        println!("cols before {}", s.column_count());
        c.execute_batch("ALTER TABLE t ADD COLUMN c INTEGER")
            .await
            .unwrap();
        s.reset();
        let mut rows = s.query([1]).await.unwrap();
        println!(
            "cols after alter: stmt {} rows {}",
            s.column_count(),
            rows.column_count()
        );
        let r = rows.next().await.unwrap().unwrap();
        println!("row a={}", r.get::<i64>(0).unwrap());
        drop(rows);
        // partial read then query again without reset
        let mut rows = s.query([2]).await.unwrap();
        let r = rows.next().await.unwrap().unwrap();
        println!(
            "no reset, second query with 2 gives a={}",
            r.get::<i64>(0).unwrap()
        );
        drop(rows);
        s.reset();
        // fewer params: the statement keeps old bindings?
        let ins = c
            .prepare("INSERT INTO t(a,b) VALUES (?1, ?2)")
            .await
            .unwrap();
        ins.execute((10, "ten")).await.unwrap();
        ins.reset();
        let r = ins.execute([11]).await;
        println!("fewer params: {r:?}");
        let mut rows = c
            .query("SELECT a, b FROM t WHERE a >= 10", ())
            .await
            .unwrap();
        while let Some(r) = rows.next().await.unwrap() {
            println!("  row {:?} {:?}", r.get_value(0), r.get_value(1));
        }
        ins.reset();
        let r = ins.execute((12, "a", "extra")).await;
        println!("more params: {r:?}");
        let r = ins.execute(libsql::named_params! {":zz": 1}).await;
        println!("bad named: {r:?}");
        println!(
            "named param names: {:?} {:?}",
            ins.parameter_name(1),
            ins.parameter_name(2)
        );
        c.execute_batch("DROP TABLE t").await.unwrap();
        s.reset();
        let r = s.query([1]).await;
        match r {
            Ok(mut rows) => println!(
                "after drop: query ok, next = {:?}",
                rows.next().await.map(|r| r.is_some())
            ),
            Err(e) => println!("after drop: {e:?}"),
        }
        let r = c.prepare("SELECT * FROM nope").await;
        println!("prepare missing table: {:?}", r.err());
        // PRAGMA via execute
        println!(
            "pragma sync execute: {:?}",
            c.execute("PRAGMA synchronous=NORMAL", ()).await
        );
        println!(
            "pragma fk execute: {:?}",
            c.execute("PRAGMA foreign_keys=ON", ()).await
        );
        println!(
            "rollback with nothing: {:?}",
            c.execute("ROLLBACK", ()).await
        );
        c.execute("BEGIN", ()).await.unwrap();
        println!("autocommit in tx: {}", c.is_autocommit());
        let s2 = c.prepare("SELECT 1").await.unwrap();
        let mut rows = s2.query(()).await.unwrap();
        rows.next().await.unwrap();
        println!(
            "rollback with open stmt: {:?} autocommit {}",
            c.execute("ROLLBACK", ()).await,
            c.is_autocommit()
        );
        drop(rows);
        // journal mode read
        let mut rows = c.query("PRAGMA journal_mode=WAL", ()).await.unwrap();
        println!(
            "journal {:?}",
            rows.next().await.unwrap().unwrap().get_value(0)
        );
        let mem = Builder::new_local(":memory:").build().await.unwrap();
        let m = mem.connect().unwrap();
        let mut rows = m.query("PRAGMA journal_mode=WAL", ()).await.unwrap();
        println!(
            "memory journal {:?}",
            rows.next().await.unwrap().unwrap().get_value(0)
        );
    });
}
