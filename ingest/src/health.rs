//! Feed health: for each feed, when it last delivered, how much, how much was refused, what
//! waits for the lake, and whether it has gone quiet for longer than it should (stale).
//!
//! Every source reports here (MLLP messages, HTTP requests, dropped files), so the command
//! centre and alerts see one picture. Rates and refusal shares are over the last
//! [`WINDOW_MINUTES`] minutes. Settings per feed (the owning team told about refusals, the
//! silence after which a feed is stale) come from `[ingest.feeds.<feed>]` in `bright.toml`,
//! with defaults that suit each feed: minutes for ADT and theatre events, a day and a bit
//! for nightly extracts, a month and a bit for the ledger.
//!
//! Counts start at zero when bright starts; a feed that has delivered nothing since is
//! reported with no last delivery and is stale once its interval has passed since the start.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use bright_engine::ingest_api::FeedStatus;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::transforms::{Feed, TimeWindow};

/// Minutes over which rates and refusal shares are computed.
pub const WINDOW_MINUTES: i64 = 15;

pub use bright_engine::ingest_api::HL7_ADT;
use bright_engine::ingest_api::default_owner;

/// `[ingest.feeds.<feed>]` in `bright.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The team told about the feed's refused and suspicious records (`dq_issues.owner`).
    pub owner: Option<String>,
    /// Minutes of silence after which the feed is stale.
    pub stale_after_minutes: Option<u64>,
}

/// `[ingest]` in `bright.toml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// A file holding the pseudonymisation key (16+ bytes; a trailing newline is not part of
    /// it), so the key need not be in the environment. `BRIGHT_PSEUDO_KEY` wins when set.
    pub pseudo_key_file: Option<std::path::PathBuf>,
    /// Times and dates before this day (`YYYY-MM-DD`) are refused; 1990-01-01 by default.
    pub earliest_date: Option<String>,
    /// Times and dates more than this many days past today are refused; 731 by default.
    pub days_ahead: Option<u32>,
    #[serde(default)]
    pub feeds: BTreeMap<String, FeedConfig>,
}

impl IngestConfig {
    /// The times feeds may send (see [`TimeWindow`]).
    pub fn window(&self) -> Result<TimeWindow, String> {
        let mut window = TimeWindow::default();
        if let Some(text) = &self.earliest_date {
            window.earliest = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|e| format!("[ingest] earliest_date '{text}' is not YYYY-MM-DD ({e})"))?;
        }
        if let Some(days) = self.days_ahead {
            window.days_ahead = days;
        }
        Ok(window)
    }
}

/// A feed name in the configuration that bright does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[ingest.feeds.{name}]: no such feed; feeds: {known}")]
pub struct UnknownFeed {
    pub name: String,
    pub known: String,
}

/// Every feed's name: the HL7 ADT feed, then the others.
pub fn feed_names() -> Vec<&'static str> {
    std::iter::once(HL7_ADT)
        .chain(Feed::ALL.map(Feed::name))
        .collect()
}

/// The team told about `feed`'s refused records: from `health` when a source has one.
pub fn owner<'a>(health: Option<&'a FeedHealth>, feed: &str) -> &'a str {
    health.map_or_else(|| default_owner(feed), |h| h.owner(feed))
}

fn default_stale_minutes(feed: &str) -> u64 {
    match Feed::from_name(feed) {
        None => 15,
        Some(Feed::TheatreEvents) => 30,
        Some(Feed::EdAttendances | Feed::TheatreSessions | Feed::WorkforceShifts) => 26 * 60,
        Some(Feed::Beds) => 8 * 24 * 60,
        Some(Feed::FinanceLedger) => 35 * 24 * 60,
    }
}

#[derive(Debug, Default)]
struct Counters {
    last_delivery: Option<DateTime<Utc>>,
    records: u64,
    deliveries: u64,
    refused: u64,
    /// (minute since the epoch, records, deliveries, refused) for the recent minutes.
    minutes: VecDeque<(i64, u64, u64, u64)>,
}

