//! The simulated hospital's feed files, read by ingest, give the rows the simulator writes to
//! the lake directly: every field mapping, time zone and pseudonym agrees on whole feeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bright_engine::arrow::array::RecordBatch;
use bright_engine::arrow::util::display::array_value_to_string;
use bright_engine::batch::BatchBuilder;
use bright_engine::ingest_api::BodyFormat;
use bright_engine::schema::Table;
use bright_ingest::hl7::{AdtConfig, parse_adt};
use bright_ingest::http::parse_body;
use bright_ingest::transforms::{Feed, TimeWindow, Transform};
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::{ArrowSink, SOURCE, simulation_key};
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;

const SEED: u64 = 7;

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, row).expect("renders"))
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

/// Five weeks simulated as feed files under the returned folder, and as the rows the
/// simulator writes to the lake. The days span the clocks going forward (30 March 2025), so
/// times carry both offsets, and the whole of March, so the ledger closes a month.
fn simulate() -> (tempfile::TempDir, BTreeMap<Table, Vec<RecordBatch>>) {
    let config = SimConfig {
        warmup_days: 3,
        ..SimConfig::new(SEED, 36, NaiveDate::from_ymd_opt(2025, 4, 2).expect("date"))
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = FileSink::create(dir.path(), SEED).expect("feed folder");
    Simulation::new(config.clone())
        .expect("simulation")
        .run(&mut files, &mut |_| {})
        .expect("writes feeds");

    let mut direct: BTreeMap<Table, Vec<RecordBatch>> = BTreeMap::new();
    let mut sink = ArrowSink::new(SEED, simulation_key(SEED), |table, batch| {
        direct.entry(table).or_default().push(batch);
        Ok(())
    });
    Simulation::new(config)
        .expect("simulation")
        .run(&mut sink, &mut |_| {})
        .expect("builds rows");
    drop(sink);
    (dir, direct)
}

/// Files of every organisation's `sub` folder whose names start with `prefix`, sorted.
fn feed_files(root: &Path, sub: &str, prefix: &str) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .expect("feed folder")
        .flatten()
        .flat_map(|org| {
            let name = org.file_name().to_string_lossy().into_owned();
            std::fs::read_dir(org.path().join(sub))
                .into_iter()
                .flatten()
                .flatten()
                .map(move |f| (name.clone(), f.path()))
        })
        .filter(|(_, f)| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_simulated_hl7_feed_gives_the_simulator_s_rows() {
    let (dir, direct) = simulate();

    let adt_config = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(SEED),
        window: Default::default(),
    };
    let mut builder = BatchBuilder::new(Table::AdtEvents);
    let mut messages = 0;
    for (_, file) in feed_files(dir.path(), "adt", "") {
        let text = std::fs::read_to_string(&file).expect("reads");
        for message in text.split('\n').filter(|m| !m.trim().is_empty()) {
            let (_, event) = parse_adt(message, &adt_config)
                .unwrap_or_else(|e| panic!("{}: {e}\n{message}", file.display()));
            event.append_to(&mut builder, SOURCE);
            messages += 1;
        }
    }
    let ingested = vec![builder.finish().expect("batch")];
    let expected = rows(direct.get(&Table::AdtEvents).expect("ADT rows"));
    assert!(messages > 100, "only {messages} messages");
    assert_eq!(expected.len(), messages);
    let got = rows(&ingested);
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g);
    }
    assert_eq!(expected, got);
}

#[test]
fn the_simulated_extracts_and_events_give_the_simulator_s_rows() {
    let (dir, direct) = simulate();
    let sources = [
        (
            Feed::EdAttendances,
            "ed",
            "ed_attendances_",
            BodyFormat::Csv,
        ),
        (
            Feed::TheatreEvents,
            "theatres",
            "theatre_events_",
            BodyFormat::Ndjson,
        ),
        (
            Feed::TheatreSessions,
            "theatres",
            "theatre_sessions_",
            BodyFormat::Csv,
        ),
        (Feed::WorkforceShifts, "roster", "roster_", BodyFormat::Csv),
        (Feed::Beds, "beds", "beds", BodyFormat::Csv),
        (
            Feed::FinanceLedger,
            "finance",
            "finance_ledger_",
            BodyFormat::Csv,
        ),
    ];
    for (feed, sub, prefix, format) in sources {
        let mut ingested = Vec::new();
        for (org, file) in feed_files(dir.path(), sub, prefix) {
            // The extracts do not name their trust (theatre events do): it comes with the
            // request, as `?org_code=`.
            let transform = Transform {
                feed,
                zone: chrono_tz::Europe::London,
                key: simulation_key(SEED),
                org_code: Some(org),
                bounds: TimeWindow::default().at(chrono::Utc::now()),
            };
            let body = std::fs::read(&file).expect("reads");
            let (batch, records) = parse_body(&transform, format, &body)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(batch.num_rows(), records);
            ingested.push(batch);
        }
        let expected = rows(direct.get(&feed.table()).map_or(&[][..], Vec::as_slice));
        assert!(
            !expected.is_empty(),
            "{}: the simulation wrote no rows",
            feed.name()
        );
        let got = rows(&ingested);
        assert_eq!(expected.len(), got.len(), "{}", feed.name());
        for (e, g) in expected.iter().zip(&got) {
            assert_eq!(e, g, "{}", feed.name());
        }
    }
}

