//! HL7 v2 ADT messages: from the text a patient administration system sends to one
//! `adt_events` row, and the acknowledgement it gets back.
//!
//! Parsing is structural: a message is split into segments, fields, repeats and components
//! (HL7's grammar has no escapes in its structure: an escaped separator travels as `\F\`), and
//! only the dozen fields bright keeps are split at all; values are decoded, and timestamps
//! read, by the `hl7-parser` crate. (Building its whole `Message`, every field, repeat and
//! component of PID included, took about two fifths of the listener's CPU a message.)
//!
//! What the fields mean follows the HL7 v2.4 UK profile as NHS trusts send it: the NHS
//! number in PID-3 with assigning authority `NHS` and type `NH`, the visit number in PV1-19
//! (cancellations match on it), the ward, bed and site in PV1-3, the treatment function in
//! PV1-10. Names, addresses and dates of birth are read past, never kept; identifiers become
//! keyed pseudonyms before anything else sees them.
//!
//! Problems are sorted the way senders act on them: a message bright cannot take at all
//! (not HL7, an unsupported version or message type) is rejected (`AR`), one whose content is
//! wrong or cannot be true (a missing visit number or patient identifier, a malformed time or
//! one outside the plausible window, a value longer than its column) is an application error
//! (`AE`) whose `ERR` segment names the field. Both are answered, neither is stored.

use std::fmt::Write as _;

use bright_engine::arrow::datatypes::Date32Type;
use bright_engine::batch::BatchBuilder;
use bright_engine::pseudonym::{LOCAL_ID, NHS_NUMBER, PseudoKey};
use bright_engine::schema::{MAX_CODE_CHARS, Table, adt_events, common};
use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Utc};
use chrono_tz::Tz;
use hl7_parser::datetime::TimeStamp;
use hl7_parser::message::Separators;

/// ADT trigger events bright stores.
pub const SUPPORTED_EVENTS: [&str; 14] = [
    "A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13", "A21", "A22", "A28", "A31",
    "A40",
];

/// Events about a patient, not a visit: no visit number is needed.
const PERSON_EVENTS: [&str; 3] = ["A28", "A31", "A40"];

/// One ADT event as it goes into `adt_events` (times in microseconds since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdtEvent {
    pub event_id: String,
    pub event_type: String,
    pub event_time: i64,
    pub recorded_at: i64,
    pub patient_key: Option<String>,
    /// A40: the pseudonym of the record merged into `patient_key` (MRG-1).
    pub prior_patient_key: Option<String>,
    pub encounter_id: Option<String>,
    pub patient_class: Option<String>,
    pub org_code: String,
    pub site: Option<String>,
    pub ward: Option<String>,
    pub bed: Option<String>,
    pub specialty: Option<String>,
    pub admission_method: Option<String>,
    pub discharge_destination: Option<String>,
    /// PV1-44, the admission time the PAS holds for the visit (checked, not stored).
    pub admit_time: Option<i64>,
}

/// Clock skew tolerated between a sender and bright before a time counts as in the future.
const FUTURE_SLACK_MICROS: i64 = 3_600_000_000;

impl AdtEvent {
    /// Why the event looks wrong though it parses (stored all the same, and flagged to its
    /// owners): a time in the future, a discharge before the admission.
    pub fn suspicious(&self, now_micros: i64) -> Vec<String> {
        let mut found = Vec::new();
        let show = |t: i64| {
            DateTime::<Utc>::from_timestamp_micros(t).map_or_else(
                || t.to_string(),
                |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
            )
        };
        if self.event_time > now_micros + FUTURE_SLACK_MICROS {
            found.push(format!(
                "{} event time {} is in the future",
                self.event_type,
                show(self.event_time)
            ));
        }
        if self.event_type == "A03"
            && let Some(admitted) = self.admit_time
            && self.event_time < admitted
        {
            found.push(format!(
                "discharge at {} is before the admission at {} (PV1-44)",
                show(self.event_time),
                show(admitted)
            ));
        }
        found
    }

    /// Appends the event to a builder of `adt_events`, arrived on feed `source`.
    pub fn append_to(&self, builder: &mut BatchBuilder, source: &str) {
        let day = DateTime::<Utc>::from_timestamp_micros(self.event_time)
            .map(|t| Date32Type::from_naive_date(t.date_naive()))
            // Out of chrono's range cannot come from a parsed HL7 timestamp (years 0-9999).
            .unwrap_or_default();
        builder
            .row()
            .text(&self.event_id)
            .text(&self.event_type)
            .timestamp(self.event_time)
            .timestamp(self.recorded_at)
            .opt_text(self.patient_key.as_deref())
            .opt_text(self.encounter_id.as_deref())
            .opt_text(self.patient_class.as_deref())
            .text(&self.org_code)
            .opt_text(self.site.as_deref())
            .opt_text(self.ward.as_deref())
            .opt_text(self.bed.as_deref())
            .opt_text(self.specialty.as_deref())
            .opt_text(self.admission_method.as_deref())
            .opt_text(self.discharge_destination.as_deref())
            .text(source)
            .opt_text(self.prior_patient_key.as_deref())
            .date(day)
            .end();
    }
}

