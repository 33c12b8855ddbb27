//! The theatre trackboard's room status, worked out from the milestones of a list's cases.
//!
//! A room's status comes from the furthest milestone each case has reached, never from the
//! order events arrive in: a late or resent event cannot move a room backwards, and a feed that
//! delivers a case's events out of order ends in the same state as one that delivers them in
//! order. A case in surgery holds the theatre; otherwise the last case out of it does until
//! the theatre is clean (the next patient may be anaesthetised next door meanwhile: the
//! theatre still needs cleaning); otherwise a patient in the anaesthetic room. With none of
//! those the room is waiting for a patient sent for, ready, or finished for the session; a
//! case cancelled on the day is counted and skipped.
//!
//! bright's milestones have no "wheels in" event, so "In theatre" starts at anaesthesia start,
//! the moment the touch-time clock starts (GIRFT's definition). "Ready for cleaning" starts
//! when the patient is out of theatre, and the minutes in it count from then, in recovery or
//! not, until cleaning starts.

use std::collections::BTreeMap;

use bright_engine::schema::theatre_events::{CANCELLED, MILESTONES};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A case milestone, in the order a completed case passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Milestone {
    SentFor,
    InAnaestheticRoom,
    AnaesthesiaStart,
    KnifeToSkin,
    SurgeryEnd,
    AnaesthesiaEnd,
    OutOfTheatre,
    InRecovery,
    CleaningStart,
    CleaningEnd,
}

impl Milestone {
    const ALL: [Milestone; 10] = [
        Milestone::SentFor,
        Milestone::InAnaestheticRoom,
        Milestone::AnaesthesiaStart,
        Milestone::KnifeToSkin,
        Milestone::SurgeryEnd,
        Milestone::AnaesthesiaEnd,
        Milestone::OutOfTheatre,
        Milestone::InRecovery,
        Milestone::CleaningStart,
        Milestone::CleaningEnd,
    ];

    /// The milestone `theatre_events.milestone` names, if it is one (not `cancelled`).
    pub fn parse(name: &str) -> Option<Self> {
        MILESTONES
            .iter()
            .position(|m| *m == name)
            .map(|i| Self::ALL[i])
    }

    /// Its name in `theatre_events.milestone`.
    pub fn name(self) -> &'static str {
        let i = Self::ALL.iter().position(|m| *m == self).unwrap_or(0);
        MILESTONES[i]
    }

    /// The room status this milestone starts.
    fn status(self) -> RoomStatus {
        match self {
            Milestone::SentFor => RoomStatus::SentFor,
            Milestone::InAnaestheticRoom => RoomStatus::InAnaestheticRoom,
            Milestone::AnaesthesiaStart => RoomStatus::InTheatre,
            Milestone::KnifeToSkin => RoomStatus::KnifeToSkin,
            Milestone::SurgeryEnd | Milestone::AnaesthesiaEnd => RoomStatus::Closing,
            Milestone::OutOfTheatre | Milestone::InRecovery => RoomStatus::ReadyForCleaning,
            Milestone::CleaningStart => RoomStatus::Cleaning,
            Milestone::CleaningEnd => RoomStatus::Ready,
        }
    }
}

/// What a room is doing, as the trackboard shows it (text and colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomStatus {
    Idle,
    SentFor,
    InAnaestheticRoom,
    InTheatre,
    KnifeToSkin,
    Closing,
    ReadyForCleaning,
    Cleaning,
    Ready,
    SessionFinished,
}

impl RoomStatus {
    /// Every status, in the order a room passes them.
    pub const ALL: [RoomStatus; 10] = [
        RoomStatus::Idle,
        RoomStatus::SentFor,
        RoomStatus::InAnaestheticRoom,
        RoomStatus::InTheatre,
        RoomStatus::KnifeToSkin,
        RoomStatus::Closing,
        RoomStatus::ReadyForCleaning,
        RoomStatus::Cleaning,
        RoomStatus::Ready,
        RoomStatus::SessionFinished,
    ];

