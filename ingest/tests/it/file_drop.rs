//! The landing folders over a real sink and lake: a messy extract as trusts produce it, a
//! Parquet extract, a file with a bad record (rejected whole, with its reason), a file still
//! being copied (left alone), and a million-row extract loaded in bounded memory.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bright_engine::arrow::array::{ArrayRef, Date32Array, Float64Array, StringArray};
use bright_engine::arrow::datatypes::{DataType, Field, Schema};
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::pseudonym::PseudoKey;
use bright_engine::query::QueryEngine;
use bright_ingest::file_drop::{FileDrop, FileLoader};
use bright_ingest::sink::Sink;

async fn open(dir: &Path) -> (Arc<QueryEngine>, Arc<Sink>) {
    crate::support::sink(&crate::support::lake(dir).await, &dir.join("wal")).await
}

fn landing(dir: &Path, sink: &Arc<Sink>) -> FileDrop {
    let loader = FileLoader::new(
        sink.clone(),
        chrono_tz::Europe::London,
        PseudoKey::new(*b"a file drop test key").expect("key"),
        Some("X01".into()),
    );
    FileDrop::new(dir.join("landing"), loader, Duration::from_secs(1)).expect("landing")
}

async fn count(engine: &QueryEngine, sql: &str) -> String {
    let output = engine.sql(sql).await.expect("query");
    bright_engine::arrow::util::display::array_value_to_string(output.batches[0].column(0), 0)
        .expect("a value")
}

