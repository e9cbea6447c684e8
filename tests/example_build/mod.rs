//! Builds an example of this package for a test that runs it, reusing what `cargo test` already built.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The features this test binary was built with, so that building the example reuses its artifacts.
fn features() -> String {
    let all = [
        ("libsql", cfg!(feature = "libsql")),
        ("tokio", cfg!(feature = "tokio")),
        ("smol", cfg!(feature = "smol")),
        ("tracing", cfg!(feature = "tracing")),
        ("metrics", cfg!(feature = "metrics")),
        ("remote", cfg!(feature = "remote")),
        ("replica", cfg!(feature = "replica")),
        ("r2d2", cfg!(feature = "r2d2")),
    ];
    let on: Vec<&str> = all.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect();
    on.join(",")
}

/// Builds the example `name` (a no-op when it is fresh) and returns the path of its binary.
///
/// # Panics
/// If the build fails.
pub fn example(name: &'static str) -> &'static Path {
    static BUILT: OnceLock<Mutex<Vec<(&'static str, &'static Path)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| *n == name) {
        return path;
    }
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", name])
        .args(["--no-default-features", "--features", &features()])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    // Cargo gives this test the package's variables (CARGO_MANIFEST_DIR, CARGO_PKG_*). Some
    // dependencies' build scripts read them, so passing them on would rebuild the whole tree under
    // other fingerprints than the ones `cargo test` made.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        let from_cargo_test = var.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&var.as_ref());
        if from_cargo_test {
            build.env_remove(var.as_ref());
        }
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building the {name} example failed");
    let mut path: PathBuf = std::env::current_exe().expect("the test binary's path");
    path.pop(); // deps/
    path.pop(); // the profile directory
    path.push("examples");
    path.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let path: &'static Path = Box::leak(path.into_boxed_path());
    built.push((name, path));
    path
}
