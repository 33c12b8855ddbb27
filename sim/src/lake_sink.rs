//! Records → canonical Arrow batches → Delta commits.
//!
//! [`ArrowSink`] turns each record into a row of its table (pseudonymising patients with the
//! run's [`PseudoKey`], converting local times to UTC), and hands full batches to a callback:
//! whenever a table has buffered [`ArrowSink::max_rows`] rows and at every month end, so memory
//! stays bounded however many trusts run. [`generate_into_lake`] wires that to a [`Lake`]
//! through a bounded channel: the simulation runs on its own thread and waits when the lake
//! falls behind.

use std::collections::BTreeMap;

use bright_engine::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int8Builder,
    Int32Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::lake::Lake;
use bright_engine::pseudonym::{NHS_NUMBER, PseudoKey};
use bright_engine::schema::{MONEY_PRECISION, MONEY_SCALE, Table, UTC};
use chrono::{Datelike, NaiveDate};

use crate::clock::{Clock, SimTime, date32};
use crate::patients::{PatientId, Population};
use crate::records::Record;
use crate::trust::TrustModel;
use crate::{SimConfig, SimError, Simulation, Sink, Summary};

/// Name of the feed the simulator writes as (`adt_events.source`).
pub const SOURCE: &str = "simulator";

fn ts() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(UTC)
}

/// Column builders of one table.
enum Builders {
    Adt {
        event_id: StringBuilder,
        event_type: StringBuilder,
        event_time: TimestampMicrosecondBuilder,
        recorded_at: TimestampMicrosecondBuilder,
        patient_key: StringBuilder,
        encounter_id: StringBuilder,
        patient_class: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        ward: StringBuilder,
        bed: StringBuilder,
        specialty: StringBuilder,
        admission_method: StringBuilder,
        discharge_destination: StringBuilder,
        source: StringBuilder,
        event_date: Date32Builder,
    },
    Ed {
        attendance_id: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        patient_key: StringBuilder,
        arrival_time: TimestampMicrosecondBuilder,
        arrival_mode: StringBuilder,
        ambulance_arrival_time: TimestampMicrosecondBuilder,
        handover_time: TimestampMicrosecondBuilder,
        acuity: Int8Builder,
        initial_assessment_time: TimestampMicrosecondBuilder,
        seen_time: TimestampMicrosecondBuilder,
        decision_to_admit_time: TimestampMicrosecondBuilder,
        departure_time: TimestampMicrosecondBuilder,
        disposal: StringBuilder,
        age_band: StringBuilder,
        chief_complaint: StringBuilder,
        arrival_date: Date32Builder,
    },
    Sessions {
        session_id: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        theatre: StringBuilder,
        planned_start: TimestampMicrosecondBuilder,
        planned_end: TimestampMicrosecondBuilder,
        specialty: StringBuilder,
        cancelled: BooleanBuilder,
        session_date: Date32Builder,
    },
    TheatreEvents {
        event_id: StringBuilder,
        case_id: StringBuilder,
        session_id: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        theatre: StringBuilder,
        specialty: StringBuilder,
        procedure_code: StringBuilder,
        procedure_name: StringBuilder,
        milestone: StringBuilder,
        event_time: TimestampMicrosecondBuilder,
        planned_order: Int32Builder,
        planned_duration_min: Int32Builder,
        cancel_reason: StringBuilder,
        event_date: Date32Builder,
    },
    Beds {
        org_code: StringBuilder,
        site: StringBuilder,
        ward: StringBuilder,
        ward_type: StringBuilder,
        beds: Int32Builder,
        valid_to: Date32Builder,
        valid_from: Date32Builder,
    },
    Shifts {
        shift_id: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        ward: StringBuilder,
        staff_group: StringBuilder,
        planned_hours: Float64Builder,
        worked_hours: Float64Builder,
        contract: StringBuilder,
        shift_date: Date32Builder,
    },
    Finance {
        cost_centre: StringBuilder,
        org_code: StringBuilder,
        site: StringBuilder,
        specialty: StringBuilder,
        category: StringBuilder,
        budget: Decimal128Builder,
        actual: Decimal128Builder,
        month: Date32Builder,
    },
}

