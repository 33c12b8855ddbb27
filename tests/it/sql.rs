//! Analysts' SQL on a running service: statements that run away fail on their own bounds
//! while the boards answer and an ADT message is acknowledged over MLLP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use crate::support::{ok, serve_with_env, terminate};

const TOKEN: &str = "sql-isolation-token-0123456789";

/// One HTTP/1.1 request with the token; the status and the body.
fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let headers = format!("Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n");
    exchange(port, method, path, &headers, body.unwrap_or(""))
}

/// One HTTP/1.1 request with `headers` (each ending in CRLF) and `body`.
fn exchange(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("server listening");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("reads");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn sql(port: u16, statement: &str) -> (u16, String) {
    let body = serde_json::json!({ "sql": statement }).to_string();
    request(port, "POST", "/api/sql", Some(&body))
}

#[test]
fn a_runaway_statement_fails_alone_while_the_boards_and_ingest_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A trust whose history reaches today, so the trackboard has today's lists.
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    ok(&[
        "generate",
        "--days",
        "15",
        "--seed",
        "7",
        "--end",
        &tomorrow,
        "--lake",
        dir.path().join("lake").to_str().expect("utf-8"),
    ]);
    let config = dir.path().join("bright.toml");
    std::fs::write(
        &config,
        "[sql]\ntime_limit_secs = 20\nmemory_limit_mib = 128\nrunning_per_client = 2\n",
    )
    .expect("writes");
    let (child, mllp, http) = serve_with_env(
        dir.path(),
        "a test key, 16 bytes or more",
        // Flushed each second, so the audit log reaches the lake's files while the test looks.
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--flush-secs",
            "1",
        ],
        &[("BRIGHT_ADMIN_TOKEN", TOKEN)],
    );
    // Both boards once computed: from here on their requests read frames.
    for board in ["/api/theatres", "/api/command-centre"] {
        let mut polls = 0;
        while request(http, "GET", board, None).0 != 200 {
            polls += 1;
            assert!(polls < 600, "{board} never answered");
            std::thread::yield_now();
        }
    }

    // Two statements at once: one that would count 9 × 10^12 rows (the time limit stops it),
    // one whose single group's array outgrows the analysts' 128 MiB (one group cannot spill:
    // the memory pool stops it; a count of distinct values would spill and be answered).
    let sent = Instant::now();
    let forever = std::thread::spawn(move || {
        let answer = sql(
            http,
            "SELECT count(*) FROM generate_series(1, 3000000) a(v) \
             CROSS JOIN generate_series(1, 3000000) b(w)",
        );
        (answer, Instant::now())
    });
    let greedy = std::thread::spawn(move || {
        let answer = sql(
            http,
            "SELECT cardinality(array_agg(v)) FROM generate_series(1, 100000000) a(v)",
        );
        (answer, Instant::now())
    });

    // Meanwhile: the boards answer, and an ADT message is acknowledged.
    let mut slowest = std::time::Duration::ZERO;
    for path in [
        "/api/theatres",
        "/theatres",
        "/api/command-centre",
        "/command-centre",
    ]
    .iter()
    .cycle()
    .take(40)
    {
        let asked = Instant::now();
        let (status, body) = request(http, "GET", path, None);
        slowest = slowest.max(asked.elapsed());
        assert_eq!(status, 200, "{path}: {body}");
    }
    let now = chrono::Utc::now().format("%Y%m%d%H%M%S");
    let message = dir.path().join("a01.hl7");
    std::fs::write(
        &message,
        format!(
            "MSH|^~\\&|PAS|X01|BRIGHT|X01|{now}||ADT^A01^ADT_A01|ISO1|P|2.4\r\
             EVN|A01|{now}\r\
             PID|1||9434765919^^^NHS^NH||SMITH^JANE||19700101|F\r\
             PV1|1|I|W1^^B1^S1|21|||||300||||||||||V1\r"
        ),
    )
    .expect("writes");
    let acks = crate::mllp_client::send(mllp, &message);
    assert!(acks.contains("MSA|AA|ISO1"), "{acks}");
    let served = Instant::now();

    let ((status, body), forever_ended) = forever.join().expect("the first statement's thread");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("time limit"), "{body}");
    let ((status, body), greedy_ended) = greedy.join().expect("the second statement's thread");
    assert!(
        (status == 422 && body.contains("time limit"))
            || (status == 400 && body.contains("Resources exhausted")),
        "{status}: {}",
        &body[..body.len().min(400)]
    );
    // The boards and the message were answered while the first statement still ran.
    assert!(
        forever_ended > served,
        "the statement ended before the rest was served"
    );
    eprintln!(
        "boards and MLLP served {:?} after the statements were sent; slowest board request \
         {:?}; the greedy statement ended after {:?} with {status}",
        served - sent,
        slowest,
        greedy_ended - sent
    );
    // And the service goes on: the stopped statements gave the analysts' threads back.
    let (status, body) = sql(http, "SELECT count(*) AS n FROM adt_events");
    assert_eq!(status, 200, "{body}");
    assert_eq!(request(http, "GET", "/health", None).0, 200);

    // The audit log: only admins read it; a failed sign-in and every statement are in it.
    let (status, body) = sql(http, "SELECT * FROM audit_log");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("audit_log is for admins only"), "{body}");
    let (status, _) = exchange(
        http,
        "POST",
        "/login",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "name=nobody.here&password=not-the-password&next=%2F",
    );
    assert_eq!(status, 401);
    let lake = dir.path().join("lake");
    let mut seen = String::new();
    for _ in 0..600 {
        seen = crate::support::sql_csv(
            &lake,
            "SELECT actor, door, action, outcome, rows, detail FROM audit_log ORDER BY at",
        );
        if seen.contains("login_failed") && seen.matches(",sql,").count() >= 4 {
            break;
        }
        std::thread::yield_now();
    }
    assert!(
        seen.contains("user:nobody.here,login,login_failed,refused"),
        "{seen}"
    );
    assert!(
        seen.contains("admin-token,http,sql,stopped,,\"SELECT count(*) FROM generate_series"),
        "{seen}"
    );
    assert!(
        seen.contains("SELECT count(*) AS n FROM adt_events"),
        "{seen}"
    );
    assert!(
        seen.contains("admin-token,http,sql,refused,,SELECT * FROM audit_log"),
        "{seen}"
    );
    terminate(child);
}

