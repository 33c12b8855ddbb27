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
use bright_engine::query::QueryEngine;
use bright_ingest::hl7::AdtConfig;
use bright_ingest::mllp::{Listener, MllpConfig, tls_acceptor};
use bright_ingest::sink::Sink;
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::simulation_key;
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;

use crate::mllp_client::send;

async fn count(engine: &QueryEngine, sql: &str) -> usize {
    let output = engine.sql(sql).await.expect("runs");
    bright_engine::arrow::util::display::array_value_to_string(output.batches[0].column(0), 0)
        .expect("renders")
        .parse()
        .expect("a count")
}

/// An A01 admitting one patient to `ward` of trust RXX, with control id `control`.
fn a01(control: &str, ward: &str) -> String {
    format!(
        "MSH|^~\\&|PAS|RXX|BRIGHT|RXX|20250701093000+0100||ADT^A01^ADT_A01|{control}|P|2.4\r\
EVN|A01|20250701093000+0100\r\
PID|1||9434765919^^^NHS^NH||SMITH^JANE||19700101|F\r\
PV1|1|I|{ward}^^B1^S1|21|||||300||||||||||RXXV{control}\r"
    )
}

/// Reads one framed acknowledgement.
async fn read_ack(socket: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(&[0x1C, 0x0D]) {
        let n = socket.read(&mut buf).await.expect("reads");
        assert!(n > 0, "closed");
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
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
    let (_, sink) = crate::support::sink(lake, wal).await;
    let (port, stats, stop) = listen(sink.clone()).await;
    (sink, port, stats, stop)
}

/// An MLLP listener on a free loopback port feeding `sink`, with the simulator's key.
async fn listen(
    sink: Arc<Sink>,
) -> (
    u16,
    Arc<bright_ingest::mllp::MllpStats>,
    tokio::sync::watch::Sender<bool>,
) {
    let adt = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(7),
        window: Default::default(),
    };
    let listener = Listener::new(sink, adt, MllpConfig::default());
    let stats = listener.stats();
    let (port, stop) = crate::mllp_client::run_on_loopback(listener).await;
    (port, stats, stop)
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

    let lake = crate::support::lake(dir.path()).await;
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

/// A patient admitted under a local hospital number, moved to another bed by an A08, then
/// merged (A40) into the record holding their NHS number: the messages arrive through a real
/// client, and the stays and where-everyone-is-now views follow the merge at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_over_mllp_moves_the_stay_to_the_surviving_record() {
    use bright_engine::pseudonym::{LOCAL_ID, NHS_NUMBER};

    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let mut engine = QueryEngine::open(&lake, &bright_engine::query::QueryConfig::default())
        .await
        .expect("engine");
    engine
        .register_kpis(
            bright_engine::kpi::Catalogue::embedded().expect("built-in catalogue"),
            &std::collections::BTreeMap::new(),
        )
        .await
        .expect("KPIs plan");
    let engine = Arc::new(engine);
    let (sink, _) = Sink::open(engine.clone(), &dir.path().join("wal"))
        .await
        .expect("sink");
    let (port, _, _stop) = listen(Arc::new(sink)).await;
    let key = simulation_key(7);

    let message = |control: &str, event: &str, structure: &str, pid: &str, rest: &str| {
        format!(
            "MSH|^~\\&|PAS|RXX|BRIGHT|RXX|20250701093000+0100||ADT^{event}^{structure}|{control}|P|2.4\r\
EVN|{event}|20250701093000+0100\r\
PID|1||{pid}||SMITH^JANE||19700101|F\r{rest}"
        )
    };
    let admitted = message(
        "M1",
        "A01",
        "ADT_A01",
        "H777^^^RXX^MR",
        "PV1|1|I|W1^^B1^S1|21|||||300||||||||||RXXV1\r",
    );
    let moved = message(
        "M2",
        "A08",
        "ADT_A01",
        "H777^^^RXX^MR",
        "PV1|1|I|W1^^B9^S1|21|||||300||||||||||RXXV1\r",
    );
    let merged = message(
        "M3",
        "A40",
        "ADT_A39",
        "9434765919^^^NHS^NH",
        "MRG|H777^^^RXX^MR\r",
    );
    let local = key.patient_key(LOCAL_ID, "RXX/H777");
    let nhs = key.patient_key(NHS_NUMBER, "9434765919");
    let now = "SELECT patient_key, bed FROM kpi.current_inpatients WHERE encounter_id = 'RXXV1'";
    let rows = |output: bright_engine::query::QueryOutput| -> Vec<String> {
        let batch = bright_engine::arrow::compute::concat_batches(&output.schema, &output.batches)
            .expect("one batch");
        (0..batch.num_rows())
            .map(|row| {
                (0..batch.num_columns())
                    .map(|c| {
                        bright_engine::arrow::util::display::array_value_to_string(
                            batch.column(c),
                            row,
                        )
                        .expect("renders")
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };

    let file = dir.path().join("admit.hl7");
    std::fs::write(&file, format!("{admitted}\n{moved}\n")).expect("writes");
    let acks = send(port, &file);
    assert_eq!(acks.matches("MSA|AA|").count(), 2, "{acks}");
    assert_eq!(
        rows(engine.sql(now).await.expect("runs")),
        vec![format!("{local} B9")]
    );

    std::fs::write(&file, format!("{merged}\n")).expect("writes");
    let acks = send(port, &file);
    assert!(acks.contains("MSA|AA|M3"), "{acks}");
    assert_eq!(
        rows(engine.sql(now).await.expect("runs")),
        vec![format!("{nhs} B9")],
        "the stay follows the merge before any flush"
    );
    assert_eq!(
        rows(
            engine
                .sql("SELECT prior_patient_key, patient_key FROM kpi.patient_merges")
                .await
                .expect("runs")
        ),
        vec![format!("{local} {nhs}")]
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM adt_events WHERE patient_key LIKE '%9434765919%' \
             OR prior_patient_key LIKE '%H777%'"
        )
        .await,
        0,
        "identifiers are stored only as pseudonyms"
    );

    // A merge that does not say which record goes away is answered AE, naming MRG-1.
    let incomplete = message("M4", "A40", "ADT_A39", "9434765919^^^NHS^NH", "");
    std::fs::write(&file, format!("{incomplete}\n")).expect("writes");
    let acks = send(port, &file);
    assert!(acks.contains("MSA|AE|M4"), "{acks}");
    assert!(acks.contains("MRG^1"), "{acks}");
}

/// Sends `message` over MLLP inside TLS with python's `ssl` (trusting `cert`) and returns the
/// acknowledgement, or the client's error.
fn send_tls(port: u16, cert: &Path, message: &str) -> Result<String, String> {
    let python = std::env::var("BRIGHT_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import socket, ssl, sys
port, cert, message = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.create_default_context(cafile=cert)
with socket.create_connection(("127.0.0.1", port)) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"\x0b" + message.encode() + b"\x1c\x0d")
        answer = b""
        while not answer.endswith(b"\x1c\x0d"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
print(answer.decode().strip("\x0b\x1c\r\n"))
"#;
    let out = Command::new(python)
        .args(["-c", script, &port.to_string()])
        .arg(cert)
        .arg(message)
        .output()
        .expect("python runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mllp_over_tls_takes_messages_only_inside_the_handshake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let lake = crate::support::lake(dir.path()).await;
    let (engine, sink) = crate::support::sink(&lake, &dir.path().join("wal")).await;
    let config = MllpConfig {
        tls: Some(tls_acceptor(&cert, &key).expect("certificate and key")),
        ..MllpConfig::default()
    };
    let adt = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(7),
        window: Default::default(),
    };
    let listener = Listener::new(sink, adt, config);
    let (port, _stop) = crate::mllp_client::run_on_loopback(listener).await;

    let message = a01("TLS0001", "W1");
    let answer = tokio::task::spawn_blocking({
        let (cert, message) = (cert.clone(), message.clone());
        move || send_tls(port, &cert, &message)
    })
    .await
    .expect("client")
    .expect("a TLS client gets an answer");
    assert!(answer.contains("MSA|AA|TLS0001"), "{answer}");
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM adt_events WHERE event_id = 'RXX/PAS/TLS0001'"
        )
        .await,
        1
    );

    // A plain connection gets no acknowledgement: the bytes are not a handshake.
    let plain = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        socket
            .write_all(&bright_ingest::mllp::frame(&message))
            .expect("sends");
        let mut answer = Vec::new();
        // The server closes the connection after the failed handshake.
        let _ = socket.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("client");
    assert!(!plain.contains("MSA|AA"), "{plain}");
}

/// Regression: reading the bed base panicked when `beds` had rows (the scan gives text as
/// string views), so `bright serve` could not start over a lake with a bed base.
#[tokio::test]
async fn the_bed_base_is_read_and_events_on_unknown_wards_are_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let mut beds = bright_engine::batch::BatchBuilder::new(bright_engine::schema::Table::Beds);
    beds.row()
        .text("RXX")
        .text("S1")
        .text("W1")
        .text("general_acute")
        .int32(20)
        .opt_date(None)
        .date(20_000)
        .end();
    lake.append(
        bright_engine::schema::Table::Beds,
        vec![beds.finish().expect("batch")],
    )
    .await
    .expect("appends");
    let (engine, sink) = crate::support::sink(&lake, &dir.path().join("wal")).await;
    let adt = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(7),
        window: Default::default(),
    };
    let listener = Listener::new(sink, adt, MllpConfig::default())
        .check_wards()
        .await
        .expect("reads the bed base");
    let (known, _) = listener.handle(&a01("K1", "W1")).await;
    let (unknown, _) = listener.handle(&a01("U1", "W9")).await;
    assert_eq!(
        (known, unknown),
        (
            bright_ingest::hl7::AckCode::Accept,
            bright_ingest::hl7::AckCode::Accept
        )
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM dq_issues WHERE reason = 'ward ''W9'' is not in the bed base'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM dq_issues WHERE reason LIKE '%W1%'"
        )
        .await,
        0
    );
}

