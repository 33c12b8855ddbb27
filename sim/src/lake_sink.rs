//! Records → canonical Arrow batches → Delta commits.
//!
//! [`ArrowSink`] turns each record into a row of its table (pseudonymising patients with the
//! run's [`PseudoKey`], converting local times to UTC), and hands full batches to a callback:
//! whenever a table has buffered [`ArrowSink::max_rows`] rows and at every month end, so memory
//! stays bounded however many trusts run. [`generate_into_lake`] wires that to a [`Lake`]
//! through a bounded channel: the simulation runs on its own thread and waits when the lake
//! falls behind.

use std::collections::BTreeMap;

use bright_engine::annotations::Kind;
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::batch::BatchBuilder;
use bright_engine::lake::Lake;
use bright_engine::pseudonym::{LOCAL_ID, NHS_NUMBER, PseudoKey};
use bright_engine::schema::Table;
use chrono::{Datelike, NaiveDate};

use crate::clock::{Clock, SimTime, date32};
use crate::feeds;
use crate::patients::{PatientId, Population};
use crate::records::ArrivalMode;
use crate::records::{Record, temporary_number};
use crate::trust::TrustModel;
use crate::{SimConfig, SimError, Simulation, Sink, Summary};

/// Name of the feed the simulator writes as (`adt_events.source`).
pub const SOURCE: &str = "simulator";

fn table_of(record: &Record) -> Table {
    match record {
        Record::Adt(_) => Table::AdtEvents,
        Record::Ed(_) => Table::EdAttendances,
        Record::Session(_) => Table::TheatreSessions,
        Record::TheatreEvent(_) => Table::TheatreEvents,
        Record::Beds(_) => Table::Beds,
        Record::Shift(_) => Table::WorkforceShifts,
        Record::Finance(_) => Table::FinanceLedger,
        Record::Annotation(_) => Table::Annotations,
        Record::DqIssue(_) => Table::DqIssues,
    }
}

/// Who wrote the simulator's annotations.
const ANNOTATION_AUTHOR: &str = "bright simulator";

/// Builds canonical record batches from simulator records.
pub struct ArrowSink<F> {
    key: PseudoKey,
    populations: BTreeMap<u32, Population>,
    seed: u64,
    tables: BTreeMap<Table, BatchBuilder>,
    /// Rows buffered per table before a batch is handed over.
    pub max_rows: usize,
    month: Option<(i32, u32)>,
    deliver: F,
}

