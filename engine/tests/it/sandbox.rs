//! Analysts' SQL in the sandbox: every escape refused, every runaway stopped, the engine
//! alive after each.

use std::time::Duration;

use bright_engine::lake::Lake;
use bright_engine::query::{Limits, QueryConfig, QueryEngine, QueryError};
use bright_engine::schema::Table;

use crate::escapes::escapes;
use crate::fixtures::{int, rows};

async fn engine() -> (tempfile::TempDir, QueryEngine) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    lake.append(Table::Beds, vec![rows(Table::Beds, 4, 2, "w")])
        .await
        .unwrap();
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();
    (dir, engine)
}

async fn beds(engine: &QueryEngine) -> i64 {
    let answer = engine
        .analyst_sql("SELECT count(*) FROM beds", &Limits::default())
        .await
        .unwrap();
    int(&answer.output, 0, 0)
}

#[tokio::test]
async fn every_escape_is_refused_and_nothing_is_written() {
    let (dir, engine) = engine().await;
    let owned = dir.path().join("owned");
    std::fs::create_dir(&owned).unwrap();
    std::fs::write(owned.join("secret.csv"), "a\n1\n").unwrap();
    let list = escapes(&owned);
    assert!(list.len() >= 25, "{} escapes", list.len());
    for sql in &list {
        let refused = engine.analyst_sql(sql, &Limits::default()).await;
        let error = refused.expect_err(sql);
        assert!(!error.to_string().is_empty(), "{sql}: a reason");
    }
    let left: Vec<_> = std::fs::read_dir(&owned)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["secret.csv".to_string()], "nothing written");
    assert_eq!(beds(&engine).await, 4, "the lake unchanged");
}

#[tokio::test]
async fn statements_that_would_build_without_bound_are_refused_or_stopped() {
    let (_dir, engine) = engine().await;
    // No row limit: a statement must be stopped by what it builds or how long it runs, not
    // answered in part.
    let quick = Limits {
        time: Duration::from_secs(3),
        max_rows: None,
        ..Limits::default()
    };
    let unions = std::iter::once("SELECT 1 AS x".to_string())
        .chain((0..5_000).map(|i| format!("UNION ALL SELECT {i}")))
        .collect::<Vec<_>>()
        .join(" ");
    let cases: Vec<(String, &str)> = vec![
        // Refused before planning: too many tokens, or too many set operations.
        (unions, "refused: the statement has"),
        (
            std::iter::once("SELECT 1 AS x".to_string())
                .chain((0..600).map(|i| format!("UNION SELECT {i}")))
                .collect::<Vec<_>>()
                .join(" "),
            "UNION/INTERSECT/EXCEPT",
        ),
        (format!("SELECT {}", vec!["1"; 30_000].join("+")), "tokens"),
        (
            "SELECT length(repeat('x', 2000000000))".into(),
            "repeat: a value of",
        ),
        ("SELECT length(lpad('x', 2000000000))".into(), "lpad"),
        ("SELECT length(rpad('x', 2000000000, 'y'))".into(), "rpad"),
        (
            "SELECT cardinality(array_repeat(1, 2000000000))".into(),
            "array_repeat",
        ),
        (
            "SELECT cardinality(generate_series(1, 1000000000))".into(),
            "generate_series",
        ),
        ("SELECT cardinality(range(1, 1000000000))".into(), "range"),
        (
            "SELECT count(*) FROM generate_series(1, 1000000000000)".into(),
            "time limit",
        ),
        (
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) \
             SELECT count(*) FROM t"
                .into(),
            "time limit",
        ),
        (
            // Its build side outgrows the analysts' pool, its answer the answer's bound, or
            // the time limit comes first.
            "SELECT * FROM generate_series(1, 100000000) a(v) \
             CROSS JOIN generate_series(1, 100000000) b(w)"
                .into(),
            "stopped: |Resources exhausted",
        ),
    ];
    for (sql, says) in &cases {
        let started = std::time::Instant::now();
        let error = engine.analyst_sql(sql, &quick).await.expect_err(sql);
        let text = error.to_string();
        let shown: String = sql.chars().take(80).collect();
        assert!(says.split('|').any(|s| text.contains(s)), "{shown}: {text}");
        assert!(
            matches!(
                error,
                QueryError::Refused(_) | QueryError::Limit(_) | QueryError::DataFusion(_)
            ),
            "{shown}: {error:?}"
        );
        // Each is stopped well before the test's own patience runs out.
        assert!(started.elapsed() < Duration::from_secs(30), "{shown}");
    }
    assert_eq!(beds(&engine).await, 4, "the engine answers after them all");
}

