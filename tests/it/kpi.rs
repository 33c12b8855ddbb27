//! `bright kpi list|show|run|check` and KPI views in `bright sql`, over the generated lake.

use crate::spc::Table;
use crate::support::{bright, ok, run, small_lake};

#[test]
fn list_and_show_describe_the_catalogue() {
    let list = ok(&["kpi", "list"]);
    let ids: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(ids.len() >= 25, "{list}");
    for id in [
        "ed_4h_performance",
        "bed_occupancy_ga",
        "theatre_utilisation_capped",
    ] {
        assert!(ids.contains(&id), "{id} missing from:\n{list}");
    }
    let line = list
        .lines()
        .find(|l| l.starts_with("ed_4h_performance "))
        .expect("listed");
    assert!(line.contains(" 78% ") && line.contains(" p "), "{line}");

    let show = ok(&["kpi", "show", "theatre_late_starts"]);
    for expected in [
        "view         kpi.theatre_late_starts",
        "breakdowns   org_code, site, theatre, specialty",
        "parameters   late_start_grace_min = 15 minutes, verify locally",
        "FROM kpi.theatre_lists",
    ] {
        assert!(
            show.contains(expected),
            "'{expected}' missing from:\n{show}"
        );
    }
    let out = run(&["kpi", "show", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown KPI 'nope'"), "{stderr}");
}

#[test]
fn check_plans_every_kpi_against_the_lake() {
    let lake = small_lake().to_str().unwrap();
    let out = ok(&["kpi", "check", "--lake", lake]);
    assert!(out.contains("KPIs and 9 helper views plan"), "{out}");
}

#[test]
fn run_gives_the_series_spc_reads_and_agrees_with_the_raw_rows() {
    let lake = small_lake().to_str().unwrap();
    // February is GMT, so the trust's day is the stored UTC day and a plain query over the
    // raw rows, written independently, must give the same counts.
    let series = ok(&[
        "kpi",
        "run",
        "ed_4h_performance",
        "--lake",
        lake,
        "--from",
        "2025-02-01",
        "--to",
        "2025-02-08",
        "--format",
        "csv",
    ]);
    let mut lines = series.lines();
    assert_eq!(lines.next(), Some("date,value,numerator,denominator"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 7, "{series}");
    // Regression: `bright spc --input` refused this output ("the header must be 'date,value'").
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ed_4h.csv");
    std::fs::write(&file, &series).expect("writes");
    let chart = ok(&["spc", "--input", file.to_str().expect("utf-8")]);
    let charted: Vec<&str> = chart.lines().skip(1).collect();
    assert_eq!(charted.len(), 7, "{chart}");
    for (point, row) in charted.iter().zip(&rows) {
        assert!(
            point.starts_with(&format!("{},", row[0])),
            "{point} vs {row:?}"
        );
    }
    let raw = ok(&[
        "sql",
        "SELECT arrival_date, \
           sum(CASE WHEN departure_time <= arrival_time + INTERVAL '4 hours' THEN 1 ELSE 0 END), \
           count(departure_time) \
         FROM ed_attendances WHERE arrival_date BETWEEN DATE '2025-02-01' AND DATE '2025-02-07' \
         GROUP BY arrival_date ORDER BY arrival_date",
        "--lake",
        lake,
        "--format",
        "csv",
    ]);
    let raw: Vec<Vec<&str>> = raw
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    for (kpi, raw) in rows.iter().zip(&raw) {
        assert_eq!(kpi[0], raw[0]);
        assert_eq!(
            kpi[2].parse::<f64>().unwrap(),
            raw[1].parse::<f64>().unwrap(),
            "{kpi:?}"
        );
        assert_eq!(
            kpi[3].parse::<f64>().unwrap(),
            raw[2].parse::<f64>().unwrap(),
            "{kpi:?}"
        );
        let value: f64 = kpi[1].parse().unwrap();
        let pooled = raw[1].parse::<f64>().unwrap() / raw[2].parse::<f64>().unwrap();
        assert!((value - pooled).abs() < 1e-12, "{kpi:?}");
    }

    let by_site = ok(&[
        "kpi",
        "run",
        "ed_attendances",
        "--lake",
        lake,
        "--from",
        "2025-02-01",
        "--to",
        "2025-02-02",
        "--by",
        "site",
        "--format",
        "csv",
    ]);
    assert!(
        by_site.starts_with("date,site,value,numerator,denominator\n"),
        "{by_site}"
    );
    let sites = ok(&[
        "sql",
        "SELECT count(DISTINCT site) FROM ed_attendances WHERE arrival_date = DATE '2025-02-01'",
        "--lake",
        lake,
        "--format",
        "csv",
    ]);
    let sites: usize = sites.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        by_site.lines().count(),
        1 + sites,
        "one row per ED site:\n{by_site}"
    );

    let out = run(&[
        "kpi",
        "run",
        "ed_attendances",
        "--lake",
        lake,
        "--by",
        "ward",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no breakdown 'ward'"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn analysts_query_kpi_views_with_sql() {
    let lake = small_lake().to_str().unwrap();
    let out = ok(&[
        "sql",
        "SELECT count(DISTINCT ward) FROM kpi.bed_occupancy_ga WHERE value > 0",
        "--lake",
        lake,
        "--format",
        "csv",
    ]);
    let wards: u32 = out.lines().nth(1).unwrap().parse().unwrap();
    assert!(wards >= 20, "{out}");
}

/// DuckDB runs the catalogue's SQL files over the lake's Parquet files (bright's four SQL
/// functions given as DuckDB macros) and must get every KPI's series exactly as bright does:
/// an independent engine checks the queries, the functions and the roll-up.
#[test]
fn duckdb_running_the_same_sql_agrees_on_every_kpi() {
    use std::collections::BTreeMap;
    use std::process::Command;

    let lake = small_lake().to_str().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(crate::moto::python())
        .args([
            &format!("{root}/benches/kpi_duckdb.py"),
            lake,
            &format!("{root}/queries"),
            "--results",
        ])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "DuckDB failed (run the tests with scripts/test, which installs duckdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    type Key = (String, String);
    let parse = |v: &serde_json::Value| (v["numerator"].as_f64(), v["denominator"].as_f64());
    let mut theirs: BTreeMap<Key, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (
            v["kpi"].as_str().unwrap().to_string(),
            v["period"].as_str().unwrap().to_string(),
        );
        theirs.insert(key, parse(&v));
    }

    let catalogue = bright_engine::kpi::Catalogue::embedded().unwrap();
    let sql = catalogue
        .kpis
        .iter()
        .map(|k| {
            let rollup = match k.rollup {
                bright_engine::kpi::Rollup::Sum => "sum",
                bright_engine::kpi::Rollup::Max => "max",
            };
            format!(
                "SELECT '{id}' AS kpi, CAST(period AS VARCHAR) AS period, \
                 {rollup}(numerator) AS numerator, sum(denominator) AS denominator \
                 FROM kpi.{id} GROUP BY period",
                id = k.id
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let ours = ok(&["sql", &sql, "--lake", lake, "--format", "json"]);
    let ours: Vec<serde_json::Value> = serde_json::from_str(&ours).unwrap();
    let mut mine: BTreeMap<Key, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for v in &ours {
        let key = (
            v["kpi"].as_str().unwrap().to_string(),
            v["period"].as_str().unwrap().to_string(),
        );
        mine.insert(key, parse(v));
    }
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the two engines give different periods"
    );
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        (a, b) => a == b,
    };
    for (key, (n, d)) in &mine {
        let (tn, td) = theirs[key];
        assert!(
            close(*n, tn) && close(*d, td),
            "{key:?}: bright {n:?}/{d:?}, DuckDB {tn:?}/{td:?}"
        );
    }
    let kpis: std::collections::BTreeSet<&str> = mine.keys().map(|(k, _)| k.as_str()).collect();
    assert!(
        kpis.len() >= 31,
        "KPIs with rows on the simulated lake: {kpis:?}"
    );
}

#[test]
fn kpi_spc_charts_a_kpi_with_its_manifests_chart_direction_and_target() {
    let lake = small_lake().to_str().unwrap();
    // ED four hours is a p chart of proportions, better higher, with the 78% target.
    let chart = ok(&[
        "kpi",
        "spc",
        "ed_4h_performance",
        "--lake",
        lake,
        "--from",
        "2025-01-20",
        "--by",
        "site",
    ]);
    let mut lines = chart.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(
        header[..6],
        ["site", "date", "value", "numerator", "denominator", "chart"]
    );
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let sites: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0]).collect();
    assert!(!sites.is_empty() && rows.len() > 30, "{chart}");
    let number = |text: &str| text.parse::<f64>().expect("a number");
    for row in &rows {
        assert_eq!(row[column("chart")], "p");
        let (value, numerator, denominator) = (
            number(row[column("value")]),
            number(row[column("numerator")]),
            number(row[column("denominator")]),
        );
        assert!((value - numerator / denominator).abs() < 1e-12, "{row:?}");
        let (lpl, mean, upl) = (
            number(row[column("lpl")]),
            number(row[column("mean")]),
            number(row[column("upl")]),
        );
        assert!(
            (0.0..=mean).contains(&lpl) && (mean..=1.0).contains(&upl),
            "{row:?}"
        );
        // The target is set, so every chart has an assurance icon.
        assert!(!row[column("assurance_icon")].is_empty(), "{row:?}");
    }
    // Each site is its own chart: its centre line is its pooled proportion.
    for site in sites {
        let of: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == site).collect();
        let pooled = of.iter().map(|r| number(r[3])).sum::<f64>()
            / of.iter().map(|r| number(r[4])).sum::<f64>();
        assert!(
            (number(of[0][column("mean")]) - pooled).abs() < 1e-9,
            "{site}"
        );
    }

    // Attendances are an XmR chart of counts, with no target and so no assurance icon.
    let chart = ok(&[
        "kpi",
        "spc",
        "ed_attendances",
        "--lake",
        lake,
        "--format",
        "json",
    ]);
    let points: Vec<serde_json::Value> = serde_json::from_str(&chart).expect("JSON");
    assert!(points.len() > 30, "{chart}");
    assert!(points.iter().all(|p| p["chart"] == "xmr"));
    assert!(
        points
            .iter()
            .all(|p| p.get("assurance_icon").is_none_or(|a| a.is_null()))
    );
    let first = &points[0];
    assert!(first["upl"].as_f64() > first["mean"].as_f64(), "{first}");
}

#[test]
fn dashboards_are_listed_and_checked_with_mistakes_named_by_file_and_line() {
    let list = ok(&["dashboards", "list"]);
    for id in [
        "board",
        "ed",
        "flow",
        "theatres",
        "workforce",
        "finance",
        "data_quality",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing from:\n{list}"
        );
    }
    let check = ok(&["dashboards", "check"]);
    assert!(check.starts_with("7 dashboards, "), "{check}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("winter.toml");
    std::fs::write(
        &file,
        "id = \"winter\"\ntitle = \"Winter\"\naudience = [\"manager\"]\ngrain = \"week\"\n\n\
         [[section]]\ntitle = \"Beds\"\nkpis = [\"bed_occupancy_ga\", \"bed_ocupancy\"]\n",
    )
    .unwrap();
    let folder = dir.path().to_str().unwrap();
    let out = run(&["dashboards", "check", "--folder", folder]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:8: unknown KPI 'bed_ocupancy'", file.display())),
        "{stderr}"
    );
    // `bright serve` checks them before it listens, and does not start.
    let service = tempfile::tempdir().unwrap();
    let config = service.path().join("bright.toml");
    std::fs::write(&config, format!("[dashboards]\nfolder = {folder:?}\n")).unwrap();
    let served = bright()
        .args(["serve", "--config", config.to_str().unwrap(), "--lake"])
        .arg(service.path().join("lake"))
        .arg("--wal")
        .arg(service.path().join("wal"))
        .arg("--landing")
        .arg(service.path().join("landing"))
        .arg("--quarantine")
        .arg(service.path().join("quarantine"))
        .arg("--users-db")
        .arg(service.path().join("users.sqlite3"))
        .arg("--alerts-db")
        .arg(service.path().join("alerts.sqlite3"))
        .arg("--reports")
        .arg(service.path().join("reports"))
        .args([
            "--mllp-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--pg-addr",
            "127.0.0.1:0",
            "--flight-addr",
            "127.0.0.1:0",
        ])
        .env("BRIGHT_PSEUDO_KEY", "a dashboards test key, 16+ bytes")
        .output()
        .unwrap();
    assert!(!served.status.success());
    let stdout = String::from_utf8_lossy(&served.stdout);
    assert!(!stdout.contains("listening"), "{stdout}");
    let stderr = String::from_utf8_lossy(&served.stderr);
    assert!(stderr.contains("unknown KPI 'bed_ocupancy'"), "{stderr}");
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace(", \"bed_ocupancy\"", ""),
    )
    .unwrap();
    let check = ok(&["dashboards", "check", "--folder", folder]);
    assert!(check.starts_with("8 dashboards, "), "{check}");
}

