//! Same seed → byte-identical feed files.

use std::collections::BTreeMap;
use std::path::Path;

use bright_sim::feeds::FileSink;
use bright_sim::{SimConfig, Simulation};
use chrono::NaiveDate;

fn generate(dir: &Path, seed: u64) {
    let mut config = SimConfig::new(seed, 40, NaiveDate::from_ymd_opt(2025, 4, 10).unwrap());
    config.warmup_days = 20;
    let mut sink = FileSink::create(dir, seed).unwrap();
    Simulation::new(config)
        .unwrap()
        .run(&mut sink, &mut |_| {})
        .unwrap();
}

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                files.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn the_same_seed_writes_the_same_bytes_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    generate(a.path(), 7);
    generate(b.path(), 7);
    generate(c.path(), 8);
    let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
    assert!(
        ta.len() > 100,
        "expected daily feed files, got {}",
        ta.len()
    );
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, bytes) in &ta {
        assert!(
            bytes == &tb[name],
            "{name} differs between two runs with seed 7"
        );
    }
    let differing = ta
        .iter()
        .filter(|(n, bytes)| tc.get(*n) != Some(*bytes))
        .count();
    assert!(
        differing > ta.len() / 2,
        "seed 8 should give different data"
    );
    // Every feed kind is there, in its real format.
    for expected in [
        "X01/adt/2025-03-15.hl7",
        "X01/ed/ed_attendances_2025-03-15.csv",
        "X01/theatres/theatre_events_2025-03-17.ndjson",
        "X01/theatres/theatre_sessions_2025-03.csv",
        "X01/roster/roster_2025-03.csv",
        "X01/finance/finance_ledger_2025-03.csv",
        "X01/beds/beds.csv",
    ] {
        assert!(ta.contains_key(expected), "missing {expected}");
    }
    let hl7 = String::from_utf8(ta["X01/adt/2025-03-15.hl7"].clone()).unwrap();
    let first = hl7.lines().next().unwrap();
    assert!(
        first.starts_with("MSH|^~\\&|PAS|X01|BRIGHT|X01|20250315"),
        "{first}"
    );
    assert!(
        first.contains("\rPID|1||999"),
        "NHS numbers in the test range: {first}"
    );
    let ed = String::from_utf8(ta["X01/ed/ed_attendances_2025-03-15.csv"].clone()).unwrap();
    assert!(ed.starts_with("attendance_id,site,nhs_number,"), "{ed}");
    assert!(
        ed.lines().nth(1).unwrap().contains("/03/2025 "),
        "UK dates: {ed}"
    );
}

#[test]
fn an_output_folder_with_files_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
    assert!(FileSink::create(dir.path(), 1).is_err());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
        "mine"
    );
}
