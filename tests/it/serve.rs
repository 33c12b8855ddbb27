//! `bright serve` under SIGKILL: a client streams ADT over MLLP while the server is killed
//! at varying moments (mid-message, mid-flush), restarted, and sent what was not yet
//! acknowledged, as a real sender retries. At the end every acknowledged message is in the
//! lake exactly once and nothing else is.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{bright, feed_files, ok, serve, sql_csv, terminate};

const KEY: &str = "a crash test key, 16+ bytes";

/// Starts `bright serve` and returns it with its MLLP port, once it listens.
fn start(dir: &Path) -> (Child, u16) {
    // Flushes every few messages, so kills also land mid-flush and between a flush's lake
    // commit and the log's truncation.
    let (child, mllp, _) = serve(dir, KEY, &["--flush-secs", "1", "--flush-rows", "7"]);
    (child, mllp)
}

/// Sends messages from `next` on, one at a time, recording each acknowledged index, until
/// the connection fails or all are sent.
fn stream(port: u16, messages: &[(String, String)], next: &AtomicUsize, acked: &Mutex<Vec<usize>>) {
    let Ok(mut socket) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    loop {
        let i = next.load(Ordering::SeqCst);
        let Some((_, text)) = messages.get(i) else {
            return;
        };
        let mut framed = vec![0x0B];
        framed.extend_from_slice(text.as_bytes());
        framed.extend_from_slice(&[0x1C, 0x0D]);
        if socket.write_all(&framed).is_err() {
            return;
        }
        let mut answer = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match socket.read(&mut byte) {
                Ok(1) => {
                    answer.push(byte[0]);
                    if answer.ends_with(&[0x1C, 0x0D]) {
                        break;
                    }
                }
                _ => return,
            }
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.contains("MSA|AA|"), "{answer}");
        acked.lock().expect("lock").push(i);
        next.store(i + 1, Ordering::SeqCst);
    }
}

/// Rounds of SIGKILL: 20 in the suite; `scripts/soak N` runs more (`BRIGHT_SOAK_ROUNDS`).
fn rounds() -> usize {
    std::env::var("BRIGHT_SOAK_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20)
}

#[test]
fn every_acknowledged_message_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let feeds = dir.path().join("feeds");
    let rounds = rounds();
    // About 440 messages a simulated day; each round needs up to 64.
    let days = (rounds * 64 / 400 + 2).to_string();
    ok(&[
        "generate",
        "--days",
        &days,
        "--seed",
        "11",
        "--end",
        "2025-02-01",
        "--out",
        feeds.to_str().expect("utf-8"),
    ]);
    let mut messages = Vec::new();
    for org in std::fs::read_dir(&feeds).expect("feeds").flatten() {
        let mut days: Vec<_> = std::fs::read_dir(org.path().join("adt"))
            .expect("adt")
            .flatten()
            .map(|e| e.path())
            .collect();
        days.sort();
        for day in days {
            for text in std::fs::read_to_string(day).expect("reads").split('\n') {
                let text = text.trim_end_matches('\r');
                if text.is_empty() {
                    continue;
                }
                let msh: Vec<&str> = text.split('|').collect();
                let id = format!("{}/{}/{}", msh[3], msh[2], msh[9]);
                messages.push((id, format!("{text}\r")));
            }
        }
    }
    assert!(messages.len() > rounds * 60, "{} messages", messages.len());
    let messages = Arc::new(messages);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    // Deterministic "random" kill points: after 5 to 64 more acknowledgements.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..rounds {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let target = next.load(Ordering::SeqCst) + 5 + (state % 60) as usize;
        let (mut child, port) = start(dir.path());
        let client = {
            let (messages, next, acked) = (messages.clone(), next.clone(), acked.clone());
            std::thread::spawn(move || stream(port, &messages, &next, &acked))
        };
        // Kill once the client has its target acknowledgements (or finished), whatever the
        // server is doing at that moment; poll the counter rather than sleep a fixed time.
        while next.load(Ordering::SeqCst) < target.min(messages.len()) && !client.is_finished() {
            std::thread::yield_now();
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        client.join().expect("client");
        eprintln!(
            "round {round}: killed after {} acknowledged",
            next.load(Ordering::SeqCst)
        );
    }
    // A last, clean run: it replays the log, and SIGTERM flushes everything to the lake.
    let (child, _) = start(dir.path());
    terminate(child);

    let lake = dir.path().join("lake");
    // Flushes happened while messages streamed (besides the table's creation and the final
    // flush), so kills met the flush path too.
    let commits = std::fs::read_dir(lake.join("adt_events").join("_delta_log"))
        .expect("delta log")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert!(commits >= 5, "only {commits} commits");
    eprintln!("{commits} commits to adt_events");
    let out = sql_csv(&lake, "SELECT event_id FROM adt_events ORDER BY event_id");
    let stored: Vec<&str> = out.lines().skip(1).filter(|l| !l.is_empty()).collect();
    let unique: BTreeSet<&str> = stored.iter().copied().collect();
    assert_eq!(unique.len(), stored.len(), "a message is stored twice");
    let acked: BTreeSet<&str> = acked
        .lock()
        .expect("lock")
        .iter()
        .map(|&i| messages[i].0.as_str())
        .collect();
    assert!(
        acked.len() >= rounds * 5,
        "only {} acknowledged",
        acked.len()
    );
    let lost: Vec<_> = acked.difference(&unique).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // Beyond the acknowledged, at most the message in flight at each kill may have been
    // stored (durable, its ACK lost); each was resent and stored once.
    let sent: BTreeSet<&str> = messages[..next.load(Ordering::SeqCst).min(messages.len())]
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    let extra: Vec<_> = unique.difference(&sent).collect();
    assert!(extra.len() <= rounds, "stored but never sent: {extra:?}");
}