#[tokio::test]
async fn a_long_statement_under_the_limits_is_planned_without_overflowing() {
    let (_dir, engine) = engine().await;
    // Under the token limit, but deep: planning this chain overflows a thread's default
    // 2 MiB stack (checked: the process aborts), not the analysts' threads'.
    let terms = 4_000;
    let sql = format!("SELECT {} AS n", vec!["1"; terms].join("+"));
    let answer = engine.analyst_sql(&sql, &Limits::default()).await.unwrap();
    assert_eq!(int(&answer.output, 0, 0), terms as i64);
    let unions = std::iter::once("SELECT 1 AS x".to_string())
        .chain((0..500).map(|_| "UNION ALL SELECT 1".to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let answer = engine
        .analyst_sql(
            &format!("SELECT count(*) FROM ({unions})"),
            &Limits::default(),
        )
        .await
        .unwrap();
    assert_eq!(int(&answer.output, 0, 0), 501);
}

#[tokio::test]
async fn rows_past_the_limit_are_left_out_and_said_so() {
    let (_dir, engine) = engine().await;
    let limits = Limits {
        max_rows: Some(1_000),
        ..Limits::default()
    };
    let answer = engine
        .analyst_sql("SELECT * FROM generate_series(1, 1000000000)", &limits)
        .await
        .unwrap();
    assert!(answer.truncated);
    assert_eq!(answer.output.num_rows(), 1_000);
    let answer = engine
        .analyst_sql("SELECT * FROM generate_series(1, 10)", &limits)
        .await
        .unwrap();
    assert!(!answer.truncated);
    assert_eq!(answer.output.num_rows(), 10);
}

#[tokio::test]
async fn the_audit_log_is_read_by_those_allowed_only() {
    let (_dir, engine) = engine().await;
    for sql in [
        "SELECT * FROM audit_log",
        "SELECT count(*) FROM beds WHERE ward IN (SELECT actor FROM audit_log)",
        "SELECT * FROM beds WHERE EXISTS (SELECT 1 FROM lake.audit_log)",
    ] {
        let error = engine
            .analyst_sql(sql, &Limits::default())
            .await
            .expect_err(sql);
        assert!(
            error.to_string().contains("audit_log is for admins only"),
            "{sql}: {error}"
        );
    }
    // Nor through a chart of it.
    let error = engine
        .analyst_sql(
            "SELECT * FROM spc_xmr('SELECT at_date, rows FROM audit_log')",
            &Limits {
                forbidden_tables: Vec::new(),
                ..Limits::default()
            },
        )
        .await
        .expect_err("charted");
    assert!(error.to_string().contains("cannot be charted"), "{error}");
    // An admin's statement reads it.
    let admin = Limits {
        forbidden_tables: Vec::new(),
        ..Limits::default()
    };
    let answer = engine
        .analyst_sql("SELECT count(*) FROM audit_log", &admin)
        .await
        .expect("answered");
    assert_eq!(int(&answer.output, 0, 0), 0);
}

#[tokio::test]
async fn a_prepared_statement_runs_with_its_values_and_only_reads() {
    use std::sync::Arc;

    use datafusion::common::{DFSchema, ParamValues, ScalarValue};
    use datafusion::logical_expr::{DdlStatement, DropTable, LogicalPlan};

    let (_dir, engine) = engine().await;
    let limits = Limits::default();
    let all = beds(&engine).await;
    assert!(all > 0);
    let plan = engine
        .analyst_plan("SELECT count(*) AS n FROM beds WHERE beds > $1", &limits)
        .await
        .unwrap();
    for (above, expected) in [(-1, all), (i64::MAX, 0)] {
        let value = ParamValues::List(vec![ScalarValue::Int64(Some(above)).into()]);
        let answer = engine
            .analyst_execute(plan.clone(), value, &limits)
            .await
            .unwrap();
        assert_eq!(int(&answer.output, 0, 0), expected, "beds above {above}");
    }

    // Several statements are refused, not cut to the first.
    let e = engine
        .analyst_plan("SELECT 1; DROP TABLE beds", &limits)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("one statement at a time"), "{e}");
    // A plan that writes, however it was made, is not run; nor one reading the audit log.
    let drop = LogicalPlan::Ddl(DdlStatement::DropTable(DropTable {
        name: "beds".into(),
        if_exists: false,
        schema: Arc::new(DFSchema::empty()),
    }));
    let e = engine
        .analyst_execute(drop, ParamValues::List(vec![]), &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Refused(_)), "{e}");
    assert_eq!(beds(&engine).await, all);
    let e = engine
        .analyst_plan("SELECT count(*) FROM audit_log", &limits)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("audit_log is for admins only"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_statement_gives_the_analysts_threads_back() {
    let (_dir, engine) = engine().await;
    // Seconds of cross-join output from each batch of one side: before its operators yielded,
    // such a statement ran on for 7-17 s after it was stopped (measured), and the next one
    // waited for the analysts' threads.
    let long = "SELECT count(*) FROM generate_series(1, 3000000) a(v) \
                CROSS JOIN generate_series(1, 3000000) b(w)";
    // The next statement's own time limit: a count of four rows, far below it.
    let next = Limits {
        time: Duration::from_secs(5),
        ..Limits::default()
    };
    // Stopped by its time limit.
    let second = Limits {
        time: Duration::from_secs(1),
        ..Limits::default()
    };
    let error = engine.analyst_sql(long, &second).await.expect_err(long);
    assert!(error.to_string().contains("time limit"), "{error}");
    let answer = engine.analyst_sql("SELECT count(*) FROM beds", &next).await;
    assert_eq!(int(&answer.expect("answered").output, 0, 0), 4);
    // Stopped by its caller going away (psql's Ctrl-C, a client gone), which drops the wait.
    let gone = tokio::time::timeout(
        Duration::from_secs(1),
        engine.analyst_sql(long, &Limits::default()),
    )
    .await;
    assert!(gone.is_err(), "the cross join ran to its end: {gone:?}");
    let answer = engine.analyst_sql("SELECT count(*) FROM beds", &next).await;
    assert_eq!(int(&answer.expect("answered").output, 0, 0), 4);
}
