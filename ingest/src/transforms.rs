//! Records of the non-HL7 feeds (ED attendances, theatre events and lists, rosters, the bed
//! base, the ledger) to rows of their canonical tables.
//!
//! A record is a set of named text fields, whatever it arrived as (a JSON object, a CSV line,
//! a cell of a file extract), so every source validates the same way. Field names are the
//! table's column names; the names trusts' extracts use (`arrival` for `arrival_time`,
//! `nhs_number` for the patient) are accepted too. Times are RFC 3339 with an offset, or the
//! trust's wall clock as extracts write it (`dd/mm/yyyy HH:MM`, `yyyy-mm-dd HH:MM:SS`); dates
//! are `dd/mm/yyyy` or `yyyy-mm-dd`. NHS numbers and local patient ids become a `patient_key`
//! here and go no further.
//!
//! A record is checked whole before any of it is appended, so a bad record leaves the batch
//! as it was, and its error names the field.

use std::borrow::Cow;

use bright_engine::batch::BatchBuilder;
use bright_engine::pseudonym::{LOCAL_ID, NHS_NUMBER, PseudoKey};
use bright_engine::schema::{MAX_CODE_CHARS, MAX_PENCE, Table, theatre_events};
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A feed bright takes over HTTP and from extract files, each filling one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feed {
    EdAttendances,
    TheatreEvents,
    TheatreSessions,
    WorkforceShifts,
    Beds,
    FinanceLedger,
}

impl Feed {
    pub const ALL: [Feed; 6] = [
        Feed::EdAttendances,
        Feed::TheatreEvents,
        Feed::TheatreSessions,
        Feed::WorkforceShifts,
        Feed::Beds,
        Feed::FinanceLedger,
    ];

    /// The table the feed's records become rows of.
    pub fn table(self) -> Table {
        match self {
            Feed::EdAttendances => Table::EdAttendances,
            Feed::TheatreEvents => Table::TheatreEvents,
            Feed::TheatreSessions => Table::TheatreSessions,
            Feed::WorkforceShifts => Table::WorkforceShifts,
            Feed::Beds => Table::Beds,
            Feed::FinanceLedger => Table::FinanceLedger,
        }
    }

    /// The feed's name (its table's), as in `POST /api/ingest/{feed}`.
    pub fn name(self) -> &'static str {
        self.table().name()
    }

    pub fn from_name(name: &str) -> Option<Feed> {
        Feed::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The team told about the feed's rejected records (`dq_issues.owner`) unless
    /// `bright.toml` names another (see [`crate::health`]).
    pub fn owner(self) -> &'static str {
        bright_engine::ingest_api::default_owner(self.name())
    }
}

/// A field of a record that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field '{field}': {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

/// A record's fields by name.
pub trait Fields {
    /// The field's text: `Ok(None)` when absent, null or blank; an error when it is not a
    /// single value (a JSON object or array).
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String>;
}

impl Fields for serde_json::Map<String, serde_json::Value> {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        use serde_json::Value;
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s.trim()))),
            Some(Value::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
            Some(Value::Bool(b)) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
            Some(Value::Array(_)) => Err("expected a single value, got an array".into()),
            Some(Value::Object(_)) => Err("expected a single value, got an object".into()),
        }
    }
}

/// One JSON object's members in the order written, their text borrowed from the input where
/// no escape forces a copy. An NDJSON body is read a line at a time into one of these rather
/// than a `serde_json::Map`, which would allocate every name and every value of every record
/// (HTTP NDJSON ingest ~1.3x faster without them, benches/RESULTS.md). A name written twice
/// means its last value, as in a map. Text values are trimmed as they are read, blank ones
/// kept as null: a record is asked for each of its feed's fields and aliases, and trimming at
/// every question cost nearly as much as finding the member (benches/RESULTS.md).
#[derive(Debug, Default)]
pub struct JsonRecord<'a> {
    members: Vec<(Cow<'a, str>, JsonScalar<'a>)>,
}

/// A member's value, kept only as far as [`Fields`] needs it.
#[derive(Debug)]
enum JsonScalar<'a> {
    Null,
    Text(Cow<'a, str>),
    Number(serde_json::Number),
    Bool(bool),
    Array,
    Object,
}

impl JsonScalar<'_> {
    /// Text without the padding feeds leave around it; blank text as null.
    fn trimmed(self) -> Self {
        let JsonScalar::Text(text) = self else {
            return self;
        };
        let kept = trim(&text);
        if kept.is_empty() {
            JsonScalar::Null
        } else if kept.len() == text.len() {
            JsonScalar::Text(text)
        } else {
            JsonScalar::Text(match text {
                Cow::Borrowed(text) => Cow::Borrowed(trim(text)),
                Cow::Owned(text) => Cow::Owned(trim(&text).to_string()),
            })
        }
    }
}

/// `text.trim()`, without decoding its ends when they are visible ASCII (nearly always).
fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

