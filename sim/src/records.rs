//! What the simulator emits: one record per row of the canonical tables, in the hospital's own
//! terms (people, ward indices, local times). Sinks turn them into lake rows (pseudonymised,
//! UTC) or into feed files in their real formats (HL7 v2, CSV, NDJSON).

use crate::clock::SimTime;
use crate::patients::PatientId;

/// ADT trigger events the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdtType {
    /// Admit.
    A01,
    /// Transfer.
    A02,
    /// Discharge.
    A03,
    /// Update patient information.
    A08,
    /// Cancel admit.
    A11,
    /// Cancel transfer.
    A12,
    /// Cancel discharge.
    A13,
    /// Merge patient records: a temporary record merged into the identified patient's.
    A40,
}

impl AdtType {
    /// The trigger code.
    pub fn code(self) -> &'static str {
        match self {
            AdtType::A01 => "A01",
            AdtType::A02 => "A02",
            AdtType::A03 => "A03",
            AdtType::A08 => "A08",
            AdtType::A11 => "A11",
            AdtType::A12 => "A12",
            AdtType::A13 => "A13",
            AdtType::A40 => "A40",
        }
    }

    /// The message structure the trigger uses in the HL7 v2.4 UK profile.
    pub fn structure(self) -> &'static str {
        match self {
            AdtType::A01 | AdtType::A08 | AdtType::A13 => "ADT_A01",
            AdtType::A02 | AdtType::A03 => "ADT_A02",
            AdtType::A11 | AdtType::A12 => "ADT_A11",
            AdtType::A40 => "ADT_A39",
        }
    }
}

/// Patient class of an encounter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatientClass {
    Inpatient,
    DayCase,
}

impl PatientClass {
    /// The `patient_class` column value.
    pub fn name(self) -> &'static str {
        match self {
            PatientClass::Inpatient => "inpatient",
            PatientClass::DayCase => "day_case",
        }
    }

    /// PV1-2 (HL7 table 0004 is user-defined; `D` marks a day case).
    pub fn hl7(self) -> &'static str {
        match self {
            PatientClass::Inpatient => "I",
            PatientClass::DayCase => "D",
        }
    }
}

/// A bed: ward index and bed label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub ward: usize,
    pub bed: String,
}

/// One ADT message.
#[derive(Debug, Clone)]
pub struct AdtRecord {
    /// Message control id (MSH-10), unique per trust.
    pub control_id: u64,
    pub event_type: AdtType,
    pub event_time: SimTime,
    pub recorded_at: SimTime,
    pub patient: PatientId,
    pub encounter: u64,
    pub class: PatientClass,
    /// Current location after the event.
    pub location: Location,
    /// Location before a transfer (PV1-6), for A02 and A12.
    pub prior_location: Option<Location>,
    pub specialty: &'static str,
    /// NHS Data Dictionary admission method code.
    pub admission_method: &'static str,
    /// NHS Data Dictionary discharge destination code (A03 only).
    pub discharge_destination: Option<&'static str>,
    pub admit_time: SimTime,
    /// Discharge time (A03 only).
    pub discharge_time: Option<SimTime>,
    /// The temporary hospital number the message names the patient by (PID-3), while a
    /// patient brought in unidentified is not yet matched to their record.
    pub temporary: Option<u64>,
    /// A40 only: the temporary hospital number merged into the patient's record (MRG-1).
    pub merged: Option<u64>,
}

/// The temporary hospital number `n` as PID-3 and MRG-1 carry it.
pub fn temporary_number(n: u64) -> String {
    format!("T{n:07}")
}

/// How an emergency attendance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposal {
    Admitted,
    Discharged,
    Transferred,
    Left,
    Died,
}

impl Disposal {
    /// The `disposal` column value.
    pub fn name(self) -> &'static str {
        match self {
            Disposal::Admitted => "admitted",
            Disposal::Discharged => "discharged",
            Disposal::Transferred => "transferred",
            Disposal::Left => "left",
            Disposal::Died => "died",
        }
    }
}