fn money() -> Decimal128Builder {
    Decimal128Builder::new()
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .expect("valid decimal type")
}

impl Builders {
    fn new(table: Table) -> Self {
        let s = StringBuilder::new;
        match table {
            Table::AdtEvents => Builders::Adt {
                event_id: s(),
                event_type: s(),
                event_time: ts(),
                recorded_at: ts(),
                patient_key: s(),
                encounter_id: s(),
                patient_class: s(),
                org_code: s(),
                site: s(),
                ward: s(),
                bed: s(),
                specialty: s(),
                admission_method: s(),
                discharge_destination: s(),
                source: s(),
                event_date: Date32Builder::new(),
            },
            Table::EdAttendances => Builders::Ed {
                attendance_id: s(),
                org_code: s(),
                site: s(),
                patient_key: s(),
                arrival_time: ts(),
                arrival_mode: s(),
                ambulance_arrival_time: ts(),
                handover_time: ts(),
                acuity: Int8Builder::new(),
                initial_assessment_time: ts(),
                seen_time: ts(),
                decision_to_admit_time: ts(),
                departure_time: ts(),
                disposal: s(),
                age_band: s(),
                chief_complaint: s(),
                arrival_date: Date32Builder::new(),
            },
            Table::TheatreSessions => Builders::Sessions {
                session_id: s(),
                org_code: s(),
                site: s(),
                theatre: s(),
                planned_start: ts(),
                planned_end: ts(),
                specialty: s(),
                cancelled: BooleanBuilder::new(),
                session_date: Date32Builder::new(),
            },
            Table::TheatreEvents => Builders::TheatreEvents {
                event_id: s(),
                case_id: s(),
                session_id: s(),
                org_code: s(),
                site: s(),
                theatre: s(),
                specialty: s(),
                procedure_code: s(),
                procedure_name: s(),
                milestone: s(),
                event_time: ts(),
                planned_order: Int32Builder::new(),
                planned_duration_min: Int32Builder::new(),
                cancel_reason: s(),
                event_date: Date32Builder::new(),
            },
            Table::Beds => Builders::Beds {
                org_code: s(),
                site: s(),
                ward: s(),
                ward_type: s(),
                beds: Int32Builder::new(),
                valid_to: Date32Builder::new(),
                valid_from: Date32Builder::new(),
            },
            Table::WorkforceShifts => Builders::Shifts {
                shift_id: s(),
                org_code: s(),
                site: s(),
                ward: s(),
                staff_group: s(),
                planned_hours: Float64Builder::new(),
                worked_hours: Float64Builder::new(),
                contract: s(),
                shift_date: Date32Builder::new(),
            },
            Table::FinanceLedger => Builders::Finance {
                cost_centre: s(),
                org_code: s(),
                site: s(),
                specialty: s(),
                category: s(),
                budget: money(),
                actual: money(),
                month: Date32Builder::new(),
            },
            Table::DqIssues => unreachable!("the simulator writes no data-quality issues"),
        }
    }