fn files(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn dropped_extracts_are_loaded_or_rejected_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, sink) = open(dir.path()).await;
    let mut drop = landing(dir.path(), &sink);
    let ed = dir.path().join("landing/ed_attendances");

    // As a trust's system writes it: a byte-order mark, CRLF, padded and quoted fields (a comma
    // and a line break inside quotes), blank lines, UK dates, and Latin-1 (é as byte 0xE9).
    let mut messy: Vec<u8> = Vec::new();
    messy.extend_from_slice("\u{feff}Attendance_ID , SITE,NHS_Number,Arrival,Arrival_Mode,Acuity,Departure,Disposal,Chief_Complaint\r\n".as_bytes());
    messy.extend_from_slice(b"ED1,NGH,943 476 5919,01/07/2025 09:30:00,ambulance,2,01/07/2025 13:10:00,admitted,\"chest pain, radiating\"\r\n");
    messy.extend_from_slice(b"\r\n");
    messy.extend_from_slice(
        b"ED2 , NGH ,,01/07/2025 10:05,walk_in,4,,,\"fell at the caf\xe9\r\nhit head\"\r\n",
    );
    messy.extend_from_slice(b"\r\n\r\n");
    messy.extend_from_slice(
        b"ED3,NGH,4010232137,2025-07-01 23:59:59,other,,02/07/2025 01:00,discharged,\r\n",
    );
    std::fs::write(ed.join("ed_extract_20250701.csv"), &messy).expect("writes");
    // A file with a bad third line: rejected whole.
    std::fs::write(
        ed.join("ed_extract_20250702.csv"),
        "attendance_id,site,arrival,arrival_mode\nED4,NGH,02/07/2025 08:00,walk_in\nED5,NGH,31/06/2025 08:00,walk_in\n",
    )
    .expect("writes");
    // Still being copied in: never taken.
    std::fs::write(ed.join("ed_extract_20250703.csv.part"), "attendance_id\n").expect("writes");
    // A Parquet extract of the roster, with typed columns.
    let schema = Arc::new(Schema::new(vec![
        Field::new("shift_id", DataType::Utf8, false),
        Field::new("site", DataType::Utf8, false),
        Field::new("ward", DataType::Utf8, true),
        Field::new("staff_group", DataType::Utf8, false),
        Field::new("shift_date", DataType::Date32, false),
        Field::new("planned_hours", DataType::Float64, false),
        Field::new("worked_hours", DataType::Float64, false),
        Field::new("contract", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["S1", "S2"])),
        Arc::new(StringArray::from(vec!["NGH", "NGH"])),
        Arc::new(StringArray::from(vec![Some("W1"), None])),
        Arc::new(StringArray::from(vec!["nursing", "medical"])),
        Arc::new(Date32Array::from(vec![20_270, 20_270])),
        Arc::new(Float64Array::from(vec![11.5, 10.0])),
        Arc::new(Float64Array::from(vec![11.5, 0.0])),
        Arc::new(StringArray::from(vec!["bank", "agency"])),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
    let file = std::fs::File::create(dir.path().join("landing/workforce_shifts/roster.parquet"))
        .expect("creates");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("writes");
    writer.close().expect("closes");

    // The first scan only notes the files; the second finds them unchanged and takes them.
    drop.scan().await;
    assert_eq!(
        count(&engine, "SELECT count(*) FROM ed_attendances").await,
        "0"
    );
    drop.scan().await;

    assert_eq!(files(&ed.join("processed")), ["ed_extract_20250701.csv"]);
    assert_eq!(
        files(&ed.join("rejected")),
        [
            "ed_extract_20250702.csv",
            "ed_extract_20250702.csv.reason.txt"
        ]
    );
    let reason = std::fs::read_to_string(ed.join("rejected/ed_extract_20250702.csv.reason.txt"))
        .expect("a reason");
    assert!(
        reason.contains("line 3, field 'arrival_time': '31/06/2025 08:00' is not a time"),
        "{reason}"
    );
    assert_eq!(
        files(&ed),
        ["ed_extract_20250703.csv.part", "processed", "rejected"]
    );
    assert_eq!(
        files(&dir.path().join("landing/workforce_shifts/processed")),
        ["roster.parquet"]
    );

    assert_eq!(
        count(&engine, "SELECT count(*) FROM ed_attendances").await,
        "3"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT chief_complaint FROM ed_attendances WHERE attendance_id = 'ED2'"
        )
        .await,
        "fell at the café\r\nhit head"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM ed_attendances WHERE org_code = 'X01' AND site = 'NGH'"
        )
        .await,
        "3"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT sum(worked_hours) FROM workforce_shifts WHERE shift_date = DATE '2025-07-01'"
        )
        .await,
        "11.5"
    );
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM dq_issues WHERE feed = 'ed_attendances' \
             AND record_ref = 'file ed_extract_20250702.csv' AND owner = 'ED systems team'"
        )
        .await,
        "1"
    );

    // Dropped again (a resend of the same extract): processed, nothing stored twice.
    std::fs::write(ed.join("ed_extract_20250701.csv"), &messy).expect("writes");
    drop.scan().await;
    drop.scan().await;
    assert_eq!(
        count(&engine, "SELECT count(*) FROM ed_attendances").await,
        "3"
    );
    assert_eq!(files(&ed.join("processed")).len(), 2);
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

/// Writes an ED extract of `rows` attendances numbered from `first`. Like real extracts it
/// carries identifiers bright never keeps (names, date of birth, address).
fn write_extract(path: &Path, first: usize, rows: usize) -> f64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creates"));
    writeln!(
        out,
        "attendance_id,site,nhs_number,forename,surname,date_of_birth,address,postcode,arrival,arrival_mode,acuity,initial_assessment,seen,departure,disposal,age_band,chief_complaint"
    )
    .expect("writes");
    for i in first..first + rows {
        let day = 1 + i % 28;
        writeln!(
            out,
            "X01-ED{i:09},NGH,{:010},Alex,Smith-{i},{:02}/0{}/1990,\"{} Church Street, Liverpool\",L{} 1AA,{day:02}/02/2025 {:02}:{:02}:00,walk_in,3,{day:02}/02/2025 {:02}:{:02}:30,,,,25-34,\"shortness of breath, wheeze\"",
            4_000_000_000u64 + i as u64,
            1 + i % 28,
            1 + i % 9,
            i % 200,
            i % 30,
            i % 20,
            i % 60,
            i % 20,
            (i + 7) % 60,
        )
        .expect("writes");
    }
    out.flush().expect("flushes");
    std::fs::metadata(path).expect("size").len() as f64 / 1e6
}

