//! What the simulator writes to a real lake is consistent (every discharge has an admission,
//! wards never hold more patients than beds plus the escalation margin, ED times are ordered)
//! and realistic (volumes, occupancy, and the planted process changes show up in the data).

use std::collections::{BTreeMap, HashMap};

use bright_engine::arrow::array::{Array, AsArray};
use bright_engine::arrow::compute::cast;
use bright_engine::arrow::datatypes::DataType;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine, QueryOutput};
use bright_engine::schema::Table;
use bright_sim::lake_sink::{generate_into_lake, simulation_key};
use bright_sim::{Changes, SimConfig};
use chrono::NaiveDate;

const ESCALATION_BEDS: u32 = 2;

fn column(out: &QueryOutput, col: usize) -> Vec<Option<String>> {
    let mut values = Vec::with_capacity(out.num_rows());
    for batch in &out.batches {
        let text = cast(batch.column(col), &DataType::Utf8).unwrap();
        let text = text.as_string::<i32>();
        for i in 0..text.len() {
            values.push(text.is_valid(i).then(|| text.value(i).to_string()));
        }
    }
    values
}

fn float(out: &QueryOutput, col: usize, row: usize) -> f64 {
    column(out, col)[row]
        .as_deref()
        .expect("a value")
        .parse()
        .expect("a number")
}

async fn simulated_lake() -> (tempfile::TempDir, Lake, Changes) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    // 300 days from December to September: a winter with its escalation beds, and all three
    // changes in spring and summer, so comparing the weeks either side of each is not
    // confounded by winter pressure.
    let mut config = SimConfig::new(11, 300, NaiveDate::from_ymd_opt(2025, 10, 1).unwrap());
    config.escalation_beds = ESCALATION_BEDS;
    let changes = Changes::planted(&config);
    generate_into_lake(config, simulation_key(11), &lake, Box::new(|_| {}))
        .await
        .unwrap();
    (dir, lake, changes)
}

