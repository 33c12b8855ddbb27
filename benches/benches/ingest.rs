//! HL7 ADT over MLLP with durable acknowledgements: messages per second over 1, 8 and 32
//! connections, acknowledgement-to-visible latency, and peak memory; then theatre events
//! posted as NDJSON to `POST /api/ingest/theatre_events`: events per second over 1 and 4
//! connections, beside DuckDB loading the same NDJSON into Parquet.
//!
//! `cargo bench --workspace --bench ingest [-- MESSAGES] [mllp|http|sustained]` (default
//! 20,000 messages from the simulated PAS, and the first two parts);
//! `BRIGHT_BENCH_CONNECTIONS=32` (a comma-separated list) runs MLLP over those connection
//! counts only, e.g. for a profiler. The listener, sink and write-ahead log run in this
//! process over a temporary lake on the local disk; the clients are tokio tasks on loopback,
//! each sending one message and waiting for its ACK before the next, as MLLP senders do. The
//! peer measured side by side is the disk itself: single 300-byte `write` + `fdatasync` pairs
//! per second in the same folder. Messages per second above that rate are what group commit
//! buys. A last run at 32 connections has the senders in a process of their own (this bench
//! run as `senders PORT CONNECTIONS FILE`): the cores are shared still, but each process's
//! CPU time per message is its own, bright's apart from the senders'.
//!
//! `sustained`, run alone (e.g. `-- 600000 sustained`), sends MESSAGES over 32 connections
//! while the sink flushes to the lake as `bright serve` does, and reports the process's
//! resident memory through the run: whether memory stays flat under sustained load.
//!
//! The HTTP run posts 1,000 events per request over keep-alive connections, each answered
//! once its events are durable and queryable. Its peer is DuckDB (`$BRIGHT_TEST_PYTHON` with
//! the duckdb package, as `scripts/test` installs) reading the same events from one NDJSON
//! file into a Parquet file: parse, convert and store, without the log, the checks or the
//! pseudonymisation.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bright_dashboards::AppState;
use bright_dashboards::auth::{ClientConfig, Clients, token_sha256};
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::hl7::AdtConfig;
use bright_ingest::http::HttpSource;
use bright_ingest::mllp::{Listener, MllpConfig, frame};
use bright_ingest::sink::Sink;
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::simulation_key;
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn messages(dir: &std::path::Path, wanted: usize) -> Vec<(String, String)> {
    // About 440 ADT messages a simulated day.
    let days = (wanted / 400 + 2) as u32;
    let end = NaiveDate::from_ymd_opt(2025, 6, 1).expect("date");
    simulated_adt(&dir.join("feeds"), 1, days, end, wanted)
}

/// The ADT messages of `trusts` simulated trusts over `days` days up to `end`, as (event id,
/// message), at most `wanted`: day by day, every trust's messages of a day together.
fn simulated_adt(
    feeds: &std::path::Path,
    trusts: u32,
    days: u32,
    end: NaiveDate,
    wanted: usize,
) -> Vec<(String, String)> {
    let config = SimConfig {
        trusts,
        warmup_days: 1,
        ..SimConfig::new(5, days, end)
    };
    let mut sink = FileSink::create(feeds, 5).expect("feeds");
    Simulation::new(config)
        .expect("simulation")
        .run(&mut sink, &mut |_| {})
        .expect("runs");
    drop(sink);
    let mut files = Vec::new();
    for org in std::fs::read_dir(feeds).expect("feeds").flatten() {
        files.extend(
            std::fs::read_dir(org.path().join("adt"))
                .expect("adt")
                .flatten()
                .map(|e| e.path()),
        );
    }
    // Named by day: sorting by name, then by trust, gives the days in order.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    let mut out = Vec::new();
    for file in files {
        for text in std::fs::read_to_string(file).expect("reads").split('\n') {
            let text = text.trim_end_matches('\r');
            if text.is_empty() {
                continue;
            }
            let msh: Vec<&str> = text.split('|').collect();
            out.push((
                format!("{}/{}/{}", msh[3], msh[2], msh[9]),
                format!("{text}\r"),
            ));
        }
        if out.len() >= wanted {
            break;
        }
    }
    out.truncate(wanted);
    out
}

