//! Patient flow through one trust: the emergency department, admissions, bed moves and
//! discharges, as a discrete-event simulation on the trust's local clock.
//!
//! Beds are real constraints. Every ward has its regular beds; the acute medical unit and the
//! medical wards also have a few escalation beds (the configured margin) that the winter plan
//! opens from December to March. An admitted ED patient waits in the department ("boards")
//! until a bed is free, in winter opening an escalation bed only after waiting hours; each
//! morning's board round brings forward as many of the next day's planned discharges as half
//! the patients boarding. So winter pressure shows up as crowding, long waits and poorer
//! four-hour performance rather than impossible occupancy.
//! Elective patients are cancelled when no regular bed is free. Medical emergencies go through
//! the acute medical unit, surgical ones through the surgical assessment unit, a few through
//! intensive care, and long stays step down to rehabilitation, each move an A02. Corrections
//! happen as they do in real PAS feeds: A08 updates, A11 cancelled duplicate admissions, A12
//! cancelled wrong transfers and A13 cancelled discharges, each kept consistent with the beds.
//!
//! The simulation runs a warm-up before the first reported day so the hospital starts full; of
//! the warm-up only the admissions still open on the first day are reported; the ED extract
//! starts with the first reported day's arrivals.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{Datelike, Weekday};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson};

use crate::clock::{Clock, DAY, HOUR, MINUTE, SimTime};
use bright_engine::ingest_api::{HL7_ADT, default_owner};
use bright_engine::schema::Table;

use crate::feeds::{SENDING_APPLICATION, control_id};
use crate::patients::{PatientId, Population};
use crate::records::{
    AdtRecord, AdtType, ArrivalMode, Disposal, DqIssueRecord, EdRecord, Location, PatientClass,
    Record,
};
use crate::trust::{TrustModel, WardRole, specialty as sp};
use crate::{Changes, escalation_open, rng_stream, winter};

/// ED arrivals per day at the reference trust, before weekday, season and trend.
const ED_ARRIVALS_PER_DAY: f64 = 395.0;
/// Share of very unwell ambulance arrivals admitted unidentified, under a temporary number.
const UNIDENTIFIED_SHARE: f64 = 0.05;
/// Share of ADT messages the PAS first sends without a patient identifier (refused by ingest
/// and sent again).
const ADT_REFUSED_SHARE: f64 = 0.0005;
/// Share of ED extract rows first sent with a departure before the arrival (the day's file is
/// refused and sent again).
const ED_REFUSED_SHARE: f64 = 0.0008;
/// Relative ED arrival rate by local hour (normalised by its sum when used).
const ED_HOURLY: [f64; 24] = [
    0.55, 0.45, 0.38, 0.33, 0.30, 0.33, 0.45, 0.70, 1.00, 1.30, 1.45, 1.45, 1.40, 1.35, 1.30, 1.30,
    1.30, 1.30, 1.25, 1.20, 1.10, 1.00, 0.85, 0.70,
];
const AGE_BANDS: [(u32, &str); 8] = [
    (4, "0-4"),
    (15, "5-15"),
    (24, "16-24"),
    (44, "25-44"),
    (64, "45-64"),
    (74, "65-74"),
    (84, "75-84"),
    (u32::MAX, "85+"),
];
const COMPLAINTS_ADULT: [&str; 14] = [
    "chest pain",
    "shortness of breath",
    "abdominal pain",
    "fall",
    "limb injury",
    "head injury",
    "collapse",
    "confusion",
    "back pain",
    "mental health crisis",
    "fever",
    "wound",
    "palpitations",
    "allergic reaction",
];
const COMPLAINTS_CHILD: [&str; 6] = [
    "fever",
    "breathing difficulty",
    "limb injury",
    "head injury",
    "vomiting",
    "rash",
];

/// What happens next in the hospital.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    EdArrive,
    EdDepart(u64),
    GpArrive,
    ElectiveArrive,
    DayCaseArrive,
    MaternityArrive,
    TryPlace(u64),
    Discharge(u64),
    MoveOn(u64),
    Update(u64),
    /// A phantom occupant (wrong record, wrong transfer) leaves its bed.
    Release {
        ward: usize,
        slot: usize,
        owner: u64,
    },
    CancelAdmit(u64),
    CancelTransfer {
        encounter: u64,
        back_to: (usize, usize),
        wrong: (usize, usize),
    },
    CompleteTransfer {
        encounter: u64,
        from: (usize, usize),
    },
    CancelDischarge(u64),
    /// A patient brought in unidentified is matched to their record: an A40 merges the
    /// temporary one into it.
    Merge(u64),
    /// The morning board round: when the department holds patients waiting for a bed, wards
    /// bring forward discharges planned for the next day and a half.
    BoardRound,
}

/// Who is asking for a bed.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// An ED patient with a decision to admit.
    Emergency {
        attendance: u64,
    },
    /// Admitted directly by a GP to an assessment unit.
    GpDirect,
    /// A planned admission; cancelled at `give_up`.
    Elective {
        give_up: SimTime,
    },
    Maternity,
    /// An admitted patient moving on from an assessment unit, ICU or base ward.
    Move {
        encounter: u64,
    },
}

#[derive(Debug, Clone)]
struct BedRequest {
    need: Need,
    patient: PatientId,
    specialty: &'static str,
    method: &'static str,
    class: PatientClass,
    /// Preferred wards, then acceptable wards.
    wards: Vec<usize>,
    fallback: Vec<usize>,
    /// From when an escalation bed may be opened.
    escalate_at: SimTime,
    /// Hours the whole stay will last (for new admissions).
    los_hours: f64,
    /// Hours on the first ward (assessment unit, ICU) and the move after it.
    next: Option<(f64, NextMove)>,
    /// Brought in unidentified: admitted under a temporary hospital number.
    unidentified: bool,
}

/// Where an admitted patient moves on to after their first ward.
#[derive(Debug, Clone)]
struct NextMove {
    /// When (set at admission from the hours the first ward keeps the patient).
    at: SimTime,
    wards: Vec<usize>,
    fallback: Vec<usize>,
    specialty: &'static str,
}

impl NextMove {
    fn new(wards: Vec<usize>, fallback: Vec<usize>, specialty: &'static str) -> Self {
        NextMove {
            at: 0,
            wards,
            fallback,
            specialty,
        }
    }
}

