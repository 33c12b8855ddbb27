//! The KPI runner, windowed runs, parameters, start-up planning and the cache, over the
//! fixture lake of the golden tests (see `kpi_golden`).

use std::collections::BTreeMap;
use std::path::Path;

use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::kpi::{Catalogue, KpiCache};
use bright_engine::query::{OutputFormat, QueryConfig, QueryEngine, QueryError, QueryOutput};
use bright_engine::schema::Table;
use chrono::NaiveDate;

use crate::kpi_golden::{catalogue_engine, fixture_engine, fixture_lake};

fn day(text: &str) -> NaiveDate {
    text.parse().expect("test date")
}

/// The series as CSV, for comparing runs row by row.
fn table(output: &QueryOutput) -> String {
    let mut out = Vec::new();
    output.write(OutputFormat::Csv, &mut out).expect("formats");
    String::from_utf8(out).expect("utf-8")
}

/// The rows of a series from `since` on, for comparing a windowed run with a full one.
fn rows_from(output: &QueryOutput, since: NaiveDate) -> Vec<String> {
    let text = table(output);
    text.lines()
        .filter(|line| {
            // Data rows start with the date.
            line.get(..10)
                .and_then(|d| d.parse::<NaiveDate>().ok())
                .is_some_and(|d| d >= since)
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_roll_up_by_pooling_numerators_and_denominators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    // W1 2 of 4 beds and W2 1 of 2 on the 5th: 3 of 6 for the trust, not the mean of 50% and 50%
    // by chance; on the 6th 1 of 4 and 1 of 3 pool to 2 of 7.
    let series = engine
        .kpi_series(
            "bed_occupancy_ga",
            Some(day("2024-01-05")),
            Some(day("2024-01-07")),
            &[],
        )
        .await
        .expect("runs");
    let text = table(&series);
    assert!(text.contains("\n2024-01-05,0.5,3.0,6.0\n"), "{text}");
    assert!(
        text.contains("\n2024-01-06,0.2857142857142857,2.0,7.0\n"),
        "{text}"
    );
    assert_eq!(series.num_rows(), 2, "{text}");

    let by_ward = engine
        .kpi_series(
            "bed_occupancy_ga",
            Some(day("2024-01-05")),
            Some(day("2024-01-06")),
            &["ward".to_string()],
        )
        .await
        .expect("runs");
    assert_eq!(by_ward.num_rows(), 2, "{}", table(&by_ward));

    let err = engine
        .kpi_series("bed_occupancy_ga", None, None, &["theatre".to_string()])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no breakdown 'theatre'"), "{err}");
    let err = engine
        .kpi_series("nope", None, None, &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown KPI 'nope'"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kpi_splits_by_organisation_and_a_breakdown_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let catalogue = engine.kpi_catalogue().expect("registered").clone();
    for kpi in catalogue.kpis.iter().filter(|k| !k.breakdowns.is_empty()) {
        let first = kpi.breakdowns[0].clone();
        let alone = engine
            .kpi_series(kpi.id.as_str(), None, None, std::slice::from_ref(&first))
            .await
            .unwrap_or_else(|e| panic!("{} by {first}: {e}", kpi.id));
        let with_org = engine
            .kpi_series(
                kpi.id.as_str(),
                None,
                None,
                &["org_code".to_string(), first],
            )
            .await
            .unwrap_or_else(|e| panic!("{} by org_code and a breakdown: {e}", kpi.id));
        // The fixtures hold one organisation: the same rows, with its code.
        assert_eq!(with_org.num_rows(), alone.num_rows(), "{}", kpi.id);
    }
}

/// Whether two CSV tables hold the same rows, numbers equal to within rounding: a rollup
/// may add the same values up in another order.
fn same_table(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            let (x, y): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|(u, v)| match (u.parse::<f64>(), v.parse::<f64>()) {
                        (Ok(u), Ok(v)) => (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1.0),
                        _ => u == v,
                    })
        })
}

