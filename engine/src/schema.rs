//! The canonical data model: every lake table, its columns, types, time column and partition
//! column, defined once.
//!
//! Everything that reads or writes the lake goes through [`Table`]: the lake creates Delta
//! tables from [`Table::schema`], the query layer registers them under [`Table::name`], the
//! simulator and (later) ingest build record batches against the same schema. Column names are
//! constants in one module per table so a typo is a compile error, not an empty dashboard.
//!
//! Conventions other tools rely on: snake_case names; timestamps are
//! `Timestamp(Microsecond, "UTC")`; every table carries `org_code` (the trust's ODS code) beside
//! `site`; each table's partition column (a `Date32` day, or the month for finance) is its last
//! column, because Delta stores partition values in the path and readers append them after the
//! file's columns.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// The time zone every timestamp column carries.
pub const UTC: &str = "UTC";

/// Money columns: pounds with pence, wide enough for a national ledger.
pub const MONEY_PRECISION: u8 = 18;
/// Scale of money columns (pence).
pub const MONEY_SCALE: i8 = 2;
/// The largest amount a money column holds, in pence: eighteen digits. A larger value would
/// be stored as digits the column cannot hold and read back as a different amount.
pub const MAX_PENCE: i128 = 999_999_999_999_999_999;

/// Longest text (in characters) of a code or identifier column: wards, sites, ids, codes.
/// Real values are a few dozen characters; anything longer is a broken feed, not data.
pub const MAX_CODE_CHARS: usize = 100;
/// Longest text of a free-text column (a procedure's name, a complaint, a reason).
pub const MAX_FREE_TEXT_CHARS: usize = 1_000;

/// `text` cut to at most `max` characters (what a column holds), the cut marked with an
/// ellipsis.
pub fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let first = |n: usize| {
        text.char_indices()
            .nth(n)
            .map_or(text, |(at, _)| &text[..at])
    };
    if first(max).len() == text.len() {
        return text.into();
    }
    format!("{}…", first(max.saturating_sub(1))).into()
}

/// The free-text columns, by table; every other text column is a code or identifier.
const FREE_TEXT: [(Table, &str); 9] = [
    (Table::AuditLog, audit_log::DETAIL),
    (Table::TheatreEvents, theatre_events::PROCEDURE_NAME),
    (Table::Alerts, alerts::TITLE),
    (Table::Alerts, alerts::DETAIL),
    (Table::TheatreEvents, theatre_events::CANCEL_REASON),
    (Table::EdAttendances, ed_attendances::CHIEF_COMPLAINT),
    (Table::DqIssues, dq_issues::REASON),
    (Table::DqIssues, dq_issues::RECORD_REF),
    (Table::Annotations, annotations::NOTE),
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

fn money() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

fn required(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, false)
}

