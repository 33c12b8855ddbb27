//! `GET /data-quality` and its twin `GET /api/data-quality`: accuracy flagged to its owners —
//! each feed's freshness now (stale or not, since when, records and refusals since start),
//! refused records by feed and owning team over time, the latest of them with their reasons,
//! and the data-quality KPIs' charts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use bright_engine::ingest_api::FeedStatus;
use maud::{Markup, html};
use serde::Serialize;

use super::dashboard::{DashboardView, build, find, kpi_link};
use super::{
    Frame, HtmlError, PageError, ViewQuery, as_of_text, filter_form, kpi_panel, page, pages_for,
    visible,
};
use crate::AppState;
use crate::auth::Client;
use bright_engine::reads::Issue;

use crate::kpis::{LATEST_ISSUES, breakdowns};
use crate::view::kpi_view;

/// The dashboard whose KPIs the page charts.
pub(crate) const DASHBOARD: &str = "data_quality";
/// The KPI counted per feed and owner.
const REFUSED: &str = "dq_rejected_records";

#[derive(Debug, Serialize)]
pub struct DataQuality {
    pub feeds: Vec<FeedStatus>,
    /// Refused records per feed and owner: the latest period and the whole range shown.
    pub refused: Vec<Refused>,
    /// The latest refused or flagged records (of the feed chosen, if one is), newest first,
    /// with the reason their owner needs to put them right.
    pub latest: Vec<Issue>,
    #[serde(flatten)]
    pub dashboard: DashboardView,
}

#[derive(Debug, Serialize)]
pub struct Refused {
    pub feed: Option<String>,
    pub owner: Option<String>,
    pub latest_period: Option<chrono::NaiveDate>,
    pub latest: Option<f64>,
    pub total: f64,
    pub variation_icon: Option<&'static str>,
}

async fn data(
    state: &AppState,
    client: &Client,
    query: &ViewQuery,
) -> Result<DataQuality, PageError> {
    let pages = pages_for(state, client)?;
    let dashboard = find(&pages.dashboards, client, DASHBOARD)?;
    let view = build(state, client, dashboard, query).await?;
    let service = &pages.kpis;
    let mut refused = Vec::new();
    if let Some(kpi) = service
        .engine()
        .kpi_catalogue()
        .and_then(|c| c.get(REFUSED).ok())
    {
        let by = vec!["feed".to_string(), "owner".to_string()];
        let output = service.series(REFUSED, &by).await?;
        let shape = query.shape(dashboard.grain, service);
        let notes = service.notes(REFUSED, None);
        for part in breakdowns(&output, &by, &query.chosen(&["feed".to_string()]))? {
            let charted = kpi_view(kpi, &part.periods, shape, &notes);
            let mut key = part.key.into_iter();
            refused.push(Refused {
                feed: key.next().flatten(),
                owner: key.next().flatten(),
                latest_period: charted.points.last().map(|p| p.start),
                latest: charted.latest,
                total: charted.points.iter().filter_map(|p| p.value).sum(),
                variation_icon: charted.variation_icon,
            });
        }
        refused.sort_by(|a, b| b.total.total_cmp(&a.total));
    }
    let feed = query.filters.get("feed").filter(|f| !f.trim().is_empty());
    let latest = service
        .latest_issues()
        .await
        .iter()
        .filter(|i| feed.is_none_or(|f| &i.feed == f))
        .cloned()
        .collect();
    Ok(DataQuality {
        feeds: state.ingest().map(|api| api.feeds()).unwrap_or_default(),
        refused,
        latest,
        dashboard: view,
    })
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ViewQuery>,
) -> Result<Json<DataQuality>, PageError> {
    Ok(Json(data(&state, &client, &query).await?))
}

fn silence(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ViewQuery>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let dashboard = find(&pages.dashboards, &client, DASHBOARD)?;
    let page_data = data(&state, &client, &query).await?;
    let zone = pages.kpis.time_zone();
    let main = html! {
        h1 { "Data quality" }
        p class="lead" { "What each feed sent, what bright refused and why it matters to its owner." }
        h2 { "Feeds now" }
        @if page_data.feeds.is_empty() {
            p { "This service is not receiving feeds (no ingest is running)." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Feed" } th scope="col" { "Owner" } th scope="col" { "Status" }
                    th scope="col" { "Last delivery" } th scope="col" { "Silent for" }
                    th scope="col" { "Records" } th scope="col" { "Refused deliveries" }
                    th scope="col" { "Waiting for the lake" }
                } }
                tbody {
                    @for f in &page_data.feeds {
                        tr {
                            th scope="row" { (f.feed) }
                            td { (f.owner) }
                            td { @if f.stale { span class="lozenge stale" { "stale" } } @else { span class="lozenge" { "live" } } }
                            td { (f.last_delivery.as_deref().unwrap_or("none since start")) }
                            td { (silence(f.seconds_silent)) " (stale after " (silence(f.stale_after_seconds)) ")" }
                            td class="num" { (f.records) }
                            td class="num" { (f.refused) }
                            td class="num" { (f.buffered_rows) }
                        }
                    }
                }
            }
        }
        (filter_form(&query, dashboard.grain, &page_data.dashboard.filters))
        h2 { "Refused records by feed and owner" }
        @if page_data.refused.is_empty() {
            p { "No records were refused in the periods shown." }
        } @else {
            table {
                thead { tr {
                    th scope="col" { "Feed" } th scope="col" { "Owner" }
                    th scope="col" { "Latest " (page_data.dashboard.grain) } th scope="col" { "In the periods shown" }
                } }
                tbody {
                    @for r in &page_data.refused {
                        tr {
                            th scope="row" { (r.feed.as_deref().unwrap_or("–")) }
                            td { (r.owner.as_deref().unwrap_or("–")) }
                            td class="num" { (r.latest.map_or("–".to_string(), |v| format!("{v:.0}"))) }
                            td class="num" { (format!("{:.0}", r.total)) }
                        }
                    }
                }
            }
        }
        h2 { "Latest refused and flagged records" }
        @if page_data.latest.is_empty() {
            p { "Nothing refused or flagged yet." }
        } @else {
            p { "The latest " (LATEST_ISSUES) " at most, newest first, with what their owner needs to put them right." }
            table class="values" {
                thead { tr {
                    th scope="col" { "Received" } th scope="col" { "Feed" } th scope="col" { "Owner" }
                    th scope="col" { "Record" } th scope="col" { "Reason" }
                } }
                tbody {
                    @for i in &page_data.latest {
                        tr {
                            td { (i.received_at.with_timezone(&zone).format("%-d %b %Y %H:%M")) }
                            td { (i.feed) }
                            td { (i.owner.as_deref().unwrap_or("–")) }
                            td { (i.record.as_deref().unwrap_or("–")) }
                            td { (i.reason) }
                        }
                    }
                }
            }
        }
        @for section in &page_data.dashboard.sections {
            h2 { (section.title) }
            div class="panels" {
                @for kpi in &section.kpis {
                    (kpi_panel(kpi, &kpi_link(&kpi.id, &query), None))
                }
            }
        }
    };
    Ok(page(
        &Frame {
            title: "Data quality",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/data-quality",
            as_of: as_of_text(page_data.dashboard.as_of, pages.kpis.time_zone()),
        },
        main,
    ))
}