    fn finish(&mut self, table: Table) -> Result<RecordBatch, SimError> {
        fn arc<B: bright_engine::arrow::array::ArrayBuilder>(b: &mut B) -> ArrayRef {
            b.finish()
        }
        let columns: Vec<ArrayRef> = match self {
            Builders::Adt {
                event_id,
                event_type,
                event_time,
                recorded_at,
                patient_key,
                encounter_id,
                patient_class,
                org_code,
                site,
                ward,
                bed,
                specialty,
                admission_method,
                discharge_destination,
                source,
                event_date,
            } => vec![
                arc(event_id),
                arc(event_type),
                arc(event_time),
                arc(recorded_at),
                arc(patient_key),
                arc(encounter_id),
                arc(patient_class),
                arc(org_code),
                arc(site),
                arc(ward),
                arc(bed),
                arc(specialty),
                arc(admission_method),
                arc(discharge_destination),
                arc(source),
                arc(event_date),
            ],
            Builders::Ed {
                attendance_id,
                org_code,
                site,
                patient_key,
                arrival_time,
                arrival_mode,
                ambulance_arrival_time,
                handover_time,
                acuity,
                initial_assessment_time,
                seen_time,
                decision_to_admit_time,
                departure_time,
                disposal,
                age_band,
                chief_complaint,
                arrival_date,
            } => vec![
                arc(attendance_id),
                arc(org_code),
                arc(site),
                arc(patient_key),
                arc(arrival_time),
                arc(arrival_mode),
                arc(ambulance_arrival_time),
                arc(handover_time),
                arc(acuity),
                arc(initial_assessment_time),
                arc(seen_time),
                arc(decision_to_admit_time),
                arc(departure_time),
                arc(disposal),
                arc(age_band),
                arc(chief_complaint),
                arc(arrival_date),
            ],
            Builders::Sessions {
                session_id,
                org_code,
                site,
                theatre,
                planned_start,
                planned_end,
                specialty,
                cancelled,
                session_date,
            } => vec![
                arc(session_id),
                arc(org_code),
                arc(site),
                arc(theatre),
                arc(planned_start),
                arc(planned_end),
                arc(specialty),
                arc(cancelled),
                arc(session_date),
            ],
            Builders::TheatreEvents {
                event_id,
                case_id,
                session_id,
                org_code,
                site,
                theatre,
                specialty,
                procedure_code,
                procedure_name,
                milestone,
                event_time,
                planned_order,
                planned_duration_min,
                cancel_reason,
                event_date,
            } => vec![
                arc(event_id),
                arc(case_id),
                arc(session_id),
                arc(org_code),
                arc(site),
                arc(theatre),
                arc(specialty),
                arc(procedure_code),
                arc(procedure_name),
                arc(milestone),
                arc(event_time),
                arc(planned_order),
                arc(planned_duration_min),
                arc(cancel_reason),
                arc(event_date),
            ],
            Builders::Beds {
                org_code,
                site,
                ward,
                ward_type,
                beds,
                valid_to,
                valid_from,
            } => vec![
                arc(org_code),
                arc(site),
                arc(ward),
                arc(ward_type),
                arc(beds),
                arc(valid_to),
                arc(valid_from),
            ],
            Builders::Shifts {
                shift_id,
                org_code,
                site,
                ward,
                staff_group,
                planned_hours,
                worked_hours,
                contract,
                shift_date,
            } => vec![
                arc(shift_id),
                arc(org_code),
                arc(site),
                arc(ward),
                arc(staff_group),
                arc(planned_hours),
                arc(worked_hours),
                arc(contract),
                arc(shift_date),
            ],
            Builders::Finance {
                cost_centre,
                org_code,
                site,
                specialty,
                category,
                budget,
                actual,
                month,
            } => vec![
                arc(cost_centre),
                arc(org_code),
                arc(site),
                arc(specialty),
                arc(category),
                arc(budget),
                arc(actual),
                arc(month),
            ],
        };
        Ok(RecordBatch::try_new(table.schema(), columns)?)
    }
}

fn table_of(record: &Record) -> Table {
    match record {
        Record::Adt(_) => Table::AdtEvents,
        Record::Ed(_) => Table::EdAttendances,
        Record::Session(_) => Table::TheatreSessions,
        Record::TheatreEvent(_) => Table::TheatreEvents,
        Record::Beds(_) => Table::Beds,
        Record::Shift(_) => Table::WorkforceShifts,
        Record::Finance(_) => Table::FinanceLedger,
    }
}

