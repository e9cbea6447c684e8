//! Bad input, table-driven: every case names the typed error it must produce and what its
//! message must say, or the documented behaviour it must show (checked by the case itself). No case
//! may panic, and after each one the storage's contents (every row of every table, the schema and
//! its version) are compared with what they were before: a refused input changes nothing, and an
//! accepted one adds only the records it stored.
//!
//! The groups: pool and storage settings (zeros, `min_idle > max`, huge values, durations that
//! would overflow `Instant` arithmetic); URLs and tokens (every kind of scheme, loopback and remote
//! plain http, blank, control characters, too long); file paths (a missing directory, a directory,
//! a read-only file, a file that is not a database, a locked database); runtimes (a tokio runtime
//! without timers, a remote database on another adapter or polled outside tokio); and record
//! payloads (SQL injection, a 10 MB description, NUL and Unicode in every text field, NaN and
//! infinite scores, JSON nested too deep to read back, duplicate ids, missing ids).
#![cfg(all(unix, feature = "libsql", feature = "tokio"))]

mod storage_support;
mod strategies;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use futures_lite::future::block_on;
use memory_storage_turso::libsql::{ConnectionSetup, LibsqlDatabase, LibsqlError, LibsqlManager};
use memory_storage_turso::pool::{ConfigError, Pool, PoolConfig, PoolError, MAX_DURATION};
use memory_storage_turso::rt::{Blocking, Tokio};
use memory_storage_turso::storage::{
    BreakerConfig, DatabaseErrorKind, DatabaseTarget, Episode, EpisodeQuery, ExecutionResult,
    ExecutionStep, Heuristic, OutcomeStats, Pattern, PatternQuery, Reflection, ResilientStorage,
    SecurityError, StorageError, TaskContext, TaskOutcome, TaskType, TursoConfig, TursoStorage,
    MAX_URL_LEN,
};
use storage_support::{context, full_episode, heuristic, tool_sequence, TempDb};
use strategies::INJECTION_PAYLOADS;
use uuid::Uuid;

/// What a case failed with.
#[derive(Debug)]
enum Failure {
    Pool(ConfigError),
    Libsql(LibsqlError),
    Security(SecurityError),
    Storage(StorageError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Pool(e) => e.fmt(f),
            Failure::Libsql(e) => e.fmt(f),
            Failure::Security(e) => e.fmt(f),
            Failure::Storage(e) => e.fmt(f),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::Pool(e)
    }
}
impl From<LibsqlError> for Failure {
    fn from(e: LibsqlError) -> Self {
        Failure::Libsql(e)
    }
}
impl From<PoolError<LibsqlError>> for Failure {
    fn from(e: PoolError<LibsqlError>) -> Self {
        Failure::Libsql(e.into())
    }
}
impl From<SecurityError> for Failure {
    fn from(e: SecurityError) -> Self {
        Failure::Security(e)
    }
}
impl From<StorageError> for Failure {
    fn from(e: StorageError) -> Self {
        Failure::Storage(e)
    }
}

/// What a case did.
enum Outcome {
    Failed(Failure),
    /// Accepted; the ids of the records it added, which the contents check leaves out.
    Accepted(Vec<Uuid>),
}

/// A refusal: `Err` becomes `Failed`, and an `Ok` (which the expectation then rejects) `Accepted`.
fn refused<T, E: Into<Failure>>(result: Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Accepted(Vec::new()),
        Err(error) => Outcome::Failed(error.into()),
    }
}

/// An accepted input that added the records `ids`.
fn added(ids: impl IntoIterator<Item = Uuid>) -> Outcome {
    Outcome::Accepted(ids.into_iter().collect())
}

/// An accepted input that left the contents as they were.
fn unchanged() -> Outcome {
    Outcome::Accepted(Vec::new())
}

enum Expect {
    /// This error, with a message that says all of these.
    Error(fn(&Failure) -> bool, &'static [&'static str]),
    /// Accepted, with this documented behaviour (which the case checks).
    Accepted(&'static str),
}

macro_rules! error {
    ($pattern:pat, $($says:literal),+ $(,)?) => {
        Expect::Error(|failure| matches!(failure, $pattern), &[$($says),+])
    };
}

struct Case {
    name: String,
    expect: Expect,
    run: Box<dyn Fn(&Fixture) -> Outcome>,
}

fn case(
    name: impl Into<String>,
    expect: Expect,
    run: impl Fn(&Fixture) -> Outcome + 'static,
) -> Case {
    Case {
        name: name.into(),
        expect,
        run: Box::new(run),
    }
}

/// A storage on a file with a few records, and what else the cases need.
struct Fixture {
    db: TempDb,
    storage: TursoStorage<Blocking>,
    /// A connection of its own, to read the file's contents.
    reader: memory_storage_turso::libsql::OwnedConnection,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let db = TempDb::new();
        let storage = block_on(async {
            let storage = TursoStorage::builder(&db.url, "")
                // The locked-database case waits this long for the lock.
                .connection_setup(
                    ConnectionSetup::default().busy_timeout(Duration::from_millis(200)),
                )
                .runtime(Blocking)
                .build()
                .await?;
            storage.initialize_schema().await?;
            for i in 0..3 {
                storage
                    .store_episode(&full_episode(
                        i,
                        TaskType::Analysis,
                        context("seed", Some("rust")),
                    ))
                    .await?;
            }
            storage
                .store_pattern(&tool_sequence(context("seed", None), 0.5))
                .await?;
            storage.store_heuristic(&heuristic(0.5)).await?;
            Ok::<_, StorageError>(storage)
        })
        .unwrap();
        let reader = LibsqlDatabase::open_file(db.path())
            .unwrap()
            .connect()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Fixture {
            db,
            storage,
            reader,
            runtime,
        }
    }

    /// Every row of every table (text and blobs in hex, so that nothing is cut at a NUL), the
    /// schema, and its version.
    fn contents(&self) -> BTreeMap<String, Vec<Vec<String>>> {
        block_on(async {
            let conn = &self.reader;
            let mut contents = BTreeMap::new();
            let mut schema = Vec::new();
            let mut rows = conn
                .query(
                    "SELECT type, name, sql FROM sqlite_master ORDER BY type, name",
                    (),
                )
                .await?;
            while let Some(row) = rows.next().await? {
                let kind = row.get::<String>(0)?;
                let name = row.get::<String>(1)?;
                schema.push(vec![
                    kind.clone(),
                    name.clone(),
                    format!("{:?}", row.get_value(2)?),
                ]);
                if kind != "table" {
                    continue;
                }
                let mut columns = Vec::new();
                let mut info = conn
                    .query("SELECT name FROM pragma_table_info(?1)", [name.as_str()])
                    .await?;
                while let Some(column) = info.next().await? {
                    let column = column.get::<String>(0)?;
                    columns.push(format!(
                        "typeof(\"{column}\") || ':' || CASE typeof(\"{column}\") \
                         WHEN 'text' THEN hex(\"{column}\") WHEN 'blob' THEN hex(\"{column}\") \
                         ELSE quote(\"{column}\") END"
                    ));
                }
                let sql = format!("SELECT {} FROM \"{name}\" ORDER BY 1", columns.join(", "));
                let mut table = Vec::new();
                let mut rows = conn.query(&sql, ()).await?;
                while let Some(row) = rows.next().await? {
                    let cells = (0..columns.len() as i32)
                        .map(|i| row.get::<String>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    table.push(cells);
                }
                contents.insert(name, table);
            }
            let mut rows = conn.query("PRAGMA user_version", ()).await?;
            let version = rows.next().await?.unwrap().get::<i64>(0)?;
            schema.push(vec![format!("user_version {version}")]);
            contents.insert(String::from("(schema)"), schema);
            Ok::<_, libsql::Error>(contents)
        })
        .unwrap()
    }

    fn store<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        block_on(call)
    }
}