/// Backpressure: once the sink holds as many rows as it may, a connection stops reading, so
/// the next message waits in the sender's queue unacknowledged; a flush makes room and it is
/// taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_sink_stops_mllp_reading_until_a_flush() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let (sink, port, stats, _stop) = start(&lake, &dir.path().join("wal")).await;
    sink.set_max_buffered_rows(1);
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    socket
        .write_all(&bright_ingest::mllp::frame(&a01("B1", "W1")))
        .await
        .expect("sends");
    assert!(read_ack(&mut socket).await.contains("MSA|AA|B1"));
    assert!(sink.busy());
    // The connection has stopped reading before the next message arrives.
    while stats.paused.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    socket
        .write_all(&bright_ingest::mllp::frame(&a01("B2", "W1")))
        .await
        .expect("sends");
    let engine = sink.engine().clone();
    assert_eq!(count(&engine, "SELECT count(*) FROM adt_events").await, 1);
    sink.flush().await.expect("flushes");
    assert!(read_ack(&mut socket).await.contains("MSA|AA|B2"));
    assert_eq!(count(&engine, "SELECT count(*) FROM adt_events").await, 2);
}

/// Connections' messages are stored together in groups: sixteen senders at once, each sending
/// the same ten messages (one dated tomorrow, which is flagged) and ten of its own. Every
/// message is answered AA; each is stored once, the copies counted as duplicates, and the
/// flag recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_many_connections_at_once_are_each_answered_and_stored_once() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let (sink, port, stats, _stop) = start(&lake, &dir.path().join("wal")).await;
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1))
        .format("%Y%m%d%H%M%S+0000")
        .to_string();
    let shared: Vec<String> = (0..10)
        .map(|i| {
            let message = a01(&format!("S{i}"), "W1");
            if i == 0 {
                message.replace("20250701093000+0100", &tomorrow)
            } else {
                message
            }
        })
        .collect();
    let senders = 16;
    let clients: Vec<_> = (0..senders)
        .map(|c| {
            let mut messages = shared.clone();
            messages.extend((0..10).map(|i| a01(&format!("C{c}M{i}"), "W2")));
            tokio::spawn(async move {
                let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .expect("connects");
                let mut acks = Vec::new();
                for message in messages {
                    socket
                        .write_all(&bright_ingest::mllp::frame(&message))
                        .await
                        .expect("sends");
                    acks.push(read_ack(&mut socket).await);
                }
                acks
            })
        })
        .collect();
    let mut answered = 0;
    for client in clients {
        for ack in client.await.expect("client") {
            assert!(ack.contains("MSA|AA|"), "{ack}");
            answered += 1;
        }
    }
    assert_eq!(answered, senders * 20);
    let unique = 10 + senders * 10;
    let engine = sink.engine().clone();
    assert_eq!(
        count(&engine, "SELECT count(*) FROM adt_events").await,
        unique
    );
    assert_eq!(
        count(&engine, "SELECT count(DISTINCT event_id) FROM adt_events").await,
        unique
    );
    assert_eq!(stats.accepted.load(Ordering::Relaxed), unique as u64);
    assert_eq!(
        stats.duplicates.load(Ordering::Relaxed),
        (senders * 20 - unique) as u64
    );
    assert_eq!(stats.flagged.load(Ordering::Relaxed), 1);
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM dq_issues WHERE reason LIKE '%in the future%'"
        )
        .await,
        1
    );
}

