//! bright-sim: a seeded, deterministic simulated acute trust (or a whole country of them).
//!
//! [`Simulation`] runs the hospital day by day on a local clock: emergency department
//! arrivals, admissions, transfers and discharges under real bed constraints
//! ([`hospital`]), theatre lists and case milestones ([`theatres`]), rosters and the monthly
//! ledger ([`workforce`]). It emits [`records::Record`]s to a [`Sink`]: [`lake_sink`] turns
//! them into canonical Arrow batches and Delta commits, [`feeds`] writes them as the files real
//! systems produce (HL7 v2 ADT, an ED CSV extract, theatre NDJSON events, roster CSV).
//!
//! The same seed and dates always give the same records, byte for byte: every random stream
//! is a ChaCha generator seeded from the seed, the trust and the stream's purpose, and nothing
//! iterates a hash map. Process changes are planted on stated dates ([`Changes`]) so SPC
//! charts of the output have real signals to find.

pub mod clock;
pub mod feeds;
mod hospital;
pub mod lake_sink;
pub mod patients;
pub mod records;
pub mod replay;
mod theatres;
pub mod trust;
mod workforce;

use chrono::{Datelike, Duration, NaiveDate};

use crate::clock::Clock;
use crate::hospital::Hospital;
use crate::records::{AnnotationRecord, BedsRecord, Record};
use crate::theatres::Theatres;
use crate::trust::TrustModel;
use crate::workforce::Workforce;

pub use hospital::FlowStats;

/// Errors while simulating or writing what the simulation emits.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration cannot be simulated.
    #[error("invalid simulation settings: {0}")]
    Config(&'static str),
    /// Writing feed files failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Building Arrow batches failed.
    #[error("cannot build a record batch: {0}")]
    Arrow(#[from] bright_engine::arrow::error::ArrowError),
    /// Writing to the lake failed.
    #[error(transparent)]
    Lake(#[from] bright_engine::lake::LakeError),
    /// The output directory already holds files.
    #[error("output folder {path} is not empty; choose a new one")]
    OutputNotEmpty {
        /// The folder.
        path: String,
    },
    /// The writer stopped before the simulation finished.
    #[error("the lake writer stopped early")]
    WriterGone,
    /// A saved replay cannot be read.
    #[error("{path} line {line}: {reason}")]
    Replay {
        path: String,
        line: usize,
        reason: String,
    },
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every random stream.
    pub seed: u64,
    /// Number of reported days.
    pub days: u32,
    /// The day after the last reported day (the history runs up to, not including, it).
    pub end: NaiveDate,
    /// Number of trusts; trust 0 is the reference trust.
    pub trusts: u32,
    /// Escalation beds each ward may open beyond its bed base when patients wait.
    pub escalation_beds: u32,
    /// Days simulated before the first reported day so wards start full.
    pub warmup_days: u32,
}

impl SimConfig {
    /// One trust for `days` days up to `end`, two escalation beds per ward and a 45-day
    /// warm-up.
    pub fn new(seed: u64, days: u32, end: NaiveDate) -> Self {
        SimConfig {
            seed,
            days,
            end,
            trusts: 1,
            escalation_beds: 2,
            warmup_days: 45,
        }
    }

    /// The first reported day.
    pub fn first_day(&self) -> NaiveDate {
        self.end - Duration::days(i64::from(self.days))
    }
}

/// Process changes planted in the simulated hospital, each from its date on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// More senior ED staff at the front door: patients are seen sooner and four-hour
    /// performance rises.
    pub ed_staffing: NaiveDate,
    /// A discharge lounge opens: about twice as many discharges happen before noon.
    pub discharge_lounge: NaiveDate,
    /// Theatre scheduling change (first patient sent for earlier): late starts shrink.
    pub theatre_scheduling: NaiveDate,
}

impl Changes {
    /// Plants the changes at 45%, 60% and 72% of the reported period; the ED change moves to
    /// the nearest day between late April and July within the middle half of the period, if
    /// there is one, so that winter's pressure does not arrive in the weeks after it and hide
    /// it (four-hour performance falls by several points every winter).
    pub fn planted(config: &SimConfig) -> Self {
        let first = config.first_day();
        let at = |fraction: f64| first + Duration::days((f64::from(config.days) * fraction) as i64);
        let calm = |d: &NaiveDate| {
            let md = (d.month(), d.day());
            ((4, 20)..=(7, 31)).contains(&md) && (at(0.25)..=at(0.75)).contains(d)
        };
        let ed = at(0.45);
        let ed_staffing = (0..=i64::from(config.days))
            .flat_map(|k| [ed - Duration::days(k), ed + Duration::days(k)])
            .find(calm)
            .unwrap_or(ed);
        Changes {
            ed_staffing,
            discharge_lounge: at(0.60),
            theatre_scheduling: at(0.72),
        }
    }

    /// The note a manager would put on the chart of the KPI each change moves.
    pub fn annotations(&self) -> [(&'static str, NaiveDate, &'static str); 3] {
        [
            (
                "ed_4h_performance",
                self.ed_staffing,
                "More senior ED staff at the front door",
            ),
            (
                "discharges_before_noon",
                self.discharge_lounge,
                "Discharge lounge opened",
            ),
            (
                "theatre_late_starts",
                self.theatre_scheduling,
                "First patient sent for earlier (theatre scheduling change)",
            ),
        ]
    }

    /// One line per change, for the summary.
    pub fn describe(&self) -> Vec<String> {
        vec![
            format!(
                "{}: ED staffing change: patients seen sooner, four-hour performance rises (ed_attendances)",
                self.ed_staffing
            ),
            format!(
                "{}: discharge lounge opens: discharges before noon roughly double (adt_events A03)",
                self.discharge_lounge
            ),
            format!(
                "{}: theatre scheduling change: first-case late starts shrink (theatre_events)",
                self.theatre_scheduling
            ),
        ]
    }
}

/// The random stream of one purpose (ED, flow, theatres, rosters) of one trust, so a change
/// to one part of the model does not shift the random numbers of another.
pub(crate) fn rng_stream(seed: u64, trust: &TrustModel, purpose: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (u64::from(trust.index) << 20) ^ purpose)
}

