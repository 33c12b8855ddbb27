//! `GET /command-centre` and its twin `GET /api/command-centre`: the wall board of the
//! hospital now — the emergency department, beds by ward, discharges against the usual day,
//! theatres by status, feeds gone quiet — with a pressure level (1–4, OPEL-style) and the
//! parameters that set it, and the latest alerts. Dark, chrome-less, sized to one screen.
//!
//! Computed by one task for every viewer, like the trackboard ([`crate::live`]): when ADT,
//! ED, bed or theatre rows arrive (at most every [`MIN_GAP`], since the ward census reads
//! every stay), when the trackboard moves, and every [`TICK`]. `GET /command-centre/stream`
//! pushes each new state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use bright_engine::reads::{self, Discharges, EdNow, WardNow};
use bright_engine::schema::Table;
use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Serialize;

use super::theatres::{self, FeedHealth};
use super::{PageError, pages_for};
use crate::AppState;
use crate::alerts::Alert;
use crate::auth::Client;
use crate::live::{FOLLOW_SCRIPT, Hub, LiveBoard, stream};
use crate::trackboard::RoomStatus;

/// Recomputed at least this often, for the ages and times shown.
pub const TICK: Duration = Duration::from_secs(30);
/// And at most this often, however fast rows arrive.
pub const MIN_GAP: Duration = Duration::from_secs(5);
/// Alerts on the rail.
const RAIL: usize = 8;

/// One pressure parameter: its value now, the thresholds of levels 2, 3 and 4, and the level
/// it gives.
#[derive(Debug, Clone, Serialize)]
pub struct Parameter {
    pub name: &'static str,
    pub value: Option<f64>,
    pub thresholds: [f64; 3],
    pub level: u8,
}

fn level(value: Option<f64>, thresholds: [f64; 3]) -> u8 {
    let Some(v) = value else { return 1 };
    1 + thresholds.iter().filter(|t| v >= **t).count() as u8
}

/// The wall as its JSON twin answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Wall {
    pub date: NaiveDate,
    pub as_of: DateTime<Utc>,
    /// The highest level any parameter gives, and each parameter.
    pub pressure: u8,
    pub parameters: Vec<Parameter>,
    pub ed: Vec<EdNow>,
    pub wards: Vec<WardNow>,
    /// Free beds (open beds less patients, not below zero) by ward type.
    pub free_beds: BTreeMap<String, i64>,
    pub ga_occupancy: Option<f64>,
    pub discharges: Option<Discharges>,
    /// Theatres by room status (label, count), overruns and late starts today.
    pub theatres: Vec<(String, usize)>,
    pub theatre_overruns: usize,
    pub theatre_late_starts: usize,
    pub feeds: Vec<FeedRow>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedRow {
    pub feed: String,
    /// The team that looks after it.
    pub owner: String,
    #[serde(flatten)]
    pub health: FeedHealth,
}

/// The wall's live computation: one per service.
pub type Live = LiveBoard<Wall>;

/// Starts the wall's task unless it runs already.
pub fn start(live: &Live, state: &AppState, stopped: Option<tokio::sync::watch::Receiver<bool>>) {
    live.start(state, stopped, run);
}

fn live(state: &AppState) -> Result<&Live, PageError> {
    state
        .pages()
        .map(|p| p.command_centre.as_ref())
        .ok_or(PageError::Unavailable)
}

