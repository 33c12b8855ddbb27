//! Operating theatres: the day's lists, their cases and every milestone of each case.
//!
//! Weekday elective lists follow each theatre's timetable (AM/PM halves or all-day lists); the
//! emergency theatre runs a long list every day for cases that arrive through it. Lists are
//! booked full; the day then unfolds with late starts, cases longer or
//! shorter than planned, turnarounds, overruns, and on-the-day cancellations (patient unfit,
//! no bed, list overrun…). The planted scheduling change shortens late starts from its date.

use chrono::{Datelike, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

use crate::clock::{Clock, HOUR, MINUTE, SimTime};
use crate::records::{Record, SessionRecord, TheatreEventRecord};
use crate::trust::{Procedure, TheatreUse, TrustModel};
use crate::{Changes, rng_stream};
use bright_engine::schema::theatre_events::{CANCELLED, MILESTONES};

const CANCEL_REASONS: [&str; 5] = [
    "patient unfit",
    "patient did not attend",
    "no bed available",
    "equipment unavailable",
    "surgeon unavailable",
];
const OVERRUN: &str = "list overrun";
/// Minutes booked between cases for cleaning and sending for the next patient.
const BOOKED_TURNAROUND_MIN: i64 = 15;
/// Minutes a list is booked beyond its planned end, expecting some cases to run short.
const OVERBOOK_MIN: i64 = 15;

/// Theatre state of one trust.
pub(crate) struct Theatres {
    rng: ChaCha8Rng,
    next_case: u64,
    pub(crate) cases: u64,
    pub(crate) cancelled_cases: u64,
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .map(|d| d.sample(rng))
        .unwrap_or(median)
}

struct Booked {
    specialty: &'static str,
    procedure: Procedure,
    /// For emergency cases: when the patient is ready.
    ready: SimTime,
    /// An emergency case: done when the theatre is free, never cancelled for an overrun.
    emergency: bool,
}

impl Theatres {
    pub(crate) fn new(model: &TrustModel, seed: u64) -> Self {
        Theatres {
            rng: rng_stream(seed, model, 0x7468),
            next_case: 1,
            cases: 0,
            cancelled_cases: 0,
        }
    }

    pub(crate) fn run_day(
        &mut self,
        model: &TrustModel,
        clock: &Clock,
        changes: &Changes,
        day: i64,
        out: &mut dyn FnMut(Record),
    ) {
        let date = clock.date(day);
        let start = Clock::day_start(day);
        let weekday = date.weekday().num_days_from_monday() as usize;
        let stamp = date.format("%Y%m%d");
        for (index, theatre) in model.theatres.iter().enumerate() {
            let lists: Vec<(&str, SimTime, SimTime, &'static str)> = match theatre.usage {
                TheatreUse::Emergency => {
                    vec![(
                        "EMG",
                        start + 8 * HOUR,
                        start + 20 * HOUR,
                        theatre.timetable[0],
                    )]
                }
                TheatreUse::Elective if weekday >= 5 => Vec::new(),
                TheatreUse::Elective if theatre.all_day => vec![(
                    "ALL",
                    start + 8 * HOUR + 30 * MINUTE,
                    start + 17 * HOUR + 30 * MINUTE,
                    theatre.timetable[weekday],
                )],
                TheatreUse::Elective => vec![
                    (
                        "AM",
                        start + 8 * HOUR + 30 * MINUTE,
                        start + 12 * HOUR + 30 * MINUTE,
                        theatre.timetable[weekday],
                    ),
                    (
                        "PM",
                        start + 13 * HOUR + 30 * MINUTE,
                        start + 17 * HOUR + 30 * MINUTE,
                        theatre.timetable[weekday],
                    ),
                ],
            };
            for (label, planned_start, planned_end, specialty) in lists {
                let session_id = format!("{}-{}-{stamp}-{label}", model.org_code, theatre.code);
                let cancelled =
                    theatre.usage == TheatreUse::Elective && self.rng.random_bool(0.035);
                out(Record::Session(SessionRecord {
                    session_id: session_id.clone(),
                    theatre: index,
                    day,
                    planned_start,
                    planned_end,
                    specialty,
                    cancelled,
                }));
                if cancelled {
                    continue;
                }
                let booked = if theatre.usage == TheatreUse::Emergency {
                    self.book_emergency(planned_start, planned_end)
                } else {
                    self.book(specialty, planned_end - planned_start)
                };
                let scheduling_change = date >= changes.theatre_scheduling;
                self.run_list(
                    model,
                    &session_id,
                    index,
                    planned_start,
                    planned_end,
                    scheduling_change,
                    date.weekday() == Weekday::Mon,
                    booked,
                    out,
                );
            }
        }
    }

    fn book(&mut self, specialty: &'static str, list: SimTime) -> Vec<Booked> {
        let options: Vec<Procedure> = TrustModel::procedures(specialty).copied().collect();
        let mut booked = Vec::new();
        if options.is_empty() {
            return booked;
        }
        // Lists are booked full: each case's planned minutes plus a turnaround, the way a
        // scheduler fills the gap a long case leaves with shorter ones.
        let need = |p: &Procedure| planned_minutes(p) * MINUTE + BOOKED_TURNAROUND_MIN * MINUTE;
        let mut left = list + OVERBOOK_MIN * MINUTE;
        for _ in 0..24 {
            let p = options[self.rng.random_range(0..options.len())];
            if need(&p) > left && !booked.is_empty() {
                continue;
            }
            left -= need(&p).min(left);
            booked.push(Booked {
                specialty,
                procedure: p,
                ready: 0,
                emergency: false,
            });
        }
        booked
    }

    fn book_emergency(&mut self, start: SimTime, end: SimTime) -> Vec<Booked> {
        let n = Poisson::new(7.5)
            .map(|d| d.sample(&mut self.rng) as usize)
            .unwrap_or(4);
        let options = TrustModel::emergency_procedures();
        let mut cases: Vec<Booked> = (0..n)
            .map(|_| {
                let (specialty, procedure) = options[self.rng.random_range(0..options.len())];
                Booked {
                    specialty,
                    procedure,
                    ready: start + self.rng.random_range(0..(end - start - 2 * HOUR).max(HOUR)),
                    emergency: true,
                }
            })
            .collect();
        cases.sort_by_key(|c| c.ready);
        cases
    }

    #[allow(clippy::too_many_arguments)]
    fn run_list(
        &mut self,
        model: &TrustModel,
        session_id: &str,
        theatre: usize,
        planned_start: SimTime,
        planned_end: SimTime,
        scheduling_change: bool,
        monday: bool,
        booked: Vec<Booked>,
        out: &mut dyn FnMut(Record),
    ) {
        // Late starts: the first anaesthetic begins this long after the planned start.
        let median_late =
            if scheduling_change { 5.0 } else { 15.0 } + if monday { 4.0 } else { 0.0 };
        let late = lognormal(&mut self.rng, median_late + 6.0, 0.55) - 6.0;
        let mut cursor = planned_start + (late * 60.0) as SimTime;
        let mut overran = false;
        for (order, case) in booked.into_iter().enumerate() {
            let case_id = format!("{}-C{:08}", model.org_code, self.next_case);
            self.next_case += 1;
            self.cases += 1;
            let planned = planned_minutes(&case.procedure);
            let mut emit =
                |milestone: &'static str, time: SimTime, reason: Option<&'static str>| {
                    out(Record::TheatreEvent(TheatreEventRecord {
                        event_id: format!("{case_id}/{milestone}"),
                        case_id: case_id.clone(),
                        session_id: session_id.to_string(),
                        theatre,
                        specialty: case.specialty,
                        procedure_code: case.procedure.code,
                        procedure_name: case.procedure.name,
                        milestone,
                        time,
                        planned_order: i32::try_from(order + 1).unwrap_or(i32::MAX),
                        planned_duration_min: i32::try_from(planned).unwrap_or(i32::MAX),
                        cancel_reason: reason,
                    }));
                };
            cursor = cursor.max(case.ready);
            let expected_end = cursor + planned_minutes(&case.procedure) * MINUTE;
            if !case.emergency
                && (overran || (order > 0 && expected_end > planned_end + 30 * MINUTE))
            {
                overran = true;
                self.cancelled_cases += 1;
                emit(CANCELLED, cursor.min(planned_end), Some(OVERRUN));
                continue;
            }
            if self.rng.random_bool(0.025) {
                self.cancelled_cases += 1;
                let reason = CANCEL_REASONS[self.rng.random_range(0..CANCEL_REASONS.len())];
                let when = (planned_start - HOUR).max(cursor - 45 * MINUTE);
                emit(CANCELLED, when, Some(reason));
                continue;
            }
            let r = &mut self.rng;
            let anaesthesia_start = cursor;
            let sent_for = anaesthesia_start - (r.random_range(30.0..60.0) * 60.0) as SimTime;
            let in_room = anaesthesia_start - (r.random_range(2.0..8.0) * 60.0) as SimTime;
            let knife = anaesthesia_start + (r.random_range(10.0..28.0) * 60.0) as SimTime;
            let surgery = lognormal(r, f64::from(case.procedure.minutes), 0.22);
            let surgery_end = knife + (surgery * 60.0) as SimTime;
            let anaesthesia_end = surgery_end + (r.random_range(4.0..12.0) * 60.0) as SimTime;
            let out_of_theatre = anaesthesia_end + (r.random_range(2.0..6.0) * 60.0) as SimTime;
            let in_recovery = out_of_theatre + (r.random_range(1.0..4.0) * 60.0) as SimTime;
            let cleaning_start = in_recovery + (r.random_range(0.0..3.0) * 60.0) as SimTime;
            let cleaning_end = cleaning_start + (r.random_range(6.0..14.0) * 60.0) as SimTime;
            let times = [
                sent_for,
                in_room,
                anaesthesia_start,
                knife,
                surgery_end,
                anaesthesia_end,
                out_of_theatre,
                in_recovery,
                cleaning_start,
                cleaning_end,
            ];
            for (milestone, time) in MILESTONES.iter().zip(times) {
                emit(milestone, time, None);
            }
            // Turnaround: the next anaesthetic starts after cleaning, sometimes a little later.
            cursor = cleaning_end + (self.rng.random_range(0.0..5.0) * 60.0) as SimTime;
        }
    }
}

/// Planned minutes in theatre for a procedure: anaesthesia to leaving theatre.
fn planned_minutes(p: &Procedure) -> i64 {
    i64::from(p.minutes) + 30
}
