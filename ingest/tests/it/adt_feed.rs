//! The simulated PAS's HL7 feed, read by ingest, gives the rows the simulator writes to the
//! lake directly: every field mapping, time zone and pseudonym agrees on a whole feed.

use std::collections::BTreeMap;

use bright_engine::arrow::array::RecordBatch;
use bright_engine::arrow::util::display::array_value_to_string;
use bright_engine::batch::BatchBuilder;
use bright_engine::schema::Table;
use bright_ingest::hl7::{AdtConfig, parse_adt};
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::{ArrowSink, SOURCE, simulation_key};
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;

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

#[test]
fn the_simulated_hl7_feed_gives_the_simulator_s_rows() {
    let seed = 7;
    let config = SimConfig {
        warmup_days: 3,
        ..SimConfig::new(seed, 4, NaiveDate::from_ymd_opt(2025, 4, 2).expect("date"))
    };
    // The days span the clocks going forward (30 March 2025): times carry +0000 and +0100.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = FileSink::create(dir.path(), seed).expect("feed folder");
    Simulation::new(config.clone())
        .expect("simulation")
        .run(&mut files, &mut |_| {})
        .expect("writes feeds");

    let mut direct: BTreeMap<Table, Vec<RecordBatch>> = BTreeMap::new();
    let mut sink = ArrowSink::new(seed, simulation_key(seed), |table, batch| {
        direct.entry(table).or_default().push(batch);
        Ok(())
    });
    Simulation::new(config)
        .expect("simulation")
        .run(&mut sink, &mut |_| {})
        .expect("builds rows");
    drop(sink);

    let adt_config = AdtConfig {
        time_zone: chrono_tz::Europe::London,
        key: simulation_key(seed),
    };
    let mut builder = BatchBuilder::new(Table::AdtEvents);
    let mut messages = 0;
    let mut feed_files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("feed folder")
        .flatten()
        .map(|org| org.path().join("adt"))
        .flat_map(|adt| std::fs::read_dir(adt).expect("adt folder").flatten())
        .map(|f| f.path())
        .collect();
    feed_files.sort();
    for file in feed_files {
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
