//! `GET /theatres/report?date=&site=`: the theatre performance report of a day (default
//! yesterday) for one site or all ([`crate::theatre_report`]), with the SPC icons of each
//! metric's daily chart up to that day and its last seven days, and the thresholds used
//! printed on it. Its twins: `GET /api/theatres/report` (JSON), `GET /theatres/report.csv`,
//! and `GET /theatres/report/export` (one self-contained HTML file that prints on A4).
//!
//! Each morning [`spawn_daily`] makes the previous day's report for every site into the
//! reports folder (HTML and CSV), keeps its figures in the lake's `theatre_reports` table, and
//! announces it through the alert channels — nobody types it up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::Response;
use bright_engine::kpi::Grain;
use bright_engine::reads;
use bright_engine::schema::Table;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::{Deserialize, Serialize};

use super::{
    CSS, Frame, HtmlError, PageError, Pages, as_of_text, download, icon_key, icon_pair, icons,
    page, pages_for, shown, view_of, visible,
};
use crate::AppState;
use crate::alerts::{NewAlert, Severity};
use crate::auth::Client;
use crate::charts::spark::sparkline_svg;
use crate::kpis::breakdowns;
use crate::theatre_report::{RATE_KPIS, Report, Row, Thresholds, minutes, specialty_label};
use crate::view::{KpiView, Shape, kpi_view};

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default, deserialize_with = "super::blank_is_none")]
    pub date: Option<NaiveDate>,
    #[serde(default)]
    pub site: Option<String>,
}

impl ReportQuery {
    fn site(&self) -> Option<&str> {
        self.site
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// The query string of this report (for its downloads).
    fn pairs(&self, date: NaiveDate) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        pairs.append_pair("date", &date.to_string());
        if let Some(site) = self.site() {
            pairs.append_pair("site", site);
        }
        pairs.finish()
    }
}

/// A metric's daily SPC chart up to the report's day, as the report shows it.
#[derive(Debug, Serialize)]
pub struct Trend {
    pub kpi: String,
    pub title: String,
    /// The report's own figure for the day, and the catalogue KPI's value for the same day
    /// and site (they agree; the second is `None` when the day is not in the series).
    pub value: Option<f64>,
    pub kpi_value: Option<f64>,
    pub mean: Option<f64>,
    pub lpl: Option<f64>,
    pub upl: Option<f64>,
    pub variation_icon: Option<&'static str>,
    pub assurance_icon: Option<&'static str>,
    pub narration: String,
    #[serde(skip)]
    pub view: KpiView,
}

/// The report as its JSON twin answers it.
#[derive(Debug, Serialize)]
pub struct ReportView {
    #[serde(flatten)]
    pub report: Report,
    /// The day is over in the trust's time zone (a report of today is a day so far).
    pub day_complete: bool,
    pub made_at: DateTime<Utc>,
    pub trends: Vec<Trend>,
    /// Each theatre's and each specialty's icons, in the order of the report's rows.
    pub theatre_trends: Vec<RowTrends>,
    pub specialty_trends: Vec<RowTrends>,
}

/// The icons of one theatre's or specialty's daily chart of each metric up to the day.
#[derive(Debug, Serialize)]
pub struct RowTrends {
    pub site: Option<String>,
    pub theatre: Option<String>,
    pub specialty: Option<String>,
    pub label: String,
    /// One per metric, in the order of [`RATE_KPIS`].
    pub icons: Vec<Icons>,
}

/// A metric's variation and assurance icons (`None`: no chart to judge by).
#[derive(Debug, Serialize)]
pub struct Icons {
    pub kpi: &'static str,
    pub variation_icon: Option<&'static str>,
    pub assurance_icon: Option<&'static str>,
}

/// The metrics' names in the icon tables' columns.
const SHORT_TITLES: [&str; 7] = [
    "Capped utilisation",
    "Uncapped utilisation",
    "Cases per list",
    "Late starts",
    "Early finishes",
    "Turnaround",
    "Cancelled on the day",
];

/// The day a report is of when none is asked for: yesterday in the trust's time zone.
fn yesterday(pages: &Pages) -> NaiveDate {
    let today = pages.kpis.today();
    today.pred_opt().unwrap_or(today)
}

