//! Rows ingest has acknowledged but not yet flushed: queryable at once, through plain tables,
//! partition filters and materialised KPI views, and counted exactly once across a flush.

use bright_engine::query::QueryEngine;
use bright_engine::schema::Table;

use crate::kpi::csv_batch;
use crate::kpi_golden::fixture_engine;

async fn count(engine: &QueryEngine, sql: &str) -> String {
    let output = engine.sql(sql).await.expect("runs");
    bright_engine::arrow::util::display::array_value_to_string(output.batches[0].column(0), 0)
        .expect("renders")
}

const V10: &str = "PAS/ADT/j1,A01,2024-06-25T10:00:00Z,2024-06-25T10:05:00Z,P10,V10,inpatient,X01,S1,W2,B1,300,21,,pas,,2024-06-25\n";
const V11: &str = "PAS/ADT/k1,A01,2024-06-26T10:00:00Z,2024-06-26T10:05:00Z,P11,V11,inpatient,X01,S1,W2,B2,300,21,,pas,,2024-06-26\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_rows_are_queryable_at_once_and_counted_once_across_a_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let all = "SELECT count(*) FROM adt_events";
    let stays = "SELECT count(*) FROM kpi.inpatient_stays WHERE ward = 'W2'";
    let lake_rows: usize = count(&engine, all).await.parse().expect("n");
    let w2_stays: usize = count(&engine, stays).await.parse().expect("n");
    // The materialised stays are computed now, before the buffer has anything.
    assert_eq!(engine.buffered_rows(Table::AdtEvents), 0);
    // Live boards follow a table's change signal: it ticks when rows arrive, for that table
    // only, and not when a flush merely moves rows into the lake.
    let mut adt = engine.changes(Table::AdtEvents).expect("a signal");
    let mut beds = engine.changes(Table::Beds).expect("a signal");
    assert!(!adt.has_changed().expect("open"));

    engine
        .buffer_append(Table::AdtEvents, csv_batch(Table::AdtEvents, V10))
        .expect("buffers");
    assert!(adt.has_changed().expect("open"), "rows arrived");
    assert!(!beds.has_changed().expect("open"));
    adt.mark_unchanged();
    assert_eq!(count(&engine, all).await, (lake_rows + 1).to_string());
    // The materialised view sees the buffer move on and recomputes.
    assert_eq!(count(&engine, stays).await, (w2_stays + 1).to_string());
    // A partition filter Delta applies exactly is applied to buffered rows too.
    let on = |day: &str| format!("SELECT count(*) FROM adt_events WHERE event_date = DATE '{day}'");
    assert_eq!(count(&engine, &on("2024-06-25")).await, "1");
    assert_eq!(count(&engine, &on("2024-06-24")).await, "0");

    // A flush: seal, a message arrives meanwhile, the sealed rows reach the lake, commit.
    let (generation, sealed) = engine
        .buffer_seal(Table::AdtEvents)
        .expect("seals")
        .expect("rows to flush");
    assert_eq!(sealed.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    engine
        .buffer_append(Table::AdtEvents, csv_batch(Table::AdtEvents, V11))
        .expect("buffers");
    engine
        .lake()
        .append(Table::AdtEvents, sealed)
        .await
        .expect("writes");
    // Until the commit the session keeps its Delta snapshot: still no double count.
    assert_eq!(count(&engine, all).await, (lake_rows + 2).to_string());
    assert!(
        adt.has_changed().expect("open"),
        "a row arrived during the flush"
    );
    adt.mark_unchanged();
    engine
        .buffer_flushed(Table::AdtEvents, generation)
        .await
        .expect("commits");
    assert!(
        !adt.has_changed().expect("open"),
        "a flush changes no row queries see"
    );
    beds.mark_unchanged();
    assert_eq!(count(&engine, all).await, (lake_rows + 2).to_string());
    assert_eq!(engine.buffered_rows(Table::AdtEvents), 1);
    assert_eq!(count(&engine, stays).await, (w2_stays + 2).to_string());
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM adt_events WHERE encounter_id IN ('V10', 'V11')"
        )
        .await,
        "2"
    );

    // Rows that are not of the table's schema are refused.
    let wrong = csv_batch(Table::Beds, "");
    assert!(engine.buffer_append(Table::AdtEvents, wrong).is_err());
}

/// A late attendance for a closed period arrives through ingest: the cache recomputes that
/// period on the next tick from the buffer, without waiting for the flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kpi_cache_sees_late_rows_still_in_the_buffer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let today: chrono::NaiveDate = "2024-07-02".parse().expect("date");
    let mut cache = bright_engine::kpi::KpiCache::new();
    let series = |output: &bright_engine::query::QueryOutput| {
        let mut out = Vec::new();
        output
            .write(bright_engine::query::OutputFormat::Csv, &mut out)
            .expect("formats");
        String::from_utf8(out).expect("utf-8")
    };
    let before = series(
        cache
            .series(&engine, "ed_attendances", &[])
            .await
            .expect("computes"),
    );
    engine
        .buffer_append(
            Table::EdAttendances,
            csv_batch(
                Table::EdAttendances,
                "E9,X01,S1,Q9,2024-01-10T15:00:00Z,ambulance,2024-01-10T15:00:00Z,2024-01-10T16:30:00Z,3,2024-01-10T15:05:00Z,,,2024-01-10T17:00:00Z,discharged,18-64,injury,2024-01-10\n",
            ),
        )
        .expect("buffers");
    let report = cache.refresh(&engine, today).await.expect("refreshes");
    assert_eq!(report.changed_tables, vec![Table::EdAttendances]);
    let cached = series(
        cache
            .series(&engine, "ed_attendances", &[])
            .await
            .expect("cached"),
    );
    let full = series(
        &engine
            .kpi_series("ed_attendances", None, None, &[])
            .await
            .expect("full"),
    );
    assert_eq!(cached, full);
    assert_ne!(
        cached, before,
        "the late attendance did not reach the series"
    );
}