fn optional(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

/// Column names shared by every table.
pub mod common {
    /// The trust's ODS code (e.g. `X01`), so one lake can hold a region or the country.
    pub const ORG_CODE: &str = "org_code";
    /// The hospital site within the trust.
    pub const SITE: &str = "site";
}

/// `adt_events`: HL7 v2 ADT events, one row per message, corrections kept as their own events.
pub mod adt_events {
    /// Sender + message control id; unique (see [`event_id`]).
    pub const EVENT_ID: &str = "event_id";
    /// A01, A02, A03 … A13, A28, A31, A40.
    pub const EVENT_TYPE: &str = "event_type";
    /// When the event happened (EVN-6, else EVN-2).
    pub const EVENT_TIME: &str = "event_time";
    /// When the sending system recorded it (EVN-2).
    pub const RECORDED_AT: &str = "recorded_at";
    /// Keyed pseudonym of the NHS number (never the number itself).
    pub const PATIENT_KEY: &str = "patient_key";
    /// Visit number (PV1-19); cancellations match on it.
    pub const ENCOUNTER_ID: &str = "encounter_id";
    /// inpatient, outpatient, emergency or day_case.
    pub const PATIENT_CLASS: &str = "patient_class";
    /// Ward (PV1-3.1).
    pub const WARD: &str = "ward";
    /// Bed (PV1-3.3).
    pub const BED: &str = "bed";
    /// Treatment function code (PV1-10), e.g. `300` general medicine.
    pub const SPECIALTY: &str = "specialty";
    /// NHS Data Dictionary admission method code, e.g. `21` emergency via A&E.
    pub const ADMISSION_METHOD: &str = "admission_method";
    /// NHS Data Dictionary discharge destination code, e.g. `19` usual place of residence.
    pub const DISCHARGE_DESTINATION: &str = "discharge_destination";
    /// The feed the event arrived on.
    pub const SOURCE: &str = "source";
    /// A40 (merge): the keyed pseudonym of the patient record merged away (MRG-1) into
    /// `patient_key`, the surviving record. Added after the first release: a table from
    /// before gains it when opened for writing (`Lake::open_or_create`).
    pub const PRIOR_PATIENT_KEY: &str = "prior_patient_key";
    /// Partition column: UTC day of `event_time`.
    pub const EVENT_DATE: &str = "event_date";

    /// The unique id of an ADT event: sending facility, sending application, control id.
    pub fn event_id(sending_facility: &str, sending_application: &str, control_id: &str) -> String {
        format!("{sending_facility}/{sending_application}/{control_id}")
    }
}

/// `ed_attendances`: one row per emergency department attendance.
pub mod ed_attendances {
    pub const ATTENDANCE_ID: &str = "attendance_id";
    pub const PATIENT_KEY: &str = "patient_key";
    pub const ARRIVAL_TIME: &str = "arrival_time";
    /// ambulance, walk_in or other.
    pub const ARRIVAL_MODE: &str = "arrival_mode";
    pub const AMBULANCE_ARRIVAL_TIME: &str = "ambulance_arrival_time";
    pub const HANDOVER_TIME: &str = "handover_time";
    /// 1 (immediate resuscitation) … 5 (non-urgent).
    pub const ACUITY: &str = "acuity";
    pub const INITIAL_ASSESSMENT_TIME: &str = "initial_assessment_time";
    pub const SEEN_TIME: &str = "seen_time";
    pub const DECISION_TO_ADMIT_TIME: &str = "decision_to_admit_time";
    /// Empty while the patient is still in the department.
    pub const DEPARTURE_TIME: &str = "departure_time";
    /// admitted, discharged, transferred, left or died; empty while in the department.
    pub const DISPOSAL: &str = "disposal";
    pub const AGE_BAND: &str = "age_band";
    pub const CHIEF_COMPLAINT: &str = "chief_complaint";
    /// Partition column: UTC day of `arrival_time`.
    pub const ARRIVAL_DATE: &str = "arrival_date";
}

/// `theatre_sessions`: planned operating lists.
pub mod theatre_sessions {
    pub const SESSION_ID: &str = "session_id";
    pub const THEATRE: &str = "theatre";
    pub const PLANNED_START: &str = "planned_start";
    pub const PLANNED_END: &str = "planned_end";
    pub const SPECIALTY: &str = "specialty";
    /// The whole list was cancelled before the day.
    pub const CANCELLED: &str = "cancelled";
    /// Partition column: the list's (local) calendar day.
    pub const SESSION_DATE: &str = "session_date";
}

/// `theatre_events`: case milestones as the theatre system records them.
pub mod theatre_events {
    pub const EVENT_ID: &str = "event_id";
    pub const CASE_ID: &str = "case_id";
    pub const SESSION_ID: &str = "session_id";
    pub const THEATRE: &str = "theatre";
    pub const SPECIALTY: &str = "specialty";
    /// OPCS-4 code of the planned procedure.
    pub const PROCEDURE_CODE: &str = "procedure_code";
    pub const PROCEDURE_NAME: &str = "procedure_name";
    /// One of [`MILESTONES`](super::theatre_events::MILESTONES).
    pub const MILESTONE: &str = "milestone";
    pub const EVENT_TIME: &str = "event_time";
    /// Position of the case on the list (1-based).
    pub const PLANNED_ORDER: &str = "planned_order";
    pub const PLANNED_DURATION_MIN: &str = "planned_duration_min";
    /// Only on `cancelled` events.
    pub const CANCEL_REASON: &str = "cancel_reason";
    /// Partition column: UTC day of `event_time`.
    pub const EVENT_DATE: &str = "event_date";

    /// Milestones in the order a completed case passes them.
    pub const MILESTONES: [&str; 10] = [
        "sent_for",
        "in_anaesthetic_room",
        "anaesthesia_start",
        "knife_to_skin",
        "surgery_end",
        "anaesthesia_end",
        "out_of_theatre",
        "in_recovery",
        "cleaning_start",
        "cleaning_end",
    ];
    /// The milestone of a case cancelled on the day.
    pub const CANCELLED: &str = "cancelled";
}

/// `beds`: bed base per ward over time (a new row when capacity changes).
pub mod beds {
    pub const WARD: &str = "ward";
    /// general_acute, critical_care, maternity, paediatric, …
    pub const WARD_TYPE: &str = "ward_type";
    pub const BEDS: &str = "beds";
    /// Partition column (and first day the row holds).
    pub const VALID_FROM: &str = "valid_from";
    /// Last day the row holds; empty while current.
    pub const VALID_TO: &str = "valid_to";
}

/// `workforce_shifts`: one row per rostered shift.
pub mod workforce_shifts {
    pub const SHIFT_ID: &str = "shift_id";
    pub const WARD: &str = "ward";
    /// nursing, hca, medical, ahp.
    pub const STAFF_GROUP: &str = "staff_group";
    pub const PLANNED_HOURS: &str = "planned_hours";
    /// Zero when the shift went unfilled.
    pub const WORKED_HOURS: &str = "worked_hours";
    /// substantive, bank or agency.
    pub const CONTRACT: &str = "contract";
    /// Partition column.
    pub const SHIFT_DATE: &str = "shift_date";
}

/// `finance_ledger`: monthly budget and actual per cost centre.
pub mod finance_ledger {
    pub const COST_CENTRE: &str = "cost_centre";
    pub const SPECIALTY: &str = "specialty";
    /// pay, non_pay or income.
    pub const CATEGORY: &str = "category";
    pub const BUDGET: &str = "budget";
    pub const ACTUAL: &str = "actual";
    /// Partition column: first day of the month.
    pub const MONTH: &str = "month";
}

/// `dq_issues`: records ingest flagged or rejected, with the team that owns the fix.
pub mod dq_issues {
    pub const FEED: &str = "feed";
    pub const RECEIVED_AT: &str = "received_at";
    pub const RECORD_REF: &str = "record_ref";
    pub const REASON: &str = "reason";
    pub const OWNER: &str = "owner";
    /// Partition column: UTC day of `received_at`.
    pub const RECEIVED_DATE: &str = "received_date";
}

/// `annotations`: dated notes managers put on a KPI's charts ("discharge lounge opened"), and
/// the rebases they record (a new process from that date, with who and why). Kept in the lake
/// so SQL sees them beside the data they explain.
pub mod annotations {
    pub const ANNOTATION_ID: &str = "annotation_id";
    pub const KPI_ID: &str = "kpi_id";
    /// `note`, or `rebase`: the KPI's limits are recalculated from `on_date`.
    pub const KIND: &str = "kind";
    pub const NOTE: &str = "note";
    /// Who wrote it (a user name, or the client that posted it).
    pub const AUTHOR: &str = "author";
    pub const CREATED_AT: &str = "created_at";
    /// Partition column: the day the note is about.
    pub const ON_DATE: &str = "on_date";
}

/// `theatre_reports`: the figures of each morning's theatre performance report, one row per
/// theatre and list specialty of the day. Every figure is a count or a sum of minutes, so any
/// grouping adds up (utilisation = Σ touch ÷ Σ planned); the thresholds used are kept beside
/// them.
pub mod theatre_reports {
    pub const THEATRE: &str = "theatre";
    pub const SPECIALTY: &str = "specialty";
    /// Lists planned for the day: held, and cancelled before the day.
    pub const LISTS_PLANNED: &str = "lists_planned";
    pub const LISTS_HELD: &str = "lists_held";
    /// Held lists with a patient in the anaesthetic room, and with a patient out of theatre.
    pub const LISTS_STARTED: &str = "lists_started";
    pub const LISTS_FINISHED: &str = "lists_finished";
    pub const CASES_BOOKED: &str = "cases_booked";
    pub const CASES_COMPLETED: &str = "cases_completed";
    pub const CASES_CANCELLED: &str = "cases_cancelled";
    pub const PLANNED_MIN: &str = "planned_min";
    pub const TOUCH_MIN: &str = "touch_min";
    pub const TOUCH_CAPPED_MIN: &str = "touch_capped_min";
    /// Lists started up to the grace period late, up to twice it, and later.
    pub const LATE_STARTS_BAND_1: &str = "late_starts_band_1";
    pub const LATE_STARTS_BAND_2: &str = "late_starts_band_2";
    pub const LATE_STARTS_BAND_3: &str = "late_starts_band_3";
    /// Minutes lost to late starts, every late list counted.
    pub const LATE_START_MIN: &str = "late_start_min";
    pub const EARLY_FINISHES: &str = "early_finishes";
    /// Minutes between the last patient out and the planned end, on early-finishing lists.
    pub const EARLY_FINISH_MIN: &str = "early_finish_min";
    pub const TURNAROUNDS: &str = "turnarounds";
    pub const TURNAROUND_MIN: &str = "turnaround_min";
    /// Lists whose last patient left theatre after the planned end, and the minutes over.
    pub const OVERRUNS: &str = "overruns";
    pub const OVERRUN_MIN: &str = "overrun_min";
    pub const LATE_START_GRACE_MIN: &str = "late_start_grace_min";
    pub const EARLY_FINISH_GRACE_MIN: &str = "early_finish_grace_min";
    pub const MADE_AT: &str = "made_at";
    /// Partition column: the day reported on.
    pub const REPORT_DATE: &str = "report_date";
}

/// `alerts`: every alert bright raised (a room ready for cleaning, a feed gone silent, a KPI
/// turned special cause…), copied from the alert store so SQL sees them beside the data they
/// were about. Acknowledgements stay in the store.
pub mod alerts {
    /// The alert's number in the store (and in webhook bodies).
    pub const ALERT_ID: &str = "alert_id";
    pub const KIND: &str = "kind";
    /// `info`, `warning` or `critical`.
    pub const SEVERITY: &str = "severity";
    /// Alerts with the same key within their cooldown were one alert.
    pub const DEDUP_KEY: &str = "dedup_key";
    pub const TITLE: &str = "title";
    pub const DETAIL: &str = "detail";
    /// The page that shows what the alert is about.
    pub const LINK: &str = "link";
    pub const RAISED_AT: &str = "raised_at";
    /// Partition column: the UTC day raised.
    pub const RAISED_DATE: &str = "raised_date";
}

/// `audit_log`: who did what through which door: sign-ins, analysts' statements. Read by
/// admins only.
pub mod audit_log {
    /// Unique per event (the service run and a counter).
    pub const AUDIT_ID: &str = "audit_id";
    pub const AT: &str = "at";
    /// The client (`user:NAME`, an API client's name) or, for a failed sign-in, the name tried.
    pub const ACTOR: &str = "actor";
    /// `http` (`POST /api/sql`), `page` (`/sql`), `login`.
    pub const DOOR: &str = "door";
    /// `sql`, `login`, `login_failed`.
    pub const ACTION: &str = "action";
    /// The statement, or what was asked for.
    pub const DETAIL: &str = "detail";
    /// Rows answered.
    pub const ROWS: &str = "rows";
    pub const MILLIS: &str = "millis";
    /// `answered`, `refused`, `stopped`, `failed`, `ok`.
    pub const OUTCOME: &str = "outcome";
    /// Partition column: the UTC day.
    pub const AT_DATE: &str = "at_date";
}

/// Every table in the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    AdtEvents,
    EdAttendances,
    TheatreSessions,
    TheatreEvents,
    Beds,
    WorkforceShifts,
    FinanceLedger,
    DqIssues,
    Annotations,
    TheatreReports,
    Alerts,
    AuditLog,
}

