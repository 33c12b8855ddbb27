//! Rows ingest has acknowledged but not yet flushed: queryable at once, through plain tables,
//! partition filters and materialised KPI views, and counted exactly once across a flush.

use bright_engine::query::QueryEngine;
use bright_engine::schema::Table;

use crate::kpi::{append_csv, csv_batch};
use crate::kpi_golden::{catalogue_engine, fixture_engine};

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

/// MLLP buffers a batch per message: thousands of one-row batches are merged as they gather
/// (into few batches, in tiers so a row is not copied again with every message), and every
/// row stays, once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_batches_are_merged_as_they_gather_and_keep_every_row_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let lake_rows: usize = count(&engine, "SELECT count(*) FROM adt_events")
        .await
        .parse()
        .expect("n");
    let messages = 5_000;
    for i in 0..messages {
        let line = V10.replacen("PAS/ADT/j1", &format!("PAS/ADT/m{i:05}"), 1);
        engine
            .buffer_append(Table::AdtEvents, csv_batch(Table::AdtEvents, &line))
            .expect("buffers");
    }
    assert_eq!(engine.buffered_rows(Table::AdtEvents), messages);
    assert_eq!(
        count(&engine, "SELECT count(*) FROM adt_events").await,
        (lake_rows + messages).to_string()
    );
    let (_, sealed) = engine
        .buffer_seal(Table::AdtEvents)
        .expect("seals")
        .expect("rows");
    assert!(sealed.len() < 2 * 64, "{} batches", sealed.len());
    let ids: Vec<String> = sealed
        .iter()
        .flat_map(|b| {
            let ids = bright_engine::arrow::compute::cast(
                b.column_by_name("event_id").expect("event_id"),
                &bright_engine::arrow::datatypes::DataType::Utf8,
            )
            .expect("text");
            (0..ids.len())
                .map(|r| {
                    bright_engine::arrow::util::display::array_value_to_string(&ids, r)
                        .expect("renders")
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let expected: Vec<String> = (0..messages).map(|i| format!("PAS/ADT/m{i:05}")).collect();
    assert_eq!(ids, expected);
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

/// The rows of `sql` as CSV, for comparing two engines' answers.
async fn rows(engine: &QueryEngine, sql: &str) -> String {
    let mut out = Vec::new();
    engine
        .sql(sql)
        .await
        .expect("runs")
        .write(bright_engine::query::OutputFormat::Csv, &mut out)
        .expect("formats");
    String::from_utf8(out).expect("utf-8")
}

const STAYS: &str = "SELECT * FROM kpi.inpatient_stays ORDER BY encounter_id, start_time";
const LISTS: &str = "SELECT * FROM kpi.theatre_lists ORDER BY org_code, session_id";
/// How often materialised view `name` was computed in `engine`'s session.
async fn view_counts(engine: &QueryEngine, name: &str) -> bright_engine::query::ViewRefreshes {
    engine.view_refreshes(name).await.expect("materialised")
}

const CENSUS: &str = "SELECT * FROM kpi.ward_census ORDER BY org_code, site, ward, day";
const FEED_DAYS: &str = "SELECT * FROM kpi.feed_days ORDER BY org_code, feed, lake_day, day";

/// The keyed views (stays by encounter, operating lists by session) kept up to date key by
/// key, and the census kept up to date from a day, give the rows an engine computing them
/// afresh gives: after late corrections that rewrite old stays and lists, rows still in
/// ingest's buffer, a patient merge (which changes the merges the stays read whole) and a
/// compaction (which rewrites files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_views_kept_up_to_date_by_key_match_views_computed_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let before = (rows(&engine, STAYS).await, rows(&engine, LISTS).await);
    let census_before = rows(&engine, CENSUS).await;
    let feed_days_before = rows(&engine, FEED_DAYS).await;
    let append = |table: Table, csv: &'static str| {
        let lake = engine.lake().clone();
        async move {
            lake.append(table, vec![csv_batch(table, csv)])
                .await
                .expect("appends");
        }
    };
    // V6's discharge on 6 January is cancelled and the patient leaves on the 8th; V9's
    // admission is cancelled; V10 is a new admission. On list TH1-AM, C2's milestones are
    // joined by a cancellation; list TH3-AM, empty so far, gets its first case.
    append(
        Table::AdtEvents,
        "PAS/ADT/f3,A13,2024-01-06T10:20:00Z,2024-07-01T09:00:00Z,P6,V6,inpatient,X01,S1,W1,B3,100,11,,pas,,2024-01-06\n\
         PAS/ADT/f4,A03,2024-01-08T16:00:00Z,2024-07-01T09:00:00Z,P6,V6,inpatient,X01,S1,W1,B3,100,11,19,pas,,2024-01-08\n\
         PAS/ADT/i2,A11,2024-06-20T09:30:00Z,2024-07-01T09:00:00Z,P9,V9,inpatient,X01,S1,W1,,100,11,,pas,,2024-06-20\n",
    )
    .await;
    append(Table::AdtEvents, V10).await;
    append(
        Table::TheatreEvents,
        "T16,C2,TH1-AM,X01,S1,TH1,110,W401,Total knee replacement,cancelled,2024-01-10T12:40:00Z,2,90,,2024-01-10\n\
         T20,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,in_anaesthetic_room,2024-01-10T08:05:00Z,1,60,,2024-01-10\n\
         T21,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,anaesthesia_start,2024-01-10T08:10:00Z,1,60,,2024-01-10\n\
         T22,C7,TH3-AM,X01,S1,TH3,100,H011,Appendicectomy,out_of_theatre,2024-01-10T09:10:00Z,1,60,,2024-01-10\n",
    )
    .await;
    // V11 arrives through ingest and waits in the buffer; the fresh engine is given it too.
    let buffered = csv_batch(Table::AdtEvents, V11);
    engine
        .buffer_append(Table::AdtEvents, buffered.clone())
        .expect("buffers");
    engine.refresh().await.expect("refreshes");
    let kept = (rows(&engine, STAYS).await, rows(&engine, LISTS).await);
    assert_ne!(kept.0, before.0, "the new ADT rows change the stays");
    assert_ne!(kept.1, before.1, "the new milestones change the lists");
    for view in ["inpatient_stays", "theatre_lists"] {
        let refreshes = view_counts(&engine, view).await;
        assert_eq!((refreshes.whole, refreshes.by_key), (1, 1), "{view}");
    }
    let census = rows(&engine, CENSUS).await;
    assert_ne!(census, census_before, "the new ADT rows change the census");
    let refreshes = view_counts(&engine, "ward_census").await;
    assert_eq!((refreshes.whole, refreshes.from_day), (1, 1));
    let fresh = catalogue_engine(engine.lake()).await;
    fresh
        .buffer_append(Table::AdtEvents, buffered)
        .expect("buffers");
    assert_eq!(kept.0, rows(&fresh, STAYS).await);
    assert_eq!(kept.1, rows(&fresh, LISTS).await);
    assert_eq!(census, rows(&fresh, CENSUS).await);
    // Each feed's days, kept up to date from the first day the new rows land on.
    let feed_days = rows(&engine, FEED_DAYS).await;
    assert_ne!(
        feed_days, feed_days_before,
        "the new rows change the feeds' days"
    );
    let refreshes = view_counts(&engine, "feed_days").await;
    assert_eq!((refreshes.whole, refreshes.from_day), (1, 1));
    assert_eq!(feed_days, rows(&fresh, FEED_DAYS).await);

    // Wards new to the census: W7 gets beds from 1 March, W8 its first patient on 30 June.
    // Each is counted from then on, zeros included, and the days before keep their rows.
    append(Table::Beds, "X01,S1,W7,general_acute,4,,2024-03-01\n").await;
    append(
        Table::AdtEvents,
        "PAS/ADT/n1,A01,2024-06-30T10:00:00Z,2024-06-30T10:05:00Z,P13,V13,inpatient,X01,S1,W8,B1,300,21,,pas,,2024-06-30\n",
    )
    .await;
    engine.refresh().await.expect("refreshes");
    fresh.refresh().await.expect("refreshes");
    let census = rows(&engine, CENSUS).await;
    assert_eq!(census, rows(&fresh, CENSUS).await);
    let refreshes = view_counts(&engine, "ward_census").await;
    assert_eq!((refreshes.whole, refreshes.from_day), (1, 2));
    let first_days = rows(
        &engine,
        "SELECT ward, MIN(day), MAX(patients) FROM kpi.ward_census \
         WHERE ward IN ('W7', 'W8') GROUP BY ward ORDER BY ward",
    )
    .await;
    assert_eq!(
        first_days.lines().skip(1).collect::<Vec<_>>(),
        ["W7,2024-03-01,0", "W8,2024-06-30,1"]
    );

    // P8 is merged into P6: the merges change, so the stays are computed whole, and read
    // P8's encounter as P6's.
    append(
        Table::AdtEvents,
        "PAS/ADT/m3,A40,2024-07-01T12:00:00Z,2024-07-01T12:00:00Z,P6,,,X01,,,,,,,pas,P8,2024-07-01\n",
    )
    .await;
    engine.refresh().await.expect("refreshes");
    fresh.refresh().await.expect("refreshes");
    let merged = rows(&engine, STAYS).await;
    assert_ne!(merged, kept.0, "the merge changes a stay's patient");
    assert_eq!(merged, rows(&fresh, STAYS).await);
    let refreshes = view_counts(&engine, "inpatient_stays").await;
    assert_eq!((refreshes.whole, refreshes.by_key), (2, 2));
    // The merge edges, kept by merged record, took the new A40 without being computed whole.
    let refreshes = view_counts(&engine, "merge_edges").await;
    assert_eq!(refreshes.whole, 1, "{refreshes:?}");
    assert_eq!(
        rows(&engine, "SELECT * FROM kpi.patient_merges ORDER BY 1").await,
        rows(&fresh, "SELECT * FROM kpi.patient_merges ORDER BY 1").await
    );
    // The stays computed whole say nothing of which days changed: the census is computed
    // whole too.
    assert_eq!(rows(&engine, CENSUS).await, rows(&fresh, CENSUS).await);
    let refreshes = view_counts(&engine, "ward_census").await;
    assert_eq!((refreshes.whole, refreshes.from_day), (2, 2));

    // A compaction rewrites the files, and its commit says it changed no row: the views keep
    // their rows without computing anything whole.
    let compacted = engine
        .lake()
        .optimize(Table::AdtEvents, None)
        .await
        .expect("compacts");
    assert!(compacted.files_removed > 1, "{compacted:?}");
    engine.refresh().await.expect("refreshes");
    assert_eq!(rows(&engine, STAYS).await, merged);
    assert_eq!(rows(&engine, CENSUS).await, rows(&fresh, CENSUS).await);
    assert_eq!(view_counts(&engine, "inpatient_stays").await.whole, 2);
    assert_eq!(view_counts(&engine, "ward_census").await.whole, 2);

    // Rows added after the compaction are taken key by key again.
    append(
        Table::AdtEvents,
        "PAS/ADT/n2,A01,2024-07-01T14:00:00Z,2024-07-01T14:05:00Z,P14,V14,inpatient,X01,S1,W2,B4,300,21,,pas,,2024-07-01\n",
    )
    .await;
    engine.refresh().await.expect("refreshes");
    fresh.refresh().await.expect("refreshes");
    assert_eq!(rows(&engine, STAYS).await, rows(&fresh, STAYS).await);
    assert_eq!(rows(&engine, CENSUS).await, rows(&fresh, CENSUS).await);
    let refreshes = view_counts(&engine, "inpatient_stays").await;
    assert_eq!(refreshes.whole, 2, "{refreshes:?}");
    assert_eq!(view_counts(&engine, "ward_census").await.whole, 2);
}

/// How many of `table`'s files hold rows from `day` on, by their first day.
async fn files_from(engine: &QueryEngine, table: Table, day: &str) -> usize {
    let day: chrono::NaiveDate = day.parse().expect("a date");
    let files = engine.lake().files(table).await.expect("lists");
    files.values().filter(|d| **d == Some(day)).count()
}

/// Serving flushes a file per table every few seconds. The day being written is compacted
/// as its files gather, and the day before once the day turns, so a board's scans of it open
/// a few files all day; the compaction changes no row, so the views are not computed again
/// and boards are not woken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_being_written_is_compacted_as_flushes_gather() {
    use bright_engine::query::COMPACT_AFTER;

    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let table = Table::AdtEvents;
    // A flush: the rows committed, and the engine moved on to them.
    let flush = async |csv: String| {
        engine
            .lake()
            .append(table, vec![csv_batch(table, &csv)])
            .await
            .expect("appends");
        engine.refresh_table(table).await.expect("refreshes");
    };
    let admission = |day: u32, i: usize| {
        format!(
            "PAS/ADT/d{day}-{i},A01,2024-07-{day:02}T{:02}:{:02}:00Z,2024-07-{day:02}T12:00:00Z,P2{i},V{day}-{i},inpatient,X01,S1,W{},B{i},300,21,,pas,,2024-07-{day:02}\n",
            8 + i / 60,
            i % 60,
            1 + i % 2,
        )
    };
    let day = |d: &str| -> std::collections::BTreeSet<chrono::NaiveDate> {
        [d.parse().expect("a date")].into()
    };
    rows(&engine, STAYS).await;
    let mut signal = engine.changes(table).expect("a signal");

    // 2 July: a flush at a time. Each one is new rows, taken key by key.
    let days = day("2024-07-02");
    let mut merged = 0;
    for i in 0..COMPACT_AFTER * 2 {
        flush(admission(2, i)).await;
        signal.mark_unchanged();
        let before = engine.lake().files(table).await.expect("lists");
        let compacted = engine.compact_days(table, &days).await.expect("compacts");
        assert!(
            !signal.has_changed().expect("open"),
            "a compaction wakes no board"
        );
        if compacted > 0 {
            assert_ne!(engine.lake().files(table).await.expect("lists"), before);
        }
        merged += compacted;
        rows(&engine, STAYS).await;
        assert!(files_from(&engine, table, "2024-07-02").await <= COMPACT_AFTER);
    }
    assert!(merged >= COMPACT_AFTER as u64, "merged {merged}");
    let refreshes = view_counts(&engine, "inpatient_stays").await;
    assert_eq!(refreshes.whole, 1, "{refreshes:?}");

    // A few flushes more, then 3 July's first: 2 July is merged into one file.
    for i in COMPACT_AFTER * 2..COMPACT_AFTER * 2 + 3 {
        flush(admission(2, i)).await;
    }
    assert!(files_from(&engine, table, "2024-07-02").await > 1);
    flush(admission(3, 0)).await;
    let days = day("2024-07-03");
    assert!(engine.compact_days(table, &days).await.expect("compacts") > 0);
    assert_eq!(files_from(&engine, table, "2024-07-02").await, 1);
    assert_eq!(files_from(&engine, table, "2024-07-03").await, 1);
    // Nothing more to merge: the next flush does not rewrite the day before again.
    assert_eq!(
        engine.compact_days(table, &days).await.expect("compacts"),
        0
    );

    let stays = rows(&engine, STAYS).await;
    let fresh = catalogue_engine(engine.lake()).await;
    assert_eq!(stays, rows(&fresh, STAYS).await);
    assert_eq!(rows(&engine, CENSUS).await, rows(&fresh, CENSUS).await);
    let refreshes = view_counts(&engine, "inpatient_stays").await;
    assert_eq!(refreshes.whole, 1, "{refreshes:?}");
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM adt_events WHERE event_date = '2024-07-02'"
        )
        .await,
        (COMPACT_AFTER * 2 + 3).to_string()
    );
}

