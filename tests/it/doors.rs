//! Analysts' SQL doors with their real clients: psql (Debian's postgresql-client) and
//! psycopg 3 and the JDBC driver BI tools use on the Postgres door, ADBC's Flight SQL driver
//! on the Flight SQL door, curl on `POST /api/sql`. They sign
//! in, list the tables, run a KPI view and an ad-hoc join with exactly `bright sql`'s numbers,
//! are refused what the sandbox refuses, and a psql Ctrl-C stops a long query.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bright_dashboards::auth::token_sha256;

use crate::moto::python;
use crate::support::{add_user, ok, serve_doors, sql_csv, terminate};

const KEY: &str = "a test key, 16 bytes or more";
const PASSWORD: &str = "a long enough password 1";
/// An API token with the `sql` scope, one that expired, and one that may only read pages.
const ROBOT: &str = "robot-token-0123456789abcdef";
const EXPIRED: &str = "expired-token-0123456789abcd";
const READER: &str = "reader-token-0123456789abcde";

/// A KPI view and an ad-hoc join across tables, as analysts run them.
const KPI_VIEW: &str = "SELECT period, site, numerator, denominator, value \
     FROM kpi.ed_4h_performance ORDER BY period, site";
const JOIN: &str = "SELECT a.ward, count(*) AS admissions, max(b.beds) AS beds \
     FROM adt_events a JOIN beds b ON a.ward = b.ward \
     WHERE a.event_type = 'A01' GROUP BY a.ward ORDER BY a.ward";

/// psql with `args` as `user`, rows unaligned and comma-separated.
fn psql(port: u16, user: &str, password: &str, args: &[&str]) -> Output {
    psql_command(port, user, password, args)
        .output()
        .expect("psql runs (scripts/test installs postgresql-client)")
}

fn psql_command(port: u16, user: &str, password: &str, args: &[&str]) -> Command {
    let mut command = Command::new("psql");
    command
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname=bright sslmode=disable \
             connect_timeout=20"
        ))
        .args(["-X", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGPASSWORD", password);
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `bright sql`'s answer as CSV rows, without the header.
fn bright_rows(lake: &Path, sql: &str) -> Vec<String> {
    sql_csv(lake, sql)
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Two rows of comma-separated values say the same: each value the same text, or the same
/// number (psql writes 178 where the CSV writer writes 178.0).
fn same_row(ours: &str, theirs: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (ours.split(',').collect(), theirs.split(',').collect());
    a.len() == b.len()
        && a.iter().zip(&b).all(|(x, y)| {
            x == y || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p == q)
        })
}

fn assert_same(ours: &[String], theirs: &[String], what: &str) {
    assert!(!ours.is_empty(), "{what}: bright sql answered no rows");
    assert_eq!(ours.len(), theirs.len(), "{what}: {theirs:?}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!(same_row(a, b), "{what}: bright sql {a} / the door {b}");
    }
}

/// The Postgres JDBC driver's jar (Debian's libpostgresql-jdbc-java), or `BRIGHT_JDBC_JAR`.
fn jdbc_driver() -> String {
    std::env::var("BRIGHT_JDBC_JAR").unwrap_or_else(|_| "/usr/share/java/postgresql.jar".into())
}

/// curl posting `sql` to `POST /api/sql` with `token`, asking for CSV: status and body.
fn sql_over_http(port: u16, token: &str, sql: &str) -> (u16, String) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    crate::http_ingest::curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: text/csv",
        "--data-binary",
        &body,
        &format!("http://127.0.0.1:{port}/api/sql"),
    ])
}