/// Replays ADT in event order, tracking where every open encounter is; `beds` holds each
/// ward's regular beds.
fn replay_adt(out: &QueryOutput, beds: &HashMap<String, u32>) -> (usize, usize) {
    let (kind, encounter, ward, bed, time) = (
        column(out, 0),
        column(out, 1),
        column(out, 2),
        column(out, 3),
        column(out, 4),
    );
    let mut at: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut ever_admitted: BTreeMap<String, bool> = BTreeMap::new();
    let mut discharged: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut peak_over_beds = 0usize;
    let mut transfers = 0;
    for i in 0..kind.len() {
        let k = kind[i].as_deref().unwrap();
        let e = encounter[i].clone().unwrap();
        let place = (ward[i].clone().unwrap(), bed[i].clone().unwrap());
        match k {
            "A01" => {
                assert!(!at.contains_key(&e), "{e} admitted twice");
                at.insert(e.clone(), place);
                ever_admitted.insert(e, true);
            }
            "A02" | "A12" => {
                assert!(at.contains_key(&e), "{k} for {e}, who is not in a bed");
                transfers += 1;
                at.insert(e, place);
            }
            "A03" => {
                assert!(
                    ever_admitted.contains_key(&e),
                    "discharge without an admission: {e}"
                );
                let from = at
                    .remove(&e)
                    .unwrap_or_else(|| panic!("{e} discharged twice"));
                discharged.insert(e, from);
            }
            "A13" => {
                let back = discharged
                    .remove(&e)
                    .unwrap_or_else(|| panic!("A13 for {e} without A03"));
                at.insert(e, back);
            }
            "A11" => {
                assert!(at.remove(&e).is_some(), "A11 for {e}, who is not admitted");
            }
            "A08" => assert!(at.contains_key(&e), "A08 for {e}, who is not in a bed"),
            "A40" => assert!(at.contains_key(&e), "A40 for {e}, who is not in a bed"),
            other => panic!("unexpected event type {other}"),
        }
        // After every event: each bed holds at most one patient and each ward at most its
        // beds plus the escalation margin.
        if matches!(k, "A01" | "A02" | "A12" | "A13") {
            let (w, b) = &at[&encounter[i].clone().unwrap()];
            let in_bed = at.values().filter(|(ow, ob)| ow == w && ob == b).count();
            assert_eq!(in_bed, 1, "two patients in {w} {b} after event {i} ({k})");
            let in_ward = at.values().filter(|(ow, _)| ow == w).count();
            let capacity = beds[w] + ESCALATION_BEDS;
            assert!(
                in_ward as u32 <= capacity,
                "{w}: {in_ward} patients, {capacity} beds with escalation"
            );
            peak_over_beds = peak_over_beds.max(in_ward.saturating_sub(beds[w] as usize));
            // Escalation beds are a winter plan: nobody is put in one from April to November.
            if b.starts_with('E') && k != "A13" {
                let month: u32 = time[i].as_deref().unwrap()[5..7].parse().unwrap();
                assert!(
                    matches!(month, 12 | 1 | 2 | 3),
                    "{k} into escalation bed {w} {b} at {:?}",
                    time[i]
                );
            }
        }
    }
    (peak_over_beds, transfers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulated_hospital_is_consistent_and_shows_its_planted_changes() {
    let (_dir, lake, changes) = simulated_lake().await;

    // Written a month at a time, then merged: each small table is one file. The ED table's
    // monthly files are larger than the merge's target and stay apart.
    for table in [
        Table::FinanceLedger,
        Table::DqIssues,
        Table::TheatreSessions,
    ] {
        let stats = lake.stats(table).await.unwrap();
        assert!(stats.version > 2, "{table}: {} commits", stats.version);
        assert_eq!(stats.files, 1, "{table}");
        assert!(stats.rows > 0, "{table}");
    }
    let ed = lake.stats(Table::EdAttendances).await.unwrap();
    assert!(ed.files > 1, "ED in {} files", ed.files);

    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .unwrap();

    // ED timestamps are ordered wherever they exist.
    let out = engine
        .sql(
            "SELECT count(*) FROM ed_attendances WHERE \
               handover_time < arrival_time \
            OR initial_assessment_time < arrival_time \
            OR seen_time < initial_assessment_time \
            OR decision_to_admit_time < seen_time \
            OR departure_time < coalesce(decision_to_admit_time, seen_time, initial_assessment_time, arrival_time) \
            OR (arrival_mode = 'ambulance') <> (ambulance_arrival_time IS NOT NULL)",
        )
        .await
        .unwrap();
    assert_eq!(
        float(&out, 0, 0),
        0.0,
        "ED attendances with times out of order"
    );

    // ADT replayed in order is possible: no discharge without admission, no double-booked
    // bed, no ward beyond its beds plus the escalation margin.
    // The bed base without its winter escalation beds.
    let beds_out = engine
        .sql("SELECT ward, min(beds) FROM beds GROUP BY ward")
        .await
        .unwrap();
    let beds: HashMap<String, u32> = column(&beds_out, 0)
        .into_iter()
        .zip(column(&beds_out, 1))
        .map(|(w, b)| (w.unwrap(), b.unwrap().parse().unwrap()))
        .collect();
    let adt = engine
        .sql("SELECT event_type, encounter_id, ward, bed, event_time FROM adt_events ORDER BY event_time, event_id")
        .await
        .unwrap();
    let (peak_over_beds, transfers) = replay_adt(&adt, &beds);
    assert!(transfers > 1000, "patients move between wards: {transfers}");
    assert!(peak_over_beds > 0, "winter pressure opens escalation beds");
    // The reported bed base includes them while they are open: sitreps count open beds.
    let out = engine
        .sql(
            "SELECT sum(CASE WHEN valid_from <= DATE '2025-01-15' AND coalesce(valid_to, DATE '2100-01-01') >= DATE '2025-01-15' THEN beds END) \
                  - sum(CASE WHEN valid_from <= DATE '2025-07-15' AND coalesce(valid_to, DATE '2100-01-01') >= DATE '2025-07-15' THEN beds END) \
             FROM beds",
        )
        .await
        .unwrap();
    let winter_extra = float(&out, 0, 0);
    assert!(
        winter_extra >= f64::from(ESCALATION_BEDS) * 10.0,
        "{winter_extra} more beds open in January than in July"
    );
    // The bed base starts on the first reported day, not in the warm-up.
    let out = engine
        .sql("SELECT CAST(min(valid_from) AS VARCHAR) FROM beds")
        .await
        .unwrap();
    assert_eq!(column(&out, 0)[0].as_deref(), Some("2024-12-05"));
    // So does the ED extract: attendances of the warm-up are not history.
    let out = engine
        .sql("SELECT CAST(min(arrival_date) AS VARCHAR) FROM ed_attendances")
        .await
        .unwrap();
    assert_eq!(column(&out, 0)[0].as_deref(), Some("2024-12-05"));

    // Patients brought in unidentified are admitted under a temporary number and merged into
    // their own record (A40): every event of the stay before the merge names the temporary
    // record, every event after it the patient.
    let out = engine
        .sql(
            "SELECT count(*), count(DISTINCT prior_patient_key) FROM adt_events \
             WHERE event_type = 'A40' AND prior_patient_key IS NOT NULL \
               AND prior_patient_key <> patient_key",
        )
        .await
        .unwrap();
    let (merges, merged) = (float(&out, 0, 0), float(&out, 1, 0));
    assert!((50.0..=2000.0).contains(&merges), "{merges} merges");
    assert_eq!(merges, merged, "each temporary record is merged once");
    let out = engine
        .sql(
            "SELECT count(*) FROM adt_events m JOIN adt_events e ON e.encounter_id = m.encounter_id \
             WHERE m.event_type = 'A40' AND e.event_type <> 'A40' \
               AND ((e.event_time < m.event_time AND e.patient_key <> m.prior_patient_key) \
                 OR (e.event_time > m.event_time AND e.patient_key <> m.patient_key))",
        )
        .await
        .unwrap();
    assert_eq!(float(&out, 0, 0), 0.0, "events naming the wrong record");

    // What ingest refused on the way is noted for the feeds' owners: ADT messages without a
    // patient identifier, ED extracts with a departure before the arrival.
    let out = engine
        .sql(
            "SELECT feed, owner, count(*), min(reason) FROM dq_issues GROUP BY feed, owner ORDER BY feed",
        )
        .await
        .unwrap();
    let (feeds, owners, counts, reasons) = (
        column(&out, 0),
        column(&out, 1),
        column(&out, 2),
        column(&out, 3),
    );
    assert_eq!(
        feeds,
        [Some("ed_attendances".into()), Some("hl7_adt".into())],
        "{owners:?}"
    );
    assert_eq!(
        owners,
        [
            Some("ED systems team".into()),
            Some("PAS interface team".into())
        ]
    );
    for (count, reason) in counts.iter().zip(&reasons) {
        let count: f64 = count.as_deref().unwrap().parse().unwrap();
        assert!(
            (20.0..=1000.0).contains(&count),
            "{count} issues: {reason:?}"
        );
    }
    assert!(
        reasons[0]
            .as_deref()
            .unwrap()
            .ends_with(", field 'departure_time': is before the arrival"),
        "{reasons:?}"
    );
    assert!(
        reasons[1]
            .as_deref()
            .unwrap()
            .contains("needs the patient's identifier (PID-3"),
        "{reasons:?}"
    );

    // Volumes: about 390 ED arrivals a day, about a quarter admitted.
    let out = engine
        .sql(
            "SELECT count(*) * 1.0 / count(DISTINCT arrival_date), \
                    avg(CASE WHEN disposal = 'admitted' THEN 1.0 ELSE 0.0 END) \
             FROM ed_attendances WHERE arrival_date >= DATE '2025-03-15'",
        )
        .await
        .unwrap();
    let (per_day, admitted) = (float(&out, 0, 0), float(&out, 1, 0));
    assert!(
        (350.0..=450.0).contains(&per_day),
        "{per_day} arrivals a day"
    );
    assert!((0.2..=0.32).contains(&admitted), "{admitted} admitted");

    // General and acute wards run hot: midnight occupancy near, but below, 100%.
    let out = engine
        .sql(
            "WITH stays AS ( \
               SELECT encounter_id, \
                      min(CASE WHEN event_type = 'A01' THEN event_time END) AS admitted, \
                      max(CASE WHEN event_type = 'A03' THEN event_time END) AS discharged, \
                      bool_or(event_type = 'A11') AS cancelled, \
                      first_value(ward ORDER BY event_time DESC) AS ward \
               FROM adt_events GROUP BY encounter_id), \
             nights AS (SELECT DISTINCT CAST(event_date AS TIMESTAMP) AT TIME ZONE 'UTC' AS midnight \
                        FROM adt_events WHERE event_date BETWEEN DATE '2025-04-01' AND DATE '2025-09-30') \
             SELECT avg(occupied) / (SELECT sum(b) FROM (SELECT min(beds) AS b FROM beds WHERE ward_type = 'general_acute' GROUP BY ward)) \
             FROM (SELECT n.midnight, count(*) AS occupied FROM nights n \
                   JOIN stays s ON s.admitted < n.midnight AND (s.discharged IS NULL OR s.discharged >= n.midnight) \
                   JOIN (SELECT DISTINCT ward, ward_type FROM beds) b ON b.ward = s.ward \
                   WHERE NOT s.cancelled AND b.ward_type = 'general_acute' GROUP BY n.midnight)",
        )
        .await
        .unwrap();
    let occupancy = float(&out, 0, 0);
    assert!(
        (0.85..=1.0).contains(&occupancy),
        "G&A occupancy {occupancy}"
    );

    // The planted changes are in the data: six weeks after each against six weeks before.
    let window = |d: NaiveDate| {
        (
            d - chrono::Duration::days(42),
            d + chrono::Duration::days(42),
        )
    };
    let before_after = |sql: String| {
        let engine = &engine;
        async move {
            let out = engine.sql(&sql).await.unwrap();
            (float(&out, 0, 0), float(&out, 1, 0))
        }
    };
    let (before, after) = before_after(format!(
        "SELECT avg(CASE WHEN arrival_date < DATE '{d}' AND departure_time - arrival_time <= INTERVAL '4 hours' THEN 1.0 \
                         WHEN arrival_date < DATE '{d}' THEN 0.0 END), \
                avg(CASE WHEN arrival_date >= DATE '{d}' AND departure_time - arrival_time <= INTERVAL '4 hours' THEN 1.0 \
                         WHEN arrival_date >= DATE '{d}' THEN 0.0 END) \
         FROM ed_attendances WHERE departure_time IS NOT NULL AND arrival_date BETWEEN DATE '{from}' AND DATE '{to}'",
        d = changes.ed_staffing,
        from = window(changes.ed_staffing).0,
        to = window(changes.ed_staffing).1,
    ))
    .await;
    assert!(
        after > before + 0.03,
        "four-hour performance {before} → {after}"
    );

    let (before, after) = before_after(format!(
        "WITH d AS (SELECT event_date, date_part('hour', arrow_cast(event_time, 'Timestamp(Microsecond, Some(\"Europe/London\"))')) < 12 AS morning \
                    FROM adt_events WHERE event_type = 'A03' AND patient_class = 'inpatient' \
                    AND event_date BETWEEN DATE '{from}' AND DATE '{to}') \
         SELECT avg(CASE WHEN event_date < DATE '{d}' THEN CASE WHEN morning THEN 1.0 ELSE 0.0 END END), \
                avg(CASE WHEN event_date >= DATE '{d}' THEN CASE WHEN morning THEN 1.0 ELSE 0.0 END END) FROM d",
        d = changes.discharge_lounge,
        from = window(changes.discharge_lounge).0,
        to = window(changes.discharge_lounge).1,
    ))
    .await;
    assert!(
        after > before + 0.08,
        "discharges before noon {before} → {after}"
    );

    let (before, after) = before_after(format!(
        "WITH first AS (SELECT session_id, min(event_time) AS started FROM theatre_events \
                        WHERE milestone = 'anaesthesia_start' GROUP BY session_id), \
              late AS (SELECT s.session_date, date_part('epoch', f.started - s.planned_start) / 60 AS minutes \
                       FROM theatre_sessions s JOIN first f USING (session_id) \
                       WHERE s.session_date BETWEEN DATE '{from}' AND DATE '{to}') \
         SELECT median(CASE WHEN session_date < DATE '{d}' THEN minutes END), \
                median(CASE WHEN session_date >= DATE '{d}' THEN minutes END) FROM late",
        d = changes.theatre_scheduling,
        from = window(changes.theatre_scheduling).0,
        to = window(changes.theatre_scheduling).1,
    ))
    .await;
    assert!(
        after < before - 5.0,
        "median late start {before} → {after} minutes"
    );
}