/// The report of `date` for `site` (or all), its lists read from the lake.
pub(crate) async fn build(
    pages: &Pages,
    date: NaiveDate,
    site: Option<&str>,
) -> Result<ReportView, PageError> {
    if date > pages.kpis.today() {
        return Err(PageError::BadRequest(format!(
            "{date} has not happened yet; choose a day up to today"
        )));
    }
    let day = reads::theatre_day(pages.kpis.engine(), date).await?;
    build_from(pages, date, site, &day).await
}

/// The report of `day` (the lists of `date`, already read) for `site` (or all).
async fn build_from(
    pages: &Pages,
    date: NaiveDate,
    site: Option<&str>,
    day: &reads::TheatreDay,
) -> Result<ReportView, PageError> {
    let service = &pages.kpis;
    let engine = service.engine();
    let today = service.today();
    let thresholds = Thresholds::of(engine);
    let report = Report::build(date, site, day, thresholds);
    let catalogue = engine.kpi_catalogue().ok_or(PageError::Unavailable)?;
    let chosen: Vec<(String, String)> = site
        .map(|s| vec![(bright_engine::schema::common::SITE.to_string(), s.into())])
        .unwrap_or_default();
    let after = date.succ_opt().unwrap_or(date);
    let shape = Shape {
        grain: Grain::Day,
        from: service.history_from(),
        to: Some(after),
        today: after.min(today),
    };
    let mut trends = Vec::new();
    for (id, rate) in RATE_KPIS {
        let kpi = catalogue
            .get(id)
            .map_err(|e| PageError::Failed(e.to_string()))?;
        let (view, _) = view_of(service, kpi, &chosen, shape).await?;
        let kpi_value = view
            .points
            .last()
            .filter(|p| p.start == date)
            .and_then(|p| p.value);
        trends.push(Trend {
            kpi: id.to_string(),
            title: view.title.clone(),
            value: rate(&report.total.rates),
            kpi_value,
            mean: view.mean,
            lpl: view.lpl,
            upl: view.upl,
            variation_icon: view.variation_icon,
            assurance_icon: view.assurance_icon,
            narration: view.narration.clone(),
            view,
        });
    }
    // Each theatre (a theatre is named within its site) and each specialty, on the same
    // charts broken down.
    let theatre_trends =
        row_trends(pages, site, shape, &report.by_theatre, &["site", "theatre"]).await?;
    let by_specialty: &[&str] = match site {
        Some(_) => &["site", "specialty"],
        None => &["specialty"],
    };
    let specialty_trends =
        row_trends(pages, site, shape, &report.by_specialty, by_specialty).await?;
    Ok(ReportView {
        report,
        day_complete: date < today,
        made_at: Utc::now(),
        trends,
        theatre_trends,
        specialty_trends,
    })
}

/// The icons of each metric's chart for each of `rows`, its series broken down by `by`
/// (columns of the row: `site`, `theatre`, `specialty`), kept to `site` when one is chosen.
async fn row_trends(
    pages: &Pages,
    site: Option<&str>,
    shape: Shape,
    rows: &[Row],
    by: &[&str],
) -> Result<Vec<RowTrends>, PageError> {
    let service = &pages.kpis;
    let catalogue = service
        .engine()
        .kpi_catalogue()
        .ok_or(PageError::Unavailable)?;
    let by: Vec<String> = by.iter().map(|b| b.to_string()).collect();
    let only: Vec<(String, String)> = site
        .map(|s| vec![("site".to_string(), s.to_string())])
        .unwrap_or_default();
    let key_of = |row: &Row| -> Vec<Option<String>> {
        by.iter()
            .map(|b| match b.as_str() {
                "site" => row.site.clone(),
                "theatre" => row.theatre.clone(),
                _ => row.specialty.clone(),
            })
            .collect()
    };
    let mut out: Vec<RowTrends> = rows
        .iter()
        .map(|row| RowTrends {
            site: row.site.clone(),
            theatre: row.theatre.clone(),
            specialty: row.specialty.clone(),
            label: row.label.clone(),
            icons: Vec::new(),
        })
        .collect();
    for (id, _) in RATE_KPIS {
        let kpi = catalogue
            .get(id)
            .map_err(|e| PageError::Failed(e.to_string()))?;
        let output = service.series(id, &by).await?;
        let parts = breakdowns(&output, &by, &only)?;
        let notes = service.notes(id, None);
        for (row, trends) in rows.iter().zip(out.iter_mut()) {
            let key = key_of(row);
            let view = parts
                .iter()
                .find(|p| p.key == key)
                .map(|p| kpi_view(kpi, &p.periods, shape, &notes));
            trends.icons.push(Icons {
                kpi: id,
                variation_icon: view.as_ref().and_then(|v| v.variation_icon),
                assurance_icon: view.as_ref().and_then(|v| v.assurance_icon),
            });
        }
    }
    Ok(out)
}