/// The answers of a client of `door` ("pg": psycopg, "flight": ADBC) to `requests` (see
/// sql_client.py), one JSON value each.
fn client(
    door: &str,
    port: u16,
    user: &str,
    password: &str,
    requests: serde_json::Value,
) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sql_client.py");
    let mut child = Command::new(python())
        .args([script, door, &port.to_string(), user, password])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(requests.to_string().as_bytes())
        .expect("writes");
    let out = child.wait_with_output().expect("ends");
    assert!(
        out.status.success(),
        "the {door} client failed (scripts/test installs psycopg and adbc-driver-flightsql): {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// The rows of one psycopg answer, comma-separated as the CSV writer writes them.
fn joined(answer: &serde_json::Value) -> Vec<String> {
    answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("rows expected: {answer}"))
        .iter()
        .map(|row| {
            row.as_array()
                .expect("a row")
                .iter()
                .map(|v| v.as_str().expect("text").to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn analysts_tools_sign_in_query_and_are_sandboxed_on_every_sql_door() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = dir.path().join("lake");
    ok(&[
        "generate",
        "--days",
        "6",
        "--seed",
        "11",
        "--lake",
        lake.to_str().expect("utf-8"),
    ]);
    let users = dir.path().join("users.sqlite3");
    add_user(&users, "ana", "analyst", PASSWORD);
    add_user(&users, "vic", "viewer", PASSWORD);
    add_user(&users, "ada", "admin", PASSWORD);
    let config = dir.path().join("bright.toml");
    std::fs::write(
        &config,
        format!(
            "[sql]\ntime_limit_secs = 10\n\n\
             [[dashboards.clients]]\nname = \"robot\"\ntoken_sha256 = \"{}\"\nscopes = [\"sql\"]\n\
             expires = \"2999-12-31\"\n\n\
             [[dashboards.clients]]\nname = \"old-robot\"\ntoken_sha256 = \"{}\"\n\
             scopes = [\"sql\"]\nexpires = \"2020-01-01T00:00:00Z\"\n\n\
             [[dashboards.clients]]\nname = \"reader\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\"]\n",
            token_sha256(ROBOT),
            token_sha256(EXPIRED),
            token_sha256(READER)
        ),
    )
    .expect("writes");
    // TLS is offered; clients that ask for it get it.
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let (child, ports) = serve_doors(
        dir.path(),
        KEY,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--flush-secs",
            "1",
            "--pg-tls-cert",
            cert.to_str().expect("utf-8"),
            "--pg-tls-key",
            key.to_str().expect("utf-8"),
            "--pg-addr",
            "0.0.0.0:0",
        ],
        &[],
    );
    let (pg, flight) = (ports.pg, ports.flight);
    let secured = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={pg} user=ana dbname=bright sslmode=require connect_timeout=20"
        ))
        .args(["-X", "-c", "\\conninfo", "-c", "SELECT count(*) FROM beds"])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .expect("psql runs");
    assert!(secured.status.success(), "{}", text(&secured.stderr));
    assert!(
        text(&secured.stdout).contains("SSL connection"),
        "{}",
        text(&secured.stdout)
    );
    // From another machine (here: this machine's network address rather than loopback) a
    // password is taken only inside TLS.
    let outward = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            // Only picks the route: a UDP "connection" sends nothing.
            socket.connect("203.0.113.1:9")?;
            socket.local_addr()
        })
        .expect("this machine has a network address besides loopback")
        .ip();
    assert!(!outward.is_loopback());
    for (mode, let_in) in [("disable", false), ("require", true)] {
        let tried = Command::new("psql")
            .arg(format!(
                "host={outward} port={pg} user=ana dbname=bright sslmode={mode} connect_timeout=20"
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM beds"])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql runs");
        assert_eq!(
            tried.status.success(),
            let_in,
            "{mode}: {}",
            text(&tried.stderr)
        );
        if !let_in {
            assert!(
                text(&tried.stderr).contains("takes passwords only over TLS"),
                "{}",
                text(&tried.stderr)
            );
        }
    }

    // psql: the tables and views are listed, and a table described.
    let listed = psql(pg, "ana", PASSWORD, &["-c", "\\dt", "-c", "\\dv kpi.*"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed = text(&listed.stdout);
    for name in [
        "lake,adt_events,table",
        "lake,beds,table",
        "kpi,ed_4h_performance,view",
    ] {
        assert!(listed.contains(name), "{name} not in\n{listed}");
    }
    let described = psql(pg, "ana", PASSWORD, &["-c", "\\d beds"]);
    let described = text(&described.stdout);
    assert!(described.contains("ward,text"), "{described}");
    assert!(described.contains("valid_from,date"), "{described}");
    // What clients and BI tools send on connect is answered.
    let greeted = psql(
        pg,
        "ana",
        PASSWORD,
        &[
            "-c",
            "SET application_name = 'Power BI'",
            "-c",
            "SET extra_float_digits = 3",
            "-c",
            "SET DateStyle = 'ISO'",
            "-c",
            "SELECT current_schema() AS s, current_database() AS d",
            "-c",
            "SELECT version() AS v",
            "-c",
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'kpi'",
        ],
    );
    assert!(greeted.status.success(), "{}", text(&greeted.stderr));
    let greeted = text(&greeted.stdout);
    let lines: Vec<&str> = greeted.lines().collect();
    assert_eq!(
        &lines[..4],
        ["SET", "SET", "SET", "lake,bright"],
        "{greeted}"
    );
    assert!(lines[4].contains("DataFusion"), "{greeted}");
    assert!(lines[5].parse::<u32>().is_ok_and(|n| n >= 30), "{greeted}");

    // The same numbers as `bright sql`, for a KPI view and a join, by psql, psycopg and ADBC,
    // as a person (password) and as an API client (token).
    for sql in [KPI_VIEW, JOIN] {
        let ours = bright_rows(&lake, sql);
        let theirs = psql(pg, "ana", PASSWORD, &["-c", sql]);
        assert!(theirs.status.success(), "{}", text(&theirs.stderr));
        let theirs: Vec<String> = text(&theirs.stdout).lines().map(str::to_string).collect();
        assert_same(&ours, &theirs, &format!("psql: {sql}"));
        let answers = client(
            "pg",
            pg,
            "robot",
            ROBOT,
            serde_json::json!([{ "sql": sql }]),
        );
        assert_same(&ours, &joined(&answers[0]), &format!("psycopg: {sql}"));
        let (status, body) = sql_over_http(ports.http, ROBOT, sql);
        assert_eq!(status, 200, "{body}");
        let theirs: Vec<String> = body.lines().skip(1).map(str::to_string).collect();
        assert_same(&ours, &theirs, &format!("curl: {sql}"));
        for (user, password) in [("ana", PASSWORD), ("robot", ROBOT)] {
            let answers = client(
                "flight",
                flight,
                user,
                password,
                serde_json::json!([{ "sql": sql }]),
            );
            assert_same(
                &ours,
                &joined(&answers[0]),
                &format!("ADBC as {user}: {sql}"),
            );
        }
    }
    // A JDBC client, as BI tools are: the catalogue questions they ask on connect answered,
    // and a statement prepared on the server with `?` bound, with `bright sql`'s numbers.
    let jdbc = Command::new("java")
        .arg("-cp")
        .arg(jdbc_driver())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/JdbcClient.java"
        ))
        .args([
            &pg.to_string(),
            "ana",
            PASSWORD,
            &JOIN.replace("'A01'", "?"),
            "A01",
        ])
        .output()
        .expect("java runs (scripts/test installs the JDBC driver)");
    assert!(jdbc.status.success(), "{}", text(&jdbc.stderr));
    let said = text(&jdbc.stdout);
    let mut said = said.lines();
    assert_eq!(said.next(), Some("schemas: kpi,lake,pg_catalog"));
    let tables = said.next().unwrap_or_default();
    assert!(
        tables.contains(",beds,") && tables.contains("adt_events"),
        "{tables}"
    );
    let columns = said.next().unwrap_or_default();
    assert!(
        columns.contains("ward text") && columns.contains("valid_from date"),
        "{columns}"
    );
    let rows: Vec<String> = said.map(str::to_string).collect();
    assert_same(&bright_rows(&lake, JOIN), &rows, "JDBC");

    // Arrow types come through as they are.
    let typed = &client(
        "flight",
        flight,
        "ana",
        PASSWORD,
        serde_json::json!([{
            "sql": "SELECT event_time, CAST(event_time AS DATE) AS day, \
                    CAST(12.5 AS DECIMAL(10, 2)) AS money, CAST(NULL AS BIGINT) AS nothing \
                    FROM adt_events ORDER BY event_time LIMIT 1",
            "types": true,
        }]),
    )[0];
    assert_eq!(
        typed["columns"],
        serde_json::json!([
            ["event_time", "timestamp[us, tz=UTC]"],
            ["day", "date32[day]"],
            ["money", "decimal128(10, 2)"],
            ["nothing", "int64"]
        ]),
        "{typed}"
    );
    assert_eq!(
        typed["types"],
        serde_json::json!([["datetime+tz", "date", "Decimal", "NoneType"]]),
        "{typed}"
    );

    // Prepared statements with parameters (psycopg binds them on the server), and the types
    // Postgres clients expect back.
    let ward = bright_rows(&lake, "SELECT ward FROM beds ORDER BY ward LIMIT 1").remove(0);
    let by_param = client(
        "pg",
        pg,
        "ana",
        PASSWORD,
        serde_json::json!([
            {
                "sql": "SELECT a.ward, count(*) AS admissions, max(b.beds) AS beds \
                        FROM adt_events a JOIN beds b ON a.ward = b.ward \
                        WHERE a.event_type = %s AND a.ward = %s GROUP BY a.ward",
                "params": ["A01", ward],
            },
            {
                "sql": "SELECT event_time, CAST(event_time AS DATE) AS day, \
                        CAST(12.5 AS DECIMAL(10, 2)) AS money, CAST(NULL AS BIGINT) AS nothing, \
                        count(*) OVER () > %s AS many \
                        FROM adt_events ORDER BY event_time LIMIT 1",
                "params": [0],
                "types": true,
            },
        ]),
    );
    let expected: Vec<String> = bright_rows(&lake, JOIN)
        .into_iter()
        .filter(|row| row.starts_with(&format!("{ward},")))
        .collect();
    assert_same(&expected, &joined(&by_param[0]), "a prepared statement");
    let typed = &by_param[1];
    assert_eq!(
        typed["columns"],
        serde_json::json!([
            ["event_time", "timestamptz"],
            ["day", "date"],
            ["money", "numeric"],
            ["nothing", "int8"],
            ["many", "bool"]
        ]),
        "{typed}"
    );
    assert_eq!(
        typed["types"],
        serde_json::json!([["datetime+tz", "date", "Decimal", "NoneType", "bool"]]),
        "{typed}"
    );
    assert_eq!(typed["rows"][0][2], "12.50", "{typed}");

    // Tokens an HTTP client is refused with: expired, and without the `sql` scope.
    let (status, body) = sql_over_http(ports.http, EXPIRED, "SELECT 1 AS x");
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("this token expired at 2020-01-01 00:00 UTC"),
        "{body}"
    );
    let (status, body) = sql_over_http(ports.http, READER, "SELECT 1 AS x");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("this token may not run it"), "{body}");

    // Sign-in refusals: a wrong password, an unknown person, a viewer, an expired token, a
    // token without the `sql` scope; on both doors.
    let refusals = [
        (
            "ana",
            "not the password",
            "password authentication failed for user \"ana\"",
        ),
        (
            "nobody",
            PASSWORD,
            "password authentication failed for user \"nobody\"",
        ),
        ("vic", PASSWORD, "the role 'viewer' may not run it"),
        (
            "old-robot",
            EXPIRED,
            "this token expired at 2020-01-01 00:00 UTC",
        ),
        ("reader", READER, "this token may not run it"),
    ];
    for (user, password, said) in refusals {
        let refused = psql(pg, user, password, &["-c", "SELECT 1"]);
        assert!(!refused.status.success(), "{user} was let in");
        let stderr = text(&refused.stderr);
        assert!(stderr.contains(said), "psql as {user}: {stderr}");
        for door in ["pg", "flight"] {
            let port = if door == "pg" { pg } else { flight };
            let answers = client(
                door,
                port,
                user,
                password,
                serde_json::json!([{ "sql": "SELECT 1 AS x" }]),
            );
            assert!(
                answers[0]["error"]
                    .as_str()
                    .is_some_and(|e| e.contains(said)),
                "{door} as {user}: {}",
                answers[0]
            );
        }
    }

    // The escape list, through psql (simple queries) and psycopg (prepared statements):
    // every attempt refused, nothing written.
    let jail = dir.path().join("jail");
    std::fs::create_dir(&jail).expect("creates");
    std::fs::write(jail.join("secret.csv"), "a,b\n1,2\n").expect("writes");
    let beds = "SELECT count(*) AS n, sum(beds) AS beds FROM beds";
    let beds_before = bright_rows(&lake, beds);
    let escapes = escapes::escapes(&jail);
    for escape in &escapes {
        let refused = psql(pg, "ana", PASSWORD, &["-c", escape]);
        assert!(!refused.status.success(), "psql ran: {escape}");
        assert!(
            text(&refused.stderr).contains("ERROR:"),
            "{escape}: {}",
            text(&refused.stderr)
        );
    }
    let requests: Vec<serde_json::Value> = escapes
        .iter()
        .map(|sql| serde_json::json!({ "sql": sql.replace('%', "%%"), "params": [] }))
        .collect();
    for (escape, answer) in escapes
        .iter()
        .zip(client("pg", pg, "ana", PASSWORD, requests.into()))
    {
        assert!(
            answer["error"].is_string(),
            "psycopg ran: {escape}: {answer}"
        );
    }
    let requests: Vec<serde_json::Value> = escapes
        .iter()
        .map(|sql| serde_json::json!({ "sql": sql }))
        .collect();
    let answers = client("flight", flight, "ana", PASSWORD, requests.into());
    assert_eq!(answers.len(), escapes.len());
    for (escape, answer) in escapes.iter().zip(answers) {
        assert!(answer["error"].is_string(), "ADBC ran: {escape}: {answer}");
    }
    let mut left: Vec<String> = std::fs::read_dir(&jail)
        .expect("reads")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["secret.csv"]);
    assert_eq!(bright_rows(&lake, beds), beds_before);

    // Runaways, refused before they are parsed or stopped with a message; the door goes on.
    let unions = vec!["SELECT 1 AS x"; 5_000].join(" UNION ALL ");
    // Never-ending, on both doors at once (a client may run two statements): each stopped
    // at the time limit.
    let recursive = "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) \
                     SELECT count(*) AS n FROM t";
    let over_psql = std::thread::spawn(move || psql(pg, "ana", PASSWORD, &["-c", recursive]));
    let over_adbc = client(
        "flight",
        flight,
        "ana",
        PASSWORD,
        serde_json::json!([{ "sql": recursive }]),
    );
    assert!(
        over_adbc[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("time limit")),
        "ADBC: {}",
        over_adbc[0]
    );
    let over_psql = over_psql.join().expect("psql's thread");
    assert!(
        text(&over_psql.stderr).contains("time limit"),
        "{}",
        text(&over_psql.stderr)
    );
    for (runaway, said) in [
        (unions.as_str(), "refused: the statement has"),
        ("SELECT length(repeat('x', 2000000000)) AS n", "16 MiB"),
        ("SELECT length(lpad('x', 2000000000)) AS n", "lpad"),
        (
            "SELECT cardinality(array_repeat(1, 2000000000)) AS n",
            "array_repeat",
        ),
        (
            "SELECT cardinality(generate_series(1, 1000000000)) AS n",
            "generate_series",
        ),
    ] {
        let answers = client(
            "flight",
            flight,
            "ana",
            PASSWORD,
            serde_json::json!([{ "sql": runaway }]),
        );
        assert!(
            answers[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains(said)),
            "ADBC: {}",
            answers[0]
        );
        let stopped = psql(pg, "ana", PASSWORD, &["-c", runaway]);
        assert!(!stopped.status.success());
        assert!(
            text(&stopped.stderr).contains(said),
            "{}",
            text(&stopped.stderr)
        );
    }
    // The audit log: for admins only (an analyst is refused, an admin reads it).
    let refused = psql(
        pg,
        "ana",
        PASSWORD,
        &["-c", "SELECT count(*) FROM audit_log"],
    );
    assert!(text(&refused.stderr).contains("audit_log is for admins only"));

    // Views of the trackboard (each patient's operation, live) are in the audit log: once a
    // client every few minutes, however often it reads.
    let board = format!("http://127.0.0.1:{}/api/theatres", ports.http);
    let bearer = format!("Authorization: Bearer {READER}");
    let mut answered = 0;
    for _ in 0..600 {
        let (status, body) = crate::http_ingest::curl(&["-H", &bearer, &board]);
        assert!(status == 200 || status == 503, "{status}: {body}");
        answered += usize::from(status == 200);
        if answered == 3 {
            break;
        }
    }
    assert_eq!(answered, 3, "the trackboard never answered");

    // Ctrl-C in psql cancels a query that would run far past the test; the door answers the
    // next one.
    let cancelled_after = (0..5)
        .find_map(|_| interrupted(pg))
        .expect("psql's Ctrl-C cancelled the query");
    let next = psql(pg, "ana", PASSWORD, &["-c", "SELECT count(*) FROM beds"]);
    assert!(next.status.success(), "{}", text(&next.stderr));

    // Every sign-in and statement of the door is in the audit log, which the admin reads
    // through the door itself.
    let mut seen = String::new();
    for _ in 0..600 {
        let out = psql(
            pg,
            "ada",
            PASSWORD,
            &[
                "-c",
                "SELECT actor, door, action, outcome FROM audit_log \
                 WHERE door IN ('pg', 'flight', 'page') ORDER BY at",
            ],
        );
        seen = text(&out.stdout);
        if seen.contains("user:ana,pg,sql,cancelled") {
            break;
        }
        std::thread::yield_now();
    }
    for line in [
        "user:ana,pg,login,ok",
        "user:ana,pg,login_failed,refused",
        "user:vic,pg,login_failed,refused",
        "user:old-robot,pg,login_failed,refused",
        "robot,pg,login,ok",
        "robot,pg,sql,answered",
        "user:ana,pg,sql,refused",
        "user:ana,pg,sql,cancelled",
        "user:ana,flight,login,ok",
        "user:vic,flight,login_failed,refused",
        "user:ana,flight,sql,answered",
        "user:ana,flight,sql,refused",
        "robot,flight,sql,answered",
    ] {
        assert!(seen.contains(line), "{line} not in\n{seen}");
    }
    // Recorded before the cancelled statement, which is in: the trackboard's three reads are
    // one view.
    assert_eq!(seen.matches("reader,page,view,ok").count(), 1, "{seen}");
    eprintln!("psql's query was cancelled after {cancelled_after:?}");
    terminate(child);
}

