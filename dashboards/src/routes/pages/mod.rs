//! The pages people read: home, the Integrated Performance Report, dashboards, one KPI in
//! depth, data quality. One module per page; this one holds what they share — the frame
//! (header, navigation, "data as of", sign-out), the style sheet, the KPI panel, and how a
//! request's filters become series from the [`crate::kpis::KpiService`].
//!
//! Every page is server-rendered HTML with its charts and icons inline as SVG and its style
//! inline: nothing is fetched from anywhere else, so pages work on a closed hospital network
//! and a saved page opens offline. Each has a JSON twin under `/api/` built from the same
//! [`crate::view::KpiView`]s.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bright_engine::kpi::{Grain, Kpi};
use bright_engine::spc::narrate::Unit;
use bright_engine::spc::{AssuranceIcon, VariationIcon};
use chrono::{DateTime, NaiveDate, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::auth::Client;
use crate::charts::icons::{Icon, icon_svg};
use crate::charts::spc::spc_chart_svg;
use crate::kpis::{KpiService, breakdowns};
use crate::spec::{Dashboard, Dashboards};
use crate::view::{KpiView, Shape, kpi_view};
use crate::{AppState, error_body};
use dashboard::FilterView;

pub mod annotations;
pub mod command_centre;
pub mod dashboard;
pub mod data_quality;
pub mod favourites;
pub mod home;
pub mod ipr;
pub mod kpi;
pub mod sql;
pub mod theatre_report;
pub mod theatres;

/// What the pages need beyond the rest of the service.
#[derive(Debug, Clone)]
pub struct Pages {
    pub kpis: Arc<KpiService>,
    pub dashboards: Arc<Dashboards>,
    /// What changed since yesterday, worked out once per refresh of the series (it charts
    /// every KPI day by day twice), keyed by the refresh time and the day.
    pub(crate) changes: Arc<std::sync::Mutex<Option<home::Changes>>>,
    /// The theatre trackboard, computed once for every viewer.
    pub theatres: Arc<theatres::Live>,
    /// The command-centre wall, likewise.
    pub command_centre: Arc<command_centre::Live>,
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// No such page, or not one this person may see (the same answer, so pages are not
    /// discovered by probing).
    NotFound(String),
    Forbidden(String),
    BadRequest(String),
    /// Computing a series failed; logged, and the person told to retry.
    Failed(String),
    /// The service runs without pages (no KPI catalogue).
    Unavailable,
}

impl PageError {
    /// The status and the message a person or a script is shown (failures are logged here,
    /// once, and shown only as "retry").
    fn status_and_message(self) -> (StatusCode, String) {
        match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            PageError::Failed(m) => {
                tracing::error!(error = %m, "A page could not be computed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "bright could not compute this page; retry in a moment".to_string(),
                )
            }
            PageError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "this service runs without the KPI pages".to_string(),
            ),
        }
    }
}

/// The JSON twins answer `{"error": …}`.
impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        (status, error_body(&message)).into_response()
    }
}

/// A page's error as people see it: the same status, as a short page with a way back.
#[derive(Debug)]
pub struct HtmlError(pub PageError);

impl From<PageError> for HtmlError {
    fn from(e: PageError) -> Self {
        HtmlError(e)
    }
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        let (status, message) = self.0.status_and_message();
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not yours to see",
            StatusCode::BAD_REQUEST => "That view cannot be shown",
            _ => "Not available just now",
        };
        let page = html! {
            (DOCTYPE)
            html lang="en-GB" {
                (head(heading, CSS))
                body {
                    main id="main" {
                        h1 { (heading) }
                        p class="error" { (message) }
                        p { a href="/" { "Back to your dashboards" } }
                    }
                }
            }
        };
        (status, page).into_response()
    }
}