/// `contents` without the rows whose first column is one of `ids`.
fn without(
    mut contents: BTreeMap<String, Vec<Vec<String>>>,
    ids: &[Uuid],
) -> (BTreeMap<String, Vec<Vec<String>>>, usize) {
    let keys: Vec<String> = ids
        .iter()
        .map(|id| {
            let hex: String = id.to_string().bytes().map(|b| format!("{b:02X}")).collect();
            format!("text:{hex}")
        })
        .collect();
    let mut removed = 0;
    for rows in contents.values_mut() {
        let before = rows.len();
        rows.retain(|row| !row.first().is_some_and(|first| keys.contains(first)));
        removed += before - rows.len();
    }
    (contents, removed)
}

/// `expect` with the `remote` feature; without it, the typed error every remote URL gets.
fn if_remote(expect: Expect) -> Expect {
    if cfg!(feature = "remote") {
        expect
    } else {
        error!(
            Failure::Storage(StorageError::Config { setting: "url", .. }),
            "remote"
        )
    }
}

/// `1` inside `depth` nested arrays.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::Value::from(1), |inner, _| {
        serde_json::Value::Array(vec![inner])
    })
}

/// A storage over `url`, or why it could not be built.
fn build(url: &str, token: &str) -> Result<TursoStorage<Blocking>, StorageError> {
    block_on(TursoStorage::builder(url, token).runtime(Blocking).build())
}

fn pool_config(change: impl FnOnce(PoolConfig) -> PoolConfig) -> Result<PoolConfig, ConfigError> {
    let config = change(PoolConfig::default());
    config.validate().map(|()| config)
}

fn storage_with_pool_config(fx: &Fixture, config: PoolConfig) -> Outcome {
    refused(block_on(
        TursoStorage::builder(&fx.db.url, "")
            .pool_config(config)
            .runtime(Blocking)
            .build(),
    ))
}

fn storage_with_config(fx: &Fixture, config: TursoConfig) -> Outcome {
    refused(block_on(
        TursoStorage::builder(&fx.db.url, "")
            .config(config)
            .runtime(Blocking)
            .build(),
    ))
}

fn memory_pool(max: usize) -> memory_storage_turso::libsql::LibsqlPool {
    let config = PoolConfig::builder().max_connections(max).build().unwrap();
    Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()))
        .config(config)
        .build()
        .unwrap()
}

/// A context with `text` in every text field.
fn text_context(text: &str) -> TaskContext {
    TaskContext {
        language: Some(text.into()),
        framework: Some(text.into()),
        complexity: Default::default(),
        domain: text.into(),
        tags: vec![text.into(), String::new()],
    }
}

/// An episode with `text` in every text field, map keys included.
fn text_episode(text: &str) -> Episode {
    let mut episode = full_episode(7, TaskType::Refactoring, text_context(text));
    episode.task_description = text.into();
    let mut step = ExecutionStep::new(1, text.into(), text.into());
    step.timestamp = episode.start_time;
    step.parameters = serde_json::json!({ text: text, "list": [text] });
    step.result = Some(ExecutionResult::Error {
        message: text.into(),
    });
    step.metadata = HashMap::from([(text.into(), text.into())]);
    episode.steps = vec![step];
    episode.outcome = Some(TaskOutcome::Failure {
        reason: text.into(),
        error_details: Some(text.into()),
    });
    episode.reflection = Some(Reflection {
        successes: vec![text.into()],
        improvements: vec![text.into()],
        insights: vec![text.into()],
        generated_at: episode.start_time,
    });
    episode.metadata = HashMap::from([(text.into(), text.into())]);
    episode
}

/// One pattern of each kind with `text` in every text field.
fn text_patterns(text: &str) -> Vec<Pattern> {
    vec![
        Pattern::ToolSequence {
            id: Uuid::new_v4(),
            tools: vec![text.into()],
            context: text_context(text),
            success_rate: 0.25,
            avg_latency: chrono::Duration::milliseconds(3),
            occurrence_count: 1,
        },
        Pattern::DecisionPoint {
            id: Uuid::new_v4(),
            condition: text.into(),
            action: text.into(),
            outcome_stats: OutcomeStats {
                success_count: 1,
                failure_count: 1,
                total_count: 2,
                avg_duration_secs: 1.5,
            },
            context: text_context(text),
        },
        Pattern::ErrorRecovery {
            id: Uuid::new_v4(),
            error_type: text.into(),
            recovery_steps: vec![text.into()],
            success_rate: 0.75,
            context: text_context(text),
        },
        Pattern::ContextPattern {
            id: Uuid::new_v4(),
            context_features: vec![text.into()],
            recommended_approach: text.into(),
            evidence: vec![Uuid::new_v4()],
            success_rate: 1.0,
        },
    ]
}

fn text_heuristic(text: &str) -> Heuristic {
    let mut heuristic = heuristic(0.625);
    heuristic.condition = text.into();
    heuristic.action = text.into();
    heuristic
}

