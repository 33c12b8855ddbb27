//! `GET /theatres` and its twin `GET /api/theatres`: the theatre trackboard — one tile per
//! theatre with a list today, its room status from the milestones so far
//! ([`crate::trackboard`]), the case in it and the next, cases done of planned, cancellations
//! and the late start. `?site=` keeps one site's rooms.
//!
//! The board is computed by one task ([`Live`]): when theatre rows arrive (the engine's change
//! signal: acknowledged milestones are on the board before their lake commit) and every
//! [`TICK`] for the minutes shown, from the lists read once per change
//! ([`reads::theatre_lists`]). Every viewer gets the same frames over Server-Sent Events
//! (`GET /theatres/stream`, [`crate::live`]); the page and its JSON twin read the latest
//! frame, so a room full of wall screens costs one computation, not one per screen.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bright_engine::ingest_api::FeedStatus;
use bright_engine::reads::{self, TheatreList};
use bright_engine::schema::Table;
use bright_engine::schema::theatre_events::MILESTONES;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use super::{Frame, HtmlError, PageError, Pages, page, pages_for, visible};
use crate::AppState;
use crate::auth::Client;
use crate::live::{FOLLOW_SCRIPT, Hub, JSON_VIEW, LiveBoard, stream};
use crate::trackboard::{CaseEvent, Pace, Room, pace, room, specialty_name};

/// How often the board is recomputed without new rows, for the minutes it shows.
pub const TICK: Duration = Duration::from_secs(15);
/// The feed whose silence makes the tiles of lists under way stale.
const FEED: &str = "theatre_events";

#[derive(Debug, Default, Deserialize)]
pub struct BoardQuery {
    #[serde(default)]
    pub site: Option<String>,
}

/// The board as its JSON twin answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// The trust's day shown and when it was computed.
    pub date: NaiveDate,
    pub as_of: DateTime<Utc>,
    /// When the theatre feed last delivered, and whether it has been silent too long (none
    /// when this process does not run ingest).
    pub feed: Option<FeedHealth>,
    pub sites: Vec<String>,
    pub site: Option<String>,
    pub tiles: Vec<Tile>,
}

/// The theatre feed's health as the board shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FeedHealth {
    pub last_delivery: Option<String>,
    pub minutes_silent: u64,
    pub stale: bool,
}

impl From<&FeedStatus> for FeedHealth {
    fn from(f: &FeedStatus) -> Self {
        FeedHealth {
            last_delivery: f.last_delivery.clone(),
            minutes_silent: f.seconds_silent / 60,
            stale: f.stale,
        }
    }
}

/// One theatre's tile.
#[derive(Debug, Clone, Serialize)]
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
    #[serde(flatten)]
    pub pace: Pace,
    pub status_label: &'static str,
    pub minutes_in_status: Option<i64>,
    /// The procedure of the case holding the room, and of the next case, in plain words.
    pub procedure: Option<String>,
    pub next_procedure: Option<String>,
    /// Minutes after the list's planned start the first patient went into the anaesthetic
    /// room.
    pub late_start_min: Option<i64>,
    /// The latest milestone the board has for the list, and its age in minutes.
    pub last_event: Option<DateTime<Utc>>,
    pub data_age_min: Option<i64>,
    /// The list is under way while the theatre feed is silent: the status may be out of date.
    pub stale: bool,
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

fn tile(list: TheatreList, now: DateTime<Utc>, feed_stale: bool) -> Tile {
    let events: Vec<CaseEvent> = list
        .milestones
        .iter()
        .map(|m| CaseEvent {
            case_id: m.case_id.clone(),
            planned_order: m.planned_order,
            milestone: m.milestone.clone(),
            time: m.time,
            planned_duration_min: m.planned_duration_min,
        })
        .collect();
    let state = room(&events, now >= list.planned_end);
    let pace = pace(&events, &state, list.planned_start, list.planned_end, now);
    let last_event = list.milestones.iter().map(|m| m.time).max();
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
        last_event,
        data_age_min: last_event.map(|t| (now - t).num_minutes().max(0)),
        stale: feed_stale && list.planned_start <= now && now < list.planned_end && !list.cancelled,
        room: state,
        pace,
        theatre: list.theatre,
        site: list.site,
        session_id: list.session_id,
        specialty: list.specialty,
        planned_start: list.planned_start,
        planned_end: list.planned_end,
        list_cancelled: list.cancelled,
    }
}