impl From<bright_engine::query::QueryError> for PageError {
    fn from(e: bright_engine::query::QueryError) -> Self {
        PageError::Failed(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for PageError {
    fn from(e: arrow::error::ArrowError) -> Self {
        PageError::Failed(e.to_string())
    }
}

/// The pages' parts of the state, for a client that may read.
pub(crate) fn pages_for<'a>(state: &'a AppState, client: &Client) -> Result<&'a Pages, PageError> {
    if !client.may_read() {
        return Err(PageError::Forbidden(format!(
            "client '{}' may not read (scope 'read')",
            client.name
        )));
    }
    state.pages().ok_or(PageError::Unavailable)
}

/// The query string every KPI view takes: grain, range and breakdown filters
/// (`?grain=week&from=2025-04-01&site=NGH`), so any view is a link.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ViewQuery {
    #[serde(default, deserialize_with = "blank_is_none")]
    pub grain: Option<Grain>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub from: Option<NaiveDate>,
    #[serde(default, deserialize_with = "blank_is_none")]
    pub to: Option<NaiveDate>,
    /// Every other parameter: filters by breakdown (unknown ones are ignored).
    #[serde(flatten)]
    pub filters: BTreeMap<String, String>,
}

/// An empty form field means "not set" (a date input left blank sends `from=`).
pub(crate) fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let text: Option<String> = Option::deserialize(deserializer)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(text))
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("'{text}' is not a valid value here"))),
    }
}

impl ViewQuery {
    /// The filters a dashboard offers that this query sets (non-empty values only).
    pub fn chosen<'a>(&'a self, offered: &'a [String]) -> Vec<(String, String)> {
        offered
            .iter()
            .filter_map(|f| {
                let v = self.filters.get(f)?.trim();
                (!v.is_empty()).then(|| (f.clone(), v.to_string()))
            })
            .collect()
    }

    /// The view this query asks of `service`'s series: never before the history starts.
    pub fn shape(&self, default: Grain, service: &KpiService) -> Shape {
        Shape {
            grain: self.grain.unwrap_or(default),
            from: self.from.max(service.history_from()),
            to: self.to,
            today: service.today(),
        }
    }
}

/// `kpi` for the whole trust, or for the breakdown values in `chosen` it can be split by.
/// Returns the view and the filters it could not apply.
pub(crate) async fn view_of(
    service: &KpiService,
    kpi: &Kpi,
    chosen: &[(String, String)],
    shape: Shape,
) -> Result<(KpiView, Vec<String>), PageError> {
    let (applied, ignored): (Vec<_>, Vec<_>) = chosen
        .iter()
        .cloned()
        .partition(|(f, _)| splits(kpi).contains(f));
    let by: Vec<String> = applied.iter().map(|(f, _)| f.clone()).collect();
    let output = service.series(kpi.id.as_str(), &by).await?;
    let rows = breakdowns(&output, &by, &applied)?
        .into_iter()
        .next()
        .map(|b| b.periods)
        .unwrap_or_default();
    let notes = service.notes(kpi.id.as_str(), org_of(&applied));
    Ok((
        kpi_view(kpi, &rows, shape, &notes),
        ignored.into_iter().map(|(f, _)| f).collect(),
    ))
}

/// What `kpi` can be filtered and broken down by: its breakdowns, and the organisation (every
/// KPI has it, for lakes that hold several trusts).
pub(crate) fn splits(kpi: &Kpi) -> Vec<String> {
    let mut splits = kpi.breakdowns.clone();
    splits.push(bright_engine::schema::common::ORG_CODE.to_string());
    splits
}

/// The organisation a view is filtered to, if any (annotations are per organisation).
pub(crate) fn org_of(chosen: &[(String, String)]) -> Option<&str> {
    chosen
        .iter()
        .find(|(f, _)| f == bright_engine::schema::common::ORG_CODE)
        .map(|(_, v)| v.as_str())
}

/// The values a filter can take: the breakdown's values in the first KPI that has it (any KPI
/// for the organisation).
pub(crate) async fn filter_values(
    service: &KpiService,
    dashboard: &Dashboard,
    filter: &str,
) -> Result<Vec<String>, PageError> {
    let Some(catalogue) = service.engine().kpi_catalogue() else {
        return Ok(Vec::new());
    };
    let Some(kpi) = dashboard
        .kpis()
        .filter_map(|id| catalogue.get(id).ok())
        .find(|k| splits(k).iter().any(|b| b == filter))
    else {
        return Ok(Vec::new());
    };
    let by = [filter.to_string()];
    let output = service.series(kpi.id.as_str(), &by).await?;
    let mut values: Vec<String> = breakdowns(&output, &by, &[])?
        .into_iter()
        .filter_map(|b| b.key.into_iter().next().flatten())
        .collect();
    values.sort();
    values.dedup();
    Ok(values)
}

