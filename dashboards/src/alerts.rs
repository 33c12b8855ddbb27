//! Alerts: raised by bright's rules (a theatre ready for cleaning, …), kept in an embedded
//! database, and delivered to webhooks from a durable outbox.
//!
//! Raising an alert and queueing its deliveries is one SQLite transaction, committed with a
//! full sync before [`Alerts::raise`] returns: a restart or a receiver that is down loses no
//! delivery. Each alert has a dedup key; the same key within its cooldown raises nothing, so a
//! rule that sees the same condition on every tick (or a feed that flaps) makes one alert.
//!
//! The delivery task posts each queued body to its webhook, in the order raised, and marks it
//! delivered on a 2xx answer; otherwise it retries with exponential backoff (2 s doubling, at
//! most 5 min apart) for as long as it takes, later alerts for that webhook waiting behind it;
//! each webhook has its own sender, so one that hangs or is down holds up no other. A body is
//! sent again only if bright stops between the receiver's answer and the mark, so each carries
//! its delivery id for the receiver to drop a repeat.
//!
//! Every request is signed: `X-Bright-Timestamp` (Unix seconds) and `X-Bright-Signature:
//! sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the webhook's secret>`, so a receiver
//! can check that bright sent it and that it is not an old request replayed.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bright_engine::annotations::EVERY_ORG;
use bright_engine::batch::BatchBuilder;
use bright_engine::query::QueryEngine;
use bright_engine::schema::{MAX_FREE_TEXT_CHARS, Table};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Most alerts copied into the lake in one commit.
const LAKE_BATCH: usize = 1_000;
/// How long a copy into the lake waits for the rest of a burst of alerts.
const LAKE_GATHER: Duration = Duration::from_secs(1);
/// How long before a failed copy into the lake is tried again.
const LAKE_RETRY: Duration = Duration::from_secs(60);

/// Longest wait between two attempts of one delivery.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A receiver that has not answered by then counts as down for this attempt.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `[alerts]` section of `bright.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where alerts are sent besides the pages.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    pub cleaning_notice_at: CleaningNotice,
    #[serde(default)]
    pub pressure: PressureThresholds,
}

impl AlertsConfig {
    pub fn rules(&self) -> Rules {
        Rules {
            cleaning_notice_at: self.cleaning_notice_at,
            pressure: self.pressure,
        }
    }
}

/// The milestone of a case that tells the cleaning team: at the patient leaving theatre (the
/// room is ready for cleaning), or earlier for notice — at the end of surgery or of
/// anaesthesia, when the room will free up within minutes.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CleaningNotice {
    SurgeryEnd,
    AnaesthesiaEnd,
    #[default]
    OutOfTheatre,
}

impl CleaningNotice {
    pub fn milestone(self) -> &'static str {
        match self {
            CleaningNotice::SurgeryEnd => "surgery_end",
            CleaningNotice::AnaesthesiaEnd => "anaesthesia_end",
            CleaningNotice::OutOfTheatre => "out_of_theatre",
        }
    }
}

/// The thresholds of pressure levels 2, 3 and 4 for each parameter of the command centre's
/// level (a trust sets its own from its OPEL action card).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PressureThresholds {
    #[serde(default = "default_occupancy")]
    pub ga_occupancy_percent: [f64; 3],
    #[serde(default = "default_over_12h")]
    pub ed_over_12h: [f64; 3],
    #[serde(default = "default_handover")]
    pub handover_mean_min: [f64; 3],
    #[serde(default = "default_dta")]
    pub decisions_to_admit: [f64; 3],
}

fn default_occupancy() -> [f64; 3] {
    [92.0, 95.0, 98.0]
}
fn default_over_12h() -> [f64; 3] {
    [1.0, 5.0, 10.0]
}
fn default_handover() -> [f64; 3] {
    [15.0, 30.0, 60.0]
}
fn default_dta() -> [f64; 3] {
    [5.0, 10.0, 20.0]
}

impl Default for PressureThresholds {
    fn default() -> Self {
        PressureThresholds {
            ga_occupancy_percent: default_occupancy(),
            ed_over_12h: default_over_12h(),
            handover_mean_min: default_handover(),
            decisions_to_admit: default_dta(),
        }
    }
}

