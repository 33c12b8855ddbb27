//! The simulated hospital's feeds as files in their real formats, for the ingest paths.
//!
//! Under `DIR/<org_code>/`:
//! - `adt/YYYY-MM-DD.hl7`: HL7 v2.4 ADT messages as the PAS sends them that day, segments
//!   ending in CR, one message per line (a blank line's worth of LF between messages).
//! - `ed/ed_attendances_YYYY-MM-DD.csv`: the nightly ED extract of attendances that ended that
//!   day (local `dd/mm/yyyy HH:MM:SS` times, NHS number in clear); the last file also lists
//!   patients still in the department, with an empty departure.
//! - `theatres/theatre_events_YYYY-MM-DD.ndjson`: case milestones as the theatre system posts
//!   them (RFC 3339 local times with offset).
//! - `theatres/theatre_sessions_YYYY-MM.csv`: the month's list timetable.
//! - `roster/roster_YYYY-MM.csv`, `finance/finance_ledger_YYYY-MM.csv`, `beds/beds.csv`.
//!
//! Identifiers here are the real kind (NHS numbers, names, dates of birth) of synthetic
//! people; ingest pseudonymises them. The writer is deterministic: the same run gives the same
//! bytes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::clock::{Clock, SimTime};
use crate::patients::Population;
use crate::records::{AdtRecord, ArrivalMode, Record, temporary_number};
use crate::trust::TrustModel;
use crate::{SimError, Sink};
use bright_engine::schema::adt_events;

/// Sending application of simulated ADT (MSH-3).
pub const SENDING_APPLICATION: &str = "PAS";

/// MSH-10 of an ADT message.
pub fn control_id(control: u64) -> String {
    format!("MSG{control:010}")
}

/// `adt_events.event_id` of a message: the same value ingest derives from MSH-3/4/10.
pub fn adt_event_id(trust: &TrustModel, control: u64) -> String {
    adt_events::event_id(&trust.org_code, SENDING_APPLICATION, &control_id(control))
}

/// Visit number (PV1-19) of an encounter.
pub fn visit_number(trust: &TrustModel, encounter: u64) -> String {
    format!("{}V{encounter:09}", trust.org_code)
}

