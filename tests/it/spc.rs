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

/// The columns `bright spc --chart` starts with, whatever the chart.
const CHART_COLUMNS: [&str; 15] = [
    "date",
    "value",
    "rebase_group",
    "mean",
    "lpl",
    "upl",
    "lower_two_sigma",
    "upper_two_sigma",
    "outside_limits",
    "useful_points",
    "longest_run",
    "longest_run_limit",
    "crossings",
    "crossings_limit",
    "runs_signal",
];

/// CSV output as a header and rows of fields looked up by name.
pub(crate) struct Table {
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let split = |l: &str| l.split(',').map(str::to_string).collect::<Vec<_>>();
        let header = split(lines.next().unwrap_or_default());
        Table {
            header,
            rows: lines.map(split).collect(),
        }
    }

    pub(crate) fn get(&self, row: usize, name: &str) -> &str {
        let at = self.header.iter().position(|h| h == name).expect(name);
        &self.rows[row][at]
    }

    fn num(&self, row: usize, name: &str) -> f64 {
        let text = self.get(row, name);
        text.parse()
            .unwrap_or_else(|_| panic!("{name} on row {row} is '{text}'"))
    }
}

fn chart(dir: &Path, kind: &str, text: &str, extra: &[&str]) -> (Table, String) {
    let input = write(dir, &format!("{kind}.csv"), text);
    let (ok, stdout, stderr) = spc(&[
        &["--chart", kind, "--input", input.to_str().unwrap()],
        extra,
    ]
    .concat());
    assert!(ok, "{kind}: {stderr}");
    (Table::parse(&stdout), stderr)
}

#[test]
fn every_chart_type_prints_the_shared_columns_one_row_per_input_row() {
    let dir = tempfile::tempdir().unwrap();
    let values = "date,value\n2024-01-01,4\n2024-02-01,7\n2024-03-01,5\n2024-04-01,9\n";
    let rates = "date,numerator,denominator\n\
        2024-01-01,4,40\n2024-02-01,7,50\n2024-03-01,5,45\n2024-04-01,9,60\n";
    for kind in ["xmr", "mr", "p", "pp", "u", "up", "c", "g", "t", "run"] {
        let input = if ["p", "pp", "u", "up"].contains(&kind) {
            rates
        } else {
            values
        };
        let (table, _) = chart(dir.path(), kind, input, &[]);
        assert_eq!(table.header[..15], CHART_COLUMNS, "{kind}");
        assert_eq!(table.rows.len(), 4, "{kind}");
        assert!((0..4).all(|r| table.get(r, "chart") == kind), "{kind}");
    }
}

#[test]
fn a_p_chart_by_hand_with_a_zero_denominator_and_a_missing_value() {
    // 3/10, 1/0, –/10, 4/10: p̄ = 7/20 = 0.35, σ = √(0.35 × 0.65 / 10); the zero
    // denominator and the missing numerator are gaps with no lines, and stderr says which
    // line had no denominator.
    let dir = tempfile::tempdir().unwrap();
    let (t, stderr) = chart(
        dir.path(),
        "p",
        "date,numerator,denominator\n\
         2024-01-01,3,10\n2024-02-01,1,0\n2024-03-01,,10\n2024-04-01,4,10\n",
        &[],
    );
    let sigma = (0.35f64 * 0.65 / 10.0).sqrt();
    assert!((t.num(0, "mean") - 0.35).abs() < 1e-15);
    assert!((t.num(0, "upl") - (0.35 + 3.0 * sigma)).abs() < 1e-15);
    assert_eq!(t.num(0, "lpl"), 0.0);
    assert!((t.num(3, "lower_two_sigma") - (0.35 - 2.0 * sigma)).abs() < 1e-15);
    assert!((t.num(0, "value") - 0.3).abs() < 1e-15);
    for gap in [1, 2] {
        for name in ["value", "lpl", "upl", "lower_two_sigma", "upper_two_sigma"] {
            assert_eq!(t.get(gap, name), "", "{name} on row {gap}");
        }
        assert_eq!(t.get(gap, "outside_limits"), "false");
    }
    assert_eq!(t.get(0, "useful_points"), "2");
    assert_eq!(t.get(0, "centre_line"), "pooled");
    assert!(stderr.contains("line 3: no denominator"), "{stderr}");
}

#[test]
fn a_run_chart_exactly_at_its_limits_and_one_past() {
    // Ten useful points (9s above, 1s below, the 5s on the median set aside): a run of 6
    // and 2 crossings are exactly the limits, no signal; a run of 7 signals.
    let dir = tempfile::tempdir().unwrap();
    let series = |sides: &str, on_median: usize| {
        let mut text = String::from("date,value\n");
        let values = sides
            .chars()
            .map(|c| if c == '+' { "9" } else { "1" })
            .chain(std::iter::repeat_n("5", on_median));
        for (day, v) in values.enumerate() {
            text.push_str(&format!("2024-01-{:02},{v}\n", day + 1));
        }
        text
    };
    let (t, _) = chart(dir.path(), "run", &series("++------++", 3), &[]);
    assert_eq!(t.num(0, "mean"), 5.0);
    for name in ["lpl", "upl", "lower_two_sigma", "upper_two_sigma"] {
        assert_eq!(t.get(0, name), "", "{name}");
    }
    let runs = |t: &Table| {
        [
            "useful_points",
            "longest_run",
            "longest_run_limit",
            "crossings",
            "crossings_limit",
            "runs_signal",
        ]
        .map(|n| t.get(12, n).to_string())
    };
    assert_eq!(runs(&t), ["10", "6", "6", "2", "2", "false"]);
    let (t, _) = chart(dir.path(), "run", &series("+-------++", 5), &[]);
    assert_eq!(runs(&t), ["10", "7", "6", "2", "2", "true"]);
}