/// Builds canonical record batches from simulator records.
pub struct ArrowSink<F> {
    key: PseudoKey,
    populations: BTreeMap<u32, Population>,
    seed: u64,
    tables: BTreeMap<Table, (Builders, usize)>,
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
        let population = self.populations.entry(patient.trust).or_insert_with(|| {
            Population::new(
                seed,
                trust.index,
                trust.population,
                u64::from(trust.index) * 400_000,
            )
        });
        self.key
            .patient_key(NHS_NUMBER, &population.nhs_number(patient.index))
    }

    fn flush_table(&mut self, table: Table) -> Result<(), SimError> {
        if let Some((mut builders, rows)) = self.tables.remove(&table)
            && rows > 0
        {
            let batch = builders.finish(table)?;
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

    #[allow(clippy::too_many_lines)]
    fn push(&mut self, trust: &TrustModel, clock: &Clock, record: Record) -> Result<(), SimError> {
        let table = table_of(&record);
        let key = match &record {
            Record::Adt(r) => Some(self.patient_key(trust, r.patient)),
            Record::Ed(r) => Some(self.patient_key(trust, r.patient)),
            _ => None,
        };
        let entry = self
            .tables
            .entry(table)
            .or_insert_with(|| (Builders::new(table), 0));
        entry.1 += 1;
        let org = trust.org_code.as_str();
        let site = |i: usize| trust.sites[i].code.as_str();
        let utc = |t: SimTime| clock.utc_micros(t);
        let utc_opt = |t: Option<SimTime>| t.map(|t| clock.utc_micros(t));
        match (&mut entry.0, record) {
            (
                Builders::Adt {
                    event_id,
                    event_type,
                    event_time,
                    recorded_at,
                    patient_key,
                    encounter_id,
                    patient_class,
                    org_code,
                    site: site_b,
                    ward,
                    bed,
                    specialty,
                    admission_method,
                    discharge_destination,
                    source,
                    event_date,
                },
                Record::Adt(r),
            ) => {
                event_id.append_value(crate::feeds::adt_event_id(trust, r.control_id));
                event_type.append_value(r.event_type.code());
                event_time.append_value(utc(r.event_time));
                recorded_at.append_value(utc(r.recorded_at));
                patient_key.append_option(key);
                encounter_id.append_value(crate::feeds::visit_number(trust, r.encounter));
                patient_class.append_value(r.class.name());
                org_code.append_value(org);
                let w = &trust.wards[r.location.ward];
                site_b.append_value(site(w.site));
                ward.append_value(&w.code);
                bed.append_value(&r.location.bed);
                specialty.append_value(r.specialty);
                admission_method.append_value(r.admission_method);
                discharge_destination.append_option(r.discharge_destination);
                source.append_value(SOURCE);
                event_date.append_value(clock.utc_date32(r.event_time));
            }
            (
                Builders::Ed {
                    attendance_id,
                    org_code,
                    site: site_b,
                    patient_key,
                    arrival_time,
                    arrival_mode,
                    ambulance_arrival_time,
                    handover_time,
                    acuity,
                    initial_assessment_time,
                    seen_time,
                    decision_to_admit_time,
                    departure_time,
                    disposal,
                    age_band,
                    chief_complaint,
                    arrival_date,
                },
                Record::Ed(r),
            ) => {
                attendance_id.append_value(crate::feeds::attendance_id(trust, r.attendance));
                org_code.append_value(org);
                site_b.append_value(site(r.site));
                patient_key.append_option(key);
                arrival_time.append_value(utc(r.arrival));
                arrival_mode.append_value(r.mode.name());
                ambulance_arrival_time.append_option(
                    (r.mode == crate::records::ArrivalMode::Ambulance).then(|| utc(r.arrival)),
                );
                handover_time.append_option(utc_opt(r.handover));
                acuity.append_value(r.acuity);
                initial_assessment_time.append_option(utc_opt(r.initial_assessment));
                seen_time.append_option(utc_opt(r.seen));
                decision_to_admit_time.append_option(utc_opt(r.decision_to_admit));
                departure_time.append_option(utc_opt(r.departure));
                disposal.append_option(r.disposal.map(|d| d.name()));
                age_band.append_value(r.age_band);
                chief_complaint.append_value(r.chief_complaint);
                arrival_date.append_value(clock.utc_date32(r.arrival));
            }
            (
                Builders::Sessions {
                    session_id,
                    org_code,
                    site: site_b,
                    theatre,
                    planned_start,
                    planned_end,
                    specialty,
                    cancelled,
                    session_date,
                },
                Record::Session(r),
            ) => {
                let t = &trust.theatres[r.theatre];
                session_id.append_value(&r.session_id);
                org_code.append_value(org);
                site_b.append_value(site(t.site));
                theatre.append_value(&t.code);
                planned_start.append_value(utc(r.planned_start));
                planned_end.append_value(utc(r.planned_end));
                specialty.append_value(r.specialty);
                cancelled.append_value(r.cancelled);
                session_date.append_value(date32(clock.date(r.day)));
            }
            (
                Builders::TheatreEvents {
                    event_id,
                    case_id,
                    session_id,
                    org_code,
                    site: site_b,
                    theatre,
                    specialty,
                    procedure_code,
                    procedure_name,
                    milestone,
                    event_time,
                    planned_order,
                    planned_duration_min,
                    cancel_reason,
                    event_date,
                },
                Record::TheatreEvent(r),
            ) => {
                let t = &trust.theatres[r.theatre];
                event_id.append_value(&r.event_id);
                case_id.append_value(&r.case_id);
                session_id.append_value(&r.session_id);
                org_code.append_value(org);
                site_b.append_value(site(t.site));
                theatre.append_value(&t.code);
                specialty.append_value(r.specialty);
                procedure_code.append_value(r.procedure_code);
                procedure_name.append_value(r.procedure_name);
                milestone.append_value(r.milestone);
                event_time.append_value(utc(r.time));
                planned_order.append_value(r.planned_order);
                planned_duration_min.append_value(r.planned_duration_min);
                cancel_reason.append_option(r.cancel_reason);
                event_date.append_value(clock.utc_date32(r.time));
            }
            (
                Builders::Beds {
                    org_code,
                    site: site_b,
                    ward,
                    ward_type,
                    beds,
                    valid_to,
                    valid_from,
                },
                Record::Beds(r),
            ) => {
                let w = &trust.wards[r.ward];
                org_code.append_value(org);
                site_b.append_value(site(w.site));
                ward.append_value(&w.code);
                ward_type.append_value(w.role.ward_type());
                beds.append_value(i32::try_from(r.beds).unwrap_or(i32::MAX));
                valid_to.append_option(r.valid_to.map(date32));
                valid_from.append_value(date32(r.valid_from));
            }
            (
                Builders::Shifts {
                    shift_id,
                    org_code,
                    site: site_b,
                    ward,
                    staff_group,
                    planned_hours,
                    worked_hours,
                    contract,
                    shift_date,
                },
                Record::Shift(r),
            ) => {
                shift_id.append_value(format!("{org}-S{:09}", r.shift_id));
                org_code.append_value(org);
                site_b.append_value(site(r.site));
                ward.append_option(r.ward.as_deref());
                staff_group.append_value(r.staff_group);
                planned_hours.append_value(r.planned_hours);
                worked_hours.append_value(r.worked_hours);
                contract.append_value(r.contract);
                shift_date.append_value(date32(clock.date(r.day)));
            }
            (
                Builders::Finance {
                    cost_centre,
                    org_code,
                    site: site_b,
                    specialty,
                    category,
                    budget,
                    actual,
                    month,
                },
                Record::Finance(r),
            ) => {
                cost_centre.append_value(&r.cost_centre);
                org_code.append_value(org);
                site_b.append_value(site(r.site));
                specialty.append_option(r.specialty);
                category.append_value(r.category);
                budget.append_value(r.budget_pence);
                actual.append_value(r.actual_pence);
                month.append_value(date32(r.month));
            }
            _ => unreachable!("builders are chosen by the record's table"),
        }
        if entry.1 >= self.max_rows {
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
        simulation.run(&mut sink, &mut progress)
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
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// A pseudonymisation key for simulated data, derived from the seed so that runs are
/// reproducible. Real feeds use a secret key (`BRIGHT_PSEUDO_KEY`).
pub fn simulation_key(seed: u64) -> PseudoKey {
    PseudoKey::new(format!("bright-simulation-key-{seed:020}"))
        .expect("the derived key is long enough")
}