/// `bright demo`'s replay: a run split at a moment gives the lake what was sent before it and
/// keeps what is sent after it as messages and records; read back through ingest, the two
/// halves are exactly the rows of the whole run.
#[test]
fn a_run_split_for_replay_loses_and_repeats_nothing() {
    let (_dir, direct) = simulate();
    let config = SimConfig {
        warmup_days: 3,
        ..SimConfig::new(SEED, 36, NaiveDate::from_ymd_opt(2025, 4, 2).expect("date"))
    };
    // Noon UTC on the last day.
    let cutoff = NaiveDate::from_ymd_opt(2025, 4, 1)
        .expect("date")
        .and_hms_opt(12, 0, 0)
        .expect("time")
        .and_utc()
        .timestamp_micros();
    let mut past: BTreeMap<Table, Vec<RecordBatch>> = BTreeMap::new();
    let mut sink = ArrowSink::new(SEED, simulation_key(SEED), |table, batch| {
        past.entry(table).or_default().push(batch);
        Ok(())
    });
    let mut split = bright_sim::replay::Split::new(&mut sink, cutoff, SEED);
    Simulation::new(config)
        .expect("simulation")
        .run(&mut split, &mut |_| {})
        .expect("runs");
    let future = split.into_future();
    drop(sink);
    assert!(future.len() > 100, "only {} deliveries kept", future.len());
    assert!(future.iter().all(|t| t.at_micros >= cutoff));
    assert!(future.windows(2).all(|w| w[0].at_micros <= w[1].at_micros));

    // The deliveries, read as ingest reads them, saved and loaded on the way.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("replay.ndjson");
    bright_sim::replay::save(&future, &file).expect("saves");
    let loaded = bright_sim::replay::load(&file).expect("loads");
    assert_eq!(loaded, future);
    let adt_config = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(SEED),
        window: Default::default(),
    };
    let mut replayed: BTreeMap<Table, BatchBuilder> = BTreeMap::new();
    for timed in &loaded {
        match &timed.delivery {
            bright_sim::replay::Delivery::Hl7(message) => {
                let (_, event) = parse_adt(message, &adt_config).expect("parses");
                event.append_to(
                    replayed
                        .entry(Table::AdtEvents)
                        .or_insert_with(|| BatchBuilder::new(Table::AdtEvents)),
                    SOURCE,
                );
            }
            bright_sim::replay::Delivery::Post { feed, record } => {
                let feed = Feed::from_name(feed).expect("a feed");
                let transform = Transform {
                    feed,
                    zone: chrono_tz::Europe::London,
                    key: simulation_key(SEED),
                    org_code: None,
                    bounds: TimeWindow::default().at(chrono::Utc::now()),
                };
                let object = record.as_object().expect("an object");
                transform
                    .append(
                        object,
                        replayed
                            .entry(feed.table())
                            .or_insert_with(|| BatchBuilder::new(feed.table())),
                    )
                    .expect("a valid record");
            }
        }
    }
    for table in [Table::AdtEvents, Table::EdAttendances, Table::TheatreEvents] {
        let mut halves = past.get(&table).cloned().unwrap_or_default();
        let kept = replayed
            .get_mut(&table)
            .map(|b| b.finish().expect("batch"))
            .expect("some rows kept for replay");
        assert!(kept.num_rows() > 0, "{}", table.name());
        halves.push(kept);
        assert_eq!(
            rows(&halves),
            rows(direct.get(&table).expect("rows")),
            "{}",
            table.name()
        );
    }
}
