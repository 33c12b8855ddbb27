//! Live boards: how fast a milestone reaches the screens, and what open screens cost.
//!
//! The service runs in this process on a loopback socket over a small simulated lake with one
//! theatre list today. Milestones are appended as ingest appends them at its acknowledgement
//! (after the write-ahead log's sync), each naming a new case whose procedure is a marker;
//! ten trackboard streams read over TCP note when each marker reaches them. Measured:
//! acknowledgement → SSE event at the reader, p50/p99 (goal p99 < 100 ms), first with only the
//! ten readers, then with 1,000 and 10,000 more streams open — held by a second process, so
//! this process's resident memory is the service's alone (goal: 10,000 streams in under
//! 1 GiB) — while milestones keep arriving.
//!
//! `cargo bench --workspace --bench live [--profile dev]` (`BRIGHT_BENCH_STREAMS=1000,10000`,
//! `BRIGHT_BENCH_EVENTS=200`, `BRIGHT_BENCH_GAP_MS=50` between milestones). Prints one JSON
//! object per measurement.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bright_dashboards::AppState;
use bright_dashboards::auth::{ClientConfig, Clients, token_sha256};
use bright_dashboards::kpis::KpiService;
use bright_dashboards::spec::Dashboards;
use bright_engine::batch::BatchBuilder;
use bright_engine::kpi::Catalogue;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_engine::schema::Table;
use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "bench-token-0123456789";
const GOAL_P99_MS: f64 = 100.0;
const GOAL_10K_BYTES: f64 = 1024.0 * 1024.0 * 1024.0;

fn quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

/// This process's resident memory, in bytes.
fn rss() -> f64 {
    bright_benches::memory_bytes("VmRSS:")
}

/// Opens a trackboard stream over TCP; returns it once the response headers arrived.
async fn open(port: u16) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let request = format!(
        "GET /theatres/stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("sends");
    stream
}

/// Client mode: holds `BRIGHT_BENCH_CLIENTS` streams open on `port`, reading everything,
/// says "open" once each has had its first board, and exits when its stdin closes.
fn clients(port: u16, n: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (ready, mut readied) = tokio::sync::mpsc::channel::<()>(n.max(1));
        for _ in 0..n {
            let ready = ready.clone();
            tokio::spawn(async move {
                let mut stream = open(port).await;
                let mut buffer = vec![0u8; 4096];
                let mut told = false;
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => {
                            if !told && buffer[..read].windows(12).any(|w| w == b"event: board") {
                                told = true;
                                let _ = ready.send(()).await;
                            }
                        }
                    }
                }
            });
        }
        for _ in 0..n {
            readied
                .recv()
                .await
                .expect("each stream has its first board");
        }
        println!("open");
        // Until the bench closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            use std::io::Read;
            let mut sink = [0u8; 16];
            while let Ok(read) = std::io::stdin().read(&mut sink) {
                if read == 0 {
                    break;
                }
            }
        })
        .await;
    });
}

/// Ten readers noting when each marker first reaches them.
type Seen = Arc<Mutex<BTreeMap<(usize, u64), Instant>>>;

fn readers(port: u16, seen: &Seen) {
    for reader in 0..10 {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut stream = open(port).await;
            let mut buffer = vec![0u8; 1 << 16];
            let mut text = String::new();
            loop {
                let read = match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                let at = Instant::now();
                text.push_str(&String::from_utf8_lossy(&buffer[..read]));
                while let Some(i) = text.find("Marker ") {
                    let digits: String = text[i + 7..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let Ok(n) = digits.parse::<u64>() else { break };
                    seen.lock().expect("lock").entry((reader, n)).or_insert(at);
                    text.drain(..i + 7);
                }
                let keep = text.len().saturating_sub(32);
                text.drain(..keep);
            }
        });
    }
}