#[test]
fn kpi_spc_draws_the_manifests_chart_as_bright_spc_chart_does() {
    // ED four hours is a p chart: `kpi spc` and `spc --chart p` over `kpi run`'s output of the
    // same series must print the same lines and run analysis, row for row.
    let lake = small_lake().to_str().unwrap();
    let range = ["--lake", lake, "--from", "2025-01-20"];
    let kpi = ok(&[&["kpi", "spc", "ed_4h_performance"][..], &range].concat());
    let series = ok(&[
        &["kpi", "run", "ed_4h_performance"][..],
        &range,
        &["--format", "csv"],
    ]
    .concat());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ed_4h.csv");
    std::fs::write(&file, &series).expect("writes");
    let chart = ok(&[
        "spc",
        "--chart",
        "p",
        "--input",
        file.to_str().expect("utf-8"),
    ]);
    let (kpi, chart) = (Table::parse(&kpi), Table::parse(&chart));
    assert!(kpi.rows.len() > 30, "{} rows", kpi.rows.len());
    assert_eq!(kpi.rows.len(), chart.rows.len());
    for row in 0..kpi.rows.len() {
        for name in [
            "date",
            "value",
            "mean",
            "lpl",
            "upl",
            "lower_two_sigma",
            "upper_two_sigma",
            "outside_limits",
            "useful_points",
            "longest_run",
            "crossings",
            "runs_signal",
            "chart",
            "centre_line",
        ] {
            assert_eq!(
                kpi.get(row, name),
                chart.get(row, name),
                "{name} on {}",
                kpi.get(row, "date")
            );
        }
    }
}