    /// The status in words.
    pub fn label(self) -> &'static str {
        match self {
            RoomStatus::Idle => "Not started",
            RoomStatus::SentFor => "Sent for",
            RoomStatus::InAnaestheticRoom => "In anaesthetic room",
            RoomStatus::InTheatre => "In theatre",
            RoomStatus::KnifeToSkin => "Knife to skin",
            RoomStatus::Closing => "Closing",
            RoomStatus::ReadyForCleaning => "Ready for cleaning",
            RoomStatus::Cleaning => "Cleaning",
            RoomStatus::Ready => "Ready",
            RoomStatus::SessionFinished => "Session finished",
        }
    }

    /// Background colour (NHS identity colours) and the text colour that reads on it.
    pub fn colours(self) -> (&'static str, &'static str) {
        match self {
            RoomStatus::Idle | RoomStatus::SessionFinished => ("#E8EDEE", "#212B32"),
            RoomStatus::SentFor => ("#FFB81C", "#212B32"),
            RoomStatus::InAnaestheticRoom => ("#41B6E6", "#212B32"),
            RoomStatus::InTheatre => ("#005EB8", "#FFFFFF"),
            RoomStatus::KnifeToSkin => ("#003087", "#FFFFFF"),
            RoomStatus::Closing => ("#330072", "#FFFFFF"),
            RoomStatus::ReadyForCleaning => ("#ED8B00", "#212B32"),
            // NHS dark grey: the identity's mid grey cannot carry text at 4.5:1.
            RoomStatus::Cleaning => ("#425563", "#FFFFFF"),
            RoomStatus::Ready => ("#007F3B", "#FFFFFF"),
        }
    }
}

/// The name of an NHS Data Dictionary treatment function code (the `specialty` columns), for
/// the specialties of acute trusts' lists and wards.
pub fn specialty_name(code: &str) -> Option<&'static str> {
    Some(match code.trim() {
        "100" => "General surgery",
        "101" => "Urology",
        "110" => "Trauma and orthopaedics",
        "120" => "Ear, nose and throat",
        "130" => "Ophthalmology",
        "140" => "Oral surgery",
        "160" => "Plastic surgery",
        "170" => "Cardiothoracic surgery",
        "192" => "Critical care medicine",
        "300" => "General internal medicine",
        "301" => "Gastroenterology",
        "314" => "Rehabilitation",
        "320" => "Cardiology",
        "328" => "Stroke medicine",
        "340" => "Respiratory medicine",
        "420" => "Paediatrics",
        "430" => "Geriatric medicine",
        "501" => "Obstetrics",
        "502" => "Gynaecology",
        _ => return None,
    })
}

/// One `theatre_events` row of a list, as the board reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEvent {
    pub case_id: String,
    /// Position of the case on the list (1-based).
    pub planned_order: i32,
    /// A milestone name, or `cancelled`.
    pub milestone: String,
    pub time: DateTime<Utc>,
    /// Minutes booked for the case, anaesthesia start to out of theatre.
    pub planned_duration_min: Option<i32>,
}

/// Where one case has got to.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    id: String,
    order: i32,
    cancelled: bool,
    /// The earliest time of each milestone the case has passed.
    passed: BTreeMap<Milestone, DateTime<Utc>>,
}

impl Case {
    fn furthest(&self) -> Option<(Milestone, DateTime<Utc>)> {
        self.passed.iter().next_back().map(|(m, t)| (*m, *t))
    }

    /// When the case entered the status its furthest milestone gives: closing since surgery
    /// ended, ready for cleaning since the patient left theatre (in recovery or not).
    fn status_since(&self) -> Option<DateTime<Utc>> {
        let (furthest, _) = self.furthest()?;
        self.passed
            .iter()
            .filter(|(m, _)| m.status() == furthest.status())
            .map(|(_, t)| *t)
            .min()
    }

    fn started(&self) -> bool {
        self.furthest()
            .is_some_and(|(m, _)| m >= Milestone::InAnaestheticRoom)
    }
}

/// A room's state on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Room {
    pub status: RoomStatus,
    /// Since when the room has been in `status` (none while idle).
    pub since: Option<DateTime<Utc>>,
    /// The case in the room, or the one it is being turned round after.
    pub current_case: Option<String>,
    /// The next case on the list not yet in the room (of those known so far).
    pub next_case: Option<String>,
    /// Cases out of theatre, of the list's cases the milestones have named so far (cancelled
    /// ones included): a case not yet sent for is not known to the board.
    pub done: usize,
    pub planned: usize,
    pub cancelled: usize,
    /// The furthest milestone of the case holding the room (its `theatre_events` name).
    pub milestone: Option<&'static str>,
}