/// `items` in `connections` runs, in order, one for each sender; each its own, so that
/// nothing is copied once a clock runs.
fn deal<T: Clone>(items: &[T], connections: usize) -> Vec<Vec<T>> {
    let per = items.len().div_ceil(connections).max(1);
    items.chunks(per).map(<[_]>::to_vec).collect()
}

/// Sends each part's messages on a connection of its own, each when the one before is
/// acknowledged; returns how many were acknowledged.
async fn send_all(port: u16, parts: Vec<Vec<String>>) -> usize {
    let clients: Vec<_> = parts
        .into_iter()
        .map(|part| tokio::spawn(client(port, part)))
        .collect();
    let mut acked = 0;
    for c in clients {
        acked += c.await.expect("client");
    }
    acked
}

/// Sends each message and waits for its ACK; returns how many were acknowledged.
async fn client(port: u16, messages: Vec<String>) -> usize {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut buf = vec![0u8; 4096];
    for text in &messages {
        send(&mut socket, &mut buf, text).await;
    }
    messages.len()
}

/// Sends one message and waits for its ACK, which must accept it.
async fn send(socket: &mut TcpStream, buf: &mut [u8], text: &str) {
    socket.write_all(&frame(text)).await.expect("sends");
    let mut answer = Vec::new();
    while !answer.ends_with(&[0x1C, 0x0D]) {
        let n = socket.read(buf).await.expect("reads");
        assert!(n > 0, "connection closed");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&answer).contains("MSA|AA|"),
        "not accepted"
    );
}

/// Sends every `stride`-th message of `all` from `first` on, each when the one before is
/// acknowledged, keeping them (so that memory let go by the bench does not hide memory the
/// listener keeps); returns how many were acknowledged.
async fn sustained_client(
    port: u16,
    all: Arc<Vec<(String, String)>>,
    first: usize,
    stride: usize,
) -> usize {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut buf = vec![0u8; 4096];
    let mut acked = 0;
    for (_, text) in all.iter().skip(first).step_by(stride) {
        send(&mut socket, &mut buf, text).await;
        acked += 1;
    }
    acked
}

fn fsyncs_per_second(dir: &std::path::Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe");
    let record = [7u8; 300];
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_secs(2) {
        file.write_all(&record).expect("writes");
        file.sync_data().expect("syncs");
        n += 1;
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

fn peak_rss_mb() -> f64 {
    bright_benches::memory_bytes("VmHWM:") / 1048576.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Theatre events as NDJSON lines, day by day with every trust's events of a day together (as
/// live theatre systems post them). Until there are `wanted`, the simulated days are repeated
/// under new ids on the days that follow them, so a run, like a live feed, moves on to new days
/// rather than sending days already in the lake again (which the sink would load back to check
/// for duplicates).
fn theatre_events(dir: &std::path::Path, wanted: usize) -> Vec<String> {
    let mut files = Vec::new();
    for org in std::fs::read_dir(dir.join("feeds"))
        .expect("feeds")
        .flatten()
    {
        files.extend(
            std::fs::read_dir(org.path().join("theatres"))
                .expect("theatres")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "ndjson")),
        );
    }
    // Named by day: sorting by name, then by trust, gives the days in order.
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).expect("reads");
        lines.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    assert!(!lines.is_empty(), "no theatre events");
    let base = lines.len();
    let object = |line: &str| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(line).expect("an object")
    };
    let time = |event: &serde_json::Map<String, serde_json::Value>| {
        chrono::DateTime::parse_from_rfc3339(event["event_time"].as_str().expect("a time"))
            .expect("RFC 3339")
    };
    let span = time(&object(&lines[base - 1])).date_naive() - time(&object(&lines[0])).date_naive()
        + chrono::TimeDelta::days(1);
    let mut round = 1;
    while lines.len() < wanted {
        for i in 0..base {
            let mut event = object(&lines[i]);
            let id = event["event_id"].as_str().expect("an id").to_string();
            event.insert("event_id".into(), format!("{id}-r{round}").into());
            let moved = time(&event) + span * round;
            event.insert("event_time".into(), moved.to_rfc3339().into());
            lines.push(serde_json::Value::Object(event).to_string());
            if lines.len() == wanted {
                break;
            }
        }
        round += 1;
    }
    lines.truncate(wanted);
    lines
}