/// Stores an episode with `text` everywhere, checks that it reads back equal (by id and by a
/// query on its domain), and deletes it again.
fn episode_round_trip(fx: &Fixture, text: &str) -> Outcome {
    let episode = text_episode(text);
    let storage = &fx.storage;
    block_on(async {
        storage.store_episode(&episode).await?;
        let read = storage.get_episode(episode.episode_id).await?;
        assert_eq!(read.as_ref(), Some(&episode), "by id");
        let query = EpisodeQuery {
            domain: Some(text.into()),
            language: Some(text.into()),
            ..EpisodeQuery::default()
        };
        assert_eq!(
            storage.query_episodes(&query).await?,
            vec![episode.clone()],
            "by domain"
        );
        storage.delete_episode(episode.episode_id).await?;
        Ok::<_, StorageError>(unchanged())
    })
    .unwrap()
}

/// Stores patterns and a heuristic with `text` everywhere and checks that they read back equal.
fn pattern_and_heuristic_round_trip(fx: &Fixture, text: &str) -> Outcome {
    let storage = &fx.storage;
    let patterns = text_patterns(text);
    let rule = text_heuristic(text);
    block_on(async {
        for pattern in &patterns {
            storage.store_pattern(pattern).await?;
            assert_eq!(
                storage.get_pattern(pattern.id()).await?.as_ref(),
                Some(pattern)
            );
        }
        let query = PatternQuery {
            domain: Some(text.into()),
            language: Some(text.into()),
            ..PatternQuery::default()
        };
        assert_eq!(
            storage.query_patterns(&query).await?.len(),
            3,
            "all but the context pattern"
        );
        storage.store_heuristic(&rule).await?;
        assert_eq!(
            storage.get_heuristic(rule.heuristic_id).await?,
            Some(rule.clone())
        );
        Ok::<_, StorageError>(added(
            patterns.iter().map(Pattern::id).chain([rule.heuristic_id]),
        ))
    })
    .unwrap()
}

