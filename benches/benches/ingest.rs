//! HL7 ADT over MLLP with durable acknowledgements: messages per second over 1, 8 and 32
//! connections, acknowledgement-to-visible latency, and peak memory.
//!
//! `cargo bench --workspace --bench ingest [-- MESSAGES]` (default 20,000 messages from the
//! simulated PAS). The listener, sink and write-ahead log run in this process over a
//! temporary lake on the local disk; the clients are tokio tasks on loopback, each sending one
//! message and waiting for its ACK before the next, as MLLP senders do. The peer measured
//! side by side is the disk itself: single 300-byte `write` + `fdatasync` pairs per second in
//! the same folder. Messages per second above that rate are what group commit buys.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::hl7::AdtConfig;
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
    let config = SimConfig {
        warmup_days: 1,
        ..SimConfig::new(5, days, NaiveDate::from_ymd_opt(2025, 6, 1).expect("date"))
    };
    let mut sink = FileSink::create(&dir.join("feeds"), 5).expect("feeds");
    Simulation::new(config)
        .expect("simulation")
        .run(&mut sink, &mut |_| {})
        .expect("runs");
    drop(sink);
    let mut out = Vec::new();
    for org in std::fs::read_dir(dir.join("feeds"))
        .expect("feeds")
        .flatten()
    {
        let mut files: Vec<_> = std::fs::read_dir(org.path().join("adt"))
            .expect("adt")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
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
        }
    }
    out.truncate(wanted);
    out
}

/// Sends each message and waits for its ACK; returns when each was acknowledged.
async fn client(port: u16, batch: Vec<(String, String)>) -> Vec<(String, Instant)> {
    let mut socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    let mut acked = Vec::with_capacity(batch.len());
    let mut buf = vec![0u8; 4096];
    for (id, text) in batch {
        socket.write_all(&frame(&text)).await.expect("sends");
        let mut answer = Vec::new();
        while !answer.ends_with(&[0x1C, 0x0D]) {
            let n = socket.read(&mut buf).await.expect("reads");
            assert!(n > 0, "connection closed");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(
            String::from_utf8_lossy(&answer).contains("MSA|AA|"),
            "not accepted"
        );
        acked.push((id, Instant::now()));
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
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let wanted: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir_in(".").expect("tempdir");
        // Three throughput runs, then 300 messages for the latency probe.
        let all = messages(dir.path(), wanted * 3 + 300);
        assert!(all.len() >= wanted * 3 + 300, "only {} messages", all.len());
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
        };
        let listener = Listener::new(sink.clone(), adt, MllpConfig::default());
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = socket.local_addr().expect("addr").port();
        let (_stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(listener.run(socket, stopped));

        let mut chunks = all.chunks(wanted);
        for connections in [1usize, 8, 32] {
            let chunk = chunks.next().expect("messages for this run").to_vec();
            let per = chunk.len().div_ceil(connections);
            let started = Instant::now();
            let clients: Vec<_> = chunk
                .chunks(per)
                .map(|part| tokio::spawn(client(port, part.to_vec())))
                .collect();
            let mut acked = Vec::new();
            for c in clients {
                acked.extend(c.await.expect("client"));
            }
            let seconds = started.elapsed().as_secs_f64();
            let rate = acked.len() as f64 / seconds;
            println!(
                "{{\"bench\":\"mllp\",\"connections\":{connections},\"messages\":{},\"seconds\":{seconds:.2},\"messages_per_s\":{rate:.0},\"vs_disk_fsyncs\":{:.2}}}",
                acked.len(),
                rate / disk
            );
            // Flushing between runs keeps each run's buffer to its own messages.
            sink.flush().await.expect("flushes");
        }

        // Acknowledgement to visible: after each ACK, query for the message until it is there.
        let mut latencies = Vec::new();
        let probe: Vec<_> = all[wanted * 3..].to_vec();
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await.expect("connects");
        let mut buf = vec![0u8; 4096];
        for (id, text) in probe {
            socket.write_all(&frame(&text)).await.expect("sends");
            let mut answer = Vec::new();
            while !answer.ends_with(&[0x1C, 0x0D]) {
                let n = socket.read(&mut buf).await.expect("reads");
                answer.extend_from_slice(&buf[..n]);
            }
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
    });
}
