//! The loadtest example as a user runs it: its report, its JSON output, and its answers to bad arguments.
#![cfg(all(feature = "libsql", feature = "tokio"))]

mod example_build;

use std::process::{Command, Output};

fn loadtest() -> Command {
    Command::new(example_build::example("loadtest"))
}

fn run(args: &[&str]) -> Output {
    loadtest().args(args).output().expect("the loadtest runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SMALL: &[&str] = &["--ops", "400", "--tasks", "4", "--rows", "100"];

#[test]
fn the_report_has_throughput_percentiles_errors_and_pool_statistics() {
    let output = run(SMALL);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    for field in [
        "throughput (ok ops/s)",
        "p50 latency",
        "p95 latency",
        "p99 latency",
        "max latency",
        "failed operations",
        "pool statistics of this crate",
        "connections created",
        "checkouts",
    ] {
        assert!(stdout.contains(field), "missing `{field}` in:\n{stdout}");
    }
    let throughput: f64 = stdout
        .lines()
        .find(|l| l.starts_with("throughput"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("a throughput figure");
    assert!(throughput > 0.0, "{stdout}");
}

#[test]
fn json_output_parses_and_is_consistent() {
    let mut args = SMALL.to_vec();
    args.extend(["--json", "--compare", "old", "--runtime", "threads"]);
    let output = run(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("valid JSON on stdout");
    assert_eq!(report["config"]["ops"], 400);
    assert_eq!(report["config"]["runtime"], "thread");
    let ours = &report["runs"][0];
    assert_eq!(ours["name"], "this crate");
    assert_eq!(ours["ops"], 400);
    assert_eq!(ours["failed"], 0, "{ours}");
    assert_eq!(ours["succeeded"], 400);
    let latency = &ours["latency_us"];
    let p = |q: &str| latency[q].as_u64().unwrap();
    assert!(
        p("p50") <= p("p95") && p("p95") <= p("p99") && p("p99") <= p("max"),
        "{latency}"
    );
    let created = ours["pool"]["connections created"].as_u64().unwrap();
    assert!(
        (1..=8).contains(&created),
        "a pool of 8 opened {created} read connections"
    );
    assert_eq!(ours["pool"]["write lane connections"], 1);
    let old = &report["runs"][1];
    assert_eq!(old["name"], "old design");
    assert_eq!(old["ops"], 400);
    assert!(
        old["pool"]["connections created"].as_u64().unwrap() >= 400,
        "one per checkout: {old}"
    );
    assert!(report["ratio"]["throughput"].as_f64().unwrap() > 0.0);
}

#[test]
fn storage_and_mixed_workloads_run_without_errors() {
    for workload in ["storage", "mixed"] {
        let mut args = SMALL.to_vec();
        args.extend(["--json", "--workload", workload]);
        let output = run(&args);
        assert!(
            output.status.success(),
            "{workload}: {}",
            text(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
        assert_eq!(report["config"]["workload"], workload);
        assert_eq!(
            report["runs"][0]["succeeded"], 400,
            "{workload}: {}",
            report["runs"][0]
        );
    }
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--read-ratio", "2"], "outside 0.0..=1.0"),
        (&["--read-ratio", "most"], "not a number"),
        (&["--tasks", "0"], "--tasks"),
        (&["--ops=0"], "--ops"),
        (&["--ops=-5"], "--ops"),
        (&["--workload", "everything"], "possible values"),
        (&["--runtime", "go"], "possible values"),
        (&["--duration", "5 parsecs"], "unit"),
        (&["--compare", "new"], "possible values"),
        (&["--url", "ftp://example.com/db"], "ftp"),
        (
            &["--url", ":memory:", "--compare", "old"],
            "--compare old needs a local database file",
        ),
        (&["--no-such-option"], "unexpected argument"),
        (
            &["--workload", "storage", "--compare", "old"],
            "needs --workload point",
        ),
    ];
    for (args, expected) in cases {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn help_explains_every_option() {
    let output = run(&["--help"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success());
    for option in [
        "--url",
        "--token",
        "--tasks",
        "--ops",
        "--pool-size",
        "--read-ratio",
        "--workload",
        "--runtime",
        "--duration",
        "--json",
        "--compare",
        "--keep",
    ] {
        assert!(stdout.contains(option), "--help lacks {option}:\n{stdout}");
    }
}