async fn compute(state: &AppState, now: DateTime<Utc>) -> Result<Wall, String> {
    let pages = state.pages().ok_or("no pages")?;
    let engine = pages.kpis.engine();
    let today = pages.kpis.today();
    let ed = reads::ed_now(engine, now)
        .await
        .map_err(|e| e.to_string())?;
    let wards = reads::wards_now(engine, today)
        .await
        .map_err(|e| e.to_string())?;
    let discharges = reads::discharges(engine, today)
        .await
        .map_err(|e| e.to_string())?;
    let mut free_beds: BTreeMap<String, i64> = BTreeMap::new();
    for w in &wards {
        let kind = w.ward_type.clone().unwrap_or_else(|| "unknown".into());
        *free_beds.entry(kind).or_default() += (w.beds - w.patients).max(0);
    }
    let ga: Vec<&WardNow> = wards
        .iter()
        .filter(|w| w.ward_type.as_deref() == Some("general_acute"))
        .collect();
    let ga_beds: i64 = ga.iter().map(|w| w.beds).sum();
    let ga_occupancy =
        (ga_beds > 0).then(|| ga.iter().map(|w| w.patients).sum::<i64>() as f64 / ga_beds as f64);
    let board = pages.theatres.hub.latest();
    let tiles = board
        .as_ref()
        .map(|f| f.data.tiles.as_slice())
        .unwrap_or_default();
    let mut by_status: Vec<(String, usize)> = Vec::new();
    for status in RoomStatus::ALL {
        let n = tiles
            .iter()
            .filter(|t| !t.list_cancelled && t.room.status == status)
            .count();
        if n > 0 {
            by_status.push((status.label().to_string(), n));
        }
    }
    let total = |f: fn(&EdNow) -> i64| ed.iter().map(f).sum::<i64>() as f64;
    let handovers: Vec<f64> = ed.iter().filter_map(|e| e.handover_mean_min).collect();
    let values = [
        ga_occupancy.map(|o| o * 100.0),
        (!ed.is_empty()).then(|| total(|e| e.over_12h)),
        (!handovers.is_empty()).then(|| handovers.iter().sum::<f64>() / handovers.len() as f64),
        (!ed.is_empty()).then(|| total(|e| e.decisions_to_admit)),
    ];
    let thresholds = state
        .alerts()
        .map(|a| a.rules().pressure)
        .unwrap_or_default();
    let parameters: Vec<Parameter> = thresholds
        .parameters()
        .into_iter()
        .zip(values)
        .map(|((name, thresholds), value)| Parameter {
            name,
            value,
            thresholds,
            level: level(value, thresholds),
        })
        .collect();
    let feeds = state
        .ingest()
        .map(|api| api.feeds())
        .unwrap_or_default()
        .iter()
        .map(|f| FeedRow {
            feed: f.feed.clone(),
            owner: f.owner.clone(),
            health: FeedHealth::from(f),
        })
        .collect::<Vec<_>>();
    let pressure = parameters.iter().map(|p| p.level).max().unwrap_or(1);
    let alerts = match state.alerts() {
        Some(store) => {
            raise(store, &feeds, pressure, &parameters, today, now);
            // Once the pages' series are all computed (not while the service warms them).
            if pages.kpis.all_kept() {
                match super::home::changes(pages).await {
                    Ok(changes) => raise_kpis(store, &changes, today, now),
                    Err(e) => tracing::error!(error = ?e, "Working out the KPIs' changes failed."),
                }
            }
            store.latest(RAIL).map_err(|e| e.to_string())?
        }
        None => Vec::new(),
    };
    Ok(Wall {
        date: today,
        as_of: now,
        pressure,
        parameters,
        ed,
        wards,
        free_beds,
        ga_occupancy,
        discharges: Some(discharges),
        theatres: by_status,
        theatre_overruns: tiles
            .iter()
            .filter(|t| t.pace.overrun_min.is_some())
            .count(),
        theatre_late_starts: tiles
            .iter()
            .filter(|t| t.late_start_min.is_some_and(|m| m > 0))
            .count(),
        feeds,
        alerts,
    })
}

/// The wall's rules: a feed gone silent (once an hour while it stays silent) and a pressure
/// level of 3 or 4 (once per level and day, again after four hours).
fn raise(
    alerts: &crate::alerts::Alerts,
    feeds: &[FeedRow],
    pressure: u8,
    parameters: &[Parameter],
    today: NaiveDate,
    now: DateTime<Utc>,
) {
    use crate::alerts::{NewAlert, Severity};
    let mut raised: Vec<NewAlert> = feeds
        .iter()
        .filter(|f| f.health.stale)
        .map(|f| NewAlert {
            kind: FEED_STALE,
            severity: Severity::Warning,
            key: format!("feed_stale:{}", f.feed),
            cooldown: Duration::from_secs(3600),
            title: format!(
                "{} has been silent for {} min",
                f.feed, f.health.minutes_silent
            ),
            detail: format!(
                "{} Its owner: {}.",
                f.health
                    .last_delivery
                    .as_ref()
                    .map_or("Nothing since bright started.".to_string(), |t| format!(
                        "Last delivery {t}."
                    )),
                f.owner
            ),
            link: Some("/data-quality".into()),
        })
        .collect();
    if pressure >= 3 {
        let causes: Vec<String> = parameters
            .iter()
            .filter(|p| p.level >= 3)
            .map(|p| format!("{} {}", p.name, number(p.value, 0)))
            .collect();
        raised.push(NewAlert {
            kind: PRESSURE,
            severity: if pressure == 4 {
                Severity::Critical
            } else {
                Severity::Warning
            },
            key: format!("pressure:{pressure}:{today}"),
            cooldown: Duration::from_secs(4 * 3600),
            title: format!("Pressure level {pressure}"),
            detail: format!("Set by: {}.", causes.join("; ")),
            link: Some("/command-centre".into()),
        });
    }
    for alert in raised {
        if let Err(e) = alerts.raise(&alert, now) {
            tracing::error!(error = %e, "Raising an alert failed.");
        }
    }
}