/// The whole board (every site) from the day's lists at `now`.
fn assemble(
    lists: &[TheatreList],
    date: NaiveDate,
    now: DateTime<Utc>,
    feed: Option<FeedHealth>,
) -> Board {
    let mut by_theatre: BTreeMap<(String, String), Vec<TheatreList>> = BTreeMap::new();
    for list in lists {
        by_theatre
            .entry((list.site.clone(), list.theatre.clone()))
            .or_default()
            .push(list.clone());
    }
    let mut sites: Vec<String> = by_theatre.keys().map(|(site, _)| site.clone()).collect();
    sites.dedup();
    let feed_stale = feed.as_ref().is_some_and(|f| f.stale);
    let tiles = by_theatre
        .into_values()
        .filter_map(|lists| shown(lists, now))
        .map(|s| tile(s, now, feed_stale))
        .collect();
    Board {
        date,
        as_of: now,
        feed,
        sites,
        site: None,
        tiles,
    }
}

impl Board {
    /// The board of one site (`None` or blank: every site).
    fn of_site(&self, site: Option<&str>) -> Board {
        let site = site.map(str::trim).filter(|s| !s.is_empty());
        let mut board = self.clone();
        if let Some(site) = site {
            board.site = Some(site.to_string());
            board.tiles.retain(|t| t.site == site);
        }
        board
    }
}

/// The trackboard's live computation: one per service.
pub type Live = LiveBoard<Board>;

/// Starts the trackboard's task unless it runs already (see [`LiveBoard::start`]).
pub fn start(live: &Live, state: &AppState, stopped: Option<tokio::sync::watch::Receiver<bool>>) {
    live.start(state, stopped, run);
}

/// The board's loop: recompute on new theatre rows or a tick; read the lists again only when
/// rows changed or the day turned.
async fn run(state: AppState, hub: Arc<Hub<Board>>) {
    let Some(pages) = state.pages().cloned() else {
        return;
    };
    let engine = pages.kpis.engine().clone();
    let (Ok(mut events), Ok(mut sessions)) = (
        engine.changes(Table::TheatreEvents),
        engine.changes(Table::TheatreSessions),
    ) else {
        tracing::error!("The trackboard cannot follow the theatre tables.");
        return;
    };
    let mut lists: Option<(NaiveDate, Vec<TheatreList>)> = None;
    let mut told = std::collections::HashSet::new();
    let mut changed = true;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now = pages.kpis.now();
        let today = pages.kpis.today();
        if changed || lists.as_ref().is_none_or(|(day, _)| *day != today) {
            // Marked seen before reading, so rows arriving during the read wake the next one.
            events.mark_unchanged();
            sessions.mark_unchanged();
            match reads::theatre_lists(&engine, today, now).await {
                Ok(read) => {
                    if lists.as_ref().is_some_and(|(day, _)| *day != today) {
                        told.clear();
                    }
                    lists = Some((today, read));
                    changed = false;
                }
                // The board keeps its last lists (their age shows) and tries on the next tick.
                Err(e) => tracing::error!(error = %e, "Reading the theatre lists failed."),
            }
        }
        if let Some((day, lists)) = &lists {
            let feed = state
                .ingest()
                .and_then(|api| api.feeds().into_iter().find(|f| f.feed == FEED))
                .map(|f| FeedHealth::from(&f));
            let board = assemble(lists, *day, now, feed);
            if let Some(alerts) = state.alerts() {
                tell_rooms(alerts, &board, pages.kpis.time_zone(), &mut told);
            }
            let (views, parts) = views(&board, pages.kpis.time_zone());
            hub.publish_parts(board, views, parts);
        }
        tokio::select! {
            r = events.changed() => { changed = true; if r.is_err() { return; } }
            r = sessions.changed() => { changed = true; if r.is_err() { return; } }
            _ = tick.tick() => {}
        }
    }
}

/// The kind of alert that tells the cleaning team a theatre is ready for them.
pub const CLEANING: &str = "room_ready_for_cleaning";
/// The kind of alert of a list running past its planned end with a patient in theatre.
pub const OVERRUN: &str = "theatre_overrun";