/// A million-row extract streams: the rows waiting for the lake never exceed the sink's
/// bound, and memory grows far less than the file does (only the set of row keys that
/// recognises resends grows with the rows stored). nextest runs each test in its own
/// process, so the peaks are this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_extract_loads_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, sink) = open(dir.path()).await;
    // Writers wait for room past 100,000 buffered rows; a flusher drains, as in serve.
    sink.set_flush_rows(50_000);
    sink.set_max_buffered_rows(100_000);
    let flusher = {
        let sink = sink.clone();
        tokio::spawn(async move {
            loop {
                sink.full().await;
                sink.flush().await.expect("flushes");
            }
        })
    };
    let mut drop = landing(dir.path(), &sink);
    let folder = dir.path().join("landing/ed_attendances");
    let mut load = async |name: &str, first: usize, rows: usize| {
        let mb = write_extract(&folder.join(name), first, rows);
        drop.scan().await;
        drop.scan().await;
        assert!(
            folder.join("processed").join(name).exists(),
            "{name} not loaded"
        );
        (mb, peak_rss_mb())
    };
    let (small_mb, small_peak) = load("ed_small.csv", 0, 250_000).await;
    let (big_mb, big_peak) = load("ed_big.csv", 250_000, 1_000_000).await;
    flusher.abort();
    sink.flush().await.expect("flushes");
    eprintln!(
        "{small_mb:.0} MB file: peak RSS {small_peak:.0} MB; then a {big_mb:.0} MB file: {big_peak:.0} MB; \
         at most {} rows waited for the lake",
        sink.peak_buffered_rows()
    );
    assert_eq!(
        count(&engine, "SELECT count(*) FROM ed_attendances").await,
        "1250000"
    );
    let columns = count(
        &engine,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ed_attendances' \
         AND column_name IN ('forename', 'surname', 'date_of_birth', 'address', 'postcode')",
    )
    .await;
    assert_eq!(columns, "0", "identifiers reached the lake");
    let all = count(
        &engine,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'ed_attendances'",
    )
    .await;
    assert_eq!(all, "17", "the lake's ED columns");
    assert!(
        sink.peak_buffered_rows() <= 100_000 + bright_ingest::file_drop::CHUNK_ROWS,
        "{} rows buffered",
        sink.peak_buffered_rows()
    );
    // Four times the rows raise the peak by less than the file grew.
    assert!(
        big_peak - small_peak < big_mb - small_mb,
        "peak RSS {small_peak:.0} MB -> {big_peak:.0} MB for files of {small_mb:.0} and {big_mb:.0} MB"
    );
}

/// Keys are kept for the partitions written lately only: past the limit, a flush lets the
/// oldest go, and a resend of their rows is still recognised from the lake.
#[tokio::test]
async fn partitions_let_go_still_recognise_their_rows() {
    use bright_engine::batch::BatchBuilder;
    use bright_engine::schema::Table;
    use bright_ingest::sink::LOADED_PARTITIONS;
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, sink) = open(dir.path()).await;
    let days = LOADED_PARTITIONS + 6;
    let shifts = || {
        let mut builder = BatchBuilder::new(Table::WorkforceShifts);
        for day in 0..days {
            builder
                .row()
                .text(&format!("S{day}"))
                .text("X01")
                .text("NGH")
                .opt_text(Some("W1"))
                .text("nursing")
                .float64(7.5)
                .float64(7.5)
                .text("bank")
                .date(20_000 + i32::try_from(day).expect("small"))
                .end();
        }
        builder.finish().expect("batch")
    };
    let first = sink
        .write(Table::WorkforceShifts, shifts())
        .await
        .expect("writes");
    assert_eq!((first.stored(), first.duplicates()), (days, 0));
    assert_eq!(sink.loaded_partitions(), days);
    sink.flush().await.expect("flushes");
    assert!(sink.loaded_partitions() <= LOADED_PARTITIONS);
    let again = sink
        .write(Table::WorkforceShifts, shifts())
        .await
        .expect("writes");
    assert_eq!((again.stored(), again.duplicates()), (0, days));
    assert_eq!(
        count(&engine, "SELECT count(*) FROM workforce_shifts").await,
        days.to_string()
    );
}
