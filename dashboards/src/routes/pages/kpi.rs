//! `GET /kpi/{id}` and its twin `GET /api/kpi/{id}`: one KPI in depth — its chart for the
//! chosen filters, the same KPI broken down (`?by=site`, small multiples, each a link one level
//! down), the values, its definition, owner, target and where the target comes from, the SQL it
//! runs, and a rebase suggestion where the latest points form a sustained shift.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use bright_engine::annotations::{Annotation, Kind};
use bright_engine::kpi::{Grain, Kpi, pool};
use bright_engine::spc::{Rules, XmrOptions, suggest::suggest_rebase};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::dashboard::kpi_link;
use super::{
    Frame, HtmlError, PageError, ViewQuery, as_of_text, filter_form, icons, kpi_panel, org_of,
    page, pages_for, shown, splits, view_of, visible,
};
use crate::AppState;
use crate::auth::Client;
use crate::charts::funnel::{Peers, peers, peers_svg};
use crate::charts::spc::spc_chart_svg;
use crate::kpis::breakdowns;
use crate::view::{KpiView, kpi_view, period_label};
use bright_engine::schema::common::ORG_CODE;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct KpiQuery {
    /// The breakdown of the small multiples (default: the KPI's first).
    by: Option<String>,
    #[serde(flatten)]
    view: ViewQuery,
}

/// One KPI as its JSON twin answers it.
#[derive(Debug, Serialize)]
pub struct KpiPage {
    #[serde(flatten)]
    pub kpi: KpiView,
    pub breakdowns: Vec<String>,
    pub target_source: Option<String>,
    pub sql: String,
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// The breakdown of `parts`, if any.
    pub by: Option<String>,
    pub parts: Vec<Part>,
    pub rebase_suggestion: Option<RebaseView>,
    /// This KPI across the organisations in the lake for the latest complete period (when
    /// there are three or more and no filter below the organisation is chosen).
    pub peers: Option<Peers>,
    /// Every annotation of this KPI for the organisation shown, on the chart's periods or
    /// not, oldest first.
    pub notes: Vec<Annotation>,
}

/// The KPI for one value of a breakdown.
#[derive(Debug, Serialize)]
pub struct Part {
    pub value: Option<String>,
    pub kpi: KpiView,
}

/// A proposed rebase: where a new process seems to have begun.
#[derive(Debug, Serialize)]
pub struct RebaseView {
    pub from: chrono::NaiveDate,
    pub label: String,
    pub points: usize,
    pub mean: f64,
    pub lpl: f64,
    pub upl: f64,
}

/// At most this many small multiples (wards of a big trust run to dozens).
const MAX_PARTS: usize = 36;

async fn build(
    state: &AppState,
    client: &Client,
    id: &str,
    query: &KpiQuery,
) -> Result<(KpiPage, Grain), PageError> {
    let pages = pages_for(state, client)?;
    let service = &pages.kpis;
    let kpi: &Kpi = service
        .engine()
        .kpi_catalogue()
        .ok_or(PageError::Unavailable)?
        .get(id)
        .map_err(|_| PageError::NotFound(format!("no KPI '{id}'")))?;
    let default_grain = if kpi.grain == Grain::Day {
        Grain::Week
    } else {
        kpi.grain
    };
    let shape = query.view.shape(default_grain, service);
    let chosen = query.view.chosen(&splits(kpi));
    let (view, _) = view_of(service, kpi, &chosen, shape).await?;
    let by = match &query.by {
        Some(by) if by.is_empty() => None,
        Some(by) if splits(kpi).contains(by) => Some(by.clone()),
        Some(by) => {
            return Err(PageError::BadRequest(format!(
                "KPI '{id}' cannot be broken down by '{by}' (it can by: {})",
                splits(kpi).join(", ")
            )));
        }
        None => kpi
            .breakdowns
            .iter()
            .find(|b| !chosen.iter().any(|(f, _)| f == *b))
            .cloned(),
    };
    let mut parts = Vec::new();
    if let Some(by) = &by {
        let mut columns: Vec<String> = chosen.iter().map(|(f, _)| f.clone()).collect();
        columns.retain(|c| c != by);
        let only = chosen
            .iter()
            .filter(|(f, _)| f != by)
            .cloned()
            .collect::<Vec<_>>();
        columns.push(by.clone());
        let output = service.series(kpi.id.as_str(), &columns).await?;
        for part in breakdowns(&output, &columns, &only)?
            .into_iter()
            .take(MAX_PARTS)
        {
            let value = part.key.last().cloned().flatten();
            let org = if by == ORG_CODE {
                value.as_deref()
            } else {
                org_of(&chosen)
            };
            let notes = service.notes(kpi.id.as_str(), org);
            parts.push(Part {
                kpi: kpi_view(kpi, &part.periods, shape, &notes),
                value,
            });
        }
    }
    let rebase_suggestion = suggestion(kpi, &view, shape.grain.max(kpi.grain));
    let notes = service.notes(kpi.id.as_str(), org_of(&chosen));
    let peers = if chosen.iter().all(|(f, _)| f == ORG_CODE) {
        peers_of(service, kpi, shape).await?
    } else {
        None
    };
    Ok((
        KpiPage {
            breakdowns: kpi.breakdowns.clone(),
            target_source: kpi.target.as_ref().map(|t| t.source.clone()),
            sql: kpi.sql.clone(),
            as_of: service.as_of(),
            by,
            parts,
            rebase_suggestion,
            peers,
            notes,
            kpi: view,
        },
        default_grain,
    ))
}