/// ED attendance id.
pub fn attendance_id(trust: &TrustModel, attendance: u64) -> String {
    format!("{}-ED{attendance:09}", trust.org_code)
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn csv_line(fields: &[&str]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Columns of the ED extract.
pub const ED_HEADER: &[&str] = &[
    "attendance_id",
    "site",
    "nhs_number",
    "local_patient_id",
    "arrival",
    "arrival_mode",
    "ambulance_arrival",
    "handover",
    "acuity",
    "initial_assessment",
    "seen",
    "decision_to_admit",
    "departure",
    "disposal",
    "age_band",
    "chief_complaint",
];
const SESSION_HEADER: &[&str] = &[
    "session_id",
    "site",
    "theatre",
    "session_date",
    "planned_start",
    "planned_end",
    "specialty",
    "cancelled",
];
const ROSTER_HEADER: &[&str] = &[
    "shift_id",
    "site",
    "ward",
    "staff_group",
    "shift_date",
    "planned_hours",
    "worked_hours",
    "contract",
];
const FINANCE_HEADER: &[&str] = &[
    "month",
    "cost_centre",
    "site",
    "specialty",
    "category",
    "budget",
    "actual",
];
const BEDS_HEADER: &[&str] = &[
    "site",
    "ward",
    "ward_type",
    "beds",
    "valid_from",
    "valid_to",
];

/// Renders records as their source systems send them: ADT as HL7 v2.4 messages, ED
/// attendances and theatre milestones as JSON objects, with the synthetic people's real-kind
/// identifiers (ingest pseudonymises them).
pub struct Renderer {
    seed: u64,
    populations: BTreeMap<u32, Population>,
}

impl Renderer {
    pub fn new(seed: u64) -> Self {
        Renderer {
            seed,
            populations: BTreeMap::new(),
        }
    }

    fn person(&mut self, trust: &TrustModel, index: u32) -> crate::patients::Person {
        let seed = self.seed;
        self.populations
            .entry(trust.index)
            .or_insert_with(|| trust.population_of(seed))
            .person(index)
    }

    /// One ADT message, segments ending in CR, with a trailing LF.
    pub fn hl7(&mut self, trust: &TrustModel, clock: &Clock, r: &AdtRecord) -> String {
        let person = self.person(trust, r.patient.index);
        let ward = &trust.wards[r.location.ward];
        let site = &trust.sites[ward.site].code;
        let location = |l: &crate::records::Location| {
            let w = &trust.wards[l.ward];
            format!("{}^^{}^{}", w.code, l.bed, trust.sites[w.site].code)
        };
        let prior = r.prior_location.as_ref().map(location).unwrap_or_default();
        let recorded = clock.hl7(r.recorded_at);
        let event = clock.hl7(r.event_time);
        let discharge = r.discharge_time.map(|t| clock.hl7(t)).unwrap_or_default();
        let disposition = r.discharge_destination.unwrap_or("");
        let mut pv1 = vec![String::new(); 46];
        pv1[0] = "PV1".into();
        pv1[1] = "1".into();
        pv1[2] = r.class.hl7().into();
        pv1[3] = format!("{}^^{}^{site}", ward.code, r.location.bed);
        pv1[4] = r.admission_method.into();
        pv1[6] = prior;
        pv1[10] = r.specialty.into();
        pv1[19] = visit_number(trust, r.encounter);
        // PV1-36 discharge method (1: on clinical advice, 4: died), PV1-37 destination.
        if let Some(destination) = r.discharge_destination {
            pv1[36] = if destination == "79" { "4" } else { "1" }.into();
        }
        pv1[37] = disposition.into();
        pv1[44] = clock.hl7(r.admit_time);
        pv1[45] = discharge;
        let mut segments = vec![
            format!(
                "MSH|^~\\&|{SENDING_APPLICATION}|{org}|BRIGHT|{org}|{recorded}||ADT^{code}^{structure}|{control}|P|2.4|||AL|NE|GBR|8859/1|EN",
                org = trust.org_code,
                code = r.event_type.code(),
                structure = r.event_type.structure(),
                control = control_id(r.control_id),
            ),
            format!("EVN|{}|{recorded}|||SIMPAS|{event}", r.event_type.code()),
            match r.temporary {
                // Brought in unidentified: a temporary number, no name, birth date or address.
                Some(n) => format!(
                    "PID|1||{}^^^{}^MR||UNKNOWN^PATIENT|||{}",
                    temporary_number(n),
                    trust.org_code,
                    person.sex,
                ),
                None => format!(
                    "PID|1||{}^^^NHS^NH~{}^^^{}^MR||{}^{}||{}|{}|||{}^^^^{}",
                    person.nhs_number,
                    person.local_id,
                    trust.org_code,
                    person.family_name.to_uppercase(),
                    person.given_name,
                    person.date_of_birth.format("%Y%m%d"),
                    person.sex,
                    person.address,
                    person.postcode,
                ),
            },
            pv1.join("|").trim_end_matches('|').to_string(),
        ];
        if let Some(n) = r.merged {
            // ADT_A39 puts the merged-away record after the surviving patient's PID.
            segments.insert(
                3,
                format!("MRG|{}^^^{}^MR", temporary_number(n), trust.org_code),
            );
        }
        let mut message = segments.join("\r");
        message.push('\r');
        message.push('\n');
        message
    }

    /// A theatre milestone as the theatre system posts it (RFC 3339 local times).
    pub fn theatre_event(
        &self,
        trust: &TrustModel,
        clock: &Clock,
        r: &crate::records::TheatreEventRecord,
    ) -> serde_json::Value {
        let t = &trust.theatres[r.theatre];
        let mut object = serde_json::Map::new();
        let mut put = |k: &str, v: serde_json::Value| {
            object.insert(k.to_string(), v);
        };
        put("event_id", r.event_id.clone().into());
        put("case_id", r.case_id.clone().into());
        put("session_id", r.session_id.clone().into());
        put("org_code", trust.org_code.clone().into());
        put("site", trust.sites[t.site].code.clone().into());
        put("theatre", t.code.clone().into());
        put("specialty", r.specialty.into());
        put("procedure_code", r.procedure_code.into());
        put("procedure_name", r.procedure_name.into());
        put("milestone", r.milestone.into());
        put("event_time", clock.rfc3339(r.time).into());
        put("planned_order", r.planned_order.into());
        put("planned_duration_min", r.planned_duration_min.into());
        if let Some(reason) = r.cancel_reason {
            put("cancel_reason", reason.into());
        }
        serde_json::Value::Object(object)
    }

    /// An ED attendance's fields in the extract's column order ([`ED_HEADER`]).
    pub fn ed_fields(
        &mut self,
        trust: &TrustModel,
        clock: &Clock,
        r: &crate::records::EdRecord,
    ) -> Vec<String> {
        let person = self.person(trust, r.patient.index);
        vec![
            attendance_id(trust, r.attendance),
            trust.sites[r.site].code.clone(),
            person.nhs_number.clone(),
            person.local_id.clone(),
            clock.uk_local(r.arrival),
            r.mode.name().to_string(),
            uk(
                clock,
                (r.mode == ArrivalMode::Ambulance).then_some(r.arrival),
            ),
            uk(clock, r.handover),
            r.acuity.to_string(),
            uk(clock, r.initial_assessment),
            uk(clock, r.seen),
            uk(clock, r.decision_to_admit),
            uk(clock, r.departure),
            r.disposal.map_or("", |d| d.name()).to_string(),
            r.age_band.to_string(),
            r.chief_complaint.to_string(),
        ]
    }

    /// An ED attendance as a JSON object with the extract's field names and its trust.
    pub fn ed_attendance(
        &mut self,
        trust: &TrustModel,
        clock: &Clock,
        r: &crate::records::EdRecord,
    ) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("org_code".into(), trust.org_code.clone().into());
        for (name, value) in ED_HEADER.iter().zip(self.ed_fields(trust, clock, r)) {
            if !value.is_empty() {
                object.insert((*name).to_string(), value.into());
            }
        }
        serde_json::Value::Object(object)
    }
}

/// Writes records as feed files under a folder.
pub struct FileSink {
    root: PathBuf,
    renderer: Renderer,
    writers: BTreeMap<PathBuf, BufWriter<File>>,
    /// The local day being simulated (daily files are named after it).
    today: Option<NaiveDate>,
}

/// Most files open at once; beyond it all are closed (and reopened for append when needed).
const MAX_OPEN: usize = 128;

impl FileSink {
    /// A sink writing under `root`, which must be missing or empty.
    pub fn create(root: &Path, seed: u64) -> Result<Self, SimError> {
        let io = |source| SimError::Io {
            path: root.display().to_string(),
            source,
        };
        if root.exists() && std::fs::read_dir(root).map_err(io)?.next().is_some() {
            return Err(SimError::OutputNotEmpty {
                path: root.display().to_string(),
            });
        }
        std::fs::create_dir_all(root).map_err(io)?;
        Ok(FileSink {
            root: root.to_path_buf(),
            renderer: Renderer::new(seed),
            writers: BTreeMap::new(),
            today: None,
        })
    }

    fn write(
        &mut self,
        path: PathBuf,
        header: Option<&[&str]>,
        text: &str,
    ) -> Result<(), SimError> {
        let io = |path: &Path, source| SimError::Io {
            path: path.display().to_string(),
            source,
        };
        if !self.writers.contains_key(&path) {
            if self.writers.len() >= MAX_OPEN {
                self.close_all()?;
            }
            let existed = path.exists();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            let mut writer = BufWriter::new(file);
            if !existed && let Some(header) = header {
                writer
                    .write_all(csv_line(header).as_bytes())
                    .map_err(|e| io(&path, e))?;
            }
            self.writers.insert(path.clone(), writer);
        }
        let writer = self.writers.get_mut(&path).expect("opened above");
        writer.write_all(text.as_bytes()).map_err(|e| io(&path, e))
    }

    fn close_all(&mut self) -> Result<(), SimError> {
        for (path, mut writer) in std::mem::take(&mut self.writers) {
            writer.flush().map_err(|source| SimError::Io {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(())
    }

    fn day_stamp(&self) -> String {
        self.today
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }
}

fn uk(clock: &Clock, t: Option<SimTime>) -> String {
    t.map(|t| clock.uk_local(t)).unwrap_or_default()
}

impl Sink for FileSink {
    fn record(
        &mut self,
        trust: &TrustModel,
        clock: &Clock,
        record: Record,
    ) -> Result<(), SimError> {
        let dir = self.root.join(&trust.org_code);
        let day = self.day_stamp();
        match record {
            Record::Adt(r) => {
                let text = self.renderer.hl7(trust, clock, &r);
                self.write(dir.join("adt").join(format!("{day}.hl7")), None, &text)
            }
            Record::Ed(r) => {
                let fields = self.renderer.ed_fields(trust, clock, &r);
                let line = csv_line(&fields.iter().map(String::as_str).collect::<Vec<_>>());
                let path = dir.join("ed").join(format!("ed_attendances_{day}.csv"));
                self.write(path, Some(ED_HEADER), &line)
            }
            Record::Session(r) => {
                let t = &trust.theatres[r.theatre];
                let date = clock.date(r.day);
                let line = csv_line(&[
                    &r.session_id,
                    &trust.sites[t.site].code,
                    &t.code,
                    &date.format("%d/%m/%Y").to_string(),
                    &clock.local(r.planned_start).format("%H:%M").to_string(),
                    &clock.local(r.planned_end).format("%H:%M").to_string(),
                    r.specialty,
                    if r.cancelled { "Y" } else { "N" },
                ]);
                let path = dir
                    .join("theatres")
                    .join(format!("theatre_sessions_{}.csv", date.format("%Y-%m")));
                self.write(path, Some(SESSION_HEADER), &line)
            }
            Record::TheatreEvent(r) => {
                let mut line = self.renderer.theatre_event(trust, clock, &r).to_string();
                line.push('\n');
                let path = dir
                    .join("theatres")
                    .join(format!("theatre_events_{day}.ndjson"));
                self.write(path, None, &line)
            }
            Record::Beds(r) => {
                let w = &trust.wards[r.ward];
                let line = csv_line(&[
                    &trust.sites[w.site].code,
                    &w.code,
                    w.role.ward_type(),
                    &r.beds.to_string(),
                    &r.valid_from.format("%d/%m/%Y").to_string(),
                    &r.valid_to
                        .map(|d| d.format("%d/%m/%Y").to_string())
                        .unwrap_or_default(),
                ]);
                self.write(dir.join("beds").join("beds.csv"), Some(BEDS_HEADER), &line)
            }
            Record::Shift(r) => {
                let date = clock.date(r.day);
                let line = csv_line(&[
                    &format!("{}-S{:09}", trust.org_code, r.shift_id),
                    &trust.sites[r.site].code,
                    r.ward.as_deref().unwrap_or(""),
                    r.staff_group,
                    &date.format("%d/%m/%Y").to_string(),
                    &format!("{:.2}", r.planned_hours),
                    &format!("{:.2}", r.worked_hours),
                    r.contract,
                ]);
                let path = dir
                    .join("roster")
                    .join(format!("roster_{}.csv", date.format("%Y-%m")));
                self.write(path, Some(ROSTER_HEADER), &line)
            }
            Record::Finance(r) => {
                let pounds = |p: i128| format!("{}.{:02}", p / 100, (p % 100).abs());
                let line = csv_line(&[
                    &r.month.format("%Y-%m").to_string(),
                    &r.cost_centre,
                    &trust.sites[r.site].code,
                    r.specialty.unwrap_or(""),
                    r.category,
                    &pounds(r.budget_pence),
                    &pounds(r.actual_pence),
                ]);
                let path = dir
                    .join("finance")
                    .join(format!("finance_ledger_{}.csv", r.month.format("%Y-%m")));
                self.write(path, Some(FINANCE_HEADER), &line)
            }
            // Annotations are written by people on bright's pages, never by a hospital
            // system's feed.
            // The feed files carry the records as finally sent; what ingest refused on the
            // way is what the lake's `dq_issues` holds.
            Record::Annotation(_) | Record::DqIssue(_) => Ok(()),
        }
    }

    fn end_of_day(&mut self, date: NaiveDate) -> Result<(), SimError> {
        self.close_all()?;
        self.today = Some(date + chrono::Duration::days(1));
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SimError> {
        self.close_all()
    }
}