/// Where a dashboard is read: the board's is the IPR, data quality has its own page.
pub(crate) fn href(dashboard: &Dashboard) -> String {
    match dashboard.id.as_str() {
        crate::spec::BOARD => "/ipr".to_string(),
        data_quality::DASHBOARD => "/data-quality".to_string(),
        id => format!("/dashboards/{id}"),
    }
}

/// The dashboards `client` may see.
pub(crate) fn visible<'a>(dashboards: &'a Dashboards, client: &Client) -> Vec<&'a Dashboard> {
    dashboards
        .all()
        .iter()
        .filter(|d| d.visible_to(client.role))
        .collect()
}

/// A unit from the name a view carries.
pub(crate) fn unit_of(view: &KpiView) -> Unit {
    view.unit.parse().unwrap_or(Unit::Count)
}

/// `x` formatted in the KPI's unit, or an en dash.
pub(crate) fn shown(view: &KpiView, x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| unit_of(view).format(x))
}

/// A file to save: `body` as `content_type`, named `name`.
pub(crate) fn download(content_type: &str, name: String, body: Vec<u8>) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The variation icon a view names.
pub(crate) fn variation_icon(name: Option<&str>) -> Option<Icon> {
    Icon::ALL.into_iter().find(|i| match i {
        Icon::Variation(v) => Some(v.as_str()) == name,
        _ => false,
    })
}

/// The assurance icon a view names; a KPI without a target (or direction) shows "no target".
pub(crate) fn assurance_icon(name: Option<&str>) -> Icon {
    Icon::ALL
        .into_iter()
        .find(|i| match i {
            Icon::Assurance(a) => Some(a.as_str()) == name,
            _ => false,
        })
        .unwrap_or(Icon::NoTarget)
}

/// The four columns of the summary matrix, from a variation icon.
pub(crate) fn variation_class(name: Option<&str>) -> &'static str {
    match variation_icon(name) {
        Some(Icon::Variation(VariationIcon::ImprovementHigh | VariationIcon::ImprovementLow)) => {
            "improvement"
        }
        Some(Icon::Variation(VariationIcon::ConcernHigh | VariationIcon::ConcernLow)) => "concern",
        Some(Icon::Variation(VariationIcon::NeutralHigh | VariationIcon::NeutralLow)) => "neutral",
        Some(_) => "common",
        None => "none",
    }
}

/// The four rows of the summary matrix, from an assurance icon.
pub(crate) fn assurance_class(name: Option<&str>) -> &'static str {
    match assurance_icon(name) {
        Icon::Assurance(AssuranceIcon::Pass) => "pass",
        Icon::Assurance(AssuranceIcon::Fail) => "fail",
        Icon::Assurance(AssuranceIcon::Inconsistent) => "hit_and_miss",
        _ => "no_target",
    }
}

/// The "data as of" stamp: when the series were last brought up to date.
pub(crate) fn as_of_text(as_of: Option<DateTime<Utc>>, tz: chrono_tz::Tz) -> String {
    match as_of {
        None => "Data being computed".to_string(),
        Some(t) => {
            let local = t.with_timezone(&tz);
            let minutes = (Utc::now() - t).num_minutes().max(0);
            let age = match minutes {
                0 => "just now".to_string(),
                1 => "1 minute ago".to_string(),
                n if n < 120 => format!("{n} minutes ago"),
                n => format!("{} hours ago", n / 60),
            };
            format!("Data as of {} ({age})", local.format("%-d %b %Y %H:%M"))
        }
    }
}

/// Everything the frame of a page shows.
pub(crate) struct Frame<'a> {
    pub title: &'a str,
    pub client: &'a Client,
    pub dashboards: Vec<&'a Dashboard>,
    /// The page's path, to mark it in the navigation.
    pub current: &'a str,
    pub as_of: String,
}

