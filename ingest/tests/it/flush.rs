//! Flushes as serving makes them: a file per table every few seconds, merged as they gather.

use bright_engine::query::{COMPACT_AFTER, QueryEngine};
use bright_engine::schema::Table;

/// ADT admission `i` on `day` (e.g. 2025-07-01), as one flush's rows.
fn admission(day: &str, i: usize) -> bright_engine::arrow::record_batch::RecordBatch {
    let table = Table::AdtEvents;
    let csv = format!(
        "event_id,event_type,event_time,recorded_at,patient_key,encounter_id,patient_class,org_code,site,ward,bed,specialty,admission_method,discharge_destination,source,prior_patient_key,event_date\n\
         PAS/ADT/a{i},A01,{day}T{:02}:{:02}:00Z,{day}T12:00:00Z,P{i},V{i},inpatient,X01,S1,W1,B{i},300,21,,pas,,{day}\n",
        8 + i / 60,
        i % 60
    );
    let mut reader = bright_engine::arrow::csv::ReaderBuilder::new(table.schema())
        .with_header(true)
        .build(std::io::Cursor::new(csv))
        .expect("reader");
    reader.next().expect("a batch").expect("parses")
}

async fn count(engine: &QueryEngine, sql: &str) -> String {
    let output = engine.sql(sql).await.expect("runs");
    bright_engine::arrow::util::display::array_value_to_string(output.batches[0].column(0), 0)
        .expect("renders")
}

/// A day flushed a few rows at a time stays a few files: the sink merges the day's small
/// files as they gather, and every row acknowledged is read once. A record dated years
/// ahead (a sender's clock gone wrong) does not stop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_flushed_every_few_seconds_stays_a_few_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let (engine, sink) = crate::support::sink(&lake, &dir.path().join("wal")).await;
    let flushes = COMPACT_AFTER * 3;
    let mut most = 0;
    let day = chrono::NaiveDate::from_ymd_opt(2025, 7, 1);
    for i in 0..flushes {
        let written = sink
            .write(
                Table::AdtEvents,
                admission(if i == 3 { "2031-07-01" } else { "2025-07-01" }, i),
            )
            .await
            .expect("writes");
        assert_eq!(written.stored(), 1);
        assert_eq!(sink.flush().await.expect("flushes"), 1);
        let files = lake.files(Table::AdtEvents).await.expect("lists");
        let files = files.values().filter(|d| **d == day).count();
        assert!(files <= COMPACT_AFTER, "{files} files after flush {i}");
        most = most.max(files);
    }
    assert_eq!(most, COMPACT_AFTER, "the files gather up to a compaction");
    assert_eq!(
        count(&engine, "SELECT count(DISTINCT event_id) FROM adt_events").await,
        flushes.to_string()
    );
    assert_eq!(
        count(&engine, "SELECT count(*) FROM adt_events").await,
        flushes.to_string()
    );
}

/// Admissions `(day, i)` as one write's rows, in the order given.
fn admissions(rows: &[(&str, usize)]) -> bright_engine::arrow::record_batch::RecordBatch {
    let batches: Vec<_> = rows.iter().map(|&(day, i)| admission(day, i)).collect();
    bright_engine::arrow::compute::concat_batches(&Table::AdtEvents.schema(), &batches)
        .expect("concatenates")
}

/// A write's rows are admitted by key within their day, whatever order the days come in:
/// a repeat in the same write or a later one is a duplicate, the same key on another day is
/// that day's row, and every row stored is read once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_on_days_in_turn_are_stored_once_per_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lake = crate::support::lake(dir.path()).await;
    let (engine, sink) = crate::support::sink(&lake, &dir.path().join("wal")).await;
    let (one, two) = ("2025-07-01", "2025-07-02");
    let first = sink
        .write(
            Table::AdtEvents,
            admissions(&[(one, 0), (two, 1), (one, 0), (one, 2), (two, 1), (two, 3)]),
        )
        .await
        .expect("writes");
    assert_eq!((first.stored(), first.duplicates()), (4, 2));
    let second = sink
        .write(
            Table::AdtEvents,
            admissions(&[(two, 3), (one, 0), (one, 4), (two, 1), (two, 0)]),
        )
        .await
        .expect("writes");
    assert_eq!((second.stored(), second.duplicates()), (2, 3));
    assert_eq!(sink.flush().await.expect("flushes"), 6);
    let third = sink
        .write(
            Table::AdtEvents,
            admissions(&[(one, 2), (two, 5), (two, 0)]),
        )
        .await
        .expect("writes");
    assert_eq!((third.stored(), third.duplicates()), (1, 2));
    assert_eq!(
        count(
            &engine,
            "SELECT count(DISTINCT event_id || CAST(event_date AS VARCHAR)) FROM adt_events"
        )
        .await,
        "7"
    );
    assert_eq!(count(&engine, "SELECT count(*) FROM adt_events").await, "7");
}