/// The patient identifiers in the feed files under `org`: NHS numbers, local record numbers,
/// family and given names, dates of birth and postcodes of the HL7 PID segments, and the
/// NHS numbers and local numbers of the ED extract.
fn identifiers(org: &std::path::Path) -> std::collections::HashSet<String> {
    let mut found = std::collections::HashSet::new();
    let files = |folder: &str| {
        std::fs::read_dir(org.join(folder))
            .expect("a feed folder")
            .flatten()
            .map(|f| std::fs::read_to_string(f.path()).expect("reads"))
            .collect::<Vec<_>>()
    };
    for text in files("adt") {
        for pid in text.split(['\r', '\n']).filter(|s| s.starts_with("PID|")) {
            let fields: Vec<&str> = pid.split('|').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or("");
            for id in field(3).split('~') {
                found.insert(id.split('^').next().unwrap_or("").to_string());
            }
            found.extend(field(5).split('^').take(2).map(str::to_string));
            found.insert(field(7).to_string());
            // The postcode: the address's fifth component.
            found.insert(field(11).split('^').nth(4).unwrap_or("").to_string());
        }
    }
    for text in files("ed") {
        for line in text.lines().skip(1) {
            let columns: Vec<&str> = line.split(',').collect();
            found.extend(columns.iter().skip(2).take(2).map(|c| c.to_string()));
        }
    }
    found.retain(|id| id.len() >= 3);
    found
}

/// Whether `text` holds one of `ids`, whole or as a run of letters and digits within it.
fn holds<'a>(text: &str, ids: &'a std::collections::HashSet<String>) -> Option<&'a String> {
    if let Some(id) = ids.get(text) {
        return Some(id);
    }
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find_map(|token| ids.get(token))
}

#[test]
fn no_patient_identifier_reaches_the_lake() {
    use bright_engine::arrow::array::{Array, StringArray};
    use bright_engine::arrow::datatypes::DataType;

    let dir = tempfile::tempdir().expect("tempdir");
    let org = crate::support::feed_files(dir.path(), 2, 21, "2025-06-03");
    let ids = identifiers(&org);
    assert!(ids.len() > 500, "{} identifiers to look for", ids.len());
    let lake = dir.path().join("lake");
    for (feed, folder) in [("hl7_adt", "adt"), ("ed_attendances", "ed")] {
        let out = crate::support::bright()
            .args(["ingest", "--feed", feed, "--org", "X01", "--lake"])
            .arg(&lake)
            .arg("--wal")
            .arg(dir.path().join("wal"))
            .arg(org.join(folder))
            .env("BRIGHT_PSEUDO_KEY", "a test key, 16 bytes or more")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{feed}: {out:?}");
    }

    // Every file of the lake: Parquet decoded value by value, the rest (the Delta logs with
    // their column statistics) as text.
    let mut files = vec![lake.clone()];
    let (mut values, mut parquet_files) = (0usize, 0usize);
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("a folder")
                    .flatten()
                    .map(|e| e.path()),
            );
            continue;
        }
        if path.extension().is_some_and(|e| e == "parquet") {
            parquet_files += 1;
            let file = std::fs::File::open(&path).expect("opens");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("a Parquet file")
                    .build()
                    .expect("a reader");
            for batch in reader {
                let batch = batch.expect("a batch");
                for (column, field) in batch.columns().iter().zip(batch.schema().fields()) {
                    let text = bright_engine::arrow::compute::cast(column, &DataType::Utf8)
                        .expect("as text");
                    let text = text
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("strings");
                    for value in text.iter().flatten() {
                        values += 1;
                        if let Some(id) = holds(value, &ids) {
                            panic!("{}: column {} holds '{id}'", path.display(), field.name());
                        }
                    }
                }
            }
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path).expect("reads")).to_string();
            if let Some(id) = holds(&text, &ids) {
                panic!("{} holds '{id}'", path.display());
            }
        }
    }
    assert!(
        parquet_files > 0 && values > 20_000,
        "{parquet_files} files, {values} values"
    );
    // The pseudonym is there instead: analysts join on it.
    let keys = crate::support::sql_csv(
        &lake,
        "SELECT count(DISTINCT patient_key) AS n FROM adt_events",
    );
    let n: u64 = keys
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a count");
    assert!(n > 100, "{n} patients");
}
