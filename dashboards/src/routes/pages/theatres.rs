//! `GET /theatres` and its twin `GET /api/theatres`: the theatre trackboard — one tile per
//! theatre with a list today, its room status from the milestones so far
//! ([`crate::trackboard`]), the case in it and the next, cases done of planned, cancellations
//! and the late start. `?site=` keeps one site's rooms.
//!
//! The board is read from the lake and the acknowledged rows on each request
//! ([`reads::theatre_lists`]); it is not yet pushed live to viewers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use bright_engine::reads::{self, TheatreList};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{Frame, HtmlError, PageError, page, pages_for, visible};
use crate::AppState;
use crate::auth::Client;
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

/// The list a theatre's tile shows: the one under way or most recently started, else the
/// next to start.
fn shown(lists: Vec<TheatreList>, now: DateTime<Utc>) -> Option<TheatreList> {
    let (started, later): (Vec<TheatreList>, Vec<TheatreList>) = lists
        .into_iter()
        .partition(|s| s.planned_start <= now || !s.milestones.is_empty());
    started
        .into_iter()
        .max_by_key(|s| s.planned_start)
        .or_else(|| later.into_iter().min_by_key(|s| s.planned_start))
}

fn tile(list: TheatreList, now: DateTime<Utc>) -> Tile {
    let events: Vec<CaseEvent> = list
        .milestones
        .iter()
        .map(|m| CaseEvent {
            case_id: m.case_id.clone(),
            planned_order: m.planned_order,
            milestone: m.milestone.clone(),
            time: m.time,
        })
        .collect();
    let state = room(&events, now >= list.planned_end);
    // As the KPI catalogue's late starts count it (kpi.theatre_lists.first_in): the first
    // patient into the anaesthetic room.
    let first_in = list
        .milestones
        .iter()
        .filter(|m| m.milestone == "in_anaesthetic_room")
        .map(|m| m.time)
        .min();
    let name = |case: &Option<String>| {
        let case = case.as_ref()?;
        list.milestones
            .iter()
            .find(|m| &m.case_id == case)
            .and_then(|m| m.procedure_name.clone())
    };
    Tile {
        specialty_name: list.specialty.as_deref().and_then(specialty_name),
        status_label: state.status.label(),
        minutes_in_status: state.since.map(|s| (now - s).num_minutes().max(0)),
        procedure: name(&state.current_case),
        next_procedure: name(&state.next_case),
        late_start_min: first_in.map(|t| (t - list.planned_start).num_minutes()),
        last_event: list.milestones.iter().map(|m| m.time).max(),
        room: state,
        theatre: list.theatre,
        site: list.site,
        session_id: list.session_id,
        specialty: list.specialty,
        planned_start: list.planned_start,
        planned_end: list.planned_end,
        list_cancelled: list.cancelled,
    }
}

async fn board(state: &AppState, client: &Client, query: &BoardQuery) -> Result<Board, PageError> {
    let pages = pages_for(state, client)?;
    let service = &pages.kpis;
    let now = Utc::now();
    let date = service.today();
    let lists = reads::theatre_lists(service.engine(), date, now)
        .await
        .map_err(|e| PageError::Failed(e.to_string()))?;
    let mut by_theatre: BTreeMap<(String, String), Vec<TheatreList>> = BTreeMap::new();
    for list in lists {
        by_theatre
            .entry((list.site.clone(), list.theatre.clone()))
            .or_default()
            .push(list);
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