async fn of_query(
    state: &AppState,
    client: &Client,
    query: &ReportQuery,
) -> Result<(ReportView, chrono_tz::Tz), PageError> {
    let pages = pages_for(state, client)?;
    let date = query.date.unwrap_or_else(|| yesterday(pages));
    let view = build(pages, date, query.site()).await?;
    Ok((view, pages.kpis.time_zone()))
}

pub async fn api(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ReportQuery>,
) -> Result<Json<ReportView>, PageError> {
    Ok(Json(of_query(&state, &client, &query).await?.0))
}

/// The report's name in files: `theatre-report-2026-12-02` (`-SITE` for one site).
fn file_stem(view: &ReportView) -> String {
    let site: String = view
        .report
        .site
        .as_deref()
        .map(|s| {
            let safe: String = s
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("-{safe}")
        })
        .unwrap_or_default();
    format!("theatre-report-{}{site}", view.report.date)
}

pub async fn csv(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, HtmlError> {
    let (view, _) = of_query(&state, &client, &query).await?;
    let body = view
        .report
        .to_csv()
        .map_err(|e| PageError::Failed(e.to_string()))?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("{}.csv", file_stem(&view)),
        body,
    ))
}

pub async fn export(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, HtmlError> {
    let (view, tz) = of_query(&state, &client, &query).await?;
    Ok(download(
        "text/html; charset=utf-8",
        format!("{}.html", file_stem(&view)),
        document(&view, tz).into_string().into_bytes(),
    ))
}

pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ReportQuery>,
) -> Result<Markup, HtmlError> {
    let pages = pages_for(&state, &client)?;
    let (view, tz) = of_query(&state, &client, &query).await?;
    let pairs = query.pairs(view.report.date);
    let main = html! {
        (heading(&view))
        form class="filters" method="get" action="/theatres/report" {
            label { "Day" input type="date" name="date" value=(view.report.date) max=(pages.kpis.today()); }
            label {
                "Site"
                select name="site" {
                    option value="" selected[view.report.site.is_none()] { "All sites" }
                    @for s in &view.report.sites {
                        option value=(s) selected[view.report.site.as_deref() == Some(s.as_str())] { (s) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        p class="downloads" {
            a class="button" href={ "/theatres/report.csv?" (pairs) } download { "Download CSV" }
            " "
            a class="button" href={ "/theatres/report/export?" (pairs) } download { "Download as one HTML file" }
            " "
            button type="button" class="quiet" onclick="print()" { "Print" }
        }
        (body(&view, tz))
    };
    Ok(page(
        &Frame {
            title: "Theatre performance report",
            client: &client,
            dashboards: visible(&pages.dashboards, &client),
            current: "/theatres/report",
            as_of: as_of_text(pages.kpis.as_of(), tz),
        },
        main,
    ))
}

fn heading(view: &ReportView) -> Markup {
    let r = &view.report;
    html! {
        h1 { "Theatre performance report" }
        p class="lead" {
            strong { (r.date.format("%A %-d %B %Y")) } " · " (r.total.label)
            @if !view.day_complete { " · " strong { "the day so far" } }
        }
    }
}

/// The report itself: headline figures, trends, tables, lists, thresholds. Shared by the page
/// and the exported file.
fn body(view: &ReportView, tz: chrono_tz::Tz) -> Markup {
    let r = &view.report;
    let f = &r.total.figures;
    let rates = &r.total.rates;
    html! {
        @if f.lists_planned == 0 {
            p class="note" { "No operating lists were planned for this day" @if let Some(s) = &r.site { " at site " (s) } "." }
        }
        dl class="headline" {
            div { dt { "Capped utilisation" } dd { (percent(rates.utilisation_capped)) } dd class="sub" { "uncapped " (percent(rates.utilisation_uncapped)) } }
            div { dt { "Lists held" } dd { (f.lists_held) " of " (f.lists_planned) } dd class="sub" { (f.lists_planned - f.lists_held) " cancelled before the day" } }
            div { dt { "Cases done" } dd { (f.cases_completed) " of " (f.cases_booked) } dd class="sub" { (number(rates.cases_per_list, 1)) " per list" } }
            div { dt { "Cancelled on the day" } dd { (f.cases_cancelled) } dd class="sub" { (percent(rates.cancellations_on_day)) " of cases booked" } }
            div { dt { "Late starts" } dd { (f.late_over_grace()) } dd class="sub" { "more than " (minutes(r.thresholds.late_start_grace_min)) " min late; " (minutes(f.late_start_min.round())) " min late in all" } }
            div { dt { "Early finishes" } dd { (f.early_finishes) } dd class="sub" { (minutes(f.early_finish_min.round())) " min unused" } }
            div { dt { "Overruns" } dd { (f.overruns) } dd class="sub" { (minutes(f.overrun_min.round())) " min after planned ends" } }
            div { dt { "Mean turnaround" } dd { (number(rates.turnaround_mean_min, 0)) " min" } dd class="sub" { (f.turnarounds) " turnarounds" } }
        }
        h2 { "How the day compares" }
        p class="note" { "Each metric's daily SPC chart up to this day" @if let Some(s) = &r.site { " for site " (s) } ": its icons, mean and limits, and the last seven days." }
        table class="report trends" {
            thead { tr {
                th scope="col" { "Metric" } th scope="col" { "This day" } th scope="col" { "Mean" }
                th scope="col" { "Limits" } th scope="col" { "Variation · assurance" }
                th scope="col" { "Last 7 days" }
            } }
            @for t in &view.trends {
                // The sentence under its figures, the full width: a column of its own
                // squeezes to a word a line on paper.
                tbody {
                    tr {
                        th scope="row" { (t.title) }
                        td class="num" { (shown(&t.view, t.value)) }
                        td class="num" { (shown(&t.view, t.mean)) }
                        td class="num" { (shown(&t.view, t.lpl)) " – " (shown(&t.view, t.upl)) }
                        td { (icons(&t.view, 36)) }
                        td { (sparkline_svg(&t.view.chart_points(), 7)) }
                    }
                    tr class="says" { td colspan="6" { (t.narration) } }
                }
            }
        }
        @if r.by_site.len() > 1 {
            h2 { "By site" }
            (rows_table("By site", &r.by_site, r))
        }
        h2 { "By theatre" }
        (rows_table("By theatre", &r.by_theatre, r))
        (icons_table("How each theatre compares", &view.theatre_trends))
        h2 { "By specialty" }
        (rows_table("By specialty", &r.by_specialty, r))
        (icons_table("How each specialty compares", &view.specialty_trends))
        h2 { "Cancelled on the day, by reason" }
        @if r.cancellations.is_empty() {
            p { "No case was cancelled on the day." }
        } @else {
            table class="report reasons" {
                thead { tr { th scope="col" { "Reason" } th scope="col" { "Cases" } } }
                tbody {
                    @for c in &r.cancellations { tr { td { (c.reason) } td class="num" { (c.cases) } } }
                }
            }
        }
        h2 { "Lists" }
        (lists_table(view, tz))
        h2 { "Definitions and thresholds used" }
        dl class="about" {
            dt { "Touch time" } dd { "From anaesthesia start to the patient leaving theatre." }
            dt { "Capped utilisation" } dd { "Touch time inside each list's planned start and end, over planned list time (Model Health System). Uncapped counts all touch time, overruns included." }
            dt { "Late start" } dd { "The first patient went into the anaesthetic room more than " (minutes(r.thresholds.late_start_grace_min)) " minutes after the planned start (parameter late_start_grace_min). Bands: " (r.late_start_bands.join("; ")) "." }
            dt { "Early finish" } dd { "The last patient left theatre more than " (minutes(r.thresholds.early_finish_grace_min)) " minutes before the planned end (parameter early_finish_grace_min); the minutes from then to the planned end are unused." }
            dt { "Overrun" } dd { "The last patient left theatre after the planned end." }
            dt { "Turnaround" } dd { "From one patient leaving theatre to the next patient's anaesthesia start on the same list." }
            dt { "Cancelled on the day" } dd { "A booked case on a list held that was cancelled, with the reason the theatre system gave." }
        }
        p class="note" { "Made by bright on " (view.made_at.with_timezone(&tz).format("%-d %b %Y at %H:%M")) " from the lake's theatre lists and milestones; the figures are those of the KPI catalogue for the same day." }
    }
}

/// Each row's icons for each metric: its own daily chart up to the day, so a theatre whose
/// turnarounds have been creeping up shows it even when the day itself looked ordinary.
fn icons_table(caption: &str, rows: &[RowTrends]) -> Markup {
    html! {
        @if !rows.is_empty() {
            table class="report icons-table" {
                caption { (caption) ": the variation of each metric's daily chart up to this day (and its assurance, where the metric has a target)" }
                thead { tr {
                    th scope="col" { "" }
                    @for title in SHORT_TITLES { th scope="col" { (title) } }
                } }
                tbody {
                    @for row in rows {
                        tr {
                            th scope="row" { (row.label) }
                            @for i in &row.icons {
                                td {
                                    @if i.variation_icon.is_some() {
                                        (icon_pair(i.variation_icon, i.assurance_icon, 26, false))
                                    } @else {
                                        span class="none" { "no chart" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{:.1}%", x * 100.0))
}

fn number(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "–".into(), |x| format!("{x:.decimals$}"))
}

/// Rows of figures with the same columns at every level.
fn rows_table(caption: &str, rows: &[Row], r: &Report) -> Markup {
    html! {
        table class="report figures-table" {
            caption class="visually-hidden" { (caption) }
            thead {
                tr {
                    th scope="col" rowspan="2" { "" }
                    th scope="col" rowspan="2" { "Lists held / planned" }
                    th scope="col" rowspan="2" { "Cases done / booked" }
                    th scope="col" rowspan="2" { "Cancelled on the day" }
                    th scope="col" colspan="2" { "Utilisation" }
                    th scope="col" colspan="3" { "Late starts" }
                    th scope="col" rowspan="2" { "Early finishes (min unused)" }
                    th scope="col" rowspan="2" { "Overruns (min over)" }
                    th scope="col" rowspan="2" { "Mean turnaround" }
                }
                tr {
                    th scope="col" { "capped" } th scope="col" { "uncapped" }
                    @for band in &r.late_start_bands { th scope="col" { (band) } }
                }
            }
            tbody {
                @for row in rows {
                    @let (f, rates) = (&row.figures, &row.rates);
                    tr {
                        th scope="row" { (row.label) }
                        td class="num" { (f.lists_held) " / " (f.lists_planned) }
                        td class="num" { (f.cases_completed) " / " (f.cases_booked) }
                        td class="num" { (f.cases_cancelled) }
                        td class="num" { (percent(rates.utilisation_capped)) }
                        td class="num" { (percent(rates.utilisation_uncapped)) }
                        @for n in f.late_starts { td class="num" { (n) } }
                        td class="num" { (f.early_finishes) @if f.early_finishes > 0 { " (" (minutes(f.early_finish_min.round())) ")" } }
                        td class="num" { (f.overruns) @if f.overruns > 0 { " (" (minutes(f.overrun_min.round())) ")" } }
                        td class="num" { (number(rates.turnaround_mean_min, 0)) @if f.turnarounds > 0 { " min" } }
                    }
                }
            }
        }
    }
}

/// Every list held, in theatre order, with its times against plan.
fn lists_table(view: &ReportView, tz: chrono_tz::Tz) -> Markup {
    let hm = |t: DateTime<Utc>| t.with_timezone(&tz).format("%H:%M").to_string();
    html! {
        @if view.report.lists.is_empty() {
            p { "No list was held." }
        } @else {
            table class="report lists" {
                thead { tr {
                    th scope="col" { "Theatre" } th scope="col" { "Specialty" } th scope="col" { "Planned" }
                    th scope="col" { "First in (min vs plan)" } th scope="col" { "Last out (min vs plan)" }
                    th scope="col" { "Cases done / booked" } th scope="col" { "Capped utilisation" }
                } }
                tbody {
                    @for l in &view.report.lists {
                        tr {
                            th scope="row" { (l.theatre) @if view.report.by_site.len() > 1 { " (" (l.site) ")" } }
                            td { (specialty_label(l.specialty.as_deref())) }
                            td class="num" { (hm(l.planned_start)) "–" (hm(l.planned_end)) }
                            td class="num" {
                                @match (l.first_in, l.start_min) {
                                    (Some(t), Some(m)) => { (hm(t)) " (" (signed_minutes(m)) ")" }
                                    _ => { "–" }
                                }
                            }
                            td class="num" {
                                @match (l.last_out, l.finish_early_min) {
                                    (Some(t), Some(m)) => { (hm(t)) " (" (signed_minutes(-m)) ")" }
                                    _ => { "–" }
                                }
                            }
                            td class="num" { (l.figures.cases_completed) " / " (l.figures.cases_booked) }
                            td class="num" { (percent(l.rates.utilisation_capped)) }
                        }
                    }
                }
            }
        }
    }
}

/// Minutes against plan with their sign: `+5`, `-12`, and `0` (never `-0` for a time a few
/// seconds early).
fn signed_minutes(m: f64) -> String {
    let m = m.round();
    if m > 0.0 {
        format!("+{m:.0}")
    } else if m < 0.0 {
        format!("{m:.0}")
    } else {
        "0".to_string()
    }
}

/// The report as one file: style inline, no script, no link out; prints on A4.
fn document(view: &ReportView, tz: chrono_tz::Tz) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                title { "Theatre performance report — " (view.report.date.format("%-d %b %Y")) " — " (view.report.total.label) }
                style { (PreEscaped(CSS)) (PreEscaped(PRINT_CSS)) }
            }
            body {
                main {
                    (heading(view))
                    (body(view, tz))
                    (icon_key())
                }
            }
        }
    }
}

/// A4 landscape for the paper copy (the tables have a dozen columns): rows kept whole, the
/// page's controls gone.
pub(crate) const PRINT_CSS: &str = "@page{size:A4 landscape;margin:10mm}\
@media print{body{font-size:8.5pt}main{padding:0;max-width:none}table.report{width:100%}\
table.report tr,table.report tbody{break-inside:avoid}h2{break-after:avoid}.downloads,.filters{display:none}\
dl.headline{grid-template-columns:repeat(8,1fr)}dl.headline div{border:1px solid #999}}";

/// Where the morning run puts the reports, and when.
#[derive(Debug, Clone)]
pub struct Daily {
    pub folder: PathBuf,
    /// The trust's local time after which yesterday's report is made.
    pub at: NaiveTime,
}

/// What one morning's run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    pub html: PathBuf,
    pub csv: PathBuf,
    /// Rows added to `theatre_reports` (none when the day was already there).
    pub lake_rows: usize,
    /// The announcement raised (none when already raised, or without alerts).
    pub alert: Option<i64>,
}

/// Why a morning run failed (retried on the next wake).
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("{0:?}")]
    Page(PageError),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl From<PageError> for ProduceError {
    fn from(e: PageError) -> Self {
        ProduceError::Page(e)
    }
}

/// Makes the report of `date` for every site: its HTML and CSV files in `folder` (written
/// whole, then renamed into place), its figures in the lake (once per day), and an
/// announcement through the alert channels (once per day).
pub async fn produce(
    state: &AppState,
    folder: &Path,
    date: NaiveDate,
) -> Result<Produced, ProduceError> {
    let pages = state.pages().ok_or(PageError::Unavailable)?;
    let engine = pages.kpis.engine();
    // Read once: the report and the lake's rows are the same lists.
    let day = reads::theatre_day(engine, date)
        .await
        .map_err(PageError::from)?;
    let view = build_from(pages, date, None, &day).await?;
    let tz = pages.kpis.time_zone();
    let stem = file_stem(&view);
    let csv = view
        .report
        .to_csv()
        .map_err(|e| ProduceError::Other(e.to_string()))?;
    let html_path = folder.join(format!("{stem}.html"));
    let csv_path = folder.join(format!("{stem}.csv"));
    write_whole(&html_path, document(&view, tz).into_string().as_bytes())?;
    write_whole(&csv_path, &csv)?;
    let already = reads::theatre_report_rows(engine, date)
        .await
        .map_err(PageError::from)?;
    let mut lake_rows = 0;
    if already == 0 {
        let batch =
            crate::theatre_report::lake_rows(date, &day, view.report.thresholds, view.made_at)
                .map_err(PageError::from)?;
        lake_rows = batch.num_rows();
        if lake_rows > 0 {
            engine
                .lake()
                .append(Table::TheatreReports, vec![batch])
                .await
                .map_err(|e| ProduceError::Other(e.to_string()))?;
            engine
                .refresh_table(Table::TheatreReports)
                .await
                .map_err(PageError::from)?;
        }
    }
    let f = &view.report.total.figures;
    let alert = match state.alerts() {
        None => None,
        Some(alerts) => alerts
            .raise(
                &NewAlert {
                    kind: "theatre_report",
                    severity: Severity::Info,
                    key: format!("theatre_report:{date}"),
                    // One announcement per day reported, however often the service restarts.
                    cooldown: Duration::from_secs(366 * 24 * 3600),
                    title: format!(
                        "Theatre report for {} is ready",
                        date.format("%A %-d %B %Y")
                    ),
                    detail: format!(
                        "{} of {} lists held, {} cases done, capped utilisation {}, {} late starts, {} cancelled on the day.",
                        f.lists_held,
                        f.lists_planned,
                        f.cases_completed,
                        percent(view.report.total.rates.utilisation_capped),
                        f.late_over_grace(),
                        f.cases_cancelled
                    ),
                    link: Some(format!("/theatres/report?date={date}")),
                },
                Utc::now(),
            )
            .map_err(|e| ProduceError::Other(e.to_string()))?
            .map(|a| a.id),
    };
    Ok(Produced {
        html: html_path,
        csv: csv_path,
        lake_rows,
        alert,
    })
}

fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), ProduceError> {
    let io = |source| ProduceError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(io)?;
    std::fs::rename(&partial, path).map_err(io)
}

/// The day whose report is due at local time `now`: yesterday once `at` has passed today,
/// else the day before yesterday (made yesterday morning, unless the service was down).
pub fn due(now: chrono::NaiveDateTime, at: NaiveTime) -> NaiveDate {
    let today = now.date();
    let days_back = if now.time() >= at { 1 } else { 2 };
    today - chrono::Duration::days(days_back)
}

/// Makes each morning's report: at start the latest report due (if missing, e.g. the service
/// was down at `at`), then every day at `at`, until `stopped`. A failed run is logged and
/// retried after a few minutes.
pub fn spawn_daily(
    state: AppState,
    daily: Daily,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(tz) = state.pages().map(|p| p.kpis.time_zone()) else {
            return;
        };
        let mut done: Option<NaiveDate> = None;
        loop {
            let now = Utc::now().with_timezone(&tz).naive_local();
            let date = due(now, daily.at);
            let mut wait = until_next(now, daily.at);
            if done != Some(date) {
                match produce(&state, &daily.folder, date).await {
                    Ok(made) => {
                        tracing::info!(date = %date, html = %made.html.display(), lake_rows = made.lake_rows, "Theatre report made.");
                        done = Some(date);
                    }
                    Err(e) => {
                        tracing::error!(date = %date, error = %e, "Making the theatre report failed; retrying.");
                        wait = wait.min(Duration::from_secs(300));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    })
}

/// Time from `now` to the next `at` (local clock), at least a second.
fn until_next(now: chrono::NaiveDateTime, at: NaiveTime) -> Duration {
    let today_at = now.date().and_time(at);
    let next = if today_at > now {
        today_at
    } else {
        today_at + chrono::Duration::days(1)
    };
    (next - now)
        .to_std()
        .unwrap_or(Duration::from_secs(1))
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(d: u32, h: u32, m: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, d)
            .and_then(|d| d.and_hms_opt(h, m, 0))
            .unwrap()
    }

    #[test]
    fn minutes_against_plan_carry_their_sign_and_none_on_zero() {
        assert_eq!(signed_minutes(4.6), "+5");
        assert_eq!(signed_minutes(-12.2), "-12");
        assert_eq!(signed_minutes(-0.3), "0");
        assert_eq!(signed_minutes(0.0), "0");
    }

    #[test]
    fn yesterdays_report_is_due_once_the_morning_time_passes() {
        let at = NaiveTime::from_hms_opt(6, 30, 0).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        assert_eq!(due(local(3, 6, 29), at), day(1));
        assert_eq!(due(local(3, 6, 30), at), day(2));
        assert_eq!(due(local(3, 23, 59), at), day(2));
        assert_eq!(until_next(local(3, 6, 29), at), Duration::from_secs(60));
        assert_eq!(
            until_next(local(3, 6, 30), at),
            Duration::from_secs(24 * 3600)
        );
    }
}