/// Posts each body on one keep-alive connection, waiting for each answer (HTTP/1.1 by hand:
/// the bench needs no more than Content-Length framing).
async fn poster(port: u16, token: String, bodies: Vec<String>) -> usize {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut stored = 0;
    let mut buf = vec![0u8; 8192];
    for body in bodies {
        // The head, then the body as it is: a client need not copy its body into a request.
        let head = format!(
            "POST /api/ingest/theatre_events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await.expect("sends");
        socket.write_all(body.as_bytes()).await.expect("sends");
        let mut answer = Vec::new();
        let (head, length) = loop {
            let n = socket.read(&mut buf).await.expect("reads");
            assert!(n > 0, "connection closed");
            answer.extend_from_slice(&buf[..n]);
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .expect("a content length");
                answer.drain(..end + 4);
                break (head, length);
            }
        };
        while answer.len() < length {
            let n = socket.read(&mut buf).await.expect("reads");
            assert!(n > 0, "connection closed");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{head}\n{}",
            String::from_utf8_lossy(&answer)
        );
        let receipt: serde_json::Value = serde_json::from_slice(&answer).expect("JSON");
        stored += receipt["stored"].as_u64().expect("a count") as usize;
    }
    stored
}

/// The MLLP senders as a process of their own (`senders PORT CONNECTIONS FILE`, a message a
/// line): the messages split among the connections as in the runs in process, each sent
/// when the one before it is acknowledged; prints the seconds from the first send to the last ACK, the messages
/// acknowledged and this process's CPU seconds, as JSON.
fn senders(port: &str, connections: &str, file: &str) {
    let port: u16 = port.parse().expect("a port");
    let connections: usize = connections.parse().expect("a count");
    let text = std::fs::read_to_string(file).expect("reads the messages");
    // Split on line feeds only: each message ends with its last segment's carriage return.
    let messages: Vec<String> = text.split('\n').map(str::to_string).collect();
    let parts = deal(&messages, connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cpu = bright_benches::cpu_seconds();
    let started = Instant::now();
    let acked = runtime.block_on(send_all(port, parts));
    println!(
        "{{\"seconds\":{},\"acked\":{acked},\"cpu_seconds\":{}}}",
        started.elapsed().as_secs_f64(),
        bright_benches::cpu_seconds() - cpu
    );
}

/// Seconds DuckDB takes to load `ndjson` into a Parquet file, if python with duckdb is here.
fn duckdb_load_seconds(ndjson: &std::path::Path) -> Option<f64> {
    let python = std::env::var("BRIGHT_TEST_PYTHON").ok()?;
    let script = r#"
import sys, time, duckdb
src, dst = sys.argv[1], sys.argv[2]
con = duckdb.connect()
best = None
for _ in range(3):
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_ndjson_auto('{src}')) TO '{dst}' (FORMAT parquet)")
    s = time.perf_counter() - t
    best = s if best is None else min(best, s)
print(best)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .arg(ndjson)
        .arg(ndjson.with_extension("parquet"))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "duckdb peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    bright_engine::configure_allocator();
    let args: Vec<String> = std::env::args().collect();
    if let [_, mode, port, connections, file] = &args[..]
        && mode == "senders"
    {
        senders(port, connections, file);
        return;
    }
    let wanted: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    // `mllp` or `http` runs only that part (e.g. under a profiler); both run by default.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "mllp" || a == "http" || a == "sustained")
        .collect();
    // `sustained` runs only when named, and best alone (its days would meet the others').
    let named = |part: &str| parts.iter().any(|p| p == part);
    let run = |part: &str| named(part) || (parts.is_empty() && part != "sustained");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        let disk = fsyncs_per_second(dir.path());
        println!("{{\"bench\":\"disk\",\"fsyncs_per_s\":{disk:.0}}}");

        let lake = Lake::open(dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
        lake.ensure_tables().await.expect("tables");
        let engine = Arc::new(
            QueryEngine::open(&lake, &QueryConfig::default())
                .await
                .expect("engine"),
        );
        let (sink, _) = Sink::open(engine.clone(), &dir.path().join("wal"))
            .await
            .expect("sink");
        let sink = Arc::new(sink);
        let adt = AdtConfig {
            time_zone: chrono_tz::Europe::London,
            key: simulation_key(5),
            window: Default::default(),
        };
        let listener = Listener::new(sink.clone(), adt, MllpConfig::default());
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = socket.local_addr().expect("addr").port();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(listener.run(socket, stopped));

        // The simulated PAS's feeds: the MLLP part's messages, and the HTTP part's theatre
        // events read from the same simulation.
        let all = if run("mllp") || run("http") {
            messages(dir.path(), wanted * 4 + 300)
        } else {
            Vec::new()
        };
        if run("mllp") {
            // Up to three throughput runs, one with the senders in a process of their own, then
            // 300 messages for the latency probe.
            assert!(all.len() >= wanted * 4 + 300, "only {} messages", all.len());
            let (runs, probe) = all.split_at(all.len() - 300);
            let mut chunks = runs.chunks(wanted);
            // `BRIGHT_BENCH_CONNECTIONS=32` runs only that count (e.g. under a profiler).
            let counts: Vec<usize> = std::env::var("BRIGHT_BENCH_CONNECTIONS")
                .ok()
                .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
                .unwrap_or_else(|| vec![1, 8, 32]);
            for connections in counts {
                let chunk = chunks.next().expect("messages for this run");
                let texts: Vec<String> = chunk.iter().map(|(_, text)| text.clone()).collect();
                let parts = deal(&texts, connections);
                let started = Instant::now();
                let cpu = bright_benches::cpu_seconds();
                let acked = send_all(port, parts).await;
                let seconds = started.elapsed().as_secs_f64();
                // The process's CPU time per message, the senders' share included: what the
                // rate is bounded by once group commit hides the disk (2 cores here).
                let cpu_us = (bright_benches::cpu_seconds() - cpu) * 1e6 / acked as f64;
                let rate = acked as f64 / seconds;
                println!(
                    "{{\"bench\":\"mllp\",\"connections\":{connections},\"messages\":{},\"seconds\":{seconds:.2},\"messages_per_s\":{rate:.0},\"vs_disk_fsyncs\":{:.2},\"cpu_us_per_message\":{cpu_us:.0}}}",
                    acked,
                    rate / disk
                );
                // Flushing between runs keeps each run's buffer to its own messages.
                sink.flush().await.expect("flushes");
            }

            // The same at 32 connections with the senders in a process of their own, which
            // shares these cores but not this process: its CPU time is then the listener's,
            // sink's and log's alone, apart from the senders' (who run elsewhere in a
            // hospital: the interface engine sending ADT).
            let chunk = chunks.next().expect("messages for the run with senders apart");
            let file = dir.path().join("senders.hl7");
            let lines: Vec<&str> = chunk.iter().map(|(_, text)| text.as_str()).collect();
            std::fs::write(&file, lines.join("\n")).expect("writes");
            let cpu = bright_benches::cpu_seconds();
            let mut command = std::process::Command::new(std::env::current_exe().expect("bench"));
            command.args(["senders", &port.to_string(), "32"]).arg(&file);
            let out = tokio::task::spawn_blocking(move || command.output())
                .await
                .expect("waits")
                .expect("runs the senders");
            assert!(out.status.success(), "senders: {}", String::from_utf8_lossy(&out.stderr));
            let bright_us = (bright_benches::cpu_seconds() - cpu) * 1e6 / chunk.len() as f64;
            let senders: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            let acked = senders["acked"].as_f64().expect("a count");
            assert_eq!(acked as usize, chunk.len(), "every message acknowledged");
            let seconds = senders["seconds"].as_f64().expect("seconds");
            println!(
                "{{\"bench\":\"mllp_senders_apart\",\"connections\":32,\"messages\":{acked},\"seconds\":{seconds:.2},\"messages_per_s\":{:.0},\"bright_cpu_us_per_message\":{bright_us:.0},\"senders_cpu_us_per_message\":{:.0}}}",
                acked / seconds,
                senders["cpu_seconds"].as_f64().expect("cpu") * 1e6 / acked,
            );
            sink.flush().await.expect("flushes");

            // Acknowledgement to visible: after each ACK, query for the message until it is there.
            let mut latencies = Vec::new();
            let probe: Vec<_> = probe.to_vec();
            let mut socket = TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
            let mut buf = vec![0u8; 4096];
            for (id, text) in probe {
                send(&mut socket, &mut buf, &text).await;
                let acked = Instant::now();
                let sql = format!("SELECT count(*) FROM adt_events WHERE event_id = '{id}'");
                loop {
                    let out = engine.sql(&sql).await.expect("queries");
                    let n = bright_engine::arrow::util::display::array_value_to_string(
                        out.batches[0].column(0),
                        0,
                    )
                    .expect("count");
                    if n == "1" {
                        break;
                    }
                }
                latencies.push(acked.elapsed().as_secs_f64() * 1e3);
            }
            latencies.sort_by(f64::total_cmp);
            println!(
                "{{\"bench\":\"ack_to_visible\",\"samples\":{},\"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
                latencies.len(),
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99)
            );
            println!("{{\"bench\":\"memory\",\"peak_rss_mb\":{:.0}}}", peak_rss_mb());
            sink.flush().await.expect("flushes");
        }

        if named("sustained") {
            sustained(&sink, port, dir.path(), wanted).await;
        }

        if !run("http") {
            return;
        }
        // Theatre events over HTTP: as many events per run as MLLP messages, times ten.
        let per_run = wanted * 10;
        let events = theatre_events(dir.path(), per_run * 2);
        let token = "brt_bench";
        let clients = Clients::new(&[ClientConfig {
            name: "bench".into(),
            token_sha256: token_sha256(token),
            scopes: vec!["ingest:theatre_events".into()], expires: None, }])
        .expect("clients");
        let source = HttpSource::new(sink.clone(), chrono_tz::Europe::London, simulation_key(5));
        let state = AppState::new("bench", clients, 16 << 20, Some(Arc::new(source)));
        let web = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let http_port = web.local_addr().expect("addr").port();
        tokio::spawn(bright_dashboards::serve(web, state, std::future::pending()));
        let mut runs = events.chunks(per_run);
        for connections in [1usize, 4] {
            let run = runs.next().expect("events for this run");
            let bodies: Vec<String> = run.chunks(1_000).map(|c| c.join("\n")).collect();
            let parts = deal(&bodies, connections);
            let started = Instant::now();
            let posters: Vec<_> = parts
                .into_iter()
                .map(|part| tokio::spawn(poster(http_port, token.to_string(), part)))
                .collect();
            let mut stored = 0;
            for p in posters {
                stored += p.await.expect("poster");
            }
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(stored, run.len(), "every event stored once");
            let ndjson = dir.path().join(format!("events-{connections}.ndjson"));
            std::fs::write(&ndjson, run.join("\n")).expect("writes");
            let peer = duckdb_load_seconds(&ndjson);
            let rate = run.len() as f64 / seconds;
            println!(
                "{{\"bench\":\"http_ndjson\",\"connections\":{connections},\"events\":{},\"seconds\":{seconds:.2},\"events_per_s\":{rate:.0},\"duckdb_load_events_per_s\":{},\"vs_duckdb\":{}}}",
                run.len(),
                peer.map_or("null".into(), |p| format!("{:.0}", run.len() as f64 / p)),
                peer.map_or("null".into(), |p| format!("{:.2}", rate * p / run.len() as f64)),
            );
            sink.flush().await.expect("flushes");
        }
        println!("{{\"bench\":\"memory_after_http\",\"peak_rss_mb\":{:.0}}}", peak_rss_mb());
    });
}

