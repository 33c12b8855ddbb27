//! `GET /` and its twin `GET /api/home`: where a person lands after signing in — the
//! dashboards their role sees, and what changed since yesterday: the KPIs whose variation or
//! assurance icon is not what it was a day earlier (judged day by day, the finest grain, so a
//! change shows the morning after it happens).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use maud::{Markup, html};
use serde::Serialize;

use super::{
    Frame, HtmlError, PageError, as_of_text, icons, page, pages_for, variation_icon, visible,
};
use crate::AppState;
use crate::auth::Client;
use crate::charts::icons::Icon;
use crate::kpis::breakdowns;
use crate::view::{KpiView, Shape, kpi_view};

#[derive(Debug, Serialize)]
pub struct Home {
    /// Favourites first, then the rest in their usual order.
    pub dashboards: Vec<DashboardLink>,
    pub saved_views: Vec<crate::users::SavedView>,
    pub changes: Arc<Vec<Change>>,
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize)]
pub struct DashboardLink {
    pub id: String,
    pub title: String,
    pub description: String,
    pub href: String,
    pub kpis: usize,
    pub favourite: bool,
}

/// The changes worked out for one refresh of the series and one day.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    today: chrono::NaiveDate,
    list: Arc<Vec<Change>>,
}

/// A KPI whose icons changed from one day to the next.
#[derive(Debug, Serialize)]
pub struct Change {
    pub id: String,
    pub title: String,
    pub before: (Option<&'static str>, Option<&'static str>),
    #[serde(skip)]
    pub now: KpiView,
    pub variation_icon: Option<&'static str>,
    pub assurance_icon: Option<&'static str>,
}

async fn build(state: &AppState, client: &Client) -> Result<Home, PageError> {
    let pages = pages_for(state, client)?;
    let service = &pages.kpis;
    let (favourites, saved_views) = super::favourites::own(state, client);
    let mut dashboards: Vec<DashboardLink> = visible(&pages.dashboards, client)
        .into_iter()
        .map(|d| DashboardLink {
            id: d.id.clone(),
            title: d.title.clone(),
            description: d.description.clone(),
            href: super::href(d),
            kpis: d.kpis().count(),
            favourite: favourites.contains(&d.id),
        })
        .collect();
    // Favourites in the order they were pinned, then the rest (a stable sort keeps theirs).
    dashboards.sort_by_key(|d| {
        favourites
            .iter()
            .position(|f| *f == d.id)
            .unwrap_or(usize::MAX)
    });
    let changes = changes(pages).await?;
    let as_of = service.as_of();
    Ok(Home {
        dashboards,
        saved_views,
        changes,
        as_of,
    })
}

/// The KPIs whose icons changed since yesterday, worked out once per refresh of the series
/// (the home page and the alert rules share it).
pub(crate) async fn changes(pages: &super::Pages) -> Result<Arc<Vec<Change>>, PageError> {
    let service = &pages.kpis;
    let today = service.today();
    let as_of = service.as_of();
    let memo = pages.changes.lock().ok().and_then(|m| m.clone());
    match memo {
        Some(memo) if memo.as_of == as_of && memo.today == today => Ok(memo.list),
        _ => {
            let list = Arc::new(changes_since_yesterday(service, today).await?);
            if let Ok(mut slot) = pages.changes.lock() {
                *slot = Some(Changes {
                    as_of,
                    today,
                    list: list.clone(),
                });
            }
            Ok(list)
        }
    }
}

/// Every KPI charted day by day up to yesterday and up to the day before: those whose icons
/// differ.
async fn changes_since_yesterday(
    service: &crate::kpis::KpiService,
    today: chrono::NaiveDate,
) -> Result<Vec<Change>, PageError> {
    let catalogue = service
        .engine()
        .kpi_catalogue()
        .ok_or(PageError::Unavailable)?;
    let mut changes = Vec::new();
    for kpi in &catalogue.kpis {
        let output = service.series(kpi.id.as_str(), &[]).await?;
        let rows = breakdowns(&output, &[], &[])?
            .into_iter()
            .next()
            .map(|b| b.periods)
            .unwrap_or_default();
        let shape = |today| Shape {
            grain: kpi.grain,
            from: service.history_from(),
            to: None,
            today,
        };
        let notes = service.notes(kpi.id.as_str(), None);
        let now = kpi_view(kpi, &rows, shape(today), &notes);
        let Some(yesterday) = today.pred_opt() else {
            continue;
        };
        let before = kpi_view(kpi, &rows, shape(yesterday), &notes);
        let icons = |v: &KpiView| (v.variation_icon, v.assurance_icon);
        if before.updated_to.is_some() && icons(&before) != icons(&now) {
            changes.push(Change {
                id: kpi.id.to_string(),
                title: kpi.title.clone(),
                before: icons(&before),
                variation_icon: now.variation_icon,
                assurance_icon: now.assurance_icon,
                now,
            });
        }
    }
    Ok(changes)
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Result<Json<Home>, PageError> {
    Ok(Json(build(&state, &client).await?))
}

fn icon_title(name: Option<&str>) -> &'static str {
    variation_icon(name).map_or("no data", Icon::title)
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let home = build(&state, &client).await?;
    let main = html! {
        h1 { "Your dashboards" }
        ul class="cards" {
            @for d in &home.dashboards {
                li class=(if d.favourite { "favourite" } else { "" }) {
                    h3 {
                        @if d.favourite { span class="star" aria-hidden="true" { "★ " } span class="visually-hidden" { "Favourite: " } }
                        a href=(d.href) { (d.title) }
                    }
                    p { (d.description) }
                    p class="note" { (d.kpis) " KPIs" }
                    (super::favourites::pin_button(&client, &d.id, d.favourite, "/"))
                }
            }
        }
        @if !home.saved_views.is_empty() {
            h2 { "Your saved views" }
            ul class="saved" {
                @for v in &home.saved_views {
                    li { a href=(v.path) { (v.label) } (super::favourites::delete_button(&client, &v.label)) }
                }
            }
        }
        h2 { "What changed since yesterday" }
        @if home.changes.is_empty() {
            p { "No KPI's variation or assurance changed since yesterday." }
        } @else {
            ul class="changes" {
                @for c in home.changes.iter() {
                    li {
                        (icons(&c.now, 32))
                        span {
                            a href=(format!("/kpi/{}?grain=day", c.id)) { (c.title) } ": "
                            (icon_title(c.before.0)) " → " strong { (icon_title(c.variation_icon)) }
                            @if c.before.1 != c.assurance_icon {
                                "; assurance " (c.before.1.unwrap_or("none")) " → " strong { (c.assurance_icon.unwrap_or("none")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(
        &Frame {
            title: "Home",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/",
            as_of: as_of_text(home.as_of, pages.kpis.time_zone()),
        },
        main,
    ))
}