/// A whole page: header with navigation, "data as of" and sign-out, then `main`.
pub(crate) fn page(frame: &Frame<'_>, main: Markup) -> Markup {
    let nav: Vec<(String, &str)> = [("/".to_string(), "Home")]
        .into_iter()
        .chain(frame.dashboards.iter().map(|d| {
            let label = if d.id == crate::spec::BOARD {
                "IPR"
            } else {
                d.title.as_str()
            };
            (href(d), label)
        }))
        // The live trackboard, for everyone who sees pages: theatre staff look there first.
        .chain([
            ("/theatres".to_string(), "Theatres now"),
            ("/theatres/report".to_string(), "Theatre report"),
            ("/command-centre".to_string(), "Command centre"),
        ])
        // Analysts' SQL, for those who may run it.
        .chain(frame.client.may_sql().then(|| ("/sql".to_string(), "SQL")))
        .collect();
    let person = frame
        .client
        .name
        .strip_prefix("user:")
        .unwrap_or(&frame.client.name);
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            (head(frame.title, CSS))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "bright" }
                    nav aria-label="Pages" {
                        ul {
                            @for (href, label) in &nav {
                                li {
                                    @if href == frame.current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div class="who" {
                        span class="as-of" { (frame.as_of) }
                        span class="person" { (person) }
                        @if let Some(csrf) = &frame.client.csrf {
                            form method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { (main) }
            }
        }
    }
}

/// A page's head: its title, the script-error collector (first, so browser tests see every
/// error) and its style sheet (raw: escaping its quotes would break the rules).
pub(crate) fn head(title: &str, css: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " — bright" }
            script { (PreEscaped(ERROR_COLLECTOR)) }
            style { (PreEscaped(css)) }
        }
    }
}

const ERROR_COLLECTOR: &str = "window.__errs=[];addEventListener('error',function(e){__errs.push(String(e.message))});addEventListener('unhandledrejection',function(e){__errs.push(String(e.reason))});";

/// The variation and assurance icons of a KPI, each with its meaning as a tooltip and for
/// screen readers.
pub(crate) fn icons(view: &KpiView, size: u32) -> Markup {
    icon_pair(view.variation_icon, view.assurance_icon, size, true)
}

/// The variation and assurance icons by their names (see [`KpiView`]); with `no_target`
/// false, a metric without a target shows no assurance icon (where many small ones would
/// only repeat "no target").
pub(crate) fn icon_pair(
    variation: Option<&str>,
    assurance: Option<&str>,
    size: u32,
    no_target: bool,
) -> Markup {
    html! {
        span class="icons" {
            @if let Some(icon) = variation_icon(variation) {
                span class="icon" title=(icon.title()) { (icon_svg(icon, size)) }
            }
            @if assurance.is_some() || no_target {
                @let assurance = assurance_icon(assurance);
                span class="icon" title=(assurance.title()) { (icon_svg(assurance, size)) }
            }
        }
    }
}

/// Below this many points a chart's limits are trial limits (Making Data Count's caption).
const TRIAL_POINTS: usize = 12;

/// A KPI's full panel: title, icons, narration, figures, chart and its values table.
pub(crate) fn kpi_panel(view: &KpiView, link: &str, note: Option<&str>) -> Markup {
    let points = &view.points;
    html! {
        section class="panel" id={ "kpi-" (view.id) } aria-labelledby={ "title-" (view.id) } {
            div class="panel-head" {
                h3 id={ "title-" (view.id) } { a href=(link) { (view.title) } }
                (icons(view, 44))
            }
            p class="narration" { (view.narration) }
            @if let Some(note) = note {
                p class="note" { (note) }
            }
            dl class="figures" {
                div { dt { "Latest" } dd { (shown(view, view.latest)) } }
                div { dt { "Target" } dd { (shown(view, view.target)) } }
                div { dt { "Mean" } dd { (shown(view, view.mean)) } }
                div { dt { "Limits" } dd { (shown(view, view.lpl)) " to " (shown(view, view.upl)) } }
                div {
                    dt { "Updated to" }
                    dd {
                        (view.updated_to.map_or_else(|| "–".to_string(), |d| d.format("%-d %b %Y").to_string()))
                        @if view.stale { " " span class="lozenge stale" { "late" } }
                    }
                }
            }
            @if !points.is_empty() && points.len() < TRIAL_POINTS {
                p class="note" {
                    "Trial limits: only " (points.len()) " " (view.grain) "s so far. "
                    "They become more reliable as more data is added."
                }
            }
            @if let Some(error) = &view.error {
                p class="error" { (error) }
            } @else if !points.is_empty() {
                figure {
                    (view.draw_chart(&view.title, spc_chart_svg))
                    figcaption {
                        (notes_list(view))
                        p class="note downloads" {
                            "Download the chart: "
                            a href=(chart_link(link, view.grain, "svg")) download { "SVG" } " · "
                            a href=(chart_link(link, view.grain, "png")) download { "PNG" }
                        }
                        details {
                            summary { "Values (" (points.len()) " " (view.grain) "s)" }
                            (values_table(view))
                        }
                    }
                }
            }
        }
    }
}