#[test]
fn rebase_and_a_fixed_baseline_apply_per_group_to_every_chart() {
    // c chart: 2, 4, 6, 20, 22 with the first three as baseline: c̄ = 4, limits 0 and 10;
    // the run analysis still covers all five. Rebased at the fourth row, each group has
    // its own centre: 4 and 21.
    let dir = tempfile::tempdir().unwrap();
    let text = "date,value\n2024-01-01,2\n2024-02-01,4\n2024-03-01,6\n2024-04-01,20\n\
                2024-05-01,22\n";
    let (t, _) = chart(dir.path(), "c", text, &["--fix-after-n-points", "3"]);
    assert_eq!(
        (t.num(4, "mean"), t.num(4, "lpl"), t.num(4, "upl")),
        (4.0, 0.0, 10.0)
    );
    assert_eq!(t.get(4, "outside_limits"), "true");
    assert_eq!(t.get(0, "useful_points"), "4");
    let (t, _) = chart(dir.path(), "c", text, &["--rebase", "2024-04-01"]);
    assert_eq!((t.num(0, "mean"), t.num(3, "mean")), (4.0, 21.0));
    assert_eq!(
        (t.get(0, "rebase_group"), t.get(3, "rebase_group")),
        ("0", "1")
    );
    assert_eq!(
        (t.get(0, "useful_points"), t.get(3, "useful_points")),
        ("2", "2")
    );
}

#[test]
fn xmr_keeps_its_columns_without_chart_and_shares_its_numbers_with_chart() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "s.csv", SERIES);
    let (ok, plain, _) = spc(&["--input", input.to_str().unwrap()]);
    assert!(ok);
    let plain = Table::parse(&plain);
    assert_eq!(plain.header[6], "point_type");
    let (shared, _) = chart(dir.path(), "xmr", SERIES, &[]);
    for row in 0..10 {
        for name in ["date", "value", "mean", "lpl", "upl", "point_type"] {
            assert_eq!(plain.get(row, name), shared.get(row, name), "{name} {row}");
        }
    }
    // Two-sigma lines are Making Data Count's close-to-limit lines: mean 14.4, screened
    // MR̄ 1, so 14.4 ± 2 × (2.66 / 3).
    let close = 2.0 * (2.66 / 3.0);
    assert!((shared.num(0, "upper_two_sigma") - (14.4 + close)).abs() < 1e-12);
}

#[test]
fn charts_refuse_values_they_cannot_take_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "t",
            "date,value\n2024-01-01,3\n2024-01-02,0\n",
            "line 3: this point is not above zero",
        ),
        (
            "c",
            "date,value\n2024-01-01,-1\n",
            "line 2: this point is negative",
        ),
        (
            "p",
            "date,numerator,denominator\n2024-01-01,11,10\n",
            "line 2: this point has a numerator above its denominator",
        ),
        (
            "u",
            "date,numerator,denominator\n2024-01-01,1,-10\n",
            "line 2: this point has a negative denominator",
        ),
        (
            "p",
            "date,value\n2024-01-01,1\n",
            "name the numerator and denominator columns",
        ),
        (
            "u",
            "date,numerator,denominator\n2024-01-01,x,3\n",
            "line 2: cannot read numerator 'x'",
        ),
    ];
    for (i, (kind, text, expected)) in cases.iter().enumerate() {
        let input = write(dir.path(), &format!("bad{i}.csv"), text);
        let (ok, stdout, stderr) = spc(&["--chart", kind, "--input", input.to_str().unwrap()]);
        assert!(!ok, "{kind} {text:?} was accepted");
        assert!(stdout.is_empty());
        assert!(stderr.contains(expected), "{stderr} should say {expected}");
    }
    let input = write(dir.path(), "ok.csv", SERIES);
    let (ok, _, stderr) = spc(&[
        "--chart",
        "mr",
        "--input",
        input.to_str().unwrap(),
        "--fix-after-n-points",
        "0",
    ]);
    assert!(!ok);
    assert!(stderr.contains("at least 1 for an mR chart"), "{stderr}");
}

#[test]
fn chart_json_has_points_and_each_groups_run_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "g.csv",
        "date,value\n2024-01-01,0\n2024-02-01,1\n2024-03-01,2\n2024-04-01,3\n2024-05-01,14\n",
    );
    let (ok, stdout, stderr) = spc(&[
        "--chart",
        "g",
        "--input",
        input.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(ok, "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    // The g chart draws the median (2) and takes its limits from the mean (4).
    assert_eq!(points[0]["mean"], 2.0);
    assert_eq!(points[0]["centre_line"], "median");
    let upl = points[0]["upl"].as_f64().unwrap();
    assert!((upl - (4.0 + 3.0 * 20f64.sqrt())).abs() < 1e-12);
    let summary = &body["summary"];
    assert_eq!(summary["chart"], "g");
    let group = &summary["groups"][0];
    assert_eq!(group["useful_points"], 4);
    assert_eq!(group["longest_run"], 2);
    assert_eq!(group["runs_signal"], false);
    assert!(summary["narrative"].as_str().is_some_and(|n| !n.is_empty()));
}