/// The header fields an acknowledgement needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// MSH-3.
    pub sending_application: String,
    /// MSH-4.
    pub sending_facility: String,
    /// MSH-9.2, e.g. `A01`.
    pub trigger: String,
    /// MSH-10, echoed in MSA-2.
    pub control_id: String,
    /// MSH-12.
    pub version: String,
}

/// HL7 acknowledgement codes (table 0008, original mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckCode {
    /// Accepted: durable in bright.
    Accept,
    /// Application error: the content is wrong; resending the same message will fail again.
    Error,
    /// Rejected: bright does not take this kind of message.
    Reject,
}

impl AckCode {
    /// MSA-1.
    pub fn code(self) -> &'static str {
        match self {
            AckCode::Accept => "AA",
            AckCode::Error => "AE",
            AckCode::Reject => "AR",
        }
    }
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", .field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct Hl7Error {
    /// AE or AR.
    pub ack: AckCode,
    /// The field at fault, e.g. `PV1-19`, when there is one.
    pub field: Option<String>,
    /// HL7 error code (table 0357): 100 segment sequence, 101 required field missing, 102
    /// data type error, 103 table value not found, 200 unsupported message type, 201
    /// unsupported event code, 203 unsupported version.
    pub code: u16,
    /// Plain words for the sender's interface team.
    pub reason: String,
}

impl Hl7Error {
    fn content(field: &str, code: u16, reason: impl Into<String>) -> Self {
        Hl7Error {
            ack: AckCode::Error,
            field: Some(field.to_string()),
            code,
            reason: reason.into(),
        }
    }

    fn reject(field: Option<&str>, code: u16, reason: impl Into<String>) -> Self {
        Hl7Error {
            ack: AckCode::Reject,
            field: field.map(str::to_string),
            code,
            reason: reason.into(),
        }
    }
}

/// Settings for reading ADT.
#[derive(Debug, Clone)]
pub struct AdtConfig {
    /// Clock of times sent without an offset (HL7 allows both).
    pub time_zone: Tz,
    /// Pseudonymisation key for NHS numbers and local ids.
    pub key: PseudoKey,
    /// The times a message may hold.
    pub window: crate::transforms::TimeWindow,
}

/// The messages of a file as interface engines and PAS exports write them: MLLP-framed or
/// not, segments ending in CR, LF or CRLF, one message starting at each `MSH` segment.
pub fn split_messages(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, '\u{0B}' | '\u{1C}'))
        .collect();
    let mut messages: Vec<String> = Vec::new();
    for segment in cleaned.split(['\r', '\n']).map(str::trim_end) {
        if segment.is_empty() {
            continue;
        }
        if segment.starts_with("MSH") || messages.is_empty() {
            messages.push(String::new());
        }
        if let Some(message) = messages.last_mut() {
            message.push_str(segment);
            message.push('\r');
        }
    }
    messages
}

/// Reads the header, so that even a message whose body is wrong can be acknowledged.
pub fn header(text: &str) -> Result<Header, Hl7Error> {
    let message = parse(text)?;
    read_header(&message)
}

/// A message split into its segments and their fields.
struct Message<'m> {
    separators: Separators,
    /// MSH first.
    segments: Vec<Segment<'m>>,
}

/// One segment of a [`Message`].
struct Segment<'m> {
    /// The name, then the fields as sent (for MSH, from MSH-2 on).
    fields: Vec<&'m str>,
    /// MSH-1, when this is MSH: the field separator itself.
    msh_1: Option<&'m str>,
    separators: Separators,
}

impl<'m> Segment<'m> {
    fn name(&self) -> &'m str {
        self.fields[0]
    }

    /// Field `n` (`SEG-n`) as sent, repeats and all; `None` past the segment's last field.
    fn field(&self, n: usize) -> Option<&'m str> {
        match (self.msh_1, n) {
            (_, 0) => None,
            (Some(separator), 1) => Some(separator),
            // MSH's fields start at MSH-2.
            (Some(_), n) => self.fields.get(n - 1).copied(),
            (None, n) => self.fields.get(n).copied(),
        }
    }

    /// The repeats of field `n`.
    fn repeats(&self, n: usize) -> impl Iterator<Item = &'m str> + use<'m> {
        let repetition = self.separators.repetition;
        self.field(n)
            .into_iter()
            .flat_map(move |f| f.split(repetition))
    }

    /// Component `c` (1-based) of `field`'s first repeat (or of a repeat).
    fn component(&self, field: &'m str, c: usize) -> Option<&'m str> {
        let first = field.split(self.separators.repetition).next()?;
        first
            .split(self.separators.component)
            .nth(c.checked_sub(1)?)
    }
}

impl<'m> Message<'m> {
    /// The first segment named `name`.
    fn segment(&self, name: &str) -> Option<&Segment<'m>> {
        self.segments.iter().find(|s| s.name() == name)
    }
}