/// Where an admission goes first, and what follows.
#[derive(Debug, Clone)]
struct Route {
    specialty: &'static str,
    wards: Vec<usize>,
    fallback: Vec<usize>,
    /// Hours on the first ward, and the move after it.
    next: Option<(f64, NextMove)>,
}

#[derive(Debug, Clone)]
struct Encounter {
    patient: PatientId,
    class: PatientClass,
    specialty: &'static str,
    method: &'static str,
    admit_time: SimTime,
    ward: usize,
    slot: usize,
    discharge_at: SimTime,
    next: Option<NextMove>,
    moving: Option<u64>,
    cancel_discharge_done: bool,
    /// Until then the PAS record is mid-correction (a discharge or transfer in error not yet
    /// cancelled): no other event may be recorded for the patient.
    paused_until: SimTime,
    age: u32,
    /// The temporary hospital number the PAS knows the patient by, until the merge.
    temporary: Option<u64>,
    /// The temporary number merged into the patient's record (the A40's MRG-1).
    merged_from: Option<u64>,
}

/// Whether reported output has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    WarmUp,
    Live,
}

/// Counters for the summary.
#[derive(Debug, Clone, Default)]
pub struct FlowStats {
    pub ed_attendances: u64,
    pub admissions: u64,
    pub elective_cancelled_no_bed: u64,
    pub escalation_bed_uses: u64,
}

/// The flow state of one trust.
pub(crate) struct Hospital {
    rng: ChaCha8Rng,
    ed_rng: ChaCha8Rng,
    population: Population,
    /// Per ward: regular beds then escalation beds; the occupant's encounter id.
    beds: Vec<Vec<Option<u64>>>,
    regular: Vec<usize>,
    queue: BinaryHeap<Reverse<(SimTime, u64, Ev)>>,
    seq: u64,
    requests: BTreeMap<u64, BedRequest>,
    encounters: BTreeMap<u64, Encounter>,
    open_ed: BTreeMap<u64, EdRecord>,
    in_department: i64,
    boarders: i64,
    next_id: u64,
    next_control: u64,
    phase: Phase,
    warmup_adt: BTreeMap<u64, Vec<AdtRecord>>,
    /// First reported instant; ED rows that ended before it are warm-up only.
    live_from: SimTime,
    next_temporary: u64,
    /// The day of the ED extract being written and the rows in it so far.
    ed_lines: (i64, usize),
    pub stats: FlowStats,
}

fn age_band(age: u32) -> &'static str {
    AGE_BANDS
        .iter()
        .find(|(max, _)| age <= *max)
        .map_or("85+", |(_, b)| b)
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .map(|d| d.sample(rng))
        .unwrap_or(median)
}

fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    Exp::new(1.0 / mean.max(1e-6))
        .map(|d| d.sample(rng))
        .unwrap_or(mean)
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean)
        .map(|d| d.sample(rng) as u64)
        .unwrap_or(0)
}

fn minutes(m: f64) -> SimTime {
    (m * 60.0).round() as SimTime
}

impl Hospital {
    pub(crate) fn new(
        model: &TrustModel,
        seed: u64,
        escalation: usize,
        live_from: SimTime,
    ) -> Self {
        let stream = |purpose| rng_stream(seed, model, purpose);
        let beds = model
            .wards
            .iter()
            .map(|w| vec![None; w.beds as usize + if w.escalates() { escalation } else { 0 }])
            .collect();
        Hospital {
            rng: stream(0x1001),
            ed_rng: stream(0x1002),
            population: model.population_of(seed),
            beds,
            regular: model.wards.iter().map(|w| w.beds as usize).collect(),
            queue: BinaryHeap::new(),
            seq: 0,
            requests: BTreeMap::new(),
            encounters: BTreeMap::new(),
            open_ed: BTreeMap::new(),
            in_department: 0,
            boarders: 0,
            next_id: 1,
            next_control: 1,
            phase: Phase::WarmUp,
            warmup_adt: BTreeMap::new(),
            live_from,
            next_temporary: 0,
            ed_lines: (0, 0),
            stats: FlowStats::default(),
        }
    }

    fn at(&mut self, t: SimTime, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Runs local day `day` (all events before the next midnight).
    pub(crate) fn run_day(
        &mut self,
        model: &TrustModel,
        clock: &Clock,
        changes: &Changes,
        day: i64,
        out: &mut dyn FnMut(Record),
    ) {
        let start = Clock::day_start(day);
        if self.phase == Phase::WarmUp && start >= self.live_from {
            self.go_live(out);
        }
        self.schedule_arrivals(model, clock, day);
        let end = start + DAY;
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t >= end {
                break;
            }
            let Some(Reverse((t, _, ev))) = self.queue.pop() else {
                break;
            };
            self.handle(model, clock, changes, t, ev, out);
        }
    }