impl Counters {
    fn bucket(&mut self, at: DateTime<Utc>) -> &mut (i64, u64, u64, u64) {
        let minute = at.timestamp().div_euclid(60);
        while self
            .minutes
            .front()
            .is_some_and(|b| b.0 <= minute - WINDOW_MINUTES)
        {
            self.minutes.pop_front();
        }
        if self.minutes.back().is_none_or(|b| b.0 < minute) {
            self.minutes.push_back((minute, 0, 0, 0));
        }
        // A report stamped earlier than the newest minute (clocks, threads) counts there.
        self.minutes.back_mut().expect("pushed above")
    }
}

#[derive(Debug)]
struct Settings {
    owner: String,
    stale_after_minutes: u64,
}

/// The health of every feed, shared by all sources.
#[derive(Debug)]
pub struct FeedHealth {
    started: DateTime<Utc>,
    settings: BTreeMap<&'static str, Settings>,
    counters: Mutex<BTreeMap<&'static str, Counters>>,
}

impl FeedHealth {
    /// Health counters from `started`, with the configured settings over the defaults.
    pub fn new(config: &IngestConfig, started: DateTime<Utc>) -> Result<Self, UnknownFeed> {
        let names = feed_names();
        for name in config.feeds.keys() {
            if !names.contains(&name.as_str()) {
                return Err(UnknownFeed {
                    name: name.clone(),
                    known: names.join(", "),
                });
            }
        }
        let settings = names
            .iter()
            .map(|&name| {
                let configured = config.feeds.get(name).cloned().unwrap_or_default();
                let settings = Settings {
                    owner: configured
                        .owner
                        .unwrap_or_else(|| default_owner(name).to_string()),
                    stale_after_minutes: configured
                        .stale_after_minutes
                        .unwrap_or_else(|| default_stale_minutes(name)),
                };
                (name, settings)
            })
            .collect();
        Ok(FeedHealth {
            started,
            settings,
            counters: Mutex::new(BTreeMap::new()),
        })
    }

    /// The team told about `feed`'s refused and suspicious records.
    pub fn owner(&self, feed: &str) -> &str {
        self.settings
            .get(feed)
            .map_or_else(|| default_owner(feed), |s| s.owner.as_str())
    }

    fn with<T>(&self, feed: &str, f: impl FnOnce(&mut Counters) -> T) -> Option<T> {
        let (&name, _) = self.settings.get_key_value(feed)?;
        // A poisoned lock still holds whole counters.
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        Some(f(counters.entry(name).or_default()))
    }

    /// A delivery (message, request or file) taken, with its records.
    pub fn delivered(&self, feed: &str, records: u64, at: DateTime<Utc>) {
        self.with(feed, |c| {
            c.last_delivery = Some(c.last_delivery.map_or(at, |last| last.max(at)));
            c.records += records;
            c.deliveries += 1;
            let bucket = c.bucket(at);
            bucket.1 += records;
            bucket.2 += 1;
        });
    }

    /// A delivery refused for its content.
    pub fn refused(&self, feed: &str, at: DateTime<Utc>) {
        self.with(feed, |c| {
            c.refused += 1;
            c.bucket(at).3 += 1;
        });
    }