/// The KPI rules, from the KPIs whose icons changed since yesterday: a variation icon that
/// turns to special cause (of concern: a warning; improvement or neither: for information),
/// and an assurance icon that changes. Once per KPI, icon and day.
fn raise_kpis(
    alerts: &crate::alerts::Alerts,
    changes: &[super::home::Change],
    today: NaiveDate,
    now: DateTime<Utc>,
) {
    use crate::alerts::{NewAlert, Severity};
    let title = |name: Option<&str>, assurance: bool| {
        if assurance {
            super::assurance_icon(name).title()
        } else {
            super::variation_icon(name).map_or("no data", |i| i.title())
        }
    };
    for c in changes {
        let mut raised = Vec::new();
        let special = c
            .variation_icon
            .filter(|v| *v != "common_cause" && c.before.0 != Some(*v));
        if let Some(v) = special {
            raised.push(NewAlert {
                kind: KPI_SPECIAL_CAUSE,
                severity: if v.starts_with("concern") {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                key: format!("kpi:{}:{v}:{today}", c.id),
                cooldown: Duration::from_secs(24 * 3600),
                title: format!("{}: {}", c.title, title(Some(v), false)),
                detail: format!(
                    "Its latest point is special cause; the day before the chart showed {}.",
                    title(c.before.0, false)
                ),
                link: Some(format!("/kpi/{}", c.id)),
            });
        }
        if c.assurance_icon != c.before.1 {
            raised.push(NewAlert {
                kind: KPI_ASSURANCE,
                severity: Severity::Info,
                key: format!(
                    "assurance:{}:{}:{today}",
                    c.id,
                    c.assurance_icon.unwrap_or("none")
                ),
                cooldown: Duration::from_secs(24 * 3600),
                title: format!("{}: {}", c.title, title(c.assurance_icon, true)),
                detail: format!("The day before: {}.", title(c.before.1, true)),
                link: Some(format!("/kpi/{}", c.id)),
            });
        }
        for alert in raised {
            if let Err(e) = alerts.raise(&alert, now) {
                tracing::error!(error = %e, "Raising a KPI alert failed.");
            }
        }
    }
}

/// Alert kinds the wall raises.
pub const KPI_SPECIAL_CAUSE: &str = "kpi_special_cause";
pub const KPI_ASSURANCE: &str = "kpi_assurance_changed";
pub const FEED_STALE: &str = "feed_stale";
pub const PRESSURE: &str = "pressure_level";

/// The wall's loop: recompute when its tables or the trackboard change (no more often than
/// [`MIN_GAP`]) and on a tick.
async fn run(state: AppState, hub: Arc<Hub<Wall>>) {
    let Some(pages) = state.pages().cloned() else {
        return;
    };
    // The wall counts the trackboard's rooms: make sure it runs.
    theatres::start(&pages.theatres, &state, None);
    let engine = pages.kpis.engine().clone();
    let mut signals = Vec::new();
    for table in [
        Table::AdtEvents,
        Table::EdAttendances,
        Table::Beds,
        Table::TheatreSessions,
        Table::TheatreEvents,
    ] {
        match engine.changes(table) {
            Ok(signal) => signals.push(signal),
            Err(e) => {
                tracing::error!(error = %e, "The command-centre wall cannot follow its tables.");
                return;
            }
        }
    }
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        for signal in &mut signals {
            signal.mark_unchanged();
        }
        match compute(&state, pages.kpis.now()).await {
            Ok(wall) => {
                let view = wall_markup(&wall, pages.kpis.time_zone()).into_string();
                let mut views = BTreeMap::from([(String::new(), view)]);
                // The JSON twin too, once per frame rather than per request.
                if let Ok(json) = serde_json::to_string(&wall) {
                    views.insert(crate::live::JSON_VIEW.to_string(), json);
                }
                hub.publish(wall, views);
            }
            // The wall keeps its last state (its age shows) and tries again.
            Err(e) => tracing::error!(error = %e, "Computing the command-centre wall failed."),
        }
        let gap = tokio::time::sleep(MIN_GAP);
        let changed =
            futures_util::future::select_all(signals.iter_mut().map(|s| Box::pin(s.changed())));
        tokio::select! {
            (result, _, _) = changed => { if result.is_err() { return; } }
            _ = tick.tick() => {}
        }
        gap.await;
    }
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Result<axum::response::Response, PageError> {
    pages_for(&state, &client)?;
    let frame = live(&state)?
        .latest(&state, run)
        .await
        .map_err(PageError::Failed)?;
    Ok(frame
        .json("")
        .unwrap_or_else(|| Json(frame.data.as_ref().clone()).into_response()))
}

/// `GET /command-centre/stream`: the wall's frames as Server-Sent Events.
pub async fn events(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    headers: HeaderMap,
) -> Result<axum::response::Response, PageError> {
    pages_for(&state, &client)?;
    let live = live(&state)?;
    start(live, &state, None);
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let still_allowed = super::theatres::still_allowed(&state, &client, &headers);
    Ok(stream(
        live.hub.clone(),
        String::new(),
        String::new(),
        last,
        still_allowed,
    )
    .into_response())
}

fn hhmm(t: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    t.with_timezone(&zone).format("%H:%M").to_string()
}

/// Background and text colours of an occupancy: green under 85%, then amber, orange and red
/// from 98%.
fn occupancy_colours(share: f64) -> (&'static str, &'static str) {
    match share {
        s if s >= 0.98 => ("#DA291C", "#FFFFFF"),
        s if s >= 0.92 => ("#ED8B00", "#212B32"),
        s if s >= 0.85 => ("#FFB81C", "#212B32"),
        _ => ("#007F3B", "#FFFFFF"),
    }
}

fn pressure_colours(level: u8) -> (&'static str, &'static str) {
    match level {
        4 => ("#DA291C", "#FFFFFF"),
        3 => ("#ED8B00", "#212B32"),
        2 => ("#FFB81C", "#212B32"),
        _ => ("#007F3B", "#FFFFFF"),
    }
}

/// A tile's source and its age: the feed it is built from, when it last delivered.
fn source(wall: &Wall, feed: &str) -> Markup {
    let found = wall.feeds.iter().find(|f| f.feed == feed);
    html! {
        p class="source" {
            @match found {
                None => { "From " (feed) }
                Some(f) if f.health.stale => {
                    strong class="warning" { "Stale: " (feed) " silent for " (f.health.minutes_silent) " min" }
                }
                Some(f) if f.health.last_delivery.is_none() => { (feed) ": nothing since bright started" }
                Some(f) => { (feed) " last heard " (f.health.minutes_silent) " min ago" }
            }
        }
    }
}

fn number(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

/// The wall's live part: everything under the top strip.
fn wall_markup(wall: &Wall, zone: chrono_tz::Tz) -> Markup {
    let (p_bg, p_fg) = pressure_colours(wall.pressure);
    let stale: Vec<&FeedRow> = wall.feeds.iter().filter(|f| f.health.stale).collect();
    let ed_total = |f: fn(&EdNow) -> i64| wall.ed.iter().map(f).sum::<i64>();
    let mut sites: BTreeMap<&str, Vec<&WardNow>> = BTreeMap::new();
    for w in wall.wards.iter().filter(|w| w.beds > 0 || w.patients > 0) {
        sites.entry(w.site.as_str()).or_default().push(w);
    }
    html! {
        div class="strip" {
            p class="pressure" style=(format!("background:{p_bg};color:{p_fg}")) {
                "Pressure level " strong { (wall.pressure) }
            }
            p class="asof" {
                "Data as of " (wall.as_of.with_timezone(&zone).format("%H:%M:%S"))
                @if stale.is_empty() { " · every feed live" }
                @else { " · " strong class="warning" { (stale.len()) " feed(s) silent" } }
            }
        }
        div class="wall" {
            section class="tile ed" aria-label="Emergency department now" {
                h2 { "ED now" }
                (source(wall, "ed_attendances"))
                div class="figures" {
                    p { span class="big" { (ed_total(|e| e.in_department)) } " in department" }
                    p { span class="big" { (ed_total(|e| e.over_4h)) } " over 4 h" }
                    p { span class="big" { (ed_total(|e| e.over_12h)) } " over 12 h" }
                    p { span class="big" { (ed_total(|e| e.decisions_to_admit)) } " waiting for a bed" }
                    p { span class="big" { (ed_total(|e| e.ambulances_waiting)) } " ambulances waiting" }
                }
                table {
                    thead { tr { th { "Site" } th { "In" } th { ">4h" } th { ">12h" } th { "DTA" } th { "Amb." } th { "Handover" } } }
                    tbody {
                        @for e in &wall.ed {
                            tr {
                                td { (e.site) } td { (e.in_department) } td { (e.over_4h) }
                                td { (e.over_12h) } td { (e.decisions_to_admit) } td { (e.ambulances_waiting) }
                                td { (number(e.handover_mean_min, 0)) " min" }
                            }
                        }
                    }
                }
            }
            section class="tile beds" aria-label="Beds by ward" {
                h2 {
                    "Beds"
                    @if let Some(o) = wall.ga_occupancy { " · G&A " (format!("{:.0}%", o * 100.0)) " occupied" }
                }
                (source(wall, "hl7_adt"))
                @for (site, wards) in &sites {
                    h3 { (site) }
                    ul class="heat" {
                        @for w in wards {
                            @let share = if w.beds > 0 { w.patients as f64 / w.beds as f64 } else { 1.0 };
                            @let (bg, fg) = occupancy_colours(share);
                            li style=(format!("background:{bg};color:{fg}")) title=(format!("{}: {} patients, {} beds", w.ward, w.patients, w.beds)) {
                                span class="ward" { (w.ward) } " " (w.patients) "/" (w.beds)
                            }
                        }
                    }
                }
                p class="free" {
                    "Free beds: "
                    @for (i, (kind, n)) in wall.free_beds.iter().enumerate() {
                        @if i > 0 { " · " }
                        (kind.replace('_', " ")) " " strong { (n) }
                    }
                }
            }
            section class="tile discharges" aria-label="Discharges today" {
                h2 { "Discharges today" }
                (source(wall, "hl7_adt"))
                @if let Some(d) = wall.discharges {
                    p { span class="big" { (d.today) } " so far, against " (format!("{:.0}", d.expected)) " on this weekday (mean of the last four)" }
                }
            }
            section class="tile theatres" aria-label="Theatres now" {
                h2 { "Theatres" }
                (source(wall, "theatre_events"))
                @if wall.theatres.is_empty() { p { "No list today." } }
                ul class="statuses" {
                    @for (label, n) in &wall.theatres { li { strong { (n) } " " (label) } }
                }
                p {
                    strong { (wall.theatre_overruns) } " overrunning or expected to · "
                    strong { (wall.theatre_late_starts) } " started late"
                }
            }
            section class="tile feeds" aria-label="Feeds" {
                h2 { "Feeds" }
                @if wall.feeds.is_empty() { p { "No feed health in this process." } }
                @else if stale.is_empty() { p { "No feed has been silent longer than it may be." } }
                ul {
                    @for f in &stale {
                        li class="warning" { strong { (f.feed) } " silent for " (f.health.minutes_silent) " min" }
                    }
                }
            }
            section class="tile pressure-detail" aria-label="Pressure parameters" {
                h2 { "Pressure level " (wall.pressure) ": what sets it" }
                table {
                    thead { tr { th { "Parameter" } th { "Now" } th { "2 / 3 / 4 from" } th { "Level" } } }
                    tbody {
                        @for p in &wall.parameters {
                            tr {
                                td { (p.name) } td { (number(p.value, 0)) }
                                td { (p.thresholds[0]) " / " (p.thresholds[1]) " / " (p.thresholds[2]) }
                                td { strong { (p.level) } }
                            }
                        }
                    }
                }
            }
            aside class="tile rail" aria-label="Alerts, newest first" {
                h2 { "Alerts" }
                @if wall.alerts.is_empty() { p { "None raised." } }
                ol {
                    @for a in &wall.alerts {
                        li class=(format!("alert {}", serde_json::to_value(a.severity).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())) {
                            span class="when" { (hhmm(a.raised_at, zone)) } " " strong { (a.title) }
                            @if let Some(by) = &a.acknowledged_by { " · seen by " (by) }
                        }
                    }
                }
            }
        }
    }
}

/// The wall's style: dark, everything sized from the screen so it fits 1920×1080 to
/// 3840×2160 without scrolling.
const WALL_CSS: &str = "*{box-sizing:border-box}\
body.wall-page{margin:0;height:100vh;overflow:hidden;display:flex;flex-direction:column;\
background:#212B32;color:#F0F4F5;font-family:\"Segoe UI\",Arial,sans-serif;font-size:1.45vh;line-height:1.3}\
.top{display:flex;align-items:baseline;gap:2vw;padding:.6vh 1vw}.top h1{margin:0;font-size:3vh}\
.clock{font-size:3vh;font-weight:700;font-variant-numeric:tabular-nums}\
#board{flex:1 1 auto;min-height:0;display:flex;flex-direction:column;padding:0 1vw 1vh}\
.strip{display:flex;gap:1.5vw;align-items:center;margin-bottom:.8vh}.strip p{margin:0}\
.pressure{padding:.3vh .8vw;font-size:2.4vh;border-radius:.3vh}\
.wall{flex:1 1 auto;min-height:0;display:grid;gap:1vh;grid-template-columns:1.1fr 1.6fr 1fr 1fr;\
grid-template-rows:repeat(3,minmax(0,1fr))}\
.tile{background:#2F3C45;border-radius:.4vh;padding:.8vh .8vw;min-height:0;overflow:hidden}\
.tile h2{margin:0 0 .6vh;font-size:2vh}.tile h3{margin:.6vh 0 .3vh;font-size:1.6vh}\
.ed{grid-column:1;grid-row:1/3}.pressure-detail{grid-column:1;grid-row:3}\
.beds{grid-column:2;grid-row:1/4}.theatres{grid-column:3;grid-row:1}.discharges{grid-column:3;grid-row:2}\
.feeds{grid-column:3;grid-row:3}.rail{grid-column:4;grid-row:1/4}\
.big{font-size:3.6vh;font-weight:700;font-variant-numeric:tabular-nums}\
.figures p{margin:.2vh 0}table{border-collapse:collapse;width:100%;margin-top:.6vh}\
th,td{text-align:left;padding:.2vh .4vw;border-bottom:1px solid #4C6272}\
.heat{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.4vh}\
.heat li{padding:.2vh .4vw;border-radius:.3vh;font-variant-numeric:tabular-nums}\
.heat .ward{font-weight:600}.free{margin:.8vh 0 0}\
.statuses{list-style:none;margin:0;padding:0;columns:2}.rail ol{list-style:none;margin:0;padding:0}\
.rail li{padding:.4vh 0;border-bottom:1px solid #4C6272}.rail .when{font-variant-numeric:tabular-nums;color:#AEB7BD}\
.rail .critical strong{color:#FF8A80}.rail .warning strong{color:#FFB81C}\
.warning{color:#FFB81C}.link{display:none;background:#DA291C;color:#fff;padding:.3vh .8vw;font-weight:700;margin:0}\
body.offline .link{display:block}body.offline #board{opacity:.4;filter:grayscale(1)}\
.pressure-detail td,.pressure-detail th{font-size:1.3vh}\
.source{margin:0 0 .5vh;color:#AEB7BD;font-size:1.2vh}";

/// The clock: the browser's time, each second; in a fast demo (`data-speed`), the demo's
/// time from `data-from` (milliseconds), running as fast as the boards' clock.
const CLOCK_SCRIPT: &str = "(function(){var c=document.getElementById('clock');if(!c)return;\
var s=+c.getAttribute('data-speed')||1,from=+c.getAttribute('data-from'),start=Date.now();\
function t(){var d=s>1?new Date(from+(Date.now()-start)*s):new Date();\
c.textContent=d.toTimeString().slice(0,5);}t();setInterval(t,1000);})();";

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Result<Markup, super::HtmlError> {
    let pages = pages_for(&state, &client)?;
    let frame = live(&state)?
        .latest(&state, run)
        .await
        .map_err(PageError::Failed)?;
    let zone = pages.kpis.time_zone();
    let wall = &frame.data;
    Ok(html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Command centre — bright" }
                script { (PreEscaped(super::ERROR_COLLECTOR)) }
                style { (PreEscaped(WALL_CSS)) }
            }
            body class="wall-page" {
                header class="top" {
                    h1 { "Command centre" }
                    span { (wall.date.format("%A %-d %B %Y")) }
                    @let speed = pages.kpis.clock().speed();
                    @if speed > 1.0 {
                        span id="clock" class="clock" data-speed=(speed) data-from=(pages.kpis.now().timestamp_millis()) { (hhmm(pages.kpis.now(), zone)) }
                    } @else {
                        span id="clock" class="clock" { (hhmm(Utc::now(), zone)) }
                    }
                    p id="link" class="link" role="status" { "Reconnecting… the wall may be out of date." }
                }
                main id="board" data-stream="/command-centre/stream" aria-live="polite" {
                    (wall_markup(wall, zone))
                }
                script { (PreEscaped(FOLLOW_SCRIPT)) }
                script { (PreEscaped(CLOCK_SCRIPT)) }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_takes_the_level_of_the_highest_threshold_it_reaches() {
        let t = [92.0, 95.0, 98.0];
        assert_eq!(level(None, t), 1);
        assert_eq!(level(Some(91.9), t), 1);
        assert_eq!(level(Some(92.0), t), 2);
        assert_eq!(level(Some(97.0), t), 3);
        assert_eq!(level(Some(120.0), t), 4);
    }

    /// A silent feed is an alert naming its owner, raised once while it stays silent; a
    /// pressure level of 3 is a warning naming what set it.
    #[test]
    fn a_silent_feed_and_a_high_pressure_level_raise_one_alert_each() {
        let dir = tempfile::tempdir().expect("a folder");
        let alerts = crate::alerts::Alerts::open(&dir.path().join("a.sqlite3"), Vec::new())
            .expect("a store");
        let feeds = [
            FeedRow {
                feed: "hl7_adt".into(),
                owner: "PAS interface team".into(),
                health: FeedHealth {
                    last_delivery: Some("2026-12-03T09:00:00Z".into()),
                    minutes_silent: 25,
                    stale: true,
                },
            },
            FeedRow {
                feed: "beds".into(),
                owner: "Bed management team".into(),
                health: FeedHealth {
                    last_delivery: None,
                    minutes_silent: 3,
                    stale: false,
                },
            },
        ];
        let parameters = [Parameter {
            name: "G&A bed occupancy (%)",
            value: Some(96.0),
            thresholds: [92.0, 95.0, 98.0],
            level: 3,
        }];
        let today = NaiveDate::from_ymd_opt(2026, 12, 3).expect("a day");
        let now = Utc::now();
        for minutes in [0, 10, 20] {
            raise(
                &alerts,
                &feeds,
                3,
                &parameters,
                today,
                now + chrono::Duration::minutes(minutes),
            );
        }
        let raised = alerts.latest(10).expect("listed");
        assert_eq!(raised.len(), 2, "{raised:?}");
        let stale = raised
            .iter()
            .find(|a| a.kind == FEED_STALE)
            .expect("the feed");
        assert_eq!(stale.title, "hl7_adt has been silent for 25 min");
        assert!(
            stale.detail.contains("PAS interface team"),
            "{}",
            stale.detail
        );
        let pressure = raised
            .iter()
            .find(|a| a.kind == PRESSURE)
            .expect("the level");
        assert_eq!(pressure.title, "Pressure level 3");
        assert_eq!(pressure.detail, "Set by: G&A bed occupancy (%) 96.");
        assert_eq!(pressure.severity, crate::alerts::Severity::Warning);
    }
}