/// Runs `work` on a thread that the OS checks file permissions for. Root ignores them; on Linux
/// the filesystem user id is per thread, and switching it to `nobody` also drops the capabilities
/// that bypass permission checks, for this thread only.
fn without_privileges<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| {
        s.spawn(|| {
            #[cfg(target_os = "linux")]
            // SAFETY: plain system calls without pointers; setfsuid changes this thread only.
            unsafe {
                if libc::geteuid() == 0 {
                    libc::setfsuid(65534);
                }
            }
            work()
        })
        .join()
        .unwrap()
    })
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // --- Pool and storage settings -------------------------------------------------------
    cases.push(case(
        "max_connections 0",
        error!(
            Failure::Pool(ConfigError::ZeroMaxConnections),
            "max_connections is 0"
        ),
        |_| refused(PoolConfig::builder().max_connections(0).build()),
    ));
    cases.push(case(
        "max_connections above the limit",
        error!(
            Failure::Pool(ConfigError::TooManyConnections(65_537)),
            "65537", "limit of 65536"
        ),
        |_| refused(PoolConfig::builder().max_connections(65_537).build()),
    ));
    cases.push(case(
        "max_connections usize::MAX",
        error!(
            Failure::Pool(ConfigError::TooManyConnections(usize::MAX)),
            "max_connections", "smaller pool"
        ),
        |_| refused(PoolConfig::builder().max_connections(usize::MAX).build()),
    ));
    cases.push(case(
        "min_idle above max_connections",
        error!(
            Failure::Pool(ConfigError::MinIdleAboveMax {
                min_idle: 5,
                max_connections: 4
            }),
            "min_idle (5)", "max_connections (4)"
        ),
        |_| refused(PoolConfig::builder().max_connections(4).min_idle(5).build()),
    ));
    cases.push(case(
        "connection_timeout zero",
        error!(
            Failure::Pool(ConfigError::ZeroDuration {
                field: "connection_timeout"
            }),
            "connection_timeout is zero"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                connection_timeout: Duration::ZERO,
                ..c
            }))
        },
    ));
    cases.push(case(
        "health_check_timeout zero",
        error!(
            Failure::Pool(ConfigError::ZeroDuration {
                field: "health_check_timeout"
            }),
            "health_check_timeout is zero"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                health_check_timeout: Duration::ZERO,
                ..c
            }))
        },
    ));
    cases.push(case(
        "idle_timeout zero",
        error!(
            Failure::Pool(ConfigError::ZeroDuration {
                field: "idle_timeout"
            }),
            "idle_timeout is zero"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                idle_timeout: Some(Duration::ZERO),
                ..c
            }))
        },
    ));
    cases.push(case(
        "maintenance_interval zero",
        error!(
            Failure::Pool(ConfigError::ZeroDuration {
                field: "maintenance_interval"
            }),
            "maintenance_interval is zero"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                maintenance_interval: Duration::ZERO,
                ..c
            }))
        },
    ));
    cases.push(case(
        "connection_timeout Duration::MAX",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "connection_timeout",
                ..
            }),
            "connection_timeout", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                connection_timeout: Duration::MAX,
                ..c
            }))
        },
    ));
    cases.push(case(
        "idle_timeout Duration::MAX",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "idle_timeout",
                ..
            }),
            "idle_timeout", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                idle_timeout: Some(Duration::MAX),
                ..c
            }))
        },
    ));
    cases.push(case(
        "max_lifetime Duration::MAX",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "max_lifetime",
                ..
            }),
            "max_lifetime", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                max_lifetime: Some(Duration::MAX),
                ..c
            }))
        },
    ));
    cases.push(case(
        "leak_detection_threshold Duration::MAX",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "leak_detection_threshold",
                ..
            }),
            "leak_detection_threshold", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                leak_detection_threshold: Some(Duration::MAX),
                ..c
            }))
        },
    ));
    cases.push(case(
        "health_check_bypass Duration::MAX",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "health_check_bypass",
                ..
            }),
            "health_check_bypass", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                health_check_bypass: Duration::MAX,
                ..c
            }))
        },
    ));
    cases.push(case(
        "maintenance_interval just over the maximum",
        error!(
            Failure::Pool(ConfigError::DurationTooLong {
                field: "maintenance_interval",
                ..
            }),
            "maintenance_interval", "100 years"
        ),
        |_| {
            refused(pool_config(|c| PoolConfig {
                maintenance_interval: MAX_DURATION + Duration::from_secs(1),
                ..c
            }))
        },
    ));
    cases.push(case(
        "resize to 0",
        error!(
            Failure::Pool(ConfigError::ZeroMaxConnections),
            "max_connections is 0"
        ),
        |_| refused(memory_pool(2).resize(0)),
    ));
    cases.push(case(
        "resize above the limit",
        error!(
            Failure::Pool(ConfigError::TooManyConnections(_)),
            "limit of 65536"
        ),
        |_| refused(memory_pool(2).resize(1 << 20)),
    ));
    cases.push(case(
        "storage pool max_connections 0",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "max_connections",
                ..
            }),
            "max_connections is 0"
        ),
        |fx| {
            storage_with_pool_config(
                fx,
                PoolConfig {
                    max_connections: 0,
                    ..PoolConfig::default()
                },
            )
        },
    ));
    cases.push(case(
        "storage pool connection_timeout Duration::MAX",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "connection_timeout",
                ..
            }),
            "100 years"
        ),
        |fx| {
            storage_with_pool_config(
                fx,
                PoolConfig {
                    connection_timeout: Duration::MAX,
                    ..PoolConfig::default()
                },
            )
        },
    ));
    cases.push(case(
        "storage max_retries 1000",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "max_retries",
                ..
            }),
            "1000", "limit of 100"
        ),
        |fx| {
            storage_with_config(
                fx,
                TursoConfig {
                    max_retries: 1000,
                    ..TursoConfig::default()
                },
            )
        },
    ));
    cases.push(case(
        "storage retry_max_delay_ms u64::MAX",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "retry_max_delay_ms",
                ..
            }),
            "limit of 3600000 ms"
        ),
        |fx| {
            storage_with_config(
                fx,
                TursoConfig {
                    retry_max_delay_ms: u64::MAX,
                    ..TursoConfig::default()
                },
            )
        },
    ));
    cases.push(case(
        "storage retry base delay above the maximum",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "retry_base_delay_ms",
                ..
            }),
            "retry_max_delay_ms"
        ),
        |fx| {
            storage_with_config(
                fx,
                TursoConfig {
                    retry_base_delay_ms: 10,
                    retry_max_delay_ms: 5,
                    ..TursoConfig::default()
                },
            )
        },
    ));
    cases.push(case(
        "breaker failure_threshold 0",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "failure_threshold",
                ..
            }),
            "at least 1"
        ),
        |fx| {
            refused(ResilientStorage::with_breaker(
                fx.storage.clone(),
                BreakerConfig {
                    failure_threshold: 0,
                    ..BreakerConfig::default()
                },
            ))
        },
    ));
    cases.push(case(
        "breaker cool_down Duration::MAX",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "cool_down",
                ..
            }),
            "100 years"
        ),
        |fx| {
            refused(ResilientStorage::with_breaker(
                fx.storage.clone(),
                BreakerConfig {
                    cool_down: Duration::MAX,
                    ..BreakerConfig::default()
                },
            ))
        },
    ));
    cases.push(case(
        "get_blocking_timeout(Duration::ZERO) on a full pool",
        error!(
            Failure::Libsql(LibsqlError::Pool(_)),
            "timed out", "size 1/1", "in use 1"
        ),
        |_| {
            let pool = memory_pool(1);
            let _held = pool.get_blocking().unwrap();
            refused(pool.get_blocking_timeout(Duration::ZERO))
        },
    ));
    cases.push(case(
        "get_blocking_timeout(Duration::MAX)",
        Expect::Accepted("too long to add to now: no deadline; a free connection comes at once"),
        |_| {
            let pool = memory_pool(1);
            assert!(pool.get_blocking_timeout(Duration::MAX).is_ok());
            unchanged()
        },
    ));
    cases.push(case(
        "async get_timeout(Duration::MAX) on tokio",
        Expect::Accepted("as for threads: no deadline, no overflow"),
        |fx| {
            let config = PoolConfig::builder().max_connections(1).build().unwrap();
            let pool = fx.runtime.block_on(async {
                Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()))
                    .config(config)
                    .runtime(Tokio::current())
                    .build()
                    .unwrap()
            });
            assert!(fx.runtime.block_on(pool.get_timeout(Duration::MAX)).is_ok());
            unchanged()
        },
    ));
    cases.push(case(
        "a tokio runtime without its time driver",
        error!(
            Failure::Pool(ConfigError::Runtime { .. }),
            "no time driver", "enable_time()"
        ),
        |_| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            // Its async checkouts could never time out: the builder refuses it.
            refused(
                Pool::builder(LibsqlManager::new(LibsqlDatabase::open_memory().unwrap()))
                    .runtime(Tokio::from_handle(runtime.handle().clone()))
                    .build(),
            )
        },
    ));
    cases.push(case(
        "shutdown_blocking(Duration::MAX)",
        Expect::Accepted("nothing checked out: drained at once"),
        |_| {
            let pool = memory_pool(1);
            drop(pool.get_blocking().unwrap());
            assert!(pool.shutdown_blocking(Duration::MAX).drained);
            unchanged()
        },
    ));
    // --- URLs and tokens ---------------------------------------------------------------------
    cases.push(case(
        "empty URL",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::EmptyUrl)),
            "URL is empty", "file:PATH"
        ),
        |_| refused(build("", "token")),
    ));
    cases.push(case(
        "blank URL",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::EmptyUrl)),
            "URL is empty"
        ),
        |_| refused(build(" \t ", "token")),
    ));
    cases.push(case(
        "a URL with a newline",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::ControlCharacter {
                position: 14
            })),
            "control character at byte 14"
        ),
        |_| refused(build("file:memory.db\n", "")),
    ));
    cases.push(case(
        "a URL with a NUL",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::ControlCharacter {
                position: 11
            })),
            "control character"
        ),
        |_| refused(build("libsql://db\0.turso.io", "token")),
    ));
    cases.push(case(
        "a URL over MAX_URL_LEN",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::UrlTooLong {
                length: 2049,
                limit: 2048
            })),
            "2049 bytes", "limit of 2048"
        ),
        |_| {
            let url = format!(
                "libsql://{}",
                "a".repeat(MAX_URL_LEN + 1 - "libsql://".len())
            );
            refused(build(&url, "token"))
        },
    ));
    cases.push(case(
        "a URL without a scheme",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MissingScheme)),
            "no scheme", "file:PATH"
        ),
        |_| refused(build("data/memory.db", "")),
    ));
    cases.push(case(
        "file: with no path",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::EmptyPath)),
            "path is empty"
        ),
        |_| refused(build("file:", "")),
    ));
    cases.push(case(
        "file:// with a relative path",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "absolute path"
        ),
        |_| refused(build("file://data/memory.db", "")),
    ));
    cases.push(case(
        "file: with URI parameters",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "cannot contain ?"
        ),
        |_| refused(build("file:memory.db?mode=ro", "")),
    ));
    cases.push(case(
        "remote URL with no host",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "no host"
        ),
        |_| refused(build("https://", "token")),
    ));
    cases.push(case(
        "remote URL with port 99999",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "port"
        ),
        |_| refused(build("libsql://db.turso.io:99999", "token")),
    ));
    cases.push(case(
        "remote URL with a non-ASCII path",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "percent-encode"
        ),
        // The HTTP client refuses it on every call, which would read as a network outage.
        |_| refused(build("https://db.example.com/d\u{fc}", "token")),
    ));
    cases.push(case(
        "remote URL with a non-ASCII host",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::MalformedUrl { .. })),
            "punycode"
        ),
        |_| refused(build("libsql://münchen.example", "token")),
    ));
    cases.push(case(
        "credentials before @",
        error!(
            Failure::Storage(StorageError::Security(
                SecurityError::CredentialsInUrl { .. }
            )),
            "credentials", "token argument"
        ),
        |_| refused(build("libsql://user:secret@db.turso.io", "token")),
    ));
    cases.push(case(
        "a token in the query",
        error!(
            Failure::Storage(StorageError::Security(
                SecurityError::CredentialsInUrl { .. }
            )),
            "credentials"
        ),
        |_| refused(build("https://db.turso.io/?authToken=secret", "token")),
    ));
    cases.push(case(
        "plain http to a remote host",
        error!(
            Failure::Storage(StorageError::Security(
                SecurityError::InsecureTransport { .. }
            )),
            "db.example.com", "https://db.example.com"
        ),
        |_| refused(build("http://db.example.com", "token")),
    ));
    cases.push(case(
        "plain http to a private address",
        error!(
            Failure::Storage(StorageError::Security(
                SecurityError::InsecureTransport { .. }
            )),
            "10.0.0.1", "loopback"
        ),
        |_| refused(build("http://10.0.0.1:8080", "token")),
    ));
    cases.push(case(
        "plain http to [::2]",
        error!(
            Failure::Storage(StorageError::Security(
                SecurityError::InsecureTransport { .. }
            )),
            "[::2]"
        ),
        |_| refused(build("http://[::2]:8080", "token")),
    ));
    cases.push(case(
        "a blank token for a remote URL",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::BlankToken)),
            "auth token", "empty or blank"
        ),
        |_| refused(build("libsql://db.turso.io", " \t ")),
    ));
    cases.push(case(
        "an empty token for loopback http",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::BlankToken)),
            "empty or blank"
        ),
        |_| refused(build("http://localhost:8080", "")),
    ));
    cases.push(case(
        "a token with a newline",
        error!(
            Failure::Storage(StorageError::Security(SecurityError::TokenControlCharacter)),
            "token contains a control character"
        ),
        |_| refused(build("libsql://db.turso.io", "secret\n")),
    ));
    cases.push(case(
        "a 1 MB token",
        Expect::Accepted("tokens have no length limit, and never print"),
        |_| {
            let token = "t".repeat(1 << 20);
            let target = DatabaseTarget::parse("libsql://db.turso.io", &token).unwrap();
            assert!(target.is_remote());
            assert!(!format!("{target:?} {target}").contains("tttt"));
            unchanged()
        },
    ));
    for (scheme, url) in [
        ("ftp", "ftp://example.com/db"),
        ("ws", "ws://localhost:8080"),
        ("wss", "wss://db.turso.io"),
        ("postgresql", "postgresql://localhost/db"),
        ("mysql", "mysql://localhost/db"),
        ("sqlite", "sqlite:memory.db"),
        ("javascript", "javascript:alert(1)"),
    ] {
        cases.push(case(
            format!("the {scheme}: scheme"),
            error!(
                Failure::Storage(StorageError::Security(
                    SecurityError::UnsupportedScheme { .. }
                )),
                "is not supported", "libsql://HOST"
            ),
            move |_| refused(build(url, "token")),
        ));
    }
    for url in [
        "LIBSQL://db.turso.io",
        "HTTPS://db.turso.io",
        "File:memory.db",
    ] {
        cases.push(case(
            format!("upper case {url}"),
            error!(
                Failure::Storage(StorageError::Security(
                    SecurityError::UnsupportedScheme { .. }
                )),
                "lower case"
            ),
            move |_| refused(build(url, "token")),
        ));
    }
    cases.push(case(
        "plain http to loopback, nothing listening",
        if_remote(error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Network,
                ..
            }),
            "could not be reached", "Connection refused"
        )),
        |fx| {
            // Accepted as a URL (loopback), then the connection is refused.
            fx.runtime.block_on(async {
                let storage = TursoStorage::builder("http://127.0.0.1:1", "token")
                    .build()
                    .await;
                refused(match storage {
                    Ok(storage) => storage.health_check().await,
                    Err(error) => Err(error),
                })
            })
        },
    ));

    cases.push(case(
        "a remote database on the Blocking adapter",
        if_remote(error!(
            Failure::Storage(StorageError::Config {
                setting: "runtime",
                ..
            }),
            "runs on tokio", "Tokio adapter"
        )),
        // libsql's HTTP client needs tokio's reactor: without it every call would panic.
        |_| refused(build("http://127.0.0.1:1", "token")),
    ));
    cases.push(case(
        "a remote call polled outside the Tokio adapter's runtime",
        if_remote(error!(
            Failure::Storage(StorageError::Config {
                setting: "runtime",
                ..
            }),
            "outside a tokio runtime", "Handle::block_on"
        )),
        |fx| {
            let storage = block_on(
                TursoStorage::builder("http://127.0.0.1:1", "token")
                    .runtime(Tokio::from_handle(fx.runtime.handle().clone()))
                    .build(),
            );
            refused(match storage {
                Ok(storage) => block_on(storage.health_check()),
                Err(error) => Err(error),
            })
        },
    ));

    #[cfg(feature = "replica")]
    cases.push(case(
        "an embedded replica on the Blocking adapter",
        error!(
            Failure::Storage(StorageError::Config {
                setting: "runtime",
                ..
            }),
            "embedded replica", "Tokio adapter"
        ),
        // Its writes go to the primary through libsql's HTTP client, which needs tokio's reactor.
        |fx| {
            let dir = tempfile::tempdir().unwrap();
            let replica = fx
                .runtime
                .block_on(libsql::Builder::new_local_replica(dir.path().join("r.db")).build())
                .unwrap();
            refused(block_on(
                memory_storage_turso::storage::TursoStorageBuilder::from_database(replica)
                    .runtime(Blocking)
                    .build(),
            ))
        },
    ));

    // --- File paths ------------------------------------------------------------------------------
    cases.push(case(
        "a file in a missing directory",
        error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Other,
                ..
            }),
            "could not open the database file", "no such dir", "check that its directory exists"
        ),
        |fx| {
            let path = fx.db.dir.path().join("no such dir").join("memory.db");
            refused(build(&format!("file:{}", path.display()), ""))
        },
    ));
    cases.push(case(
        "a directory",
        error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Other,
                ..
            }),
            "could not open the database file"
        ),
        |fx| refused(build(&format!("file:{}", fx.db.dir.path().display()), "")),
    ));
    cases.push(case(
        "a file that is not a database",
        error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Other,
                ..
            }),
            "file is not a database"
        ),
        |_| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("notes.txt");
            std::fs::write(&path, "These are notes, not a database. ".repeat(100)).unwrap();
            refused(build(&format!("file:{}", path.display()), ""))
        },
    ));
    cases.push(case(
        "an empty file",
        Expect::Accepted("SQLite takes an empty file as a new, empty database"),
        |_| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("empty.db");
            std::fs::write(&path, b"").unwrap();
            let storage = build(&format!("file:{}", path.display()), "").unwrap();
            block_on(storage.initialize_schema()).unwrap();
            assert_eq!(block_on(storage.get_statistics()).unwrap().episode_count, 0);
            unchanged()
        },
    ));
    cases.push(case(
        "a read-only file",
        error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Other,
                ..
            }),
            "readonly database"
        ),
        |_| read_only_file_case(),
    ));
    // Another connection holds the write lock past the storage's busy timeout (200 ms).
    cases.push(case(
        "a locked database",
        error!(
            Failure::Storage(StorageError::Database {
                kind: DatabaseErrorKind::Busy,
                ..
            }),
            "database is locked", "transient"
        ),
        |fx| {
            let locker = LibsqlDatabase::open_file(fx.db.path())
                .unwrap()
                .connect()
                .unwrap();
            block_on(locker.execute("BEGIN IMMEDIATE", ())).unwrap();
            let episode = full_episode(50, TaskType::Other, context("locked", None));
            let result = fx.store(fx.storage.store_episode(&episode));
            if let Err(error) = &result {
                assert!(error.is_transient(), "{error}");
            }
            block_on(locker.execute("ROLLBACK", ())).unwrap();
            refused(result)
        },
    ));

    // --- Record payloads -------------------------------------------------------------------------
    cases.push(case(
        "SQL injection in every text field of episodes",
        Expect::Accepted("stored and read back verbatim, as bound parameters"),
        |fx| {
            for payload in INJECTION_PAYLOADS {
                episode_round_trip(fx, payload);
            }
            unchanged()
        },
    ));
    cases.push(case(
        "SQL injection in patterns, heuristics and filters",
        Expect::Accepted("stored verbatim; filters match the payload as a value"),
        |fx| {
            let mut ids = Vec::new();
            for payload in INJECTION_PAYLOADS {
                if let Outcome::Accepted(more) = pattern_and_heuristic_round_trip(fx, payload) {
                    ids.extend(more);
                }
            }
            added(ids)
        },
    ));
    cases.push(case(
        "a 10 MB description",
        Expect::Accepted("stored and read back whole"),
        |fx| {
            let mut episode = full_episode(60, TaskType::Documentation, context("big", None));
            episode.task_description = "0123456789abcdef".repeat(10 << 16);
            assert_eq!(episode.task_description.len(), 10 << 20);
            fx.store(fx.storage.store_episode(&episode)).unwrap();
            let read = fx
                .store(fx.storage.get_episode(episode.episode_id))
                .unwrap();
            assert!(
                read.as_ref() == Some(&episode),
                "the 10 MB description came back changed"
            );
            fx.store(fx.storage.delete_episode(episode.episode_id))
                .unwrap();
            unchanged()
        },
    ));
    cases.push(case(
        "NUL in every text field of an episode",
        Expect::Accepted("stored and read back byte for byte"),
        |fx| {
            episode_round_trip(fx, "\0");
            episode_round_trip(fx, "before\0after")
        },
    ));
    cases.push(case(
        "NUL in every text field of patterns and a heuristic",
        Expect::Accepted("stored and read back byte for byte"),
        |fx| pattern_and_heuristic_round_trip(fx, "nul\0inside"),
    ));
    cases.push(case(
        "Unicode in every text field of an episode",
        Expect::Accepted("stored and read back unchanged"),
        |fx| {
            episode_round_trip(
                fx,
                "héllo wörld 日本語 👩‍💻 \u{202E}rtl\u{202C} e\u{301} \u{10FFFF} \u{FEFF}",
            )
        },
    ));
    cases.push(case(
        "Unicode in every text field of patterns and a heuristic",
        Expect::Accepted("stored and read back unchanged"),
        |fx| {
            pattern_and_heuristic_round_trip(
                fx,
                "Ωμέγα \u{1F600} \"quotes\" 'single' \\ back\\slash",
            )
        },
    ));
    cases.push(case(
        "empty strings everywhere",
        Expect::Accepted("stored and read back as empty strings, not NULL"),
        |fx| episode_round_trip(fx, ""),
    ));
    cases.push(case(
        "timestamps at the ends of chrono's range",
        Expect::Accepted("stored as milliseconds and read back equal"),
        |fx| {
            let mut episode = full_episode(70, TaskType::Other, context("time", None));
            episode.start_time = DateTime::<Utc>::MIN_UTC;
            episode.end_time = Some(DateTime::<Utc>::MAX_UTC.trunc_subsecs(3));
            fx.store(fx.storage.store_episode(&episode)).unwrap();
            assert_eq!(
                fx.store(fx.storage.get_episode(episode.episode_id))
                    .unwrap(),
                Some(episode.clone())
            );
            fx.store(fx.storage.delete_episode(episode.episode_id))
                .unwrap();
            unchanged()
        },
    ));
    cases.push(case(
        "a step's parameters nested 101 levels deep",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "episode step parameters",
                ..
            }),
            "nested more than 100 levels", "could not be read back"
        ),
        |fx| {
            let mut episode = full_episode(82, TaskType::Other, context("deep", None));
            episode.steps[0].parameters = nested(101);
            refused(fx.store(fx.storage.store_episode(&episode)))
        },
    ));
    cases.push(case(
        "a step's parameters nested 100 levels deep",
        Expect::Accepted("stored, and read back whole"),
        |fx| {
            let mut episode = full_episode(83, TaskType::Other, context("deep", None));
            episode.steps[0].parameters = nested(100);
            fx.store(fx.storage.store_episode(&episode)).unwrap();
            assert_eq!(
                fx.store(fx.storage.get_episode(episode.episode_id))
                    .unwrap(),
                Some(episode.clone())
            );
            let listed = fx
                .store(fx.storage.query_episodes(&EpisodeQuery::default()))
                .unwrap();
            assert!(listed.iter().any(|e| e.episode_id == episode.episode_id));
            added([episode.episode_id])
        },
    ));
    cases.push(case(
        "a NaN reward total",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "episode reward total",
                ..
            }),
            "episode reward total", "NaN is not a finite number"
        ),
        |fx| {
            let mut episode = full_episode(80, TaskType::Other, context("nan", None));
            episode.reward.as_mut().unwrap().total = f32::NAN;
            refused(fx.store(fx.storage.store_episode(&episode)))
        },
    ));
    cases.push(case(
        "an infinite reward efficiency",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "episode reward efficiency",
                ..
            }),
            "inf is not a finite number"
        ),
        |fx| {
            let mut episode = full_episode(81, TaskType::Other, context("inf", None));
            episode.reward.as_mut().unwrap().efficiency = f32::INFINITY;
            refused(fx.store(fx.storage.store_episode(&episode)))
        },
    ));
    cases.push(case(
        "a -inf learning bonus",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "episode reward learning_bonus",
                ..
            }),
            "-inf is not a finite number"
        ),
        |fx| {
            let mut episode = full_episode(82, TaskType::Other, context("inf", None));
            episode.reward.as_mut().unwrap().learning_bonus = f32::NEG_INFINITY;
            refused(fx.store(fx.storage.store_episode(&episode)))
        },
    ));
    cases.push(case(
        "a batch with one NaN episode",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "episode reward base",
                ..
            }),
            "NaN"
        ),
        |fx| {
            let mut batch: Vec<Episode> = (0..3)
                .map(|i| full_episode(90 + i, TaskType::Other, context("batch", None)))
                .collect();
            batch[1].reward.as_mut().unwrap().base = f32::NAN;
            refused(fx.store(fx.storage.store_episodes(&batch)))
        },
    ));
    cases.push(case(
        "a NaN pattern success rate",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "pattern success_rate",
                ..
            }),
            "NaN"
        ),
        |fx| {
            refused(
                fx.store(
                    fx.storage
                        .store_pattern(&tool_sequence(context("nan", None), f32::NAN)),
                ),
            )
        },
    ));
    cases.push(case(
        "an infinite decision-point duration",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "pattern outcome_stats avg_duration_secs",
                ..
            }),
            "inf"
        ),
        |fx| {
            let mut pattern = text_patterns("x").swap_remove(1);
            if let Pattern::DecisionPoint { outcome_stats, .. } = &mut pattern {
                outcome_stats.avg_duration_secs = f32::INFINITY;
            }
            refused(fx.store(fx.storage.store_pattern(&pattern)))
        },
    ));
    cases.push(case(
        "a NaN heuristic confidence",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "heuristic confidence",
                ..
            }),
            "NaN"
        ),
        |fx| refused(fx.store(fx.storage.store_heuristic(&heuristic(f32::NAN)))),
    ));
    cases.push(case(
        "an infinite heuristic confidence",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "heuristic confidence",
                ..
            }),
            "inf"
        ),
        |fx| refused(fx.store(fx.storage.store_heuristic(&heuristic(f32::INFINITY)))),
    ));
    cases.push(case(
        "a NaN evidence success rate",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "heuristic evidence success_rate",
                ..
            }),
            "NaN"
        ),
        |fx| {
            let mut rule = heuristic(0.5);
            rule.evidence.success_rate = f32::NAN;
            refused(fx.store(fx.storage.store_heuristic(&rule)))
        },
    ));
    cases.push(case(
        "a NaN min_success_rate filter",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "pattern query min_success_rate",
                ..
            }),
            "NaN is not a threshold"
        ),
        |fx| {
            let query = PatternQuery {
                min_success_rate: Some(f32::NAN),
                ..PatternQuery::default()
            };
            refused(fx.store(fx.storage.query_patterns(&query)))
        },
    ));
    cases.push(case(
        "a NaN min_confidence",
        error!(
            Failure::Storage(StorageError::InvalidValue {
                field: "min_confidence",
                ..
            }),
            "NaN is not a threshold"
        ),
        |fx| refused(fx.store(fx.storage.get_heuristics(f32::NAN))),
    ));
    cases.push(case(
        "infinite query thresholds",
        Expect::Accepted("+inf matches nothing and -inf everything"),
        |fx| {
            let high = PatternQuery {
                min_success_rate: Some(f32::INFINITY),
                ..PatternQuery::default()
            };
            let low = PatternQuery {
                min_success_rate: Some(f32::NEG_INFINITY),
                ..PatternQuery::default()
            };
            let stored = fx.store(fx.storage.get_statistics()).unwrap();
            assert_eq!(fx.store(fx.storage.query_patterns(&high)).unwrap().len(), 0);
            assert_eq!(
                fx.store(fx.storage.query_patterns(&low)).unwrap().len(),
                stored.pattern_count
            );
            assert_eq!(
                fx.store(fx.storage.get_heuristics(f32::INFINITY))
                    .unwrap()
                    .len(),
                0
            );
            assert_eq!(
                fx.store(fx.storage.get_heuristics(f32::NEG_INFINITY))
                    .unwrap()
                    .len(),
                stored.heuristic_count
            );
            unchanged()
        },
    ));
    cases.push(case(
        "an episode id stored twice",
        Expect::Accepted("the second store replaces the first (an upsert)"),
        |fx| {
            let first = full_episode(100, TaskType::Testing, context("dup", None));
            let second = Episode {
                task_description: "replaced".into(),
                ..full_episode(101, TaskType::Debugging, context("dup2", None))
            };
            let second = Episode {
                episode_id: first.episode_id,
                ..second
            };
            fx.store(fx.storage.store_episode(&first)).unwrap();
            fx.store(fx.storage.store_episode(&second)).unwrap();
            assert_eq!(
                fx.store(fx.storage.get_episode(first.episode_id)).unwrap(),
                Some(second)
            );
            added([first.episode_id])
        },
    ));
    cases.push(case(
        "duplicate ids in one batch",
        Expect::Accepted("the last one of the batch wins"),
        |fx| {
            let first = full_episode(110, TaskType::Testing, context("dup", None));
            let last = Episode {
                episode_id: first.episode_id,
                task_description: "last".into(),
                ..first.clone()
            };
            fx.store(fx.storage.store_episodes(&[first.clone(), last.clone()]))
                .unwrap();
            assert_eq!(
                fx.store(fx.storage.get_episode(first.episode_id)).unwrap(),
                Some(last)
            );
            added([first.episode_id])
        },
    ));
    cases.push(case(
        "a pattern id and a heuristic id stored twice",
        Expect::Accepted("replaced, one row each"),
        |fx| {
            let pattern = tool_sequence(context("dup", None), 0.25);
            let Pattern::ToolSequence {
                id,
                context,
                avg_latency,
                ..
            } = pattern.clone()
            else {
                unreachable!()
            };
            let replacement = Pattern::ToolSequence {
                id,
                tools: vec!["other".into()],
                context,
                success_rate: 0.75,
                avg_latency,
                occurrence_count: 9,
            };
            let rule = heuristic(0.25);
            let replaced_rule = Heuristic {
                confidence: 0.75,
                action: "other".into(),
                ..rule.clone()
            };
            fx.store(fx.storage.store_pattern(&pattern)).unwrap();
            fx.store(fx.storage.store_pattern(&replacement)).unwrap();
            fx.store(fx.storage.store_heuristic(&rule)).unwrap();
            fx.store(fx.storage.store_heuristic(&replaced_rule))
                .unwrap();
            assert_eq!(
                fx.store(fx.storage.get_pattern(id)).unwrap(),
                Some(replacement)
            );
            assert_eq!(
                fx.store(fx.storage.get_heuristic(rule.heuristic_id))
                    .unwrap(),
                Some(replaced_rule)
            );
            added([id, rule.heuristic_id])
        },
    ));
    cases.push(case(
        "deleting an id that is not stored",
        Expect::Accepted("succeeds and changes nothing, twice"),
        |fx| {
            let missing = Uuid::new_v4();
            fx.store(fx.storage.delete_episode(missing)).unwrap();
            fx.store(fx.storage.delete_episode(missing)).unwrap();
            unchanged()
        },
    ));
    cases.push(case(
        "reading ids that are not stored",
        Expect::Accepted("None, not an error"),
        |fx| {
            let missing = Uuid::nil();
            assert_eq!(fx.store(fx.storage.get_episode(missing)).unwrap(), None);
            assert_eq!(fx.store(fx.storage.get_pattern(missing)).unwrap(), None);
            assert_eq!(fx.store(fx.storage.get_heuristic(missing)).unwrap(), None);
            unchanged()
        },
    ));
    cases.push(case(
        "query limits 0 and usize::MAX",
        Expect::Accepted("0 lists nothing; usize::MAX lists everything"),
        |fx| {
            let none = EpisodeQuery {
                limit: Some(0),
                ..EpisodeQuery::default()
            };
            let all = EpisodeQuery {
                limit: Some(usize::MAX),
                ..EpisodeQuery::default()
            };
            let stored = fx.store(fx.storage.get_statistics()).unwrap();
            assert_eq!(fx.store(fx.storage.query_episodes(&none)).unwrap().len(), 0);
            assert_eq!(
                fx.store(fx.storage.query_episodes(&all)).unwrap().len(),
                stored.episode_count
            );
            unchanged()
        },
    ));
    cases
}