fn parse(text: &str) -> Result<Message<'_>, Hl7Error> {
    if !text.starts_with("MSH") {
        return Err(Hl7Error::reject(
            Some("MSH"),
            100,
            "not an HL7 v2 message: it must start with an MSH segment",
        ));
    }
    let text = text.trim_end_matches(['\r', '\n']);
    // MSH-1 and MSH-2: the field separator, then the component, repetition, escape and
    // subcomponent characters.
    let mut given = text[3..].chars();
    let mut next = || given.next().filter(char::is_ascii);
    let (Some(field), Some(component), Some(repetition), Some(escape), Some(subcomponent)) =
        (next(), next(), next(), next(), next())
    else {
        return Err(Hl7Error::reject(
            Some("MSH"),
            100,
            "not a valid HL7 v2 message (MSH-1 and MSH-2 must give five ASCII separators)",
        ));
    };
    let separators = Separators {
        field,
        component,
        repetition,
        escape,
        subcomponent,
        lenient_newlines: true,
    };
    // Senders and files differ in line endings; segments are split on any of them. A
    // segment is a name of three letters or digits, then its fields; reading stops before
    // anything else.
    let mut segments = Vec::with_capacity(8);
    for segment in text.split(['\r', '\n']).filter(|s| !s.is_empty()) {
        let mut chars = segment.chars();
        let named = chars
            .by_ref()
            .take(3)
            .filter(|c| c.is_alphanumeric())
            .count()
            == 3;
        if !named || chars.next() != Some(field) {
            break;
        }
        segments.push(Segment {
            fields: segment.split(field).collect(),
            msh_1: segment.starts_with("MSH").then(|| &segment[3..4]),
            separators,
        });
    }
    Ok(Message {
        separators,
        segments,
    })
}