impl PressureThresholds {
    /// Each parameter's name and thresholds, in the order the wall shows them.
    pub fn parameters(&self) -> [(&'static str, [f64; 3]); 4] {
        [
            ("G&A bed occupancy (%)", self.ga_occupancy_percent),
            ("ED patients over 12 hours", self.ed_over_12h),
            (
                "Mean ambulance handover, last hour (min)",
                self.handover_mean_min,
            ),
            ("Decisions to admit waiting", self.decisions_to_admit),
        ]
    }
}

/// What the rules watch for, from `[alerts]`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rules {
    pub cleaning_notice_at: CleaningNotice,
    pub pressure: PressureThresholds,
}

impl Rules {
    /// Refuses thresholds that do not rise from level 2 to 4.
    pub fn check(&self) -> Result<(), AlertsError> {
        for (name, t) in self.pressure.parameters() {
            if !(t[0] <= t[1] && t[1] <= t[2]) || t.iter().any(|x| !x.is_finite()) {
                return Err(AlertsError::Thresholds {
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// One webhook: `url` gets a JSON body per alert of the kinds it wants.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    /// The environment variable holding the signing secret (kept out of the file).
    pub secret_env: String,
    /// Alert kinds sent (e.g. `room_ready_for_cleaning`); none means every kind.
    #[serde(default)]
    pub kinds: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("webhook '{name}': {reason}")]
    Webhook { name: String, reason: String },
    #[error("the alert store: {0}")]
    Store(#[from] rusqlite::Error),
    #[error("[alerts.pressure] {name}: the thresholds of levels 2, 3 and 4 must rise")]
    Thresholds { name: String },
    #[error("copying alerts into the lake: {0}")]
    Lake(String),
}

/// A webhook ready to send to.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub name: String,
    pub url: reqwest::Url,
    secret: Vec<u8>,
    kinds: Vec<String>,
}

impl Webhook {
    pub fn new(
        name: &str,
        url: &str,
        secret: &[u8],
        kinds: &[String],
    ) -> Result<Self, AlertsError> {
        let bad = |reason: String| AlertsError::Webhook {
            name: name.to_string(),
            reason,
        };
        let url = reqwest::Url::parse(url).map_err(|e| bad(format!("url '{url}': {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("url '{url}' is not http or https")));
        }
        if secret.len() < 16 {
            return Err(bad("the secret needs at least 16 bytes".into()));
        }
        Ok(Webhook {
            name: name.to_string(),
            url,
            secret: secret.to_vec(),
            kinds: kinds.to_vec(),
        })
    }

    /// The configured webhooks, their secrets read from the environment.
    pub fn from_config(config: &AlertsConfig) -> Result<Vec<Webhook>, AlertsError> {
        config
            .webhooks
            .iter()
            .map(|w| {
                let secret = std::env::var(&w.secret_env).map_err(|_| AlertsError::Webhook {
                    name: w.name.clone(),
                    reason: format!("the environment variable {} is not set", w.secret_env),
                })?;
                Webhook::new(&w.name, &w.url, secret.as_bytes(), &w.kinds)
            })
            .collect()
    }

    fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

/// The signature header's value for `body` sent at `timestamp` with `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    fn parse(text: &str) -> Severity {
        match text {
            "critical" => Severity::Critical,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        }
    }
}

/// What a rule raises.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub kind: &'static str,
    pub severity: Severity,
    /// Alerts with the same key within `cooldown` of each other are one alert.
    pub key: String,
    pub cooldown: Duration,
    pub title: String,
    pub detail: String,
    /// The page that shows what the alert is about.
    pub link: Option<String>,
}

/// An alert as kept and sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub kind: String,
    pub severity: Severity,
    pub key: String,
    pub title: String,
    pub detail: String,
    pub link: Option<String>,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// Deliveries queued, made and failing, for the operations page and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Deliveries {
    pub pending: u64,
    pub delivered: u64,
    /// Pending deliveries whose last attempt failed.
    pub failing: u64,
}

/// One delivery still to make.
struct Pending {
    id: i64,
    body: String,
    attempts: i64,
    /// Microseconds since the Unix epoch.
    next_at: i64,
}

/// The alert store and its webhooks.
#[derive(Debug)]
pub struct Alerts {
    db: Mutex<Connection>,
    webhooks: Vec<Webhook>,
    /// Ticks when an alert queues deliveries: each webhook's sender looks at its queue.
    queued: tokio::sync::watch::Sender<u64>,
    rules: Rules,
    /// Ticks after each delivery attempt is recorded, for whoever waits on the outbox.
    attempted: tokio::sync::watch::Sender<u64>,
    /// Ticks on each alert raised, for the copy into the lake.
    raised_tick: tokio::sync::watch::Sender<u64>,
}

/// Text cut to what the lake's free-text columns hold.
fn clip(text: &str) -> String {
    text.chars().take(MAX_FREE_TEXT_CHARS).collect()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

impl Alerts {
    /// Opens (creating if need be) the store at `path`, delivering to `webhooks`.
    pub fn open(path: &Path, webhooks: Vec<Webhook>) -> Result<Alerts, AlertsError> {
        let db = Connection::open(path)?;
        // FULL syncs every commit: an alert raised (and its deliveries) survives a crash.
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS alerts (
                id INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                severity TEXT NOT NULL,
                dedup_key TEXT NOT NULL,
                title TEXT NOT NULL,
                detail TEXT NOT NULL,
                link TEXT,
                raised_at INTEGER NOT NULL,
                acknowledged_by TEXT,
                acknowledged_at INTEGER
            ) STRICT;
            CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (dedup_key, raised_at);
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY,
                alert_id INTEGER NOT NULL REFERENCES alerts (id),
                webhook TEXT NOT NULL,
                body TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at INTEGER NOT NULL,
                delivered_at INTEGER,
                last_error TEXT
            ) STRICT;
            CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at, next_at);",
        )?;
        // Which alerts the lake's `alerts` table has (added after the first stores were made).
        let columns: Vec<String> = db
            .prepare("SELECT name FROM pragma_table_info('alerts')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        if !columns.iter().any(|c| c == "in_lake") {
            db.execute_batch("ALTER TABLE alerts ADD COLUMN in_lake INTEGER NOT NULL DEFAULT 0;")?;
        }
        db.execute_batch("CREATE INDEX IF NOT EXISTS alerts_to_copy ON alerts (in_lake, id);")?;
        Ok(Alerts {
            db: Mutex::new(db),
            webhooks,
            queued: tokio::sync::watch::Sender::new(0),
            rules: Rules::default(),
            attempted: tokio::sync::watch::Sender::new(0),
            raised_tick: tokio::sync::watch::Sender::new(0),
        })
    }

    /// The rules' settings (defaults until set).
    pub fn with_rules(mut self, rules: Rules) -> Self {
        self.rules = rules;
        self
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A poisoned lock only means a thread panicked between whole transactions.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises `alert` at `now` and queues it for every webhook that wants its kind, unless
    /// an alert with the same key was raised within its cooldown (then `None`).
    pub fn raise(
        &self,
        alert: &NewAlert,
        now: DateTime<Utc>,
    ) -> Result<Option<Alert>, AlertsError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let cooldown = chrono::Duration::from_std(alert.cooldown).unwrap_or(chrono::Duration::MAX);
        let since = now
            .checked_sub_signed(cooldown)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let recent: Option<i64> = tx
            .query_row(
                "SELECT id FROM alerts WHERE dedup_key = ?1 AND raised_at > ?2 LIMIT 1",
                params![alert.key, micros(since)],
                |row| row.get(0),
            )
            .optional()?;
        if recent.is_some() {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO alerts (kind, severity, dedup_key, title, detail, link, raised_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                alert.kind,
                alert.severity.name(),
                alert.key,
                alert.title,
                alert.detail,
                alert.link,
                micros(now)
            ],
        )?;
        let raised = Alert {
            id: tx.last_insert_rowid(),
            kind: alert.kind.to_string(),
            severity: alert.severity,
            key: alert.key.clone(),
            title: alert.title.clone(),
            detail: alert.detail.clone(),
            link: alert.link.clone(),
            raised_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
        };
        let body = serde_json::to_string(&raised).unwrap_or_default();
        let mut queued = false;
        for webhook in self.webhooks.iter().filter(|w| w.wants(alert.kind)) {
            tx.execute(
                "INSERT INTO outbox (alert_id, webhook, body, next_at) VALUES (?1, ?2, ?3, ?4)",
                params![raised.id, webhook.name, body, micros(now)],
            )?;
            queued = true;
        }
        tx.commit()?;
        self.raised_tick.send_modify(|n| *n = n.wrapping_add(1));
        if queued {
            self.queued.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(Some(raised))
    }

    /// The latest `n` alerts, newest first.
    pub fn latest(&self, n: usize) -> Result<Vec<Alert>, AlertsError> {
        self.select(
            "ORDER BY raised_at DESC, id DESC LIMIT ?1",
            params![n as i64],
        )
    }

    /// The alerts not yet copied into the lake, oldest first, at most `n`.
    fn not_in_lake(&self, n: usize) -> Result<Vec<Alert>, AlertsError> {
        self.select("WHERE in_lake = 0 ORDER BY id LIMIT ?1", params![n as i64])
    }

    fn select(&self, rest: &str, values: impl rusqlite::Params) -> Result<Vec<Alert>, AlertsError> {
        let db = self.db();
        let mut statement = db.prepare(&format!(
            "SELECT id, kind, severity, dedup_key, title, detail, link, raised_at,
                    acknowledged_by, acknowledged_at
             FROM alerts {rest}"
        ))?;
        let rows = statement.query_map(values, |row| {
            Ok(Alert {
                id: row.get(0)?,
                kind: row.get(1)?,
                severity: Severity::parse(&row.get::<_, String>(2)?),
                key: row.get(3)?,
                title: row.get(4)?,
                detail: row.get(5)?,
                link: row.get(6)?,
                raised_at: time(row.get(7)?),
                acknowledged_by: row.get(8)?,
                acknowledged_at: row.get::<_, Option<i64>>(9)?.map(time),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records that `by` has seen alert `id` and is dealing with it; false when there is no
    /// such alert. The first acknowledgement stands.
    pub fn acknowledge(&self, id: i64, by: &str, now: DateTime<Utc>) -> Result<bool, AlertsError> {
        let db = self.db();
        let exists: Option<i64> = db
            .query_row("SELECT id FROM alerts WHERE id = ?1", params![id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Ok(false);
        }
        db.execute(
            "UPDATE alerts SET acknowledged_by = ?2, acknowledged_at = ?3
             WHERE id = ?1 AND acknowledged_by IS NULL",
            params![id, by, micros(now)],
        )?;
        Ok(true)
    }

    /// Copies the alerts not yet in the lake's `alerts` table into it, one commit per call
    /// (at most [`LAKE_BATCH`]), then marks them copied. An alert the lake already holds (the
    /// same number raised at the same instant: bright stopped between the commit and the
    /// mark) is not written again; a new store over an old lake numbers its alerts from 1
    /// again, and they are new. Returns how many were written.
    pub async fn copy_to_lake(&self, engine: &QueryEngine) -> Result<usize, AlertsError> {
        let lake = |e: &dyn std::fmt::Display| AlertsError::Lake(e.to_string());
        let alerts = self.not_in_lake(LAKE_BATCH)?;
        let (Some(first), Some(last)) = (alerts.first(), alerts.last()) else {
            return Ok(0);
        };
        let days = |a: &Alert| (a.raised_at.date_naive() - chrono::NaiveDate::default()).num_days();
        let (from, to) = alerts.iter().map(|a| a.raised_at.date_naive()).fold(
            (first.raised_at.date_naive(), last.raised_at.date_naive()),
            |(lo, hi), d| (lo.min(d), hi.max(d)),
        );
        let there = bright_engine::reads::alerts_held(engine, first.id, last.id, from, to)
            .await
            .map_err(|e| lake(&e))?;
        let mut rows = BatchBuilder::new(Table::Alerts);
        let mut written = 0;
        for a in alerts
            .iter()
            .filter(|a| !there.contains(&(a.id, micros(a.raised_at))))
        {
            rows.row()
                .int64(a.id)
                .text(EVERY_ORG)
                .text(&a.kind)
                .text(a.severity.name())
                .text(&a.key)
                .text(&clip(&a.title))
                .text(&clip(&a.detail))
                .opt_text(a.link.as_deref())
                .timestamp(micros(a.raised_at))
                .date(i32::try_from(days(a)).unwrap_or(0))
                .end();
            written += 1;
        }
        if written > 0 {
            let batch = rows.finish().map_err(|e| lake(&e))?;
            engine
                .lake()
                .append(Table::Alerts, vec![batch])
                .await
                .map_err(|e| lake(&e))?;
            engine
                .refresh_table(Table::Alerts)
                .await
                .map_err(|e| lake(&e))?;
        }
        let db = self.db();
        db.execute(
            "UPDATE alerts SET in_lake = 1 WHERE in_lake = 0 AND id BETWEEN ?1 AND ?2",
            params![first.id, last.id],
        )?;
        Ok(written)
    }

    /// Keeps the lake's `alerts` table up to date until `stopped`: a copy at start (what was
    /// raised while the lake copy was not running), then after alerts are raised, a burst
    /// gathered into one commit. The store stays the record: a copy that fails is retried.
    pub fn spawn_lake_copy(
        self: std::sync::Arc<Self>,
        engine: std::sync::Arc<QueryEngine>,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut raised = self.raised_tick.subscribe();
            loop {
                raised.mark_unchanged();
                let wait = match self.copy_to_lake(&engine).await {
                    // More than a batch was waiting: the next at once.
                    Ok(_) if self.not_in_lake(1).is_ok_and(|more| !more.is_empty()) => {
                        Duration::ZERO
                    }
                    Ok(_) => LAKE_RETRY,
                    Err(e) => {
                        tracing::error!(error = %e, "Copying alerts into the lake failed; retrying.");
                        LAKE_RETRY
                    }
                };
                let burst = tokio::select! {
                    _ = raised.changed() => true,
                    () = tokio::time::sleep(wait) => false,
                    _ = stopped.wait_for(|stop| *stop) => return,
                };
                if burst {
                    // Alerts come in bursts (a tick's rules): one commit for the burst.
                    tokio::select! {
                        () = tokio::time::sleep(LAKE_GATHER) => {}
                        _ = stopped.wait_for(|stop| *stop) => return,
                    }
                }
            }
        })
    }

    /// A signal that ticks after each delivery attempt is recorded (made or failed).
    pub fn attempts(&self) -> tokio::sync::watch::Receiver<u64> {
        self.attempted.subscribe()
    }

    /// Alerts raised, all told.
    pub fn raised(&self) -> Result<u64, AlertsError> {
        let db = self.db();
        let n: i64 = db.query_row("SELECT count(*) FROM alerts", [], |row| row.get(0))?;
        Ok(n as u64)
    }

    /// Counts of the outbox.
    pub fn deliveries(&self) -> Result<Deliveries, AlertsError> {
        let db = self.db();
        Ok(db.query_row(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL),
                    count(*) FILTER (WHERE delivered_at IS NOT NULL),
                    count(*) FILTER (WHERE delivered_at IS NULL AND attempts > 0)
             FROM outbox",
            [],
            |row| {
                Ok(Deliveries {
                    pending: row.get::<_, i64>(0)? as u64,
                    delivered: row.get::<_, i64>(1)? as u64,
                    failing: row.get::<_, i64>(2)? as u64,
                })
            },
        )?)
    }

    /// Deliveries to `webhook` not yet made, oldest first, with when each is next due.
    fn undelivered(&self, webhook: &str) -> Result<Vec<Pending>, AlertsError> {
        let db = self.db();
        let mut statement = db.prepare(
            "SELECT id, body, attempts, next_at FROM outbox
             WHERE delivered_at IS NULL AND webhook = ?1 ORDER BY id LIMIT 256",
        )?;
        let rows = statement.query_map([webhook], |row| {
            Ok(Pending {
                id: row.get(0)?,
                body: row.get(1)?,
                attempts: row.get(2)?,
                next_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next pending delivery to `webhook` falls due, if any.
    fn next_due(&self, webhook: &str) -> Result<Option<DateTime<Utc>>, AlertsError> {
        let db = self.db();
        let next: Option<i64> = db.query_row(
            "SELECT min(next_at) FROM outbox WHERE delivered_at IS NULL AND webhook = ?1",
            [webhook],
            |row| row.get(0),
        )?;
        Ok(next.map(time))
    }

    fn settle(
        &self,
        id: i64,
        attempts: i64,
        outcome: Result<(), String>,
        now: DateTime<Utc>,
    ) -> Result<(), AlertsError> {
        let db = self.db();
        match outcome {
            Ok(()) => db.execute(
                "UPDATE outbox SET delivered_at = ?2, attempts = ?3, last_error = NULL WHERE id = ?1",
                params![id, micros(now), attempts + 1],
            )?,
            Err(error) => {
                let backoff = Duration::from_secs(2u64.saturating_pow(attempts.clamp(0, 30) as u32 + 1))
                    .min(MAX_BACKOFF);
                let next = now + chrono::Duration::from_std(backoff).unwrap_or_default();
                db.execute(
                    "UPDATE outbox SET attempts = ?2, next_at = ?3, last_error = ?4 WHERE id = ?1",
                    params![id, attempts + 1, micros(next), error],
                )?
            }
        };
        Ok(())
    }

    /// One attempt of each delivery to `webhook` due now, in the order raised: behind a
    /// delivery waiting for its retry, the later ones wait too.
    async fn deliver_due(
        &self,
        client: &reqwest::Client,
        webhook: &Webhook,
    ) -> Result<(), AlertsError> {
        for Pending {
            id,
            body,
            attempts,
            next_at,
        } in self.undelivered(&webhook.name)?
        {
            if next_at > micros(Utc::now()) {
                break;
            }
            let timestamp = Utc::now().timestamp();
            let sent = client
                .post(webhook.url.clone())
                .header("content-type", "application/json")
                .header("x-bright-delivery", id.to_string())
                .header("x-bright-timestamp", timestamp.to_string())
                .header(
                    "x-bright-signature",
                    signature(&webhook.secret, timestamp, body.as_bytes()),
                )
                .body(body)
                .send()
                .await;
            let outcome = match sent {
                Ok(answer) if answer.status().is_success() => Ok(()),
                Ok(answer) => Err(format!("answered {}", answer.status())),
                Err(e) => Err(e.to_string()),
            };
            let failed = outcome.is_err();
            if let Err(e) = &outcome {
                tracing::warn!(webhook = %webhook.name, delivery = id, error = %e, "A webhook delivery failed; it will be retried.");
            }
            self.settle(id, attempts, outcome, Utc::now())?;
            self.attempted.send_modify(|n| *n = n.wrapping_add(1));
            if failed {
                break;
            }
        }
        Ok(())
    }

    /// Delivers the outbox until `stopped` turns true: each webhook by its own sender (a
    /// receiver that hangs delays only its own deliveries), at once when an alert is queued
    /// and when a retry falls due. A delivery to a webhook no longer configured waits in the
    /// outbox until it is back.
    pub fn spawn_delivery(
        self: std::sync::Arc<Self>,
        stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.webhooks.is_empty() {
                return;
            }
            let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e, "No HTTP client for the webhooks.");
                    return;
                }
            };
            let senders = self.webhooks.iter().map(|webhook| {
                self.clone()
                    .send_to(client.clone(), webhook.clone(), stopped.clone())
            });
            futures_util::future::join_all(senders).await;
        })
    }

    /// One webhook's sender: its queue in order, then a wait for the next alert or retry.
    async fn send_to(
        self: std::sync::Arc<Self>,
        client: reqwest::Client,
        webhook: Webhook,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut queued = self.queued.subscribe();
        loop {
            queued.mark_unchanged();
            // Stopping does not wait for a receiver that is slow to answer: the delivery stays
            // in the outbox and is sent at the next start.
            let delivered = tokio::select! {
                done = self.deliver_due(&client, &webhook) => done,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            if let Err(e) = delivered {
                tracing::error!(webhook = %webhook.name, error = %e, "Reading the alert outbox failed.");
            }
            let wait = match self.next_due(&webhook.name) {
                Ok(Some(next)) => (next - Utc::now()).to_std().unwrap_or(Duration::ZERO),
                Ok(None) => MAX_BACKOFF,
                Err(_) => Duration::from_secs(5),
            }
            .max(Duration::from_millis(50));
            tokio::select! {
                _ = queued.changed() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaning(key: &str) -> NewAlert {
        NewAlert {
            kind: "room_ready_for_cleaning",
            severity: Severity::Info,
            key: key.into(),
            cooldown: Duration::from_secs(3600),
            title: "Theatre 9 is ready for cleaning".into(),
            detail: "Patient out of theatre at 14:05.".into(),
            link: Some("/theatres".into()),
        }
    }

    #[test]
    fn the_same_key_within_its_cooldown_raises_one_alert() {
        let dir = tempfile::tempdir().expect("a folder");
        let hook = Webhook::new("cleaning", "http://127.0.0.1:9/", b"sixteen byte key", &[])
            .expect("a webhook");
        let alerts = Alerts::open(&dir.path().join("alerts.sqlite3"), vec![hook]).expect("opens");
        let t0 = Utc::now();
        let first = alerts
            .raise(&cleaning("c1"), t0)
            .expect("raised")
            .expect("new");
        let again = alerts
            .raise(&cleaning("c1"), t0 + chrono::Duration::minutes(30))
            .expect("raised");
        assert_eq!(again, None, "within the cooldown");
        let other = alerts.raise(&cleaning("c2"), t0).expect("raised");
        assert!(other.is_some(), "another key is another alert");
        let later = alerts
            .raise(&cleaning("c1"), t0 + chrono::Duration::minutes(61))
            .expect("raised");
        assert!(later.is_some(), "after the cooldown it is raised again");
        assert_eq!(alerts.latest(10).expect("listed").len(), 3);
        assert_eq!(alerts.deliveries().expect("counted").pending, 3);

        assert!(
            alerts
                .acknowledge(first.id, "theatre.lead", t0)
                .expect("acked")
        );
        assert!(
            alerts
                .acknowledge(first.id, "someone.else", t0)
                .expect("acked")
        );
        let acked = alerts
            .latest(10)
            .expect("listed")
            .into_iter()
            .find(|a| a.id == first.id)
            .expect("kept");
        assert_eq!(
            acked.acknowledged_by.as_deref(),
            Some("theatre.lead"),
            "the first stands"
        );
        assert!(!alerts.acknowledge(999, "x", t0).expect("answered"));
    }

    #[test]
    fn only_the_kinds_a_webhook_wants_are_queued_for_it_and_bad_webhooks_are_refused() {
        let dir = tempfile::tempdir().expect("a folder");
        let hook = Webhook::new(
            "ops",
            "https://ops.example.nhs.uk/bright",
            b"sixteen byte key",
            &["feed_stale".to_string()],
        )
        .expect("a webhook");
        let alerts = Alerts::open(&dir.path().join("alerts.sqlite3"), vec![hook]).expect("opens");
        alerts.raise(&cleaning("c1"), Utc::now()).expect("raised");
        assert_eq!(alerts.deliveries().expect("counted").pending, 0);
        assert!(Webhook::new("x", "ftp://host/", b"sixteen byte key", &[]).is_err());
        assert!(Webhook::new("x", "http://host/", b"short", &[]).is_err());
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let key = b"sixteen byte key";
        let signed = signature(key, 1_700_000_000, b"{}");
        assert!(
            signed.starts_with("sha256=") && signed.len() == 7 + 64,
            "{signed}"
        );
        assert_ne!(signed, signature(key, 1_700_000_001, b"{}"));
        assert_ne!(signed, signature(key, 1_700_000_000, b"{ }"));
        assert_ne!(signed, signature(b"another key, 16+", 1_700_000_000, b"{}"));
    }
}