/// The runner narrows a KPI's grouping to what its rollup keeps where that cannot change
/// the answer; every KPI's series, whole and by each of its breakdowns, still equals its
/// view (planned as written) rolled up by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kpi_s_series_is_its_view_rolled_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let catalogue = engine.kpi_catalogue().expect("registered").clone();
    let mut compared = 0;
    for kpi in &catalogue.kpis {
        let mut splits: Vec<Vec<String>> = vec![vec![], vec!["org_code".to_string()]];
        splits.extend(kpi.breakdowns.iter().map(|b| vec![b.clone()]));
        for by in splits {
            let series = engine
                .kpi_series(kpi.id.as_str(), None, None, &by)
                .await
                .unwrap_or_else(|e| panic!("{} by {by:?}: {e}", kpi.id));
            let numerator = match kpi.rollup {
                bright_engine::kpi::Rollup::Sum => "sum(numerator)",
                bright_engine::kpi::Rollup::Max => "max(numerator)",
            };
            let value = if kpi.denominator.is_some() {
                format!("{numerator} / nullif(sum(denominator), 0.0)")
            } else {
                numerator.to_string()
            };
            let keys: String = by.iter().map(|b| format!("{b}, ")).collect();
            let by_hand = engine
                .sql(&format!(
                    "SELECT period AS date, {keys}{value} AS value, {numerator} AS numerator, \
                     sum(denominator) AS denominator FROM kpi.{} \
                     GROUP BY {keys}period ORDER BY {keys}date",
                    kpi.id
                ))
                .await
                .unwrap_or_else(|e| panic!("{} by {by:?} by hand: {e}", kpi.id));
            let (series, by_hand) = (table(&series), table(&by_hand));
            assert!(
                by_hand.lines().count() > 1,
                "{} by {by:?}: no rows to compare",
                kpi.id
            );
            assert!(
                same_table(&series, &by_hand),
                "{} by {by:?}:\n{series}\nby hand:\n{by_hand}",
                kpi.id
            );
            compared += 1;
        }
    }
    assert!(
        compared > catalogue.kpis.len() * 2,
        "{compared} series compared"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windowed_run_gives_the_full_run_s_periods_for_every_kpi() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let catalogue = engine.kpi_catalogue().expect("registered").clone();
    for kpi in &catalogue.kpis {
        let by: Vec<String> = kpi.breakdowns.first().cloned().into_iter().collect();
        let full = engine
            .kpi_series(kpi.id.as_str(), None, None, &by)
            .await
            .expect("full run");
        for since in ["2024-01-04", "2024-01-10", "2024-01-11", "2024-07-02"] {
            let since = kpi.grain.period_start(day(since));
            let windowed = engine
                .kpi_series(kpi.id.as_str(), Some(since), None, &by)
                .await
                .expect("windowed run");
            assert_eq!(
                rows_from(&windowed, since),
                rows_from(&full, since),
                "{} from {since}",
                kpi.id
            );
        }
    }
}

