//! `benches/compare.sh --check` at trust scale, inside the test suite: bright, DuckDB and
//! Polars run the whole comparison suite once over one simulated trust and must give the same
//! answers. Times are printed by the harness and never asserted here.

use std::path::Path;
use std::process::Command;

use bright_engine::lake::Lake;
use bright_sim::SimConfig;
use bright_sim::lake_sink::{generate_into_lake, simulation_key};

#[test]
fn bright_duckdb_and_polars_agree_on_the_comparison_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake_dir = dir.path().join("lake");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let lake = Lake::open(lake_dir.to_str().expect("utf-8")).expect("lake");
        let end = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let config = SimConfig::new(42, 60, end);
        generate_into_lake(config, simulation_key(42), &lake, Box::new(|_| {}))
            .await
            .expect("simulates");
    });

    let runner = Path::new(env!("CARGO_BIN_EXE_bright-compare"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/compare.sh");
    let mut command = Command::new(script);
    command
        .args(["--scale", "trust", "--check", "--lake"])
        .arg(&lake_dir)
        .env("BRIGHT_COMPARE_BIN", runner.parent().expect("a folder"));
    let out = command.output().expect("compare.sh runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the engines disagree or the harness failed (run the tests with scripts/test, which \
         installs duckdb and polars):\n{stderr}"
    );
    // Every group ran in every engine that could run it, and bright ran every query.
    for group in [
        "kpi_full",
        "kpi_open_day",
        "kpi_site_month",
        "kpi_trust_month",
        "adhoc",
    ] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(group) && l.contains("geomean"))
            .unwrap_or_else(|| panic!("no summary for {group}:\n{stderr}"));
        assert!(
            !line.contains("bright —"),
            "bright did not finish {group}: {line}"
        );
        assert!(
            !line.contains(" 0 queries"),
            "nothing compared in {group}: {line}"
        );
    }
    // A day of ticks ran both ways, and serving's compaction merged files.
    let compacted = stderr
        .lines()
        .find(|l| l.starts_with("day compacted:"))
        .unwrap_or_else(|| panic!("no day of ticks:\n{stderr}"));
    assert!(!compacted.contains(" 0 files merged"), "{compacted}");
    assert!(
        stderr.lines().any(|l| l.starts_with("day not compacted:")),
        "{stderr}"
    );
    assert!(!stderr.contains("DISAGREE"), "{stderr}");
}
