//! The HTTP source: `POST /api/ingest/{feed}` bodies (NDJSON, a JSON array, CSV) to rows.
//!
//! A request is all or nothing: every record is checked before any is stored, the first bad
//! one refuses the whole request (its line and field named, the reason recorded in
//! `dq_issues` for the feed's owners), and the good ones are written as one batch, one
//! write-ahead log record, so a crash never keeps half a request. A request retried after a
//! lost answer is recognised row by row (see [`crate::sink`]) and not stored twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::batch::BatchBuilder;
use bright_engine::ingest_api::{
    BodyFormat, FeedStatus, IngestApi, IngestReceipt, IngestRefusal, IngestRequest, Position,
};
use bright_engine::pseudonym::PseudoKey;
use bright_engine::schema::Table;
use chrono::Utc;
use chrono_tz::Tz;

use crate::formats::{ReadError, read_records};
use crate::health::{FeedHealth, owner};
use crate::sink::{Issue, Sink};
use crate::transforms::{Feed, TimeWindow, Transform};

/// Counters of the HTTP source, over all feeds.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    /// Requests refused for their content.
    pub refused: AtomicU64,
    /// Requests answered busy.
    pub busy: AtomicU64,
}

/// Seconds a busy client is asked to wait: about one flush.
const RETRY_AFTER_SECS: u64 = 2;

/// The HTTP source in front of a [`Sink`].
#[derive(Debug, Clone)]
pub struct HttpSource {
    sink: Arc<Sink>,
    zone: Tz,
    key: PseudoKey,
    stats: Arc<HttpStats>,
    health: Option<Arc<FeedHealth>>,
    window: TimeWindow,
}

/// Checks every record of `body` and returns them as one batch of the feed's table, with the
/// number of records.
pub fn parse_body(
    transform: &Transform,
    format: BodyFormat,
    body: &[u8],
) -> Result<(RecordBatch, usize), IngestRefusal> {
    let mut builder = BatchBuilder::new(transform.feed.table());
    let mut records = 0;
    read_records(format, body, &mut |position, record| {
        records += 1;
        transform.append_at(position, record, &mut builder)
    })
    .map_err(|e| match e {
        ReadError::Refused(refusal) => refusal,
        // A body in memory cannot fail to read.
        ReadError::Io(e) => IngestRefusal::Failed(Box::new(e)),
    })?;
    if records == 0 {
        return Err(crate::formats::bad(
            Position::Line(1),
            None,
            why_no_records(format, body),
        ));
    }
    let batch = builder
        .finish()
        .map_err(|e| IngestRefusal::Failed(Box::new(e)))?;
    Ok((batch, records))
}

/// Why a body held no record, in words that point at the likely mistake: a client that posts
/// nothing, or JSON labelled as CSV (which reads as a header and no rows), means a feed that
/// has stopped delivering while it believes it delivers.
fn why_no_records(format: BodyFormat, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(64)]);
    let start = text.trim_start();
    match format {
        _ if start.is_empty() => "the body holds no records (it is empty)".into(),
        BodyFormat::Csv if start.starts_with(['{', '[']) => {
            "the body holds no CSV records: it looks like JSON; send it as application/json or application/x-ndjson".into()
        }
        BodyFormat::Csv => "the body holds no records: a CSV header line and no rows".into(),
        BodyFormat::Json => "the body holds no records: an empty JSON array".into(),
        BodyFormat::Ndjson => "the body holds no records: only blank lines".into(),
    }
}

impl HttpSource {
    /// A source pseudonymising with `key` and reading local times on `zone`.
    pub fn new(sink: Arc<Sink>, zone: Tz, key: PseudoKey) -> Self {
        HttpSource {
            sink,
            zone,
            key,
            stats: Arc::new(HttpStats::default()),
            health: None,
            window: TimeWindow::default(),
        }
    }

    /// Takes only times within `window` (the default otherwise).
    pub fn with_window(mut self, window: TimeWindow) -> Self {
        self.window = window;
        self
    }

    /// Reports deliveries and refusals to `health` (which also names the feeds' owners), and
    /// answers [`IngestApi::feeds`] from it.
    pub fn with_health(mut self, health: Arc<FeedHealth>) -> Self {
        self.health = Some(health);
        self
    }

    pub fn stats(&self) -> Arc<HttpStats> {
        self.stats.clone()
    }

    /// Records a refused request in `dq_issues` for the feed's owners: the client and where
    /// the first bad record is, and why.
    async fn record_refusal(&self, feed: Feed, request: &IngestRequest, refusal: &IngestRefusal) {
        self.sink
            .record_issue(Issue {
                feed: feed.name(),
                // Records name their trust; a refused body may not, so the request's, if any.
                org_code: request.org_code.as_deref().unwrap_or("unknown"),
                record_ref: &format!("HTTP request from {}", request.client),
                reason: &refusal.to_string(),
                owner: owner(self.health.as_deref(), feed.name()),
            })
            .await;
    }
}

#[async_trait::async_trait]
impl IngestApi for HttpSource {
    async fn record(&self, table: Table, batch: RecordBatch) -> Result<(), String> {
        self.sink
            .write(table, batch)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn ingest(&self, mut request: IngestRequest) -> Result<IngestReceipt, IngestRefusal> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let feed = Feed::from_name(&request.feed).ok_or_else(|| IngestRefusal::UnknownFeed {
            feed: request.feed.clone(),
            known: Feed::ALL.map(Feed::name).join(", "),
        })?;
        if self.sink.busy() {
            self.stats.busy.fetch_add(1, Ordering::Relaxed);
            return Err(IngestRefusal::Busy {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        let transform = Transform {
            feed,
            zone: self.zone,
            key: self.key.clone(),
            org_code: request.org_code.clone(),
            bounds: self.window.at(Utc::now()),
        };
        let (format, body) = (request.format, std::mem::take(&mut request.body));
        // Parsing a large body is CPU work: keep it off the threads that serve requests.
        let parsed = tokio::task::spawn_blocking(move || parse_body(&transform, format, &body))
            .await
            .map_err(|e| IngestRefusal::Failed(Box::new(e)))?;
        let (batch, received) = match parsed {
            Ok(parsed) => parsed,
            Err(refusal) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(health) = &self.health {
                    health.refused(feed.name(), Utc::now());
                }
                self.record_refusal(feed, &request, &refusal).await;
                return Err(refusal);
            }
        };
        let written = if batch.num_rows() == 0 {
            Default::default()
        } else {
            self.sink
                .write(feed.table(), batch)
                .await
                .map_err(|e| IngestRefusal::Failed(Box::new(e)))?
        };
        self.stats
            .stored
            .fetch_add(written.stored() as u64, Ordering::Relaxed);
        self.stats
            .duplicates
            .fetch_add(written.duplicates() as u64, Ordering::Relaxed);
        if let Some(health) = &self.health {
            health.delivered(feed.name(), received as u64, Utc::now());
        }
        Ok(IngestReceipt {
            feed: feed.name().to_string(),
            received,
            stored: written.stored(),
            duplicates: written.duplicates(),
        })
    }

    fn feeds(&self) -> Vec<FeedStatus> {
        let Some(health) = &self.health else {
            return Vec::new();
        };
        let engine = self.sink.engine();
        health.statuses(Utc::now(), &|feed| {
            let table = Feed::from_name(feed).map_or(Table::AdtEvents, Feed::table);
            engine.buffered_rows(table) as u64
        })
    }
}