    /// Reports what is still open at the end: attendances still in the department.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(Record)) {
        if self.phase == Phase::WarmUp {
            self.go_live(out);
        }
        for (_, ed) in std::mem::take(&mut self.open_ed) {
            out(Record::Ed(ed));
        }
    }

    fn go_live(&mut self, out: &mut dyn FnMut(Record)) {
        self.phase = Phase::Live;
        let mut pending: Vec<AdtRecord> = std::mem::take(&mut self.warmup_adt)
            .into_values()
            .flatten()
            .collect();
        pending.sort_by_key(|r| r.control_id);
        for record in pending {
            out(Record::Adt(record));
        }
    }

    fn schedule_arrivals(&mut self, model: &TrustModel, clock: &Clock, day: i64) {
        let date = clock.date(day);
        let start = Clock::day_start(day);
        let w = winter(date);
        let weekday = date.weekday();
        let week_factor = match weekday {
            Weekday::Mon => 1.10,
            Weekday::Tue => 1.01,
            Weekday::Wed => 0.98,
            Weekday::Thu => 0.98,
            Weekday::Fri => 1.00,
            Weekday::Sat => 0.95,
            Weekday::Sun => 0.98,
        };
        // A slight summer peak in attendances and slow growth over the years.
        let season = 1.0
            + 0.04 * ((f64::from(date.ordinal()) - 190.0) / 365.0 * std::f64::consts::TAU).cos();
        let trend =
            1.0 + 0.02 * (f64::from(date.year() - 2024) + f64::from(date.ordinal()) / 365.0);
        let daily = ED_ARRIVALS_PER_DAY * model.demand * week_factor * season * trend;
        let total: f64 = ED_HOURLY.iter().sum();
        for (hour, rate) in ED_HOURLY.iter().enumerate() {
            let n = poisson(&mut self.ed_rng, daily * rate / total);
            for _ in 0..n {
                let t = start + hour as SimTime * HOUR + self.ed_rng.random_range(0..HOUR);
                self.at(t, Ev::EdArrive);
            }
        }
        self.at(start + 9 * HOUR, Ev::BoardRound);
        let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
        // GP direct admissions, mostly in working hours.
        let gp = poisson(
            &mut self.rng,
            12.0 * model.demand * if weekend { 0.5 } else { 1.0 } * (1.0 + 0.15 * w),
        );
        for _ in 0..gp {
            let t = start + 9 * HOUR + self.rng.random_range(0..10 * HOUR);
            self.at(t, Ev::GpArrive);
        }
        if !weekend {
            let elective = poisson(&mut self.rng, 24.0 * model.demand);
            for _ in 0..elective {
                let t = start + 7 * HOUR + self.rng.random_range(0..3 * HOUR);
                self.at(t, Ev::ElectiveArrive);
            }
            let day_cases = poisson(&mut self.rng, 40.0 * model.demand);
            for _ in 0..day_cases {
                let t = start + 7 * HOUR + 30 * MINUTE + self.rng.random_range(0..5 * HOUR);
                self.at(t, Ev::DayCaseArrive);
            }
        }
        let maternity = poisson(&mut self.rng, 13.0 * model.demand);
        for _ in 0..maternity {
            let t = start + self.rng.random_range(0..DAY);
            self.at(t, Ev::MaternityArrive);
        }
    }

    fn pick_patient(&mut self, ed: bool) -> PatientId {
        let rng = if ed { &mut self.ed_rng } else { &mut self.rng };
        pick_patient(&self.population, rng)
    }

    fn handle(
        &mut self,
        model: &TrustModel,
        clock: &Clock,
        changes: &Changes,
        t: SimTime,
        ev: Ev,
        out: &mut dyn FnMut(Record),
    ) {
        match ev {
            Ev::EdArrive => self.ed_arrive(model, clock, changes, t),
            Ev::EdDepart(attendance) => {
                self.in_department -= 1;
                if let Some(ed) = self.open_ed.remove(&attendance) {
                    self.report_ed(clock, ed, out);
                }
            }
            Ev::GpArrive => self.gp_arrive(model, clock, t),
            Ev::ElectiveArrive => self.elective_arrive(model, clock, t),
            Ev::DayCaseArrive => self.day_case_arrive(model, t),
            Ev::MaternityArrive => self.maternity_arrive(model, t),
            Ev::TryPlace(request) => self.try_place(model, clock, changes, t, request, out),
            Ev::Discharge(encounter) => self.discharge(t, encounter, out),
            Ev::MoveOn(encounter) => self.move_on(t, encounter),
            Ev::Update(encounter) => {
                if self
                    .encounters
                    .get(&encounter)
                    .is_some_and(|e| e.paused_until <= t)
                {
                    self.adt(AdtType::A08, t, encounter, None, None, out);
                }
            }
            Ev::Release { ward, slot, owner } => {
                if self.beds[ward][slot] == Some(owner) {
                    self.beds[ward][slot] = None;
                }
            }
            Ev::CancelAdmit(phantom) => {
                if self.encounters.contains_key(&phantom) {
                    self.adt(AdtType::A11, t, phantom, None, None, out);
                    self.encounters.remove(&phantom);
                    self.close_warmup(phantom);
                }
            }
            Ev::CancelTransfer {
                encounter,
                back_to,
                wrong,
            } => {
                if self.encounters.contains_key(&encounter) {
                    // The A12 puts the patient back where they were before the wrong move.
                    let prior = Some(self.location(wrong));
                    self.adt_at(AdtType::A12, t, encounter, back_to, prior, None, out);
                }
            }
            Ev::CompleteTransfer { encounter, from } => {
                if self.beds[from.0][from.1] == Some(encounter) {
                    self.beds[from.0][from.1] = None;
                }
                if self.encounters.contains_key(&encounter) {
                    let prior = Some(self.location(from));
                    self.adt(AdtType::A02, t, encounter, prior, None, out);
                }
            }
            Ev::BoardRound => self.board_round(t),
            Ev::Merge(encounter) => self.merge(t, encounter, out),
            Ev::CancelDischarge(encounter) => {
                if self.encounters.contains_key(&encounter) {
                    self.adt(AdtType::A13, t, encounter, None, None, out);
                }
            }
        }
    }

    fn location(&self, (ward, slot): (usize, usize)) -> Location {
        Location {
            ward,
            bed: bed_label(self.regular[ward], slot),
        }
    }

    fn ed_arrive(&mut self, model: &TrustModel, clock: &Clock, changes: &Changes, t: SimTime) {
        let date = clock.date(Clock::day_of(t));
        let patient = self.pick_patient(true);
        let age = self.population.age(patient, date);
        let attendance = self.id();
        let r = &mut self.ed_rng;
        let p_ambulance = match age {
            0..=15 => 0.10,
            16..=64 => 0.20,
            65..=84 => 0.45,
            _ => 0.62,
        };
        let u: f64 = r.random();
        let mode = if u < p_ambulance {
            ArrivalMode::Ambulance
        } else if u < p_ambulance + 0.03 {
            ArrivalMode::Other
        } else {
            ArrivalMode::WalkIn
        };
        let acuity: i8 = {
            let u: f64 = r.random();
            let cut = if mode == ArrivalMode::Ambulance {
                [0.04, 0.34, 0.84, 0.97]
            } else {
                [0.005, 0.12, 0.52, 0.88]
            };
            1 + cut.iter().filter(|c| u >= **c).count() as i8
        };
        let complaint = if age < 16 {
            COMPLAINTS_CHILD[r.random_range(0..COMPLAINTS_CHILD.len())]
        } else {
            COMPLAINTS_ADULT[r.random_range(0..COMPLAINTS_ADULT.len())]
        };
        let crowd = self.boarders as f64 * 1.1 + (self.in_department as f64 - 45.0).max(0.0) * 0.4;
        let staffing = if date >= changes.ed_staffing {
            0.78
        } else {
            1.0
        };
        let handover = (mode == ArrivalMode::Ambulance)
            .then(|| t + minutes(8.0 + exp(r, 7.0 + 0.5 * self.boarders as f64).min(360.0)));
        let assessment = match handover {
            Some(h) => h + minutes(r.random_range(0.0..6.0)),
            None => t + minutes(exp(r, 10.0 + 0.12 * crowd).min(240.0)),
        };
        let mut ed = EdRecord {
            attendance,
            site: model.ed_site,
            patient,
            arrival: t,
            mode,
            handover,
            acuity,
            initial_assessment: Some(assessment),
            seen: None,
            decision_to_admit: None,
            departure: None,
            disposal: None,
            age_band: age_band(age),
            chief_complaint: complaint,
        };
        self.in_department += 1;
        self.stats.ed_attendances += 1;
        let p_leave = if acuity >= 4 { 0.05 } else { 0.01 } * (1.0 + crowd / 40.0);
        if r.random_bool(p_leave.min(0.3)) {
            ed.departure = Some(assessment + minutes(r.random_range(45.0..240.0)));
            ed.disposal = Some(Disposal::Left);
            self.at_ed_depart(ed);
            return;
        }
        let wait_mean = match acuity {
            1 => 2.0,
            2 => 16.0,
            3 => 70.0,
            4 => 95.0,
            _ => 105.0,
        } * staffing
            * (1.0 + crowd / 55.0);
        let r = &mut self.ed_rng;
        let seen = assessment + minutes(exp(r, wait_mean).min(600.0));
        ed.seen = Some(seen);
        let age_factor = match age {
            0..=15 => 0.45,
            16..=44 => 0.6,
            45..=64 => 0.9,
            65..=74 => 1.3,
            _ => 1.7,
        };
        let base = match acuity {
            1 => 0.85,
            2 => 0.56,
            3 => 0.31,
            4 => 0.085,
            _ => 0.02,
        };
        let p_admit = (base * age_factor * (1.0 + 0.12 * winter(date))).min(0.95);
        if r.random_bool(p_admit) {
            let decision = seen + minutes(lognormal(r, 110.0 * staffing.max(0.85), 0.5));
            ed.decision_to_admit = Some(decision);
            self.open_ed.insert(attendance, ed);
            let Route {
                specialty,
                wards,
                fallback,
                next,
            } = self.emergency_route(model, age);
            let los = self.los_hours(specialty, age, date, true);
            // Now and then someone brought in by ambulance, very unwell, cannot be identified
            // at first and is admitted under a temporary hospital number.
            let unidentified = mode == ArrivalMode::Ambulance
                && acuity <= 2
                && self.ed_rng.random_bool(UNIDENTIFIED_SHARE);
            let request = BedRequest {
                need: Need::Emergency { attendance },
                patient,
                specialty,
                method: "21",
                class: PatientClass::Inpatient,
                wards,
                fallback,
                escalate_at: decision + 4 * HOUR,
                los_hours: los,
                next,
                unidentified,
            };
            self.boarders += 1;
            self.request(decision, request);
            return;
        }
        let u: f64 = r.random();
        let disposal = if acuity == 1 && u < 0.03 {
            Disposal::Died
        } else if u < 0.035 {
            Disposal::Transferred
        } else {
            Disposal::Discharged
        };
        let treatment =
            lognormal(r, 80.0, 0.6) * if acuity <= 3 { 1.35 } else { 1.0 } * staffing.max(0.85);
        ed.departure = Some(seen + minutes(treatment.min(1440.0)));
        ed.disposal = Some(disposal);
        self.at_ed_depart(ed);
    }

    fn at_ed_depart(&mut self, ed: EdRecord) {
        let departure = ed.departure.unwrap_or(ed.arrival);
        let attendance = ed.attendance;
        self.open_ed.insert(attendance, ed);
        self.at(departure, Ev::EdDepart(attendance));
    }

    fn report_ed(&mut self, clock: &Clock, ed: EdRecord, out: &mut dyn FnMut(Record)) {
        // The ED extract starts on the first reported day: attendances that began in the
        // warm-up are not part of the reported history (their admissions still are).
        if ed.arrival < self.live_from {
            return;
        }
        let day = Clock::day_of(ed.departure.unwrap_or(ed.arrival));
        if self.ed_lines.0 != day {
            self.ed_lines = (day, 0);
        }
        self.ed_lines.1 += 1;
        if self.ed_rng.random_bool(ED_REFUSED_SHARE) {
            // The day's extract is refused for this row and sent again corrected; the header
            // is line 1.
            out(Record::DqIssue(DqIssueRecord {
                feed: Table::EdAttendances.name(),
                received: Clock::day_start(day + 1) + 2 * HOUR,
                record_ref: format!("file ed_attendances_{}.csv", clock.date(day)),
                reason: format!(
                    "line {}, field 'departure_time': is before the arrival",
                    self.ed_lines.1 + 1
                ),
                owner: default_owner(Table::EdAttendances.name()),
            }));
        }
        out(Record::Ed(ed));
    }

    /// Where an adult or child emergency admission goes: specialty, first wards, fallback
    /// wards, and the move after an assessment unit or ICU.
    fn emergency_route(&mut self, model: &TrustModel, age: u32) -> Route {
        if age < 16 {
            let paeds = model.wards_where(WardRole::Paediatric, None);
            return Route {
                specialty: sp::PAEDIATRICS,
                wards: paeds,
                fallback: Vec::new(),
                next: None,
            };
        }
        let r = &mut self.rng;
        let u: f64 = r.random();
        let elderly = age >= 75;
        let medical: &[(&'static str, f64)] = if elderly {
            &[
                (sp::GERIATRICS, 0.4),
                (sp::GENERAL_MEDICINE, 0.25),
                (sp::RESPIRATORY, 0.13),
                (sp::CARDIOLOGY, 0.1),
                (sp::STROKE, 0.06),
                (sp::GASTRO, 0.06),
            ]
        } else {
            &[
                (sp::GENERAL_MEDICINE, 0.42),
                (sp::RESPIRATORY, 0.16),
                (sp::CARDIOLOGY, 0.16),
                (sp::GASTRO, 0.12),
                (sp::STROKE, 0.04),
                (sp::GERIATRICS, 0.10),
            ]
        };
        let surgical: &[(&'static str, f64)] = &[
            (sp::GENERAL_SURGERY, 0.5),
            (sp::TRAUMA_ORTHO, 0.34),
            (sp::UROLOGY, 0.1),
            (sp::GYNAECOLOGY, 0.06),
        ];
        let (table, is_medical) = if u < 0.7 {
            (medical, true)
        } else {
            (surgical, false)
        };
        let mut v: f64 = r.random();
        let mut specialty = table[0].0;
        for (s, w) in table {
            if v < *w {
                specialty = s;
                break;
            }
            v -= w;
        }
        let base = base_wards(model, specialty, is_medical);
        let family = family_wards(model, is_medical);
        let icu = model.wards_where(WardRole::Critical, None);
        if !icu.is_empty() && r.random_bool(0.025) {
            let hours = lognormal(r, 55.0, 0.6);
            return Route {
                specialty,
                wards: icu,
                fallback: Vec::new(),
                next: Some((hours, NextMove::new(base, family, specialty))),
            };
        }
        let assessment = if is_medical {
            model.wards_where(WardRole::MedicalAssessment, None)
        } else if specialty == sp::GENERAL_SURGERY || specialty == sp::UROLOGY {
            model.wards_where(WardRole::SurgicalAssessment, None)
        } else {
            Vec::new()
        };
        if assessment.is_empty() {
            return Route {
                specialty,
                wards: base,
                fallback: family,
                next: None,
            };
        }
        let hours = lognormal(r, 22.0, 0.5);
        Route {
            specialty,
            wards: assessment,
            fallback: base.clone(),
            next: Some((hours, NextMove::new(base, family, specialty))),
        }
    }
}

/// Base wards of a specialty on the emergency sites (not the elective centre).
fn base_wards(model: &TrustModel, specialty: &str, medical: bool) -> Vec<usize> {
    let wards: Vec<usize> = model
        .wards_where(WardRole::Base, Some(specialty))
        .into_iter()
        .filter(|&w| model.wards[w].site != 2)
        .collect();
    if wards.is_empty() {
        family_wards(model, medical)
    } else {
        wards
    }
}

/// Any medical (or surgical) base ward on the emergency sites: where outliers go.
fn family_wards(model: &TrustModel, medical: bool) -> Vec<usize> {
    let medical_specialties = [
        sp::GENERAL_MEDICINE,
        sp::GERIATRICS,
        sp::RESPIRATORY,
        sp::CARDIOLOGY,
        sp::GASTRO,
        sp::STROKE,
    ];
    model
        .wards
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.role == WardRole::Base
                && w.site != 2
                && w.specialty != sp::REHAB
                && medical_specialties.contains(&w.specialty) == medical
        })
        .map(|(i, _)| i)
        .collect()
}