/// The chart file of the KPI page at `link` (`/kpi/{id}?…` → `/kpi/{id}/chart.png?…`), at
/// the `grain` shown (a dashboard's default grain may not be the KPI page's).
fn chart_link(link: &str, grain: &str, extension: &str) -> String {
    let (page, query) = link.split_once('?').unwrap_or((link, ""));
    let has_grain = query.split('&').any(|pair| pair.starts_with("grain="));
    match (query.is_empty(), has_grain) {
        (true, _) => format!("{page}/chart.{extension}?grain={grain}"),
        (false, true) => format!("{page}/chart.{extension}?{query}"),
        (false, false) => format!("{page}/chart.{extension}?{query}&grain={grain}"),
    }
}

/// The chart's numbered annotations, as words.
pub(crate) fn notes_list(view: &KpiView) -> Markup {
    html! {
        @if !view.annotations.is_empty() {
            ol class="notes" {
                @for a in &view.annotations {
                    li class=(if a.kind == bright_engine::annotations::Kind::Rebase { "rebase" } else { "" }) { (a.summary()) }
                }
            }
        }
    }
}

/// The chart's values as a table: its text alternative.
pub(crate) fn values_table(view: &KpiView) -> Markup {
    html! {
        table class="values" {
            caption class="visually-hidden" { (view.title) ", by " (view.grain) }
            thead { tr { th scope="col" { "Period" } th scope="col" { "Value" } th scope="col" { "Mean" } th scope="col" { "Lower limit" } th scope="col" { "Upper limit" } th scope="col" { "Meaning" } } }
            tbody {
                @for p in view.points.iter().rev() {
                    tr {
                        th scope="row" { (p.label) }
                        td { (shown(view, p.value)) }
                        td { (shown(view, p.mean)) }
                        td { (shown(view, p.lpl)) }
                        td { (shown(view, p.upl)) }
                        td { (crate::charts::spc::meaning(p.point_type)) }
                    }
                }
            }
        }
    }
}

/// The form that sets grain, range and filters (a plain GET, so the result is a link).
pub(crate) fn filter_form(
    query: &ViewQuery,
    default_grain: Grain,
    filters: &[dashboard::FilterView],
) -> Markup {
    let grain = query.grain.unwrap_or(default_grain);
    html! {
        form class="filters" method="get" {
            @for FilterView { name: filter, values, .. } in filters {
                label {
                    @if filter == bright_engine::schema::common::ORG_CODE { "Trust" }
                    @else { (filter.replace('_', " ")) }
                    select name=(filter) {
                        option value="" { "All" }
                        @for v in values {
                            @if query.filters.get(filter) == Some(v) {
                                option value=(v) selected { (v) }
                            } @else {
                                option value=(v) { (v) }
                            }
                        }
                    }
                }
            }
            label {
                "Periods"
                select name="grain" {
                    @for g in [Grain::Day, Grain::Week, Grain::Month] {
                        @if g == grain {
                            option value=(g.as_str()) selected { (g.as_str()) }
                        } @else {
                            option value=(g.as_str()) { (g.as_str()) }
                        }
                    }
                }
            }
            label { "From" input type="date" name="from" value=(query.from.map(|d| d.to_string()).unwrap_or_default()); }
            label { "To" input type="date" name="to" value=(query.to.map(|d| d.to_string()).unwrap_or_default()); }
            button type="submit" { "Show" }
        }
    }
}

/// The icon key: every icon with its meaning.
pub(crate) fn icon_key() -> Markup {
    html! {
        section class="key" aria-labelledby="key-title" {
            h2 id="key-title" { "Key to the icons" }
            ul {
                @for icon in Icon::ALL {
                    li { (icon_svg(icon, 32)) span { (icon.title()) } }
                }
            }
        }
    }
}

