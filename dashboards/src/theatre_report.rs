//! The theatre performance report: a day's operating lists added up per theatre, per
//! specialty, per site and for the trust — lists planned and held, cases done and cancelled,
//! capped and uncapped utilisation, late starts in bands, early finishes and overruns with the
//! minutes they cost, turnaround, and cancellations by reason.
//!
//! Every figure is a count or a sum of minutes worked out per list from the KPI catalogue's
//! views ([`reads::theatre_day`]) with the catalogue's own parameters ([`Thresholds`]), so a
//! rate here is the catalogue's KPI for the same day and grouping; each rate is a ratio of
//! sums, never a mean of means, so any grouping adds up. The same per-theatre sums are what the
//! morning run keeps in the lake's `theatre_reports` table.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use bright_engine::batch::BatchBuilder;
use bright_engine::query::QueryEngine;
use bright_engine::reads::{Cancelled, ListHeld, TheatreDay};
use bright_engine::schema::Table;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::trackboard::specialty_name;

/// The catalogue's parameters for late starts and early finishes (what its KPIs count).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// A list whose first patient is in the anaesthetic room more than this after the planned
    /// start started late. The report's bands are: up to it, up to twice it, and later.
    pub late_start_grace_min: f64,
    /// A list whose last patient leaves theatre more than this before the planned end
    /// finished early.
    pub early_finish_grace_min: f64,
}

/// The catalogue's defaults, for an engine without a catalogue (never the case in service).
const DEFAULT_THRESHOLDS: Thresholds = Thresholds {
    late_start_grace_min: 15.0,
    early_finish_grace_min: 30.0,
};

impl Thresholds {
    /// The values the engine's KPI queries are bound with.
    pub fn of(engine: &QueryEngine) -> Thresholds {
        Thresholds {
            late_start_grace_min: engine
                .kpi_param("late_start_grace_min")
                .unwrap_or(DEFAULT_THRESHOLDS.late_start_grace_min),
            early_finish_grace_min: engine
                .kpi_param("early_finish_grace_min")
                .unwrap_or(DEFAULT_THRESHOLDS.early_finish_grace_min),
        }
    }

    /// The late-start band of a list that started `late` minutes after its planned start.
    fn band(&self, late: f64) -> Option<usize> {
        let grace = self.late_start_grace_min;
        if late <= 0.0 {
            None
        } else if late <= grace {
            Some(0)
        } else if late <= 2.0 * grace {
            Some(1)
        } else {
            Some(2)
        }
    }

    /// The bands in words: "1–15 min", "16–30 min", "over 30 min".
    pub fn band_labels(&self) -> [String; 3] {
        let g = self.late_start_grace_min;
        [
            format!("up to {} min", minutes(g)),
            format!("{}–{} min", minutes(g), minutes(2.0 * g)),
            format!("over {} min", minutes(2.0 * g)),
        ]
    }
}

/// A number of minutes as the report prints it: whole when whole.
pub fn minutes(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    // As the catalogue's `minutes_between`: microseconds over 60 million.
    (to - from)
        .num_microseconds()
        .map_or(0.0, |m| m as f64 / 60e6)
}

/// The additive figures of some lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Lists planned for the day (held, and cancelled before the day).
    pub lists_planned: i64,
    pub lists_held: i64,
    /// Held lists with a patient in the anaesthetic room (late starts are counted of these),
    /// and with a patient out of theatre (early finishes and overruns are counted of these).
    pub lists_started: i64,
    pub lists_finished: i64,
    pub cases_booked: i64,
    pub cases_completed: i64,
    pub cases_cancelled: i64,
    pub planned_min: f64,
    pub touch_min: f64,
    pub touch_capped_min: f64,
    /// Lists started late, by band (see [`Thresholds::band_labels`]).
    pub late_starts: [i64; 3],
    pub late_start_min: f64,
    pub early_finishes: i64,
    /// Minutes from the last patient out to the planned end, of the lists that finished early.
    pub early_finish_min: f64,
    pub turnarounds: i64,
    pub turnaround_min: f64,
    pub overruns: i64,
    pub overrun_min: f64,
}