// Regression: 60 acknowledged messages, the log's last segment cut to half its length, and
// the restart went on with one warning while 30 acknowledged rows were gone without a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_cut_short_refuses_the_restart_until_the_loss_is_accepted_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let wal = dir.path().join("wal");
    let (sink, port, _, stop) = start(&lake, &wal).await;
    let messages: String = (0..60)
        .map(|n| a01(&format!("CUT{n:03}"), "WD1"))
        .collect::<Vec<_>>()
        .join("\n");
    let file = dir.path().join("sixty.hl7");
    std::fs::write(&file, messages).expect("writes");
    let acks = send(port, &file);
    assert_eq!(acks.matches("MSA|AA|").count(), 60, "{acks}");
    stop.send(true).expect("stops");
    drop(sink);

    // Storage fails: the segment that holds them loses its second half.
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&wal)
        .expect("lists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1024))
        .collect();
    segments.sort();
    let segment = segments.pop().expect("a segment with records");
    // The records end where the zeros of the space prepared ahead of them begin.
    let bytes = std::fs::read(&segment).expect("reads");
    let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .and_then(|f| f.set_len(used as u64 / 2))
        .expect("cuts");

    let engine = Arc::new(
        QueryEngine::open(&lake, &bright_engine::query::QueryConfig::default())
            .await
            .expect("engine"),
    );
    let Err(refused) = Sink::open(engine.clone(), &wal).await else {
        panic!("the restart is not refused")
    };
    let message = refused.to_string();
    assert!(message.contains("..=59"), "{message}");
    assert!(message.contains("--accept-wal-loss"), "{message}");

    let (sink, replayed) = Sink::open_with(engine.clone(), &wal, true)
        .await
        .expect("starts, accepting the loss");
    assert_eq!(replayed.losses, 1);
    let kept = count(&engine, "SELECT count(*) FROM adt_events").await;
    assert!((25..60).contains(&kept), "{kept} rows kept");
    let recorded = engine
        .sql("SELECT record_ref, reason, owner FROM dq_issues WHERE feed = 'write_ahead_log'")
        .await
        .expect("runs");
    let rows = bright_engine::arrow::util::pretty::pretty_format_batches(&recorded.batches)
        .expect("renders")
        .to_string();
    assert!(
        rows.contains(&format!("sequences {kept}..=59")),
        "the loss of {} records is recorded: {rows}",
        60 - kept
    );
    drop(sink);
    // Accepted once, the next start needs no flag.
    Sink::open(engine, &wal).await.expect("starts");
}
