//! `bright spc`: the CSV/JSON contract other tools depend on, and one-line errors that name
//! the row.

use std::path::{Path, PathBuf};

use crate::support::run;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Ten monthly values (10, 11 alternating, then 50), given out of order with a blank line.
const SERIES: &str = "date,value\n\
    2024-10-01,50\n2024-01-01,10\n2024-02-01,11\n2024-03-01,10\n\n2024-04-01,11\n\
    2024-05-01,10\n2024-06-01,11\n2024-07-01,10\n2024-08-01,11\n2024-09-01,10\n";

fn spc(args: &[&str]) -> (bool, String, String) {
    let out = run(&[&["spc"], args].concat());
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn csv_output_has_the_contract_columns_in_date_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "s.csv", SERIES);
    let (ok, stdout, stderr) = spc(&["--input", input.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..9],
        [
            "date",
            "value",
            "rebase_group",
            "mean",
            "lpl",
            "upl",
            "point_type",
            "variation_icon",
            "assurance_icon"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0][0], "2024-01-01");
    assert_eq!(rows[9][0], "2024-10-01");
    // Mean 14.4, screened mean moving range 1: limits 11.74 and 17.06 (see the engine's
    // hand-worked case); the 10s and 11s are below the lower limit, 50 above the upper.
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert!((num(rows[0][3]) - 14.4).abs() < 1e-12);
    assert!((num(rows[0][4]) - 11.74).abs() < 1e-12);
    assert!((num(rows[0][5]) - 17.06).abs() < 1e-12);
    assert_eq!(rows[0][6], "special_cause_concern");
    assert_eq!(rows[9][6], "special_cause_improvement");
    // The icons repeat on every row; no target, so no assurance icon (an empty field).
    assert!(
        rows.iter()
            .all(|r| r[7] == "improvement_high" && r[8].is_empty())
    );
    // Ten points are a short segment: said on stderr, not mixed into the CSV.
    assert!(stderr.contains("fewer than 13"), "{stderr}");
}

#[test]
fn missing_values_and_undefined_limits_are_empty_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "s.csv",
        "date,value\n2024-01-01,5\n2024-01-02,\n",
    );
    let (ok, stdout, _) = spc(&["--input", input.to_str().unwrap()]);
    assert!(ok);
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    // One value: a mean, but no moving range and so no limits.
    assert_eq!(rows[0][1..6], ["5.0", "0", "5.0", "", ""]);
    assert_eq!(rows[1][1..6], ["", "0", "5.0", "", ""]);
    assert_eq!(rows[1][6], "common_cause");
}

#[test]
fn json_has_points_and_a_summary_with_icons_segments_and_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "s.csv", SERIES);
    let (ok, stdout, _) = spc(&[
        "--input",
        input.to_str().unwrap(),
        "--format",
        "json",
        "--improvement",
        "decrease",
        "--target",
        "20",
        "--rebase",
        "2024-06-01",
        "--rebase",
        "2023-01-01",
    ]);
    assert!(ok);
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 10);
    assert_eq!(points[4]["rebase_group"], 0);
    assert_eq!(points[5]["rebase_group"], 1);
    let summary = &body["summary"];
    assert_eq!(summary["improvement"], "decrease");
    let segments = summary["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[1]["start"], "2024-06-01");
    assert_eq!(segments[1]["rows"], 5);
    // Second segment: 11, 10, 11, 10, 50. Mean 18.4; ranges 1, 1, 1, 40: first mean 10.75,
    // the screen (35.1) drops 40, mean range 1: limits 15.74 and 21.06. The target of 20
    // lies between them, so assurance is inconsistent.
    assert!((segments[1]["mean"].as_f64().unwrap() - 18.4).abs() < 1e-12);
    assert!((segments[1]["upl"].as_f64().unwrap() - 21.06).abs() < 1e-12);
    assert_eq!(summary["assurance_icon"], "inconsistent");
    // 50 is above the upper limit: with "decrease" that is concern, high.
    assert_eq!(summary["variation_icon"], "concern_high");
    let warnings = summary["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("2023-01-01 matches no row"))
    );
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.as_str().unwrap().contains("trial limits"))
            .count(),
        2
    );
    assert_eq!(points[0]["value"], 10.0);
    assert!(
        points[0].get("outside_limits").is_some(),
        "flags are included"
    );
    assert!(summary["rebase_suggestion"].is_null());
    let narrative = summary["narrative"].as_str().unwrap();
    assert!(
        narrative.starts_with(
            "This measure shows special cause concern: the latest value, 50, is above"
        ),
        "{narrative}"
    );
}