impl Figures {
    fn of_list(list: &ListHeld, t: &Thresholds) -> Figures {
        let mut f = Figures {
            lists_planned: 1,
            lists_held: 1,
            cases_booked: list.cases_booked,
            cases_completed: list.cases_completed,
            cases_cancelled: list.cases_cancelled,
            planned_min: list.planned_min,
            touch_min: list.touch_min,
            touch_capped_min: list.touch_capped_min,
            turnarounds: list.turnarounds,
            turnaround_min: list.turnaround_min,
            ..Figures::default()
        };
        if let Some(first_in) = list.first_in {
            f.lists_started = 1;
            let late = minutes_between(list.planned_start, first_in);
            if let Some(band) = t.band(late) {
                f.late_starts[band] = 1;
                f.late_start_min = late;
            }
        }
        if let Some(last_out) = list.last_out {
            f.lists_finished = 1;
            let early = minutes_between(last_out, list.planned_end);
            if early > t.early_finish_grace_min {
                f.early_finishes = 1;
                f.early_finish_min = early;
            } else if early < 0.0 {
                f.overruns = 1;
                f.overrun_min = -early;
            }
        }
        f
    }

    fn add(&mut self, o: &Figures) {
        self.lists_planned += o.lists_planned;
        self.lists_held += o.lists_held;
        self.lists_started += o.lists_started;
        self.lists_finished += o.lists_finished;
        self.cases_booked += o.cases_booked;
        self.cases_completed += o.cases_completed;
        self.cases_cancelled += o.cases_cancelled;
        self.planned_min += o.planned_min;
        self.touch_min += o.touch_min;
        self.touch_capped_min += o.touch_capped_min;
        for (a, b) in self.late_starts.iter_mut().zip(o.late_starts) {
            *a += b;
        }
        self.late_start_min += o.late_start_min;
        self.early_finishes += o.early_finishes;
        self.early_finish_min += o.early_finish_min;
        self.turnarounds += o.turnarounds;
        self.turnaround_min += o.turnaround_min;
        self.overruns += o.overruns;
        self.overrun_min += o.overrun_min;
    }

    /// Lists started more than the grace period late: what the catalogue's late starts count.
    pub fn late_over_grace(&self) -> i64 {
        self.late_starts[1] + self.late_starts[2]
    }

    /// The rates, each the catalogue KPI's numerator over its denominator.
    pub fn rates(&self) -> Rates {
        let ratio = |n: f64, d: f64| (d > 0.0).then(|| n / d);
        Rates {
            utilisation_capped: ratio(self.touch_capped_min, self.planned_min),
            utilisation_uncapped: ratio(self.touch_min, self.planned_min),
            late_starts: ratio(self.late_over_grace() as f64, self.lists_started as f64),
            early_finishes: ratio(self.early_finishes as f64, self.lists_finished as f64),
            turnaround_mean_min: ratio(self.turnaround_min, self.turnarounds as f64),
            cancellations_on_day: ratio(self.cases_cancelled as f64, self.cases_booked as f64),
            cases_per_list: ratio(self.cases_completed as f64, self.lists_held as f64),
        }
    }
}

/// The rates of a row; `None` where the denominator is zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub utilisation_capped: Option<f64>,
    pub utilisation_uncapped: Option<f64>,
    /// Share of started lists that started more than the grace period late.
    pub late_starts: Option<f64>,
    /// Share of finished lists that finished more than the grace period early.
    pub early_finishes: Option<f64>,
    pub turnaround_mean_min: Option<f64>,
    /// Share of booked cases cancelled on the day.
    pub cancellations_on_day: Option<f64>,
    pub cases_per_list: Option<f64>,
}

/// One of a row's rates.
pub type RateOf = fn(&Rates) -> Option<f64>;

/// Which KPI of the catalogue each rate is, in the report's order.
pub const RATE_KPIS: [(&str, RateOf); 7] = [
    ("theatre_utilisation_capped", |r| r.utilisation_capped),
    ("theatre_utilisation_uncapped", |r| r.utilisation_uncapped),
    ("theatre_cases_per_session", |r| r.cases_per_list),
    ("theatre_late_starts", |r| r.late_starts),
    ("theatre_early_finishes", |r| r.early_finishes),
    ("theatre_turnaround_mean_min", |r| r.turnaround_mean_min),
    ("theatre_cancellations_on_day", |r| r.cancellations_on_day),
];

/// One line of the report: the whole day, a site, a theatre or a specialty.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `all`, `site`, `theatre` or `specialty`.
    pub level: &'static str,
    pub site: Option<String>,
    pub theatre: Option<String>,
    pub specialty: Option<String>,
    pub label: String,
    #[serde(flatten)]
    pub figures: Figures,
    pub rates: Rates,
}

