//! `GET /theatres` and its twin `GET /api/theatres`: the theatre trackboard — one tile per
//! theatre with a list today, its room status from the milestones so far
//! ([`crate::trackboard`]), the case in it and the next, cases done of planned, cancellations
//! and the late start. `?site=` keeps one site's rooms.
//!
//! The board is read from the lake and the acknowledged rows on each request; it is not yet
//! pushed live to viewers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use bright_engine::query::QueryOutput;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{Frame, HtmlError, PageError, page, pages_for, visible};
use crate::AppState;
use crate::auth::Client;
use crate::kpis::{micros_column, text_column};
use crate::trackboard::{CaseEvent, Room, room, specialty_name};

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    pub site: Option<String>,
}

/// The board as its JSON twin answers it.
#[derive(Debug, Serialize)]
pub struct Board {
    /// The trust's day shown and when it was read.
    pub date: chrono::NaiveDate,
    pub as_of: DateTime<Utc>,
    pub sites: Vec<String>,
    pub site: Option<String>,
    pub tiles: Vec<Tile>,
}

/// One theatre's tile.
#[derive(Debug, Serialize)]
pub struct Tile {
    pub theatre: String,
    pub site: String,
    pub session_id: String,
    pub specialty: Option<String>,
    /// The specialty in words, when its code is one bright knows.
    pub specialty_name: Option<&'static str>,
    pub planned_start: DateTime<Utc>,
    pub planned_end: DateTime<Utc>,
    /// The whole list was cancelled before the day.
    pub list_cancelled: bool,
    #[serde(flatten)]
    pub room: Room,
    pub status_label: &'static str,
    pub minutes_in_status: Option<i64>,
    /// The procedure of the case holding the room, and of the next case, in plain words.
    pub procedure: Option<String>,
    pub next_procedure: Option<String>,
    /// Minutes after the list's planned start the first patient went into the anaesthetic
    /// room.
    pub late_start_min: Option<i64>,
    /// The latest milestone the board has for the list.
    pub last_event: Option<DateTime<Utc>>,
}

struct Session {
    id: String,
    site: String,
    theatre: String,
    specialty: Option<String>,
    planned_start: DateTime<Utc>,
    planned_end: DateTime<Utc>,
    cancelled: bool,
    events: Vec<CaseEvent>,
    procedures: BTreeMap<String, String>,
}

fn time(micros: Option<i64>) -> Option<DateTime<Utc>> {
    micros.and_then(DateTime::from_timestamp_micros)
}

/// Today's lists and their milestones up to `now`, per session.
fn sessions(output: &QueryOutput) -> Result<Vec<Session>, PageError> {
    let mut by_id: BTreeMap<String, Session> = BTreeMap::new();
    let failed = |e: bright_engine::query::QueryError| PageError::Failed(e.to_string());
    for batch in &output.batches {
        let text = |i| text_column(batch, i).map_err(failed);
        let micros = |i| micros_column(batch, i).map_err(failed);
        let (id, site, theatre, specialty) = (text(0)?, text(1)?, text(2)?, text(3)?);
        let (start, end, cancelled) = (micros(4)?, micros(5)?, text(6)?);
        let (case, order, milestone, at, procedure) =
            (text(7)?, text(8)?, text(9)?, micros(10)?, text(11)?);
        for row in 0..batch.num_rows() {
            let (Some(sid), Some(start), Some(end)) =
                (id[row].clone(), time(start[row]), time(end[row]))
            else {
                continue;
            };
            let session = by_id.entry(sid.clone()).or_insert_with(|| Session {
                id: sid,
                site: site[row].clone().unwrap_or_default(),
                theatre: theatre[row].clone().unwrap_or_default(),
                specialty: specialty[row].clone(),
                planned_start: start,
                planned_end: end,
                cancelled: cancelled[row].as_deref() == Some("true"),
                events: Vec::new(),
                procedures: BTreeMap::new(),
            });
            if let (Some(case), Some(milestone), Some(at)) =
                (case[row].clone(), milestone[row].clone(), time(at[row]))
            {
                if let Some(name) = procedure[row].clone() {
                    session.procedures.insert(case.clone(), name);
                }
                session.events.push(CaseEvent {
                    case_id: case,
                    planned_order: order[row]
                        .as_deref()
                        .and_then(|o| o.parse().ok())
                        .unwrap_or(i32::MAX),
                    milestone,
                    time: at,
                });
            }
        }
    }
    Ok(by_id.into_values().collect())
}

/// The list a theatre's tile shows: the one under way or most recently started, else the
/// next to start.
fn shown(lists: Vec<Session>, now: DateTime<Utc>) -> Option<Session> {
    let (started, later): (Vec<Session>, Vec<Session>) = lists
        .into_iter()
        .partition(|s| s.planned_start <= now || !s.events.is_empty());
    started
        .into_iter()
        .max_by_key(|s| s.planned_start)
        .or_else(|| later.into_iter().min_by_key(|s| s.planned_start))
}