/// The state of a room from its list's case events, in any order. A case is known only once
/// its first milestone arrives, so a room with nobody waiting is ready rather than finished
/// until `list_over` (the list's planned end has passed).
pub fn room(events: &[CaseEvent], list_over: bool) -> Room {
    let mut cases: BTreeMap<&str, Case> = BTreeMap::new();
    for e in events {
        let case = cases.entry(e.case_id.as_str()).or_insert_with(|| Case {
            id: e.case_id.clone(),
            order: e.planned_order,
            cancelled: false,
            passed: BTreeMap::new(),
        });
        if e.milestone == CANCELLED {
            case.cancelled = true;
        } else if let Some(m) = Milestone::parse(&e.milestone) {
            let t = case.passed.entry(m).or_insert(e.time);
            *t = (*t).min(e.time);
        }
    }
    let mut cases: Vec<Case> = cases.into_values().collect();
    cases.sort_by(|a, b| (a.order, &a.id).cmp(&(b.order, &b.id)));
    let active: Vec<&Case> = cases.iter().filter(|c| !c.cancelled).collect();
    let done = active
        .iter()
        .filter(|c| {
            c.furthest()
                .is_some_and(|(m, _)| m >= Milestone::OutOfTheatre)
        })
        .count();
    let waiting: Vec<&&Case> = active.iter().filter(|c| !c.started()).collect();
    // The latest case (by when it got there) whose furthest milestone is in `stage`.
    let latest_in = |stage: &dyn Fn(Milestone) -> bool| {
        active
            .iter()
            .filter_map(|c| c.furthest().map(|(m, t)| (c, m, t)))
            .filter(|(_, m, _)| stage(*m))
            .max_by_key(|(c, _, t)| (*t, c.order))
    };
    // Which case holds the theatre: one in surgery, else the last one out while the theatre
    // is not yet clean (the next patient may already be in the anaesthetic room: the theatre
    // still needs cleaning), else one in the anaesthetic room or being anaesthetised.
    let surgery = |m: Milestone| (Milestone::KnifeToSkin..=Milestone::AnaesthesiaEnd).contains(&m);
    let last_out = active
        .iter()
        .filter_map(|c| c.passed.get(&Milestone::OutOfTheatre).map(|t| (c, *t)))
        .max_by_key(|(c, t)| (*t, c.order))
        .map(|(c, _)| *c)
        .filter(|c| {
            c.furthest()
                .is_some_and(|(m, _)| m < Milestone::CleaningEnd)
        });
    let preparing =
        |m: Milestone| (Milestone::InAnaestheticRoom..=Milestone::AnaesthesiaStart).contains(&m);
    let holding = latest_in(&surgery)
        .map(|(c, _, _)| *c)
        .or(last_out)
        .or_else(|| latest_in(&preparing).map(|(c, _, _)| *c));
    // The next case: the first on the list not yet out of theatre and not holding it.
    let next_case = active
        .iter()
        .find(|c| {
            holding.is_none_or(|h| h.id != c.id)
                && c.furthest()
                    .is_none_or(|(m, _)| m < Milestone::OutOfTheatre)
        })
        .map(|c| c.id.clone());
    let base = Room {
        status: RoomStatus::Idle,
        since: None,
        current_case: None,
        next_case,
        done,
        planned: cases.len(),
        cancelled: cases.len() - active.len(),
        milestone: None,
    };
    if let Some(case) = holding
        && let Some((m, _)) = case.furthest()
    {
        return Room {
            status: m.status(),
            since: case.status_since(),
            current_case: Some(case.id.clone()),
            milestone: Some(m.name()),
            ..base
        };
    }
    if let Some(sent) = waiting
        .iter()
        .filter_map(|c| c.passed.get(&Milestone::SentFor))
        .min()
    {
        return Room {
            status: RoomStatus::SentFor,
            since: Some(*sent),
            ..base
        };
    }
    if let Some((case, _, t)) = latest_in(&|m| m == Milestone::CleaningEnd) {
        return Room {
            status: if waiting.is_empty() && list_over {
                RoomStatus::SessionFinished
            } else {
                RoomStatus::Ready
            },
            since: Some(t),
            current_case: Some(case.id.clone()),
            ..base
        };
    }
    if list_over && !cases.is_empty() && waiting.is_empty() {
        // Every case cancelled.
        return Room {
            status: RoomStatus::SessionFinished,
            ..base
        };
    }
    base
}