/// Raises an alert for each list that runs past its planned end with a patient in theatre
/// (once per list), and for each room that has become ready for cleaning (once per case):
/// the store's dedup keys hold across restarts; `told` spares it the question on every tick.
fn tell_rooms(
    alerts: &crate::alerts::Alerts,
    board: &Board,
    zone: chrono_tz::Tz,
    told: &mut std::collections::HashSet<String>,
) {
    use crate::alerts::{NewAlert, Severity};
    use crate::trackboard::RoomStatus;
    let link = |t: &Tile| {
        let site: String = url::form_urlencoded::byte_serialize(t.site.as_bytes()).collect();
        Some(format!("/theatres?site={site}"))
    };
    let mut due = Vec::new();
    for t in board.tiles.iter().filter(|t| t.pace.overrunning) {
        due.push(NewAlert {
            kind: OVERRUN,
            severity: Severity::Warning,
            key: format!("overrun:{}", t.session_id),
            cooldown: Duration::from_secs(24 * 3600),
            title: format!("{} ({}) is overrunning", t.theatre, t.site),
            detail: format!(
                "The list was planned to end at {}; {} is still in theatre.",
                hhmm(t.planned_end, zone),
                t.procedure.as_deref().unwrap_or("a case")
            ),
            link: link(t),
        });
    }
    // The cleaning team is told when the case holding the room reaches the configured
    // milestone (out of theatre by default; surgery or anaesthesia end for notice).
    let notice = alerts.rules().cleaning_notice_at.milestone();
    let reached = |m: &str| {
        let at = |name: &str| MILESTONES.iter().position(|x| *x == name);
        at(m) >= at(notice) && at(m) < at("cleaning_start")
    };
    for t in &board.tiles {
        let (Some(case), Some(since), Some(m)) =
            (&t.room.current_case, t.room.since, t.room.milestone)
        else {
            continue;
        };
        if !reached(m) {
            continue;
        }
        let ready = t.room.status == RoomStatus::ReadyForCleaning;
        due.push(NewAlert {
            kind: CLEANING,
            severity: Severity::Info,
            key: format!("cleaning:{}:{case}", t.session_id),
            cooldown: Duration::from_secs(24 * 3600),
            title: if ready {
                format!("{} ({}) is ready for cleaning", t.theatre, t.site)
            } else {
                format!("{} ({}) will be ready for cleaning soon", t.theatre, t.site)
            },
            detail: format!(
                "{}: {} at {}.{}",
                t.procedure.as_deref().unwrap_or("The case"),
                if ready {
                    "the patient left theatre"
                } else {
                    "surgery has ended; the patient is still in theatre"
                },
                hhmm(since, zone),
                t.next_procedure
                    .as_ref()
                    .map(|n| format!(" Next: {n}."))
                    .unwrap_or_default()
            ),
            link: link(t),
        });
    }
    due.retain(|a| !told.contains(&a.key));
    for alert in due {
        match alerts.raise(&alert, Utc::now()) {
            Ok(_) => {
                told.insert(alert.key);
            }
            // Not marked told: the next computation tries again.
            Err(e) => tracing::error!(error = %e, kind = alert.kind, "Raising an alert failed."),
        }
    }
}

/// Views by key (`""`: every site), whole and as their pieces.
type Views = (BTreeMap<String, String>, crate::live::Pieces);

/// The board rendered for every view: all sites (`""`) and each site, whole and as its
/// pieces, and its JSON twin.
fn views(board: &Board, zone: chrono_tz::Tz) -> Views {
    let mut views = BTreeMap::new();
    let mut pieces = BTreeMap::new();
    for site in std::iter::once(None).chain(board.sites.iter().map(|s| Some(s.as_str()))) {
        let shown = board.of_site(site);
        let key = site.unwrap_or("").to_string();
        // The JSON twin too, once per frame rather than per request.
        if let Ok(json) = serde_json::to_string(&shown) {
            views.insert(format!("{JSON_VIEW}{key}"), json);
        }
        let parts = parts(&shown, zone);
        views.insert(key.clone(), assembled(&shown, &parts).into_string());
        pieces.insert(key, parts);
    }
    (views, pieces)
}

/// The site a request shows: a kiosk link's own, else the one asked for.
fn site_shown(client: &Client, query: &BoardQuery) -> Option<String> {
    match &client.kiosk {
        Some(kiosk) => kiosk.site.clone(),
        None => query.site.clone(),
    }
}