/// A valid database file that this process may not write: reads work, a write fails.
fn read_only_file_case() -> Outcome {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-only.db");
    let url = format!("file:{}", path.display());
    let seeded = full_episode(0, TaskType::Other, context("ro", None));
    {
        let storage = build(&url, "").unwrap();
        block_on(async {
            storage.initialize_schema().await?;
            storage.store_episode(&seeded).await
        })
        .unwrap();
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The directory stays writable, for SQLite's -shm file: only the database is read-only.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    without_privileges(|| {
        let write = std::fs::OpenOptions::new().write(true).open(&path);
        assert!(
            write.is_err(),
            "the premise: this thread may not write {}",
            path.display()
        );
        let storage = build(&url, "").unwrap();
        let read = block_on(storage.get_episode(seeded.episode_id)).unwrap();
        assert_eq!(read, Some(seeded), "reads work");
        let other = full_episode(1, TaskType::Other, context("ro", None));
        refused(block_on(storage.store_episode(&other)))
    })
}

#[test]
fn every_bad_input_gets_a_typed_error_or_a_documented_behaviour() {
    let fixture = Fixture::new();
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut report = Vec::new();
    for case in &cases {
        let before = fixture.contents();
        let outcome = catch_unwind(AssertUnwindSafe(|| (case.run)(&fixture)))
            .unwrap_or_else(|_| panic!("case `{}` panicked", case.name));
        let added = match (&case.expect, outcome) {
            (Expect::Error(is_expected, says), Outcome::Failed(failure)) => {
                assert!(
                    is_expected(&failure),
                    "case `{}`: unexpected error {failure:?}",
                    case.name
                );
                let message = failure.to_string();
                for fragment in *says {
                    assert!(
                        message.contains(fragment),
                        "case `{}`: the message does not say `{fragment}`: {message}",
                        case.name
                    );
                }
                report.push(format!("{:<55} refused: {message}", case.name));
                Vec::new()
            }
            (Expect::Error(..), Outcome::Accepted(_)) => {
                panic!("case `{}` was accepted, but must be refused", case.name)
            }
            (Expect::Accepted(behaviour), Outcome::Accepted(ids)) => {
                report.push(format!("{:<55} accepted: {behaviour}", case.name));
                ids
            }
            (Expect::Accepted(_), Outcome::Failed(failure)) => {
                panic!(
                    "case `{}` must be accepted, but failed: {failure}",
                    case.name
                )
            }
        };
        let (after, removed) = without(fixture.contents(), &added);
        assert_eq!(
            removed,
            added.len(),
            "case `{}`: one row per record added",
            case.name
        );
        assert!(
            after == before,
            "case `{}` changed the storage's contents",
            case.name
        );
    }
    eprintln!("{} bad-input cases:\n{}", cases.len(), report.join("\n"));
}