/// `kpi` for each organisation in the lake, for the latest period all of them have complete.
async fn peers_of(
    service: &crate::kpis::KpiService,
    kpi: &Kpi,
    shape: crate::view::Shape,
) -> Result<Option<Peers>, PageError> {
    let by = [ORG_CODE.to_string()];
    let output = service.series(kpi.id.as_str(), &by).await?;
    let grain = shape.grain.max(kpi.grain);
    let mut lasts = Vec::new();
    for part in breakdowns(&output, &by, &[])? {
        let Some(org) = part.key.into_iter().next().flatten() else {
            continue;
        };
        let pooled = pool(kpi, &part.periods, grain, service.today());
        let last = pooled
            .into_iter()
            .rev()
            .find(|p| shape.to.is_none_or(|to| p.start < to) && p.value.is_some());
        if let Some(last) = last {
            lasts.push((org, last));
        }
    }
    let Some(period) = lasts.iter().map(|(_, p)| p.start).max() else {
        return Ok(None);
    };
    let rows = lasts
        .into_iter()
        .filter(|(_, p)| p.start == period)
        .filter_map(|(org, p)| Some((org, p.value?, p.numerator, p.denominator)))
        .collect();
    let proportion = kpi.unit == bright_engine::spc::narrate::Unit::Percent;
    Ok(peers(period_label(grain, period), rows, proportion))
}

/// A rebase proposal for XmR charts (the rule that finds it is Making Data Count's shift).
fn suggestion(kpi: &Kpi, view: &KpiView, grain: Grain) -> Option<RebaseView> {
    if view.chart != "xmr" {
        return None;
    }
    let values: Vec<Option<f64>> = view.points.iter().map(|p| p.value).collect();
    let options = XmrOptions {
        improvement: kpi.improvement,
        target: view.target,
        fix_after_n_points: None,
        no_screen_outliers: false,
        rules: Rules::default(),
    };
    // Rebases already recorded stand; the suggestion looks only after the last of them.
    let mut rebased = vec![false; values.len()];
    for a in view.annotations.iter().filter(|a| a.kind == Kind::Rebase) {
        if let Some(r) = rebased.get_mut(a.point) {
            *r = true;
        }
    }
    let s = suggest_rebase(&values, &rebased, &options).ok()??;
    let point = view.points.get(s.index)?;
    Some(RebaseView {
        from: point.start,
        label: period_label(grain, point.start),
        points: s.points,
        mean: s.mean,
        lpl: s.lpl,
        upl: s.upl,
    })
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<KpiQuery>,
) -> Result<Json<KpiPage>, PageError> {
    Ok(Json(build(&state, &client, &id, &query).await?.0))
}

/// A small chart of one breakdown value, linking one level down.
fn multiple(part: &Part, by: &str, query: &ViewQuery, id: &str) -> Markup {
    let name = part
        .value
        .clone()
        .unwrap_or_else(|| "(not recorded)".into());
    let mut down = query.clone();
    if let Some(value) = &part.value {
        down.filters.insert(by.to_string(), value.clone());
    }
    let points = &part.kpi.points;
    html! {
        li class="multiple" {
            div class="panel-head" {
                h3 { a href=(kpi_link(id, &down)) { (name) } }
                (icons(&part.kpi, 32))
            }
            p class="note" {
                "Latest " (shown(&part.kpi, part.kpi.latest)) "; mean " (shown(&part.kpi, part.kpi.mean))
                @if part.kpi.stale { " " span class="lozenge stale" { "late" } }
            }
            @if !points.is_empty() {
                (part.kpi.draw_chart(&format!("{} – {name}", part.kpi.title), spc_chart_svg))
            }
        }
    }
}

