//! What gets in must be true: impossible dates, money past the ledger's precision, ambiguous
//! number text, admissions without a patient, unbounded text and bodies that say nothing are
//! refused over the real HTTP router and a real MLLP client, each naming its field, recorded
//! for the feed's owners, stored nowhere; refused HL7 is quarantined whole. Afterwards Python
//! deltalake and DuckDB still read every table of the lake whole.

use std::process::Command;
use std::sync::Arc;

use axum::http::StatusCode;
use bright_engine::schema::MAX_FREE_TEXT_CHARS;
use bright_ingest::hl7::AdtConfig;
use bright_ingest::mllp::{Listener, MllpConfig};
use bright_ingest::quarantine::Quarantine;
use bright_sim::lake_sink::simulation_key;

use crate::http_ingest::{count, pipeline, post};
use crate::moto::python;

/// Bodies that must be refused: (feed, content type, body, the field named or, for bodies
/// without records, words of the reason).
fn bad_bodies() -> Vec<(&'static str, &'static str, String, &'static str)> {
    let ed = |arrival: &str| {
        format!(
            r#"{{"attendance_id":"Y0","org_code":"X01","site":"NGH","arrival_time":"{arrival}","arrival_mode":"walk_in"}}"#
        )
    };
    let ledger = |budget: &str| {
        format!(
            r#"{{"cost_centre":"C1","org_code":"X01","site":"NGH","category":"pay","budget":"{budget}","actual":"1.00","month":"2025-06"}}"#
        )
    };
    let long = "S".repeat(500_000);
    let ndjson = "application/x-ndjson";
    let mut bodies = vec![
        ("ed_attendances", ndjson, ed("0000-01-01T00:00:00Z"), "arrival_time"),
        ("ed_attendances", ndjson, ed("1900-01-01T00:00:00Z"), "arrival_time"),
        ("ed_attendances", ndjson, ed("2200-01-01T00:00:00Z"), "arrival_time"),
        ("ed_attendances", ndjson, ed("9999-12-31T23:59:59Z"), "arrival_time"),
        (
            "theatre_events",
            ndjson,
            r#"{"event_id":"E0","case_id":"C0","org_code":"X01","site":"NGH","theatre":"T1","milestone":"sent_for","event_time":"0000-01-01T00:00:00Z"}"#.into(),
            "event_time",
        ),
        (
            "theatre_sessions",
            ndjson,
            r#"{"session_id":"S0","org_code":"X01","site":"NGH","theatre":"T1","session_date":"0000-01-01","planned_start":"08:00","planned_end":"13:00"}"#.into(),
            "session_date",
        ),
        (
            "workforce_shifts",
            ndjson,
            r#"{"shift_id":"W0","org_code":"X01","site":"NGH","staff_group":"hca","planned_hours":7.5,"worked_hours":7.5,"contract":"bank","shift_date":"0000-01-01"}"#.into(),
            "shift_date",
        ),
        (
            "workforce_shifts",
            ndjson,
            r#"{"shift_id":"W1","org_code":"X01","site":"NGH","staff_group":"hca","planned_hours":"NaN","worked_hours":7.5,"contract":"bank","shift_date":"2025-06-01"}"#.into(),
            "planned_hours",
        ),
        (
            "beds",
            ndjson,
            r#"{"org_code":"X01","site":"NGH","ward":"W1","ward_type":"general_acute","beds":20,"valid_from":"0000-01-01"}"#.into(),
            "valid_from",
        ),
        ("finance_ledger", ndjson, ledger("10000000000000000000"), "budget"),
        ("finance_ledger", ndjson, ledger("10000000000000000.00"), "budget"),
        ("finance_ledger", ndjson, ledger("12.345"), "budget"),
        ("finance_ledger", ndjson, ledger("1,5"), "budget"),
        ("finance_ledger", ndjson, ledger("£1,2,3"), "budget"),
        // JSON labelled as CSV reads as a header and no rows; an empty body holds nothing.
        ("ed_attendances", "text/csv", ed("2025-06-01T09:00:00Z"), "looks like JSON"),
        ("ed_attendances", ndjson, String::new(), "no records"),
        ("ed_attendances", "text/csv", "attendance_id,site\n".into(), "no rows"),
    ];
    // A long site on every feed.
    let records = [
        ("ed_attendances", ed("2025-06-01T09:00:00Z")),
        ("finance_ledger", ledger("1.00")),
    ];
    for (feed, record) in records {
        let record = record.replace(r#""site":"NGH""#, &format!(r#""site":"{long}""#));
        bodies.push((feed, ndjson, record, "site"));
    }
    bodies
}

/// HL7 messages that must be answered AE: (control id, message, field named).
fn bad_messages() -> Vec<(String, String, &'static str)> {
    let message = |control: &str, evn: &str, pid: &str, ward: &str| {
        format!(
            "MSH|^~\\&|PAS|X01|BRIGHT|X01|20261127103000||ADT^A01^ADT_A01|{control}|P|2.4\r\
EVN|A01|{evn}\r{pid}PV1|1|I|{ward}^^B1^NGH||||||||||||||||V{control}\r"
        )
    };
    let pid = "PID|1||9434765919^^^NHS^NH||SMITH^JANE\r";
    let long_control = "C".repeat(100_000);
    vec![
        // Straight from the report: an A01 without PID.
        (
            "NOPID1".into(),
            message("NOPID1", "20261127103000", "", "AMU"),
            "PID-3",
        ),
        (
            "NOPID2".into(),
            message("NOPID2", "20261127103000", "PID|1||\r", "AMU"),
            "PID-3",
        ),
        (
            "YEAR0".into(),
            message("YEAR0", "00000101000000", pid, "AMU"),
            "EVN-2",
        ),
        (
            "WARD900K".into(),
            message("WARD900K", "20261127103000", pid, &"W".repeat(900_000)),
            "PV1-3",
        ),
        (
            long_control.clone(),
            message(&long_control, "20261127103000", pid, "AMU"),
            "MSH-10",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_values_are_refused_everywhere_and_the_lake_stays_open_to_other_readers() {
    let p = pipeline().await;

    // HTTP: every bad body is a 400 naming where and what.
    let bodies = bad_bodies();
    for (feed, content_type, body, expected) in &bodies {
        let uri = format!("/api/ingest/{feed}");
        let answer = post(&p.state, &uri, content_type, body).await;
        let shown = &body[..body.len().min(120)];
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{feed} {shown}: {}",
            answer.body
        );
        let said = answer.body.to_string();
        assert!(
            said.len() < 2_000,
            "the refusal quotes the input: {} bytes",
            said.len()
        );
        match answer.body["field"].as_str() {
            Some(field) => assert_eq!(field, *expected, "{feed} {shown}: {said}"),
            None => assert!(said.contains(expected), "{feed} {shown}: {said}"),
        }
        assert!(
            answer.body["line"].is_number() || answer.body["record"].is_number(),
            "{said}"
        );
    }

    // MLLP, from a real client: AE naming the field, the message kept in quarantine.
    let quarantine = Arc::new(Quarantine::open(p.dir.path().join("quarantine")).expect("opens"));
    let adt = AdtConfig {
        time_zone: bright_engine::query::QueryConfig::default().time_zone,
        key: simulation_key(7),
        window: Default::default(),
    };
    let listener = Listener::new(p.sink.clone(), adt, MllpConfig::default())
        .with_quarantine(quarantine.clone());
    let stats = listener.stats();
    let (port, stop) = crate::mllp_client::run_on_loopback(listener).await;
    let messages = bad_messages();
    for (control, message, field) in &messages {
        let file = p.dir.path().join("message.hl7");
        std::fs::write(&file, message).expect("writes");
        let acks = tokio::task::spawn_blocking(move || crate::mllp_client::send(port, &file))
            .await
            .expect("sent");
        let shown = &control[..control.len().min(20)];
        assert!(acks.contains("MSA|AE|"), "{shown}: {acks}");
        assert!(
            acks.contains(&format!("{field}:")),
            "{shown} should name {field}: {acks}"
        );
    }
    let kept = quarantine.messages("hl7_adt").expect("lists");
    assert_eq!(kept.len(), messages.len());
    for (path, (_, message, field)) in kept.iter().zip(&messages) {
        // As received: the client may leave out the last segment's CR.
        let kept = std::fs::read_to_string(path).expect("reads");
        assert_eq!(kept.trim_end_matches('\r'), message.trim_end_matches('\r'));
        let reason = std::fs::read_to_string(path.with_extension("reason.txt")).expect("reads");
        assert!(reason.contains(field), "{reason}");
    }
    assert_eq!(
        stats.quarantined.load(std::sync::atomic::Ordering::Relaxed),
        messages.len() as u64
    );
    stop.send(true).expect("stops");

    // Nothing refused was stored; every refusal is recorded for the owners, bounded.
    for table in [
        "adt_events",
        "ed_attendances",
        "theatre_events",
        "theatre_sessions",
        "workforce_shifts",
        "beds",
        "finance_ledger",
    ] {
        let stored = count(&p.engine, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(stored, 0, "{table} holds refused rows");
    }
    let issues = count(&p.engine, "SELECT count(*) FROM dq_issues").await;
    assert_eq!(issues as usize, bodies.len() + messages.len());
    let longest = count(
        &p.engine,
        "SELECT CAST(max(greatest(character_length(record_ref), character_length(reason), \
         character_length(org_code))) AS BIGINT) FROM dq_issues",
    )
    .await;
    assert!(longest as usize <= MAX_FREE_TEXT_CHARS, "{longest}");

    // One good record beside them, then everything to the lake.
    let good = post(
        &p.state,
        "/api/ingest/finance_ledger",
        "application/x-ndjson",
        r#"{"cost_centre":"C1","org_code":"X01","site":"NGH","category":"pay","budget":"£1,234,567.89","actual":"9999999999999999.99","month":"2025-06"}"#,
    )
    .await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    p.sink.flush().await.expect("flushes");

    // Every table reads whole in Python deltalake and DuckDB.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/read_whole.py");
    let lake = p.dir.path().join("lake");
    let out = Command::new(python())
        .arg(script)
        .arg(&lake)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "another reader cannot read the lake: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(read["dq_issues"], issues, "{read}");
    assert_eq!(read["finance_ledger"], 1, "{read}");
    // The money comes back as it was sent, in both readers.
    assert_eq!(
        read["ledger_amounts"],
        serde_json::json!(["1234567.89", "9999999999999999.99"]),
        "{read}"
    );
}