impl Hospital {
    fn los_hours(
        &mut self,
        specialty: &str,
        age: u32,
        date: chrono::NaiveDate,
        emergency: bool,
    ) -> f64 {
        let (median_days, sigma) = match specialty {
            sp::PAEDIATRICS => (0.9, 0.8),
            sp::OBSTETRICS => (1.3, 0.5),
            sp::GENERAL_SURGERY | sp::UROLOGY | sp::GYNAECOLOGY => (2.2, 0.85),
            sp::TRAUMA_ORTHO => (3.5, 0.8),
            _ => (2.9, 1.0),
        };
        let age_factor = if age >= 75 { 1.35 } else { 1.0 };
        let elective_factor = if emergency { 1.0 } else { 0.8 };
        let season = 1.0 + 0.10 * winter(date);
        lognormal(&mut self.rng, median_days, sigma) * 24.0 * age_factor * elective_factor * season
    }

    fn gp_arrive(&mut self, model: &TrustModel, clock: &Clock, t: SimTime) {
        let patient = self.pick_patient(false);
        let date = clock.date(Clock::day_of(t));
        let age = self.population.age(patient, date).max(16);
        let Route {
            specialty,
            wards,
            fallback,
            next,
        } = self.emergency_route(model, age);
        let los = self.los_hours(specialty, age, date, true);
        self.request(
            t,
            BedRequest {
                need: Need::GpDirect,
                patient,
                specialty,
                method: "22",
                class: PatientClass::Inpatient,
                wards,
                fallback,
                escalate_at: t + 4 * HOUR,
                los_hours: los,
                next,
                unidentified: false,
            },
        );
    }