/// MLLP under sustained load, as `bright serve` runs the sink: `wanted` messages, the days of
/// the simulated trusts in order dealt out to 32 connections in turn (so that, like a live
/// feed, they all move on through the days together), while the buffer is flushed to the lake
/// every 10 s or sooner at 100,000 rows, as serving does. The process's resident memory is
/// sampled every second; flat memory means the later tenths of the run hold no more than the
/// first ones.
async fn sustained(sink: &Arc<Sink>, port: u16, dir: &std::path::Path, wanted: usize) {
    const CONNECTIONS: usize = 32;
    // Days that end before today, so that no message is dated ahead of the clock.
    let end = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
    // Twenty trusts, so that a run of millions of messages spans a few years, not decades.
    const TRUSTS: u32 = 20;
    let days = (wanted / (300 * TRUSTS as usize) + 2) as u32;
    let all = Arc::new(simulated_adt(
        &dir.join("sustained-feeds"),
        TRUSTS,
        days,
        end,
        wanted,
    ));
    assert!(all.len() >= wanted, "only {} messages", all.len());
    let before = bright_benches::memory_bytes("VmRSS:") / 1048576.0;
    sink.set_flush_rows(100_000);
    sink.set_max_buffered_rows(1_000_000);
    let flushes = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let flusher = {
        let (sink, flushes) = (sink.clone(), flushes.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                    () = sink.full() => {}
                    // A flush under way is finished, never cut short.
                    _ = stopped.changed() => return,
                }
                sink.flush().await.expect("flushes");
                flushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, f64)>::new()));
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                let rss = bright_benches::memory_bytes("VmRSS:") / 1048576.0;
                let mut samples = samples.lock().expect("samples");
                samples.push((started.elapsed().as_secs_f64(), rss));
            }
        })
    };
    let cpu = bright_benches::cpu_seconds();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|first| tokio::spawn(sustained_client(port, all.clone(), first, CONNECTIONS)))
        .collect();
    let mut acked = 0;
    for c in clients {
        acked += c.await.expect("client");
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_us = (bright_benches::cpu_seconds() - cpu) * 1e6 / acked as f64;
    sampler.abort();
    stop.send(true).expect("the flusher runs");
    flusher.await.expect("flusher");
    assert_eq!(acked, all.len(), "every message acknowledged");
    // The highest resident memory in each tenth of the run.
    let samples = samples.lock().expect("samples").clone();
    let tenths: Vec<String> = (0..10)
        .map(|tenth| {
            let (from, to) = (
                seconds * tenth as f64 / 10.0,
                seconds * (tenth + 1) as f64 / 10.0,
            );
            samples
                .iter()
                .filter(|(t, _)| (from..to).contains(t))
                .map(|(_, rss)| *rss)
                .fold(None, |most: Option<f64>, rss| {
                    Some(most.map_or(rss, |m| m.max(rss)))
                })
                .map_or("null".into(), |rss| format!("{rss:.0}"))
        })
        .collect();
    println!(
        "{{\"bench\":\"mllp_sustained\",\"connections\":{CONNECTIONS},\"messages\":{acked},\"seconds\":{seconds:.1},\"messages_per_s\":{:.0},\"cpu_us_per_message\":{cpu_us:.0},\"flushes\":{},\"peak_buffered_rows\":{},\"rss_mb_before\":{before:.0},\"rss_mb_by_tenth\":[{}]}}",
        acked as f64 / seconds,
        flushes.load(std::sync::atomic::Ordering::Relaxed),
        sink.peak_buffered_rows(),
        tenths.join(","),
    );
    sink.flush().await.expect("flushes");
}