/// An attendance that never departs (a recording error) counts in the department for a week
/// after its arrival day and no longer, whichever day a run starts from: the KPI cache splices
/// windowed runs onto full ones, so the two must agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attendance_that_never_departs_counts_for_a_week_in_every_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = fixture_lake(dir.path()).await;
    // E9 arrives on 3 July (BST) and never departs; E10 comes and goes on 14 July.
    let extra = "\
attendance_id,org_code,site,patient_key,arrival_time,arrival_mode,ambulance_arrival_time,handover_time,acuity,initial_assessment_time,seen_time,decision_to_admit_time,departure_time,disposal,age_band,chief_complaint,arrival_date
E9,X01,S1,Q9,2024-07-03T09:00:00Z,walk_in,,,4,2024-07-03T09:10:00Z,,,,,18-64,injury,2024-07-03
E10,X01,S1,Q10,2024-07-14T09:00:00Z,walk_in,,,4,2024-07-14T09:10:00Z,2024-07-14T09:30:00Z,,2024-07-14T10:00:00Z,discharged,18-64,injury,2024-07-14
";
    let batches = bright_engine::arrow::csv::ReaderBuilder::new(Table::EdAttendances.schema())
        .with_header(true)
        .build(extra.as_bytes())
        .expect("csv reader")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    lake.append(Table::EdAttendances, batches)
        .await
        .expect("appends");
    let engine = catalogue_engine(&lake).await;
    let full = engine
        .kpi_series("ed_in_department", None, None, &[])
        .await
        .expect("full run");
    let counts: Vec<String> = table(&full)
        .lines()
        .filter(|l| l.starts_with("2024-07-"))
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    // In the department at the end of 3–10 July (arrival day and seven more), gone from the
    // 11th; the calendar ends on the 14th, the last day the data reaches.
    let expected: Vec<String> = (1..=14)
        .map(|d| {
            format!(
                "2024-07-{d:02} {}",
                if (3..=10).contains(&d) { "1.0" } else { "0.0" }
            )
        })
        .collect();
    assert_eq!(counts, expected);
    for since in ["2024-07-04", "2024-07-09", "2024-07-11", "2024-07-14"] {
        let since = day(since);
        let windowed = engine
            .kpi_series("ed_in_department", Some(since), None, &[])
            .await
            .expect("windowed run");
        assert_eq!(
            rows_from(&windowed, since),
            rows_from(&full, since),
            "from {since}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_change_the_threshold_not_the_query() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = fixture_lake(dir.path()).await;
    let run = |params: BTreeMap<String, f64>| {
        let lake = lake.clone();
        async move {
            let mut engine = QueryEngine::open(&lake, &QueryConfig::default())
                .await
                .expect("opens");
            engine
                .register_kpis(Catalogue::embedded().expect("catalogue"), &params)
                .await?;
            let series = engine
                .kpi_series("theatre_late_starts", None, None, &[])
                .await?;
            Ok::<_, QueryError>(table(&series))
        }
    };
    // C1 entered the anaesthetic room 20 minutes after the planned start.
    let default = run(BTreeMap::new()).await.expect("runs");
    assert!(default.contains("\n2024-01-10,0.5,1.0,2.0\n"), "{default}");
    let relaxed = run(BTreeMap::from([("late_start_grace_min".to_string(), 25.0)]))
        .await
        .expect("runs");
    assert!(relaxed.contains("\n2024-01-10,0.0,0.0,2.0\n"), "{relaxed}");
    let err = run(BTreeMap::from([("late_start_grace".to_string(), 25.0)]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown KPI parameter 'late_start_grace'"),
        "{err}"
    );
}

fn copy_catalogue(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries");
    for entry in walk(&from) {
        let relative = entry.strip_prefix(&from).expect("under queries");
        let target = to.join(relative);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&entry, &target).expect("copy");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_kpi_stops_start_up_naming_its_file_and_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = fixture_lake(&dir.path().join("lake")).await;
    let cases = [
        (
            "ed_4h_performance.sql",
            "SELECT arrival_date AS period, org_code, site, CAST(COUNT(*) AS DOUBLE) AS numerator, \
             CAST(SUM(no_such_column) AS DOUBLE) AS denominator FROM ed_attendances \
             WHERE arrival_date >= CAST($since AS DATE) GROUP BY 1, 2, 3",
            "no_such_column",
        ),
        (
            "ed_4h_performance.sql",
            "SELECT arrival_date AS period, org_code, CAST(COUNT(*) AS DOUBLE) AS numerator, \
             CAST(NULL AS DOUBLE) AS denominator FROM ed_attendances \
             WHERE arrival_date >= CAST($since AS DATE) GROUP BY 1, 2",
            "the manifest says (period, org_code, site, numerator, denominator)",
        ),
        (
            "ed_4h_performance.sql",
            "SELECT arrival_date AS period, org_code, site, COUNT(*) AS numerator, \
             CAST(NULL AS DOUBLE) AS denominator FROM ed_attendances \
             WHERE arrival_date >= CAST($since AS DATE) GROUP BY 1, 2, 3",
            "numerator, denominator DOUBLE",
        ),
        (
            "views/theatre_cases.sql",
            "SELECT FROM WHERE",
            "views/theatre_cases.sql",
        ),
        // The census is kept up to date by its `day`, which this query does not return.
        (
            "views/ward_census.sql",
            "SELECT org_code, site, ward, COUNT(*) AS patients FROM kpi.inpatient_stays \
             GROUP BY 1, 2, 3",
            "day = \"day\" names no date column of the view",
        ),
    ];
    for (file, sql, expected) in cases {
        let catalogue_dir = tempfile::tempdir().expect("tempdir");
        copy_catalogue(catalogue_dir.path());
        std::fs::write(catalogue_dir.path().join(file), sql).expect("write");
        let mut engine = QueryEngine::open(&lake, &QueryConfig::default())
            .await
            .expect("opens");
        let catalogue = Catalogue::load(catalogue_dir.path()).expect("manifest is fine");
        let err = engine
            .register_kpis(catalogue, &BTreeMap::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(file), "file not named: {err}");
        assert!(err.contains(expected), "expected '{expected}' in: {err}");
    }
}

/// Appends CSV rows (with the fixture header of `table`) to the lake.
/// Rows of `table` from CSV lines in the column order of its fixture file.
pub(crate) fn csv_batch(table: Table, rows: &str) -> RecordBatch {
    let header = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data-samples/kpi")
            .join(format!("{}.csv", table.name())),
    )
    .expect("fixture");
    let header = header.lines().next().expect("header");
    let text = format!("{header}\n{rows}");
    let reader = bright_engine::arrow::csv::ReaderBuilder::new(table.schema())
        .with_header(true)
        .build(std::io::Cursor::new(text))
        .expect("reader");
    let batches = reader.collect::<Result<Vec<_>, _>>().expect("parses");
    bright_engine::arrow::compute::concat_batches(&table.schema(), &batches).expect("one batch")
}

pub(crate) async fn append_csv(engine: &QueryEngine, table: Table, rows: &str) {
    let batch = csv_batch(table, rows);
    engine
        .lake()
        .append(table, vec![batch])
        .await
        .expect("appends");
}

/// Every KPI's series as `cache` holds it (by its first breakdown), each checked against an
/// engine that computes everything afresh over the same lake, not against `engine`'s own
/// materialised views, which ticks bring up to date key by key.
async fn cached_match_fresh(
    cache: &mut KpiCache,
    engine: &QueryEngine,
    when: &str,
) -> BTreeMap<String, String> {
    let fresh = crate::kpi_golden::catalogue_engine(engine.lake()).await;
    let catalogue = engine.kpi_catalogue().expect("registered").clone();
    let mut out = BTreeMap::new();
    for kpi in &catalogue.kpis {
        let by: Vec<String> = kpi.breakdowns.first().cloned().into_iter().collect();
        let cached = table(
            cache
                .series(engine, kpi.id.as_str(), &by)
                .await
                .expect("cached"),
        );
        let full = table(
            &fresh
                .kpi_series(kpi.id.as_str(), None, None, &by)
                .await
                .expect("full"),
        );
        assert_eq!(cached, full, "{}: the cache differs {when}", kpi.id);
        out.insert(kpi.id.to_string(), cached);
    }
    out
}

/// Feed freshness today counts from each feed's latest record up to now: a record from a
/// sender whose clock runs ahead does not make its feed look fresh, and a feed silent since
/// yesterday counts from yesterday's record (read from `kpi.feed_days`, not the lake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_freshness_today_counts_up_to_now_not_from_a_record_in_the_future() {
    use chrono::{DateTime, Duration, Utc};
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let now = Utc::now();
    let midnight = table(
        &engine
            .sql("SELECT CAST(local_day_start(local_date(now())) AS VARCHAR) AS midnight")
            .await
            .expect("runs"),
    );
    let midnight: DateTime<Utc> = midnight
        .lines()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .expect("today's local midnight");
    // Today, so that today's row exists however soon after midnight the test runs.
    let arrived = (now - Duration::minutes(20)).max(midnight);
    let ahead = now + Duration::hours(3);
    let theatre = now - Duration::hours(30);
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let date = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    append_csv(
        &engine,
        Table::EdAttendances,
        &format!(
            "F1,X01,S1,Q1,{},walk_in,,,3,,,,,,18-64,injury,{}\n\
             F2,X01,S1,Q2,{},walk_in,,,3,,,,,,18-64,injury,{}\n",
            stamp(arrived),
            date(arrived),
            stamp(ahead),
            date(ahead),
        ),
    )
    .await;
    append_csv(
        &engine,
        Table::TheatreEvents,
        &format!(
            "F3,C9,TH1-F,X01,S1,TH1,100,H011,Appendicectomy,in_anaesthetic_room,{},1,60,,{}\n",
            stamp(theatre),
            date(theatre),
        ),
    )
    .await;
    engine.refresh().await.expect("refreshes");
    let output = engine
        .sql(
            "SELECT feed, numerator FROM kpi.feed_freshness_min \
             WHERE period = local_date(now()) AND feed IN ('ed', 'theatre') ORDER BY feed",
        )
        .await
        .expect("runs");
    let text = table(&output);
    let minutes: Vec<(String, f64)> = text
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (feed, n) = line.split_once(',')?;
            Some((feed.to_string(), n.parse().ok()?))
        })
        .collect();
    let [(ed, ed_min), (th, th_min)] = minutes.as_slice() else {
        panic!("one row per feed today: {text}");
    };
    assert_eq!((ed.as_str(), th.as_str()), ("ed", "theatre"));
    // Counted at query time, a little after `now`.
    let since = |t: DateTime<Utc>| (now - t).num_seconds() as f64 / 60.0;
    assert!(
        *ed_min >= since(arrived) && *ed_min < since(arrived) + 5.0,
        "ED fresh from {arrived}, not from the record at {ahead}: {text}"
    );
    assert!(
        *th_min >= since(theatre) && *th_min < since(theatre) + 5.0,
        "theatres silent since {theatre}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_matches_a_full_recomputation_after_late_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let catalogue = engine.kpi_catalogue().expect("registered").clone();
    let today = day("2024-07-02");
    let mut cache = KpiCache::new();
    let series = |kpi: &bright_engine::kpi::Kpi| -> Vec<String> {
        kpi.breakdowns.first().cloned().into_iter().collect()
    };
    let mut before = BTreeMap::new();
    for kpi in &catalogue.kpis {
        let output = cache
            .series(&engine, kpi.id.as_str(), &series(kpi))
            .await
            .expect("computes");
        before.insert(kpi.id.to_string(), table(output));
    }
    // A quiet tick recomputes only the series that read the clock, and changes nothing.
    let clock: Vec<&str> = catalogue
        .kpis
        .iter()
        .filter(|k| engine.kpi_reads_clock(k.id.as_str()).expect("known"))
        .map(|k| k.id.as_str())
        .collect();
    assert_eq!(clock, ["feed_freshness_min"]);
    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert!(report.changed_tables.is_empty(), "{report:?}");
    assert_eq!(report.series, catalogue.kpis.len(), "{report:?}");
    assert_eq!(report.recomputed, 1, "{report:?}");
    for kpi in &catalogue.kpis {
        let output = cache
            .series(&engine, kpi.id.as_str(), &series(kpi))
            .await
            .expect("cached");
        assert_eq!(table(output), before[kpi.id.as_str()], "{}", kpi.id);
    }

    // Late data for closed periods: an ED attendance from January keyed in now, a theatre
    // case that was missing from the 10th, a correction for the week of 1 January (V6's
    // discharge on Saturday the 6th is cancelled, and the patient leaves on Monday the 8th),
    // a roster line, a ledger line and a data-quality record.
    append_csv(
        &engine,
        Table::EdAttendances,
        "E9,X01,S1,Q9,2024-01-10T15:00:00Z,ambulance,2024-01-10T15:00:00Z,2024-01-10T16:30:00Z,3,2024-01-10T15:05:00Z,,,2024-01-10T17:00:00Z,discharged,18-64,injury,2024-01-10\n",
    )
    .await;
    append_csv(
        &engine,
        Table::TheatreEvents,
        "T20,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,in_anaesthetic_room,2024-01-10T08:05:00Z,1,60,,2024-01-10\n\
         T21,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,anaesthesia_start,2024-01-10T08:10:00Z,1,60,,2024-01-10\n\
         T22,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,out_of_theatre,2024-01-10T09:10:00Z,1,60,,2024-01-10\n",
    )
    .await;
    append_csv(
        &engine,
        Table::AdtEvents,
        "PAS/ADT/f3,A13,2024-01-06T10:20:00Z,2024-07-01T09:00:00Z,P6,V6,inpatient,X01,S1,W1,B3,100,11,,pas,,2024-01-06\n\
         PAS/ADT/f4,A03,2024-01-08T16:00:00Z,2024-07-01T09:00:00Z,P6,V6,inpatient,X01,S1,W1,B3,100,11,19,pas,,2024-01-08\n",
    )
    .await;
    append_csv(
        &engine,
        Table::WorkforceShifts,
        "R6,X01,S1,W1,nursing,12,12,agency,2024-01-10\n",
    )
    .await;
    append_csv(
        &engine,
        Table::FinanceLedger,
        "CC300,X01,S1,110,pay,10000.00,12000.00,2024-01-01\n",
    )
    .await;
    append_csv(
        &engine,
        Table::DqIssues,
        "theatre,2024-01-10T13:00:00Z,X01,T99,unknown theatre,Theatre systems,2024-01-10\n",
    )
    .await;

    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert_eq!(report.changed_tables.len(), 6, "{report:?}");
    // Every change reaches back a bounded way: the ADT correction to the first day of V6's
    // stay, not to the beginning.
    assert_eq!(report.full, 0, "{report:?}");
    let late = cached_match_fresh(&mut cache, &engine, "after late data").await;
    let changed: Vec<&str> = late
        .iter()
        .filter(|(id, series)| before[id.as_str()] != **series)
        .map(|(id, _)| id.as_str())
        .collect();
    // The late rows did reach these KPIs, so the comparison above was not between two
    // unchanged series.
    for id in [
        "ed_attendances",
        "ed_4h_performance",
        "theatre_utilisation_capped",
        "bed_occupancy_ga",
        "weekend_discharges",
        "workforce_agency_share",
        "finance_pay_variance",
        "dq_rejected_records",
    ] {
        assert!(changed.contains(&id), "{id} did not change: {changed:?}");
    }

    // Today's news that rewrites the past: V7's admission on 23 January is cancelled by an
    // A11 sent today, so V7 was never on a ward in the months since. The row is today's, but
    // the stays it changes are not: the tick reaches back to V7's first day.
    append_csv(
        &engine,
        Table::AdtEvents,
        "PAS/ADT/g3,A11,2024-07-01T08:00:00Z,2024-07-01T08:00:00Z,P7,V7,inpatient,X01,S1,W2,B1,300,21,,pas,,2024-07-01\n",
    )
    .await;
    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert_eq!(report.changed_tables, vec![Table::AdtEvents], "{report:?}");
    assert_eq!(report.full, 0, "{report:?}");
    let rewritten: Vec<String> = cached_match_fresh(&mut cache, &engine, "after today's A11")
        .await
        .into_iter()
        .filter(|(id, series)| late[id.as_str()] != *series)
        .map(|(id, _)| id)
        .collect();
    // V7 had been in since January: patients in beds and long stays change for months back.
    for id in ["bed_occupancy_ga", "los_over_7_days", "los_over_21_days"] {
        assert!(
            rewritten.iter().any(|c| c == id),
            "{id} did not change: {rewritten:?}"
        );
    }

    // Yesterday's merge of P1 into P12 sent again: it changes no merge, so no stay, and the
    // ADT series are recomputed from this month only, not from P12's records' first stays.
    let first_adt_day = |report: &bright_engine::kpi::RefreshReport| {
        report
            .steps
            .iter()
            .filter(|s| {
                let id = s.what.split(" by ").next().unwrap_or_default();
                ["bed_occupancy_ga", "los_over_7_days"].contains(&id)
            })
            .map(|s| s.since)
            .min()
            .expect("the ADT series were recomputed")
    };
    append_csv(
        &engine,
        Table::AdtEvents,
        "PAS/ADT/m2b,A40,2024-07-01T10:00:00Z,2024-07-02T08:00:00Z,P12,,,X01,,,,,,,pas,P1,2024-07-02\n",
    )
    .await;
    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert_eq!(
        first_adt_day(&report),
        Some(day("2024-07-01")),
        "{report:?}"
    );
    cached_match_fresh(&mut cache, &engine, "after a merge sent again").await;

    // A new merge, P12 into P20: V1's and V7's stays now belong to P20, and the ADT series
    // reach back to those records' first stay (V1, 1 January).
    append_csv(
        &engine,
        Table::AdtEvents,
        "PAS/ADT/m4,A40,2024-07-02T09:00:00Z,2024-07-02T09:00:00Z,P20,,,X01,,,,,,,pas,P12,2024-07-02\n",
    )
    .await;
    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert!(
        first_adt_day(&report) <= Some(day("2024-01-01")),
        "{report:?}"
    );
    cached_match_fresh(&mut cache, &engine, "after a new merge").await;
    let stays = engine
        .sql("SELECT DISTINCT patient_key FROM kpi.inpatient_stays WHERE encounter_id IN ('V1', 'V7')")
        .await
        .expect("runs");
    assert_eq!(
        table(&stays),
        "patient_key\nP20\n",
        "the stays follow the new merge"
    );
}
