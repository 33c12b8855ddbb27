//! The audit log: who signed in (or failed to), and every analyst's statement — who, which
//! door, when, the SQL, rows answered, how long, how it ended — kept in the lake's
//! `audit_log` table, which only admins may read.
//!
//! Recording never waits: an event goes on a queue and a writer stores the queue's events
//! together on the durable path ingest uses (the write-ahead log, then the lake), so a
//! statement is not slowed by its own record, and once stored (milliseconds later) the record
//! survives a crash. Each event is also written to the `bright::audit` tracing target.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bright_engine::annotations::EVERY_ORG;
use bright_engine::arrow::datatypes::Date32Type;
use bright_engine::batch::BatchBuilder;
use bright_engine::ingest_api::IngestApi;
use bright_engine::schema::{MAX_FREE_TEXT_CHARS, Table, clip};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// One thing done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub actor: String,
    pub door: &'static str,
    pub action: &'static str,
    pub detail: Option<String>,
    pub rows: Option<i64>,
    pub millis: Option<i64>,
    pub outcome: &'static str,
}

/// Where events go; clones share the writer.
#[derive(Debug, Clone)]
pub struct Audit {
    queue: mpsc::UnboundedSender<(String, DateTime<Utc>, Event)>,
    run: Arc<str>,
    next: Arc<AtomicU64>,
}

/// Events stored together at most.
const BATCH: usize = 1_000;

impl Audit {
    /// Starts the writer, storing through `ingest`; it ends when every [`Audit`] is dropped
    /// and the queue is empty.
    pub fn start(ingest: Arc<dyn IngestApi>) -> Audit {
        let (queue, mut events) = mpsc::unbounded_channel::<(String, DateTime<Utc>, Event)>();
        tokio::spawn(async move {
            let mut pending = Vec::new();
            loop {
                if pending.is_empty() {
                    match events.recv().await {
                        Some(event) => pending.push(event),
                        None => return,
                    }
                }
                while pending.len() < BATCH {
                    match events.try_recv() {
                        Ok(event) => pending.push(event),
                        Err(_) => break,
                    }
                }
                match store(ingest.as_ref(), &pending).await {
                    Ok(()) => pending.clear(),
                    Err(e) => {
                        // Kept and tried again: an event is lost only if the process ends
                        // before the log can be written at all.
                        tracing::error!(error = %e, events = pending.len(), "Storing the audit log failed; retrying.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        let started = Utc::now();
        Audit {
            queue,
            run: format!("{}-{}", started.timestamp_micros(), std::process::id()).into(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records `event`, now, without waiting.
    pub fn record(&self, event: Event) {
        tracing::info!(
            target: "bright::audit",
            actor = %event.actor,
            door = event.door,
            action = event.action,
            detail = event.detail.as_deref().unwrap_or(""),
            rows = event.rows,
            millis = event.millis,
            outcome = event.outcome,
            "Audit event."
        );
        let id = format!("{}-{}", self.run, self.next.fetch_add(1, Ordering::Relaxed));
        if self.queue.send((id, Utc::now(), event)).is_err() {
            tracing::error!("The audit log's writer has stopped; an event was not stored.");
        }
    }
}

async fn store(
    ingest: &dyn IngestApi,
    events: &[(String, DateTime<Utc>, Event)],
) -> Result<(), String> {
    let mut rows = BatchBuilder::new(Table::AuditLog);
    for (id, at, e) in events {
        let detail = e.detail.as_deref().map(|d| clip(d, MAX_FREE_TEXT_CHARS));
        rows.row()
            .text(id)
            .text(EVERY_ORG)
            .timestamp(at.timestamp_micros())
            .text(&e.actor)
            .text(e.door)
            .text(e.action)
            .opt_text(detail.as_deref())
            .opt_int64(e.rows)
            .opt_int64(e.millis)
            .text(e.outcome)
            .date(Date32Type::from_naive_date(at.date_naive()))
            .end();
    }
    let batch = rows.finish().map_err(|e| e.to_string())?;
    ingest.record(Table::AuditLog, batch).await
}
