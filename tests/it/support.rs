//! Running the built `bright` binary and preparing a small lake once per test binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The binary under test.
pub fn bright() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bright"))
}

/// Runs `bright args…` and returns its output.
pub fn run(args: &[&str]) -> Output {
    bright().args(args).output().expect("bright runs")
}

/// Stdout of a command that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "bright {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A lake with 45 days of the simulated trust (seed 3), made once and shared (read-only) by
/// the tests of this binary.
pub fn small_lake() -> &'static Path {
    static LAKE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lake");
        ok(&[
            "generate",
            "--days",
            "45",
            "--seed",
            "3",
            "--end",
            "2025-03-01",
            "--lake",
            path.to_str().unwrap(),
        ]);
        (dir, path)
    });
    path
}