impl Row {
    fn new(level: &'static str, label: String, figures: Figures) -> Row {
        Row {
            level,
            site: None,
            theatre: None,
            specialty: None,
            label,
            rates: figures.rates(),
            figures,
        }
    }
}

/// Cases cancelled on the day for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub reason: String,
    pub cases: i64,
}

/// One list as the report lists it, times as they happened.
#[derive(Debug, Clone, Serialize)]
pub struct ListLine {
    pub site: String,
    pub theatre: String,
    pub specialty: Option<String>,
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    pub first_in: Option<DateTime<Utc>>,
    pub last_out: Option<DateTime<Utc>>,
    /// Minutes after the planned start the first patient went in (negative: early).
    pub start_min: Option<f64>,
    /// Minutes the last patient left before the planned end (negative: after it).
    pub finish_early_min: Option<f64>,
    #[serde(flatten)]
    pub figures: Figures,
    pub rates: Rates,
}

/// The report of a day for one site or all.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: NaiveDate,
    /// The site reported on; `None`: every site.
    pub site: Option<String>,
    /// The sites with lists planned that day.
    pub sites: Vec<String>,
    pub thresholds: Thresholds,
    pub late_start_bands: [String; 3],
    pub total: Row,
    pub by_site: Vec<Row>,
    pub by_theatre: Vec<Row>,
    pub by_specialty: Vec<Row>,
    /// Cases cancelled on the day by reason, most first.
    pub cancellations: Vec<Reason>,
    pub lists: Vec<ListLine>,
}

/// What a specialty code is called on the report.
pub fn specialty_label(code: Option<&str>) -> String {
    match code {
        Some(c) => specialty_name(c).map_or_else(|| c.to_string(), |n| format!("{n} ({c})")),
        None => "Specialty not given".into(),
    }
}

fn theatre_label(site: &str, theatre: &str, sites: usize) -> String {
    if sites > 1 {
        format!("{theatre} ({site})")
    } else {
        theatre.to_string()
    }
}

impl Report {
    /// The report of `day` (the lists of `date`) for `site`, or every site.
    pub fn build(date: NaiveDate, site: Option<&str>, day: &TheatreDay, t: Thresholds) -> Report {
        let here = |s: &str| site.is_none_or(|wanted| wanted == s);
        let mut sites: Vec<String> = day
            .lists
            .iter()
            .map(|l| l.site.clone())
            .chain(day.lists_cancelled.iter().map(|c| c.site.clone()))
            .collect();
        sites.sort();
        sites.dedup();
        let shown_sites = if site.is_some() { 1 } else { sites.len() };
        let mut total = Figures::default();
        let mut by_site: BTreeMap<String, Figures> = BTreeMap::new();
        let mut by_theatre: BTreeMap<(String, String), Figures> = BTreeMap::new();
        let mut by_specialty: BTreeMap<Option<String>, Figures> = BTreeMap::new();
        let mut lists = Vec::new();
        let mut add = |site: &str, theatre: &str, specialty: &Option<String>, f: &Figures| {
            total.add(f);
            by_site.entry(site.to_string()).or_default().add(f);
            by_theatre
                .entry((site.to_string(), theatre.to_string()))
                .or_default()
                .add(f);
            by_specialty.entry(specialty.clone()).or_default().add(f);
        };
        for list in day.lists.iter().filter(|l| here(&l.site)) {
            let f = Figures::of_list(list, &t);
            add(&list.site, &list.theatre, &list.specialty, &f);
            lists.push(ListLine {
                site: list.site.clone(),
                theatre: list.theatre.clone(),
                specialty: list.specialty.clone(),
                planned_start: list.planned_start,
                planned_end: list.planned_end,
                first_in: list.first_in,
                last_out: list.last_out,
                start_min: list
                    .first_in
                    .map(|at| minutes_between(list.planned_start, at)),
                finish_early_min: list
                    .last_out
                    .map(|at| minutes_between(at, list.planned_end)),
                rates: f.rates(),
                figures: f,
            });
        }
        for c in day.lists_cancelled.iter().filter(|c| here(&c.site)) {
            let f = Figures {
                lists_planned: c.count,
                ..Figures::default()
            };
            add(&c.site, &c.theatre, &c.specialty, &f);
        }
        let mut reasons: BTreeMap<String, i64> = BTreeMap::new();
        for c in day.cases_cancelled.iter().filter(|c| here(&c.site)) {
            *reasons
                .entry(c.reason.clone().unwrap_or_else(|| "no reason given".into()))
                .or_default() += c.count;
        }
        let mut cancellations: Vec<Reason> = reasons
            .into_iter()
            .map(|(reason, cases)| Reason { reason, cases })
            .collect();
        cancellations.sort_by(|a, b| b.cases.cmp(&a.cases).then(a.reason.cmp(&b.reason)));
        let label = site.map_or_else(|| "All sites".to_string(), |s| format!("Site {s}"));
        Report {
            date,
            site: site.map(str::to_string),
            sites,
            thresholds: t,
            late_start_bands: t.band_labels(),
            total: Row::new("all", label, total),
            by_site: by_site
                .into_iter()
                .map(|(s, f)| Row {
                    site: Some(s.clone()),
                    ..Row::new("site", format!("Site {s}"), f)
                })
                .collect(),
            by_theatre: by_theatre
                .into_iter()
                .map(|((s, theatre), f)| Row {
                    site: Some(s.clone()),
                    theatre: Some(theatre.clone()),
                    ..Row::new("theatre", theatre_label(&s, &theatre, shown_sites), f)
                })
                .collect(),
            by_specialty: by_specialty
                .into_iter()
                .map(|(code, f)| Row {
                    specialty: code.clone(),
                    ..Row::new("specialty", specialty_label(code.as_deref()), f)
                })
                .collect(),
            cancellations,
            lists,
        }
    }