impl<F> ArrowSink<F>
where
    F: FnMut(Table, RecordBatch) -> Result<(), SimError>,
{
    /// A sink pseudonymising with `key` and handing batches to `deliver`.
    pub fn new(seed: u64, key: PseudoKey, deliver: F) -> Self {
        ArrowSink {
            key,
            populations: BTreeMap::new(),
            seed,
            tables: BTreeMap::new(),
            max_rows: 200_000,
            month: None,
            deliver,
        }
    }

    fn patient_key(&mut self, trust: &TrustModel, patient: PatientId) -> String {
        let seed = self.seed;
        let population = self
            .populations
            .entry(patient.trust)
            .or_insert_with(|| trust.population_of(seed));
        self.key
            .patient_key(NHS_NUMBER, &population.nhs_number(patient.index))
    }

    /// The pseudonym ingest gives a temporary hospital number: a local id of the trust.
    fn temporary_key(&self, trust: &TrustModel, n: u64) -> String {
        self.key.patient_key(
            LOCAL_ID,
            &format!("{}/{}", trust.org_code, temporary_number(n)),
        )
    }

    fn flush_table(&mut self, table: Table) -> Result<(), SimError> {
        if let Some(builder) = self.tables.get_mut(&table)
            && !builder.is_empty()
        {
            let batch = builder.finish()?;
            (self.deliver)(table, batch)?;
        }
        Ok(())
    }

    /// Hands over everything buffered.
    pub fn flush(&mut self) -> Result<(), SimError> {
        let tables: Vec<Table> = self.tables.keys().copied().collect();
        for table in tables {
            self.flush_table(table)?;
        }
        Ok(())
    }

    fn push(&mut self, trust: &TrustModel, clock: &Clock, record: Record) -> Result<(), SimError> {
        let table = table_of(&record);
        let merged = match &record {
            Record::Adt(r) => r.merged.map(|n| self.temporary_key(trust, n)),
            _ => None,
        };
        let key = match &record {
            Record::Adt(r) => Some(match r.temporary {
                Some(n) => self.temporary_key(trust, n),
                None => self.patient_key(trust, r.patient),
            }),
            Record::Ed(r) => Some(self.patient_key(trust, r.patient)),
            _ => None,
        };
        let builder = self
            .tables
            .entry(table)
            .or_insert_with(|| BatchBuilder::new(table));
        let org = trust.org_code.as_str();
        let site = |i: usize| trust.sites[i].code.as_str();
        let utc = |t: SimTime| clock.utc_micros(t);
        let utc_opt = |t: Option<SimTime>| t.map(|t| clock.utc_micros(t));
        match record {
            Record::Adt(r) => {
                let ward = &trust.wards[r.location.ward];
                builder
                    .row()
                    .text(&feeds::adt_event_id(trust, r.control_id))
                    .text(r.event_type.code())
                    .timestamp(utc(r.event_time))
                    .timestamp(utc(r.recorded_at))
                    .opt_text(key.as_deref())
                    .text(&feeds::visit_number(trust, r.encounter))
                    .text(r.class.name())
                    .text(org)
                    .text(site(ward.site))
                    .text(&ward.code)
                    .text(&r.location.bed)
                    .text(r.specialty)
                    .text(r.admission_method)
                    .opt_text(r.discharge_destination)
                    .text(SOURCE)
                    .opt_text(merged.as_deref())
                    .date(clock.utc_date32(r.event_time))
                    .end();
            }
            Record::Ed(r) => {
                let ambulance = (r.mode == ArrivalMode::Ambulance).then_some(r.arrival);
                builder
                    .row()
                    .text(&feeds::attendance_id(trust, r.attendance))
                    .text(org)
                    .text(site(r.site))
                    .opt_text(key.as_deref())
                    .timestamp(utc(r.arrival))
                    .text(r.mode.name())
                    .opt_timestamp(utc_opt(ambulance))
                    .opt_timestamp(utc_opt(r.handover))
                    .opt_int8(Some(r.acuity))
                    .opt_timestamp(utc_opt(r.initial_assessment))
                    .opt_timestamp(utc_opt(r.seen))
                    .opt_timestamp(utc_opt(r.decision_to_admit))
                    .opt_timestamp(utc_opt(r.departure))
                    .opt_text(r.disposal.map(|d| d.name()))
                    .opt_text(Some(r.age_band))
                    .opt_text(Some(r.chief_complaint))
                    .date(clock.utc_date32(r.arrival))
                    .end();
            }
            Record::Session(r) => {
                let theatre = &trust.theatres[r.theatre];
                builder
                    .row()
                    .text(&r.session_id)
                    .text(org)
                    .text(site(theatre.site))
                    .text(&theatre.code)
                    .timestamp(utc(r.planned_start))
                    .timestamp(utc(r.planned_end))
                    .opt_text(Some(r.specialty))
                    .boolean(r.cancelled)
                    .date(date32(clock.date(r.day)))
                    .end();
            }
            Record::TheatreEvent(r) => {
                let theatre = &trust.theatres[r.theatre];
                builder
                    .row()
                    .text(&r.event_id)
                    .text(&r.case_id)
                    .opt_text(Some(&r.session_id))
                    .text(org)
                    .text(site(theatre.site))
                    .text(&theatre.code)
                    .opt_text(Some(r.specialty))
                    .opt_text(Some(r.procedure_code))
                    .opt_text(Some(r.procedure_name))
                    .text(r.milestone)
                    .timestamp(utc(r.time))
                    .opt_int32(Some(r.planned_order))
                    .opt_int32(Some(r.planned_duration_min))
                    .opt_text(r.cancel_reason)
                    .date(clock.utc_date32(r.time))
                    .end();
            }
            Record::Beds(r) => {
                let ward = &trust.wards[r.ward];
                builder
                    .row()
                    .text(org)
                    .text(site(ward.site))
                    .text(&ward.code)
                    .text(ward.role.ward_type())
                    .int32(i32::try_from(r.beds).unwrap_or(i32::MAX))
                    .opt_date(r.valid_to.map(date32))
                    .date(date32(r.valid_from))
                    .end();
            }
            Record::Shift(r) => {
                builder
                    .row()
                    .text(&format!("{org}-S{:09}", r.shift_id))
                    .text(org)
                    .text(site(r.site))
                    .opt_text(r.ward.as_deref())
                    .text(r.staff_group)
                    .float64(r.planned_hours)
                    .float64(r.worked_hours)
                    .text(r.contract)
                    .date(date32(clock.date(r.day)))
                    .end();
            }
            Record::Finance(r) => {
                builder
                    .row()
                    .text(&r.cost_centre)
                    .text(org)
                    .text(site(r.site))
                    .opt_text(r.specialty)
                    .text(r.category)
                    .pence(r.budget_pence)
                    .pence(r.actual_pence)
                    .date(date32(r.month))
                    .end();
            }
            Record::Annotation(r) => {
                // Deterministic, so a regenerated lake has the same annotations.
                builder
                    .row()
                    .text(&format!("sim-{org}-{}-{}", r.kpi_id, clock.date(r.day)))
                    .text(r.kpi_id)
                    .text(org)
                    .text(Kind::Note.as_str())
                    .text(r.note)
                    .text(ANNOTATION_AUTHOR)
                    .timestamp(clock.utc_micros(Clock::day_start(r.day)))
                    .date(date32(clock.date(r.day)))
                    .end();
            }
            Record::DqIssue(r) => {
                builder
                    .row()
                    .text(r.feed)
                    .timestamp(utc(r.received))
                    .text(org)
                    .text(&r.record_ref)
                    .text(&r.reason)
                    .text(r.owner)
                    .date(clock.utc_date32(r.received))
                    .end();
            }
        }
        if builder.len() >= self.max_rows {
            self.flush_table(table)?;
        }
        Ok(())
    }
}

