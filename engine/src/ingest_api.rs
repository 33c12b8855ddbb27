//! Where the web service meets ingest.
//!
//! `POST /api/ingest/{feed}` is served by the dashboards crate (the one HTTP router, with its
//! authentication and audit), but parsing, validation and storage belong to ingest. The two
//! crates never depend on each other: the binary hands the router an `Arc<dyn IngestApi>`
//! implemented by ingest.

use std::fmt;

use crate::schema::Table;

/// The HL7 ADT feed's name (`dq_issues.feed`, feed health).
pub const HL7_ADT: &str = "hl7_adt";

/// The team told about refused ADT messages unless `bright.toml` names another.
pub const ADT_OWNER: &str = "PAS interface team";

/// The team told about a feed's refused records (`dq_issues.owner`) unless `bright.toml`
/// names another: one per feed that lands a table, the PAS interface team for ADT (and any
/// other name).
pub fn default_owner(feed: &str) -> &'static str {
    let owners = [
        (Table::EdAttendances, "ED systems team"),
        (Table::TheatreEvents, "Theatre systems team"),
        (Table::TheatreSessions, "Theatre systems team"),
        (Table::WorkforceShifts, "Rostering team"),
        (Table::Beds, "Bed management team"),
        (Table::FinanceLedger, "Finance systems team"),
    ];
    owners
        .iter()
        .find(|(table, _)| table.name() == feed)
        .map_or(ADT_OWNER, |(_, owner)| owner)
}

/// How a request body is written, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON object per line (`application/x-ndjson`, `application/jsonl`).
    Ndjson,
    /// A JSON array of objects, or one object (`application/json`).
    Json,
    /// A header line, then one record per line (`text/csv`).
    Csv,
}

impl BodyFormat {
    /// The format of a `Content-Type` value (parameters such as `charset` are ignored).
    pub fn from_content_type(value: &str) -> Option<BodyFormat> {
        let essence = value.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Some(BodyFormat::Ndjson),
            "application/json" => Some(BodyFormat::Json),
            "text/csv" | "application/csv" => Some(BodyFormat::Csv),
            _ => None,
        }
    }
}

/// One request to store records of a feed.
/// The body is owned so ingest can parse it off the threads that serve requests.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub feed: String,
    pub format: BodyFormat,
    pub body: Vec<u8>,
    /// The organisation records without an `org_code` field belong to (`?org_code=`).
    pub org_code: Option<String>,
    /// The authenticated client, recorded with rejected requests.
    pub client: String,
}

/// What a stored request did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IngestReceipt {
    pub feed: String,
    /// Records in the request.
    pub received: usize,
    /// Records new to bright, now durable and queryable.
    pub stored: usize,
    /// Records bright already held (a retried request), not stored twice.
    pub duplicates: usize,
}

/// Where in a body a bad record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of an NDJSON or CSV body (the CSV header is line 1).
    Line(usize),
    /// 1-based element of a JSON array.
    Element(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Element(n) => write!(f, "record {n}"),
        }
    }
}

/// Why a request was not stored. Nothing of a refused request is kept.
#[derive(Debug, thiserror::Error)]
pub enum IngestRefusal {
    #[error("unknown feed '{feed}'; feeds: {known}")]
    UnknownFeed { feed: String, known: String },
    #[error("{position}{}: {reason}", field.as_ref().map(|f| format!(", field '{f}'")).unwrap_or_default())]
    BadRecord {
        position: Position,
        field: Option<String>,
        reason: String,
    },
    /// Too much is waiting for the lake; the client should retry after this many seconds.
    #[error("bright is busy writing to the lake; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// Storing failed for a reason that is not the client's (the client should retry).
    #[error("could not store the records")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The health of one feed, for the command centre and alerts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeedStatus {
    pub feed: String,
    /// The team told about the feed's refused records.
    pub owner: String,
    /// When the feed last delivered (RFC 3339), if it has since bright started.
    pub last_delivery: Option<String>,
    /// Seconds since the last delivery (or since bright started).
    pub seconds_silent: u64,
    /// Silence after which the feed is stale.
    pub stale_after_seconds: u64,
    pub stale: bool,
    /// Records, deliveries (messages, requests, files) and refused deliveries since start.
    pub records: u64,
    pub deliveries: u64,
    pub refused: u64,
    /// Records per minute over the last 15 minutes.
    pub records_per_minute: f64,
    /// Share of deliveries refused over the last 15 minutes.
    pub refused_share: f64,
    /// Rows acknowledged and still waiting for the lake (in the write-ahead log).
    pub buffered_rows: u64,
}

/// Ingest as the web service calls it.
#[async_trait::async_trait]
pub trait IngestApi: Send + Sync + fmt::Debug {
    /// Parses, validates and stores a request's records: all of them, durable and queryable,
    /// when this returns `Ok`; none of them when it returns an error.
    async fn ingest(&self, request: IngestRequest) -> Result<IngestReceipt, IngestRefusal>;

    /// Every feed's health now.
    fn feeds(&self) -> Vec<FeedStatus>;

    /// Stores rows bright makes itself (the audit log) on the same durable path as ingested
    /// ones: on disk and queryable when this returns `Ok`.
    async fn record(
        &self,
        table: crate::schema::Table,
        batch: arrow::record_batch::RecordBatch,
    ) -> Result<(), String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_name_their_format() {
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(
            BodyFormat::from_content_type("text/csv; charset=utf-8"),
            Some(BodyFormat::Csv)
        );
        assert_eq!(
            BodyFormat::from_content_type("Application/JSON"),
            Some(BodyFormat::Json)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    }

    #[test]
    fn a_bad_record_names_its_line_and_field() {
        let refusal = IngestRefusal::BadRecord {
            position: Position::Line(3),
            field: Some("acuity".into()),
            reason: "'x' is not a whole number".into(),
        };
        assert_eq!(
            refusal.to_string(),
            "line 3, field 'acuity': 'x' is not a whole number"
        );
    }
}
