//! `POST /api/ingest/{feed}`: the web service's router over the real ingest pipeline (write-
//! ahead log, buffer, Delta lake), `bright serve` taking posts from curl with a token made by
//! `bright token new` and files from its landing folder, and `bright ingest` loading extracts.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bright_dashboards::auth::{ClientConfig, Clients, token_sha256};
use bright_dashboards::{AppState, router};
use bright_engine::arrow::array::{Array, AsArray};
use bright_engine::lake::Lake;
use bright_engine::pseudonym::{NHS_NUMBER, PseudoKey};
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::http::HttpSource;
use bright_ingest::sink::Sink;
use tower::ServiceExt;

use crate::support::{bright, feed_files, ok, serve, sql_csv, terminate};

const TOKEN: &str = "brt_test-token-of-an-integration-engine";
const KEY: &[u8] = b"an http ingest test key";

/// A messy extract as trusts produce them: a byte-order mark, CRLF line ends, padded and
/// quoted fields (one with a comma), a blank line, UK dates.
const ED_EXTRACT: &str = "\u{feff}attendance_id,site,nhs_number,arrival,arrival_mode,acuity,departure,disposal,chief_complaint\r\n\
X01-ED1, NGH ,943 476 5919,01/07/2025 09:30:00,ambulance,2,01/07/2025 13:10:00,admitted,\"chest pain, radiating\"\r\n\
\r\n\
X01-ED2,NGH,4010232137,01/07/2025 10:05,walk_in,4,,,\"fall\"\r\n\
X01-ED3,NGH,,2025-07-01 23:59:59,other,,02/07/2025 01:00,discharged,\r\n";

pub(crate) struct Pipeline {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) engine: Arc<QueryEngine>,
    pub(crate) sink: Arc<Sink>,
    pub(crate) state: AppState,
}