/// How a patient arrived at the emergency department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrivalMode {
    Ambulance,
    WalkIn,
    Other,
}

impl ArrivalMode {
    /// The `arrival_mode` column value.
    pub fn name(self) -> &'static str {
        match self {
            ArrivalMode::Ambulance => "ambulance",
            ArrivalMode::WalkIn => "walk_in",
            ArrivalMode::Other => "other",
        }
    }
}

/// One emergency department attendance (complete, or still in the department at the end).
#[derive(Debug, Clone)]
pub struct EdRecord {
    pub attendance: u64,
    pub site: usize,
    pub patient: PatientId,
    pub arrival: SimTime,
    pub mode: ArrivalMode,
    pub handover: Option<SimTime>,
    pub acuity: i8,
    pub initial_assessment: Option<SimTime>,
    pub seen: Option<SimTime>,
    pub decision_to_admit: Option<SimTime>,
    pub departure: Option<SimTime>,
    pub disposal: Option<Disposal>,
    pub age_band: &'static str,
    pub chief_complaint: &'static str,
}

/// One planned theatre list.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: String,
    pub theatre: usize,
    pub day: i64,
    pub planned_start: SimTime,
    pub planned_end: SimTime,
    pub specialty: &'static str,
    pub cancelled: bool,
}

/// One theatre milestone of a case.
#[derive(Debug, Clone)]
pub struct TheatreEventRecord {
    pub event_id: String,
    pub case_id: String,
    pub session_id: String,
    pub theatre: usize,
    pub specialty: &'static str,
    pub procedure_code: &'static str,
    pub procedure_name: &'static str,
    pub milestone: &'static str,
    pub time: SimTime,
    pub planned_order: i32,
    pub planned_duration_min: i32,
    pub cancel_reason: Option<&'static str>,
}

/// One bed-base row of a ward.
#[derive(Debug, Clone)]
pub struct BedsRecord {
    pub ward: usize,
    pub beds: u32,
    /// The first day the row holds (from the first reported day on).
    pub valid_from: chrono::NaiveDate,
    pub valid_to: Option<chrono::NaiveDate>,
}

/// One rostered shift.
#[derive(Debug, Clone)]
pub struct ShiftRecord {
    pub shift_id: u64,
    pub site: usize,
    /// Ward code, `ED`, or none for site-wide rotas.
    pub ward: Option<String>,
    pub staff_group: &'static str,
    pub day: i64,
    pub planned_hours: f64,
    pub worked_hours: f64,
    pub contract: &'static str,
}

/// One monthly ledger line, in pence.
#[derive(Debug, Clone)]
pub struct FinanceRecord {
    pub cost_centre: String,
    pub site: usize,
    pub specialty: Option<&'static str>,
    pub category: &'static str,
    pub month: chrono::NaiveDate,
    pub budget_pence: i128,
    pub actual_pence: i128,
}

/// A note a manager would have put on a KPI's charts: the simulator annotates each change it
/// plants, on the day it starts.
#[derive(Debug, Clone)]
pub struct AnnotationRecord {
    pub kpi_id: &'static str,
    /// Local day index the change starts.
    pub day: i64,
    pub note: &'static str,
}

/// A record a feed sent that ingest refused or flagged, as ingest notes it in `dq_issues`: the
/// sender fixed it and sent it again, so the records themselves are in the other tables.
#[derive(Debug, Clone)]
pub struct DqIssueRecord {
    pub feed: &'static str,
    pub received: SimTime,
    pub record_ref: String,
    pub reason: String,
    pub owner: &'static str,
}

/// Anything the simulator emits.
#[derive(Debug, Clone)]
pub enum Record {
    Adt(AdtRecord),
    Ed(EdRecord),
    Session(SessionRecord),
    TheatreEvent(TheatreEventRecord),
    Beds(BedsRecord),
    Shift(ShiftRecord),
    Finance(FinanceRecord),
    Annotation(AnnotationRecord),
    DqIssue(DqIssueRecord),
}