impl Fields for JsonRecord<'_> {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        let value = self.members.iter().rev().find(|(n, _)| n == name);
        match value.map(|(_, value)| value) {
            None | Some(JsonScalar::Null) => Ok(None),
            Some(JsonScalar::Text(s)) => Ok(Some(Cow::Borrowed(s))),
            Some(JsonScalar::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
            Some(JsonScalar::Bool(b)) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
            Some(JsonScalar::Array) => Err("expected a single value, got an array".into()),
            Some(JsonScalar::Object) => Err("expected a single value, got an object".into()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for JsonRecord<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonRecord<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                // A JSON object's names are strings, so a name reads as text (borrowed
                // where it can be, as values are).
                while let Some(name) = map.next_key::<JsonScalar>()? {
                    let JsonScalar::Text(name) = name else {
                        return Err(serde::de::Error::custom("a member's name is not a string"));
                    };
                    let value: JsonScalar = map.next_value()?;
                    members.push((name, value.trimmed()));
                }
                Ok(JsonRecord { members })
            }
        }
        d.deserialize_map(Members)
    }
}

impl<'de> serde::Deserialize<'de> for JsonScalar<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::IgnoredAny;
        struct Scalar;
        impl<'de> serde::de::Visitor<'de> for Scalar {
            type Value = JsonScalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonScalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonScalar::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonScalar::Number(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                // JSON has no NaN or infinity, so every parsed float is a number.
                Ok(serde_json::Number::from_f64(v).map_or(JsonScalar::Null, JsonScalar::Number))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(JsonScalar::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonScalar::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(JsonScalar::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(JsonScalar::Array)
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(JsonScalar::Object)
            }
        }
        d.deserialize_any(Scalar)
    }
}

/// A CSV line with its header's column positions. Extracts saved by Windows tools are often
/// Windows-1252 rather than UTF-8: a field that is not UTF-8 is read as Latin-1, which agrees
/// with Windows-1252 on every letter trusts' data uses except the euro sign.
#[derive(Debug)]
pub struct CsvRecord<'a> {
    pub columns: &'a std::collections::HashMap<String, usize>,
    pub record: &'a csv::ByteRecord,
}

/// The header's column positions by lower-case name (a byte-order mark and padding removed).
pub fn csv_columns(header: &csv::ByteRecord) -> std::collections::HashMap<String, usize> {
    header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = latin1_or_utf8(name);
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            (name, i)
        })
        .collect()
}

fn latin1_or_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

impl Fields for CsvRecord<'_> {
    fn get(&self, name: &str) -> Result<Option<Cow<'_, str>>, String> {
        let Some(bytes) = self.columns.get(name).and_then(|&i| self.record.get(i)) else {
            return Ok(None);
        };
        Ok(match latin1_or_utf8(bytes) {
            Cow::Borrowed(text) => Some(text.trim())
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed),
            Cow::Owned(text) => Some(text.trim().to_string())
                .filter(|t| !t.is_empty())
                .map(Cow::Owned),
        })
    }
}

/// A local wall-clock time on the trust's clock as an instant. A time that occurs twice when
/// the clocks go back is taken as the first; one in the hour the clocks skip is read with the
/// offset before the change (01:30 on the spring morning is 02:30 BST), as people write it.
pub fn on_trust_clock(naive: NaiveDateTime, zone: Tz) -> Option<DateTime<Utc>> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => zone
            .from_local_datetime(&(naive - chrono::Duration::hours(1)))
            .earliest()
            .map(|t| (t + chrono::Duration::hours(1)).with_timezone(&Utc)),
    }
}

/// The times a feed may send: from a first day to a bounded distance past now. A time outside
/// is refused rather than stored: year 0 cannot be read back by common Parquet readers, and
/// 1900-01-01 or 9999-12-31 are the placeholders of spreadsheets and databases, not events.
/// Times a little in the future (ADT more than an hour early) are stored and flagged; these
/// bounds are for times no feed can mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// The first day a time or date may fall on.
    pub earliest: NaiveDate,
    /// How many days past today a time or date may be: lists, rosters and budgets are set
    /// ahead, by up to a financial year and a bit.
    pub days_ahead: u32,
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow {
            // No live operational feed holds events before 1990, and the placeholder dates
            // (1900-01-01, 1899-12-30) fall well before it.
            earliest: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or(NaiveDate::MIN),
            days_ahead: 731,
        }
    }
}

impl TimeWindow {
    /// The window's bounds as of `now`, to check many values against.
    pub fn at(&self, now: DateTime<Utc>) -> Bounds {
        let latest = now
            .date_naive()
            .checked_add_days(chrono::Days::new(u64::from(self.days_ahead)))
            .unwrap_or(NaiveDate::MAX);
        let micros = |day: NaiveDate| day.and_time(NaiveTime::MIN).and_utc().timestamp_micros();
        Bounds {
            earliest: self.earliest,
            latest,
            days_ahead: self.days_ahead,
            from_micros: micros(self.earliest),
            until_micros: latest.succ_opt().map_or(i64::MAX, micros),
        }
    }
}

/// A [`TimeWindow`] fixed at one moment: the first and last days, and the same as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    earliest: NaiveDate,
    latest: NaiveDate,
    days_ahead: u32,
    /// Midnight UTC starting the first day.
    from_micros: i64,
    /// Midnight UTC after the last day.
    until_micros: i64,
}

impl Bounds {
    /// Checks a date: an error says which bound it breaks.
    pub fn check_date(&self, date: NaiveDate) -> Result<NaiveDate, String> {
        if date < self.earliest {
            return Err(format!(
                "{date} is before {}, the earliest date bright takes",
                self.earliest
            ));
        }
        if date > self.latest {
            return Err(format!(
                "{date} is more than {} days ahead (after {})",
                self.days_ahead, self.latest
            ));
        }
        Ok(date)
    }

