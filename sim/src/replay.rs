//! A simulated day split at a moment, for `bright demo`: what the source systems sent before
//! it goes into the lake with the history; what they send after it is kept, rendered as they
//! send it (HL7 v2 messages, JSON records), to be replayed through bright's ingest listeners
//! at its time, so the boards move as in a hospital.
//!
//! Both halves come from one run of the simulation, so the replay continues the history
//! exactly: a patient admitted this morning is discharged this afternoon by a message that
//! names the same visit.

use std::io::{BufRead, Write};
use std::path::Path;

use crate::clock::{Clock, SimTime};
use crate::feeds::Renderer;
use crate::records::Record;
use crate::trust::TrustModel;
use crate::{SimError, Sink};

/// How a record reaches bright live.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// An HL7 v2 ADT message, for the MLLP listener.
    Hl7(String),
    /// A JSON record for `POST /api/ingest/{feed}`.
    Post {
        feed: String,
        record: serde_json::Value,
    },
}

/// A delivery and when it is sent (microseconds since the epoch, UTC).
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub at_micros: i64,
    pub delivery: Delivery,
}

/// When a record's source system sends it live: ADT when the PAS records it, an ED attendance
/// when the patient leaves (at arrival for one still in the department when the run ends), a
/// theatre milestone as it happens. `None` for what is known ahead and arrives as extracts:
/// lists, rosters, the bed base, the ledger.
pub fn sent_at(record: &Record) -> Option<SimTime> {
    match record {
        Record::Adt(r) => Some(r.recorded_at),
        Record::Ed(r) => Some(r.departure.unwrap_or(r.arrival)),
        Record::TheatreEvent(r) => Some(r.time),
        Record::DqIssue(r) => Some(r.received),
        Record::Session(_)
        | Record::Beds(_)
        | Record::Shift(_)
        | Record::Finance(_)
        | Record::Annotation(_) => None,
    }
}

/// Sends records sent before the cutoff on to another sink, and keeps the later ones.
pub struct Split<'a> {
    past: &'a mut dyn Sink,
    cutoff_micros: i64,
    renderer: Renderer,
    future: Vec<Timed>,
}

impl<'a> Split<'a> {
    /// Records sent before `cutoff_micros` go to `past`; `seed` is the run's, for the people.
    pub fn new(past: &'a mut dyn Sink, cutoff_micros: i64, seed: u64) -> Self {
        Split {
            past,
            cutoff_micros,
            renderer: Renderer::new(seed),
            future: Vec::new(),
        }
    }

    /// The kept deliveries, in the order they are sent.
    pub fn into_future(mut self) -> Vec<Timed> {
        self.future.sort_by_key(|t| t.at_micros);
        self.future
    }
}

impl Sink for Split<'_> {
    fn record(
        &mut self,
        trust: &TrustModel,
        clock: &Clock,
        record: Record,
    ) -> Result<(), SimError> {
        let at = sent_at(&record).map(|t| clock.utc_micros(t));
        let Some(at_micros) = at.filter(|&at| at >= self.cutoff_micros) else {
            return self.past.record(trust, clock, record);
        };
        let delivery = match &record {
            Record::Adt(r) => Delivery::Hl7(self.renderer.hl7(trust, clock, r)),
            Record::Ed(r) => Delivery::Post {
                feed: "ed_attendances".into(),
                record: self.renderer.ed_attendance(trust, clock, r),
            },
            Record::TheatreEvent(r) => Delivery::Post {
                feed: "theatre_events".into(),
                record: self.renderer.theatre_event(trust, clock, r),
            },
            // Live, ingest notes what it refuses itself.
            Record::DqIssue(_) => return Ok(()),
            _ => return self.past.record(trust, clock, record),
        };
        self.future.push(Timed {
            at_micros,
            delivery,
        });
        Ok(())
    }

    fn end_of_day(&mut self, date: chrono::NaiveDate) -> Result<(), SimError> {
        self.past.end_of_day(date)
    }

    fn finish(&mut self) -> Result<(), SimError> {
        self.past.finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes deliveries to `path`, one JSON object per line.
pub fn save(deliveries: &[Timed], path: &Path) -> Result<(), SimError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io(path))?);
    for timed in deliveries {
        let line = match &timed.delivery {
            Delivery::Hl7(message) => serde_json::json!({
                "at": timed.at_micros, "feed": "hl7_adt", "message": message,
            }),
            Delivery::Post { feed, record } => serde_json::json!({
                "at": timed.at_micros, "feed": feed, "record": record,
            }),
        };
        writeln!(out, "{line}").map_err(io(path))?;
    }
    out.flush().map_err(io(path))
}

/// Reads deliveries written by [`save`].
pub fn load(path: &Path) -> Result<Vec<Timed>, SimError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        let bad = |why: &str| SimError::Replay {
            path: path.display().to_string(),
            line: i + 1,
            reason: why.to_string(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(&e.to_string()))?;
        let at_micros = value["at"].as_i64().ok_or_else(|| bad("no time"))?;
        let feed = value["feed"].as_str().ok_or_else(|| bad("no feed"))?;
        let delivery = if feed == "hl7_adt" {
            Delivery::Hl7(
                value["message"]
                    .as_str()
                    .ok_or_else(|| bad("no message"))?
                    .to_string(),
            )
        } else {
            Delivery::Post {
                feed: feed.to_string(),
                record: value["record"].clone(),
            }
        };
        out.push(Timed {
            at_micros,
            delivery,
        });
    }
    Ok(out)
}