/// A field (`SEG-n`), a component of it (`SEG-n.c`), decoded; `None` when empty or absent.
fn value(message: &Message<'_>, segment: &str, field: usize, component: usize) -> Option<String> {
    let s = message.segment(segment)?;
    let f = s.field(field)?;
    let raw = if component == 0 {
        f
    } else {
        s.component(f, component)?
    };
    // Most values hold no escape sequence: they are taken as they are, without decoding.
    let decoded = if raw.contains(message.separators.escape) {
        std::borrow::Cow::Owned(message.separators.decode(raw).to_string())
    } else {
        std::borrow::Cow::Borrowed(raw)
    };
    let trimmed = decoded.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn read_header(message: &Message<'_>) -> Result<Header, Hl7Error> {
    let required = |field: usize, component: usize, name: &str| {
        value(message, "MSH", field, component)
            .ok_or_else(|| Hl7Error::reject(Some(name), 101, "required field is empty"))
    };
    let control_id = required(10, 0, "MSH-10")?;
    Ok(Header {
        sending_application: value(message, "MSH", 3, 1).unwrap_or_default(),
        sending_facility: value(message, "MSH", 4, 1).unwrap_or_default(),
        trigger: value(message, "MSH", 9, 2).unwrap_or_default(),
        control_id,
        version: required(12, 1, "MSH-12")?,
    })
}

/// Parses one ADT message into the row bright stores, or says why not.
pub fn parse_adt(text: &str, config: &AdtConfig) -> Result<(Header, AdtEvent), Hl7Error> {
    let message = parse(text)?;
    let header = read_header(&message)?;
    if !["2.3", "2.4", "2.5"].iter().any(|v| {
        (header.version.strip_prefix(v))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }) {
        return Err(Hl7Error::reject(
            Some("MSH-12"),
            203,
            format!(
                "version {} is not supported (2.3 to 2.5 are)",
                header.version
            ),
        ));
    }
    let message_type = value(&message, "MSH", 9, 1).unwrap_or_default();
    if message_type != "ADT" {
        return Err(Hl7Error::reject(
            Some("MSH-9"),
            200,
            format!("message type '{message_type}' is not supported (ADT is)"),
        ));
    }
    let trigger = header.trigger.as_str();
    if !SUPPORTED_EVENTS.contains(&trigger) {
        return Err(Hl7Error::reject(
            Some("MSH-9"),
            201,
            format!("ADT event '{trigger}' is not supported"),
        ));
    }
    if header.sending_facility.is_empty() {
        return Err(Hl7Error::content(
            "MSH-4",
            101,
            "the sending facility (the trust's ODS code) is empty",
        ));
    }
    for (field, text) in [
        ("MSH-3", &header.sending_application),
        ("MSH-4", &header.sending_facility),
        ("MSH-10", &header.control_id),
    ] {
        bounded(field, text, MAX_CODE_CHARS)?;
    }
    let bounds = config.window.at(Utc::now());
    let time = |segment: &str, field: usize| -> Result<Option<i64>, Hl7Error> {
        match value(&message, segment, field, 1) {
            None => Ok(None),
            // The field's name is written only for an error.
            Some(text) => crate::transforms::too_long(&text, MAX_CODE_CHARS)
                .map_or_else(|| micros(&text, config.time_zone), Err)
                .and_then(|t| bounds.check_time(t))
                .map(Some)
                .map_err(|reason| Hl7Error::content(&format!("{segment}-{field}"), 102, reason)),
        }
    };
    // Every value stored is bounded by its column's length.
    let text = |segment: &str, field: usize, component: usize, column: &str| {
        let found = value(&message, segment, field, component);
        if let Some(text) = &found {
            let name = if component > 1 {
                format!("{segment}-{field}.{component}")
            } else {
                format!("{segment}-{field}")
            };
            bounded(&name, text, Table::AdtEvents.max_chars(column))?;
        }
        Ok::<_, Hl7Error>(found)
    };
    // EVN-2 is when the system recorded the event, EVN-6 when it happened; MSH-7 stands in
    // for a missing EVN-2 (some senders leave EVN out of updates).
    let recorded_at = match time("EVN", 2)? {
        Some(t) => t,
        None => time("MSH", 7)?
            .ok_or_else(|| Hl7Error::content("EVN-2", 101, "no recorded time in EVN-2 or MSH-7"))?,
    };
    let event_time = time("EVN", 6)?.unwrap_or(recorded_at);

    let encounter_id = text("PV1", 19, 1, adt_events::ENCOUNTER_ID)?;
    if encounter_id.is_none() && !PERSON_EVENTS.contains(&trigger) {
        return Err(Hl7Error::content(
            "PV1-19",
            101,
            format!("{trigger} needs the visit number (PV1-19)"),
        ));
    }
    let ward = text("PV1", 3, 1, adt_events::WARD)?;
    if ward.is_none() && matches!(trigger, "A01" | "A02") {
        return Err(Hl7Error::content(
            "PV1-3",
            101,
            format!("{trigger} needs the ward the patient is now on (PV1-3.1)"),
        ));
    }
    let patient_class = match value(&message, "PV1", 2, 1).as_deref() {
        None => None,
        Some(code) => Some(
            patient_class(code)
                .ok_or_else(|| {
                    Hl7Error::content(
                        "PV1-2",
                        103,
                        format!("patient class '{code}' is not in HL7 table 0004"),
                    )
                })?
                .to_string(),
        ),
    };
    // Every ADT event bright takes is about a patient: without one, an admission or a
    // discharge would be counted against nobody and could never be corrected or merged.
    let patient_key = pseudonym_of(&message, "PID", 3, &header.sending_facility, &config.key)
        .ok_or_else(|| {
            Hl7Error::content(
                "PID-3",
                101,
                format!(
                    "{trigger} needs the patient's identifier (PID-3: NHS number or local number)"
                ),
            )
        })?;
    // A merge names the record that goes away in MRG-1; without it the merge means nothing.
    let prior_patient_key = if trigger == "A40" {
        Some(
            pseudonym_of(&message, "MRG", 1, &header.sending_facility, &config.key).ok_or_else(
                || Hl7Error::content("MRG-1", 101, "A40 needs the merged-away patient (MRG-1)"),
            )?,
        )
    } else {
        None
    };
    let event = AdtEvent {
        event_id: bright_engine::schema::adt_events::event_id(
            &header.sending_facility,
            &header.sending_application,
            &header.control_id,
        ),
        event_type: trigger.to_string(),
        event_time,
        recorded_at,
        patient_key: Some(patient_key),
        prior_patient_key,
        encounter_id,
        patient_class,
        org_code: header.sending_facility.clone(),
        site: text("PV1", 3, 4, common::SITE)?,
        ward,
        bed: text("PV1", 3, 3, adt_events::BED)?,
        specialty: text("PV1", 10, 1, adt_events::SPECIALTY)?,
        admission_method: text("PV1", 4, 1, adt_events::ADMISSION_METHOD)?,
        discharge_destination: text("PV1", 37, 1, adt_events::DISCHARGE_DESTINATION)?,
        admit_time: time("PV1", 44)?,
    };
    Ok((header, event))
}

/// Refuses a value longer than `max` characters, naming its field but not quoting it.
fn bounded(field: &str, text: &str, max: usize) -> Result<(), Hl7Error> {
    match crate::transforms::too_long(text, max) {
        Some(reason) => Err(Hl7Error::content(field, 102, reason)),
        None => Ok(()),
    }
}

/// `adt_events.patient_class` for PV1-2 (HL7 table 0004; `D` is the NHS day case).
fn patient_class(code: &str) -> Option<&'static str> {
    Some(match code {
        "I" => "inpatient",
        "O" => "outpatient",
        "E" => "emergency",
        "D" => "day_case",
        "P" => "preadmit",
        "R" => "recurring",
        "B" => "obstetrics",
        _ => return None,
    })
}

/// The pseudonym of the patient identified in a patient identifier list (PID-3, MRG-1): from
/// the NHS number when the list has one, else from the local hospital number (namespaced by
/// the sending organisation).
fn pseudonym_of(
    message: &Message<'_>,
    segment: &str,
    field: usize,
    org: &str,
    key: &PseudoKey,
) -> Option<String> {
    let segment = message.segment(segment)?;
    let mut local = None;
    for id in segment.repeats(field) {
        let part = |n: usize| {
            segment
                .component(id, n)
                .map(|c| message.separators.decode(c).to_string())
                .unwrap_or_default()
        };
        let number = part(1);
        if number.trim().is_empty() {
            continue;
        }
        if part(4) == "NHS" || part(5) == "NH" {
            return Some(key.patient_key(NHS_NUMBER, &number));
        }
        if local.is_none() {
            local = Some(number);
        }
    }
    local.map(|id| key.patient_key(LOCAL_ID, &format!("{org}/{}", id.trim())))
}