    /// Every feed's status at `now`; `buffered` gives the rows of a feed waiting for the lake.
    pub fn statuses(&self, now: DateTime<Utc>, buffered: &dyn Fn(&str) -> u64) -> Vec<FeedStatus> {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let empty = Counters::default();
        let now_minute = now.timestamp().div_euclid(60);
        self.settings
            .iter()
            .map(|(&feed, settings)| {
                let c = counters.get(feed).unwrap_or(&empty);
                let recent = c
                    .minutes
                    .iter()
                    .filter(|b| b.0 > now_minute - WINDOW_MINUTES);
                let (records, deliveries, refused) =
                    recent.fold((0, 0, 0), |acc, b| (acc.0 + b.1, acc.1 + b.2, acc.2 + b.3));
                let quiet_since = c.last_delivery.unwrap_or(self.started);
                let silent = (now - quiet_since).num_seconds().max(0);
                let stale_after = settings.stale_after_minutes * 60;
                FeedStatus {
                    feed: feed.to_string(),
                    owner: settings.owner.clone(),
                    last_delivery: c.last_delivery.map(|t| t.to_rfc3339()),
                    seconds_silent: silent as u64,
                    stale_after_seconds: stale_after,
                    stale: silent as u64 > stale_after,
                    records: c.records,
                    deliveries: c.deliveries,
                    refused: c.refused,
                    records_per_minute: records as f64 / WINDOW_MINUTES as f64,
                    refused_share: if deliveries + refused == 0 {
                        0.0
                    } else {
                        refused as f64 / (deliveries + refused) as f64
                    },
                    buffered_rows: buffered(feed),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    fn status<'a>(statuses: &'a [FeedStatus], feed: &str) -> &'a FeedStatus {
        statuses.iter().find(|s| s.feed == feed).unwrap()
    }

    #[test]
    fn a_feed_is_stale_once_silent_beyond_its_interval() {
        let health = FeedHealth::new(&IngestConfig::default(), at(0)).unwrap();
        health.delivered(HL7_ADT, 1, at(1));
        let none = |_: &str| 0;
        let now = health.statuses(at(10), &none);
        assert!(!status(&now, HL7_ADT).stale);
        assert_eq!(status(&now, HL7_ADT).seconds_silent, 9 * 60);
        // Nothing from theatres since the start, but 30 minutes have not passed.
        assert!(!status(&now, "theatre_events").stale);
        let later = health.statuses(at(17), &none);
        assert!(status(&later, HL7_ADT).stale, "16 minutes without ADT");
        assert!(!status(&later, "ed_attendances").stale, "a nightly extract");
        assert!(status(&health.statuses(at(31), &none), "theatre_events").stale);
    }

    #[test]
    fn rates_and_refusals_cover_the_recent_window() {
        let health = FeedHealth::new(&IngestConfig::default(), at(0)).unwrap();
        for minute in 0..30 {
            health.delivered("theatre_events", 10, at(minute));
        }
        health.refused("theatre_events", at(29));
        let now = health.statuses(at(29), &|f| if f == "theatre_events" { 7 } else { 0 });
        let theatre = status(&now, "theatre_events");
        assert_eq!(theatre.records, 300);
        assert_eq!(theatre.deliveries, 30);
        assert_eq!(theatre.refused, 1);
        // The last 15 minutes: 150 records, 15 deliveries and one refusal.
        assert!((theatre.records_per_minute - 10.0).abs() < 1e-9);
        assert!((theatre.refused_share - 1.0 / 16.0).abs() < 1e-9);
        assert_eq!(theatre.buffered_rows, 7);
        assert_eq!(status(&now, "beds").records_per_minute, 0.0);
    }

    #[test]
    fn settings_come_from_the_configuration() {
        let config: IngestConfig = toml::from_str(
            "[feeds.hl7_adt]\nowner = \"Integration team\"\nstale_after_minutes = 5\n",
        )
        .unwrap();
        let health = FeedHealth::new(&config, at(0)).unwrap();
        assert_eq!(health.owner(HL7_ADT), "Integration team");
        assert_eq!(health.owner("beds"), "Bed management team");
        assert!(status(&health.statuses(at(6), &|_| 0), HL7_ADT).stale);
        let bad: IngestConfig = toml::from_str("[feeds.pas]\nowner = \"x\"\n").unwrap();
        let e = FeedHealth::new(&bad, at(0)).unwrap_err();
        assert!(e.to_string().contains("[ingest.feeds.pas]"), "{e}");
    }
}