fn milestone(session: &str, n: u64) -> bright_engine::arrow::record_batch::RecordBatch {
    let now = Utc::now();
    let mut rows = BatchBuilder::new(Table::TheatreEvents);
    rows.row()
        .text(&format!("bench-{n}"))
        .text(&format!("case-{n}"))
        .opt_text(Some(session))
        .text("RXN")
        .text("Bench site")
        .text("Theatre B")
        .opt_text(Some("100"))
        .opt_text(Some("H011"))
        .opt_text(Some(&format!("Marker {n}")))
        .text("knife_to_skin")
        .timestamp(now.timestamp_micros())
        .opt_int32(Some(n as i32))
        .opt_int32(Some(60))
        .opt_text(None)
        .date(
            (now.date_naive() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"))
                .num_days() as i32,
        )
        .end();
    rows.finish().expect("a batch")
}

/// Appends `count` markers from `first`, `gap` apart, and returns each one's time.
async fn markers(
    engine: &QueryEngine,
    first: u64,
    count: u64,
    gap: Duration,
) -> Vec<(u64, Instant)> {
    let mut sent = Vec::new();
    for n in first..first + count {
        engine
            .buffer_append(Table::TheatreEvents, milestone("S-BENCH", n))
            .expect("appended");
        sent.push((n, Instant::now()));
        tokio::time::sleep(gap).await;
    }
    sent
}

/// Latencies (ms) of the markers sent, at every reader that saw them; and how many never
/// arrived (a reader may miss a frame it was too slow for, never the latest).
fn latencies(sent: &[(u64, Instant)], seen: &Seen) -> (Vec<f64>, usize) {
    let seen = seen.lock().expect("lock");
    let mut out = Vec::new();
    let mut missing = 0;
    for (n, at) in sent {
        for reader in 0..10 {
            match seen.get(&(reader, *n)) {
                Some(arrived) => out.push(arrived.duration_since(*at).as_secs_f64() * 1000.0),
                None => missing += 1,
            }
        }
    }
    (out, missing)
}

fn main() {
    bright_engine::configure_allocator();
    if let Ok(port) = std::env::var("BRIGHT_BENCH_CLIENTS_PORT") {
        let n = std::env::var("BRIGHT_BENCH_CLIENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1000);
        clients(port.parse().expect("a port"), n);
        return;
    }
    let counts: Vec<usize> = std::env::var("BRIGHT_BENCH_STREAMS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let events: u64 = std::env::var("BRIGHT_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let gap = Duration::from_millis(
        std::env::var("BRIGHT_BENCH_GAP_MS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(50),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = tempfile::tempdir().expect("a folder");
        let lake = Lake::open(dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
        let today = Utc::now().date_naive();
        bright_sim::lake_sink::generate_into_lake(
            bright_sim::SimConfig::new(42, 3, today),
            bright_sim::lake_sink::simulation_key(42),
            &lake,
            Box::new(|_| {}),
        )
        .await
        .expect("simulated");
        lake.ensure_tables().await.expect("tables");
        let mut engine = QueryEngine::open(&lake, &QueryConfig::default())
            .await
            .expect("engine");
        let catalogue = Catalogue::embedded().expect("catalogue");
        engine
            .register_kpis(catalogue.clone(), &BTreeMap::new())
            .await
            .expect("KPIs");
        let engine = Arc::new(engine);
        let kpis = Arc::new(KpiService::new(engine.clone(), QueryConfig::default().time_zone));
        let clients = Clients::new(&[ClientConfig {
            name: "bench".into(),
            token_sha256: token_sha256(TOKEN),
            scopes: vec!["read".into()], expires: None, }])
        .expect("clients");
        let state = AppState::new("bench", clients, 1 << 20, None).with_pages(
            kpis.clone(),
            Arc::new(Dashboards::load(&catalogue, None).expect("dashboards")),
        );
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        state.start_live(stopped);
        let now = Utc::now();
        let mut list = BatchBuilder::new(Table::TheatreSessions);
        list.row()
            .text("S-BENCH")
            .text("RXN")
            .text("Bench site")
            .text("Theatre B")
            .timestamp((now - chrono::Duration::hours(1)).timestamp_micros())
            .timestamp((now + chrono::Duration::hours(8)).timestamp_micros())
            .opt_text(Some("100"))
            .boolean(false)
            .date((kpis.today() - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
            .end();
        engine
            .buffer_append(Table::TheatreSessions, list.finish().expect("a batch"))
            .expect("appended");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(bright_dashboards::serve(listener, state.clone(), std::future::pending()));

        let seen: Seen = Arc::default();
        readers(port, &seen);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let report = |name: &str, sent: &[(u64, Instant)], extra: serde_json::Value| {
            let (mut ms, missing) = latencies(sent, &seen);
            let (p50, p99) = (quantile(&mut ms, 0.5), quantile(&mut ms, 0.99));
            let mut line = serde_json::json!({
                "measure": name, "p50_ms": p50, "p99_ms": p99,
                "p99_of_goal": p99 / GOAL_P99_MS, "deliveries": ms.len(), "missed": missing,
            });
            if let (Some(line), Some(extra)) = (line.as_object_mut(), extra.as_object()) {
                line.extend(extra.clone());
            }
            println!("{line}");
        };
        let idle_rss = rss();
        let sent = markers(&engine, 0, events, gap).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        report(
            "ack_to_sse",
            &sent,
            serde_json::json!({"open_streams": 10, "rss_mb": idle_rss / 1048576.0,
                               "milestones_per_second": 1.0 / gap.as_secs_f64()}),
        );

        let mut next = events;
        for n in counts {
            let mut child = std::process::Command::new(std::env::current_exe().expect("this bench"))
                .env("BRIGHT_BENCH_CLIENTS_PORT", port.to_string())
                .env("BRIGHT_BENCH_CLIENTS", n.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("the client process");
            let opened = Instant::now();
            let stdout = child.stdout.take().expect("piped");
            let said = tokio::task::spawn_blocking(move || {
                use std::io::BufRead;
                std::io::BufReader::new(stdout).lines().next()
            })
            .await
            .expect("joins");
            assert!(matches!(said, Some(Ok(ref l)) if l == "open"), "{said:?}");
            let open_secs = opened.elapsed().as_secs_f64();
            let before = rss();
            let sent = markers(&engine, next, events, gap).await;
            next += events;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let with = rss();
            report(
                "ack_to_sse_under_load",
                &sent,
                serde_json::json!({
                    "open_streams": n + 10,
                    "milestones_per_second": 1.0 / gap.as_secs_f64(),
                    "seconds_to_open": open_secs,
                    "rss_mb": with / 1048576.0,
                    "rss_mb_above_idle": (with - idle_rss) / 1048576.0,
                    "bytes_per_stream": (with.max(before) - idle_rss) / n as f64,
                    "rss_of_1gib_goal_at_10k": (with - idle_rss) / n as f64 * 10_000.0 / GOAL_10K_BYTES,
                    "viewers_counted": state.pages().map(|p| p.theatres.hub.viewers()),
                }),
            );
            drop(child.stdin.take());
            let _ = child.wait();
        }
    });
}