    /// Checks a time (microseconds since the epoch, UTC) by its UTC day.
    pub fn check_time(&self, micros: i64) -> Result<i64, String> {
        if (self.from_micros..self.until_micros).contains(&micros) {
            return Ok(micros);
        }
        // Outside: name the day and the bound it breaks.
        let date = DateTime::<Utc>::from_timestamp_micros(micros)
            .map(|t| t.date_naive())
            .ok_or_else(|| format!("{micros} µs is not a representable time"))?;
        self.check_date(date).map(|_| micros)
    }
}

/// Why `text` is longer than `max` characters, if it is, without quoting it (a refusal must
/// not copy what it refuses).
pub fn too_long(text: &str, max: usize) -> Option<String> {
    // Bytes bound characters from above: count only when the bytes exceed.
    if text.len() <= max {
        return None;
    }
    let chars = text.chars().count();
    (chars > max).then(|| format!("is {chars} characters long; at most {max} are taken"))
}

/// The first `max` characters of `text`.
pub fn first_chars(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(at, _)| &text[..at])
}

const NAIVE_TIMES: [&str; 6] = [
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
];

/// Microseconds since the epoch of a time as feeds write it (see the module's notes).
pub fn parse_time(text: &str, zone: Tz) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_micros());
    }
    let naive = NAIVE_TIMES
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| {
            format!("'{text}' is not a time (RFC 3339, or dd/mm/yyyy HH:MM on the trust's clock)")
        })?;
    on_trust_clock(naive, zone)
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| format!("'{text}' does not exist on the trust's clock"))
}

/// A calendar date as feeds write it.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    ["%d/%m/%Y", "%Y-%m-%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("'{text}' is not a date (dd/mm/yyyy or yyyy-mm-dd)"))
}

fn date32(date: NaiveDate) -> i32 {
    bright_engine::arrow::datatypes::Date32Type::from_naive_date(date)
}

/// The UTC day of an instant, as days since 1970-01-01.
fn utc_day(micros: i64) -> i32 {
    i32::try_from(micros.div_euclid(86_400_000_000)).unwrap_or(i32::MAX)
}

/// An amount of pounds (`1234.5`, `-12.34`, `£1,234.50`) in pence. Commas are thousands
/// separators only in groups of three (`1,5` and `1,2,3` are refused, not read as 15 and 123);
/// decimals past the pence must be zeros; the amount must fit the ledger's eighteen digits.
fn parse_pounds(text: &str) -> Result<i128, String> {
    let bad = |why: &str| format!("'{text}' is not an amount of pounds: {why}");
    let mut rest = text.trim();
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        (negative, rest) = (true, r);
    }
    if let Some(r) = rest.strip_prefix('£') {
        rest = r.trim_start();
    }
    if !negative && let Some(r) = rest.strip_prefix('-') {
        (negative, rest) = (true, r);
    }
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    let whole = if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        let grouped = (1..=3).contains(&first.len()) && groups.clone().all(|g| g.len() == 3);
        if !grouped {
            return Err(bad(
                "a comma may only separate thousands (groups of three digits, as in 1,234,567)",
            ));
        }
        std::iter::once(first).chain(groups).collect::<String>()
    } else {
        whole.to_string()
    };
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("expected digits, a decimal point and pence"));
    }
    let (pence, beyond) = fraction.split_at(fraction.len().min(2));
    if !beyond.bytes().all(|b| b == b'0') {
        return Err(bad("it has fractions of a penny"));
    }
    let too_large = || {
        bad(&format!(
            "more than {} digits, the most the ledger holds",
            bright_engine::schema::MONEY_PRECISION
        ))
    };
    let significant = whole.trim_start_matches('0');
    // Whole pounds of more than 16 digits cannot fit 18 digits with the pence.
    if significant.len() > 16 {
        return Err(too_large());
    }
    let whole: i128 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|_| too_large())?
    };
    let pence: i128 = format!("{pence:0<2}").parse().map_err(|_| too_large())?;
    let value = whole * 100 + pence;
    if value > MAX_PENCE {
        return Err(too_large());
    }
    Ok(if negative { -value } else { value })
}

/// Reads one record's fields, naming the field in every error.
struct Reader<'a> {
    fields: &'a dyn Fields,
    zone: Tz,
    /// The table rows go to, for the length of its text columns.
    table: Table,
    bounds: Bounds,
}

type Checked<T> = Result<T, FieldError>;