    /// The report as CSV: a line per row (the day, each site, theatre and specialty) with
    /// every figure and rate and the thresholds used, then a line per cancellation reason.
    pub fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let bands = &self.late_start_bands;
        let mut header: Vec<String> = [
            "date",
            "level",
            "site",
            "theatre",
            "specialty",
            "label",
            "lists_planned",
            "lists_held",
            "lists_started",
            "lists_finished",
            "cases_booked",
            "cases_completed",
            "cases_cancelled",
            "planned_min",
            "touch_min",
            "touch_capped_min",
        ]
        .map(str::to_string)
        .to_vec();
        header.extend(bands.iter().map(|b| format!("late_starts {b}")));
        header.extend(
            [
                "late_start_min",
                "early_finishes",
                "early_finish_min",
                "turnarounds",
                "turnaround_min",
                "overruns",
                "overrun_min",
                "utilisation_capped",
                "utilisation_uncapped",
                "late_starts_share",
                "early_finishes_share",
                "turnaround_mean_min",
                "cancellations_on_day_share",
                "cases_per_list",
                "late_start_grace_min",
                "early_finish_grace_min",
            ]
            .map(str::to_string),
        );
        out.write_record(&header)?;
        let opt = |x: Option<f64>| x.map_or_else(String::new, |v| format!("{v}"));
        let date = self.date.to_string();
        let rows = std::iter::once(&self.total)
            .chain(&self.by_site)
            .chain(&self.by_theatre)
            .chain(&self.by_specialty);
        for row in rows {
            let (f, r) = (&row.figures, &row.rates);
            let mut record = vec![
                date.clone(),
                row.level.to_string(),
                row.site.clone().unwrap_or_default(),
                row.theatre.clone().unwrap_or_default(),
                row.specialty.clone().unwrap_or_default(),
                row.label.clone(),
            ];
            record.extend(
                [
                    f.lists_planned,
                    f.lists_held,
                    f.lists_started,
                    f.lists_finished,
                    f.cases_booked,
                    f.cases_completed,
                    f.cases_cancelled,
                ]
                .map(|n| n.to_string()),
            );
            record.extend([f.planned_min, f.touch_min, f.touch_capped_min].map(|m| m.to_string()));
            record.extend(f.late_starts.map(|n| n.to_string()));
            record.extend([
                f.late_start_min.to_string(),
                f.early_finishes.to_string(),
                f.early_finish_min.to_string(),
                f.turnarounds.to_string(),
                f.turnaround_min.to_string(),
                f.overruns.to_string(),
                f.overrun_min.to_string(),
            ]);
            record.extend(
                [
                    r.utilisation_capped,
                    r.utilisation_uncapped,
                    r.late_starts,
                    r.early_finishes,
                    r.turnaround_mean_min,
                    r.cancellations_on_day,
                    r.cases_per_list,
                ]
                .map(opt),
            );
            record.extend([
                self.thresholds.late_start_grace_min.to_string(),
                self.thresholds.early_finish_grace_min.to_string(),
            ]);
            out.write_record(&record)?;
        }
        let width = header.len();
        for reason in &self.cancellations {
            let mut record = vec![String::new(); width];
            record[0] = date.clone();
            record[1] = "cancellation_reason".into();
            record[2] = self.site.clone().unwrap_or_default();
            record[5] = reason.reason.clone();
            record[12] = reason.cases.to_string();
            out.write_record(&record)?;
        }
        out.into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

/// The day's figures per organisation, site, theatre and list specialty, as rows of the
/// lake's `theatre_reports` table.
pub fn lake_rows(
    date: NaiveDate,
    day: &TheatreDay,
    t: Thresholds,
    made_at: DateTime<Utc>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    type Key = (String, String, String, Option<String>);
    let mut keyed: BTreeMap<Key, Figures> = BTreeMap::new();
    let key = |org: &str, site: &str, theatre: &str, specialty: &Option<String>| {
        (
            org.to_string(),
            site.to_string(),
            theatre.to_string(),
            specialty.clone(),
        )
    };
    for list in &day.lists {
        keyed
            .entry(key(
                &list.org_code,
                &list.site,
                &list.theatre,
                &list.specialty,
            ))
            .or_default()
            .add(&Figures::of_list(list, &t));
    }
    for c in &day.lists_cancelled {
        let Cancelled {
            org_code,
            site,
            theatre,
            specialty,
            count,
            ..
        } = c;
        keyed
            .entry(key(org_code, site, theatre, specialty))
            .or_default()
            .lists_planned += count;
    }
    let days = (date - NaiveDate::default()).num_days();
    let days = i32::try_from(days).map_err(|_| {
        arrow::error::ArrowError::InvalidArgumentError(format!("{date} is out of range"))
    })?;
    let mut builder = BatchBuilder::new(Table::TheatreReports);
    for ((org, site, theatre, specialty), f) in &keyed {
        builder
            .row()
            .text(org)
            .text(site)
            .text(theatre)
            .opt_text(specialty.as_deref())
            .int64(f.lists_planned)
            .int64(f.lists_held)
            .int64(f.lists_started)
            .int64(f.lists_finished)
            .int64(f.cases_booked)
            .int64(f.cases_completed)
            .int64(f.cases_cancelled)
            .float64(f.planned_min)
            .float64(f.touch_min)
            .float64(f.touch_capped_min)
            .int64(f.late_starts[0])
            .int64(f.late_starts[1])
            .int64(f.late_starts[2])
            .float64(f.late_start_min)
            .int64(f.early_finishes)
            .float64(f.early_finish_min)
            .int64(f.turnarounds)
            .float64(f.turnaround_min)
            .int64(f.overruns)
            .float64(f.overrun_min)
            .float64(t.late_start_grace_min)
            .float64(t.early_finish_grace_min)
            .timestamp(made_at.timestamp_micros())
            .date(days)
            .end();
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
    }

    fn list(
        theatre: &str,
        specialty: &str,
        first_in: Option<u32>,
        last_out: Option<u32>,
    ) -> ListHeld {
        // Planned 08:00–12:00; times given as minutes after 08:00.
        let start = at(8, 0);
        let plus = |m: u32| start + chrono::Duration::minutes(i64::from(m));
        ListHeld {
            org_code: "RXX".into(),
            site: "S1".into(),
            theatre: theatre.into(),
            specialty: Some(specialty.into()),
            session_id: format!("{theatre}-{specialty}"),
            planned_start: start,
            planned_end: at(12, 0),
            planned_min: 240.0,
            first_in: first_in.map(plus),
            last_out: last_out.map(plus),
            touch_min: 200.0,
            touch_capped_min: 180.0,
            turnaround_min: 30.0,
            turnarounds: 2,
            cases_booked: 4,
            cases_cancelled: 1,
            cases_completed: 3,
        }
    }

    const T: Thresholds = Thresholds {
        late_start_grace_min: 15.0,
        early_finish_grace_min: 30.0,
    };

    #[test]
    fn late_starts_fall_in_bands_at_the_grace_period_and_twice_it() {
        let starts = [0, 1, 15, 16, 30, 31, 90];
        let lists: Vec<ListHeld> = starts
            .iter()
            .map(|&m| list("T1", "100", Some(m), Some(230)))
            .collect();
        let day = TheatreDay {
            lists,
            ..TheatreDay::default()
        };
        let r = Report::build(at(0, 0).date_naive(), None, &day, T);
        assert_eq!(r.total.figures.late_starts, [2, 2, 2]);
        assert_eq!(r.total.figures.late_over_grace(), 4);
        assert_eq!(
            r.total.figures.late_start_min,
            (1 + 15 + 16 + 30 + 31 + 90) as f64
        );
        assert_eq!(r.total.rates.late_starts, Some(4.0 / 7.0));
        assert_eq!(r.late_start_bands[1], "15–30 min");
    }

    #[test]
    fn early_finishes_count_past_the_grace_period_and_overruns_after_the_end() {
        // Planned end is minute 240: out at 200 (40 early), 215 (25: on time), 260 (20 over).
        let day = TheatreDay {
            lists: vec![
                list("T1", "100", Some(0), Some(200)),
                list("T2", "100", Some(0), Some(215)),
                list("T3", "110", Some(0), Some(260)),
                list("T4", "110", None, None),
            ],
            ..TheatreDay::default()
        };
        let r = Report::build(at(0, 0).date_naive(), None, &day, T);
        let f = r.total.figures;
        assert_eq!((f.early_finishes, f.early_finish_min), (1, 40.0));
        assert_eq!((f.overruns, f.overrun_min), (1, 20.0));
        assert_eq!((f.lists_held, f.lists_started, f.lists_finished), (4, 3, 3));
        assert_eq!(r.total.rates.early_finishes, Some(1.0 / 3.0));
        // Ratios of sums: 4 × 180 capped minutes over 4 × 240 planned.
        assert_eq!(r.total.rates.utilisation_capped, Some(0.75));
        assert_eq!(r.total.rates.cases_per_list, Some(3.0));
        assert_eq!(r.by_theatre.len(), 4);
        assert_eq!(r.by_specialty.len(), 2);
        assert_eq!(r.by_specialty[0].label, "General surgery (100)");
        assert_eq!(r.by_specialty[1].figures.overruns, 1);
    }

    #[test]
    fn a_site_keeps_its_lists_and_cancellations_and_the_csv_carries_the_thresholds() {
        let mut other = list("T9", "100", Some(0), Some(240));
        other.site = "S2".into();
        let cancelled = |site: &str, reason: Option<&str>, count| Cancelled {
            org_code: "RXX".into(),
            site: site.into(),
            theatre: "T1".into(),
            specialty: Some("100".into()),
            reason: reason.map(str::to_string),
            count,
        };
        let day = TheatreDay {
            lists: vec![list("T1", "100", Some(0), Some(240)), other],
            lists_cancelled: vec![cancelled("S1", None, 1), cancelled("S2", None, 5)],
            cases_cancelled: vec![
                cancelled("S1", Some("no bed available"), 2),
                cancelled("S1", None, 1),
                cancelled("S2", Some("patient unfit"), 7),
            ],
        };
        let r = Report::build(at(0, 0).date_naive(), Some("S1"), &day, T);
        assert_eq!(r.sites, ["S1", "S2"]);
        assert_eq!(
            (r.total.figures.lists_planned, r.total.figures.lists_held),
            (2, 1)
        );
        assert_eq!(
            r.cancellations,
            [
                Reason {
                    reason: "no bed available".into(),
                    cases: 2
                },
                Reason {
                    reason: "no reason given".into(),
                    cases: 1
                },
            ]
        );
        let csv = String::from_utf8(r.to_csv().unwrap()).unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(header[16], "late_starts up to 15 min");
        assert_eq!(header.last(), Some(&"early_finish_grace_min"));
        let all: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(all.len(), header.len());
        assert_eq!(
            (all[1], all[5], all[6], all[7]),
            ("all", "Site S1", "2", "1")
        );
        assert_eq!(all[header.len() - 2], "15");
        assert!(
            csv.contains("cancellation_reason,S1,,,no bed available,,,,,,,2,"),
            "{csv}"
        );
        let batch = lake_rows(r.date, &day, T, at(6, 30)).unwrap();
        // S1/T1 (its cancelled list folded in), S2/T9, and S2/T1 with only a cancelled list.
        assert_eq!(batch.num_rows(), 3);
    }
}