/// How a list is going against its planned times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pace {
    /// Touch time (anaesthesia start to out of theatre, the case in theatre counted to now)
    /// inside the list's planned times so far, over its planned minutes so far: the KPI
    /// catalogue's capped utilisation for the day once the list has ended. None before it
    /// starts.
    pub capped_utilisation: Option<f64>,
    /// The case in theatre: minutes since its anaesthesia start, and minutes booked.
    pub case_elapsed_min: Option<i64>,
    pub case_booked_min: Option<i64>,
    /// Minutes the list runs past its planned end: while a patient is in theatre after the
    /// end, or expected to (the case's anaesthesia start plus its booked minutes).
    pub overrun_min: Option<i64>,
    /// The overrun is under way (the planned end has passed), not only expected.
    pub overrunning: bool,
}

/// The pace of a list from its case events at `now`, with `room` its state then.
pub fn pace(
    events: &[CaseEvent],
    room: &Room,
    planned_start: DateTime<Utc>,
    planned_end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Pace {
    let cancelled: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| e.milestone == CANCELLED)
        .map(|e| e.case_id.as_str())
        .collect();
    let first = |case: &str, name: &str| {
        events
            .iter()
            .filter(|e| e.case_id == case && e.milestone == name)
            .map(|e| e.time)
            .min()
    };
    let cases: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.case_id.as_str()).collect();
    let window_end = now.min(planned_end);
    let planned_so_far = (window_end - planned_start).num_seconds();
    let touch: i64 = cases
        .iter()
        .filter(|c| !cancelled.contains(*c))
        .filter_map(|c| {
            let from = first(c, "anaesthesia_start")?;
            let to = first(c, "out_of_theatre").unwrap_or(now);
            let (from, to) = (from.max(planned_start), to.min(window_end));
            Some((to - from).num_seconds().max(0))
        })
        .sum();
    let in_theatre = matches!(
        room.status,
        RoomStatus::InTheatre | RoomStatus::KnifeToSkin | RoomStatus::Closing
    );
    let current = room.current_case.as_deref().filter(|_| in_theatre);
    let started = current.and_then(|c| first(c, "anaesthesia_start"));
    let booked = current.and_then(|c| {
        events
            .iter()
            .find(|e| e.case_id == c && e.planned_duration_min.is_some())
            .and_then(|e| e.planned_duration_min)
    });
    let expected_out = match (started, booked) {
        (Some(s), Some(b)) => Some((s + chrono::Duration::minutes(b.into())).max(now)),
        _ => current.map(|_| now),
    };
    let overrun_min = expected_out
        .filter(|out| *out > planned_end)
        .map(|out| (out - planned_end).num_minutes().max(1));
    Pace {
        capped_utilisation: (planned_so_far > 0).then(|| touch as f64 / planned_so_far as f64),
        case_elapsed_min: started.map(|s| (now - s).num_minutes().max(0)),
        case_booked_min: booked.map(i64::from),
        overrun_min,
        overrunning: overrun_min.is_some() && now > planned_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + minute * 60, 0).expect("a time")
    }

    fn event(case: &str, order: i32, milestone: &str, minute: i64) -> CaseEvent {
        CaseEvent {
            case_id: case.into(),
            planned_order: order,
            milestone: milestone.into(),
            time: at(minute),
            planned_duration_min: Some(60),
        }
    }

    /// A whole case, one milestone every ten minutes from `start`.
    fn whole_case(case: &str, order: i32, start: i64) -> Vec<CaseEvent> {
        MILESTONES
            .iter()
            .enumerate()
            .map(|(i, m)| event(case, order, m, start + 10 * i as i64))
            .collect()
    }

    #[test]
    fn each_milestone_in_order_moves_the_room_on() {
        let case = whole_case("C1", 1, 0);
        let expected = [
            RoomStatus::SentFor,
            RoomStatus::InAnaestheticRoom,
            RoomStatus::InTheatre,
            RoomStatus::KnifeToSkin,
            RoomStatus::Closing,
            RoomStatus::Closing,
            RoomStatus::ReadyForCleaning,
            RoomStatus::ReadyForCleaning,
            RoomStatus::Cleaning,
            RoomStatus::SessionFinished,
        ];
        assert_eq!(room(&[], true).status, RoomStatus::Idle);
        for (n, want) in expected.iter().enumerate() {
            let r = room(&case[..=n], true);
            assert_eq!(r.status, *want, "after {}", MILESTONES[n]);
            let since = match *want {
                // In recovery: ready for cleaning since the patient left theatre.
                RoomStatus::ReadyForCleaning => at(60),
                RoomStatus::Closing => at(40),
                _ => at(10 * n as i64),
            };
            assert_eq!(r.since, Some(since), "after {}", MILESTONES[n]);
        }
        let last = room(&case, true);
        assert_eq!((last.done, last.planned, last.cancelled), (1, 1, 0));
        // Before the list's end more cases may yet be sent for: the room is ready.
        assert_eq!(room(&case, false).status, RoomStatus::Ready);
        assert_eq!(last.next_case, None);
    }

    #[test]
    fn any_arrival_order_ends_in_the_same_state() {
        let mut events = whole_case("C1", 1, 0);
        events.extend(whole_case("C2", 2, 100).into_iter().take(5));
        let in_order = room(&events, true);
        assert_eq!(in_order.status, RoomStatus::Closing);
        assert_eq!(in_order.current_case.as_deref(), Some("C2"));
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(room(&reversed, true), in_order);
        for k in 1..events.len() {
            let mut rotated = events.clone();
            rotated.rotate_left(k);
            assert_eq!(room(&rotated, true), in_order, "rotated by {k}");
        }
        // A late or resent event changes nothing: the earliest time of a milestone stands.
        let mut late = events.clone();
        late.push(event("C2", 2, "sent_for", 150));
        late.push(event("C2", 2, "knife_to_skin", 149));
        assert_eq!(room(&late, true), in_order);
    }

    #[test]
    fn the_next_patient_sent_for_while_the_last_is_closing_shows_on_the_tile_not_the_room() {
        let mut events = whole_case("C1", 1, 0)[..5].to_vec();
        events.push(event("C2", 2, "sent_for", 45));
        let r = room(&events, true);
        assert_eq!(r.status, RoomStatus::Closing);
        assert_eq!(r.current_case.as_deref(), Some("C1"));
        assert_eq!(r.next_case.as_deref(), Some("C2"));
        // C1 out and cleaned, C2 still on its way: sent for, since C2 was sent for.
        let mut events = whole_case("C1", 1, 0);
        events.push(event("C2", 2, "sent_for", 45));
        let r = room(&events, true);
        assert_eq!((r.status, r.since), (RoomStatus::SentFor, Some(at(45))));
        // The rest of the list cancelled: the session is over once the room is clean.
        let mut events = whole_case("C1", 1, 0);
        events.push(event("C2", 2, "cancelled", 20));
        events.push(event("C3", 3, "cancelled", 20));
        let r = room(&events, true);
        assert_eq!(
            (r.status, r.since),
            (RoomStatus::SessionFinished, Some(at(90)))
        );
        assert_eq!((r.done, r.planned, r.cancelled), (1, 3, 2));
    }

    #[test]
    fn the_theatre_waits_for_cleaning_while_the_next_patient_is_anaesthetised_next_door() {
        let mut events = whole_case("C1", 1, 0)[..7].to_vec();
        events.extend(whole_case("C2", 2, 50).into_iter().take(3));
        let r = room(&events, true);
        assert_eq!(
            (r.status, r.since),
            (RoomStatus::ReadyForCleaning, Some(at(60)))
        );
        assert_eq!(r.current_case.as_deref(), Some("C1"));
        assert_eq!(r.next_case.as_deref(), Some("C2"));
        // Surgery under way means the theatre was cleaned, recorded or not.
        events.push(event("C2", 2, "knife_to_skin", 80));
        let r = room(&events, true);
        assert_eq!((r.status, r.since), (RoomStatus::KnifeToSkin, Some(at(80))));
        assert_eq!(r.current_case.as_deref(), Some("C2"));
        // And once C2 is out, the theatre waits for cleaning after C2, not after C1.
        events.push(event("C2", 2, "out_of_theatre", 150));
        let r = room(&events, true);
        assert_eq!(
            (r.status, r.since),
            (RoomStatus::ReadyForCleaning, Some(at(150)))
        );
        assert_eq!((r.current_case.as_deref(), r.done), (Some("C2"), 2));
    }

    #[test]
    fn a_cancelled_case_is_counted_and_skipped() {
        let mut events = whole_case("C1", 1, 0);
        events.push(event("C2", 2, "cancelled", 30));
        events.extend(whole_case("C3", 3, 100).into_iter().take(2));
        let r = room(&events, true);
        assert_eq!(r.status, RoomStatus::InAnaestheticRoom);
        assert_eq!(r.current_case.as_deref(), Some("C3"));
        assert_eq!((r.done, r.planned, r.cancelled), (1, 3, 1));
        // A case cancelled after it was sent for is not waited for.
        let mut events = whole_case("C1", 1, 0);
        events.push(event("C2", 2, "sent_for", 95));
        events.push(event("C2", 2, "cancelled", 100));
        let r = room(&events, true);
        assert_eq!(r.status, RoomStatus::SessionFinished);
        assert_eq!(r.next_case, None);
        // Only a cancellation known so far, early in the day: not started yet.
        let first_cancelled = [event("C1", 1, "cancelled", 0)];
        assert_eq!(room(&first_cancelled, false).status, RoomStatus::Idle);
        assert_eq!(
            room(&first_cancelled, true).status,
            RoomStatus::SessionFinished
        );
        // Between cases with more to come: ready.
        let mut events = whole_case("C1", 1, 0);
        events.push(event("C2", 2, "cancelled", 30));
        // An unknown milestone name is ignored, but the case is on the list.
        events.push(event("C3", 3, "not_a_milestone", 95));
        let r = room(&events, true);
        assert_eq!((r.status, r.since), (RoomStatus::Ready, Some(at(90))));
        assert_eq!(r.next_case.as_deref(), Some("C3"));
    }

    #[test]
    fn lists_are_named_by_specialty_and_an_unknown_code_is_not_guessed() {
        assert_eq!(specialty_name("110"), Some("Trauma and orthopaedics"));
        assert_eq!(specialty_name(" 502 "), Some("Gynaecology"));
        assert_eq!(specialty_name("999"), None);
    }

    #[test]
    fn every_status_reads_as_text_on_its_colour() {
        fn luminance(hex: &str) -> f64 {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        }
        for status in RoomStatus::ALL {
            let (background, text) = status.colours();
            let (a, b) = (luminance(background), luminance(text));
            let contrast = (a.max(b) + 0.05) / (a.min(b) + 0.05);
            assert!(contrast >= 4.5, "{}: {contrast:.2}", status.label());
        }
    }

    /// Capped utilisation so far counts touch time inside the planned times up to now (the
    /// case in theatre to now); a case expected to run past the list's end warns before the
    /// end and counts the overrun after it.
    #[test]
    fn pace_counts_touch_time_so_far_and_warns_of_an_overrun() {
        let (start, end) = (at(0), at(240));
        // Case 1: anaesthesia at 10, out at 70 (60 min); case 2: anaesthesia at 100, booked 60.
        let mut events = vec![
            event("c1", 1, "anaesthesia_start", 10),
            event("c1", 1, "out_of_theatre", 70),
            event("c1", 1, "cleaning_end", 85),
            event("c2", 2, "sent_for", 80),
            event("c2", 2, "anaesthesia_start", 100),
        ];
        let now = at(120);
        let state = room(&events, false);
        assert_eq!(state.status, RoomStatus::InTheatre);
        let p = pace(&events, &state, start, end, now);
        // (60 + 20) touch minutes of 120 planned so far.
        assert_eq!(p.capped_utilisation, Some(80.0 / 120.0));
        assert_eq!(
            (p.case_elapsed_min, p.case_booked_min),
            (Some(20), Some(60))
        );
        assert_eq!(p.overrun_min, None);

        // Case 3 starts at 200, booked 60: expected out at 260, 20 min past the end.
        events.push(event("c2", 2, "out_of_theatre", 160));
        events.push(event("c2", 2, "cleaning_end", 175));
        events.push(event("c3", 3, "anaesthesia_start", 200));
        let now = at(210);
        let state = room(&events, false);
        let p = pace(&events, &state, start, end, now);
        assert_eq!((p.overrun_min, p.overrunning), (Some(20), false));
        // At 250 it is overrunning; touch time counts only to the planned end.
        let now = at(250);
        let p = pace(&events, &room(&events, true), start, end, now);
        assert_eq!((p.overrun_min, p.overrunning), (Some(20), true));
        assert_eq!(p.capped_utilisation, Some((60.0 + 60.0 + 40.0) / 240.0));
        // Still in theatre at 275, past its booking: it runs on to now.
        let p = pace(&events, &room(&events, true), start, end, at(275));
        assert_eq!((p.overrun_min, p.overrunning), (Some(35), true));

        // Cancelled cases count no touch time; before the list starts there is no rate.
        let cancelled = vec![
            event("c9", 1, "anaesthesia_start", 10),
            event("c9", 1, "cancelled", 12),
        ];
        let p = pace(&cancelled, &room(&cancelled, false), start, end, at(60));
        assert_eq!(p.capped_utilisation, Some(0.0));
        let p = pace(&[], &room(&[], false), start, end, at(-5));
        assert_eq!(p.capped_utilisation, None);
    }
}
