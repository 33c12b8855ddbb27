//! The query layer: read-only SQL, bounded memory, output formats.

use bright_engine::lake::Lake;
use bright_engine::query::{OutputFormat, QueryConfig, QueryEngine, QueryError};
use bright_engine::schema::Table;

use crate::fixtures::{int, rows};

async fn lake_with_rows() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    lake.append(Table::Beds, vec![rows(Table::Beds, 4, 2, "w")])
        .await
        .unwrap();
    (dir, lake)
}

#[tokio::test]
async fn an_empty_lake_is_an_error_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let err = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::EmptyLake { .. }));
    assert!(err.to_string().contains("no lake tables"), "{err}");
}

#[tokio::test]
async fn sql_cannot_change_the_lake_or_touch_files() {
    let (dir, lake) = lake_with_rows().await;
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "a\n1\n").unwrap();
    let refused = [
        "CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO beds SELECT * FROM beds".to_string(),
        "DROP TABLE beds".to_string(),
        format!(
            "CREATE EXTERNAL TABLE s STORED AS CSV LOCATION '{}'",
            secret.display()
        ),
        format!(
            "COPY (SELECT * FROM beds) TO '{}/out.csv'",
            dir.path().display()
        ),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ];
    for sql in &refused {
        let err = engine.sql(sql).await.unwrap_err();
        assert!(matches!(err, QueryError::DataFusion(_)), "{sql}: {err}");
    }
    assert!(!dir.path().join("out.csv").exists());
    let out = engine.sql("SELECT count(*) FROM beds").await.unwrap();
    assert_eq!(int(&out, 0, 0), 4);
}

#[tokio::test]
async fn a_query_over_its_memory_limit_fails_alone() {
    let (_dir, lake) = lake_with_rows().await;
    let small = QueryConfig {
        memory_limit: 256 * 1024,
        target_partitions: 1,
        ..QueryConfig::default()
    };
    let engine = QueryEngine::open(&lake, &small).await.unwrap();
    // The build side of a hash join (two million keys) must fit in memory; in 256 KiB it
    // cannot, and the pool refuses it.
    let err = engine
        .sql(
            "SELECT count(*) FROM generate_series(1, 2000000) AS a(v) \
             JOIN generate_series(1, 2000000) AS b(w) ON v = w",
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("resources"),
        "{err}"
    );
    // The session is still usable.
    let out = engine.sql("SELECT count(*) FROM beds").await.unwrap();
    assert_eq!(int(&out, 0, 0), 4);
}

#[tokio::test]
async fn results_print_as_table_csv_and_json() {
    let (_dir, lake) = lake_with_rows().await;
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let out = engine
        .sql("SELECT ward, beds, valid_from FROM beds ORDER BY beds LIMIT 2")
        .await
        .unwrap();
    let render = |format| {
        let mut buf = Vec::new();
        out.write(format, &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    };
    assert_eq!(
        render(OutputFormat::Csv),
        "ward,beds,valid_from\nw-0,0,2025-01-01\nw-1,1,2025-01-02\n"
    );
    assert_eq!(
        render(OutputFormat::Json),
        "[{\"ward\":\"w-0\",\"beds\":0,\"valid_from\":\"2025-01-01\"},{\"ward\":\"w-1\",\"beds\":1,\"valid_from\":\"2025-01-02\"}]\n"
    );
    let table = render(OutputFormat::Table);
    assert!(table.contains("| ward | beds | valid_from |"), "{table}");
    assert!(table.contains("| w-1  | 1    | 2025-01-02 |"), "{table}");

    let empty = engine
        .sql("SELECT ward FROM beds WHERE beds < 0")
        .await
        .unwrap();
    let mut buf = Vec::new();
    empty.write(OutputFormat::Csv, &mut buf).unwrap();
    assert_eq!(String::from_utf8(buf).unwrap(), "ward\n");
    let mut buf = Vec::new();
    empty.write(OutputFormat::Json, &mut buf).unwrap();
    assert_eq!(String::from_utf8(buf).unwrap(), "[]\n");
}

#[tokio::test]
async fn refresh_shows_new_commits() {
    let (_dir, lake) = lake_with_rows().await;
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    lake.append(Table::Beds, vec![rows(Table::Beds, 3, 1, "n")])
        .await
        .unwrap();
    let stale = engine.sql("SELECT count(*) FROM beds").await.unwrap();
    assert_eq!(int(&stale, 0, 0), 4, "a session reads the snapshot it has");
    engine.refresh().await.unwrap();
    let fresh = engine.sql("SELECT count(*) FROM beds").await.unwrap();
    assert_eq!(int(&fresh, 0, 0), 7);
}

/// A query for some days plans only the lake files holding them (each file's days come from
/// the Delta log once per snapshot), and reads the same rows as a scan of every file.
#[tokio::test]
async fn a_query_for_some_days_reads_only_the_files_holding_them() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let table = Table::AdtEvents;
    // Three files: 2025-01-01; 01-01 and 01-02; 01-01 to 01-03.
    for (n, days, tag) in [(2, 1, "a"), (2, 2, "b"), (3, 3, "c")] {
        lake.append(table, vec![rows(table, n, days, tag)])
            .await
            .unwrap();
    }
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    let files_read = |filter: &'static str| {
        let engine = &engine;
        async move {
            let plan = engine
                .sql(&format!(
                    "EXPLAIN SELECT count(*) FROM adt_events WHERE {filter}"
                ))
                .await
                .unwrap();
            let mut text = Vec::new();
            plan.write(OutputFormat::Csv, &mut text).unwrap();
            let rows = engine
                .sql(&format!("SELECT count(*) FROM adt_events WHERE {filter}"))
                .await
                .unwrap();
            (
                String::from_utf8(text).unwrap().matches(".parquet").count(),
                int(&rows, 0, 0),
            )
        }
    };
    assert_eq!(files_read("event_date = DATE '2025-01-03'").await, (1, 1));
    assert_eq!(files_read("event_date >= DATE '2025-01-02'").await, (2, 3));
    assert_eq!(files_read("event_date < DATE '2025-01-02'").await, (3, 4));
    assert_eq!(files_read("event_date > DATE '2025-01-03'").await, (0, 0));
    // A filter that says nothing of days reads every file.
    assert_eq!(files_read("event_id LIKE 'c-%'").await, (3, 3));
}