fn error(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

impl Reader<'_> {
    /// The first of `names` present; errors name `names[0]`, the canonical column.
    /// Every value is bounded by its column's length (fields that are not text columns, such
    /// as times and numbers, by that of a code), before anything quotes it in an error.
    fn opt(&self, names: &[&'static str]) -> Checked<Option<Cow<'_, str>>> {
        for name in names {
            if let Some(value) = self.fields.get(name).map_err(|e| error(names[0], e))? {
                // No column holds fewer than MAX_CODE_CHARS: shorter values need no lookup.
                if value.len() > MAX_CODE_CHARS
                    && let Some(reason) = too_long(&value, self.table.max_chars(names[0]))
                {
                    return Err(error(names[0], reason));
                }
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    fn req(&self, names: &[&'static str]) -> Checked<Cow<'_, str>> {
        self.opt(names)?
            .ok_or_else(|| error(names[0], "is required"))
    }

    fn parse<T>(
        &self,
        names: &[&'static str],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Checked<Option<T>> {
        self.opt(names)?
            .map(|text| parse(&text).map_err(|e| error(names[0], e)))
            .transpose()
    }

    fn opt_time(&self, names: &[&'static str]) -> Checked<Option<i64>> {
        self.parse(names, |t| {
            parse_time(t, self.zone).and_then(|t| self.bounds.check_time(t))
        })
    }

    fn time(&self, names: &[&'static str]) -> Checked<i64> {
        self.opt_time(names)?
            .ok_or_else(|| error(names[0], "is required"))
    }

    fn opt_date(&self, names: &[&'static str]) -> Checked<Option<NaiveDate>> {
        self.parse(names, |t| {
            parse_date(t).and_then(|d| self.bounds.check_date(d))
        })
    }

    fn date(&self, names: &[&'static str]) -> Checked<NaiveDate> {
        self.opt_date(names)?
            .ok_or_else(|| error(names[0], "is required"))
    }

    fn opt_int(&self, names: &[&'static str], range: (i64, i64)) -> Checked<Option<i64>> {
        self.parse(names, |t| {
            // Spreadsheets write whole numbers as `3.0`.
            let value = t
                .parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| format!("'{t}' is not a whole number"))?;
            if value < range.0 || value > range.1 {
                return Err(format!("{value} is outside {}..={}", range.0, range.1));
            }
            Ok(value)
        })
    }

    fn float(&self, names: &[&'static str], range: (f64, f64)) -> Checked<f64> {
        self.parse(names, |t| {
            let value: f64 = t.parse().map_err(|_| format!("'{t}' is not a number"))?;
            if !(range.0..=range.1).contains(&value) {
                return Err(format!("{value} is outside {}..={}", range.0, range.1));
            }
            Ok(value)
        })?
        .ok_or_else(|| error(names[0], "is required"))
    }

    fn flag(&self, names: &[&'static str]) -> Checked<bool> {
        Ok(self
            .parse(names, |t| match t.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "1" => Ok(true),
                "n" | "no" | "false" | "0" => Ok(false),
                _ => Err(format!("'{t}' is not Y or N")),
            })?
            .unwrap_or(false))
    }

    fn opt_one_of(
        &self,
        names: &[&'static str],
        allowed: &'static [&'static str],
    ) -> Checked<Option<&'static str>> {
        self.parse(names, |t| {
            let lower = t.to_ascii_lowercase();
            allowed
                .iter()
                .copied()
                .find(|a| *a == lower)
                .ok_or_else(|| format!("'{t}' is not one of {}", allowed.join(", ")))
        })
    }

    fn one_of(
        &self,
        names: &[&'static str],
        allowed: &'static [&'static str],
    ) -> Checked<&'static str> {
        self.opt_one_of(names, allowed)?
            .ok_or_else(|| error(names[0], "is required"))
    }
}

const ARRIVAL_MODES: &[&str] = &["ambulance", "walk_in", "other"];
const DISPOSALS: &[&str] = &["admitted", "discharged", "transferred", "left", "died"];
const STAFF_GROUPS: &[&str] = &["nursing", "hca", "medical", "ahp"];
const CONTRACTS: &[&str] = &["substantive", "bank", "agency"];
const CATEGORIES: &[&str] = &["pay", "non_pay", "income"];

/// Turns records of one feed into rows of its table.
#[derive(Debug, Clone)]
pub struct Transform {
    pub feed: Feed,
    /// The trust's clock, for times written without an offset.
    pub zone: Tz,
    pub key: PseudoKey,
    /// The organisation of records without an `org_code` field.
    pub org_code: Option<String>,
    /// The times records may hold, fixed when the body or file is taken.
    pub bounds: Bounds,
}

impl Transform {
    /// [`Transform::append`] for the record at `position` of a body or file: an error is the
    /// refusal that names it.
    pub fn append_at(
        &self,
        position: bright_engine::ingest_api::Position,
        record: &dyn Fields,
        builder: &mut BatchBuilder,
    ) -> Result<(), bright_engine::ingest_api::IngestRefusal> {
        self.append(record, builder)
            .map_err(|e| crate::formats::bad(position, Some(e.field), e.reason))
    }

    /// Checks `record` and appends it to `builder` (of the feed's table); on an error nothing
    /// is appended.
    pub fn append(&self, record: &dyn Fields, builder: &mut BatchBuilder) -> Checked<()> {
        let r = Reader {
            fields: record,
            zone: self.zone,
            table: self.feed.table(),
            bounds: self.bounds,
        };
        let org = match r.opt(&["org_code"])? {
            Some(org) => org.into_owned(),
            None => self.org_code.clone().ok_or_else(|| {
                error(
                    "org_code",
                    "is required (a field, or ?org_code= on the request, --org for files)",
                )
            })?,
        };
        let site = r.req(&["site"])?;
        match self.feed {
            Feed::EdAttendances => {
                let id = r.req(&["attendance_id"])?;
                let patient = match (r.opt(&["nhs_number"])?, r.opt(&["local_patient_id"])?) {
                    (Some(nhs), _) => {
                        let digits: String =
                            nhs.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(error("nhs_number", "is not 10 digits"));
                        }
                        Some(self.key.patient_key(NHS_NUMBER, &digits))
                    }
                    (None, Some(local)) => {
                        Some(self.key.patient_key(LOCAL_ID, &format!("{org}/{local}")))
                    }
                    // An unidentified patient (e.g. brought in unconscious) still attends.
                    (None, None) => None,
                };
                let arrival = r.time(&["arrival_time", "arrival"])?;
                let mode = r.one_of(&["arrival_mode"], ARRIVAL_MODES)?;
                let ambulance = r.opt_time(&["ambulance_arrival_time", "ambulance_arrival"])?;
                let handover = r.opt_time(&["handover_time", "handover"])?;
                let acuity = r.opt_int(&["acuity"], (1, 5))?;
                let assessed = r.opt_time(&["initial_assessment_time", "initial_assessment"])?;
                let seen = r.opt_time(&["seen_time", "seen"])?;
                let dta = r.opt_time(&["decision_to_admit_time", "decision_to_admit"])?;
                let departure = r.opt_time(&["departure_time", "departure"])?;
                if departure.is_some_and(|d| d < arrival) {
                    return Err(error("departure_time", "is before the arrival"));
                }
                let disposal = r.opt_one_of(&["disposal"], DISPOSALS)?;
                let age_band = r.opt(&["age_band"])?;
                let complaint = r.opt(&["chief_complaint"])?;
                builder
                    .row()
                    .text(&id)
                    .text(&org)
                    .text(&site)
                    .opt_text(patient.as_deref())
                    .timestamp(arrival)
                    .text(mode)
                    .opt_timestamp(ambulance)
                    .opt_timestamp(handover)
                    .opt_int8(acuity.map(|a| a as i8))
                    .opt_timestamp(assessed)
                    .opt_timestamp(seen)
                    .opt_timestamp(dta)
                    .opt_timestamp(departure)
                    .opt_text(disposal)
                    .opt_text(age_band.as_deref())
                    .opt_text(complaint.as_deref())
                    .date(utc_day(arrival))
                    .end();
            }
            Feed::TheatreEvents => {
                let id = r.req(&["event_id"])?;
                let case = r.req(&["case_id"])?;
                let session = r.opt(&["session_id"])?;
                let theatre = r.req(&["theatre"])?;
                let specialty = r.opt(&["specialty"])?;
                let code = r.opt(&["procedure_code"])?;
                let name = r.opt(&["procedure_name"])?;
                let given = r.req(&["milestone"])?;
                let milestone = theatre_events::MILESTONES
                    .iter()
                    .chain([&theatre_events::CANCELLED])
                    .find(|m| m.eq_ignore_ascii_case(&given))
                    .copied()
                    .ok_or_else(|| {
                        error(
                            "milestone",
                            format!(
                                "'{}' is not one of {}, {}",
                                given.to_ascii_lowercase(),
                                theatre_events::MILESTONES.join(", "),
                                theatre_events::CANCELLED
                            ),
                        )
                    })?;
                let time = r.time(&["event_time"])?;
                let order = r.opt_int(&["planned_order"], (1, 1000))?;
                let minutes = r.opt_int(&["planned_duration_min"], (0, 24 * 60))?;
                let reason = r.opt(&["cancel_reason"])?;
                builder
                    .row()
                    .text(&id)
                    .text(&case)
                    .opt_text(session.as_deref())
                    .text(&org)
                    .text(&site)
                    .text(&theatre)
                    .opt_text(specialty.as_deref())
                    .opt_text(code.as_deref())
                    .opt_text(name.as_deref())
                    .text(milestone)
                    .timestamp(time)
                    .opt_int32(order.map(|o| o as i32))
                    .opt_int32(minutes.map(|m| m as i32))
                    .opt_text(reason.as_deref())
                    .date(utc_day(time))
                    .end();
            }
            Feed::TheatreSessions => {
                let id = r.req(&["session_id"])?;
                let theatre = r.req(&["theatre"])?;
                let day = r.date(&["session_date"])?;
                // A list's times are often written as clock times on its day.
                let at = |field: &'static str| -> Checked<i64> {
                    let text = r.req(&[field])?;
                    match NaiveTime::parse_from_str(&text, "%H:%M") {
                        Ok(time) => on_trust_clock(day.and_time(time), self.zone)
                            .map(|t| t.timestamp_micros())
                            .ok_or_else(|| error(field, "does not exist on the trust's clock")),
                        Err(_) => parse_time(&text, self.zone)
                            .and_then(|t| r.bounds.check_time(t))
                            .map_err(|e| error(field, e)),
                    }
                };
                let (start, end) = (at("planned_start")?, at("planned_end")?);
                if end <= start {
                    return Err(error("planned_end", "is not after the planned start"));
                }
                let specialty = r.opt(&["specialty"])?;
                let cancelled = r.flag(&["cancelled"])?;
                builder
                    .row()
                    .text(&id)
                    .text(&org)
                    .text(&site)
                    .text(&theatre)
                    .timestamp(start)
                    .timestamp(end)
                    .opt_text(specialty.as_deref())
                    .boolean(cancelled)
                    .date(date32(day))
                    .end();
            }
            Feed::WorkforceShifts => {
                let id = r.req(&["shift_id"])?;
                let ward = r.opt(&["ward"])?;
                let group = r.one_of(&["staff_group"], STAFF_GROUPS)?;
                let planned = r.float(&["planned_hours"], (0.0, 24.0))?;
                let worked = r.float(&["worked_hours"], (0.0, 24.0))?;
                let contract = r.one_of(&["contract"], CONTRACTS)?;
                let day = r.date(&["shift_date"])?;
                builder
                    .row()
                    .text(&id)
                    .text(&org)
                    .text(&site)
                    .opt_text(ward.as_deref())
                    .text(group)
                    .float64(planned)
                    .float64(worked)
                    .text(contract)
                    .date(date32(day))
                    .end();
            }
            Feed::Beds => {
                let ward = r.req(&["ward"])?;
                let ward_type = r.req(&["ward_type"])?.to_ascii_lowercase();
                let beds = r
                    .opt_int(&["beds"], (0, 10_000))?
                    .ok_or_else(|| error("beds", "is required"))?;
                let from = r.date(&["valid_from"])?;
                // Bed systems write an open-ended row's end as the last day there is.
                let open = r.opt(&["valid_to"])?.is_some_and(|t| {
                    parse_date(&t)
                        == Ok(NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX))
                });
                let to = if open {
                    None
                } else {
                    r.opt_date(&["valid_to"])?
                };
                if to.is_some_and(|to| to < from) {
                    return Err(error("valid_to", "is before valid_from"));
                }
                builder
                    .row()
                    .text(&org)
                    .text(&site)
                    .text(&ward)
                    .text(&ward_type)
                    .int32(beds as i32)
                    .opt_date(to.map(date32))
                    .date(date32(from))
                    .end();
            }
            Feed::FinanceLedger => {
                let centre = r.req(&["cost_centre"])?;
                let specialty = r.opt(&["specialty"])?;
                let category = r.one_of(&["category"], CATEGORIES)?;
                let budget = r
                    .parse(&["budget"], parse_pounds)?
                    .ok_or_else(|| error("budget", "is required"))?;
                let actual = r
                    .parse(&["actual"], parse_pounds)?
                    .ok_or_else(|| error("actual", "is required"))?;
                let month = r
                    .parse(&["month"], |t| {
                        NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d")
                            .or_else(|_| parse_date(t).map_err(|_| ()))
                            .map_err(|()| format!("'{t}' is not a month (yyyy-mm)"))
                            .and_then(|m| r.bounds.check_date(m))
                    })?
                    .ok_or_else(|| error("month", "is required"))?;
                let first = month.with_day(1).unwrap_or(month);
                builder
                    .row()
                    .text(&centre)
                    .text(&org)
                    .text(&site)
                    .opt_text(specialty.as_deref())
                    .text(category)
                    .pence(budget)
                    .pence(actual)
                    .date(date32(first))
                    .end();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(feed: Feed) -> Transform {
        Transform {
            feed,
            zone: chrono_tz::Europe::London,
            key: PseudoKey::new(*b"0123456789abcdef").unwrap(),
            org_code: Some("RXX".into()),
            bounds: TimeWindow::default().at(Utc::now()),
        }
    }

    fn json(text: &str) -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn local_times_are_read_on_the_trusts_clock() {
        let zone = chrono_tz::Europe::London;
        // Summer: BST is UTC+1.
        assert_eq!(
            parse_time("01/07/2025 09:30", zone).unwrap(),
            parse_time("2025-07-01T08:30:00Z", zone).unwrap()
        );
        // The repeated hour in autumn is its first occurrence (still BST).
        assert_eq!(
            parse_time("2025-10-26 01:30", zone).unwrap(),
            parse_time("2025-10-26T00:30:00Z", zone).unwrap()
        );
        // The skipped hour in spring reads as the offset before: 01:30 GMT = 02:30 BST.
        assert_eq!(
            parse_time("30/03/2025 01:30", zone).unwrap(),
            parse_time("2025-03-30T01:30:00Z", zone).unwrap()
        );
        assert!(parse_time("31/02/2025 10:00", zone).is_err());
    }

    #[test]
    fn pounds_become_pence() {
        assert_eq!(parse_pounds("1234.5"), Ok(123_450));
        assert_eq!(parse_pounds("£1,234.56"), Ok(123_456));
        assert_eq!(parse_pounds("-0.07"), Ok(-7));
        assert_eq!(parse_pounds("12"), Ok(1_200));
        assert!(parse_pounds("12.345").is_err());
        assert!(parse_pounds("abc").is_err());
        assert!(parse_pounds("-").is_err());
        assert_eq!(parse_pounds("£1,234,567.89"), Ok(123_456_789));
        assert_eq!(parse_pounds("-£12.30"), Ok(-1_230));
        assert_eq!(parse_pounds("£-12.30"), Ok(-1_230));
        assert_eq!(parse_pounds("12.3400"), Ok(1_234));
        assert_eq!(parse_pounds("9999999999999999.99"), Ok(MAX_PENCE));
    }

    // Regression: amounts past the column's 18 digits were stored as other amounts, and
    // commas anywhere were dropped ("1,5" stored as £15.00).
    #[test]
    fn amounts_the_ledger_cannot_hold_or_that_read_two_ways_are_refused() {
        for text in [
            "10000000000000000000",
            "10000000000000000.00",
            "9999999999999999.991",
            "99999999999999999",
            "1,5",
            "£1,2,3",
            "1234,567",
            ",123",
            "1,234,56",
            "12.345",
            "1 234",
            "NaN",
            "inf",
        ] {
            assert!(parse_pounds(text).is_err(), "{text} was taken");
        }
        let e = parse_pounds("1,5").unwrap_err();
        assert!(e.contains("groups of three"), "{e}");
        let e = parse_pounds("10000000000000000000").unwrap_err();
        assert!(e.contains("18 digits"), "{e}");
    }

    // Regression: year 0, placeholders and far-future times were stored; a year-0 partition
    // made the table unreadable to Python deltalake.
    #[test]
    fn times_outside_the_window_are_refused_naming_the_field() {
        let t = transform(Feed::EdAttendances);
        let mut builder = BatchBuilder::new(Table::EdAttendances);
        for arrival in [
            "0000-01-01T00:00:00Z",
            "1900-01-01T00:00:00Z",
            "2200-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "01/01/1900 00:00",
        ] {
            let record = json(&format!(
                r#"{{"attendance_id":"Y0","site":"S1","arrival_time":"{arrival}","arrival_mode":"walk_in"}}"#
            ));
            let e = t.append(&record, &mut builder).unwrap_err();
            assert_eq!(e.field, "arrival_time", "{arrival}: {e}");
        }
        let record = json(
            r#"{"attendance_id":"Y1","site":"S1","arrival_time":"2025-07-01T09:00:00Z",
                "arrival_mode":"walk_in","departure_time":"9999-01-01T00:00:00Z"}"#,
        );
        let e = t.append(&record, &mut builder).unwrap_err();
        assert_eq!(e.field, "departure_time", "{e}");
        assert!(e.reason.contains("days ahead"), "{e}");
        assert_eq!(builder.len(), 0);

        // A bed base row open to the end of time is open, not a date.
        let t = transform(Feed::Beds);
        let mut beds = BatchBuilder::new(Table::Beds);
        let open = json(
            r#"{"site":"S","ward":"W","ward_type":"general_acute","beds":20,
                "valid_from":"2025-01-01","valid_to":"31/12/9999"}"#,
        );
        t.append(&open, &mut beds).unwrap();
        let batch = beds.finish().unwrap();
        assert_eq!(batch.column_by_name("valid_to").unwrap().null_count(), 1);
        let e = t
            .append(
                &json(
                    r#"{"site":"S","ward":"W","ward_type":"x","beds":1,"valid_from":"1900-01-01"}"#,
                ),
                &mut beds,
            )
            .unwrap_err();
        assert_eq!(e.field, "valid_from", "{e}");
        let t = transform(Feed::FinanceLedger);
        let e = t
            .append(
                &json(
                    r#"{"cost_centre":"C","site":"S","category":"pay","budget":"1",
                        "actual":"1","month":"0000-01"}"#,
                ),
                &mut BatchBuilder::new(Table::FinanceLedger),
            )
            .unwrap_err();
        assert_eq!(e.field, "month", "{e}");
    }

    // Regression: a 1 MB site was stored.
    #[test]
    fn text_longer_than_its_column_is_refused_without_quoting_it() {
        let t = transform(Feed::TheatreEvents);
        let mut builder = BatchBuilder::new(Table::TheatreEvents);
        let record = |site: &str, name: &str| {
            let mut m = json(
                r#"{"event_id":"E1","case_id":"C1","theatre":"T1","milestone":"sent_for",
                    "event_time":"2025-07-01T09:00:00Z"}"#,
            );
            m.insert("site".into(), site.into());
            m.insert("procedure_name".into(), name.into());
            m
        };
        let long = "S".repeat(1 << 20);
        let e = t.append(&record(&long, "Hip"), &mut builder).unwrap_err();
        assert_eq!(e.field, "site");
        assert!(e.reason.len() < 100, "{}", e.reason.len());
        // Free text may be longer than a code, up to its own bound.
        t.append(&record("S1", &"x".repeat(900)), &mut builder)
            .unwrap();
        let e = t
            .append(&record("S1", &"x".repeat(1001)), &mut builder)
            .unwrap_err();
        assert_eq!(e.field, "procedure_name");
        assert_eq!(builder.len(), 1);
    }

    #[test]
    fn hours_and_counts_that_are_not_finite_or_overflow_are_refused() {
        let t = transform(Feed::WorkforceShifts);
        let mut builder = BatchBuilder::new(Table::WorkforceShifts);
        for hours in ["NaN", "inf", "-inf", "1e400", "1e308"] {
            let record = json(&format!(
                r#"{{"shift_id":"1","site":"S","staff_group":"hca","planned_hours":"{hours}",
                    "worked_hours":7.5,"contract":"bank","shift_date":"2025-07-01"}}"#
            ));
            let e = t.append(&record, &mut builder).unwrap_err();
            assert_eq!(e.field, "planned_hours", "{hours}: {e}");
        }
        let t = transform(Feed::Beds);
        for beds in ["99999999999999999999", "NaN", "1e30", "-1"] {
            let record = json(&format!(
                r#"{{"site":"S","ward":"W","ward_type":"x","beds":"{beds}","valid_from":"2025-01-01"}}"#
            ));
            let e = t
                .append(&record, &mut BatchBuilder::new(Table::Beds))
                .unwrap_err();
            assert_eq!(e.field, "beds", "{beds}: {e}");
        }
        assert_eq!(builder.len(), 0);
    }

    #[test]
    fn an_ed_record_is_pseudonymised_and_its_errors_name_the_field() {
        let t = transform(Feed::EdAttendances);
        let mut builder = BatchBuilder::new(Table::EdAttendances);
        let good = json(
            r#"{"attendance_id":"A1","site":"S1","nhs_number":"943 476 5919",
                "arrival":"01/07/2025 09:30","arrival_mode":"Ambulance","acuity":3}"#,
        );
        t.append(&good, &mut builder).unwrap();
        let bad = json(
            r#"{"attendance_id":"A2","site":"S1","arrival":"01/07/2025 09:30",
                "arrival_mode":"walk_in","acuity":"high"}"#,
        );
        let e = t.append(&bad, &mut builder).unwrap_err();
        assert_eq!(e.field, "acuity");
        assert!(e.reason.contains("'high' is not a whole number"), "{e}");
        let e = t
            .append(&json(r#"{"attendance_id":"A3","site":"S1"}"#), &mut builder)
            .unwrap_err();
        assert_eq!(
            (e.field, e.reason.as_str()),
            ("arrival_time", "is required")
        );
        // Only the good record reached the batch, with its NHS number as a key.
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let keys = bright_engine::arrow::array::AsArray::as_string::<i32>(
            batch.column_by_name("patient_key").unwrap(),
        );
        assert_eq!(
            keys.value(0),
            t.key.patient_key(NHS_NUMBER, "9434765919").as_str()
        );
        let modes = bright_engine::arrow::array::AsArray::as_string::<i32>(
            batch.column_by_name("arrival_mode").unwrap(),
        );
        assert_eq!(modes.value(0), "ambulance");
    }

    #[test]
    fn enumerations_and_nested_values_are_refused_by_name() {
        let t = transform(Feed::WorkforceShifts);
        let mut builder = BatchBuilder::new(Table::WorkforceShifts);
        let e = t
            .append(
                &json(
                    r#"{"shift_id":"1","site":"S","staff_group":"porter","planned_hours":7.5,
                        "worked_hours":7.5,"contract":"bank","shift_date":"2025-07-01"}"#,
                ),
                &mut builder,
            )
            .unwrap_err();
        assert_eq!(e.field, "staff_group");
        assert!(e.reason.contains("nursing, hca, medical, ahp"), "{e}");
        let e = t
            .append(&json(r#"{"site":{"code":"S"}}"#), &mut builder)
            .unwrap_err();
        assert_eq!(e.field, "site");
        let t = Transform {
            org_code: None,
            ..transform(Feed::Beds)
        };
        let e = t
            .append(&json(r#"{"site":"S","ward":"W"}"#), &mut builder)
            .unwrap_err();
        assert_eq!(e.field, "org_code");
    }

    #[test]
    fn a_borrowed_json_record_reads_every_field_as_a_json_map_does() {
        let line = r#"{"a":"  x ","b":"","c":null,"d":3,"e":-2,"f":7.5,"g":3.0,"h":true,
            "i":false,"j":[1,{"k":2}],"l":{"m":[3]},"n":"tab\there \"q\" \u00e9","a":"last",
            "o":18446744073709551615,"p":-0.0,"\u00e9":"named with an escape",
            "q":"kept","q":"  ","r":"x","s":" ","t":"caf\u00e9","u":"\u00a0nbsp\u00a0",
            "v":"\t escaped padding \n","w":"\u00e9"}"#;
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let record: JsonRecord = serde_json::from_str(line).unwrap();
        for name in [
            "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "n", "o", "p", "é", "q", "r",
            "s", "t", "u", "v", "w", "zz",
        ] {
            assert_eq!(
                Fields::get(&record, name),
                Fields::get(&map, name),
                "field {name}"
            );
        }
        assert_eq!(Fields::get(&record, "a").unwrap().as_deref(), Some("last"));
        assert_eq!(
            Fields::get(&record, "é").unwrap().as_deref(),
            Some("named with an escape")
        );
        // Padding goes, written or escaped, ASCII or not; the last of a name written twice
        // counts even when it is blank.
        assert_eq!(Fields::get(&record, "u").unwrap().as_deref(), Some("nbsp"));
        assert_eq!(
            Fields::get(&record, "v").unwrap().as_deref(),
            Some("escaped padding")
        );
        assert_eq!(Fields::get(&record, "q").unwrap(), None);
        assert_eq!(
            Fields::get(&record, "n").unwrap().as_deref(),
            Some("tab\there \"q\" é")
        );
        for not_an_object in ["[1]", "\"text\"", "3", "{\"a\":1} x", "{\"a\":}"] {
            let as_map =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(not_an_object);
            let as_record = serde_json::from_str::<JsonRecord>(not_an_object);
            assert!(as_map.is_err() && as_record.is_err(), "{not_an_object}");
        }
    }
}