/// The pages' one style sheet. NHS identity colours; text contrast at least 4.5:1.
pub(crate) const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:"Segoe UI",Arial,Helvetica,"Liberation Sans",sans-serif;margin:0;background:#f0f4f5;color:#212b32;line-height:1.4}
a{color:#005eb8}a:visited{color:#330072}
a:focus,button:focus,select:focus,input:focus,summary:focus{outline:3px solid #ffeb3b;outline-offset:0;box-shadow:0 0 0 5px #212b32}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px 8px;z-index:2}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
header.top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1.5rem;background:#005eb8;color:#fff;padding:.5rem 1rem}
header.top a{color:#fff}
.brand{font-weight:700;font-size:1.4rem;text-decoration:none}
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
header nav a[aria-current=page]{font-weight:700;text-decoration-thickness:3px}
.who{margin-left:auto;display:flex;align-items:center;gap:1rem;font-size:.9rem}
.who form{margin:0}.who button{background:#fff;color:#005eb8;border:0;padding:.3rem .7rem;font-weight:600;cursor:pointer}
main{padding:1rem 1.5rem;max-width:1400px;margin:0 auto}
h1{margin:.25rem 0 .25rem;font-size:1.8rem}h2{font-size:1.35rem;margin:1.5rem 0 .5rem}
.lead{margin:0 0 1rem;color:#4c6272}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1rem}
.panel{background:#fff;border:1px solid #d8dde0;border-radius:4px;padding:.75rem 1rem}
.panel-head{display:flex;justify-content:space-between;align-items:flex-start;gap:.5rem}
.panel-head h3{margin:0;font-size:1.15rem}
.icons{display:flex;gap:.25rem;flex-shrink:0}
.narration{margin:.5rem 0}
.note{color:#4c6272;font-size:.9rem;margin:.25rem 0}
.figures{display:flex;flex-wrap:wrap;gap:.25rem 1.5rem;margin:.25rem 0 .5rem}
.figures div{display:flex;gap:.4rem}.figures dt{color:#4c6272}.figures dd{margin:0;font-weight:600}
figure{margin:0}svg.spc-chart,svg.peers-chart{width:100%;height:auto;display:block}
#peers figure{max-width:1000px}
summary{cursor:pointer;color:#005eb8}
table{border-collapse:collapse;background:#fff}
th,td{padding:.3rem .5rem;border-bottom:1px solid #d8dde0;text-align:left;vertical-align:middle}
thead th{background:#d8dde0}
table.values{font-size:.85rem;margin-top:.5rem}
.lozenge{display:inline-block;padding:0 .45rem;border-radius:.7rem;font-size:.8rem;font-weight:600;background:#e8edee}
.lozenge.stale{background:#ffd1ad;color:#212b32}
.rooms{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr));gap:.75rem}
.room{padding:.6rem .8rem;border-radius:.3rem}.room h2{margin:0;font-size:1.6rem}.room .site{font-size:1rem;font-weight:400}
.room p{margin:.2rem 0}.room .status{font-size:1.3rem}.room .age{font-size:.85rem}
.room.stale{outline:.3rem dashed #D5281B;outline-offset:-.3rem}
.room.overrun{box-shadow:0 0 0 .35rem #DA291C}.room .warning strong{background:#DA291C;color:#fff;padding:0 .3rem}
.freshness{color:#4C6272;margin:.3rem 0}.freshness .warning{color:#D5281B}
.link{display:none;background:#D5281B;color:#fff;padding:.4rem .8rem;font-weight:600}
body.offline .link{display:block}body.offline #board{opacity:.4;filter:grayscale(1)}
.error{background:#fde8e8;border-left:6px solid #d5281b;padding:.5rem .75rem}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end;background:#fff;padding:.5rem .75rem;border:1px solid #d8dde0;margin:1rem 0}
.filters label{display:flex;flex-direction:column;font-size:.85rem;font-weight:600;text-transform:capitalize}
.filters select,.filters input{font-size:1rem;padding:.2rem}
.filters button,.button{background:#007f3b;color:#fff;border:0;padding:.4rem 1rem;font-size:1rem;font-weight:600;cursor:pointer;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1rem;padding:0;list-style:none}
.cards li{background:#fff;border:1px solid #d8dde0;border-left:6px solid #005eb8;padding:.75rem 1rem}
.cards h3{margin:0 0 .25rem}
.key ul{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:.25rem 1rem}
.key li{display:flex;align-items:center;gap:.5rem;font-size:.9rem}
.ipr td.num{text-align:right;white-space:nowrap}
.ipr th.domain{background:#005eb8;color:#fff;font-size:1.05rem}
.ipr tr.detail td{background:#f8fafb}
.ipr{width:100%}.ipr .narr{font-size:.85rem;min-width:14rem;max-width:30rem}.ipr .owner{font-size:.85rem;max-width:9rem}
.ipr tr.detail td{padding:0 .5rem .4rem;border-bottom:1px solid #d8dde0}.ipr tr.row th,.ipr tr.row td{border-bottom:0}
.ipr tr.detail summary{font-size:.85rem}
.matrix td,.matrix th{text-align:center;border:1px solid #d8dde0}
.matrix td a{display:block;min-width:4rem}
.changes{list-style:none;padding:0}.changes li{margin:.4rem 0;display:flex;align-items:center;gap:.5rem}.changes li>span:not(.icons){flex:1}
.panel figure{max-width:1000px}
.multiples{grid-template-columns:repeat(auto-fill,minmax(380px,1fr))}
.about dt{font-weight:600;margin-top:.5rem}.about dd{margin:0}
.about pre{background:#f0f4f5;padding:.75rem;overflow:auto;font-size:.85rem}
.ipr .kpi-name{min-width:11rem}
form.inline{display:inline;margin:0}
button.quiet{background:#fff;color:#005eb8;border:2px solid #005eb8;padding:.2rem .6rem;font-size:.9rem;font-weight:600;cursor:pointer}
.cards li.favourite{border-left-color:#ffb81c}.star{color:#212b32}
.title-row{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem}
.save-view{margin:.5rem 0 1rem}
.saved{list-style:none;padding:0}.saved li{display:flex;gap:1rem;align-items:center;margin:.3rem 0}
ol.notes{margin:.25rem 0;padding-left:1.6rem;font-size:.9rem}ol.notes li::marker{color:#005eb8;font-weight:700}
ol.notes li.rebase{font-weight:600}
.annotate{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:flex-end}
.annotate label{display:flex;flex-direction:column;font-size:.85rem;font-weight:600}
.annotate input{font-size:1rem;padding:.25rem}.annotate input[name=note]{min-width:22rem}
dl.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(9.5rem,1fr));gap:.5rem;margin:1rem 0}
dl.headline div{background:#fff;border:1px solid #d8dde0;border-top:5px solid #005eb8;padding:.4rem .7rem}
dl.headline dt{color:#4c6272;font-size:.9rem}dl.headline dd{margin:0;font-size:1.6rem;font-weight:700}
dl.headline dd.sub{font-size:.85rem;font-weight:400;color:#4c6272}
table.report{margin:.25rem 0 1rem;font-size:.92rem}table.report td.num{text-align:right;white-space:nowrap}
table.report thead th{vertical-align:bottom}table.trends tr:first-child>*{border-bottom:0}table.trends tr.says td{padding-top:0;font-size:.85rem;color:#4c6272}table.report tbody th{white-space:nowrap}
.sql-layout{display:grid;grid-template-columns:minmax(0,1fr) 21rem;gap:1.5rem;align-items:start}@media (max-width:60rem){.sql-layout{grid-template-columns:1fr}}
.sql-editor textarea{display:block;width:100%;font:0.95rem/1.4 ui-monospace,"DejaVu Sans Mono",Consolas,monospace;padding:.5rem;border:2px solid #4c6272;border-radius:4px;margin:.25rem 0 .5rem}
.sql-actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}.sql-actions input{padding:.35rem}
.sql-error{border-left:6px solid #d5281b;background:#fff;padding:.6rem .9rem;margin:1rem 0}
.sql-answer{overflow:auto;max-height:70vh;background:#fff}.sql-answer td.null{color:#768692;font-style:italic}
.sql-side{background:#fff;padding:.5rem 1rem;font-size:.9rem}.sql-side h2{font-size:1.05rem}.sql-side ul{padding-left:1rem;margin:.25rem 0}.sql-side .type{color:#4c6272;font-size:.8rem}.sql-side summary code{font-size:.8rem;overflow-wrap:anywhere}
.saved-queries li{display:flex;gap:.5rem;align-items:baseline}
table.icons-table td{text-align:center}table.icons-table caption{text-align:left;font-size:.85rem;color:#4c6272;padding:.25rem 0}table.icons-table .none{color:#768692;font-size:.8rem}
.downloads{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
@media print{header.top nav,.who form,.filters,.skip{display:none}body{background:#fff}.panel{break-inside:avoid}}
"#;
