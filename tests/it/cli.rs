//! `bright sql`, `bright lake` and `bright generate` as a user runs them.

use crate::support::{ok, run, small_lake};

#[test]
fn sql_prints_csv_json_and_tables() {
    let lake = small_lake().to_str().unwrap();
    let query = "SELECT ward_type, count(*) AS wards, sum(beds) AS beds FROM beds GROUP BY ward_type ORDER BY ward_type";
    let csv = ok(&["sql", query, "--lake", lake, "--format", "csv"]);
    // A winter lake: the bed base includes the medical wards' escalation beds (17 wards × 2).
    assert_eq!(
        csv,
        "ward_type,wards,beds\n\
         critical_care,1,16\n\
         day_case,2,30\n\
         general_acute,32,770\n\
         maternity,2,52\n\
         paediatric,1,22\n"
    );
    let json = ok(&["sql", query, "--lake", lake, "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[2]["ward_type"], "general_acute");
    assert_eq!(rows[2]["beds"], 770);
    let table = ok(&["sql", query, "--lake", lake]);
    assert!(
        table.contains("| general_acute | 32    | 770  |"),
        "{table}"
    );
}

#[test]
fn a_bad_query_fails_with_one_line_naming_the_problem() {
    let lake = small_lake().to_str().unwrap();
    let out = run(&["sql", "SELECT nonsense FROM beds", "--lake", lake]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("nonsense"), "{stderr}");
    assert!(out.stdout.is_empty());

    let out = run(&["sql", "DELETE FROM beds", "--lake", lake]);
    assert!(!out.status.success(), "SQL is read-only");

    // Regression: causes were printed two or three times over ("Error during planning: DML
    // not supported: COPY: Error during planning: DML not supported: COPY").
    for sql in [
        "COPY beds TO '/tmp/bright-copy-test.csv'",
        "SELECT nonsense FROM beds",
    ] {
        let out = run(&["sql", sql, "--lake", lake]);
        assert!(!out.status.success(), "{sql}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let causes: Vec<&str> = stderr
            .trim_start_matches("error: ")
            .trim_end()
            .split(": ")
            .collect();
        for (i, cause) in causes.iter().enumerate() {
            let later = causes[i + 1..].join(": ");
            assert!(
                cause.len() < 8 || !later.contains(cause),
                "'{cause}' said twice in: {stderr}"
            );
        }
    }
}

#[test]
fn sql_on_a_missing_lake_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "sql",
        "SELECT 1",
        "--lake",
        dir.path().join("nowhere").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no lake tables"), "{stderr}");
}

#[test]
fn lake_tables_lists_every_table_with_rows_and_files() {
    let lake = small_lake().to_str().unwrap();
    let listing = ok(&["lake", "tables", "--lake", lake]);
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        names,
        [
            "adt_events",
            "ed_attendances",
            "theatre_sessions",
            "theatre_events",
            "beds",
            "workforce_shifts",
            "finance_ledger",
            "dq_issues",
            "annotations",
            "theatre_reports",
            "alerts",
            "audit_log"
        ]
    );
    let count = |table: &str| -> u64 {
        let sql = format!("SELECT count(*) FROM {table}");
        ok(&["sql", &sql, "--lake", lake, "--format", "csv"])
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    for row in &rows {
        let rows_listed: u64 = row[2].parse().unwrap();
        assert_eq!(rows_listed, count(row[0]), "{}", row[0]);
    }
    // What ingest would have refused on the way, as the simulator notes it.
    let issues: u64 = rows[7][2].parse().unwrap();
    assert!((1..200).contains(&issues), "dq_issues: {issues}");
}

#[test]
fn generate_refuses_to_mix_lake_and_files_and_checks_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "generate",
        "--out",
        dir.path().join("feeds").to_str().unwrap(),
        "--lake",
        dir.path().join("lake").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let out = run(&[
        "generate",
        "--days",
        "0",
        "--lake",
        dir.path().join("l").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("days must be at least 1"));
}

#[test]
fn users_are_added_listed_given_a_password_and_removed() {
    use std::io::Write;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("users.sqlite3");
    let db = db.to_str().unwrap();
    let added = ok(&["users", "add", "j.smith", "--role", "manager", "--db", db]);
    let password = added
        .lines()
        .find_map(|l| l.strip_prefix("One-time password: "))
        .expect("a one-time password");
    assert_eq!(password.len(), 20, "{added}");
    let listed = ok(&["users", "list", "--db", db]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("j.smith") && l.contains("manager")),
        "{listed}"
    );
    assert!(!listed.contains(password));

    // A chosen password from standard input, as a script would set it.
    let mut child = crate::support::bright()
        .args(["users", "passwd", "j.smith", "--password-stdin", "--db", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a passphrase of our own\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("One-time"));

    let refused = run(&["users", "add", "j.smith", "--role", "boss", "--db", db]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown role 'boss'"));
    let twice = run(&["users", "add", "j.smith", "--role", "viewer", "--db", db]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already a user 'j.smith'"));

    ok(&["users", "remove", "j.smith", "--db", db]);
    assert!(!ok(&["users", "list", "--db", db]).contains("j.smith"));
    let gone = run(&["users", "remove", "j.smith", "--db", db]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no user 'j.smith'"));
}
