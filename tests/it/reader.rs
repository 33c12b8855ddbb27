//! An independent reader agrees with bright: Python deltalake + DuckDB read the same lake and
//! get the same row counts and the same answer to an aggregate query.

use std::process::Command;

use crate::moto::python;
use crate::support::{ok, small_lake};

#[test]
fn python_deltalake_and_duckdb_agree_with_bright() {
    let lake = small_lake().to_str().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/reader.py");
    let out = Command::new(python())
        .args([script, lake])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "the independent reader failed (run the tests with scripts/test, which installs \
         deltalake and duckdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    for (table, count) in theirs["counts"].as_object().unwrap() {
        let ours = ok(&[
            "sql",
            &format!("SELECT count(*) AS n FROM {table}"),
            "--lake",
            lake,
            "--format",
            "json",
        ]);
        let ours: serde_json::Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(&ours[0]["n"], count, "{table} row count");
    }
    assert!(theirs["counts"]["ed_attendances"].as_u64().unwrap() > 10_000);

    let ours = ok(&[
        "sql",
        "SELECT disposal, count(*) AS n, \
                sum(CASE WHEN departure_time - arrival_time <= INTERVAL '4 hours' THEN 1 ELSE 0 END) AS within_4h, \
                count(DISTINCT patient_key) AS patients \
         FROM ed_attendances WHERE disposal IS NOT NULL GROUP BY disposal ORDER BY disposal",
        "--lake",
        lake,
        "--format",
        "json",
    ]);
    let ours: Vec<serde_json::Value> = serde_json::from_str(&ours).unwrap();
    let ours: Vec<serde_json::Value> = ours
        .iter()
        .map(|r| serde_json::json!([r["disposal"], r["n"], r["within_4h"], r["patients"]]))
        .collect();
    assert_eq!(serde_json::Value::Array(ours), theirs["ed"]);
}