/// How wintry a date is: 1 in mid-January, 0 from spring to autumn.
pub(crate) fn winter(date: NaiveDate) -> f64 {
    let angle = (f64::from(date.ordinal()) - 15.0) / 365.25 * std::f64::consts::TAU;
    angle.cos().max(0.0)
}

/// Whether a ward's escalation beds are open on `date`: the winter plan opens them from
/// 1 December to 31 March, and the bed base reported for those days includes them, so
/// occupancy stays at or under 100% as in the daily sitreps.
pub(crate) fn escalation_open(date: NaiveDate) -> bool {
    matches!(date.month(), 12 | 1 | 2 | 3)
}

/// A ward's bed base over the reported days `first..end`: one row per stretch of days with or
/// without its escalation beds, the last left open.
fn bed_base(
    ward: usize,
    beds: u32,
    escalation: u32,
    first: NaiveDate,
    end: NaiveDate,
) -> Vec<BedsRecord> {
    let base = |open: bool| beds + if open { escalation } else { 0 };
    let mut records = Vec::new();
    let mut from = first;
    let mut open = escalation > 0 && escalation_open(first);
    for day in first.iter_days().take_while(|d| *d < end) {
        if escalation > 0 && escalation_open(day) != open {
            records.push(BedsRecord {
                ward,
                beds: base(open),
                valid_from: from,
                valid_to: day.pred_opt(),
            });
            from = day;
            open = !open;
        }
    }
    records.push(BedsRecord {
        ward,
        beds: base(open),
        valid_from: from,
        valid_to: None,
    });
    records
}

/// Where the simulation's records go.
pub trait Sink {
    /// Takes one record of `trust`.
    fn record(&mut self, trust: &TrustModel, clock: &Clock, record: Record)
    -> Result<(), SimError>;
    /// Called after every simulated day of all trusts, with the day's date.
    fn end_of_day(&mut self, date: NaiveDate) -> Result<(), SimError>;
    /// Called once at the end.
    fn finish(&mut self) -> Result<(), SimError>;
}

struct TrustState {
    model: TrustModel,
    hospital: Hospital,
    theatres: Theatres,
    workforce: Workforce,
}

/// Totals of a finished run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Per trust: org code, name, beds, flow counters, theatre cases and cancellations.
    pub trusts: Vec<TrustSummary>,
}

