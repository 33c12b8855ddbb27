//! `GET /ipr`, its twin `GET /api/ipr`, and `GET /ipr/export`: the Integrated Performance
//! Report — every KPI of the board's dashboard, one row each, grouped by domain, with "updated
//! to" (a lozenge when late), the latest value, target, mean and limits, both icons, a
//! sparkline, the narration and the owner. Above the table, a matrix of variation × assurance
//! counts the KPIs in each cell; a cell is a link that filters the table to its KPIs
//! (`?variation=concern&assurance=fail`). Each row opens to its full chart.
//!
//! The export is the same report as one self-contained HTML file (style and SVG inline, no
//! link out, no script needed to read it), for board papers: it opens offline and prints on A4.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use super::dashboard::{DashboardView, build, find, kpi_link};
use super::{
    CSS, Frame, HtmlError, PageError, ViewQuery, as_of_text, assurance_class, download,
    filter_form, icon_key, icons, kpi_panel, page, pages_for, shown, variation_class, visible,
};
use crate::AppState;
use crate::auth::Client;
use crate::charts::spark::sparkline_svg;
use crate::spec::BOARD;
use crate::view::KpiView;

/// The matrix's columns and rows, in reading order.
const VARIATIONS: [(&str, &str); 4] = [
    ("concern", "Special cause – concerning"),
    ("common", "Common cause"),
    ("improvement", "Special cause – improving"),
    ("neutral", "Special cause – neither"),
];
const ASSURANCES: [(&str, &str); 4] = [
    ("fail", "Consistently failing the target"),
    ("hit_and_miss", "Hit and miss"),
    ("pass", "Consistently passing the target"),
    ("no_target", "No target"),
];

#[derive(Debug, Clone, Default, Deserialize)]
pub struct IprQuery {
    variation: Option<String>,
    assurance: Option<String>,
    #[serde(flatten)]
    view: ViewQuery,
}

impl IprQuery {
    fn keeps(&self, kpi: &KpiView) -> bool {
        let wanted = |chosen: &Option<String>, actual: &str| {
            chosen
                .as_deref()
                .is_none_or(|c| c.is_empty() || c == actual)
        };
        wanted(&self.variation, variation_class(kpi.variation_icon))
            && wanted(&self.assurance, assurance_class(kpi.assurance_icon))
    }
}

/// The report as its JSON twin answers it: the board's dashboard, with the matrix.
#[derive(Debug, Serialize)]
pub struct IprView {
    #[serde(flatten)]
    pub report: DashboardView,
    /// `matrix[assurance][variation]`: the KPI ids in each cell.
    pub matrix: Matrix,
    /// KPIs with no complete period to judge (outside the matrix).
    pub uncharted: Vec<String>,
}

/// KPI ids by assurance, then variation.
pub type Matrix = BTreeMap<&'static str, BTreeMap<&'static str, Vec<String>>>;

async fn report(state: &AppState, client: &Client, query: &IprQuery) -> Result<IprView, PageError> {
    let pages = pages_for(state, client)?;
    let board = find(&pages.dashboards, client, BOARD)?;
    let mut report = build(state, client, board, &query.view).await?;
    let mut matrix: Matrix = ASSURANCES
        .iter()
        .map(|(a, _)| {
            (
                *a,
                VARIATIONS.iter().map(|(v, _)| (*v, Vec::new())).collect(),
            )
        })
        .collect();
    let mut uncharted = Vec::new();
    for kpi in report.sections.iter().flat_map(|s| &s.kpis) {
        if kpi.variation_icon.is_none() {
            uncharted.push(kpi.title.clone());
        } else if let Some(cell) = matrix
            .get_mut(assurance_class(kpi.assurance_icon))
            .and_then(|row| row.get_mut(variation_class(kpi.variation_icon)))
        {
            cell.push(kpi.id.clone());
        }
    }
    for section in &mut report.sections {
        let (kpis, ignored): (Vec<_>, Vec<_>) = std::mem::take(&mut section.kpis)
            .into_iter()
            .zip(std::mem::take(&mut section.ignored))
            .filter(|(k, _)| query.keeps(k))
            .unzip();
        section.kpis = kpis;
        section.ignored = ignored;
    }
    report.sections.retain(|s| !s.kpis.is_empty());
    Ok(IprView {
        report,
        matrix,
        uncharted,
    })
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<IprQuery>,
) -> Result<Json<IprView>, PageError> {
    Ok(Json(report(&state, &client, &query).await?))
}

