//! `bright demo` on an empty lake: builds it, plans every KPI, serves `/health`, replays the
//! simulated day through the ingest listeners (fast), stops cleanly on Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::support::{bright, ok};

fn get(address: &str, path: &str, token: Option<&str>) -> String {
    let mut stream = TcpStream::connect(address).expect("server listening");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn demo_creates_the_lake_serves_health_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut child = bright()
        .args([
            "demo",
            "--port",
            "0",
            "--pg-port",
            "0",
            "--flight-port",
            "0",
            "--days",
            "20",
            // An hour of the replayed day a second.
            "--speed",
            "3600",
            "--lake",
            lake.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    // Ready when it prints where to look.
    let mut printed = Vec::new();
    let mut sign_in = None;
    let address = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("demo exited early: {printed:?}"))
            .unwrap();
        printed.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("Sign in:") {
            sign_in = rest
                .trim()
                .split_once(" / ")
                .map(|(n, p)| (n.to_string(), p.to_string()));
        }
        if let Some(url) = line.trim().strip_prefix("Health:") {
            break url
                .trim()
                .trim_start_matches("http://")
                .trim_end_matches("/health")
                .to_string();
        }
    };
    assert!(
        printed
            .iter()
            .any(|l| l.contains("Planted process changes")),
        "{printed:?}"
    );
    // Every KPI was planned before it served.
    let kpis = loop {
        let line = lines.next().expect("more output").unwrap();
        if let Some(rest) = line.trim().strip_prefix("KPIs:") {
            break rest.to_string();
        }
    };
    let planned: usize = kpis.split_whitespace().next().unwrap().parse().unwrap();
    assert!(planned >= 25, "{kpis}");
    let token = loop {
        let line = lines.next().expect("more output").unwrap();
        if let Some(rest) = line.trim().strip_prefix("Token:") {
            break rest.trim().to_string();
        }
    };
    // Keep reading the output so the demo never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let response = get(&address, "/health", None);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");

    // The printed name and password sign in, and the home page opens (its KPIs were
    // computed before the address was printed).
    let (name, password) = sign_in.unwrap_or_else(|| panic!("no sign-in printed: {printed:?}"));
    let form = format!("name={name}&password={password}&next=%2F");
    let mut stream = TcpStream::connect(&address).expect("server listening");
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut signed_in = String::new();
    stream.read_to_string(&mut signed_in).unwrap();
    assert!(signed_in.starts_with("HTTP/1.1 303"), "{signed_in}");
    let cookie = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {signed_in}"))
        .to_string();
    let mut stream = TcpStream::connect(&address).expect("server listening");
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut home = String::new();
    stream.read_to_string(&mut home).unwrap();
    assert!(home.starts_with("HTTP/1.1 200"), "{home}");
    assert!(
        home.contains("Your dashboards") && home.contains("Data as of"),
        "{home}"
    );

    // The lake it made is queryable while it runs.
    let count = ok(&[
        "sql",
        "SELECT count(*) > 5000 AS plenty FROM ed_attendances",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(count, "plenty\ntrue\n");

    // The replay reaches the listeners: ADT over MLLP and ED attendances over the ingest API.
    let started = std::time::Instant::now();
    loop {
        let response = get(&address, "/api/feeds", Some(&token));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = &response[response.find("\r\n\r\n").expect("a body") + 4..];
        let feeds: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let delivered = |name: &str| {
            feeds["feeds"]
                .as_array()
                .expect("feeds")
                .iter()
                .find(|f| f["feed"] == name)
                .and_then(|f| f["records"].as_u64())
                .unwrap_or(0)
        };
        if delivered("hl7_adt") > 0 && delivered("ed_attendances") > 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no replayed deliveries: {body}"
        );
    }

    // The boards read the demo's clock: an hour a second, so the trackboard is computed for a
    // time well ahead of the wall clock, with the replayed milestones on it. Looked at each
    // time the board's stream says it moved.
    let mut stream = TcpStream::connect(&address).expect("server listening");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "GET /theatres/stream HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut chunk = [0u8; 1 << 16];
    loop {
        let response = get(&address, "/api/theatres", Some(&token));
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = &response[response.find("\r\n\r\n").expect("a body") + 4..];
        let board: serde_json::Value = serde_json::from_str(body).expect("JSON");
        let as_of = chrono::DateTime::parse_from_rfc3339(board["as_of"].as_str().expect("as_of"))
            .expect("a time");
        let ahead = as_of.to_utc() - chrono::Utc::now();
        let moving = board["tiles"]
            .as_array()
            .expect("tiles")
            .iter()
            .any(|t| t["status"] != "idle");
        if ahead > chrono::Duration::hours(2) && moving {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the trackboard does not follow the demo's clock: {ahead} ahead, {body}"
        );
        // The next frame (or ping) of the board's stream.
        let read = stream.read(&mut chunk).expect("the stream goes on");
        assert!(read > 0, "the board's stream ended");
    }

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "Ctrl-C ends the demo cleanly: {exit:?}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.ends_with("Stopped.")), "{rest:?}");
}