/// The sink checks a new day's rows for duplicates through `day_rows`. Days no data file spans
/// and no buffered row falls on are answered without a scan; every other day still gets all
/// its rows, from the lake and the buffer, at the edges of the files' spans too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_of_some_days_come_from_the_lake_and_buffer_and_a_new_day_has_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let day = |sql: &str| {
        let engine = &engine;
        let sql = sql.to_string();
        async move {
            let n: i32 = count(engine, &sql).await.parse().expect("days");
            n
        }
    };
    // Days since 1970-01-01 of the lake's first and last ADT event.
    let epoch = "DATE '1970-01-01'";
    let first = day(&format!(
        "SELECT CAST(min(event_date) - {epoch} AS INT) FROM adt_events"
    ))
    .await;
    let last = day(&format!(
        "SELECT CAST(max(event_date) - {epoch} AS INT) FROM adt_events"
    ))
    .await;
    assert!(first < last, "{first} {last}");
    let rows_of = |days: Vec<i32>| {
        let engine = &engine;
        async move {
            engine
                .day_rows(Table::AdtEvents, &days, Some(&["event_id", "event_date"]))
                .await
                .expect("reads")
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>()
        }
    };
    let counted = |day: i32| {
        let engine = &engine;
        async move {
            let n: usize = count(
                engine,
                &format!(
                    "SELECT count(*) FROM adt_events WHERE event_date = {epoch} + INTERVAL '{day} days'"
                ),
            )
            .await
            .parse()
            .expect("n");
            n
        }
    };
    let (on_first, on_last) = (counted(first).await, counted(last).await);
    assert!(on_first > 0 && on_last > 0);
    assert_eq!(rows_of(vec![first]).await, on_first);
    assert_eq!(rows_of(vec![last]).await, on_last);
    assert_eq!(rows_of(vec![first, last]).await, on_first + on_last);
    assert_eq!(rows_of(vec![first - 1, last + 1]).await, 0);

    // A buffered row on a day after every file's: found, beside a day still empty.
    let later = "PAS/ADT/z1,A01,2031-03-03T10:00:00Z,2031-03-03T10:05:00Z,P12,V12,inpatient,X01,S1,W2,B1,300,21,,pas,,2031-03-03\n";
    engine
        .buffer_append(Table::AdtEvents, csv_batch(Table::AdtEvents, later))
        .expect("buffers");
    let buffered = day(&format!("SELECT CAST(DATE '2031-03-03' - {epoch} AS INT)")).await;
    assert!(buffered > last);
    assert_eq!(rows_of(vec![buffered, buffered + 1]).await, 1);
    assert_eq!(rows_of(vec![last, buffered]).await, on_last + 1);
}