/// The trackboard in the audit log: it shows each patient's operation as it happens (the
/// procedure, the times), so who looked at it is recorded, as for analysts' SQL.
const TRACKBOARD: &str = "/theatres (the trackboard's cases)";

fn live(state: &AppState) -> Result<&Live, PageError> {
    state
        .pages()
        .map(|p: &Pages| p.theatres.as_ref())
        .ok_or(PageError::Unavailable)
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<BoardQuery>,
) -> Result<axum::response::Response, PageError> {
    pages_for(&state, &client)?;
    state.audit_view(&client, TRACKBOARD);
    let frame = live(&state)?
        .latest(&state, run)
        .await
        .map_err(PageError::Failed)?;
    let site = site_shown(&client, &query);
    let view = site.as_deref().map(str::trim).unwrap_or("");
    Ok(match frame.json(view) {
        Some(written) => written,
        // A site the board does not have: its (empty) board, made now.
        None => Json(frame.data.of_site(site.as_deref())).into_response(),
    })
}

/// `GET /theatres/stream?site=`: the board's frames for one site (or all) as Server-Sent
/// Events; `Last-Event-ID` resumes after a reconnect.
pub async fn events(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<BoardQuery>,
    headers: HeaderMap,
) -> Result<axum::response::Response, PageError> {
    pages_for(&state, &client)?;
    state.audit_view(&client, TRACKBOARD);
    let live = live(&state)?;
    start(live, &state, None);
    let site = site_shown(&client, &query)
        .unwrap_or_default()
        .trim()
        .to_string();
    let absent = html! { p { "No theatre at " (site) " has a list today." } }.into_string();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let still_allowed = still_allowed(&state, &client, &headers);
    Ok(stream(live.hub.clone(), site, absent, last, still_allowed).into_response())
}

/// Whether a stream may go on (checked at each ping): a kiosk screen's ends once its link is
/// revoked, a person's once their session ends (signed out, idle, past its limit, or the
/// account removed); the reconnection is then refused, so the board dims. A bearer token
/// stays valid while the service runs with it.
pub(crate) fn still_allowed(
    state: &AppState,
    client: &Client,
    headers: &HeaderMap,
) -> Box<dyn Fn() -> bool + Send> {
    let Some(users) = state.users().cloned() else {
        return Box::new(|| true);
    };
    if client.kiosk.is_some() {
        let token = crate::routes::kiosk::kiosk_cookie(headers)
            .unwrap_or_default()
            .to_string();
        return Box::new(move || matches!(users.kiosk(&token), Ok(Some(_))));
    }
    match crate::routes::login::session_cookie(headers) {
        Some(token) if client.role.is_some() => {
            let token = token.to_string();
            let limits = state.session_limits();
            Box::new(move || {
                matches!(
                    users.session_open(&token, Utc::now().timestamp(), limits),
                    Ok(true)
                )
            })
        }
        _ => Box::new(|| true),
    }
}

fn hhmm(t: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    t.with_timezone(&zone).format("%H:%M").to_string()
}