    fn elective_arrive(&mut self, model: &TrustModel, clock: &Clock, t: SimTime) {
        let patient = self.pick_patient(false);
        let date = clock.date(Clock::day_of(t));
        let age = self.population.age(patient, date).max(18);
        let specialties = [
            (sp::TRAUMA_ORTHO, 0.4),
            (sp::GENERAL_SURGERY, 0.3),
            (sp::UROLOGY, 0.15),
            (sp::GYNAECOLOGY, 0.15),
        ];
        let mut v: f64 = self.rng.random();
        let mut specialty = sp::TRAUMA_ORTHO;
        for (s, w) in specialties {
            if v < w {
                specialty = s;
                break;
            }
            v -= w;
        }
        // Elective centre first, then the specialty's wards anywhere.
        let all = model.wards_where(WardRole::Base, Some(specialty));
        let (centre, other): (Vec<usize>, Vec<usize>) =
            all.into_iter().partition(|&w| model.wards[w].site == 2);
        let los = self.los_hours(specialty, age, date, false);
        let method = ["11", "12", "13"][self.rng.random_range(0..3)];
        self.request(
            t,
            BedRequest {
                need: Need::Elective {
                    give_up: Clock::day_start(Clock::day_of(t)) + 13 * HOUR,
                },
                patient,
                specialty,
                method,
                class: PatientClass::Inpatient,
                wards: if centre.is_empty() {
                    other.clone()
                } else {
                    centre
                },
                fallback: other,
                escalate_at: SimTime::MAX,
                los_hours: los,
                next: None,
                unidentified: false,
            },
        );
    }

    fn day_case_arrive(&mut self, model: &TrustModel, t: SimTime) {
        let patient = self.pick_patient(false);
        let wards = model.wards_where(WardRole::DayCase, None);
        if wards.is_empty() {
            return;
        }
        let ward = wards[self.rng.random_range(0..wards.len())];
        let specialty = model.wards[ward].specialty;
        let hours = self.rng.random_range(2.5..7.0);
        self.request(
            t,
            BedRequest {
                need: Need::Elective {
                    give_up: Clock::day_start(Clock::day_of(t)) + 14 * HOUR,
                },
                patient,
                specialty,
                method: "12",
                class: PatientClass::DayCase,
                wards: vec![ward],
                fallback: wards,
                escalate_at: SimTime::MAX,
                los_hours: hours,
                next: None,
                unidentified: false,
            },
        );
    }