/// Totals of one trust.
#[derive(Debug, Clone)]
pub struct TrustSummary {
    pub org_code: String,
    pub name: String,
    pub sites: usize,
    pub wards: usize,
    pub beds: u32,
    pub theatres: usize,
    pub flow: FlowStats,
    pub theatre_cases: u64,
    pub theatre_cancellations: u64,
}

/// A configured run.
pub struct Simulation {
    config: SimConfig,
    clock: Clock,
    changes: Changes,
    trusts: Vec<TrustState>,
}

impl Simulation {
    /// Prepares a run; nothing is simulated yet.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        if config.days == 0 {
            return Err(SimError::Config("days must be at least 1"));
        }
        if config.trusts == 0 {
            return Err(SimError::Config("trusts must be at least 1"));
        }
        if config.trusts > 1296 {
            return Err(SimError::Config("at most 1296 trusts have distinct codes"));
        }
        let first_day = config.first_day() - Duration::days(i64::from(config.warmup_days));
        // Slack covers stays that end after the last day (they are not reported).
        let clock = Clock::new(
            first_day,
            config.warmup_days + config.days,
            400,
            chrono_tz::Europe::London,
        );
        let changes = Changes::planted(&config);
        let live_from = i64::from(config.warmup_days) * clock::DAY;
        let trusts = (0..config.trusts)
            .map(|index| {
                let model = TrustModel::build(config.seed, index);
                TrustState {
                    hospital: Hospital::new(
                        &model,
                        config.seed,
                        config.escalation_beds as usize,
                        live_from,
                    ),
                    theatres: Theatres::new(&model, config.seed),
                    workforce: Workforce::new(&model, config.seed),
                    model,
                }
            })
            .collect();
        Ok(Simulation {
            config,
            clock,
            changes,
            trusts,
        })
    }

    /// Runs every day, sending records to `sink`; `progress` hears the number of reported
    /// days done after each day.
    pub fn run(
        mut self,
        sink: &mut dyn Sink,
        progress: &mut dyn FnMut(u32),
    ) -> Result<Summary, SimError> {
        let warmup = i64::from(self.config.warmup_days);
        let total = warmup + i64::from(self.config.days);
        let clock = &self.clock;
        let changes = &self.changes;
        let (escalation_beds, end) = (self.config.escalation_beds, self.config.end);
        for day in 0..total {
            let live = day >= warmup;
            for trust in &mut self.trusts {
                let model = &trust.model;
                let mut failure = None;
                let mut out = |record: Record| {
                    if failure.is_none()
                        && let Err(e) = sink.record(model, clock, record)
                    {
                        failure = Some(e);
                    }
                };
                if day == warmup {
                    let first = clock.date(warmup);
                    for (ward, w) in model.wards.iter().enumerate() {
                        for record in bed_base(
                            ward,
                            w.beds,
                            if w.escalates() { escalation_beds } else { 0 },
                            first,
                            end,
                        ) {
                            out(Record::Beds(record));
                        }
                    }
                }
                if live {
                    for (kpi_id, date, note) in changes.annotations() {
                        if clock.date(day) == date {
                            out(Record::Annotation(AnnotationRecord { kpi_id, day, note }));
                        }
                    }
                }
                trust.hospital.run_day(model, clock, changes, day, &mut out);
                if live {
                    trust.theatres.run_day(model, clock, changes, day, &mut out);
                    trust.workforce.run_day(model, clock, day, &mut out);
                }
                if day == total - 1 {
                    trust.hospital.finish(&mut out);
                }
                if let Some(e) = failure {
                    return Err(e);
                }
            }
            sink.end_of_day(clock.date(day))?;
            if live {
                progress(u32::try_from(day - warmup + 1).unwrap_or(u32::MAX));
            }
        }
        sink.finish()?;
        Ok(Summary {
            trusts: self
                .trusts
                .into_iter()
                .map(|t| TrustSummary {
                    org_code: t.model.org_code.clone(),
                    name: t.model.name.clone(),
                    sites: t.model.sites.len(),
                    wards: t.model.wards.len(),
                    beds: t.model.total_beds(),
                    theatres: t.model.theatres.len(),
                    flow: t.hospital.stats.clone(),
                    theatre_cases: t.theatres.cases,
                    theatre_cancellations: t.theatres.cancelled_cases,
                })
                .collect(),
        })
    }
}