impl Table {
    /// All tables, in a stable order.
    pub const ALL: [Table; 12] = [
        Table::AdtEvents,
        Table::EdAttendances,
        Table::TheatreSessions,
        Table::TheatreEvents,
        Table::Beds,
        Table::WorkforceShifts,
        Table::FinanceLedger,
        Table::DqIssues,
        Table::Annotations,
        Table::TheatreReports,
        Table::Alerts,
        Table::AuditLog,
    ];

    /// The table's name in the lake and in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Table::AdtEvents => "adt_events",
            Table::EdAttendances => "ed_attendances",
            Table::TheatreSessions => "theatre_sessions",
            Table::TheatreEvents => "theatre_events",
            Table::Beds => "beds",
            Table::WorkforceShifts => "workforce_shifts",
            Table::FinanceLedger => "finance_ledger",
            Table::DqIssues => "dq_issues",
            Table::Annotations => "annotations",
            Table::TheatreReports => "theatre_reports",
            Table::Alerts => "alerts",
            Table::AuditLog => "audit_log",
        }
    }

    /// The registered Arrow schema; written files and query results match it exactly.
    pub fn schema(self) -> SchemaRef {
        static SCHEMAS: LazyLock<Vec<SchemaRef>> = LazyLock::new(|| {
            Table::ALL
                .iter()
                .map(|t| Arc::new(t.build_schema()))
                .collect()
        });
        SCHEMAS[self as usize].clone()
    }

    /// The column that says when a row happened (used for freshness and time filters).
    pub fn time_column(self) -> &'static str {
        match self {
            Table::AdtEvents => adt_events::EVENT_TIME,
            Table::EdAttendances => ed_attendances::ARRIVAL_TIME,
            Table::TheatreSessions => theatre_sessions::PLANNED_START,
            Table::TheatreEvents => theatre_events::EVENT_TIME,
            Table::Beds => beds::VALID_FROM,
            Table::WorkforceShifts => workforce_shifts::SHIFT_DATE,
            Table::FinanceLedger => finance_ledger::MONTH,
            Table::DqIssues => dq_issues::RECEIVED_AT,
            Table::Annotations => annotations::CREATED_AT,
            Table::TheatreReports => theatre_reports::MADE_AT,
            Table::Alerts => alerts::RAISED_AT,
            Table::AuditLog => audit_log::AT,
        }
    }

    /// The columns added to the schema since a table (or batch) with the columns `have` was
    /// made: all nullable, so older rows read them as null. Errs naming a column the schema
    /// does not know, or a required one `have` lacks, as nothing can be made of those.
    pub fn columns_added_since<'a>(
        self,
        have: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<arrow::datatypes::FieldRef>, String> {
        let schema = self.schema();
        let have: Vec<&str> = have.into_iter().collect();
        if let Some(unknown) = have.iter().find(|n| schema.field_with_name(n).is_err()) {
            return Err(format!("{self} has no column '{unknown}'"));
        }
        let missing: Vec<_> = schema
            .fields()
            .iter()
            .filter(|f| !have.contains(&f.name().as_str()))
            .cloned()
            .collect();
        match missing.iter().find(|f| !f.is_nullable()) {
            Some(required) => Err(format!(
                "{self} lacks the required column '{}'",
                required.name()
            )),
            None => Ok(missing),
        }
    }

    /// The most characters a text column of this table holds: [`MAX_FREE_TEXT_CHARS`] for free
    /// text, [`MAX_CODE_CHARS`] for codes and identifiers (an ADT `event_id` joins three of
    /// them). Ingest refuses longer values, naming the field.
    pub fn max_chars(self, column: &str) -> usize {
        if FREE_TEXT.contains(&(self, column)) {
            MAX_FREE_TEXT_CHARS
        } else if (self, column) == (Table::AdtEvents, adt_events::EVENT_ID) {
            3 * MAX_CODE_CHARS + 2
        } else {
            MAX_CODE_CHARS
        }
    }

    /// The day a row belongs to: always the schema's last column, a `Date32`. The lake keeps
    /// each commit's rows in this order and records each file's first and last day, so a
    /// query for a few days opens only the files (and row groups) holding them. Lakes made
    /// before bright stopped partitioning by it keep their day folders.
    pub fn day_column(self) -> &'static str {
        match self {
            Table::AdtEvents => adt_events::EVENT_DATE,
            Table::EdAttendances => ed_attendances::ARRIVAL_DATE,
            Table::TheatreSessions => theatre_sessions::SESSION_DATE,
            Table::TheatreEvents => theatre_events::EVENT_DATE,
            Table::Beds => beds::VALID_FROM,
            Table::WorkforceShifts => workforce_shifts::SHIFT_DATE,
            Table::FinanceLedger => finance_ledger::MONTH,
            Table::DqIssues => dq_issues::RECEIVED_DATE,
            Table::Annotations => annotations::ON_DATE,
            Table::TheatreReports => theatre_reports::REPORT_DATE,
            Table::Alerts => alerts::RAISED_DATE,
            Table::AuditLog => audit_log::AT_DATE,
        }
    }

    fn build_schema(self) -> Schema {
        use DataType::{Boolean, Date32, Float64, Int8, Int32, Int64, Utf8};
        let org = || required(common::ORG_CODE, Utf8);
        let site = || required(common::SITE, Utf8);
        let fields = match self {
            Table::AdtEvents => {
                use adt_events::*;
                vec![
                    required(EVENT_ID, Utf8),
                    required(EVENT_TYPE, Utf8),
                    required(EVENT_TIME, ts()),
                    required(RECORDED_AT, ts()),
                    optional(PATIENT_KEY, Utf8),
                    optional(ENCOUNTER_ID, Utf8),
                    optional(PATIENT_CLASS, Utf8),
                    org(),
                    optional(common::SITE, Utf8),
                    optional(WARD, Utf8),
                    optional(BED, Utf8),
                    optional(SPECIALTY, Utf8),
                    optional(ADMISSION_METHOD, Utf8),
                    optional(DISCHARGE_DESTINATION, Utf8),
                    required(SOURCE, Utf8),
                    optional(PRIOR_PATIENT_KEY, Utf8),
                    required(EVENT_DATE, Date32),
                ]
            }
            Table::EdAttendances => {
                use ed_attendances::*;
                vec![
                    required(ATTENDANCE_ID, Utf8),
                    org(),
                    site(),
                    optional(PATIENT_KEY, Utf8),
                    required(ARRIVAL_TIME, ts()),
                    required(ARRIVAL_MODE, Utf8),
                    optional(AMBULANCE_ARRIVAL_TIME, ts()),
                    optional(HANDOVER_TIME, ts()),
                    optional(ACUITY, Int8),
                    optional(INITIAL_ASSESSMENT_TIME, ts()),
                    optional(SEEN_TIME, ts()),
                    optional(DECISION_TO_ADMIT_TIME, ts()),
                    optional(DEPARTURE_TIME, ts()),
                    optional(DISPOSAL, Utf8),
                    optional(AGE_BAND, Utf8),
                    optional(CHIEF_COMPLAINT, Utf8),
                    required(ARRIVAL_DATE, Date32),
                ]
            }
            Table::TheatreSessions => {
                use theatre_sessions::*;
                vec![
                    required(SESSION_ID, Utf8),
                    org(),
                    site(),
                    required(THEATRE, Utf8),
                    required(PLANNED_START, ts()),
                    required(PLANNED_END, ts()),
                    optional(SPECIALTY, Utf8),
                    required(CANCELLED, Boolean),
                    required(SESSION_DATE, Date32),
                ]
            }
            Table::TheatreEvents => {
                use theatre_events::*;
                vec![
                    required(EVENT_ID, Utf8),
                    required(CASE_ID, Utf8),
                    optional(SESSION_ID, Utf8),
                    org(),
                    site(),
                    required(THEATRE, Utf8),
                    optional(SPECIALTY, Utf8),
                    optional(PROCEDURE_CODE, Utf8),
                    optional(PROCEDURE_NAME, Utf8),
                    required(MILESTONE, Utf8),
                    required(EVENT_TIME, ts()),
                    optional(PLANNED_ORDER, Int32),
                    optional(PLANNED_DURATION_MIN, Int32),
                    optional(CANCEL_REASON, Utf8),
                    required(EVENT_DATE, Date32),
                ]
            }
            Table::Beds => {
                use beds::*;
                vec![
                    org(),
                    site(),
                    required(WARD, Utf8),
                    required(WARD_TYPE, Utf8),
                    required(BEDS, Int32),
                    optional(VALID_TO, Date32),
                    required(VALID_FROM, Date32),
                ]
            }
            Table::WorkforceShifts => {
                use workforce_shifts::*;
                vec![
                    required(SHIFT_ID, Utf8),
                    org(),
                    site(),
                    optional(WARD, Utf8),
                    required(STAFF_GROUP, Utf8),
                    required(PLANNED_HOURS, Float64),
                    required(WORKED_HOURS, Float64),
                    required(CONTRACT, Utf8),
                    required(SHIFT_DATE, Date32),
                ]
            }
            Table::FinanceLedger => {
                use finance_ledger::*;
                vec![
                    required(COST_CENTRE, Utf8),
                    org(),
                    site(),
                    optional(SPECIALTY, Utf8),
                    required(CATEGORY, Utf8),
                    required(BUDGET, money()),
                    required(ACTUAL, money()),
                    required(MONTH, Date32),
                ]
            }
            Table::DqIssues => {
                use dq_issues::*;
                vec![
                    required(FEED, Utf8),
                    required(RECEIVED_AT, ts()),
                    org(),
                    optional(RECORD_REF, Utf8),
                    required(REASON, Utf8),
                    optional(OWNER, Utf8),
                    required(RECEIVED_DATE, Date32),
                ]
            }
            Table::Annotations => {
                use annotations::*;
                vec![
                    required(ANNOTATION_ID, Utf8),
                    required(KPI_ID, Utf8),
                    org(),
                    required(KIND, Utf8),
                    required(NOTE, Utf8),
                    required(AUTHOR, Utf8),
                    required(CREATED_AT, ts()),
                    required(ON_DATE, Date32),
                ]
            }
            Table::TheatreReports => {
                use theatre_reports::*;
                let count = |name| required(name, Int64);
                let minutes = |name| required(name, Float64);
                vec![
                    org(),
                    site(),
                    required(THEATRE, Utf8),
                    optional(SPECIALTY, Utf8),
                    count(LISTS_PLANNED),
                    count(LISTS_HELD),
                    count(LISTS_STARTED),
                    count(LISTS_FINISHED),
                    count(CASES_BOOKED),
                    count(CASES_COMPLETED),
                    count(CASES_CANCELLED),
                    minutes(PLANNED_MIN),
                    minutes(TOUCH_MIN),
                    minutes(TOUCH_CAPPED_MIN),
                    count(LATE_STARTS_BAND_1),
                    count(LATE_STARTS_BAND_2),
                    count(LATE_STARTS_BAND_3),
                    minutes(LATE_START_MIN),
                    count(EARLY_FINISHES),
                    minutes(EARLY_FINISH_MIN),
                    count(TURNAROUNDS),
                    minutes(TURNAROUND_MIN),
                    count(OVERRUNS),
                    minutes(OVERRUN_MIN),
                    minutes(LATE_START_GRACE_MIN),
                    minutes(EARLY_FINISH_GRACE_MIN),
                    required(MADE_AT, ts()),
                    required(REPORT_DATE, Date32),
                ]
            }
            Table::Alerts => {
                use alerts::*;
                vec![
                    required(ALERT_ID, Int64),
                    org(),
                    required(KIND, Utf8),
                    required(SEVERITY, Utf8),
                    required(DEDUP_KEY, Utf8),
                    required(TITLE, Utf8),
                    required(DETAIL, Utf8),
                    optional(LINK, Utf8),
                    required(RAISED_AT, ts()),
                    required(RAISED_DATE, Date32),
                ]
            }
            Table::AuditLog => {
                use audit_log::*;
                vec![
                    required(AUDIT_ID, Utf8),
                    org(),
                    required(AT, ts()),
                    required(ACTOR, Utf8),
                    required(DOOR, Utf8),
                    required(ACTION, Utf8),
                    optional(DETAIL, Utf8),
                    optional(ROWS, Int64),
                    optional(MILLIS, Int64),
                    required(OUTCOME, Utf8),
                    required(AT_DATE, Date32),
                ]
            }
        };
        Schema::new(fields)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A table name that is not in the canonical model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown table '{name}' (known: {known})")]
pub struct UnknownTable {
    /// What was asked for.
    pub name: String,
    /// The known names, comma separated, for the message.
    pub known: String,
}

impl FromStr for Table {
    type Err = UnknownTable;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTable {
                name: s.to_string(),
                known: Table::ALL.map(Table::name).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_table_in_declaration_order() {
        // `Table::schema` indexes its cache by discriminant.
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(*table as usize, i);
        }
    }

    #[test]
    fn day_column_is_last_and_a_date() {
        for table in Table::ALL {
            let schema = table.schema();
            let last = schema.fields().last().expect("tables have columns");
            assert_eq!(last.name(), table.day_column(), "{table}");
            assert_eq!(last.data_type(), &DataType::Date32, "{table}");
            assert!(!last.is_nullable(), "{table}: every row has its day");
        }
    }

    #[test]
    fn every_table_carries_org_code_and_its_time_column() {
        for table in Table::ALL {
            let schema = table.schema();
            assert!(schema.field_with_name(common::ORG_CODE).is_ok(), "{table}");
            assert!(
                schema.field_with_name(table.time_column()).is_ok(),
                "{table}"
            );
        }
    }

    #[test]
    fn timestamps_are_utc_microseconds() {
        for table in Table::ALL {
            for field in table.schema().fields() {
                if let DataType::Timestamp(unit, tz) = field.data_type() {
                    assert_eq!(*unit, TimeUnit::Microsecond, "{table}.{}", field.name());
                    assert_eq!(tz.as_deref(), Some(UTC), "{table}.{}", field.name());
                }
            }
        }
    }

    #[test]
    fn free_text_columns_are_text_columns_of_their_tables() {
        for (table, column) in FREE_TEXT {
            let schema = table.schema();
            let field = schema
                .field_with_name(column)
                .expect("a column of its table");
            assert_eq!(field.data_type(), &DataType::Utf8, "{table}.{column}");
            assert_eq!(table.max_chars(column), MAX_FREE_TEXT_CHARS);
        }
        assert_eq!(Table::Beds.max_chars(beds::WARD), MAX_CODE_CHARS);
    }

    #[test]
    fn the_largest_amount_fits_the_money_columns() {
        use arrow::datatypes::{Decimal128Type, DecimalType};
        let digits = MAX_PENCE.to_string().len();
        assert_eq!(digits, usize::from(MONEY_PRECISION));
        assert!(
            Decimal128Type::validate_decimal_precision(MAX_PENCE, MONEY_PRECISION, MONEY_SCALE)
                .is_ok()
        );
        assert!(
            Decimal128Type::validate_decimal_precision(MAX_PENCE + 1, MONEY_PRECISION, MONEY_SCALE)
                .is_err()
        );
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for table in Table::ALL {
            assert_eq!(table.name().parse::<Table>(), Ok(table));
        }
        let err = "admissions".parse::<Table>().unwrap_err();
        assert!(err.to_string().contains("adt_events"), "{err}");
    }
}