impl<F> Sink for ArrowSink<F>
where
    F: FnMut(Table, RecordBatch) -> Result<(), SimError>,
{
    fn record(
        &mut self,
        trust: &TrustModel,
        clock: &Clock,
        record: Record,
    ) -> Result<(), SimError> {
        self.push(trust, clock, record)
    }

    fn end_of_day(&mut self, date: NaiveDate) -> Result<(), SimError> {
        // Commit by month: a handful of commits a year, each a whole month of every table.
        let month = (date.year(), date.month());
        if self.month.is_some_and(|m| m != month) {
            self.flush()?;
        }
        self.month = Some(month);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SimError> {
        self.flush()
    }
}

/// Simulates `config` straight into `lake`, one Delta commit per table and month (more for
/// national runs), and returns the run's summary.
///
/// The simulation runs on its own thread; batches cross a bounded channel to the async
/// writer, so a slow store slows the simulation instead of filling memory.
pub async fn generate_into_lake(
    config: SimConfig,
    key: PseudoKey,
    lake: &Lake,
    progress: Box<dyn FnMut(u32) + Send>,
) -> Result<Summary, SimError> {
    generate_into_lake_until(config, key, lake, progress, i64::MAX)
        .await
        .map(|(summary, _)| summary)
}

/// As [`generate_into_lake`], but what the source systems send live at or after
/// `cutoff_micros` (UTC) is kept out of the lake and returned, rendered for replay (see
/// [`crate::replay`]).
pub async fn generate_into_lake_until(
    config: SimConfig,
    key: PseudoKey,
    lake: &Lake,
    progress: Box<dyn FnMut(u32) + Send>,
    cutoff_micros: i64,
) -> Result<(Summary, Vec<crate::replay::Timed>), SimError> {
    lake.ensure_tables().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Table, RecordBatch)>(4);
    let seed = config.seed;
    let simulation = Simulation::new(config)?;
    let worker = std::thread::spawn(move || {
        let mut progress = progress;
        let mut sink = ArrowSink::new(seed, key, |table, batch| {
            tx.blocking_send((table, batch))
                .map_err(|_| SimError::WriterGone)
        });
        let mut split = crate::replay::Split::new(&mut sink, cutoff_micros, seed);
        let summary = simulation.run(&mut split, &mut progress)?;
        Ok::<_, SimError>((summary, split.into_future()))
    });
    let mut write_error = None;
    while let Some((table, batch)) = rx.recv().await {
        if let Err(e) = lake.append(table, vec![batch]).await {
            write_error = Some(e);
            break;
        }
    }
    // Dropping the receiver unblocks the simulation thread if the writer failed.
    drop(rx);
    let outcome = tokio::task::spawn_blocking(move || worker.join())
        .await
        .map_err(|_| SimError::WriterGone)?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let result = match outcome {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    // Written a month at a time, a small table (the ledger, data-quality issues, the list
    // plans) is dozens of files of a few kilobytes; merged as `bright lake optimize` would
    // (see `COMPACT_TARGET_BYTES` for why small files cost queries).
    for table in Table::ALL {
        lake.optimize(table, None).await?;
    }
    Ok(result)
}

/// A pseudonymisation key for simulated data, derived from the seed so that runs are
/// reproducible. Real feeds use a secret key (`BRIGHT_PSEUDO_KEY`).
pub fn simulation_key(seed: u64) -> PseudoKey {
    PseudoKey::new(format!("bright-simulation-key-{seed:020}"))
        .expect("the derived key is long enough")
}