/// `bright ingest` loads HL7 files through the same pipeline: every message stored once (a
/// second load finds them all held), the lake queryable by `bright sql` afterwards, and a
/// file with a malformed message makes the command fail naming the count.
#[test]
fn ingest_loads_hl7_files_through_the_pipeline_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let org = feed_files(dir.path(), 1, 12, "2025-02-01");
    let adt = org.join("adt");
    let messages: usize = std::fs::read_dir(&adt)
        .expect("adt")
        .flatten()
        .map(|f| {
            std::fs::read_to_string(f.path())
                .expect("reads")
                .matches("MSH|")
                .count()
        })
        .sum();
    assert!(messages > 100, "{messages}");
    let lake = dir.path().join("lake");
    let wal = dir.path().join("wal");
    let ingest = |path: &Path| {
        bright()
            .args(["ingest", "--feed", "hl7_adt", "--lake"])
            .arg(&lake)
            .arg("--wal")
            .arg(&wal)
            .arg(path)
            .env("BRIGHT_PSEUDO_KEY", KEY)
            .output()
            .expect("runs")
    };
    let out = ingest(&adt);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("Stored {messages} new rows (0 already held)")),
        "{stdout}"
    );
    let out = ingest(&adt);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!("Stored 0 new rows ({messages} already held)")),
        "{stdout}"
    );
    let count = sql_csv(
        &lake,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM adt_events",
    );
    assert_eq!(
        count.lines().nth(1),
        Some(format!("{messages},{messages}").as_str())
    );

    let bad = dir.path().join("bad.hl7");
    std::fs::write(
        &bad,
        "MSH|^~\\&|PAS|X01|BRIGHT|X01|20250101000000||ADT^A99|Z1|P|2.4\r",
    )
    .expect("writes");
    let out = ingest(&bad);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 rejected (AR)"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 messages were refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Outside the demo there is no default key: without `BRIGHT_PSEUDO_KEY` the pipeline takes
/// the key from the file `[ingest] pseudo_key_file` names (its trailing newline not part of
/// it), refuses a key too short, and refuses to start without either.
#[test]
fn ingest_takes_the_pseudonymisation_key_from_the_configured_file() {
    use bright_engine::pseudonym::{NHS_NUMBER, PseudoKey};

    let dir = tempfile::tempdir().expect("tempdir");
    let message = dir.path().join("a01.hl7");
    std::fs::write(
        &message,
        "MSH|^~\\&|PAS|X01|BRIGHT|X01|20250101090000||ADT^A01^ADT_A01|K1|P|2.4\r\
         EVN|A01|20250101090000\r\
         PID|1||9434765919^^^NHS^NH||SMITH^JANE||19700101|F\r\
         PV1|1|I|W1^^B1^S1|21|||||300||||||||||V1\r",
    )
    .expect("writes");
    let lake = dir.path().join("lake");
    let key_file = dir.path().join("pseudo.key");
    let config = dir.path().join("bright.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\npseudo_key_file = {:?}\n",
            key_file.to_str().expect("utf-8")
        ),
    )
    .expect("writes");
    let ingest = |with_config: bool| {
        let mut command = bright();
        command
            .args(["ingest", "--feed", "hl7_adt", "--lake"])
            .arg(&lake)
            .arg("--wal")
            .arg(dir.path().join("wal"))
            .arg(&message)
            .env_remove("BRIGHT_PSEUDO_KEY")
            .env_remove("BRIGHT_CONFIG");
        if with_config {
            command.arg("--config").arg(&config);
        }
        command.output().expect("runs")
    };

    let out = ingest(false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no pseudonymisation key"), "{stderr}");

    std::fs::write(&key_file, "short\n").expect("writes");
    let out = ingest(true);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pseudo.key"), "{stderr}");

    std::fs::write(&key_file, "a key kept in a file only\n").expect("writes");
    let out = ingest(true);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = sql_csv(&lake, "SELECT patient_key FROM adt_events");
    let expected = PseudoKey::new(b"a key kept in a file only".to_vec())
        .expect("key")
        .patient_key(NHS_NUMBER, "9434765919");
    assert_eq!(stored.lines().nth(1), Some(expected.as_str()), "{stored}");
}