/// The chart as people take it away: `svg` or `png`.
#[derive(Debug, Clone, Copy)]
pub enum ChartFile {
    Svg,
    Png,
}

/// `GET /kpi/{id}/chart.svg` and `GET /kpi/{id}/chart.png`: the chart of the view the query
/// string names (filters, grain, range), notes included, as a file to download.
async fn chart_file(
    state: &AppState,
    client: &Client,
    id: &str,
    query: &KpiQuery,
    file: ChartFile,
) -> Result<Response, HtmlError> {
    let (view, _) = build(state, client, id, query).await?;
    let kpi = &view.kpi;
    let (body, content_type, extension) = match file {
        ChartFile::Svg => (
            kpi.draw_chart(&kpi.title, spc_chart_svg)
                .into_string()
                .into_bytes(),
            "image/svg+xml",
            "svg",
        ),
        ChartFile::Png => (
            kpi.draw_chart(&kpi.title, |chart| {
                crate::charts::png::spc_chart_png(chart, 2)
            })
            .map_err(|e| PageError::Failed(e.to_string()))?,
            "image/png",
            "png",
        ),
    };
    // The KPI id is a catalogue id (letters, digits, underscores), safe in a header.
    let disposition = format!("attachment; filename=\"{}.{extension}\"", kpi.id);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

pub async fn svg(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<KpiQuery>,
) -> Result<Response, HtmlError> {
    chart_file(&state, &client, &id, &query, ChartFile::Svg).await
}

pub async fn png(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<KpiQuery>,
) -> Result<Response, HtmlError> {
    chart_file(&state, &client, &id, &query, ChartFile::Png).await
}

/// The form that adds a note or a rebase to this KPI, for the view on screen.
struct NoteForm<'a> {
    id: &'a str,
    csrf: Option<&'a str>,
    /// The page's query string, to come back to the same view.
    back: &'a str,
    org: Option<&'a str>,
}