pub(crate) async fn pipeline() -> Pipeline {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = Lake::open(dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
    lake.ensure_tables().await.expect("tables");
    let config = QueryConfig::default();
    let engine = Arc::new(QueryEngine::open(&lake, &config).await.expect("engine"));
    let (sink, _) = Sink::open(engine.clone(), &dir.path().join("wal"))
        .await
        .expect("sink");
    let sink = Arc::new(sink);
    let source = HttpSource::new(
        sink.clone(),
        config.time_zone,
        PseudoKey::new(KEY).expect("key"),
    );
    let clients = Clients::new(&[ClientConfig {
        name: "integration-engine".into(),
        token_sha256: token_sha256(TOKEN),
        scopes: vec!["ingest:*".into()],
        expires: None,
    }])
    .expect("clients");
    let state = AppState::new("test", clients, 1 << 20, Some(Arc::new(source)));
    Pipeline {
        dir,
        engine,
        sink,
        state,
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    retry_after: Option<String>,
    pub(crate) body: serde_json::Value,
}

pub(crate) async fn post(state: &AppState, uri: &str, content_type: &str, body: &str) -> Answer {
    let request = Request::post(uri)
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("answers");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Answer {
        status,
        retry_after,
        body: serde_json::from_slice(&bytes).expect("a JSON body"),
    }
}

pub(crate) async fn count(engine: &QueryEngine, sql: &str) -> i64 {
    let output = engine.sql(sql).await.expect("query");
    output.batches[0]
        .column(0)
        .as_primitive::<bright_engine::arrow::datatypes::Int64Type>()
        .value(0)
}

#[tokio::test]
async fn posted_records_are_queryable_at_once_stored_once_and_all_or_nothing() {
    let p = pipeline().await;

    // A messy CSV extract: every record stored, queryable before any flush, pseudonymised.
    let answer = post(
        &p.state,
        "/api/ingest/ed_attendances?org_code=X01",
        "text/csv",
        ED_EXTRACT,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["received"], 3);
    assert_eq!(answer.body["stored"], 3);
    let output = p
        .engine
        .sql(
            "SELECT attendance_id, org_code, site, patient_key, CAST(arrival_time AS VARCHAR), \
             chief_complaint FROM ed_attendances ORDER BY attendance_id",
        )
        .await
        .expect("query");
    let batch = &output.batches[0];
    let text = |c: usize, r: usize| {
        let column = bright_engine::arrow::compute::cast(
            batch.column(c),
            &bright_engine::arrow::datatypes::DataType::Utf8,
        )
        .expect("casts");
        let strings = column.as_string::<i32>();
        (!strings.is_null(r)).then(|| strings.value(r).to_string())
    };
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(text(0, 0).as_deref(), Some("X01-ED1"));
    assert_eq!(text(1, 0).as_deref(), Some("X01"));
    assert_eq!(text(2, 0).as_deref(), Some("NGH"));
    let key = PseudoKey::new(KEY).expect("key");
    assert_eq!(text(3, 0), Some(key.patient_key(NHS_NUMBER, "9434765919")));
    assert_eq!(text(3, 2), None);
    // 09:30 on a July morning in the UK is 08:30 UTC.
    assert!(
        text(4, 0).is_some_and(|t| t.starts_with("2025-07-01T08:30:00")),
        "{:?}",
        text(4, 0)
    );
    assert_eq!(text(5, 0).as_deref(), Some("chest pain, radiating"));
    let clear = count(
        &p.engine,
        "SELECT count(*) FROM ed_attendances WHERE patient_key LIKE '%9434765919%'",
    )
    .await;
    assert_eq!(clear, 0, "an NHS number reached the lake");

    // The same request again (its answer was lost, say): acknowledged, stored once.
    let again = post(
        &p.state,
        "/api/ingest/ed_attendances?org_code=X01",
        "text/csv",
        ED_EXTRACT,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (
            again.body["stored"].as_u64(),
            again.body["duplicates"].as_u64()
        ),
        (Some(0), Some(3))
    );
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM ed_attendances").await,
        3
    );

    // NDJSON with a bad third line: 400 naming it, nothing of the request kept, the reason
    // recorded for the feed's owners.
    let events = [
        r#"{"event_id":"E1","case_id":"C1","org_code":"X01","site":"NGH","theatre":"T1","milestone":"sent_for","event_time":"2025-07-01T08:00:00+01:00"}"#,
        r#"{"event_id":"E2","case_id":"C1","org_code":"X01","site":"NGH","theatre":"T1","milestone":"knife_to_skin","event_time":"2025-07-01T08:40:00+01:00"}"#,
        r#"{"event_id":"E3","case_id":"C1","org_code":"X01","site":"NGH","theatre":"T1","milestone":"surgery_end","event_time":"yesterday"}"#,
    ]
    .join("\n");
    let refused = post(
        &p.state,
        "/api/ingest/theatre_events",
        "application/x-ndjson",
        &events,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["line"], 3);
    assert_eq!(refused.body["field"], "event_time");
    assert!(
        refused.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("'yesterday' is not a time")),
        "{}",
        refused.body
    );
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM theatre_events").await,
        0
    );
    assert_eq!(
        count(
            &p.engine,
            "SELECT count(*) FROM dq_issues WHERE feed = 'theatre_events' \
             AND reason LIKE 'line 3, field ''event_time''%' AND owner = 'Theatre systems team'"
        )
        .await,
        1
    );
    // Fixed, the same request is taken whole.
    let fixed = events.replace("yesterday", "2025-07-01T09:50:00+01:00");
    let taken = post(
        &p.state,
        "/api/ingest/theatre_events",
        "application/x-ndjson",
        &fixed,
    )
    .await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM theatre_events").await,
        3
    );

    // A JSON array: a bad element is named by its position.
    let shifts = r#"[
        {"shift_id":"S1","org_code":"X01","site":"NGH","ward":"W1","staff_group":"nursing",
         "planned_hours":11.5,"worked_hours":11.5,"contract":"bank","shift_date":"2025-07-01"},
        {"shift_id":"S2","org_code":"X01","site":"NGH","ward":"W1","staff_group":"nursing",
         "planned_hours":11.5,"worked_hours":"lots","contract":"agency","shift_date":"2025-07-01"}
    ]"#;
    let refused = post(
        &p.state,
        "/api/ingest/workforce_shifts",
        "application/json",
        shifts,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["record"], 2);
    assert_eq!(refused.body["field"], "worked_hours");

    // Unknown feeds are not found.
    let unknown = post(&p.state, "/api/ingest/ed_attendences", "text/csv", "a\n").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("ed_attendances")),
        "{}",
        unknown.body
    );

    // Flushed to the lake, the rows are still there once.
    p.sink.flush().await.expect("flush");
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM ed_attendances").await,
        3
    );
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM theatre_events").await,
        3
    );
}

