//! `GET /dashboards/{id}` and its twin `GET /api/dashboards/{id}`: a dashboard's KPIs, each
//! with its SPC chart, icons, narration and figures, for the grain, range and filters in the
//! query string. Without a filter a KPI is shown for the whole trust, with a link to its
//! breakdown (trust → site → ward or theatre); choosing a value filters every KPI that can be
//! split by it, and says so on those that cannot.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, RawQuery, State};
use maud::{Markup, html};
use serde::Serialize;

use super::{
    Frame, HtmlError, PageError, ViewQuery, as_of_text, filter_form, filter_values, kpi_panel,
    page, pages_for, view_of, visible,
};
use crate::AppState;
use crate::auth::Client;
use crate::spec::Dashboard;
use crate::view::KpiView;

/// A dashboard as its JSON twin answers it.
#[derive(Debug, Serialize)]
pub struct DashboardView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub grain: &'static str,
    pub filters: Vec<FilterView>,
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    pub sections: Vec<SectionView>,
}

#[derive(Debug, Serialize)]
pub struct FilterView {
    pub name: String,
    pub values: Vec<String>,
    pub chosen: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SectionView {
    pub title: String,
    pub kpis: Vec<KpiView>,
    /// Per KPI, the chosen filters it cannot be split by (same order as `kpis`).
    #[serde(skip)]
    pub ignored: Vec<Vec<String>>,
}

/// The dashboard `id` if `client` may see it.
pub(crate) fn find<'a>(
    dashboards: &'a crate::spec::Dashboards,
    client: &Client,
    id: &str,
) -> Result<&'a Dashboard, PageError> {
    dashboards
        .get(id)
        .filter(|d| d.visible_to(client.role))
        .ok_or_else(|| PageError::NotFound(format!("no dashboard '{id}'")))
}

/// Computes a dashboard's views for `query`.
pub(crate) async fn build(
    state: &AppState,
    client: &Client,
    dashboard: &Dashboard,
    query: &ViewQuery,
) -> Result<DashboardView, PageError> {
    let pages = pages_for(state, client)?;
    let service = &pages.kpis;
    let catalogue = service
        .engine()
        .kpi_catalogue()
        .ok_or(PageError::Unavailable)?;
    // A lake of several trusts (a region's) offers each trust on its own; the default view
    // is all of them together.
    let mut offered = dashboard.filters.clone();
    let org = bright_engine::schema::common::ORG_CODE;
    if filter_values(service, dashboard, org).await?.len() > 1 {
        offered.insert(0, org.to_string());
    }
    let chosen = query.chosen(&offered);
    let shape = query.shape(dashboard.grain, service);
    let mut filters = Vec::new();
    for name in &offered {
        filters.push(FilterView {
            name: name.clone(),
            values: filter_values(service, dashboard, name).await?,
            chosen: chosen
                .iter()
                .find(|(f, _)| f == name)
                .map(|(_, v)| v.clone()),
        });
    }
    let mut sections = Vec::new();
    for section in &dashboard.sections {
        let mut kpis = Vec::new();
        let mut ignored = Vec::new();
        for id in &section.kpis {
            let kpi = catalogue
                .get(id)
                .map_err(|e| PageError::Failed(e.to_string()))?;
            let (view, not_applied) = view_of(service, kpi, &chosen, shape).await?;
            kpis.push(view);
            ignored.push(not_applied);
        }
        sections.push(SectionView {
            title: section.title.clone(),
            kpis,
            ignored,
        });
    }
    Ok(DashboardView {
        id: dashboard.id.clone(),
        title: dashboard.title.clone(),
        description: dashboard.description.clone(),
        grain: shape.grain.as_str(),
        filters,
        as_of: service.as_of(),
        sections,
    })
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
) -> Result<Json<DashboardView>, PageError> {
    let pages = pages_for(&state, &client)?;
    let dashboard = find(&pages.dashboards, &client, &id)?;
    Ok(Json(build(&state, &client, dashboard, &query).await?))
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Query(query): Query<ViewQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let dashboard = find(&pages.dashboards, &client, &id)?;
    let view = build(&state, &client, dashboard, &query).await?;
    let chosen: Vec<String> = view
        .filters
        .iter()
        .filter_map(|f| f.chosen.as_ref().map(|v| format!("{} {v}", f.name)))
        .collect();
    let path = format!("/dashboards/{}", dashboard.id);
    let here = match raw.as_deref().filter(|q| !q.is_empty()) {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let (favourites, _) = super::favourites::own(&state, &client);
    let pinned = favourites.contains(&dashboard.id);
    let main = html! {
        div class="title-row" {
            h1 { (view.title) }
            (super::favourites::pin_button(&client, &dashboard.id, pinned, &here))
        }
        p class="lead" {
            (view.description) " "
            @if chosen.is_empty() { "Whole trust" } @else { (chosen.join(", ")) }
            ", by " (view.grain) "."
        }
        (filter_form(&query, dashboard.grain, &view.filters))
        (super::favourites::save_form(&client, &here))
        @for section in &view.sections {
            h2 { (section.title) }
            div class="panels" {
                @for (kpi, ignored) in section.kpis.iter().zip(&section.ignored) {
                    @let note = (!ignored.is_empty()).then(|| format!(
                        "Shown for the whole trust: this KPI is not split by {}.",
                        ignored.join(" or ").replace('_', " ")
                    ));
                    (kpi_panel(kpi, &kpi_link(&kpi.id, &query), note.as_deref()))
                }
            }
        }
    };
    Ok(page(
        &Frame {
            title: &view.title,
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: &path,
            as_of: as_of_text(view.as_of, pages.kpis.time_zone()),
        },
        main,
    ))
}

/// The KPI's own page, keeping the view's grain, range and filters.
pub(crate) fn kpi_link(id: &str, query: &ViewQuery) -> String {
    let mut pairs = url::form_urlencoded::Serializer::new(String::new());
    if let Some(grain) = query.grain {
        pairs.append_pair("grain", grain.as_str());
    }
    if let Some(from) = query.from {
        pairs.append_pair("from", &from.to_string());
    }
    if let Some(to) = query.to {
        pairs.append_pair("to", &to.to_string());
    }
    for (k, v) in &query.filters {
        if !v.is_empty() {
            pairs.append_pair(k, v);
        }
    }
    let q = pairs.finish();
    if q.is_empty() {
        format!("/kpi/{id}")
    } else {
        format!("/kpi/{id}?{q}")
    }
}
