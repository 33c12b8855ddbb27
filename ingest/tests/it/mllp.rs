//! The ADT listener with a real HL7 client: python `hl7`'s `mllp_send` delivers the simulated
//! PAS feed and gets AA for every message; the rows are queryable at once, before any flush;
//! a resend is acknowledged and stored once; malformed messages get AE/AR with the reason and
//! are recorded in `dq_issues`; a flush puts everything in the lake and a restart replays
//! nothing twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::hl7::AdtConfig;
use bright_ingest::mllp::{Listener, MllpConfig};
use bright_ingest::sink::Sink;
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::simulation_key;
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;

fn mllp_send() -> PathBuf {
    let python = std::env::var("BRIGHT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    Path::new(&python)
        .parent()
        .map(|bin| bin.join("mllp_send"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mllp_send"))
}

/// Sends `file` with `mllp_send --loose` and returns the acknowledgements it printed.
fn send(port: u16, file: &Path) -> String {
    let out = Command::new(mllp_send())
        .args(["--loose", "--port", &port.to_string(), "--file"])
        .arg(file)
        .arg("127.0.0.1")
        .output()
        .expect("mllp_send runs (scripts/test installs python's hl7 package)");
    assert!(
        out.status.success(),
        "mllp_send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace('\r', "\n")
}

async fn count(engine: &QueryEngine, sql: &str) -> usize {
    let output = engine.sql(sql).await.expect("runs");
    bright_engine::arrow::util::display::array_value_to_string(output.batches[0].column(0), 0)
        .expect("renders")
        .parse()
        .expect("a count")
}

async fn start(
    lake: &Lake,
    wal: &Path,
) -> (
    Arc<Sink>,
    u16,
    Arc<bright_ingest::mllp::MllpStats>,
    tokio::sync::watch::Sender<bool>,
) {
    let engine = Arc::new(
        QueryEngine::open(lake, &QueryConfig::default())
            .await
            .expect("engine"),
    );
    let (sink, _) = Sink::open(engine, wal).await.expect("sink");
    let sink = Arc::new(sink);
    let adt = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(7),
    };
    let listener = Listener::new(sink.clone(), adt, MllpConfig::default());
    let stats = listener.stats();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let port = socket.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(listener.run(socket, stopped));
    (sink, port, stats, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_client_delivers_adt_that_is_queryable_at_once_and_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feeds = dir.path().join("feeds");
    let mut files = FileSink::create(&feeds, 7).expect("feed folder");
    let config = SimConfig {
        warmup_days: 1,
        ..SimConfig::new(7, 1, NaiveDate::from_ymd_opt(2025, 1, 10).expect("date"))
    };
    Simulation::new(config)
        .expect("simulation")
        .run(&mut files, &mut |_| {})
        .expect("feeds");
    drop(files);
    let adt_dir = std::fs::read_dir(&feeds)
        .expect("feeds")
        .flatten()
        .next()
        .expect("one trust")
        .path()
        .join("adt");
    let mut day_files: Vec<_> = std::fs::read_dir(&adt_dir)
        .expect("adt")
        .flatten()
        .map(|e| e.path())
        .collect();
    day_files.sort();
    let feed = day_files.last().expect("a day of ADT").clone();
    let messages = std::fs::read_to_string(&feed)
        .expect("reads")
        .matches("MSH|")
        .count();
    assert!(messages > 20, "{messages} messages");

    let lake = Lake::open(dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
    lake.ensure_tables().await.expect("tables");
    let wal = dir.path().join("wal");
    let (sink, port, stats, stop) = start(&lake, &wal).await;
    let engine = sink.engine().clone();

    let acks = send(port, &feed);
    assert_eq!(acks.matches("MSA|AA|").count(), messages, "{acks}");
    // Queryable before any flush.
    let rows = "SELECT count(*) FROM adt_events";
    assert_eq!(count(&engine, rows).await, messages);
    assert_eq!(stats.accepted.load(Ordering::Relaxed), messages as u64);

    // A sender that did not see its ACKs sends everything again: acknowledged, stored once.
    let acks = send(port, &feed);
    assert_eq!(acks.matches("MSA|AA|").count(), messages, "{acks}");
    assert_eq!(count(&engine, rows).await, messages);
    assert_eq!(stats.duplicates.load(Ordering::Relaxed), messages as u64);

    // Malformed: no visit number (AE naming PV1-19), an unsupported message type (AR).
    let text = std::fs::read_to_string(&feed).expect("reads");
    let first = text.split('\n').next().expect("a message");
    let pv1_19 = first
        .split('\r')
        .map(|segment| {
            if segment.starts_with("PV1") {
                let mut fields: Vec<&str> = segment.split('|').collect();
                fields[19] = "";
                fields.join("|")
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\r")
        .replace("|MSG", "|BAD");
    let oru = first.replacen("ADT^", "ORU^", 1).replace("|MSG", "|ORU");
    let bad = dir.path().join("bad.hl7");
    std::fs::write(&bad, format!("{pv1_19}\n{oru}\n")).expect("writes");
    let acks = send(port, &bad);
    assert!(acks.contains("MSA|AE|BAD"), "{acks}");
    assert!(acks.contains("PV1^1^19"), "{acks}");
    assert!(acks.contains("MSA|AR|ORU"), "{acks}");
    assert!(acks.contains("not supported"), "{acks}");
    assert_eq!(count(&engine, rows).await, messages);
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM dq_issues WHERE feed = 'hl7_adt'"
        )
        .await,
        2
    );

    // A flush moves everything to the lake; a restart replays nothing twice.
    let flushed = sink.flush().await.expect("flushes");
    assert_eq!(flushed, messages + 2);
    assert_eq!(
        engine.buffered_rows(bright_engine::schema::Table::AdtEvents),
        0
    );
    assert_eq!(count(&engine, rows).await, messages);
    stop.send(true).expect("stops");
    drop(sink);
    let (sink, _, _, _stop) = start(&lake, &wal).await;
    assert_eq!(count(sink.engine(), rows).await, messages);
}