#[tokio::test]
async fn a_busy_sink_answers_503_with_retry_after_until_a_flush_makes_room() {
    let p = pipeline().await;
    p.sink.set_max_buffered_rows(2);
    let first = post(
        &p.state,
        "/api/ingest/ed_attendances?org_code=X01",
        "text/csv",
        ED_EXTRACT,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(p.sink.busy());
    let body = ED_EXTRACT.replace("X01-ED", "X01-EE");
    let busy = post(
        &p.state,
        "/api/ingest/ed_attendances?org_code=X01",
        "text/csv",
        &body,
    )
    .await;
    assert_eq!(busy.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.retry_after.as_deref(), Some("2"));
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM ed_attendances").await,
        3
    );
    p.sink.flush().await.expect("flush");
    let retried = post(
        &p.state,
        "/api/ingest/ed_attendances?org_code=X01",
        "text/csv",
        &body,
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(
        count(&p.engine, "SELECT count(*) FROM ed_attendances").await,
        6
    );
}

/// `curl` with the response's status code on the last line.
pub(crate) fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--write-out", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs (scripts/test checks it is installed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (body, code) = text.rsplit_once('\n').expect("a status line");
    (code.trim().parse().expect("a status"), body.to_string())
}

#[test]
fn serve_takes_posts_from_a_client_with_a_token_made_by_bright_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = ok(&[
        "token",
        "new",
        "--name",
        "ed-system",
        "--scope",
        "ingest:ed_attendances",
        "--scope",
        "read",
    ]);
    let token = made
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("brt_"))
        .expect("a token line")
        .to_string();
    // The entry it prints is the configuration, as an operator would paste it.
    let entry = &made[made.find("[[dashboards.clients]]").expect("an entry")..];
    let config = dir.path().join("bright.toml");
    std::fs::write(&config, format!("[dashboards]\n{entry}")).expect("writes");
    ok(&["config", "check", config.to_str().expect("utf-8")]);

    let (child, _, port) = serve(
        dir.path(),
        "a serve http test key",
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--landing-poll-ms",
            "50",
            "--org",
            "X01",
        ],
    );
    let url = format!("http://127.0.0.1:{port}/api/ingest/ed_attendances?org_code=X01");
    let extract = dir.path().join("ed.csv");
    std::fs::write(&extract, ED_EXTRACT).expect("writes");
    let data = format!("@{}", extract.display());
    let (code, body) = curl(&["-H", "Content-Type: text/csv", "--data-binary", &data, &url]);
    assert_eq!(code, 401, "{body}");
    let auth = format!("Authorization: Bearer {token}");
    let (code, body) = curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        &data,
        &url,
    ]);
    assert_eq!(code, 200, "{body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(receipt["stored"], 3);
    let (code, _) = curl(&[
        "-H",
        &auth,
        "-H",
        "Content-Type: text/csv",
        "--data-binary",
        &data,
        &format!("http://127.0.0.1:{port}/api/ingest/beds?org_code=X01"),
    ]);
    assert_eq!(code, 403);
    let (code, body) = curl(&[&format!("http://127.0.0.1:{port}/health")]);
    assert_eq!(code, 200, "{body}");

    // An extract dropped in the landing folder is loaded and moved aside.
    let landing = dir.path().join("landing/ed_attendances");
    std::fs::write(
        landing.join("ed_extract.csv.part"),
        ED_EXTRACT.replace("X01-ED", "X01-EF"),
    )
    .expect("writes");
    // Renamed into place once whole, as a careful sender does.
    std::fs::rename(
        landing.join("ed_extract.csv.part"),
        landing.join("ed_extract.csv"),
    )
    .expect("renames");
    let processed = landing.join("processed/ed_extract.csv");
    let started = std::time::Instant::now();
    while !processed.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the dropped file was not processed"
        );
        std::thread::yield_now();
    }

    // Feed health counts both deliveries: the post and the file.
    let (code, body) = curl(&["-H", &auth, &format!("http://127.0.0.1:{port}/api/feeds")]);
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let ed = health["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .find(|f| f["feed"] == "ed_attendances")
        .expect("the ED feed");
    assert_eq!(
        (ed["records"].as_u64(), ed["deliveries"].as_u64()),
        (Some(6), Some(2)),
        "{ed}"
    );
    assert_eq!(ed["stale"], false);
    assert_eq!(ed["owner"], "ED systems team");
    terminate(child);
    let out = sql_csv(
        &dir.path().join("lake"),
        "SELECT attendance_id FROM ed_attendances ORDER BY 1",
    );
    assert_eq!(
        out.lines().skip(1).collect::<Vec<_>>(),
        [
            "X01-ED1", "X01-ED2", "X01-ED3", "X01-EF1", "X01-EF2", "X01-EF3"
        ]
    );
}