/// The board's live part: its freshness line, a note when no theatre has a list, and the
/// tiles — each its own piece with its own id, so a frame can carry only the pieces that
/// changed ([`Hub::publish_parts`]).
fn parts(board: &Board, zone: chrono_tz::Tz) -> Vec<(String, String)> {
    let fresh = html! {
        p id="fresh" class="freshness" {
            "Live · computed " (board.as_of.with_timezone(&zone).format("%H:%M:%S"))
            @if let Some(feed) = &board.feed {
                @match (&feed.last_delivery, feed.stale) {
                    (_, true) => {
                        " · " strong class="warning" {
                            "the theatre feed has been silent for " (feed.minutes_silent) " min"
                        }
                    }
                    (Some(_), false) => { " · theatre feed last heard " (ago(feed.minutes_silent)) }
                    (None, false) => " · nothing from the theatre feed since bright started",
                }
            }
        }
    };
    let mut parts = vec![("fresh".to_string(), fresh.into_string())];
    if board.tiles.is_empty() {
        parts.push((
            "no-lists".to_string(),
            html! { p id="no-lists" { "No theatre has a list today." } }.into_string(),
        ));
    }
    for t in &board.tiles {
        let tile = html! {
            @let (background, text) = t.room.status.colours();
            li id=(room_id(t)) class={"room" @if t.stale { " stale" } @if t.pace.overrun_min.is_some() { " overrun" }} style=(format!("background:{background};color:{text}")) {
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
                @if let Some(p) = &t.procedure {
                    p {
                        (p)
                        @if let (Some(elapsed), Some(booked)) = (t.pace.case_elapsed_min, t.pace.case_booked_min) {
                            " · " (elapsed) " of " (booked) " min booked"
                        }
                    }
                }
                @if let Some(over) = t.pace.overrun_min {
                    p class="warning" {
                        strong {
                            @if t.pace.overrunning { "Overrunning: " (over) " min past the list's end" }
                            @else { "Expected to overrun by " (over) " min" }
                        }
                    }
                }
                @if let Some(p) = &t.next_procedure { p class="next" { "Next: " (p) } }
                p class="counts" {
                    // Cases are known once their first milestone arrives: count those.
                    (t.room.done) " done of " (t.room.planned) " cases so far"
                    @if t.room.cancelled > 0 { " · " (t.room.cancelled) " cancelled" }
                    @if let Some(late) = t.late_start_min { @if late > 0 { " · started " (late) " min late" } }
                }
                @if let Some(u) = t.pace.capped_utilisation {
                    p class="counts" { "Utilisation so far " (format!("{:.0}%", u * 100.0)) " (capped)" }
                }
                p class="age" {
                    @match (t.last_event, t.data_age_min) {
                        (Some(at), Some(age)) => { "Last milestone " (hhmm(at, zone)) ", " (ago(age.unsigned_abs())) }
                        _ => "No milestones yet",
                    }
                }
                @if t.stale {
                    p class="age" { strong { "May be out of date: the theatre feed is silent" } }
                }
            }
        };
        parts.push((room_id(t), tile.into_string()));
    }
    parts
}

/// A tile's element id: its site and theatre, with anything but letters and digits written
/// as its code, so two rooms never share one.
fn room_id(t: &Tile) -> String {
    let mut id = String::from("room");
    for c in format!("{}/{}", t.site, t.theatre).chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else {
            id.push_str(&format!("-{:x}-", u32::from(c)));
        }
    }
    id
}

/// The pieces in their places: the tiles in the grid sized for their number.
fn assembled(board: &Board, parts: &[(String, String)]) -> Markup {
    let (cols, rows) = grid(board.tiles.len());
    let rooms = parts.len() - board.tiles.len();
    html! {
        @for (_, piece) in &parts[..rooms] { (PreEscaped(piece)) }
        ul class="rooms" style=(format!("--cols:{cols};--rows:{rows}")) {
            @for (_, piece) in &parts[rooms..] { (PreEscaped(piece)) }
        }
    }
}

/// The board's live part whole.
fn tiles(board: &Board, zone: chrono_tz::Tz) -> Markup {
    assembled(board, &parts(board, zone))
}

/// Columns and rows that lay `n` tiles out on a 16:9 wall screen with tiles about 4:3: the
/// kiosk layout sizes its type from them so every tile fits without scrolling.
fn grid(n: usize) -> (usize, usize) {
    let n = n.max(1);
    let cols = ((n as f64 * 4.0 / 3.0).sqrt().ceil() as usize).clamp(1, n);
    (cols, n.div_ceil(cols))
}

fn ago(minutes: u64) -> String {
    match minutes {
        0 => "just now".to_string(),
        1 => "1 min ago".to_string(),
        m => format!("{m} min ago"),
    }
}

/// The board on a wall screen: no navigation, dark, large type sized to fit every tile on the
/// screen (1920×1080 to 3840×2160) without scrolling.
fn kiosk_page(board: &Board, live: Markup, stream_url: &str) -> Markup {
    let heading = match &board.site {
        Some(site) => format!("Theatres now · {site}"),
        None => "Theatres now".to_string(),
    };
    html! {
        (maud::DOCTYPE)
        html lang="en-GB" {
            (super::head(&heading, &format!("{}{}", super::CSS, KIOSK_CSS)))
            body class="kiosk" {
                header class="kiosk-top" {
                    h1 { (heading) }
                    span { (board.date.format("%A %-d %B %Y")) }
                    p id="link" class="link" role="status" {
                        "Reconnecting… the board may be out of date."
                    }
                }
                main id="board" data-stream=(stream_url) aria-live="polite" {
                    (live)
                }
                script { (PreEscaped(FOLLOW_SCRIPT)) }
            }
        }
    }
}