fn tile(session: Session, now: DateTime<Utc>) -> Tile {
    let state = room(&session.events, now >= session.planned_end);
    // As the KPI catalogue's late starts count it (kpi.theatre_lists.first_in): the first
    // patient into the anaesthetic room.
    let first_in = session
        .events
        .iter()
        .filter(|e| e.milestone == "in_anaesthetic_room")
        .map(|e| e.time)
        .min();
    let name = |case: &Option<String>| {
        case.as_ref()
            .and_then(|c| session.procedures.get(c).cloned())
    };
    Tile {
        theatre: session.theatre.clone(),
        site: session.site.clone(),
        session_id: session.id.clone(),
        specialty: session.specialty.clone(),
        specialty_name: session.specialty.as_deref().and_then(specialty_name),
        planned_start: session.planned_start,
        planned_end: session.planned_end,
        list_cancelled: session.cancelled,
        status_label: state.status.label(),
        minutes_in_status: state.since.map(|s| (now - s).num_minutes().max(0)),
        procedure: name(&state.current_case),
        next_procedure: name(&state.next_case),
        late_start_min: first_in.map(|t| (t - session.planned_start).num_minutes()),
        last_event: session.events.iter().map(|e| e.time).max(),
        room: state,
    }
}

async fn board(state: &AppState, client: &Client, query: &BoardQuery) -> Result<Board, PageError> {
    let pages = pages_for(state, client)?;
    let service = &pages.kpis;
    let now = Utc::now();
    let date = service.today();
    // Milestones up to now: a feed that sends ahead must not move a room into the future.
    let sql = format!(
        "SELECT s.session_id, s.site, s.theatre, s.specialty, s.planned_start, s.planned_end, \
                CAST(s.cancelled AS VARCHAR), e.case_id, CAST(e.planned_order AS VARCHAR), \
                e.milestone, e.event_time, e.procedure_name \
         FROM theatre_sessions s \
         LEFT JOIN theatre_events e \
           ON e.session_id = s.session_id AND e.event_time <= to_timestamp_micros({now}) \
         WHERE s.session_date = DATE '{date}'",
        now = now.timestamp_micros(),
    );
    let output = service
        .engine()
        .sql(&sql)
        .await
        .map_err(|e| PageError::Failed(e.to_string()))?;
    let mut by_theatre: BTreeMap<(String, String), Vec<Session>> = BTreeMap::new();
    for s in sessions(&output)? {
        by_theatre
            .entry((s.site.clone(), s.theatre.clone()))
            .or_default()
            .push(s);
    }
    let mut sites: Vec<String> = by_theatre.keys().map(|(site, _)| site.clone()).collect();
    sites.dedup();
    let site = query.site.clone().filter(|s| !s.trim().is_empty());
    let tiles = by_theatre
        .into_iter()
        .filter(|((s, _), _)| site.as_ref().is_none_or(|chosen| chosen == s))
        .filter_map(|(_, lists)| shown(lists, now))
        .map(|s| tile(s, now))
        .collect();
    Ok(Board {
        date,
        as_of: now,
        sites,
        site,
        tiles,
    })
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<BoardQuery>,
) -> Result<Json<Board>, PageError> {
    Ok(Json(board(&state, &client, &query).await?))
}

fn hhmm(t: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    t.with_timezone(&zone).format("%H:%M").to_string()
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<BoardQuery>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let board = board(&state, &client, &query).await?;
    let zone = pages.kpis.time_zone();
    let main = html! {
        h1 { "Theatres now" }
        p class="lead" {
            "Each theatre's list today, " (board.date.format("%-d %B %Y")) ", as its milestones say."
        }
        form class="filters" method="get" {
            label {
                "Site"
                select name="site" {
                    option value="" { "All" }
                    @for s in &board.sites {
                        @if board.site.as_deref() == Some(s.as_str()) {
                            option value=(s) selected { (s) }
                        } @else {
                            option value=(s) { (s) }
                        }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        @if board.tiles.is_empty() {
            p { "No theatre has a list today." }
        }
        ul class="rooms" {
            @for t in &board.tiles {
                @let (background, text) = t.room.status.colours();
                li class="room" style=(format!("background:{background};color:{text}")) {
                    h2 { (t.theatre) " " span class="site" { (t.site) } }
                    p class="session" {
                        (t.specialty_name.or(t.specialty.as_deref()).unwrap_or("–")) " · "
                        (hhmm(t.planned_start, zone)) "–" (hhmm(t.planned_end, zone))
                    }
                    p class="status" {
                        @if t.list_cancelled {
                            strong { "List cancelled" }
                        } @else {
                            strong { (t.status_label) }
                            @match t.minutes_in_status {
                                Some(0) => " just now",
                                Some(m) => { " for " (m) " min" }
                                None => "",
                            }
                        }
                    }
                    @if let Some(p) = &t.procedure { p { (p) } }
                    @if let Some(p) = &t.next_procedure { p class="next" { "Next: " (p) } }
                    p class="counts" {
                        // Cases are known once their first milestone arrives: count those.
                        (t.room.done) " done of " (t.room.planned) " cases so far"
                        @if t.room.cancelled > 0 { " · " (t.room.cancelled) " cancelled" }
                        @if let Some(late) = t.late_start_min { @if late > 0 { " · started " (late) " min late" } }
                    }
                }
            }
        }
    };
    Ok(page(
        &Frame {
            title: "Theatres now",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/theatres",
            as_of: format!(
                "Milestones as of {}",
                board.as_of.with_timezone(&zone).format("%-d %b %Y %H:%M")
            ),
        },
        main,
    ))
}