/// An HL7 timestamp in microseconds since the epoch (UTC). Without an offset it is the
/// trust's wall clock; a time that occurs twice when clocks go back is taken as the first.
fn micros(text: &str, zone: Tz) -> Result<i64, String> {
    let stamp: TimeStamp = text
        .parse()
        .map_err(|e| format!("'{text}' is not an HL7 timestamp ({e})"))?;
    let utc: DateTime<Utc> = if stamp.offset.is_some() {
        let fixed: LocalResult<DateTime<FixedOffset>> = stamp
            .try_into()
            .map_err(|e| format!("'{text}' is not a valid time ({e})"))?;
        fixed
            .earliest()
            .ok_or_else(|| format!("'{text}' is not a valid time"))?
            .with_timezone(&Utc)
    } else {
        let naive: NaiveDateTime = stamp
            .try_into()
            .map_err(|e| format!("'{text}' is not a valid time ({e})"))?;
        crate::transforms::on_trust_clock(naive, zone)
            .ok_or_else(|| format!("'{text}' does not exist on the trust's clock"))?
    };
    Ok(utc.timestamp_micros())
}

/// The acknowledgement for a message with header `original` (default when even the header
/// could not be read). `error` fills MSA-3 and an ERR segment.
pub fn ack(
    original: &Header,
    code: AckCode,
    error: Option<&Hl7Error>,
    now: DateTime<Utc>,
) -> String {
    let separators = Separators::default();
    let escape = |s: &str| separators.encode(s).to_string();
    let version = if original.version.is_empty() {
        "2.4"
    } else {
        original.version.as_str()
    };
    // A control id longer than bright takes is refused (MSH-10); echoing all of it would
    // send a broken sender back an answer larger than the message, which MLLP clients that
    // read one buffer cut short. Its first characters still identify it.
    let control_id = crate::transforms::first_chars(&original.control_id, MAX_CODE_CHARS);
    let mut out = String::new();
    // MSH-10 of the ACK: unique per ACK; tying it to the original keeps retries traceable.
    let _ = write!(
        out,
        "MSH|^~\\&|BRIGHT|BRIGHT|{}|{}|{}||ACK^{}^ACK|ACK{}|P|{}\r",
        escape(&original.sending_application),
        escape(&original.sending_facility),
        now.format("%Y%m%d%H%M%S%z"),
        escape(&original.trigger),
        escape(control_id),
        escape(version),
    );
    let text = error.map(|e| escape(&e.to_string())).unwrap_or_default();
    let _ = write!(out, "MSA|{}|{}|{}\r", code.code(), escape(control_id), text);
    if let Some(e) = error {
        // ERR-1 (v2.3/2.4 receivers) and ERR-2..4, 8 (v2.5): location, code, severity, text.
        let (segment, field) = e
            .field
            .as_deref()
            .and_then(|f| f.split_once('-'))
            .map_or(("", ""), |(s, n)| (s, n));
        let label = escape(&e.reason);
        let _ = write!(
            out,
            "ERR|{segment}^1^{field}^{code}&{label}&HL70357|{segment}^1^{field}|{code}^{label}^HL70357|E||||{label}\r",
            code = e.code,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AdtConfig {
        AdtConfig {
            time_zone: chrono_tz::Europe::London,
            key: PseudoKey::new(b"a test key of sixteen+ bytes".to_vec()).expect("key"),
            window: crate::transforms::TimeWindow::default(),
        }
    }

    const A01: &str = "MSH|^~\\&|PAS|RXX|BRIGHT|RXX|20250331090500+0100||ADT^A01^ADT_A01|MSG0000000001|P|2.4|||AL|NE|GBR|8859/1|EN\r\
EVN|A01|20250331090500+0100|||SIMPAS|20250331090000+0100\r\
PID|1||9434765919^^^NHS^NH~H123^^^RXX^MR||SMITH^JANE||19700101|F|||1 HIGH ST^^^^L1 1AA\r\
PV1|1|I|WD1^^B04^S1|21||||||300|||||||||RXXV000000001\r";

    fn replace(text: &str, from: &str, to: &str) -> String {
        assert!(text.contains(from), "{from}");
        text.replacen(from, to, 1)
    }

    #[test]
    fn an_admission_becomes_one_row_without_identifiers() {
        let (header, event) = parse_adt(A01, &config()).expect("parses");
        assert_eq!(header.control_id, "MSG0000000001");
        assert_eq!(event.event_id, "RXX/PAS/MSG0000000001");
        assert_eq!(event.event_type, "A01");
        // 09:00 BST is 08:00 UTC; recorded at 09:05 BST.
        assert_eq!(
            event.event_time,
            "2025-03-31T08:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("t")
                .timestamp_micros()
        );
        assert_eq!(
            event.recorded_at,
            "2025-03-31T08:05:00Z"
                .parse::<DateTime<Utc>>()
                .expect("t")
                .timestamp_micros()
        );
        assert_eq!(
            event.patient_key.as_deref(),
            Some(config().key.patient_key(NHS_NUMBER, "9434765919").as_str())
        );
        assert_eq!(event.encounter_id.as_deref(), Some("RXXV000000001"));
        assert_eq!(event.patient_class.as_deref(), Some("inpatient"));
        assert_eq!(event.org_code, "RXX");
        assert_eq!(event.site.as_deref(), Some("S1"));
        assert_eq!(event.ward.as_deref(), Some("WD1"));
        assert_eq!(event.bed.as_deref(), Some("B04"));
        assert_eq!(event.specialty.as_deref(), Some("300"));
        assert_eq!(event.admission_method.as_deref(), Some("21"));
        assert_eq!(event.discharge_destination, None);
        let row = format!("{event:?}");
        for secret in ["9434765919", "SMITH", "JANE", "19700101", "HIGH ST", "H123"] {
            assert!(!row.contains(secret), "{secret} reached the row: {row}");
        }
    }

    #[test]
    fn escaped_separators_in_values_are_decoded() {
        // A ward named "A&E" and a bed "1|2" travel escaped; a plain value is taken as sent.
        let text = replace(A01, "PV1|1|I|WD1^^B04^S1|", "PV1|1|I|A\\T\\E^^1\\F\\2^S1|");
        let (_, event) = parse_adt(&text, &config()).expect("parses");
        assert_eq!(event.ward.as_deref(), Some("A&E"));
        assert_eq!(event.bed.as_deref(), Some("1|2"));
        assert_eq!(event.site.as_deref(), Some("S1"));
    }

    #[test]
    fn times_without_an_offset_are_on_the_trust_clock() {
        let text = replace(A01, "|SIMPAS|20250331090000+0100", "|SIMPAS|20250331090000");
        let (_, event) = parse_adt(&text, &config()).expect("parses");
        assert_eq!(
            event.event_time,
            "2025-03-31T08:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("t")
                .timestamp_micros()
        );
        // In winter the trust's clock is UTC.
        let text = replace(A01, "|SIMPAS|20250331090000+0100", "|SIMPAS|20250115090000");
        let (_, event) = parse_adt(&text, &config()).expect("parses");
        assert_eq!(
            event.event_time,
            "2025-01-15T09:00:00Z"
                .parse::<DateTime<Utc>>()
                .expect("t")
                .timestamp_micros()
        );
    }

    #[test]
    fn without_an_nhs_number_the_local_id_is_pseudonymised_per_trust() {
        let text = replace(A01, "9434765919^^^NHS^NH~", "");
        let (_, event) = parse_adt(&text, &config()).expect("parses");
        let key = event.patient_key.expect("a key");
        assert_eq!(key, config().key.patient_key(LOCAL_ID, "RXX/H123"));
        assert_ne!(key, config().key.patient_key(NHS_NUMBER, "H123"));
    }

    #[test]
    fn content_errors_name_the_field() {
        let cases = [
            (replace(A01, "RXXV000000001", ""), "PV1-19", 101),
            (replace(A01, "|WD1^^B04^S1|", "||"), "PV1-3", 101),
            (
                replace(A01, "|SIMPAS|20250331090000+0100", "|SIMPAS|2025-03-31"),
                "EVN-6",
                102,
            ),
            (replace(A01, "PV1|1|I|", "PV1|1|X|"), "PV1-2", 103),
            (replace(A01, "|PAS|RXX|", "|PAS||"), "MSH-4", 101),
            // Regression: these were acknowledged AA and stored (issue: what gets in must be
            // true): an admission without a patient, year-0 and far-future times, a 900 KB
            // ward, a 100 KB control id.
            (
                replace(A01, "PID|1||9434765919^^^NHS^NH~H123^^^RXX^MR|", "PID|1|||"),
                "PID-3",
                101,
            ),
            (
                A01.split('\r')
                    .filter(|s| !s.is_empty() && !s.starts_with("PID"))
                    .map(|s| format!("{s}\r"))
                    .collect(),
                "PID-3",
                101,
            ),
            (
                replace(A01, "EVN|A01|20250331090500+0100", "EVN|A01|00000101000000"),
                "EVN-2",
                102,
            ),
            (
                replace(A01, "|SIMPAS|20250331090000+0100", "|SIMPAS|22000101000000"),
                "EVN-6",
                102,
            ),
            (
                replace(
                    A01,
                    "|WD1^^B04^S1|",
                    &format!("|{}^^B04^S1|", "W".repeat(900_000)),
                ),
                "PV1-3",
                102,
            ),
            (
                replace(
                    A01,
                    "|MSG0000000001|",
                    &format!("|{}|", "C".repeat(100_000)),
                ),
                "MSH-10",
                102,
            ),
        ];
        for (text, field, code) in cases {
            let e = parse_adt(&text, &config()).expect_err(field);
            assert_eq!(e.ack, AckCode::Error, "{field}: {e}");
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert_eq!(e.code, code, "{e}");
        }
    }

    #[test]
    fn messages_bright_does_not_take_are_rejected() {
        let cases = [
            (
                replace(A01, "ADT^A01^ADT_A01", "ORU^R01^ORU_R01"),
                "MSH-9",
                200,
            ),
            (replace(A01, "ADT^A01^ADT_A01", "ADT^A99"), "MSH-9", 201),
            (replace(A01, "|P|2.4|", "|P|2.6|"), "MSH-12", 203),
            (replace(A01, "|MSG0000000001|", "||"), "MSH-10", 101),
            ("PID|1||123\r".to_string(), "MSH", 100),
        ];
        for (text, field, code) in cases {
            let e = parse_adt(&text, &config()).expect_err(field);
            assert_eq!(e.ack, AckCode::Reject, "{field}: {e}");
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert_eq!(e.code, code, "{e}");
        }
    }

    #[test]
    fn suspicious_events_are_named_but_still_parse() {
        let now = "2025-03-31T08:10:00Z"
            .parse::<DateTime<Utc>>()
            .expect("t")
            .timestamp_micros();
        let (_, event) = parse_adt(A01, &config()).expect("parses");
        assert!(event.suspicious(now).is_empty());
        let future = replace(
            A01,
            "|SIMPAS|20250331090000+0100",
            "|SIMPAS|20260331090000+0100",
        );
        let (_, event) = parse_adt(&future, &config()).expect("parses");
        let found = event.suspicious(now);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("in the future"), "{found:?}");
        // A discharge timed before the admission the PAS holds (PV1-44).
        let a03 = replace(A01, "ADT^A01^ADT_A01", "ADT^A03^ADT_A03");
        let admitted = format!("RXXV000000001{}20250331100000+0100", "|".repeat(25));
        let a03 = replace(&a03, "RXXV000000001", &admitted);
        let (_, event) = parse_adt(&a03, &config()).expect("parses");
        let found = event.suspicious(now);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("before the admission"), "{found:?}");
    }

    #[test]
    fn fields_are_found_where_a_full_parse_puts_them() {
        // hl7-parser builds every field, repeat and component; bright splits only the fields it
        // reads. Both must see the same values, whatever the separators and line endings.
        let merge = "MSH|^~\\&|PAS|RXX|BRIGHT|RXX|20250331090500||ADT^A40^ADT_A39|M2|P|2.4\r\
EVN|A40|20250331090500\r\
PID|1||9434765919^^^NHS^NH~H123^^^RXX^MR\r\
MRG|T000001^^^RXX^MR~^^^^\r\
PV1|1|I|||||||||||||||||||\r";
        let messages = [
            A01.to_string(),
            A01.replace('\r', "\n"),
            A01.replace('\r', "\r\n"),
            merge.to_string(),
            // Other separators, as MSH-1 and MSH-2 may name them.
            A01.replace('|', "#")
                .replace('^', "$")
                .replace('~', "*")
                .replace('&', "@"),
            // Escapes, subcomponents, empty and trailing fields, a Z-segment and NK1.
            replace(
                A01,
                "PV1|1|I|WD1^^B04^S1|",
                "PV1|1|I|A\\T\\E^^1\\F\\2&x^S1~W2^^^S2||",
            ) + "NK1|1|DOE^JOHN|||\rZXY|a^b~c&d||\r",
            // Reading stops at a segment that is not one (a name of three letters or digits).
            format!("{A01}P-1|x|y\rPV2|1\r"),
            format!("{A01}ZZZ\rPV2|1\r"),
        ];
        for text in &messages {
            let trimmed = text.trim_end_matches(['\r', '\n']);
            let full = hl7_parser::Message::parse_with_lenient_newlines(trimmed, true)
                .expect("the full parse reads it");
            let ours = parse(text).expect("bright reads it");
            let names: Vec<&str> = full.segments().map(|s| s.name).collect();
            let read: Vec<&str> = ours.segments.iter().map(Segment::name).collect();
            assert_eq!(read, names, "{text:?}");
            for segment in full.segments() {
                let mine = ours.segment(segment.name).expect("found");
                if full.segment(segment.name).map(|s| s.range.clone())
                    != Some(segment.range.clone())
                {
                    // A later segment of the same name: looked up by name, the first is found.
                    continue;
                }
                for n in 1..segment.fields().count() + 3 {
                    let field = segment.field(n);
                    assert_eq!(
                        mine.field(n),
                        field.map(|f| f.raw_value()),
                        "{}-{n} in {text:?}",
                        segment.name
                    );
                    let Some(field) = field else { continue };
                    if segment.name == "MSH" && n <= 2 {
                        // The separators themselves: never split.
                        continue;
                    }
                    for c in 1..8 {
                        assert_eq!(
                            mine.field(n).and_then(|f| mine.component(f, c)),
                            field.component(c).map(|c| c.raw_value()),
                            "{}-{n}.{c} in {text:?}",
                            segment.name
                        );
                    }
                    let repeats: Vec<&str> = field.repeats().map(|r| r.raw_value()).collect();
                    assert_eq!(mine.repeats(n).collect::<Vec<_>>(), repeats);
                }
            }
        }
        for (text, why) in [
            ("MSH|^~", "five ASCII separators"),
            ("MSH|^~\\é|", "five ASCII separators"),
            ("EVN|A01", "must start with an MSH segment"),
        ] {
            let error = parse(text).err().expect("refused");
            assert!(error.reason.contains(why), "{text}: {}", error.reason);
            assert_eq!(error.ack, AckCode::Reject);
        }
    }

    #[test]
    fn files_split_into_messages_whatever_their_line_endings() {
        let two = format!("{A01}{}", A01.replace("MSG0000000001", "MSG0000000002"));
        let crlf = two.replace('\r', "\r\n");
        let framed = format!(
            "\u{0B}{A01}\u{1C}\r\n\u{0B}{}\u{1C}\r",
            A01.replace("MSG0000000001", "MSG0000000002")
        );
        for text in [two.clone(), crlf, framed, two.replace('\r', "\n")] {
            let messages = split_messages(&text);
            assert_eq!(messages.len(), 2, "{text:?}");
            assert_eq!(messages[0], A01);
            let (header, _) = parse_adt(&messages[1], &config()).expect("parses");
            assert_eq!(header.control_id, "MSG0000000002");
        }
    }

    #[test]
    fn a_person_update_needs_no_visit() {
        let text = replace(A01, "ADT^A01^ADT_A01", "ADT^A31^ADT_A05");
        let text = replace(&text, "RXXV000000001", "");
        let (_, event) = parse_adt(&text, &config()).expect("parses");
        assert_eq!(event.event_type, "A31");
        assert_eq!(event.encounter_id, None);
    }

    #[test]
    fn a_merge_keeps_both_patients_pseudonymised() {
        let text = replace(A01, "ADT^A01^ADT_A01", "ADT^A40^ADT_A39");
        let text = replace(&text, "RXXV000000001", "");
        let merge = format!("{text}MRG|H999^^^RXX^MR\r");
        let (_, event) = parse_adt(&merge, &config()).expect("parses");
        assert_eq!(event.event_type, "A40");
        assert_eq!(
            event.patient_key.as_deref(),
            Some(config().key.patient_key(NHS_NUMBER, "9434765919").as_str())
        );
        assert_eq!(
            event.prior_patient_key.as_deref(),
            Some(config().key.patient_key(LOCAL_ID, "RXX/H999").as_str())
        );
        let stored = format!("{event:?}");
        assert!(
            !stored.contains("H999") && !stored.contains("9434765919"),
            "{stored}"
        );

        let err = parse_adt(&text, &config()).expect_err("a merge without MRG-1");
        assert_eq!(err.field.as_deref(), Some("MRG-1"), "{err:?}");
        assert_eq!(err.ack, AckCode::Error);
        let (_, admission) = parse_adt(A01, &config()).expect("parses");
        assert_eq!(admission.prior_patient_key, None);
    }

    /// A value of an ACK as an independent parser (hl7-parser's full parse) reads it.
    fn full_value(
        message: &hl7_parser::Message<'_>,
        segment: &str,
        field: usize,
        component: usize,
    ) -> Option<String> {
        let f = message.segment(segment)?.field(field)?;
        let raw = if component == 0 {
            f.raw_value()
        } else {
            f.component(component)?.raw_value()
        };
        let decoded = message.separators.decode(raw).to_string();
        let trimmed = decoded.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }

    #[test]
    fn acks_echo_the_control_id_and_explain_errors() {
        let now = "2025-03-31T08:05:01Z".parse::<DateTime<Utc>>().expect("t");
        let (header, _) = parse_adt(A01, &config()).expect("parses");
        let ok = ack(&header, AckCode::Accept, None, now);
        let parsed = hl7_parser::Message::parse(ok.trim_end_matches('\r')).expect("our ACK parses");
        assert_eq!(full_value(&parsed, "MSA", 1, 0).as_deref(), Some("AA"));
        assert_eq!(
            full_value(&parsed, "MSA", 2, 0).as_deref(),
            Some("MSG0000000001")
        );
        assert_eq!(full_value(&parsed, "MSH", 9, 1).as_deref(), Some("ACK"));
        assert_eq!(full_value(&parsed, "MSH", 5, 0).as_deref(), Some("PAS"));
        assert!(parsed.segment("ERR").is_none());

        let text = replace(A01, "RXXV000000001", "");
        let e = parse_adt(&text, &config()).expect_err("no visit");
        let bad = ack(&header, e.ack, Some(&e), now);
        let parsed =
            hl7_parser::Message::parse(bad.trim_end_matches('\r')).expect("our ACK parses");
        assert_eq!(full_value(&parsed, "MSA", 1, 0).as_deref(), Some("AE"));
        assert_eq!(
            full_value(&parsed, "ERR", 2, 0).as_deref(),
            Some("PV1^1^19")
        );
        assert_eq!(full_value(&parsed, "ERR", 3, 1).as_deref(), Some("101"));
        assert!(
            full_value(&parsed, "MSA", 3, 0)
                .expect("text")
                .contains("PV1-19: A01 needs the visit number")
        );
        // Separators inside the reason are escaped, not taken as structure.
        let odd = Hl7Error::content("PV1-2", 103, "class 'A|B^C' is unknown");
        let escaped = ack(&header, odd.ack, Some(&odd), now);
        let parsed =
            hl7_parser::Message::parse(escaped.trim_end_matches('\r')).expect("our ACK parses");
        assert_eq!(
            full_value(&parsed, "ERR", 8, 0).as_deref(),
            Some("class 'A|B^C' is unknown")
        );
    }
}