/// The kiosk layout, after the pages' style sheet.
const KIOSK_CSS: &str = "body.kiosk{margin:0;height:100vh;display:flex;flex-direction:column;\
background:#212B32;color:#fff;max-width:none}\
.kiosk-top{display:flex;align-items:baseline;gap:2vw;padding:.6vh 1vw;font-size:2.2vh}\
.kiosk-top h1{margin:0;font-size:3.4vh}.kiosk .link{margin:0 0 0 auto}\
.kiosk #board{flex:1 1 auto;min-height:0;display:flex;flex-direction:column;padding:0 1vw 1vh;\
max-width:none;margin:0;width:100%}.kiosk .room h2{margin:0}\
.kiosk .freshness{color:#D8DDE0;font-size:1.8vh;margin:0 0 .6vh}\
.kiosk .rooms{flex:1 1 auto;min-height:0;margin:0;display:grid;gap:1vh;\
grid-template-columns:repeat(var(--cols),minmax(0,1fr));grid-template-rows:repeat(var(--rows),minmax(0,1fr));\
font-size:min(calc(84vh / (var(--rows) * 15)),calc(96vw / (var(--cols) * 20)))}\
.kiosk .room{padding:.4em .7em}.kiosk .room h2{font-size:1.5em}\
.kiosk .room .status{font-size:1.3em}.kiosk .room .site{font-size:.7em}.kiosk .room .age{font-size:.85em}";

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<BoardQuery>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    state.audit_view(&client, TRACKBOARD);
    let frame = live(&state)?
        .latest(&state, run)
        .await
        .map_err(PageError::Failed)?;
    let board = frame.data.of_site(site_shown(&client, &query).as_deref());
    let zone = pages.kpis.time_zone();
    let stream_url = match &board.site {
        Some(site) => format!(
            "/theatres/stream?site={}",
            url::form_urlencoded::byte_serialize(site.as_bytes()).collect::<String>()
        ),
        None => "/theatres/stream".to_string(),
    };
    // The board as the frame already rendered it for this view (one rendering per frame, not
    // per request); a site the frame has no view of renders here.
    let key = board.site.clone().unwrap_or_default();
    let live = match frame.views.get(&key) {
        Some(markup) => PreEscaped(markup.clone()),
        None => tiles(&board, zone),
    };
    if client.kiosk.is_some() {
        return Ok(kiosk_page(&board, live, &stream_url));
    }
    let main = html! {
        h1 { "Theatres now" }
        p class="lead" {
            "Each theatre's list today, " (board.date.format("%-d %B %Y")) ", as its milestones say. "
            "The board updates itself as milestones arrive."
        }
        p id="link" class="link" role="status" {
            "Reconnecting… the board below may be out of date."
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
        div id="board" data-stream=(stream_url) aria-live="polite" {
            (live)
        }
        script { (PreEscaped(FOLLOW_SCRIPT)) }
    };
    Ok(page(
        &Frame {
            title: "Theatres now",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/theatres",
            // The board below carries its own, live, computation time: a time fixed when the
            // page loaded would go stale in the header while the board moves on.
            as_of: "Live board".to_string(),
        },
        main,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bright_engine::reads::Milestone;
    use chrono::Duration as Minutes;

    fn list(id: &str, theatre: &str, start: DateTime<Utc>, hours: i64) -> TheatreList {
        TheatreList {
            session_id: id.into(),
            site: "Main site".into(),
            theatre: theatre.into(),
            specialty: Some("101".into()),
            planned_start: start,
            planned_end: start + Minutes::hours(hours),
            cancelled: false,
            milestones: vec![Milestone {
                case_id: format!("{id}-1"),
                planned_order: 1,
                milestone: "knife_to_skin".into(),
                time: start + Minutes::minutes(40),
                procedure_name: Some("Cystoscopy".into()),
                planned_duration_min: Some(45),
            }],
        }
    }

    /// When the theatre feed goes silent, the tiles of lists under way say their status may
    /// be out of date (text and a dashed red outline); a list already over is not stale, and
    /// every tile still shows its data age.
    #[test]
    fn a_silent_feed_makes_the_tiles_of_lists_under_way_stale() {
        let now = Utc::now();
        let lists = [
            list("S1", "Theatre 1", now - Minutes::hours(2), 4),
            list("S2", "Theatre 2", now - Minutes::hours(6), 4),
        ];
        let silent = FeedHealth {
            last_delivery: Some((now - Minutes::minutes(50)).to_rfc3339()),
            minutes_silent: 50,
            stale: true,
        };
        let board = assemble(&lists, now.date_naive(), now, Some(silent));
        let stale: Vec<bool> = board.tiles.iter().map(|t| t.stale).collect();
        assert_eq!(stale, [true, false]);
        assert_eq!(board.tiles[0].data_age_min, Some(80));
        let markup = tiles(&board, chrono_tz::Europe::London).into_string();
        assert!(markup.contains("silent for 50 min"), "{markup}");
        assert_eq!(markup.matches("May be out of date").count(), 1, "{markup}");
        assert!(markup.contains(r#"class="room stale""#), "{markup}");
        assert!(markup.contains("80 min ago"), "{markup}");

        let heard = FeedHealth {
            last_delivery: Some(now.to_rfc3339()),
            minutes_silent: 0,
            stale: false,
        };
        let board = assemble(&lists, now.date_naive(), now, Some(heard));
        assert!(board.tiles.iter().all(|t| !t.stale));
        let markup = tiles(&board, chrono_tz::Europe::London).into_string();
        assert!(
            markup.contains("theatre feed last heard just now"),
            "{markup}"
        );
        assert!(!markup.contains("May be out of date"), "{markup}");
    }

    /// The cleaning team is told at the configured milestone: by default once the patient is
    /// out of theatre; with `surgery_end`, as soon as surgery ends ("will be ready soon"), and
    /// not again when the patient leaves (one alert per case).
    #[test]
    fn the_cleaning_notice_comes_at_the_configured_milestone() {
        use crate::alerts::{Alerts, CleaningNotice, Rules};
        let now = Utc::now();
        let mut closing = list("S1", "Theatre 1", now - Minutes::hours(2), 4);
        closing.milestones.push(Milestone {
            case_id: "S1-1".into(),
            planned_order: 1,
            milestone: "surgery_end".into(),
            time: now - Minutes::minutes(3),
            procedure_name: Some("Cystoscopy".into()),
            planned_duration_min: Some(45),
        });
        let board = |lists: &[TheatreList]| assemble(lists, now.date_naive(), now, None);
        let zone = chrono_tz::Europe::London;
        let raised = |notice: CleaningNotice, lists: &[TheatreList]| {
            let dir = tempfile::tempdir().expect("a folder");
            let alerts = Alerts::open(&dir.path().join("a.sqlite3"), Vec::new())
                .expect("a store")
                .with_rules(Rules {
                    cleaning_notice_at: notice,
                    ..Rules::default()
                });
            let mut told = std::collections::HashSet::new();
            tell_rooms(&alerts, &board(lists), zone, &mut told);
            alerts.latest(10).expect("listed")
        };
        assert!(raised(CleaningNotice::OutOfTheatre, &[closing.clone()]).is_empty());
        let early = raised(CleaningNotice::SurgeryEnd, &[closing.clone()]);
        assert_eq!(early.len(), 1);
        assert_eq!(
            early[0].title,
            "Theatre 1 (Main site) will be ready for cleaning soon"
        );
        assert!(
            early[0].detail.starts_with("Cystoscopy: surgery has ended"),
            "{}",
            early[0].detail
        );

        // Both rules on one store: surgery end, then out of theatre — still one alert.
        let dir = tempfile::tempdir().expect("a folder");
        let alerts = Alerts::open(&dir.path().join("a.sqlite3"), Vec::new())
            .expect("a store")
            .with_rules(Rules {
                cleaning_notice_at: CleaningNotice::SurgeryEnd,
                ..Rules::default()
            });
        let mut told = std::collections::HashSet::new();
        tell_rooms(&alerts, &board(&[closing.clone()]), zone, &mut told);
        let mut out = closing;
        out.milestones.push(Milestone {
            case_id: "S1-1".into(),
            planned_order: 1,
            milestone: "out_of_theatre".into(),
            time: now,
            procedure_name: None,
            planned_duration_min: None,
        });
        let mut fresh = std::collections::HashSet::new();
        tell_rooms(&alerts, &board(&[out]), zone, &mut fresh);
        assert_eq!(alerts.latest(10).expect("listed").len(), 1);
    }
}