/// Runs a never-ending query in psql and interrupts psql (SIGINT, as Ctrl-C) until it ends:
/// how long that took, when psql said the query was cancelled. `None` when the interrupt came
/// before psql had sent the query (psql then just stops), so the caller tries again.
fn interrupted(pg: u16) -> Option<Duration> {
    use std::io::BufRead;
    let mut long = psql_command(
        pg,
        "ana",
        PASSWORD,
        &[
            "-c",
            "\\warn sending",
            "-c",
            "SELECT count(*) FROM generate_series(1, 3000000) a(v) \
             CROSS JOIN generate_series(1, 3000000) b(w)",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("psql runs");
    let stderr = long.stderr.take().expect("piped");
    let (said, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = said.send(line);
        }
    });
    // psql has signed in and is about to send the query.
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("psql signed in");
    assert_eq!(first, "sending");
    let started = Instant::now();
    loop {
        if long.try_wait().expect("waits").is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "psql was not cancelled"
        );
        Command::new("kill")
            .args(["-INT", &long.id().to_string()])
            .status()
            .expect("kill runs");
        // Between interrupts, psql gets time to send its cancel request.
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let took = started.elapsed();
    let rest: Vec<String> = lines.iter().collect();
    rest.iter()
        .any(|l| l.contains("canceling statement due to user request"))
        .then_some(took)
}

#[path = "../../engine/tests/data/escapes.rs"]
mod escapes;