impl NoteForm<'_> {
    fn render(&self, kind: Kind, date: chrono::NaiveDate, note: &str, button: &str) -> Markup {
        let field = |name: &str| format!("{}-{}", kind.as_str(), name);
        html! {
            form class="annotate" method="post" action=(format!("/kpi/{}/annotations", self.id)) {
                @if let Some(csrf) = self.csrf {
                    input type="hidden" name=(crate::routes::login::CSRF_FIELD) value=(csrf);
                }
                input type="hidden" name="back" value=(self.back);
                input type="hidden" name="kind" value=(kind.as_str());
                @if let Some(org) = self.org {
                    input type="hidden" name="org_code" value=(org);
                }
                @if kind == Kind::Rebase {
                    input type="hidden" name="on_date" value=(date);
                } @else {
                    label for=(field("date")) { "Date" input id=(field("date")) type="date" name="on_date" value=(date) required; }
                }
                label for=(field("note")) { (note) input id=(field("note")) type="text" name="note" required maxlength="1000"; }
                button class="button" type="submit" { (button) }
            }
        }
    }
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<KpiQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let (view, default_grain) = build(&state, &client, &id, &query).await?;
    let kpi = &view.kpi;
    let mut offered = view.breakdowns.clone();
    offered.push(ORG_CODE.to_string());
    let chosen = query.view.chosen(&offered);
    let form = NoteForm {
        id: &id,
        csrf: client.csrf.as_deref(),
        back: raw.as_deref().unwrap_or(""),
        org: org_of(&chosen),
    };
    let today = pages.kpis.today();
    let main = html! {
        p class="note" { a href="/ipr" { "Integrated Performance Report" } " › " (kpi.title) }
        h1 { (kpi.title) }
        p class="lead" {
            (kpi.description) " "
            @if chosen.is_empty() { "Whole trust" } @else {
                (chosen.iter().map(|(f, v)| format!("{} {v}", f.replace('_', " "))).collect::<Vec<_>>().join(", "))
                " (" a href=(format!("/kpi/{id}")) { @if org_of(&chosen).is_some() { "all organisations" } @else { "whole trust" } } ")"
            }
            ", by " (kpi.grain) "."
        }
        (filter_form(&query.view, default_grain, &[]))
        (super::favourites::save_form(&client, &match form.back {
            "" => format!("/kpi/{id}"),
            q => format!("/kpi/{id}?{q}"),
        }))
        (kpi_panel(kpi, &kpi_link(&kpi.id, &query.view), None))
        @if let Some(s) = &view.rebase_suggestion {
            section class="panel" {
                h2 { "Has the process changed?" }
                p {
                    "The points from " strong { (s.label) } " on (" (s.points) " of them) sit on one side of the mean. "
                    "If something changed then, recalculating the limits from there would give a mean of "
                    (shown(kpi, Some(s.mean))) " with limits " (shown(kpi, Some(s.lpl))) " to " (shown(kpi, Some(s.upl))) "."
                }
                @if client.may_annotate() {
                    (form.render(Kind::Rebase, s.from, "Why (recorded with your name)", "Rebase here"))
                } @else {
                    p class="note" { "A manager can rebase the chart here, recording why." }
                }
            }
        }
        section class="panel" id="notes" {
            h2 { "Notes and rebases" }
            @if view.notes.is_empty() {
                p class="note" { "No notes on this KPI yet." }
            } @else {
                table class="values" {
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Note" } th scope="col" { "By" } th scope="col" { "Recorded" } } }
                    tbody {
                        @for n in &view.notes {
                            tr {
                                th scope="row" { (n.on_date.format("%-d %b %Y")) }
                                td { @if n.kind == Kind::Rebase { strong { "Rebased: " } } (n.note) }
                                td { (n.author) }
                                td { (n.created_at.with_timezone(&pages.kpis.time_zone()).format("%-d %b %Y %H:%M")) }
                            }
                        }
                    }
                }
            }
            @if client.may_annotate() {
                h3 { "Add a note" }
                (form.render(Kind::Note, today, "Note (what happened)", "Add note"))
            }
        }
        @if let Some(p) = &view.peers {
            section class="panel" id="peers" {
                h2 { "Among its peers, " (p.period) }
                p {
                    @if p.kind == "funnel" {
                        (p.rows.len()) " organisations. The line is the pooled value, " (shown(kpi, Some(p.centre)))
                        "; the funnels are the 95% and 99.8% limits, narrower for larger organisations. "
                        @let outside = p.rows.iter().filter(|r| r.outside).count();
                        @if outside == 0 { "No organisation is outside the 99.8% limits." }
                        @else { (outside) " outside the 99.8% limits." }
                    } @else {
                        (p.rows.len()) " organisations. Median " (shown(kpi, Some(p.median)))
                        "; the middle half from " (shown(kpi, Some(p.q1))) " to " (shown(kpi, Some(p.q3))) "."
                    }
                }
                figure {
                    (peers_svg(&kpi.title, super::unit_of(kpi), p, form.org))
                    figcaption {
                        details {
                            summary { "Values (" (p.rows.len()) " organisations)" }
                            table class="values" {
                                thead { tr { th scope="col" { "Organisation" } th scope="col" { "Value" } th scope="col" { "Denominator" } th scope="col" { "Beyond chance?" } } }
                                tbody {
                                    @for r in &p.rows {
                                        tr {
                                            th scope="row" { (r.org_code) }
                                            td { (shown(kpi, Some(r.value))) }
                                            td { (r.denominator.map_or_else(|| "–".to_string(), |d| format!("{d:.0}"))) }
                                            td { @if r.outside { "outside 99.8% limits" } @else { "–" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(by) = &view.by {
            h2 { "By " (by.replace('_', " ")) }
            p class="note" {
                "Other breakdowns: "
                @for b in view.breakdowns.iter().filter(|b| *b != by) {
                    a href=(format!("/kpi/{id}?by={b}")) { (b.replace('_', " ")) } " "
                }
            }
            ul class="cards multiples" {
                @for part in &view.parts { (multiple(part, by, &query.view, &id)) }
            }
        }
        section class="panel about" {
            h2 { "About this KPI" }
            dl {
                dt { "Definition" } dd { (kpi.definition) }
                dt { "Owner" } dd { (kpi.owner) }
                dt { "Target" } dd {
                    (shown(kpi, kpi.target))
                    @if let Some(source) = &view.target_source { " — " (source) }
                }
                @if let Some(range) = &kpi.reference_range {
                    dt { "Reference range" } dd {
                        (shown(kpi, Some(range.low))) " to " (shown(kpi, Some(range.high))) " — " (range.source)
                    }
                }
                dt { "Chart" } dd { (kpi.chart) " chart; better is " (kpi.improvement) }
            }
            details {
                summary { "The SQL it runs" }
                pre { code { (view.sql) } }
            }
        }
    };
    Ok(page(
        &Frame {
            title: &kpi.title,
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "",
            as_of: as_of_text(view.as_of, pages.kpis.time_zone()),
        },
        main,
    ))
}