#[tokio::test]
async fn spc_xmr_charts_a_query_with_the_engines_numbers() {
    let (_dir, lake) = lake_with_rows().await;
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    // Ten monthly values given out of order; 2024-10 is 50.
    let values = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 50.0];
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .rev()
        .map(|(i, v)| format!("(DATE ''2024-{:02}-01'', {v})", i + 1))
        .collect();
    let inner = format!("SELECT d, v FROM (VALUES {}) AS t(d, v)", rows.join(", "));
    let out = engine
        .sql(&format!(
            "SELECT date, value, mean, lpl, upl, point_type, variation_icon, assurance_icon \
             FROM spc_xmr('{inner}', 'increase', 20) ORDER BY date"
        ))
        .await
        .unwrap();
    let expected = bright_engine::spc::xmr(
        &values.map(Some),
        &[false; 10],
        &bright_engine::spc::XmrOptions {
            target: Some(20.0),
            ..Default::default()
        },
    )
    .unwrap();
    let mut csv = Vec::new();
    out.write(OutputFormat::Csv, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 11);
    for (line, point) in lines[1..].iter().zip(&expected.points) {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f[2].parse::<f64>().unwrap(), point.mean);
        assert_eq!(f[3].parse::<f64>().unwrap(), point.lpl);
        assert_eq!(f[4].parse::<f64>().unwrap(), point.upl);
        assert_eq!(f[5], point.point_type.as_str());
        assert_eq!(f[6], "improvement_high");
        assert_eq!(f[7], "fail");
    }
    assert!(lines[1].starts_with("2024-01-01,10.0,"), "{}", lines[1]);
}

#[tokio::test]
async fn spc_xmr_refuses_bad_arguments_and_writing_queries() {
    let (_dir, lake) = lake_with_rows().await;
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    for (sql, expected) in [
        (
            "SELECT * FROM spc_xmr(1)",
            "the query must be a text literal",
        ),
        (
            "SELECT * FROM spc_xmr('SELECT 1, 2', 'up')",
            "increase, decrease or neutral",
        ),
        ("SELECT * FROM spc_xmr('DROP TABLE beds')", "not supported"),
        (
            "SELECT * FROM spc_xmr('SELECT DATE ''2024-01-01'', 1 UNION ALL SELECT DATE ''2024-01-01'', 2')",
            "duplicate date 2024-01-01",
        ),
        ("SELECT * FROM spc_xmr('SELECT ''x'', 1')", "not a date"),
    ] {
        let err = engine.sql(sql).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{sql}: {err}");
    }
    // Rebase dates split the chart.
    let out = engine
        .sql(
            "SELECT max(rebase_group) FROM spc_xmr(\
             'SELECT valid_from, beds FROM beds', 'neutral', NULL, '2025-01-02')",
        )
        .await;
    // NULL is not a number literal the target accepts; the error says so.
    assert!(out.unwrap_err().to_string().contains("target"));
    let out = engine
        .sql(
            "SELECT max(rebase_group) FROM spc_xmr(\
             'SELECT DATE ''2025-01-01'' + CAST(beds AS INT) AS d, beds FROM beds', 'neutral', 0, '2025-01-03')",
        )
        .await
        .unwrap();
    assert_eq!(int(&out, 0, 0), 1);
}

/// Two windows in a row over long text, as the inpatient stays run over two years of ADT:
/// the second sort gets the first one's output, merged from many batches. With text read as
/// string views, each merged batch was charged for every string buffer it shares, and this
/// failed below 160 MiB; read as plain text it runs in 40 MiB.
#[tokio::test]
async fn sorting_sorted_long_text_stays_within_a_modest_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    for part in 0..4 {
        let tag = format!("a visit number longer than a view's inline twelve bytes {part}");
        lake.append(
            Table::AdtEvents,
            vec![rows(Table::AdtEvents, 50_000, 30, &tag)],
        )
        .await
        .unwrap();
    }
    let config = QueryConfig {
        memory_limit: 64 << 20,
        target_partitions: 1,
        ..QueryConfig::default()
    };
    let engine = QueryEngine::open(&lake, &config).await.unwrap();
    let out = engine
        .sql(
            "SELECT count(*) AS n, count(next_id) AS with_next FROM (
                 SELECT LEAD(event_id) OVER (PARTITION BY event_date ORDER BY event_time, event_id)
                            AS next_id
                 FROM (SELECT *, LEAD(event_type) OVER (PARTITION BY event_date
                                     ORDER BY event_type, event_time, event_id) AS next_type
                       FROM adt_events) AS first_window
                 WHERE next_type IS NULL OR next_type <> 'none')",
        )
        .await
        .expect("the windows fit in 64 MiB (40 MiB is enough)");
    assert_eq!(int(&out, 0, 0), 200_000);
    assert_eq!(
        int(&out, 1, 0),
        200_000 - 30,
        "one row without a next per day"
    );
}