/// The summary matrix: a count per cell, each a link filtering the table.
fn matrix(view: &IprView, query: &IprQuery) -> Markup {
    let link = |v: &str, a: &str| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs
            .append_pair("variation", v)
            .append_pair("assurance", a);
        if let Some(grain) = query.view.grain {
            pairs.append_pair("grain", grain.as_str());
        }
        for (k, value) in &query.view.filters {
            if !value.is_empty() {
                pairs.append_pair(k, value);
            }
        }
        format!("/ipr?{}#report", pairs.finish())
    };
    html! {
        table class="matrix" {
            caption { "KPIs by variation and assurance (choose a cell to list its KPIs)" }
            thead {
                tr {
                    td {}
                    @for (_, label) in VARIATIONS { th scope="col" { (label) } }
                }
            }
            tbody {
                @for (a, a_label) in ASSURANCES {
                    tr {
                        th scope="row" { (a_label) }
                        @for (v, v_label) in VARIATIONS {
                            @let ids = view.matrix.get(a).and_then(|r| r.get(v)).map_or(0, Vec::len);
                            td {
                                @if ids > 0 {
                                    a href=(link(v, a)) aria-label={ (ids) " KPIs: " (v_label) ", " (a_label) } { (ids) }
                                } @else {
                                    span aria-label={ "none: " (v_label) ", " (a_label) } { "·" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The report's table: a domain heading row, then a row per KPI and its hidden detail row.
fn table(view: &IprView, query: &ViewQuery, links: bool) -> Markup {
    html! {
        table class="ipr" id="report" {
            caption class="visually-hidden" { "Integrated Performance Report" }
            thead {
                tr {
                    th scope="col" { "KPI" }
                    th scope="col" { "Updated to" }
                    th scope="col" { "Latest" }
                    th scope="col" { "Target" }
                    th scope="col" { "Mean" }
                    th scope="col" { "Limits" }
                    th scope="col" { "Variation · assurance" }
                    th scope="col" { "Trend" }
                    th scope="col" { "What it says" }
                    th scope="col" { "Owner" }
                }
            }
            @for section in &view.report.sections {
                tbody {
                    tr { th class="domain" colspan="10" scope="colgroup" { (section.title) } }
                    @for kpi in &section.kpis {
                        tr class="row" {
                            th scope="row" class="kpi-name" {
                                @if links {
                                    a href=(kpi_link(&kpi.id, query)) { (kpi.title) }
                                } @else {
                                    (kpi.title)
                                }
                            }
                            td class="num" {
                                (kpi.updated_to.map_or_else(|| "–".to_string(), |d| d.format("%-d %b %Y").to_string()))
                                @if kpi.stale { " " span class="lozenge stale" { "late" } }
                            }
                            td class="num" { (shown(kpi, kpi.latest)) }
                            td class="num" { (shown(kpi, kpi.target)) }
                            td class="num" { (shown(kpi, kpi.mean)) }
                            td class="num" { (shown(kpi, kpi.lpl)) " – " (shown(kpi, kpi.upl)) }
                            td { (icons(kpi, 40)) }
                            td { (sparkline_svg(&kpi.chart_points(), 12)) }
                            td class="narr" { (kpi.narration) }
                            td class="owner" { (kpi.owner) }
                        }
                        tr class="detail" {
                            td colspan="10" {
                                details {
                                    summary { "Chart of " (kpi.title) }
                                    (kpi_panel(kpi, &kpi_link(&kpi.id, query), None))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<IprQuery>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let view = report(&state, &client, &query).await?;
    let board = find(&pages.dashboards, &client, BOARD)?;
    let filtered = query.variation.as_deref().is_some_and(|v| !v.is_empty())
        || query.assurance.as_deref().is_some_and(|a| !a.is_empty());
    let mut export = url::form_urlencoded::Serializer::new(String::new());
    if let Some(grain) = query.view.grain {
        export.append_pair("grain", grain.as_str());
    }
    for (k, v) in &query.view.filters {
        if !v.is_empty() {
            export.append_pair(k, v);
        }
    }
    let export = format!("/ipr/export?{}", export.finish());
    let main = html! {
        h1 { (view.report.title) }
        p class="lead" {
            (view.report.description) " By " (view.report.grain) "; "
            a href=(export) download { "download the report as one HTML file" } "."
        }
        (filter_form(&query.view, board.grain, &view.report.filters))
        (matrix(&view, &query))
        (uncharted(&view))
        @if filtered {
            p { "Showing the KPIs of one cell. " a href="/ipr" { "Show every KPI" } }
        }
        (table(&view, &query.view, true))
        (icon_key())
    };
    Ok(page(
        &Frame {
            title: "Integrated Performance Report",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/ipr",
            as_of: as_of_text(view.report.as_of, pages.kpis.time_zone()),
        },
        main,
    ))
}

/// `GET /ipr/export`: the report as a file to keep, send and print.
pub async fn export(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<IprQuery>,
) -> Result<Response, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let view = report(&state, &client, &query).await?;
    let as_of = as_of_text(view.report.as_of, pages.kpis.time_zone());
    let made = chrono::Utc::now().with_timezone(&pages.kpis.time_zone());
    let document: Markup = html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                title { "Integrated Performance Report — " (made.format("%-d %b %Y")) }
                style { (PreEscaped(CSS)) (PreEscaped(PRINT_CSS)) }
            }
            body {
                main {
                    h1 { "Integrated Performance Report" }
                    p class="lead" { (as_of) ". Made by bright on " (made.format("%-d %b %Y at %H:%M")) ", by " (view.report.grain) "." }
                    (matrix_plain(&view))
                    (uncharted(&view))
                    (table(&view, &query.view, false))
                    (icon_key())
                }
            }
        }
    };
    Ok(download(
        "text/html; charset=utf-8",
        format!("ipr-{}.html", made.format("%Y-%m-%d")),
        document.into_string().into_bytes(),
    ))
}

/// The KPIs the matrix cannot place, named.
fn uncharted(view: &IprView) -> Markup {
    html! {
        @if !view.uncharted.is_empty() {
            p class="note" { "No complete period to judge yet: " (view.uncharted.join(", ")) "." }
        }
    }
}

/// The matrix without links (the exported file has nowhere to go).
fn matrix_plain(view: &IprView) -> Markup {
    html! {
        table class="matrix" {
            caption { "KPIs by variation and assurance" }
            thead { tr { td {} @for (_, label) in VARIATIONS { th scope="col" { (label) } } } }
            tbody {
                @for (a, a_label) in ASSURANCES {
                    tr {
                        th scope="row" { (a_label) }
                        @for (v, _) in VARIATIONS {
                            td { (view.matrix.get(a).and_then(|r| r.get(v)).map_or(0, Vec::len)) }
                        }
                    }
                }
            }
        }
    }
}

/// A4 landscape, rows kept whole.
const PRINT_CSS: &str = "@page{size:A4 landscape;margin:12mm}@media print{body{font-size:9pt}.ipr tr{break-inside:avoid}details{display:none}}";