/// The latest version of each attendance on days from 2024-06-30, the fixture's last ED days.
const ED_RECENT: &str = "SELECT * FROM kpi.ed_attendances_latest \
                         WHERE arrival_date >= DATE '2024-06-30' ORDER BY attendance_id";
/// The same rows by a filter that sets no first day: the view's query over the lake.
const ED_RECENT_FROM_LAKE: &str = "SELECT * FROM kpi.ed_attendances_latest \
                                   WHERE arrival_date >= DATE '2024-06-30' \
                                      OR attendance_id IS NULL \
                                   ORDER BY attendance_id";

/// The latest ED attendances are kept in memory for the recent days a tick and the command
/// centre read (`recent_days`), brought up to date from the day new versions land on; a query
/// reaching further back, or setting no first day, runs the view's query over the lake; and
/// once the days held span twice the reach, the older ones go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_ed_attendances_are_kept_in_memory_and_older_days_read_from_the_lake() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = fixture_engine(dir.path()).await;
    let view = "ed_attendances_latest";
    let date = |d: &str| Some(d.parse::<chrono::NaiveDate>().expect("date"));
    // Nothing is held until a query asks for recent days; a query of every day reads the lake.
    let all = rows(
        &engine,
        "SELECT * FROM kpi.ed_attendances_latest ORDER BY attendance_id",
    )
    .await;
    assert_eq!(all.lines().count(), 1 + 8, "{all}");
    assert_eq!(view_counts(&engine, view).await.whole, 0);
    let recent = rows(&engine, ED_RECENT).await;
    assert_eq!(recent.lines().count(), 1 + 1, "{recent}");
    assert_eq!(recent, rows(&engine, ED_RECENT_FROM_LAKE).await);
    // Held from a week before the first day asked.
    let counts = view_counts(&engine, view).await;
    assert_eq!((counts.whole, counts.held_from), (1, date("2024-06-23")));
    // Read again, and counted: from memory.
    assert_eq!(recent, rows(&engine, ED_RECENT).await);
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM kpi.ed_attendances_latest WHERE arrival_date >= DATE '2024-07-01'"
        )
        .await,
        "1"
    );
    assert_eq!(view_counts(&engine, view).await.whole, 1);

    // Two new attendances on 1 July, one in the lake and one still in ingest's buffer: the
    // days from 30 June are computed again, and agree with the view's query over the lake.
    append_csv(
        &engine,
        Table::EdAttendances,
        "E20,X01,S1,Q20,2024-07-01T10:00:00Z,walk_in,,,4,2024-07-01T10:10:00Z,,,2024-07-01T12:00:00Z,discharged,18-64,injury,2024-07-01\n",
    )
    .await;
    engine
        .buffer_append(
            Table::EdAttendances,
            csv_batch(
                Table::EdAttendances,
                "E21,X01,S1,Q21,2024-07-01T11:00:00Z,ambulance,2024-07-01T11:00:00Z,2024-07-01T11:20:00Z,2,2024-07-01T11:25:00Z,,,,,65-84,chest pain,2024-07-01\n",
            ),
        )
        .expect("buffers");
    engine.refresh().await.expect("refreshes");
    let updated = rows(&engine, ED_RECENT).await;
    assert_eq!(updated.lines().count(), 1 + 3, "{updated}");
    assert_eq!(updated, rows(&engine, ED_RECENT_FROM_LAKE).await);
    let counts = view_counts(&engine, view).await;
    assert_eq!((counts.whole, counts.from_day), (1, 1), "{counts:?}");

    // January is further back than the reach of 35 days: the lake is read, nothing held moves.
    let january = rows(
        &engine,
        "SELECT attendance_id FROM kpi.ed_attendances_latest \
         WHERE arrival_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' ORDER BY 1",
    )
    .await;
    assert_eq!(january.lines().count(), 1 + 7, "{january}");
    let counts = view_counts(&engine, view).await;
    assert_eq!(
        (counts.whole, counts.from_day, counts.held_from),
        (1, 1, date("2024-06-23"))
    );

    // Attendances 80 days on: the days held would span twice the reach, so those more than
    // 35 days before the last go, and 1 July is read from the lake again.
    append_csv(
        &engine,
        Table::EdAttendances,
        "E30,X01,S1,Q30,2024-09-19T10:00:00Z,walk_in,,,4,2024-09-19T10:10:00Z,,,2024-09-19T12:00:00Z,discharged,18-64,injury,2024-09-19\n",
    )
    .await;
    engine.refresh().await.expect("refreshes");
    let september = "SELECT attendance_id FROM kpi.ed_attendances_latest \
                     WHERE arrival_date >= DATE '2024-09-01' ORDER BY 1";
    assert_eq!(
        rows(&engine, september)
            .await
            .lines()
            .skip(1)
            .collect::<Vec<_>>(),
        ["E30"]
    );
    let counts = view_counts(&engine, view).await;
    assert_eq!(
        (counts.whole, counts.from_day, counts.held_from),
        (1, 2, date("2024-08-15")),
        "{counts:?}"
    );
    assert_eq!(
        rows(&engine, ED_RECENT).await.lines().skip(1).count(),
        4,
        "30 June to September, from the lake"
    );
    assert_eq!(
        view_counts(&engine, view).await.held_from,
        date("2024-08-15")
    );
}