/// `bright ingest --feed NAME` loads extract files through the same checks as posts: a feed
/// folder contributes only that feed's files, a second load stores nothing new, and a file
/// with a bad record is refused whole, failing the command.
#[test]
fn ingest_loads_extract_files_once_and_refuses_a_bad_file_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let org_dir = feed_files(dir.path(), 2, 5, "2025-06-03");
    let org = org_dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // Data lines of the trust's ED extracts (each file has a header).
    let attendances: usize = std::fs::read_dir(org_dir.join("ed"))
        .expect("ed")
        .flatten()
        .map(|f| {
            std::fs::read_to_string(f.path())
                .expect("reads")
                .lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    assert!(attendances > 50, "{attendances}");
    let lake = dir.path().join("lake");
    let ingest = |feed: &str, path: &Path| {
        bright()
            .args(["ingest", "--feed", feed, "--org", &org, "--lake"])
            .arg(&lake)
            .arg("--wal")
            .arg(dir.path().join("wal"))
            .arg(path)
            .env("BRIGHT_PSEUDO_KEY", "an ingest files test key")
            .output()
            .expect("runs")
    };
    let count = |table: &str| -> usize {
        let out = sql_csv(&lake, &format!("SELECT count(*) AS n FROM {table}"));
        out.lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("a count")
    };
    // The whole trust folder: only the ED extracts are read.
    for round in 0..2 {
        let out = ingest("ed_attendances", &org_dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains("beds.csv"), "{stdout}");
        if round == 1 {
            assert!(stdout.contains(" 0 stored"), "{stdout}");
        }
        assert_eq!(count("ed_attendances"), attendances);
    }
    assert_eq!(count("beds"), 0);

    let bad = dir.path().join("beds_bad.csv");
    std::fs::write(
        &bad,
        "site,ward,ward_type,beds,valid_from\nS1,W1,general_acute,20,01/06/2025\nS1,W2,general_acute,twenty,01/06/2025\n",
    )
    .expect("writes");
    let out = ingest("beds", &bad);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("line 3, field 'beds': 'twenty' is not a whole number"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 files were refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count("beds"), 0, "the good line of a refused file was kept");
}

#[test]
fn a_person_added_with_bright_users_signs_in_to_bright_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("users.sqlite3");
    let added = ok(&[
        "users",
        "add",
        "flow.lead",
        "--role",
        "manager",
        "--db",
        db.to_str().expect("utf-8"),
    ]);
    let password = added
        .lines()
        .find_map(|l| l.strip_prefix("One-time password: "))
        .expect("a password")
        .to_string();
    // `serve` in the support module keeps its user store at dir/users.sqlite3: the same file.
    let (child, _, port) = serve(dir.path(), "a sign-in test key", &[]);
    let base = format!("http://127.0.0.1:{port}");
    let (code, _) = curl(&[&format!("{base}/api/feeds")]);
    assert_eq!(code, 401);
    let jar = dir.path().join("cookies.txt");
    let jar = jar.to_str().expect("utf-8");
    let (code, page) = curl(&[
        "--cookie-jar",
        jar,
        "--data-urlencode",
        "name=flow.lead",
        "--data-urlencode",
        &format!("password={password}"),
        "--data-urlencode",
        "next=/api/feeds",
        &format!("{base}/login"),
    ]);
    assert_eq!(code, 303, "{page}");
    let (code, body) = curl(&["--cookie", jar, &format!("{base}/api/feeds")]);
    assert_eq!(code, 200, "{body}");
    let feeds: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        feeds["feeds"].as_array().is_some_and(|f| !f.is_empty()),
        "{body}"
    );
    terminate(child);
}