#[test]
fn json_proposes_a_rebase_for_a_sustained_shift_and_narrates() {
    // Sixteen months around 10, then ten around 14 up to the latest month.
    let mut text = String::from("date,value\n");
    let values = [[9.0, 11.0].repeat(8), [13.0, 15.0].repeat(5)].concat();
    for (i, v) in values.iter().enumerate() {
        text.push_str(&format!("{}-{:02}-01,{v}\n", 2023 + i / 12, i % 12 + 1));
    }
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "s.csv", &text);
    let (ok, stdout, stderr) = spc(&[
        "--input",
        input.to_str().unwrap(),
        "--format",
        "json",
        "--title",
        "Discharges before noon",
        "--periods",
        "months",
    ]);
    assert!(ok, "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let suggestion = &body["summary"]["rebase_suggestion"];
    // Position 16 is May 2024; the new process has mean 14 and limits 14 ± 5.32.
    assert_eq!(suggestion["date"], "2024-05-01");
    assert_eq!(suggestion["points"], 10);
    assert_eq!(suggestion["side"], "above");
    assert!((suggestion["upl"].as_f64().unwrap() - 19.32).abs() < 1e-12);
    let narrative = body["summary"]["narrative"].as_str().unwrap();
    assert!(
        narrative.starts_with(
            "Discharges before noon shows special cause improvement: the last ten points are above the mean of"
        ),
        "{narrative}"
    );
}

#[test]
fn bad_input_fails_with_one_line_naming_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("value\n1\n", "the header must start 'date,value'"),
        (
            "date,value\n2024-01-01,1\n2024-13-01,2\n",
            "line 3: cannot read date '2024-13-01'",
        ),
        (
            "date,value\n2024-01-01,1\n2024-02-01,abc\n",
            "line 3: cannot read value 'abc'",
        ),
        (
            "date,value\n2024-01-01,1\n2024-02-01,2,3\n",
            "line 3: expected 2 fields",
        ),
        (
            "date,value\n2024-01-01,1\n2024-02-01,2\n2024-01-01,3\n",
            "duplicate date 2024-01-01 (lines 2 and 4)",
        ),
        (
            "date,value\n2024-01-01,inf\n",
            "line 2: cannot read value 'inf'",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let input = write(dir.path(), &format!("bad{i}.csv"), text);
        let (ok, stdout, stderr) = spc(&["--input", input.to_str().unwrap()]);
        assert!(!ok, "{text:?} was accepted");
        assert!(stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr} should say {expected}");
    }
    let input = write(dir.path(), "ok.csv", SERIES);
    let (ok, _, stderr) = spc(&[
        "--input",
        input.to_str().unwrap(),
        "--fix-after-n-points",
        "11",
    ]);
    assert!(!ok);
    assert!(stderr.contains("at least 12"), "{stderr}");
    let (ok, _, stderr) = spc(&["--input", input.to_str().unwrap(), "--improvement", "up"]);
    assert!(!ok);
    assert!(stderr.contains("increase, decrease or neutral"), "{stderr}");
}

#[test]
fn sql_spc_xmr_prints_exactly_what_bright_spc_prints() {
    // One trust's monthly type 1 four-hour performance from the A&E sample (NHS England).
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data-samples/ae_attendances.csv"
    ))
    .unwrap();
    let mut series: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1] == "RF4" && f[2] == "1").then(|| {
                let (att, br): (f64, f64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
                (f[0].to_string(), 1.0 - br / att)
            })
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(series.len(), 36);

    let dir = tempfile::tempdir().unwrap();
    let csv: String = std::iter::once("date,value\n".to_string())
        .chain(series.iter().map(|(d, v)| format!("{d},{v}\n")))
        .collect();
    let input = write(dir.path(), "rf4.csv", &csv);
    let (ok, from_cli, stderr) = spc(&[
        "--input",
        input.to_str().unwrap(),
        "--target",
        "0.95",
        "--rebase",
        "2018-04-01",
    ]);
    assert!(ok, "{stderr}");

    let rows: Vec<String> = series
        .iter()
        .map(|(d, v)| format!("(DATE ''{d}'', {v})"))
        .collect();
    let sql = format!(
        "SELECT * FROM spc_xmr('SELECT d, v FROM (VALUES {}) AS t(d, v)', 'increase', 0.95, '2018-04-01') ORDER BY date",
        rows.join(", ")
    );
    let lake = crate::support::small_lake().to_str().unwrap();
    let from_sql = crate::support::ok(&["sql", &sql, "--lake", lake, "--format", "csv"]);
    assert_eq!(from_sql, from_cli);
    assert!(
        from_cli.contains(",fail,"),
        "95% is above this trust's upper limit"
    );
}