    fn maternity_arrive(&mut self, model: &TrustModel, t: SimTime) {
        let patient = self.pick_patient(false);
        let wards = model.wards_where(WardRole::Maternity, None);
        let los = lognormal(&mut self.rng, 1.3, 0.5) * 24.0;
        self.request(
            t,
            BedRequest {
                need: Need::Maternity,
                patient,
                specialty: sp::OBSTETRICS,
                method: "31",
                class: PatientClass::Inpatient,
                wards,
                fallback: Vec::new(),
                escalate_at: t + HOUR,
                los_hours: los,
                next: None,
                unidentified: false,
            },
        );
    }

    fn request(&mut self, t: SimTime, request: BedRequest) {
        let id = self.id();
        self.requests.insert(id, request);
        self.at(t, Ev::TryPlace(id));
    }

    /// A free slot: regular beds of preferred then fallback wards (the emptiest ward first),
    /// then, if allowed, escalation beds.
    fn free_slot(
        &self,
        wards: &[usize],
        fallback: &[usize],
        escalate: bool,
    ) -> Option<(usize, usize, bool)> {
        for group in [wards, fallback] {
            let best = group
                .iter()
                .filter_map(|&w| {
                    let free = self.beds[w][..self.regular[w]]
                        .iter()
                        .filter(|b| b.is_none())
                        .count();
                    (free > 0).then_some((free, w))
                })
                .max_by_key(|&(free, w)| (free, Reverse(w)));
            if let Some((_, w)) = best {
                let slot = self.beds[w][..self.regular[w]]
                    .iter()
                    .position(Option::is_none)?;
                return Some((w, slot, false));
            }
        }
        if escalate {
            for group in [wards, fallback] {
                for &w in group {
                    if let Some(slot) = self.beds[w][self.regular[w]..]
                        .iter()
                        .position(Option::is_none)
                    {
                        return Some((w, self.regular[w] + slot, true));
                    }
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_lines)]
    fn try_place(
        &mut self,
        model: &TrustModel,
        clock: &Clock,
        changes: &Changes,
        t: SimTime,
        id: u64,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(request) = self.requests.get(&id) else {
            return;
        };
        // A patient waiting to move on who has been discharged meanwhile no longer needs a bed.
        if let Need::Move { encounter } = request.need {
            match self.encounters.get(&encounter) {
                None => {
                    self.requests.remove(&id);
                    return;
                }
                Some(enc) if enc.paused_until > t => {
                    let resume = enc.paused_until;
                    self.at(resume, Ev::TryPlace(id));
                    return;
                }
                Some(_) => {}
            }
        }
        let escalate = t >= request.escalate_at && escalation_open(clock.date(Clock::day_of(t)));
        let Some((ward, slot, escalation)) =
            self.free_slot(&request.wards, &request.fallback, escalate)
        else {
            if let Need::Elective { give_up } = request.need
                && t >= give_up
            {
                self.requests.remove(&id);
                self.stats.elective_cancelled_no_bed += 1;
                return;
            }
            let retry = match request.need {
                Need::Move { .. } => HOUR,
                Need::Elective { .. } => 30 * MINUTE,
                _ => 15 * MINUTE,
            };
            self.at(t + retry, Ev::TryPlace(id));
            return;
        };
        let Some(request) = self.requests.remove(&id) else {
            return;
        };
        if escalation {
            self.stats.escalation_bed_uses += 1;
        }
        match request.need {
            Need::Move { encounter } => {
                self.complete_move(model, t, encounter, ward, slot, out);
            }
            need => {
                if let Need::Emergency { attendance } = need {
                    self.boarders -= 1;
                    self.in_department -= 1;
                    if let Some(mut ed) = self.open_ed.remove(&attendance) {
                        ed.departure = Some(t);
                        ed.disposal = Some(Disposal::Admitted);
                        self.report_ed(clock, ed, out);
                    }
                }
                self.admit(clock, changes, t, request, ward, slot, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        clock: &Clock,
        changes: &Changes,
        t: SimTime,
        request: BedRequest,
        ward: usize,
        slot: usize,
        out: &mut dyn FnMut(Record),
    ) {
        let encounter = self.id();
        let date = clock.date(Clock::day_of(t));
        let age = self.population.age(request.patient, date);
        let discharge_at = if request.class == PatientClass::DayCase {
            t + (request.los_hours * HOUR as f64) as SimTime
        } else {
            self.discharge_time(clock, changes, t, request.los_hours)
        };
        let next = request.next.map(|(hours, next)| NextMove {
            at: t + (hours * HOUR as f64) as SimTime,
            ..next
        });
        self.beds[ward][slot] = Some(encounter);
        let temporary = request.unidentified.then(|| {
            self.next_temporary += 1;
            self.next_temporary
        });
        self.encounters.insert(
            encounter,
            Encounter {
                patient: request.patient,
                class: request.class,
                specialty: request.specialty,
                method: request.method,
                admit_time: t,
                ward,
                slot,
                discharge_at,
                next: None,
                moving: None,
                cancel_discharge_done: false,
                paused_until: 0,
                age,
                temporary,
                merged_from: None,
            },
        );
        self.stats.admissions += 1;
        self.adt(AdtType::A01, t, encounter, None, None, out);
        self.at(discharge_at, Ev::Discharge(encounter));
        self.plan_next(encounter, next, discharge_at);
        if temporary.is_some() {
            // Identified within hours, on the ward; the records are merged then.
            let found = minutes(lognormal(&mut self.rng, 360.0, 0.7).min(4320.0));
            self.at((t + found).min(discharge_at - MINUTE), Ev::Merge(encounter));
        }
        if self.rng.random_bool(0.05) && discharge_at - t > 2 * HOUR {
            let when = t + self.rng.random_range(HOUR..discharge_at - t);
            self.at(when, Ev::Update(encounter));
        }
        // Now and then the same patient is admitted twice by mistake and the duplicate is
        // cancelled (A11); the duplicate holds a real free bed so the ADT view stays possible.
        if self.rng.random_bool(0.004)
            && let Some((w, s, _)) = self.free_slot(&[ward], &[], false)
        {
            let phantom = self.id();
            let undo = t + minutes(self.rng.random_range(10.0..60.0));
            self.beds[w][s] = Some(phantom);
            self.encounters.insert(
                phantom,
                Encounter {
                    ward: w,
                    slot: s,
                    discharge_at: undo,
                    ..self.encounters[&encounter].clone()
                },
            );
            self.adt(AdtType::A01, t + MINUTE, phantom, None, None, out);
            self.at(undo, Ev::CancelAdmit(phantom));
            self.at(
                undo,
                Ev::Release {
                    ward: w,
                    slot: s,
                    owner: phantom,
                },
            );
        }
    }

    /// Arranges the move after an assessment unit or ICU, or a step-down to rehabilitation for
    /// long stays.
    fn plan_next(&mut self, encounter: u64, next: Option<NextMove>, discharge_at: SimTime) {
        let Some(enc) = self.encounters.get_mut(&encounter) else {
            return;
        };
        if let Some(next) = next {
            // Discharged straight from the unit when the stay is short.
            if next.at + 4 * HOUR < discharge_at {
                let when = next.at;
                enc.next = Some(next);
                self.at(when, Ev::MoveOn(encounter));
            }
        }
    }

    fn move_on(&mut self, t: SimTime, encounter: u64) {
        let id = self.id();
        let Some(enc) = self.encounters.get_mut(&encounter) else {
            return;
        };
        let Some(NextMove {
            wards,
            fallback,
            specialty,
            ..
        }) = enc.next.take()
        else {
            return;
        };
        enc.specialty = specialty;
        let request = BedRequest {
            need: Need::Move { encounter },
            patient: enc.patient,
            specialty,
            method: enc.method,
            class: enc.class,
            wards,
            fallback,
            escalate_at: SimTime::MAX,
            los_hours: 0.0,
            next: None,
            unidentified: false,
        };
        enc.moving = Some(id);
        self.requests.insert(id, request);
        self.at(t, Ev::TryPlace(id));
    }

    #[allow(clippy::too_many_arguments)]
    fn complete_move(
        &mut self,
        model: &TrustModel,
        t: SimTime,
        encounter: u64,
        ward: usize,
        slot: usize,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(enc) = self.encounters.get_mut(&encounter) else {
            return;
        };
        let from = (enc.ward, enc.slot);
        enc.ward = ward;
        enc.slot = slot;
        enc.moving = None;
        let long_stay =
            enc.discharge_at - t > 10 * DAY && enc.age >= 70 && enc.specialty != sp::REHAB;
        self.beds[ward][slot] = Some(encounter);
        // Occasionally the clerk first moves the patient to the wrong bed, cancels that (A12)
        // and then records the right move. The wrong bed is free and held meanwhile.
        let wrong = if self.rng.random_bool(0.01) {
            let others: Vec<usize> = (0..model.wards.len())
                .filter(|&w| w != ward && w != from.0 && model.wards[w].role == WardRole::Base)
                .collect();
            self.free_slot(&others, &[], false)
        } else {
            None
        };
        if let Some((w, s, _)) = wrong {
            self.beds[w][s] = Some(encounter);
            let prior = Some(self.location(from));
            self.adt_at(AdtType::A02, t, encounter, (w, s), prior, None, out);
            self.at(
                t + 15 * MINUTE,
                Ev::CancelTransfer {
                    encounter,
                    back_to: from,
                    wrong: (w, s),
                },
            );
            self.at(
                t + 15 * MINUTE,
                Ev::Release {
                    ward: w,
                    slot: s,
                    owner: encounter,
                },
            );
            self.at(t + 20 * MINUTE, Ev::CompleteTransfer { encounter, from });
            if let Some(enc) = self.encounters.get_mut(&encounter) {
                enc.paused_until = t + 20 * MINUTE;
            }
        } else {
            self.beds[from.0][from.1] = None;
            let prior = Some(self.location(from));
            self.adt(AdtType::A02, t, encounter, prior, None, out);
        }
        if long_stay {
            let rehab = model.wards_where(WardRole::Base, Some(sp::REHAB));
            if !rehab.is_empty() {
                let when = t + 6 * DAY + self.rng.random_range(0..2 * DAY);
                if let Some(enc) = self.encounters.get_mut(&encounter) {
                    enc.next = Some(NextMove {
                        at: when,
                        ..NextMove::new(rehab, Vec::new(), sp::REHAB)
                    });
                }
                self.at(when, Ev::MoveOn(encounter));
            }
        }
    }

    /// When a stay of `los_hours` starting at `admit` ends: its day, a time of day that follows
    /// real discharge patterns, and fewer discharges at weekends.
    fn discharge_time(
        &mut self,
        clock: &Clock,
        changes: &Changes,
        admit: SimTime,
        los_hours: f64,
    ) -> SimTime {
        let nominal = admit + (los_hours * HOUR as f64) as SimTime;
        let mut day = Clock::day_of(nominal);
        let date = clock.date(day);
        match date.weekday() {
            Weekday::Sat if self.rng.random_bool(0.4) => day += 2,
            Weekday::Sun if self.rng.random_bool(0.4) => day += 1,
            _ => {}
        }
        let p_morning = if clock.date(day) >= changes.discharge_lounge {
            0.31
        } else {
            0.15
        };
        let hour = if self.rng.random_bool(p_morning) {
            self.rng.random_range(8.5..12.0)
        } else {
            // Afternoon peak around 15:30.
            let a: f64 = self.rng.random_range(12.0..19.5);
            let b: f64 = self.rng.random_range(12.0..19.5);
            (a + b) / 2.0
        };
        let t = Clock::day_start(day) + (hour * HOUR as f64) as SimTime;
        t.max(admit + 4 * HOUR)
    }

    fn discharge(&mut self, t: SimTime, encounter: u64, out: &mut dyn FnMut(Record)) {
        let Some(enc) = self.encounters.get(&encounter) else {
            return;
        };
        if enc.discharge_at != t {
            return;
        }
        if enc.paused_until > t {
            let resume = enc.paused_until;
            if let Some(enc) = self.encounters.get_mut(&encounter) {
                enc.discharge_at = resume;
            }
            self.at(resume, Ev::Discharge(encounter));
            return;
        }
        if enc.class == PatientClass::Inpatient
            && !enc.cancel_discharge_done
            && self.rng.random_bool(0.005)
        {
            // Discharge recorded in error, cancelled (A13); the patient leaves later.
            let later = t + 3 * HOUR + self.rng.random_range(0..3 * HOUR);
            let destination = self.destination(encounter);
            self.adt(AdtType::A03, t, encounter, None, Some(destination), out);
            self.at(t + 20 * MINUTE, Ev::CancelDischarge(encounter));
            if let Some(enc) = self.encounters.get_mut(&encounter) {
                enc.cancel_discharge_done = true;
                enc.discharge_at = later;
                enc.paused_until = t + 20 * MINUTE;
            }
            self.at(later, Ev::Discharge(encounter));
            return;
        }
        let destination = self.destination(encounter);
        self.adt(AdtType::A03, t, encounter, None, Some(destination), out);
        if let Some(enc) = self.encounters.remove(&encounter) {
            if self.beds[enc.ward][enc.slot] == Some(encounter) {
                self.beds[enc.ward][enc.slot] = None;
            }
            if let Some(moving) = enc.moving {
                self.requests.remove(&moving);
            }
        }
        self.close_warmup(encounter);
    }

    /// Brings forward, to later today, planned discharges of the next day and a half (the
    /// soonest first), one for every two patients waiting in the department for a bed: how a
    /// full hospital's wards respond, and what keeps winter from tipping it into gridlock.
    fn board_round(&mut self, t: SimTime) {
        let wanted = usize::try_from(self.boarders / 2).unwrap_or(0);
        if wanted == 0 {
            return;
        }
        let mut due: Vec<(SimTime, u64)> = self
            .encounters
            .iter()
            .filter(|(_, e)| {
                e.class == PatientClass::Inpatient
                    && e.paused_until <= t
                    && e.moving.is_none()
                    && e.discharge_at > t + 8 * HOUR
                    && e.discharge_at < t + 36 * HOUR
            })
            .map(|(&id, e)| (e.discharge_at, id))
            .collect();
        due.sort_unstable();
        for (_, id) in due.into_iter().take(wanted) {
            let when = t + 2 * HOUR + self.rng.random_range(0..6 * HOUR);
            if let Some(enc) = self.encounters.get_mut(&id) {
                enc.discharge_at = when.max(enc.admit_time + 4 * HOUR);
                let at = enc.discharge_at;
                self.at(at, Ev::Discharge(id));
            }
        }
    }

    /// Merges the temporary record of a patient identified on the ward into their own (A40);
    /// from then on the PAS names the patient by their NHS number.
    fn merge(&mut self, t: SimTime, encounter: u64, out: &mut dyn FnMut(Record)) {
        let Some(enc) = self.encounters.get_mut(&encounter) else {
            return;
        };
        if enc.paused_until > t {
            let resume = enc.paused_until;
            self.at(resume, Ev::Merge(encounter));
            return;
        }
        let Some(n) = enc.temporary.take() else {
            return;
        };
        enc.merged_from = Some(n);
        self.adt(AdtType::A40, t, encounter, None, None, out);
    }

    fn destination(&mut self, encounter: u64) -> &'static str {
        let Some(enc) = self.encounters.get(&encounter) else {
            return "19";
        };
        let emergency = enc.method.starts_with('2');
        let p_death = match (emergency, enc.age) {
            (true, 75..) => 0.06,
            (true, 65..=74) => 0.03,
            (true, _) => 0.006,
            (false, _) => 0.001,
        };
        let u: f64 = self.rng.random();
        if u < p_death {
            "79"
        } else if u < p_death + if enc.age >= 75 { 0.08 } else { 0.01 } {
            "54"
        } else if u < p_death + 0.12 {
            "51"
        } else if u < p_death + 0.14 {
            "29"
        } else {
            "19"
        }
    }

    fn close_warmup(&mut self, encounter: u64) {
        if self.phase == Phase::WarmUp {
            self.warmup_adt.remove(&encounter);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn adt(
        &mut self,
        kind: AdtType,
        t: SimTime,
        encounter: u64,
        prior: Option<Location>,
        destination: Option<&'static str>,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(enc) = self.encounters.get(&encounter) else {
            return;
        };
        let at = (enc.ward, enc.slot);
        self.adt_at(kind, t, encounter, at, prior, destination, out);
    }

    #[allow(clippy::too_many_arguments)]
    fn adt_at(
        &mut self,
        kind: AdtType,
        t: SimTime,
        encounter: u64,
        at: (usize, usize),
        prior: Option<Location>,
        destination: Option<&'static str>,
        out: &mut dyn FnMut(Record),
    ) {
        let Some(enc) = self.encounters.get(&encounter) else {
            return;
        };
        // Most events are keyed in within minutes; some late, a few retrospectively.
        let delay = if self.rng.random_bool(0.04) {
            minutes(self.rng.random_range(60.0..720.0))
        } else {
            minutes(exp(&mut self.rng, 6.0).min(60.0))
        };
        let record = AdtRecord {
            control_id: self.next_control,
            event_type: kind,
            event_time: t,
            recorded_at: t + delay,
            patient: enc.patient,
            encounter,
            class: enc.class,
            location: self.location(at),
            prior_location: prior,
            specialty: enc.specialty,
            admission_method: enc.method,
            discharge_destination: destination,
            admit_time: enc.admit_time,
            discharge_time: (kind == AdtType::A03).then_some(t),
            temporary: enc.temporary,
            merged: enc.merged_from.filter(|_| kind == AdtType::A40),
        };
        self.next_control += 1;
        match self.phase {
            Phase::WarmUp => self.warmup_adt.entry(encounter).or_default().push(record),
            Phase::Live => {
                if self.rng.random_bool(ADT_REFUSED_SHARE) {
                    // Refused (AE) and sent again once the interface was put right.
                    out(Record::DqIssue(DqIssueRecord {
                        feed: HL7_ADT,
                        received: record.recorded_at,
                        record_ref: format!(
                            "{SENDING_APPLICATION}/{}",
                            control_id(record.control_id)
                        ),
                        reason: format!(
                            "PID-3: {} needs the patient's identifier (PID-3: NHS number or local number)",
                            kind.code()
                        ),
                        owner: default_owner(HL7_ADT),
                    }));
                }
                out(Record::Adt(record));
            }
        }
    }
}

/// Someone from the catchment, older people more often (they use hospitals more).
fn pick_patient(population: &Population, rng: &mut ChaCha8Rng) -> PatientId {
    let size = population.size().max(1);
    loop {
        let index = rng.random_range(0..size);
        let accept = population.attendance_weight(index) / 3.2;
        if rng.random_bool(accept.clamp(0.0, 1.0)) {
            return PatientId {
                trust: population.trust(),
                index,
            };
        }
    }
}

/// The bed label of a slot: `B01`… for regular beds, `E1`… for escalation beds.
pub(crate) fn bed_label(regular: usize, slot: usize) -> String {
    if slot < regular {
        format!("B{:02}", slot + 1)
    } else {
        format!("E{}", slot - regular + 1)
    }
}
