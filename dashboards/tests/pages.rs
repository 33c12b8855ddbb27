//! The pages and their JSON twins over a real lake: a simulated trust generated into Delta
//! tables, the KPI catalogue planned by DataFusion, and requests sent through the router as a
//! browser or a script would send them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bright_dashboards::alerts::Alerts;
use bright_dashboards::auth::{ClientConfig, Clients, token_sha256};
use bright_dashboards::kpis::KpiService;
use bright_dashboards::spec::Dashboards;
use bright_dashboards::users::{Role, SessionLimits, UserStore};
use bright_dashboards::{AppState, PUBLIC_PATHS, protected_routes, router};
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::batch::BatchBuilder;
use bright_engine::kpi::Catalogue;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_engine::schema::Table;
use bright_engine::spc::narrate::Unit;
use bright_sim::SimConfig;
use bright_sim::lake_sink::{generate_into_lake, simulation_key};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tower::ServiceExt;

#[path = "../../engine/tests/data/escapes.rs"]
mod escapes;

const READER: &str = "t-reader-0123456789";
const FEEDER: &str = "t-feeder-0123456789";
const ANNOTATOR: &str = "t-annotator-0123456789";
const NOTEBOOK: &str = "t-notebook-0123456789";

struct Site {
    state: AppState,
    theatre_cookie: String,
    /// The theatre lead's session's CSRF token (a role that may not annotate).
    theatre_csrf: String,
    manager_cookie: String,
    manager_csrf: String,
    analyst_cookie: String,
    analyst_csrf: String,
    config: SimConfig,
    dir: tempfile::TempDir,
}

/// A trust simulated for 100 days up to yesterday, served with pages.
async fn site() -> Site {
    site_of(SimConfig::new(7, 100, chrono::Utc::now().date_naive())).await
}

/// The hospital `config` simulates, served with pages.
async fn site_of(config: SimConfig) -> Site {
    let dir = tempfile::tempdir().expect("a folder");
    let lake = Lake::open(dir.path().join("lake").to_str().expect("utf-8")).expect("a lake");
    generate_into_lake(config.clone(), simulation_key(7), &lake, Box::new(|_| {}))
        .await
        .expect("the simulation fills the lake");
    lake.ensure_tables().await.expect("every table");
    let (engine, catalogue) = engine_over(&lake).await;
    let dashboards = Dashboards::load(&catalogue, None).expect("dashboards");
    // The simulator's first reported day is where its history is complete.
    let kpis = Arc::new(
        KpiService::new(Arc::new(engine), QueryConfig::default().time_zone)
            .with_history_from(Some(config.first_day())),
    );
    let client = |name: &str, token: &str, scopes: &[&str]| ClientConfig {
        name: name.into(),
        token_sha256: token_sha256(token),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        expires: None,
    };
    let clients = Clients::new(&[
        client("board-pack", READER, &["read"]),
        client("ed-system", FEEDER, &["ingest:ed_attendances"]),
        client("improvement-bot", ANNOTATOR, &["read", "annotate"]),
        client("notebook", NOTEBOOK, &["sql"]),
    ])
    .expect("clients");
    let store = UserStore::open(&dir.path().join("users.sqlite3")).expect("store");
    let theatre = store
        .add("theatre.lead", Role::Theatre, "correct horse battery")
        .expect("added");
    let (token, theatre_session) = store
        .start_session(&theatre, chrono::Utc::now().timestamp())
        .expect("a session");
    let manager = store
        .add("flow.manager", Role::Manager, "correct horse battery")
        .expect("added");
    let (manager_token, manager_session) = store
        .start_session(&manager, chrono::Utc::now().timestamp())
        .expect("a session");
    let analyst = store
        .add("data.analyst", Role::Analyst, "correct horse battery")
        .expect("added");
    let (analyst_token, analyst_session) = store
        .start_session(&analyst, chrono::Utc::now().timestamp())
        .expect("a session");
    let state = AppState::new("lake", clients, 1 << 20, None)
        .with_users(Arc::new(store), SessionLimits::default())
        .with_pages(kpis, Arc::new(dashboards));
    Site {
        state,
        theatre_cookie: format!("bright_session={}", token.0),
        theatre_csrf: theatre_session.csrf,
        manager_cookie: format!("bright_session={}", manager_token.0),
        manager_csrf: manager_session.csrf,
        analyst_cookie: format!("bright_session={}", analyst_token.0),
        analyst_csrf: analyst_session.csrf,
        config,
        dir,
    }
}

/// A query engine over `lake` with the KPI catalogue planned.
async fn engine_over(lake: &Lake) -> (QueryEngine, Catalogue) {
    let mut engine = QueryEngine::open(lake, &QueryConfig::default())
        .await
        .expect("engine");
    let catalogue = Catalogue::embedded().expect("catalogue");
    engine
        .register_kpis(catalogue.clone(), &BTreeMap::new())
        .await
        .expect("every KPI plans");
    (engine, catalogue)
}

async fn get(state: &AppState, path: &str, auth: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(path);
    match auth {
        Some(cookie) if cookie.starts_with("bright_session=") => {
            request = request.header("cookie", cookie)
        }
        Some(token) => request = request.header("authorization", format!("Bearer {token}")),
        None => {}
    }
    send(state, request.body(Body::empty()).expect("request")).await
}

async fn json(state: &AppState, path: &str) -> Value {
    let (status, body) = get(state, path, Some(READER)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

async fn html(state: &AppState, path: &str) -> String {
    let (status, body) = get(state, path, Some(READER)).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
    body
}

/// What maud makes of text in HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn shown(kpi: &Value, field: &str) -> String {
    let unit: Unit = kpi["unit"].as_str().expect("unit").parse().expect("a unit");
    kpi[field]
        .as_f64()
        .map_or_else(|| "–".to_string(), |x| unit.format(x))
}

#[tokio::test]
async fn every_page_shows_what_its_json_twin_says() {
    let site = site().await;
    let state = &site.state;
    let catalogue = Catalogue::embedded().expect("catalogue");

    // The IPR: every KPI once, grouped in the board's six domains, each with the same
    // numbers, icons and narration as its twin.
    let ipr = json(state, "/api/ipr").await;
    let sections = ipr["sections"].as_array().expect("sections");
    let titles: Vec<&str> = sections
        .iter()
        .filter_map(|s| s["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Emergency department",
            "Flow and beds",
            "Theatres",
            "Workforce",
            "Finance",
            "Data quality"
        ]
    );
    let kpis: Vec<&Value> = sections
        .iter()
        .flat_map(|s| s["kpis"].as_array().expect("kpis"))
        .collect();
    assert_eq!(kpis.len(), catalogue.kpis.len());
    let page = html(state, "/ipr").await;
    assert!(
        page.contains("Data as of "),
        "the page says how fresh it is"
    );
    assert!(page.contains("Key to the icons"));
    let mut uncharted = Vec::new();
    for kpi in &kpis {
        let id = kpi["id"].as_str().expect("id");
        assert!(kpi["error"].is_null(), "{id}: {}", kpi["error"]);
        assert!(
            page.contains(&escaped(kpi["title"].as_str().expect("title"))),
            "{id}"
        );
        assert!(
            page.contains(&escaped(kpi["narration"].as_str().expect("narration"))),
            "{id}"
        );
        assert!(
            page.contains(&format!("id=\"kpi-{id}\"")),
            "{id} has its chart"
        );
        if kpi["points"].as_array().expect("points").is_empty() {
            uncharted.push(id);
        } else {
            assert!(page.contains(&shown(kpi, "latest")), "{id}");
            assert!(page.contains(&shown(kpi, "mean")), "{id}");
            assert!(kpi["variation_icon"].is_string(), "{id}");
        }
    }
    // Finance is monthly and 100 days hold three complete months: every KPI has points,
    // refused records too (the simulator's feeds send a few bad records).
    assert!(uncharted.is_empty(), "{uncharted:?}");
    // A KPI with no data for the view (a trust the lake does not hold) says so rather than
    // drawing zeros it was never sent.
    let refused = json(
        state,
        "/api/kpi/dq_rejected_records?grain=month&org_code=XZZ",
    )
    .await;
    assert!(refused["points"].as_array().expect("points").is_empty());
    assert!(refused["stale"].as_bool().expect("stale"));
    assert!(
        refused["narration"]
            .as_str()
            .expect("narration")
            .contains("has no data for a complete month"),
        "{}",
        refused["narration"]
    );
    // Monthly points are pooled: four-hour performance's value is Σleft in 4h ÷ Σleft.
    let four_hours = kpis
        .iter()
        .find(|k| k["id"] == "ed_4h_performance")
        .expect("on the IPR");
    for p in four_hours["points"].as_array().expect("points") {
        let (n, d, v) = (
            p["numerator"].as_f64().expect("n"),
            p["denominator"].as_f64().expect("d"),
            p["value"].as_f64().expect("v"),
        );
        assert!((v - n / d).abs() < 1e-12, "{p}");
    }

    // The matrix counts every KPI once, and a cell's link lists exactly its KPIs.
    let matrix = ipr["matrix"].as_object().expect("matrix");
    let cells: Vec<(String, String, usize)> = matrix
        .iter()
        .flat_map(|(a, row)| {
            row.as_object()
                .expect("row")
                .iter()
                .map(move |(v, ids)| (a.clone(), v.clone(), ids.as_array().map_or(0, Vec::len)))
        })
        .collect();
    assert_eq!(ipr["uncharted"], serde_json::json!([]));
    // A range before the history has nothing to judge, and the report says so.
    let before = format!("/ipr?to={}", site.config.first_day());
    let empty = json(state, &format!("/api{before}")).await;
    assert_eq!(
        empty["uncharted"].as_array().map(Vec::len),
        Some(kpis.len()),
        "{}",
        empty["uncharted"]
    );
    assert!(
        html(state, &before)
            .await
            .contains("No complete period to judge yet")
    );
    assert_eq!(cells.iter().map(|c| c.2).sum::<usize>(), kpis.len());
    let (a, v, n) = cells.iter().max_by_key(|c| c.2).expect("a cell");
    let one_cell = json(state, &format!("/api/ipr?variation={v}&assurance={a}")).await;
    let listed: usize = one_cell["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["kpis"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(listed, *n);
    let page = html(state, &format!("/ipr?variation={v}&assurance={a}")).await;
    assert_eq!(page.matches("<tr class=\"row\">").count(), *n);

    // The export stands alone: no script, no style sheet or image fetched from anywhere.
    let response = router(state.clone())
        .oneshot(
            Request::get("/ipr/export")
                .header("authorization", format!("Bearer {READER}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"ipr-"),
        "{disposition}"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    let export = String::from_utf8(bytes.to_vec()).expect("utf-8");
    for outside in ["<script", "<link", " src=", "href=\"http", "url("] {
        assert!(!export.contains(outside), "the export holds {outside}");
    }
    assert!(export.contains("<svg"), "charts and icons are inline");
    for kpi in &kpis {
        assert!(export.contains(&escaped(kpi["title"].as_str().expect("t"))));
    }

    // A dashboard filtered by site: the filter's values are the sites, and KPIs split by
    // site differ from the whole trust.
    let flow = json(state, "/api/dashboards/flow").await;
    // One trust: no trust to choose.
    assert_eq!(flow["filters"][0]["name"], "site", "{}", flow["filters"]);
    let sites: Vec<String> = flow["filters"][0]["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(sites.len() >= 2, "{sites:?}");
    let one_site = json(state, &format!("/api/dashboards/flow?site={}", sites[0])).await;
    assert_eq!(one_site["filters"][0]["chosen"], sites[0].as_str());
    let admissions = |d: &Value| {
        d["sections"]
            .as_array()
            .expect("sections")
            .iter()
            .flat_map(|s| s["kpis"].as_array().expect("kpis"))
            .find(|k| k["id"] == "emergency_admissions")
            .expect("on the flow dashboard")["latest"]
            .as_f64()
            .expect("a latest value")
    };
    assert!(admissions(&one_site) < admissions(&flow));
    let page = html(
        state,
        &format!("/dashboards/flow?site={}&grain=month", sites[0]),
    )
    .await;
    assert!(page.contains(&format!("option value=\"{}\" selected", sites[0])));
    assert!(page.contains("option value=\"month\" selected"));

    // One KPI in depth, broken down by ward: small multiples, its SQL, its definition.
    let beds = json(state, "/api/kpi/bed_occupancy_ga?by=ward").await;
    assert!(beds["parts"].as_array().expect("parts").len() >= 3);
    assert!(beds["sql"].as_str().expect("sql").contains("SELECT"));
    let page = html(state, "/kpi/bed_occupancy_ga?by=ward").await;
    assert!(page.contains("The SQL it runs") && page.contains("About this KPI"));
    let (status, body) = get(state, "/api/kpi/bed_occupancy_ga?by=colour", Some(READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("'colour'"), "{body}");
    // People get a page with a way back; scripts get JSON.
    let (status, page) = get(state, "/kpi/no_such_kpi", Some(READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        page.starts_with("<!DOCTYPE html>") && page.contains("no KPI 'no_such_kpi'"),
        "{page}"
    );
    assert!(page.contains("Back to your dashboards"), "{page}");
    let (status, body) = get(state, "/api/kpi/no_such_kpi", Some(READER)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["error"],
        "no KPI 'no_such_kpi'"
    );
    let (status, _) = get(state, "/api/ipr?grain=fortnight", Some(READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Three months of finance are trial limits, and the page says so.
    let page = html(state, "/dashboards/finance").await;
    assert_eq!(
        page.matches("Trial limits: only 3 months so far.").count(),
        3
    );
    let page = html(state, "/dashboards/ed").await;
    assert!(!page.contains("Trial limits"), "14 weeks of ED are enough");

    // Home and data quality.
    let page = html(state, "/").await;
    assert!(page.contains("Your dashboards") && page.contains("What changed since yesterday"));
    let home = json(state, "/api/home").await;
    assert_eq!(home["dashboards"].as_array().expect("list").len(), 7);
    let page = html(state, "/data-quality").await;
    assert!(page.contains("Refused records by feed and owner"));
    // The latest refusals, newest first, each with its reason for the feed's owner.
    let quality = json(state, "/api/data-quality").await;
    let latest = quality["latest"].as_array().expect("latest");
    assert_eq!(
        latest.len(),
        bright_dashboards::kpis::LATEST_ISSUES,
        "{quality}"
    );
    let received: Vec<&str> = latest
        .iter()
        .map(|i| i["received_at"].as_str().expect("a time"))
        .collect();
    assert!(received.windows(2).all(|w| w[0] >= w[1]), "{received:?}");
    for issue in latest {
        let reason = issue["reason"].as_str().expect("a reason");
        assert!(page.contains(&escaped(reason)), "{reason}");
        assert!(issue["owner"].is_string(), "{issue}");
    }
    let ed_only = json(state, "/api/data-quality?feed=ed_attendances").await;
    let ed_latest = ed_only["latest"].as_array().expect("latest");
    assert!(!ed_latest.is_empty());
    assert!(
        ed_latest
            .iter()
            .all(|i| i["feed"] == "ed_attendances" && i["owner"] == "ED systems team"),
        "{ed_latest:?}"
    );

    // Roles decide what a person sees: a theatre lead has theatres, not the ED dashboard.
    let cookie = site.theatre_cookie.as_str();
    let (status, body) = get(state, "/api/home", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let home: Value = serde_json::from_str(&body).expect("json");
    let ids: Vec<&str> = home["dashboards"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert_eq!(ids, ["theatres"]);
    let (status, _) = get(state, "/dashboards/ed", Some(cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, page) = get(state, "/dashboards/theatres", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("name=\"csrf\""),
        "the sign-out form carries its token"
    );

    // A client without the read scope sees no page.
    let (status, _) = get(state, "/api/ipr", Some(FEEDER)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_route_opens_without_a_token_or_a_session() {
    let clients = Clients::new(&[]).expect("no clients");
    let state = AppState::new("lake", clients, 1024, None);
    let routes = protected_routes(&state);
    assert!(routes.len() >= 13, "every page and twin is listed");
    for (path, _) in routes {
        let path = path
            .replace("{feed}", "ed_attendances")
            .replace("{id}", "ed");
        for method in ["GET", "POST", "HEAD"] {
            for credentials in [None, Some("bright_session=made-up"), Some("t-guess")] {
                let mut request = Request::builder().method(method).uri(&path);
                match credentials {
                    Some(c) if c.contains('=') => request = request.header("cookie", c),
                    Some(token) => {
                        request = request.header("authorization", format!("Bearer {token}"))
                    }
                    None => {}
                }
                let response = router(state.clone())
                    .oneshot(request.body(Body::empty()).expect("request"))
                    .await
                    .expect("answered");
                let status = response.status();
                let to_login = status == StatusCode::SEE_OTHER
                    && response.headers()["location"]
                        .to_str()
                        .is_ok_and(|l| l.starts_with("/login?next="));
                assert!(
                    status == StatusCode::UNAUTHORIZED
                        || status == StatusCode::METHOD_NOT_ALLOWED
                        || to_login,
                    "{method} {path} with {credentials:?}: {status}"
                );
                // Pages send people to sign in; the API answers 401 to scripts.
                if method == "GET"
                    && credentials != Some("t-guess")
                    && status != StatusCode::METHOD_NOT_ALLOWED
                {
                    assert_eq!(
                        to_login,
                        !path.starts_with("/api/"),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    for path in PUBLIC_PATHS {
        let response = router(state.clone())
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("answered");
        assert!(
            response.status() == StatusCode::OK
                || response.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{path}: {}",
            response.status()
        );
    }
}

/// Sends `request` through the router: its status, and its `location` or body.
async fn send(state: &AppState, request: Request<Body>) -> (StatusCode, String) {
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("answered");
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap_or_default().to_string());
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    let body = String::from_utf8(bytes.to_vec()).expect("utf-8");
    (status, location.unwrap_or(body))
}

fn form_post(path: &str, cookie: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Request::post(path)
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request")
}

fn json_post(path: &str, token: &str, body: &Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn managers_annotate_and_rebase_and_every_chart_shows_it() {
    let site = site().await;
    let state = &site.state;

    // The simulator annotated the change it planted in the ED, on its day.
    let planted = bright_sim::Changes::planted(&site.config);
    let listed = json(state, "/api/annotations?kpi=ed_4h_performance").await;
    let notes = listed["annotations"].as_array().expect("a list");
    assert_eq!(notes.len(), 1, "{listed}");
    assert_eq!(notes[0]["on_date"], planted.ed_staffing.to_string());
    assert_eq!(notes[0]["author"], "bright simulator");
    let page = json(state, "/api/kpi/ed_4h_performance?grain=week").await;
    let on_chart = page["annotations"].as_array().expect("annotations");
    assert_eq!(on_chart.len(), 1, "{on_chart:?}");
    let point = on_chart[0]["point"].as_u64().expect("a point") as usize;
    let start = page["points"][point]["start"].as_str().expect("a start");
    assert!(start <= planted.ed_staffing.to_string().as_str());
    let body = html(state, "/kpi/ed_4h_performance").await;
    assert!(
        body.contains(r#"<g class="note"><title>1. "#),
        "marker on the chart"
    );
    assert!(body.contains("More senior ED staff at the front door"));
    // A viewer is not offered the forms.
    assert!(!body.contains("Add note"));

    // A manager's page offers them; a form post needs the session's CSRF token.
    let (status, manager_page) = get(
        state,
        "/kpi/bed_occupancy_ga?grain=month",
        Some(&site.manager_cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(manager_page.contains("Add note"), "form for managers");
    assert!(
        manager_page.contains(&site.manager_csrf),
        "form carries its token"
    );
    let annotate = |cookie: &str, fields: &[(&str, &str)]| {
        send(
            state,
            form_post("/kpi/bed_occupancy_ga/annotations", cookie, fields),
        )
    };
    let day = (chrono::Utc::now().date_naive() - chrono::Duration::days(40)).to_string();
    let note = [
        ("on_date", day.as_str()),
        ("note", "Escalation ward closed"),
        ("kind", "note"),
        ("back", "grain=month"),
    ];
    let (status, _) = annotate(&site.manager_cookie, &note).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let wrong = [note.as_slice(), &[("csrf", "0123456789abcdef")]].concat();
    let (status, _) = annotate(&site.manager_cookie, &wrong).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "someone else's token");
    let theatre = [note.as_slice(), &[("csrf", site.theatre_csrf.as_str())]].concat();
    let (status, body) = annotate(&site.theatre_cookie, &theatre).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a theatre lead: {body}");
    assert!(body.contains("only managers"), "{body}");
    let signed = [note.as_slice(), &[("csrf", site.manager_csrf.as_str())]].concat();
    let (status, location) = annotate(&site.manager_cookie, &signed).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
    assert_eq!(location, "/kpi/bed_occupancy_ga?grain=month#notes");
    let page = json(state, "/api/kpi/bed_occupancy_ga?grain=month").await;
    assert!(page["peers"].is_null(), "one trust has no peers");
    assert_eq!(page["notes"][0]["note"], "Escalation ward closed");
    assert_eq!(page["notes"][0]["author"], "flow.manager");
    assert_eq!(page["annotations"][0]["kind"], "note");
    // Every chart of the KPI shows it: its dashboard too.
    let flow = html(state, "/dashboards/flow").await;
    assert!(
        flow.contains("Escalation ward closed (flow.manager)"),
        "on the flow dashboard"
    );

    // A script with the annotate scope records a rebase; the chart starts a new process there.
    let before = json(state, "/api/kpi/ed_attendances?grain=week").await;
    let points = before["points"].as_array().expect("points");
    let middle = points.len() / 2;
    let from = points[middle]["start"].as_str().expect("start").to_string();
    assert!(points.iter().all(|p| p["rebase_group"] == 0));
    let rebase = serde_json::json!({
        "kpi": "ed_attendances", "on_date": from, "kind": "rebase",
        "note": "New minor injuries unit takes walk-ins",
    });
    let (status, body) = send(state, json_post("/api/annotations", READER, &rebase)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "read-only client: {body}");
    let (status, body) = send(state, json_post("/api/annotations", ANNOTATOR, &rebase)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stored: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(stored["author"], "improvement-bot");
    assert_eq!(stored["kind"], "rebase");
    let after = json(state, "/api/kpi/ed_attendances?grain=week").await;
    let groups: Vec<u64> = after["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["rebase_group"].as_u64().expect("a group"))
        .collect();
    assert!(groups[..middle].iter().all(|g| *g == 0), "{groups:?}");
    assert!(groups[middle..].iter().all(|g| *g == 1), "{groups:?}");
    let body = html(state, "/kpi/ed_attendances").await;
    assert!(
        body.contains(r#"<g class="note rebase">"#),
        "rebase drawn solid"
    );
    assert!(body.contains("Rebased: New minor injuries unit takes walk-ins"));

    // Bad input is refused with the reason, and nothing is stored.
    for (bad, reason) in [
        (
            serde_json::json!({"kpi": "ed_attendances", "on_date": "2025-13-01", "note": "x"}),
            "not a date",
        ),
        (
            serde_json::json!({"kpi": "ed_attendances", "on_date": from, "note": "   "}),
            "needs a note",
        ),
        (
            serde_json::json!({"kpi": "no_such_kpi", "on_date": from, "note": "x"}),
            "no KPI",
        ),
        (
            serde_json::json!({"kpi": "ed_attendances", "on_date": from, "note": "x", "kind": "delete"}),
            "unknown kind",
        ),
        (
            serde_json::json!({"kpi": "ed_attendances", "on_date": "1900-01-01", "note": "x"}),
            "a note is about a day",
        ),
    ] {
        let (status, body) = send(state, json_post("/api/annotations", ANNOTATOR, &bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body.contains(reason), "{bad}: {body}");
    }

    // They are in the lake: a fresh engine reads them, and SQL sees the table.
    let lake = Lake::open(site.dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
    let (engine, _) = engine_over(&lake).await;
    let stored = bright_engine::annotations::read_all(&engine)
        .await
        .expect("reads");
    assert_eq!(stored.len(), 5, "three planted, a note and a rebase");
    assert!(
        stored
            .iter()
            .any(|a| a.note == "Escalation ward closed" && a.author == "flow.manager")
    );
    let counted = engine
        .sql("SELECT count(*) AS n FROM annotations WHERE kind = 'rebase'")
        .await
        .expect("SQL over annotations");
    let n = arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(
        counted.batches[0].column(0),
    )
    .value(0);
    assert_eq!(n, 1, "the rebase, by SQL");
}

async fn home_of(state: &AppState, cookie: &str) -> Value {
    let (status, body) = get(state, "/api/home", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[tokio::test]
async fn people_pin_favourites_and_save_views_of_their_own() {
    let site = site().await;
    let state = &site.state;
    let cookie = site.manager_cookie.as_str();
    let csrf = site.manager_csrf.as_str();
    let first = home_of(state, cookie).await;
    let order = |home: &Value| -> Vec<String> {
        home["dashboards"]
            .as_array()
            .expect("dashboards")
            .iter()
            .map(|d| d["id"].as_str().expect("id").to_string())
            .collect()
    };
    let before = order(&first);
    let last = before.last().expect("dashboards").clone();
    assert_ne!(before[0], last);

    // Pinning the last dashboard puts it first, for this person only.
    let pin = [
        ("dashboard", last.as_str()),
        ("pinned", "true"),
        ("back", "/"),
    ];
    let (status, _) = send(state, form_post("/favourites", cookie, &pin)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token");
    let signed = [pin.as_slice(), &[("csrf", csrf)]].concat();
    let (status, location) = send(state, form_post("/favourites", cookie, &signed)).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/"));
    let pinned = home_of(state, cookie).await;
    assert_eq!(order(&pinned)[0], last);
    assert_eq!(pinned["dashboards"][0]["favourite"], true);
    let (_, page) = get(state, "/", Some(cookie)).await;
    assert!(page.contains("Favourite: "), "the pin is said in words too");
    let unknown = [("dashboard", "no-such"), ("pinned", "true"), ("csrf", csrf)];
    let (status, _) = send(state, form_post("/favourites", cookie, &unknown)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A view with its filters, saved under a name, listed at home, opened by its link.
    let view = [
        ("label", "ED weekly"),
        ("path", "/dashboards/ed?grain=week"),
        ("csrf", csrf),
    ];
    let (status, location) = send(state, form_post("/views", cookie, &view)).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/dashboards/ed?grain=week")
    );
    let saved = home_of(state, cookie).await;
    assert_eq!(saved["saved_views"][0]["label"], "ED weekly");
    let (_, page) = get(state, "/", Some(cookie)).await;
    assert!(page.contains(r#"<a href="/dashboards/ed?grain=week">ED weekly</a>"#));
    let (_, dashboard) = get(state, "/dashboards/ed?grain=week", Some(cookie)).await;
    assert!(
        dashboard.contains(r#"name="path" value="/dashboards/ed?grain=week""#),
        "the save form carries the view on screen"
    );
    let outside = [
        ("label", "elsewhere"),
        ("path", "https://example.org/"),
        ("csrf", csrf),
    ];
    let (status, body) = send(state, form_post("/views", cookie, &outside)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let delete = [("label", "ED weekly"), ("back", "/"), ("csrf", csrf)];
    let (status, _) = send(state, form_post("/views/delete", cookie, &delete)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        home_of(state, cookie).await["saved_views"],
        serde_json::json!([])
    );

    // Another person's home is their own; an API client has none.
    let (_, theirs) = get(state, "/api/home", Some(&site.theatre_cookie)).await;
    assert!(theirs.contains(r#""saved_views":[]"#), "{theirs}");
    assert!(!theirs.contains(r#""favourite":true"#), "{theirs}");
    let request = Request::post("/favourites")
        .header("authorization", format!("Bearer {READER}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("dashboard=ed&pinned=true"))
        .expect("request");
    let (status, _) = send(state, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn each_chart_downloads_as_svg_and_png_of_the_view_on_screen() {
    let site = site().await;
    let state = &site.state;
    let page = html(state, "/dashboards/ed").await;
    assert!(
        page.contains("/kpi/ed_4h_performance/chart.png?grain="),
        "each panel links its chart files at the grain shown"
    );
    let fetch = |path: &'static str| async move {
        let response = router(state.clone())
            .oneshot(
                Request::get(path)
                    .header("authorization", format!("Bearer {READER}"))
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("answered");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .expect("body");
        (status, headers, bytes)
    };
    let (status, headers, svg) = fetch("/kpi/ed_4h_performance/chart.svg?grain=week").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/svg+xml");
    assert_eq!(
        headers["content-disposition"],
        r#"attachment; filename="ed_4h_performance.svg""#
    );
    let svg = String::from_utf8(svg.to_vec()).expect("utf-8");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(
        svg.contains("More senior ED staff"),
        "the planted change's note"
    );
    // The same view as the page's JSON twin: one circle per value, one per note.
    let twin = json(state, "/api/kpi/ed_4h_performance?grain=week").await;
    let values = twin["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter(|p| !p["value"].is_null())
        .count();
    assert_eq!(svg.matches("<circle class=\"pt-").count(), values);

    let (status, headers, png) = fetch("/kpi/ed_4h_performance/chart.png?grain=week").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/png");
    let reader = png::Decoder::new(std::io::Cursor::new(png.as_ref()))
        .read_info()
        .expect("a PNG");
    assert_eq!(
        (reader.info().width, reader.info().height),
        (1440, 696),
        "twice the chart's size, with its title band"
    );
    let (status, _, _) = fetch("/kpi/no_such_kpi/chart.png").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_several_trusts_a_kpi_shows_its_peers_in_a_funnel_or_by_quartiles() {
    let mut config = SimConfig::new(11, 75, chrono::Utc::now().date_naive());
    config.trusts = 4;
    let site = site_of(config).await;
    let state = &site.state;

    let page = json(state, "/api/kpi/ed_4h_performance?grain=month").await;
    // Each trust's copy of the planted change's note shows once on the chart of them all.
    assert_eq!(
        page["notes"].as_array().map(Vec::len),
        Some(1),
        "{}",
        page["notes"]
    );
    let peers = &page["peers"];
    assert_eq!(peers["kind"], "funnel", "{peers}");
    let rows = peers["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    let sum = |field: &str| {
        rows.iter()
            .map(|r| r[field].as_f64().expect(field))
            .sum::<f64>()
    };
    let pooled = sum("numerator") / sum("denominator");
    let centre = peers["centre"].as_f64().expect("centre");
    assert!((centre - pooled).abs() < 1e-12, "{centre} vs {pooled}");
    for row in rows {
        // Beyond the 99.8% funnel at this trust's size, by hand.
        let (value, n) = (
            row["value"].as_f64().expect("value"),
            row["denominator"].as_f64().expect("denominator"),
        );
        let half = 3.090_232 * (pooled * (1.0 - pooled) / n).sqrt();
        let outside = value > pooled + half || value < pooled - half;
        assert_eq!(row["outside"], outside, "{row}");
        assert!((row["numerator"].as_f64().expect("n") / n - value).abs() < 1e-12);
    }
    let chosen = rows[2]["org_code"].as_str().expect("org").to_string();
    let body = html(
        state,
        &format!("/kpi/ed_4h_performance?grain=month&org_code={chosen}"),
    )
    .await;
    assert!(body.contains("Among its peers"), "peers section");
    assert_eq!(body.matches(r#"class="peer chosen""#).count(), 1);
    assert!(
        body.contains(&format!(">{chosen}</text>")),
        "the chosen trust is named"
    );

    // A count is compared by quartiles.
    let page = json(state, "/api/kpi/ed_attendances?grain=week").await;
    let peers = &page["peers"];
    assert_eq!(peers["kind"], "quartiles", "{peers}");
    let q = |k: &str| peers[k].as_f64().expect(k);
    assert!(q("q1") <= q("median") && q("median") <= q("q3"), "{peers}");
    let values: Vec<f64> = peers["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["value"].as_f64().expect("value"))
        .collect();
    assert!(values.windows(2).all(|w| w[0] >= w[1]), "highest first");
    // Below the organisation (a site chosen), peers are not compared.
    let page = json(state, "/api/kpi/ed_attendances?grain=week&site=none").await;
    assert!(page["peers"].is_null());

    // Dashboards offer each trust on its own, all of them together by default.
    let ed = json(state, "/api/dashboards/ed").await;
    let trusts = &ed["filters"][0];
    assert_eq!(trusts["name"], "org_code", "{}", ed["filters"]);
    assert_eq!(trusts["values"].as_array().map(Vec::len), Some(4));
    let body = html(state, "/dashboards/ed").await;
    assert!(body.contains("Trust"), "the filter is labelled for people");
    let one = json(state, &format!("/api/dashboards/ed?org_code={chosen}")).await;
    assert_eq!(one["filters"][0]["chosen"], chosen.as_str());
    let four_hours = |view: &Value| {
        view["sections"][0]["kpis"]
            .as_array()
            .expect("kpis")
            .iter()
            .find(|k| k["id"] == "ed_4h_performance")
            .expect("on the ED dashboard")["points"]
            .clone()
    };
    let alone = json(
        state,
        &format!("/api/kpi/ed_4h_performance?grain=week&org_code={chosen}"),
    )
    .await;
    assert_eq!(four_hours(&one), alone["points"], "the trust's own numbers");
    assert_ne!(four_hours(&one), four_hours(&ed), "not the region's");
}

/// A year of the simulated trust: each process change the simulator plants shows as special
/// cause improvement on its KPI's chart on the dashboard that carries it, at that dashboard's
/// grain, in the periods just after the change (and not just before it); and no chart starts
/// before the first reported day (the simulator's warm-up is not history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_planted_change_is_special_cause_on_its_dashboard_chart() {
    let end = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("a date");
    let config = SimConfig::new(5, 365, end);
    let first_day = config.first_day();
    let changes = bright_sim::Changes::planted(&config);
    let site = site_of(config).await;
    let state = &site.state;

    // Each KPI's chart on its audience's dashboard (the board's monthly summary aside).
    let home = json(state, "/api/home").await;
    let ids: Vec<String> = home["dashboards"]
        .as_array()
        .expect("dashboards")
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .filter(|id| id != "board")
        .collect();
    assert!(ids.len() >= 6, "{ids:?}");
    let mut charts = BTreeMap::new();
    for dashboard in &ids {
        let page = json(state, &format!("/api/dashboards/{dashboard}")).await;
        let grain = page["grain"].as_str().expect("a grain").to_string();
        for kpi in page["sections"]
            .as_array()
            .expect("sections")
            .iter()
            .flat_map(|s| s["kpis"].as_array().expect("kpis"))
        {
            let id = kpi["id"].as_str().expect("an id").to_string();
            let first = kpi["points"][0]["start"].as_str().unwrap_or("9999");
            let grain: bright_engine::kpi::Grain =
                serde_json::from_value(Value::String(grain.clone())).expect("a grain");
            let first_period = grain.period_start(first_day).to_string();
            assert!(
                first >= first_period.as_str(),
                "{dashboard}: {id} starts in {first}, before {first_period}, the period of the first reported day"
            );
            charts.entry(id).or_insert_with(|| (dashboard, kpi.clone()));
        }
    }

    for (id, date, note) in changes.annotations() {
        let (dashboard, chart) = &charts[id];
        let notes = chart["annotations"].as_array().expect("annotations");
        let marked = notes
            .iter()
            .find(|n| n["note"] == note)
            .unwrap_or_else(|| panic!("{dashboard}: {id} has no note of its change: {notes:?}"));
        assert_eq!(marked["on_date"], date.to_string());
        let at = marked["point"].as_u64().expect("a point") as usize;
        let points = chart["points"].as_array().expect("points");
        let improving = |range: std::ops::Range<usize>| {
            points[range]
                .iter()
                .filter(|p| p["point_type"] == "special_cause_improvement")
                .count()
        };
        // The period holding the change is part before, part after: compare the eight whole
        // periods either side.
        let (before, after) = (improving(at - 8..at), improving(at + 1..at + 9));
        let shown: Vec<String> = points[at - 8..at + 9]
            .iter()
            .map(|p| format!("{} {:.3} {}", p["label"], p["value"], p["point_type"]))
            .collect();
        assert!(
            after >= 4 && after > before,
            "{dashboard}: {id} after {date}: {after} of 8 periods special cause improvement, {before} before\n{}",
            shown.join("\n")
        );
    }
}

/// The trackboard over a simulated trust whose history runs to the end of today: one tile per
/// theatre with a list today, each from the milestones up to now (none after it), filtered by
/// site, the same on the page as in its JSON twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trackboard_shows_each_theatre_with_a_list_today_from_its_milestones_so_far() {
    let site = site_of(SimConfig::new(
        3,
        20,
        chrono::Utc::now().date_naive() + chrono::Duration::days(2),
    ))
    .await;
    let state = &site.state;
    let lake = Lake::open(site.dir.path().join("lake").to_str().expect("utf-8")).expect("lake");
    let engine = QueryEngine::open(&lake, &QueryConfig::default())
        .await
        .expect("engine");
    let board = json(state, "/api/theatres").await;
    // The instant the board was read at: milestones up to it count, none after.
    let as_of = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339")
    };
    let now = as_of(&board["as_of"]);
    let date = board["date"].as_str().expect("a date").to_string();
    let count = |sql: String| count(&engine, sql);
    let theatres = count(format!(
        "SELECT count(DISTINCT theatre) FROM theatre_sessions WHERE session_date = DATE '{date}'"
    ))
    .await;
    let tiles = board["tiles"].as_array().expect("tiles");
    assert!(theatres >= 1, "the emergency theatre has a list every day");
    assert_eq!(tiles.len() as i64, theatres, "one tile per theatre");
    let page = html(state, "/theatres").await;
    assert!(
        html(state, "/").await.contains(r#"href="/theatres""#),
        "every page's navigation leads to the trackboard"
    );
    assert!(page.contains(r#"href="/theatres" aria-current="page""#));
    for t in tiles {
        let session = t["session_id"].as_str().expect("a session");
        let so_far = count(format!(
            "SELECT count(*) FROM theatre_events WHERE session_id = '{session}' \
             AND milestone <> 'cancelled' AND event_time <= to_timestamp_micros({})",
            now.timestamp_micros()
        ))
        .await;
        let status = t["status"].as_str().expect("a status");
        if so_far == 0 {
            // Nothing yet, or only cancellations: not started, or over if its time has passed.
            assert!(matches!(status, "idle" | "session_finished"), "{t}");
        } else {
            assert_ne!(status, "idle", "{t}: {so_far} milestones so far");
        }
        if !t["last_event"].is_null() {
            assert!(
                as_of(&t["last_event"]) <= now,
                "{t}: nothing from the future"
            );
        }
        assert!(
            t["done"].as_u64() <= t["planned"].as_u64(),
            "{t}: done of planned"
        );
        assert!(page.contains(t["theatre"].as_str().expect("theatre")));
        // A cancelled list's tile says so instead of its status.
        let label = if t["list_cancelled"].as_bool() == Some(true) {
            "List cancelled"
        } else {
            t["status_label"].as_str().expect("label")
        };
        assert!(page.contains(label), "{t}: label {label} not on the page");
        // Every simulated list's specialty has a name, and the tile shows the name.
        let name = t["specialty_name"].as_str().expect("a named specialty");
        assert!(page.contains(name), "{name}");
    }
    // One site's rooms only.
    let sites = board["sites"].as_array().expect("sites");
    let one = sites[0].as_str().expect("a site");
    let filtered = json(state, &format!("/api/theatres?site={one}")).await;
    let kept = filtered["tiles"].as_array().expect("tiles");
    assert!(!kept.is_empty());
    assert!(kept.iter().all(|t| t["site"] == one), "{kept:?}");
    assert_eq!(
        kept.len(),
        tiles.iter().filter(|t| t["site"] == one).count()
    );
}

/// A theatre list today at `site`/`theatre`, under way: started an hour ago, ends in three.
fn list_today(session: &str, theatre: &str, today: chrono::NaiveDate) -> RecordBatch {
    let now = chrono::Utc::now();
    let hours = chrono::Duration::hours;
    list_at(session, theatre, today, now - hours(1), now + hours(3))
}

/// A theatre list on `today` at "Main site", planned from `start` to `end`.
fn list_at(
    session: &str,
    theatre: &str,
    today: chrono::NaiveDate,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> RecordBatch {
    let mut rows = BatchBuilder::new(Table::TheatreSessions);
    rows.row()
        .text(session)
        .text("RXN")
        .text("Main site")
        .text(theatre)
        .timestamp(start.timestamp_micros())
        .timestamp(end.timestamp_micros())
        .opt_text(Some("110"))
        .boolean(false)
        .date(days(today))
        .end();
    rows.finish().expect("a batch")
}

/// A trust simulated for `days` days up to yesterday, and a list under way today at "Main
/// site" (acknowledged, not yet in the lake): the site, its engine and the trust's today.
async fn site_with_a_list_today(
    days: u32,
    session: &str,
    theatre: &str,
) -> (Site, Arc<QueryEngine>, chrono::NaiveDate) {
    let site = site_of(SimConfig::new(11, days, chrono::Utc::now().date_naive())).await;
    let pages = site.state.pages().expect("pages");
    let engine = pages.kpis.engine().clone();
    let today = pages.kpis.today();
    engine
        .buffer_append(Table::TheatreSessions, list_today(session, theatre, today))
        .expect("appended");
    (site, engine, today)
}

/// One milestone of `case` (first on the list) at `at`.
fn milestone(
    session: &str,
    theatre: &str,
    case: &str,
    name: &str,
    at: DateTime<Utc>,
) -> RecordBatch {
    let mut rows = BatchBuilder::new(Table::TheatreEvents);
    rows.row()
        .text(&format!("{case}-{name}"))
        .text(case)
        .opt_text(Some(session))
        .text("RXN")
        .text("Main site")
        .text(theatre)
        .opt_text(Some("110"))
        .opt_text(Some("W401"))
        .opt_text(Some("Total knee replacement"))
        .text(name)
        .timestamp(at.timestamp_micros())
        .opt_int32(Some(1))
        .opt_int32(Some(90))
        .opt_text(None)
        .date(days(at.date_naive()))
        .end();
    rows.finish().expect("a batch")
}

fn days(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The first value of a query's first column, as a count.
async fn count(engine: &QueryEngine, sql: String) -> i64 {
    let out = engine.sql(&sql).await.expect("query");
    let column = bright_engine::arrow::compute::cast(
        out.batches[0].column(0),
        &bright_engine::arrow::datatypes::DataType::Int64,
    )
    .expect("cast");
    column
        .as_any()
        .downcast_ref::<bright_engine::arrow::array::Int64Array>()
        .expect("ints")
        .value(0)
}

/// An open Server-Sent Events response, read event by event.
struct Events {
    body: axum::body::BodyDataStream,
    text: String,
}

impl Events {
    async fn open(state: &AppState, path: &str, last_id: Option<&str>) -> Events {
        Events::open_with(
            state,
            path,
            last_id,
            ("authorization", format!("Bearer {READER}")),
        )
        .await
    }

    /// The stream opened with `credential` (a header and its value).
    async fn open_with(
        state: &AppState,
        path: &str,
        last_id: Option<&str>,
        credential: (&str, String),
    ) -> Events {
        let mut request = Request::get(path).header(credential.0, credential.1);
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let response = router(state.clone())
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("answered");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: response.into_body().into_data_stream(),
            text: String::new(),
        }
    }

    /// The next `board` or `parts` event: its id and its markup (waiting at most 5 s, pings
    /// skipped).
    async fn board(&mut self) -> (String, String) {
        use futures_util::StreamExt;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let event: String = self.text.drain(..end + 2).collect();
                // A whole board, or the pieces of it that changed.
                if !event.contains("event: board") && !event.contains("event: parts") {
                    continue;
                }
                let field = |name: &str| -> Vec<&str> {
                    event.lines().filter_map(|l| l.strip_prefix(name)).collect()
                };
                let id = field("id: ")
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                return (id, field("data: ").join("\n"));
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(5), self.body.next())
                .await
                .expect("an event within 5 s")
                .expect("the stream stays open")
                .expect("a chunk");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Waits (at most 15 s: the stream looks at its credential at each 5 s ping) until the
    /// service ends the stream.
    async fn ended(&mut self) {
        use futures_util::StreamExt;
        let ended = tokio::time::timeout(std::time::Duration::from_secs(15), async {
            while let Some(chunk) = self.body.next().await {
                chunk.expect("a chunk");
            }
        })
        .await;
        assert!(ended.is_ok(), "the stream went on");
    }

    /// Board events until one whose markup contains `wanted`.
    async fn until(&mut self, wanted: &str) -> (String, String) {
        loop {
            let (id, markup) = self.board().await;
            if markup.contains(wanted) {
                return (id, markup);
            }
        }
    }
}

/// Acknowledged milestones reach every open trackboard at once, through the one computation
/// the board shares: each viewer's stream shows the room "Ready for cleaning" the moment
/// `out_of_theatre` is acknowledged, a viewer that reconnects with its last event id gets
/// the frames it missed, and the JSON twin says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_milestones_reach_every_open_trackboard_at_once() {
    let (site, engine, today) = site_with_a_list_today(3, "S-LIVE", "Theatre 9").await;
    let alerts = Arc::new(
        Alerts::open(&site.dir.path().join("alerts.sqlite3"), Vec::new()).expect("an alert store"),
    );
    let state = &site.state.clone().with_alerts(alerts);
    let mut first = Events::open(state, "/theatres/stream", None).await;
    let mut second = Events::open(state, "/theatres/stream?site=Main%20site", None).await;
    let (seen, markup) = first.until("Theatre 9").await;
    assert!(markup.contains("Not started"), "{markup}");
    second.until("Theatre 9").await;

    let now = chrono::Utc::now();
    for (name, ago) in [
        ("sent_for", 70),
        ("in_anaesthetic_room", 60),
        ("anaesthesia_start", 55),
        ("knife_to_skin", 45),
        ("surgery_end", 5),
        ("anaesthesia_end", 3),
    ] {
        let at = now - chrono::Duration::minutes(ago);
        engine
            .buffer_append(
                Table::TheatreEvents,
                milestone("S-LIVE", "Theatre 9", "C1", name, at),
            )
            .expect("appended");
    }
    let (_, markup) = first.until("Closing").await;
    assert!(markup.contains("Total knee replacement"), "{markup}");
    engine
        .buffer_append(
            Table::TheatreEvents,
            milestone(
                "S-LIVE",
                "Theatre 9",
                "C1",
                "out_of_theatre",
                chrono::Utc::now(),
            ),
        )
        .expect("appended");
    let (_, markup) = first.until("Ready for cleaning").await;
    assert!(
        markup.contains("Ready for cleaning</strong> just now"),
        "{markup}"
    );
    let (_, other) = second.until("Ready for cleaning").await;
    assert!(other.contains("Theatre 9"), "{other}");
    let board = json(state, "/api/theatres").await;
    let tile = board["tiles"]
        .as_array()
        .expect("tiles")
        .iter()
        .find(|t| t["theatre"] == "Theatre 9")
        .expect("the tile")
        .clone();
    assert_eq!(tile["status"], "ready_for_cleaning", "{tile}");
    assert_eq!(tile["late_start_min"], 0, "{tile}");
    assert_eq!(tile["done"], 1, "{tile}");
    // Anaesthesia 55 min ago to out now, of the 60 planned minutes so far.
    let utilisation = tile["capped_utilisation"].as_f64().expect("a rate");
    assert!((utilisation - 55.0 / 60.0).abs() < 0.01, "{tile}");
    assert!(tile["overrun_min"].is_null(), "{tile}");

    // The cleaning team is told once: the alert is raised when the room turns ready, and later
    // computations of the board (another milestone, ticks) do not raise it again.
    let cleaning = |list: &Value| -> Vec<Value> {
        list["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["kind"] == "room_ready_for_cleaning")
            .cloned()
            .collect()
    };
    let raised = cleaning(&json(state, "/api/alerts").await);
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(
        raised[0]["title"],
        "Theatre 9 (Main site) is ready for cleaning"
    );
    assert!(
        raised[0]["detail"]
            .as_str()
            .expect("detail")
            .starts_with("Total knee replacement: the patient left theatre at"),
        "{raised:?}"
    );
    // Another theatre's list arrives: the board is computed again (its frame reaches the
    // open stream).
    engine
        .buffer_append(
            Table::TheatreSessions,
            list_today("S-OTHER", "Theatre 8", today),
        )
        .expect("appended");
    first.until("Theatre 8").await;
    assert_eq!(cleaning(&json(state, "/api/alerts").await).len(), 1);

    // A person acknowledges it (with the session's CSRF token); an API client cannot.
    let id = raised[0]["id"].as_i64().expect("an id");
    let ack = |auth: (&str, &str), csrf: Option<&str>| {
        let mut request = Request::post(format!("/api/alerts/{id}/ack")).header(auth.0, auth.1);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.body(Body::empty()).expect("request")
    };
    let (status, _) = send(
        state,
        ack(("authorization", &format!("Bearer {READER}")), None),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(
        state,
        ack(("cookie", &site.theatre_cookie), Some(&site.theatre_csrf)),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let acked = cleaning(&json(state, "/api/alerts").await);
    assert_eq!(acked[0]["acknowledged_by"], "theatre.lead", "{acked:?}");

    // A list whose planned end has passed with a patient still in theatre: the tile says it
    // is overrunning, and an alert is raised once.
    let now = chrono::Utc::now();
    engine
        .buffer_append(
            Table::TheatreSessions,
            list_at(
                "S-OVER",
                "Theatre 6",
                today,
                now - chrono::Duration::hours(4),
                now - chrono::Duration::minutes(10),
            ),
        )
        .expect("appended");
    for (name, ago) in [("anaesthesia_start", 60), ("knife_to_skin", 50)] {
        let at = now - chrono::Duration::minutes(ago);
        engine
            .buffer_append(
                Table::TheatreEvents,
                milestone("S-OVER", "Theatre 6", "C6", name, at),
            )
            .expect("appended");
    }
    let (_, markup) = first.until("Overrunning").await;
    assert!(markup.contains("Theatre 6"), "{markup}");
    let overruns: Vec<Value> = json(state, "/api/alerts").await["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == "theatre_overrun")
        .cloned()
        .collect();
    assert_eq!(overruns.len(), 1, "{overruns:?}");
    assert_eq!(overruns[0]["title"], "Theatre 6 (Main site) is overrunning");

    // A viewer that lost its link after the first frame catches up on reconnecting: the
    // frames after it come first, ending with the room ready for cleaning.
    let mut back = Events::open(state, "/theatres/stream", Some(&seen)).await;
    let (_, replayed) = back.board().await;
    assert!(
        !replayed.contains("Ready for cleaning"),
        "the missed frames come in order"
    );
    back.until("Ready for cleaning").await;

    // A site with no theatre says so rather than showing every site's rooms.
    let mut nowhere = Events::open(state, "/theatres/stream?site=Nowhere", None).await;
    let (_, markup) = nowhere.board().await;
    assert!(markup.contains("No theatre at Nowhere"), "{markup}");
}

/// A kiosk link opens its board, for its site only, read-only, and nothing else; revoked, it
/// opens nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kiosk_link_opens_only_its_board_until_revoked() {
    let (site, _, _) = site_with_a_list_today(3, "S-K", "Theatre 5").await;
    let state = &site.state;
    let users = state.users().expect("users");
    let (kiosk, token) = users
        .add_kiosk("theatres", Some("Main site"), "Corridor")
        .expect("a kiosk link");
    assert!(
        users.add_kiosk("ipr", None, "Boardroom").is_err(),
        "only live boards"
    );

    let (status, location) = get(state, &format!("/kiosk/{token}"), None).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/theatres")
    );
    let response = router(state.clone())
        .oneshot(
            Request::get(format!("/kiosk/{token}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answered");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().expect("a pair").to_string();
    let as_kiosk = |method: &str, path: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("request")
    };
    // Its site only, whatever the query asks.
    let (status, body) = send(state, as_kiosk("GET", "/api/theatres?site=Elsewhere")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let board: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(board["site"], "Main site");
    assert!(
        board["tiles"]
            .as_array()
            .expect("tiles")
            .iter()
            .all(|t| t["site"] == "Main site")
    );
    let (status, page) = send(state, as_kiosk("GET", "/theatres")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"class="kiosk""#) && !page.contains("<nav"),
        "no chrome"
    );
    for (method, path) in [
        ("GET", "/ipr"),
        ("GET", "/api/feeds"),
        ("GET", "/kpi/ed_4h_performance"),
        ("POST", "/api/alerts/1/ack"),
        ("POST", "/theatres"),
    ] {
        let (status, _) = send(state, as_kiosk(method, path)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    users.revoke_kiosk(&kiosk.id).expect("revoked");
    let (status, _) = send(state, as_kiosk("GET", "/api/theatres")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = get(state, &format!("/kiosk/{token}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(users.kiosks().expect("listed")[0].revoked_at.is_some());
}

/// The command-centre wall says what the lake says: patients on wards and beds open today,
/// the emergency department now, discharges, the trackboard's rooms; its page and stream
/// carry the same wall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_centre_wall_counts_what_the_lake_holds_now() {
    let (site, engine, today) = site_with_a_list_today(30, "S-W", "Theatre 7").await;
    let alerts = Arc::new(
        Alerts::open(&site.dir.path().join("alerts.sqlite3"), Vec::new()).expect("an alert store"),
    );
    let state = &site.state.clone().with_alerts(alerts);
    let wall = json(state, "/api/command-centre").await;
    let count = |sql: String| count(&engine, sql);
    let sum = |field: &str, of: &str| -> i64 {
        wall[of]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r[field].as_i64().expect("a count"))
            .sum()
    };
    assert_eq!(
        sum("patients", "wards"),
        count("SELECT count(*) FROM kpi.current_inpatients".into()).await
    );
    assert_eq!(
        sum("beds", "wards"),
        count(format!(
            "SELECT COALESCE(sum(beds), 0) FROM beds WHERE valid_from <= DATE '{today}' \
             AND (valid_to IS NULL OR valid_to >= DATE '{today}')"
        ))
        .await
    );
    let as_of = chrono::DateTime::parse_from_rfc3339(wall["as_of"].as_str().expect("a time"))
        .expect("RFC 3339")
        .timestamp_micros();
    assert_eq!(
        sum("in_department", "ed"),
        count(format!(
            "SELECT count(*) FROM kpi.ed_attendances_latest \
             WHERE arrival_time <= to_timestamp_micros({as_of}) \
               AND arrival_time > to_timestamp_micros({as_of}) - INTERVAL '7 days' \
               AND (departure_time IS NULL OR departure_time > to_timestamp_micros({as_of}))"
        ))
        .await
    );
    assert!(sum("in_department", "ed") >= sum("over_4h", "ed"));
    assert!(sum("over_4h", "ed") >= sum("over_12h", "ed"));
    assert_eq!(
        wall["discharges"]["today"].as_i64().expect("a count"),
        count(format!(
            "SELECT count(*) FROM kpi.inpatient_stays \
             WHERE end_event = 'A03' AND local_date(end_time) = DATE '{today}'"
        ))
        .await
    );
    assert!(wall["discharges"]["expected"].as_f64().expect("a mean") > 0.0);
    // The trackboard's one list today, not started.
    assert_eq!(wall["theatres"], serde_json::json!([["Not started", 1]]));
    let level = wall["pressure"].as_u64().expect("a level");
    assert!((1..=4).contains(&level));
    let highest = wall["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["level"].as_u64().expect("a level"))
        .max();
    assert_eq!(Some(level), highest, "the highest parameter sets the level");
    // A level of 3 or 4 is an alert on the rail; below that there is none.
    let pressure: Vec<&Value> = wall["alerts"]
        .as_array()
        .expect("the rail")
        .iter()
        .filter(|a| a["kind"] == "pressure_level")
        .collect();
    assert_eq!(pressure.len(), usize::from(level >= 3), "{pressure:?}");
    if level >= 3 {
        assert_eq!(pressure[0]["title"], format!("Pressure level {level}"));
    }

    // The KPIs whose icons changed since yesterday (the home page's list) are alerts: a
    // variation turned special cause, an assurance that changed.
    let home = json(state, "/api/home").await;
    let mut expected: Vec<(String, String)> = Vec::new();
    for c in home["changes"].as_array().expect("changes") {
        let (variation, assurance) = (&c["variation_icon"], &c["assurance_icon"]);
        if !variation.is_null() && variation != "common_cause" && *variation != c["before"][0] {
            expected.push((
                "kpi_special_cause".into(),
                c["id"].as_str().expect("id").into(),
            ));
        }
        if *assurance != c["before"][1] {
            expected.push((
                "kpi_assurance_changed".into(),
                c["id"].as_str().expect("id").into(),
            ));
        }
    }
    // The rules wait for every KPI's series (the home page computed them): a new row makes
    // the wall compute again, and it raises them before it sends the frame (looked at after
    // each of the wall's next frames, at most ten).
    let mut wall_stream = Events::open(state, "/command-centre/stream", None).await;
    engine
        .buffer_append(
            Table::TheatreSessions,
            list_today("S-W2", "Theatre 8", today),
        )
        .expect("appended");
    expected.sort();
    let kpi_alerts = |list: &Value| -> Vec<(String, String)> {
        let mut raised: Vec<(String, String)> = list["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["kind"].as_str().is_some_and(|k| k.starts_with("kpi_")))
            .map(|a| {
                let link = a["link"].as_str().expect("a link");
                (
                    a["kind"].as_str().expect("kind").to_string(),
                    link.trim_start_matches("/kpi/").to_string(),
                )
            })
            .collect();
        raised.sort();
        raised
    };
    let mut raised = Vec::new();
    for _ in 0..10 {
        wall_stream.board().await;
        raised = kpi_alerts(&json(state, "/api/alerts").await);
        if raised == expected {
            break;
        }
    }
    println!("KPI alerts: {raised:?}");
    assert_eq!(raised, expected);

    let page = html(state, "/command-centre").await;
    assert!(
        page.contains("Pressure level") && page.contains("ED now") && page.contains("Theatres")
    );
    assert!(page.contains(r#"data-stream="/command-centre/stream""#));
    let mut events = Events::open(state, "/command-centre/stream", None).await;
    let (_, markup) = events.board().await;
    assert!(markup.contains("Discharges today"), "{markup}");
}

/// The catalogue KPI `id` for `date`, broken down by `by`: (key, numerator, denominator) per
/// breakdown.
async fn kpi_day(
    engine: &QueryEngine,
    id: &str,
    date: chrono::NaiveDate,
    by: &[&str],
) -> Vec<(Vec<Option<String>>, f64, f64)> {
    let by: Vec<String> = by.iter().map(|b| b.to_string()).collect();
    let output = engine
        .kpi_series(id, Some(date), date.succ_opt(), &by)
        .await
        .expect("the KPI's series");
    bright_dashboards::kpis::breakdowns(&output, &by, &[])
        .expect("rows")
        .into_iter()
        .flat_map(|b| {
            b.periods
                .into_iter()
                .filter(|p| p.start == date)
                .map(move |p| {
                    (
                        b.key.clone(),
                        p.numerator.unwrap_or(0.0),
                        p.denominator.unwrap_or(0.0),
                    )
                })
        })
        .collect()
}

/// Each rate of the report as the catalogue KPI it is, with the report's numerator and
/// denominator for it.
fn report_parts(id: &str, row: &Value) -> (f64, f64) {
    let n = |field: &str| {
        row[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} in {row}"))
    };
    let late = &row["late_starts"];
    match id {
        "theatre_utilisation_capped" => (n("touch_capped_min"), n("planned_min")),
        "theatre_utilisation_uncapped" => (n("touch_min"), n("planned_min")),
        "theatre_cases_per_session" => (n("cases_completed"), n("lists_held")),
        "theatre_late_starts" => (
            late[1].as_f64().expect("band") + late[2].as_f64().expect("band"),
            n("lists_started"),
        ),
        "theatre_early_finishes" => (n("early_finishes"), n("lists_finished")),
        "theatre_turnaround_mean_min" => (n("turnaround_min"), n("turnarounds")),
        "theatre_cancellations_on_day" => (n("cases_cancelled"), n("cases_booked")),
        other => panic!("no report figure for {other}"),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theatre_report_adds_up_to_the_catalogues_kpis_for_the_day() {
    let site = site_of(SimConfig::new(5, 40, chrono::Utc::now().date_naive())).await;
    let alerts = Arc::new(
        Alerts::open(&site.dir.path().join("alerts.sqlite3"), Vec::new()).expect("an alert store"),
    );
    let state = &site.state.clone().with_alerts(alerts.clone());
    let pages = state.pages().expect("pages");
    let engine = pages.kpis.engine().clone();
    let yesterday = pages.kpis.today().pred_opt().expect("a day");
    // The simulated hospital holds few lists at weekends: fewer rows to compare then.
    let floor = match chrono::Datelike::weekday(&yesterday) {
        chrono::Weekday::Sat | chrono::Weekday::Sun => 10,
        _ => 50,
    };

    // Yesterday by default, every site.
    let report = json(state, "/api/theatres/report").await;
    assert_eq!(report["date"], yesterday.to_string());
    assert_eq!(report["day_complete"], true);
    let planned = count(
        &engine,
        format!("SELECT count(*) FROM theatre_sessions WHERE session_date = DATE '{yesterday}'"),
    )
    .await;
    let total = &report["total"];
    assert_eq!(total["lists_planned"].as_i64(), Some(planned));
    assert!(total["lists_held"].as_i64() > Some(0), "{total}");
    assert!(total["cases_completed"].as_i64() > Some(0), "{total}");

    // Every rate, for the day, each site, each theatre and each specialty, is the catalogue
    // KPI's numerator over its denominator.
    let levels: [(&str, &[&str], &[&str]); 3] = [
        ("by_site", &["site"], &["site"]),
        ("by_theatre", &["site", "theatre"], &["site", "theatre"]),
        ("by_specialty", &["specialty"], &["specialty"]),
    ];
    let mut compared = 0;
    for id in bright_dashboards::theatre_report::RATE_KPIS.map(|(id, _)| id) {
        let whole = kpi_day(&engine, id, yesterday, &[]).await;
        let (n, d) = whole
            .iter()
            .fold((0.0, 0.0), |(n, d), (_, a, b)| (n + a, d + b));
        let (rn, rd) = report_parts(id, total);
        assert!(
            close(n, rn) && close(d, rd),
            "{id}: KPI {n}/{d}, report {rn}/{rd}"
        );
        for (field, by, keys) in levels {
            let rows = report[field].as_array().expect("rows");
            let kpi = kpi_day(&engine, id, yesterday, by).await;
            for (key, n, d) in &kpi {
                let row = rows
                    .iter()
                    .find(|r| {
                        keys.iter()
                            .zip(key)
                            .all(|(k, v)| r[*k].as_str() == v.as_deref())
                    })
                    .unwrap_or_else(|| panic!("{id} {field}: no row for {key:?}"));
                let (rn, rd) = report_parts(id, row);
                assert!(
                    close(*n, rn) && close(*d, rd),
                    "{id} {field} {key:?}: KPI {n}/{d}, report {rn}/{rd}"
                );
                compared += 1;
            }
        }
    }
    assert!(compared > floor, "{compared} breakdown rows compared");
    // The icons' chart reaches the day, and its value there is the report's.
    for trend in report["trends"].as_array().expect("trends") {
        let (value, kpi) = (&trend["value"], &trend["kpi_value"]);
        match (value.as_f64(), kpi.as_f64()) {
            (Some(a), Some(b)) => assert!(close(a, b), "{trend}"),
            (a, b) => assert_eq!(a, b, "{trend}"),
        }
        assert!(trend["variation_icon"].is_string(), "{trend}");
    }
    // Each theatre's and each specialty's icons are those of the KPI's own page filtered to
    // it, on the same days.
    let today = pages.kpis.today();
    let mut icons_compared = 0;
    for (field, rows_field, keys) in [
        ("theatre_trends", "by_theatre", &["site", "theatre"][..]),
        ("specialty_trends", "by_specialty", &["specialty"][..]),
    ] {
        let trends = report[field].as_array().expect("icon rows");
        let rows = report[rows_field].as_array().expect("rows");
        assert_eq!(trends.len(), rows.len(), "{field}: a line per row");
        for (trend, row) in trends.iter().zip(rows) {
            assert_eq!(trend["label"], row["label"]);
            let Some(filters) = keys
                .iter()
                .map(|k| {
                    let v = trend[*k].as_str()?;
                    let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                    Some(format!("&{k}={v}"))
                })
                .collect::<Option<String>>()
            else {
                // "Specialty not given" has no filter value to ask the KPI page with.
                continue;
            };
            let icons = trend["icons"].as_array().expect("icons");
            assert_eq!(icons.len(), 7, "{trend}");
            for icon in icons {
                let id = icon["kpi"].as_str().expect("an id");
                let page = json(
                    state,
                    &format!("/api/kpi/{id}?grain=day&to={today}&by={filters}"),
                )
                .await;
                assert_eq!(
                    icon["variation_icon"], page["variation_icon"],
                    "{id}{filters}"
                );
                assert_eq!(
                    icon["assurance_icon"], page["assurance_icon"],
                    "{id}{filters}"
                );
                assert!(icon["variation_icon"].is_string(), "{id}{filters}: {icon}");
                icons_compared += 1;
            }
        }
    }
    assert!(
        icons_compared > floor,
        "{icons_compared} icon pairs compared"
    );
    // Cancellation reasons add up to the cases cancelled, and the theatre system's reasons
    // are the ones shown.
    let reasons = report["cancellations"].as_array().expect("reasons");
    let cancelled: i64 = reasons
        .iter()
        .map(|r| r["cases"].as_i64().expect("n"))
        .sum();
    assert_eq!(Some(cancelled), total["cases_cancelled"].as_i64());

    // One site: its lists only, and the KPIs filtered to it.
    let one = report["sites"][0].as_str().expect("a site").to_string();
    let of_site = json(
        state,
        &format!("/api/theatres/report?site={one}&date={yesterday}"),
    )
    .await;
    let by_site = report["by_site"].as_array().expect("sites");
    let row = by_site
        .iter()
        .find(|r| r["site"] == one.as_str())
        .expect("its row");
    for field in [
        "lists_held",
        "cases_completed",
        "touch_capped_min",
        "planned_min",
    ] {
        assert_eq!(of_site["total"][field], row[field], "{field}");
    }
    assert!(
        of_site["lists"]
            .as_array()
            .expect("lists")
            .iter()
            .all(|l| l["site"] == one.as_str())
    );

    // The page prints what the JSON says, with its thresholds and downloads.
    let page = html(state, &format!("/theatres/report?date={yesterday}")).await;
    assert!(page.contains("Theatre performance report"));
    assert!(page.contains("How each theatre compares"));
    assert!(page.contains("How each specialty compares"));
    assert!(
        page.contains("more than 15 minutes after the planned start"),
        "the grace period is printed"
    );
    assert!(page.contains("more than 30 minutes before the planned end"));
    assert!(page.contains(&format!(r#"href="/theatres/report.csv?date={yesterday}""#)));
    for reason in reasons {
        assert!(page.contains(&escaped(reason["reason"].as_str().expect("text"))));
    }
    let capped = total["rates"]["utilisation_capped"]
        .as_f64()
        .expect("a rate");
    assert!(
        page.contains(&format!("{:.1}%", capped * 100.0)),
        "capped utilisation shown"
    );
    assert!(
        html(state, "/")
            .await
            .contains(r#"href="/theatres/report""#),
        "in the navigation"
    );

    // The CSV and the one-file HTML.
    let (status, csv) = get(
        state,
        &format!("/theatres/report.csv?date={yesterday}"),
        Some(READER),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut lines = csv.lines();
    let header = lines.next().expect("a header");
    assert!(header.starts_with("date,level,site,theatre,specialty,label,lists_planned"));
    assert!(header.ends_with("late_start_grace_min,early_finish_grace_min"));
    let first = lines.next().expect("the day's line");
    assert!(
        first.starts_with(&format!("{yesterday},all,,,,All sites,{planned},")),
        "{first}"
    );
    let (status, file) = get(
        state,
        &format!("/theatres/report/export?date={yesterday}"),
        Some(READER),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(file.starts_with("<!DOCTYPE html>"));
    assert!(file.contains("@page{size:A4"), "prints on A4");
    for outside in ["<script", "src=", "href=\"/", "<link"] {
        assert!(!file.contains(outside), "self-contained: {outside}");
    }

    // A day to come is refused; a bad date is a bad request.
    let tomorrow = pages.kpis.today().succ_opt().expect("a day");
    let (status, _) = get(
        state,
        &format!("/api/theatres/report?date={tomorrow}"),
        Some(READER),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(state, "/api/theatres/report?date=yesterday", Some(READER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The morning run: files in the reports folder, figures in the lake, one announcement —
    // and a second run (a restart) adds neither rows nor alerts.
    let folder = site.dir.path().join("reports");
    let made = bright_dashboards::routes::pages::theatre_report::produce(state, &folder, yesterday)
        .await
        .expect("made");
    assert_eq!(std::fs::read_to_string(&made.csv).expect("the CSV"), csv);
    let kept = std::fs::read_to_string(&made.html).expect("the HTML");
    assert!(kept.contains("Theatre performance report"));
    assert!(made.lake_rows > 0);
    let alert = made.alert.expect("announced");
    let raised = alerts.latest(5).expect("alerts");
    let announced = raised.iter().find(|a| a.id == alert).expect("kept");
    assert_eq!(announced.kind, "theatre_report");
    assert_eq!(
        announced.link.as_deref(),
        Some(format!("/theatres/report?date={yesterday}").as_str())
    );
    for (column, field) in [
        ("cases_completed", "cases_completed"),
        ("lists_planned", "lists_planned"),
        ("late_starts_band_3", "late_starts"),
    ] {
        let in_lake = count(
            &engine,
            format!(
                "SELECT CAST(sum({column}) AS BIGINT) FROM theatre_reports \
                 WHERE report_date = DATE '{yesterday}'"
            ),
        )
        .await;
        let expected = if field == "late_starts" {
            total[field][2].as_i64()
        } else {
            total[field].as_i64()
        };
        assert_eq!(Some(in_lake), expected, "{column}");
    }
    let again =
        bright_dashboards::routes::pages::theatre_report::produce(state, &folder, yesterday)
            .await
            .expect("made again");
    assert_eq!((again.lake_rows, again.alert), (0, None));
    assert_eq!(alerts.raised().expect("count"), 1);
}

/// A person's open live board ends with their session: signed out, the stream stops at its
/// next ping and a reconnection is refused, so the page dims instead of showing a board to
/// whoever sits down next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_persons_open_boards_stop() {
    let (site, _, _) = site_with_a_list_today(3, "S-OUT", "Theatre 4").await;
    let state = &site.state;
    let cookie = site.manager_cookie.clone();
    let mut trackboard =
        Events::open_with(state, "/theatres/stream", None, ("cookie", cookie.clone())).await;
    let mut wall = Events::open_with(
        state,
        "/command-centre/stream",
        None,
        ("cookie", cookie.clone()),
    )
    .await;
    trackboard.until("Theatre 4").await;
    wall.board().await;
    // Another person's board (a bearer token) goes on.
    let mut other = Events::open(state, "/theatres/stream", None).await;
    other.board().await;

    let (status, _) = send(
        state,
        form_post("/logout", &cookie, &[("csrf", &site.manager_csrf)]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    trackboard.ended().await;
    wall.ended().await;
    // No reconnection: sent to sign in (an event stream cannot follow that).
    let (status, location) = get(state, "/theatres/stream", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "no reconnection");
    assert!(location.starts_with("/login"), "{location}");
    // The page's script says why when the reconnection is refused.
    assert!(
        html(state, "/theatres")
            .await
            .contains("no longer signed in")
    );
    // Another person's stream is still open: its pings keep coming.
    use futures_util::StreamExt;
    let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), other.body.next())
        .await
        .expect("a ping or frame within 10 s");
    assert!(chunk.is_some(), "the token's stream stays open");
}

/// `POST /api/sql` with `sql`, as `auth` (a token, or a session cookie and its CSRF token),
/// accepting `accept`: the status, the `x-bright-truncated` header and the body.
async fn post_sql(
    state: &AppState,
    sql: &str,
    auth: (&str, Option<&str>),
    accept: &str,
) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut request = Request::post("/api/sql")
        .header("content-type", "application/json")
        .header("accept", accept);
    request = match auth {
        (cookie, csrf) if cookie.starts_with("bright_session=") => {
            let request = request.header("cookie", cookie);
            match csrf {
                Some(csrf) => request.header("x-csrf-token", csrf),
                None => request,
            }
        }
        (token, _) => request.header("authorization", format!("Bearer {token}")),
    };
    let body = serde_json::json!({ "sql": sql }).to_string();
    let response = router(state.clone())
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("a response");
    let status = response.status();
    let truncated = response
        .headers()
        .get("x-bright-truncated")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    (status, truncated, bytes.to_vec())
}

#[tokio::test]
async fn the_sql_door_answers_analysts_what_the_engine_answers_and_refuses_the_rest() {
    let site = site_of(SimConfig::new(5, 20, chrono::Utc::now().date_naive())).await;
    let state = &site.state;
    let engine = state.pages().expect("pages").kpis.engine().clone();
    let json_of = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).expect("JSON") };
    let queries = [
        "SELECT ward, count(*) AS n FROM beds GROUP BY ward ORDER BY ward",
        "SELECT * FROM kpi.ed_4h_performance ORDER BY period, org_code, site",
        // An ad-hoc join across feeds.
        "SELECT a.site, count(DISTINCT a.attendance_id) AS attendances, count(e.event_type) AS adt \
         FROM ed_attendances a LEFT JOIN adt_events e ON e.patient_key = a.patient_key \
         GROUP BY a.site ORDER BY a.site",
    ];
    let analyst = (
        site.analyst_cookie.as_str(),
        Some(site.analyst_csrf.as_str()),
    );
    for sql in queries {
        let expected = engine.sql(sql).await.expect("the engine answers");
        let mut rows = Vec::new();
        expected
            .write(bright_engine::query::OutputFormat::Json, &mut rows)
            .expect("JSON");
        let (status, truncated, body) = post_sql(state, sql, analyst, "application/json").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{sql}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(truncated.as_deref(), Some("false"));
        let answer = json_of(&body);
        assert_eq!(answer["rows"], json_of(&rows), "{sql}");
        assert_eq!(answer["row_count"], expected.num_rows());
        assert!(expected.num_rows() > 0, "{sql}: rows to compare");
        assert_eq!(
            answer["columns"].as_array().expect("columns").len(),
            expected.schema.fields().len()
        );
        // The same as CSV, and as an Arrow stream, to a token with the `sql` scope.
        let mut csv = Vec::new();
        expected
            .write(bright_engine::query::OutputFormat::Csv, &mut csv)
            .expect("CSV");
        let (status, _, body) = post_sql(state, sql, (NOTEBOOK, None), "text/csv").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, csv, "{sql}");
        let (status, _, body) = post_sql(
            state,
            sql,
            (NOTEBOOK, None),
            "application/vnd.apache.arrow.stream",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(body), None)
            .expect("an Arrow stream");
        assert_eq!(reader.schema(), expected.schema);
        let batches: Vec<RecordBatch> = reader.map(|b| b.expect("a batch")).collect();
        assert_eq!(
            bright_engine::arrow::compute::concat_batches(&expected.schema, &batches)
                .expect("one batch"),
            bright_engine::arrow::compute::concat_batches(&expected.schema, &expected.batches)
                .expect("one batch"),
            "{sql}"
        );
    }

    // Who may not: a token that only reads, a theatre lead, a signed-in analyst without the
    // session's CSRF token, nobody.
    let sql = "SELECT 1";
    for (auth, says) in [
        ((READER, None), "scope 'sql'"),
        (
            (
                site.theatre_cookie.as_str(),
                Some(site.theatre_csrf.as_str()),
            ),
            "role 'theatre'",
        ),
        ((site.analyst_cookie.as_str(), None), "x-csrf-token"),
    ] {
        let (status, _, body) = post_sql(state, sql, auth, "application/json").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{}", auth.0);
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(says), "{body}");
    }
    let response = router(state.clone())
        .oneshot(
            Request::post("/api/sql")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"sql":"SELECT 1"}"#))
                .expect("request"),
        )
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Every escape refused, with its reason, and nothing written.
    let owned = site.dir.path().join("owned");
    std::fs::create_dir(&owned).expect("a folder");
    std::fs::write(owned.join("secret.csv"), "a\n1\n").expect("written");
    let escapes = escapes::escapes(&owned);
    assert!(escapes.len() >= 25);
    for sql in &escapes {
        let (status, _, body) = post_sql(state, sql, (NOTEBOOK, None), "application/json").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sql}");
        assert!(
            json_of(&body)["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let left: Vec<_> = std::fs::read_dir(&owned)
        .expect("the folder")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("secret.csv")]);

    // A value too big to build is refused before it is built; rows past the row limit are
    // left out, and the answer says so.
    let (status, _, body) = post_sql(
        state,
        "SELECT length(repeat('x', 2000000000))",
        (NOTEBOOK, None),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json_of(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("MiB"))
    );
    let (status, truncated, body) = post_sql(
        state,
        "SELECT * FROM generate_series(1, 1000000)",
        (NOTEBOOK, None),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(truncated.as_deref(), Some("true"));
    let answer = json_of(&body);
    assert_eq!(answer["truncated"], true);
    assert_eq!(answer["row_count"], 10_000);
}

#[tokio::test]
async fn analysts_run_save_and_download_sql_on_their_page() {
    let site = site_of(SimConfig::new(5, 20, chrono::Utc::now().date_naive())).await;
    let state = &site.state;
    let engine = state.pages().expect("pages").kpis.engine().clone();
    let cookie = site.analyst_cookie.as_str();
    let csrf = site.analyst_csrf.as_str();

    // The page: the editor, every lake table and KPI view with its columns, in the
    // navigation of those who may use it only.
    let (status, page) = get(state, "/sql", Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(r#"<textarea id="sql" name="sql""#));
    for table in ["lake.beds", "lake.adt_events", "kpi.ed_4h_performance"] {
        assert!(
            page.contains(&format!("<code>{table}</code>")),
            "{table} listed"
        );
    }
    assert!(page.contains(r#"<a href="/sql" aria-current="page">SQL</a>"#));
    let (_, theirs) = get(state, "/", Some(site.theatre_cookie.as_str())).await;
    assert!(
        !theirs.contains(r#"href="/sql""#),
        "not offered to a theatre lead"
    );
    let (status, refused) = get(state, "/sql", Some(site.theatre_cookie.as_str())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused.contains("role &#39;theatre&#39;") || refused.contains("role 'theatre'"));

    // Run: the answer under the statement, the engine's numbers.
    let sql = "SELECT ward, count(*) AS n FROM beds GROUP BY ward ORDER BY ward";
    let expected = engine.sql(sql).await.expect("the engine answers");
    let (status, page) = send(
        state,
        form_post("/sql", cookie, &[("csrf", csrf), ("sql", sql)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let rows = expected.num_rows();
    assert!(rows > 1);
    assert!(page.contains(&format!("{rows} rows")), "the count is said");
    let mut csv = Vec::new();
    expected
        .write(bright_engine::query::OutputFormat::Csv, &mut csv)
        .expect("CSV");
    let csv = String::from_utf8(csv).expect("utf-8");
    for line in csv.lines().skip(1) {
        let (ward, n) = line.split_once(',').expect("two columns");
        assert!(
            page.contains(&format!("<td>{}</td><td>{n}</td>", escaped(ward))),
            "{line} shown"
        );
    }
    // Without the session's CSRF token, nothing runs.
    let (status, _) = send(state, form_post("/sql", cookie, &[("sql", sql)])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A refused statement: said on the page, the statement kept in the editor.
    let escape = "COPY (SELECT 1 AS x) TO '/tmp/bright-sql-page.csv'";
    let (status, page) = send(
        state,
        form_post("/sql", cookie, &[("csrf", csrf), ("sql", escape)]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Not answered."), "{page}");
    assert!(page.contains("only reads"), "the reason is given");
    assert!(
        page.contains(&escaped(escape)),
        "the statement stays in the editor"
    );
    assert!(!std::path::Path::new("/tmp/bright-sql-page.csv").exists());

    // Download: the engine's CSV.
    let response = router(state.clone())
        .oneshot(form_post(
            "/sql.csv",
            cookie,
            &[("csrf", csrf), ("sql", sql)],
        ))
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment"))
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a body");
    assert_eq!(String::from_utf8_lossy(&body), csv);

    // Saved under a name, loaded into the editor, the person's own; deleted.
    let (status, location) = send(
        state,
        form_post(
            "/sql/saved",
            cookie,
            &[("csrf", csrf), ("sql", sql), ("label", "Beds by ward")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/sql?q=Beds+by+ward");
    let (status, page) = get(state, &location, Some(cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&escaped(sql)), "loaded into the editor");
    assert!(page.contains(">Beds by ward</a>"), "listed");
    let users = state.users().expect("people");
    assert_eq!(users.saved_queries("data.analyst").expect("read").len(), 1);
    assert!(
        users
            .saved_queries("flow.manager")
            .expect("read")
            .is_empty(),
        "kept for its author only"
    );
    let (status, _) = send(
        state,
        form_post(
            "/sql/saved/delete",
            cookie,
            &[("csrf", csrf), ("label", "Beds by ward")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _) = get(state, &location, Some(cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_runs_only_so_many_statements_at_once() {
    let site = site_of(SimConfig::new(5, 10, chrono::Utc::now().date_naive())).await;
    let state = site
        .state
        .clone()
        .with_sql(bright_dashboards::routes::sql::SqlConfig {
            running_per_client: 1,
            time_limit_secs: 3,
            ..Default::default()
        });
    // One that runs until its time limit stops it (sent again while the probes below hold
    // the client's one place).
    let long = {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                let answer = post_sql(
                    &state,
                    "SELECT count(*) FROM generate_series(1, 3000000) a(v) \
                     CROSS JOIN generate_series(1, 3000000) b(w)",
                    (NOTEBOOK, None),
                    "application/json",
                )
                .await;
                if answer.0 != StatusCode::TOO_MANY_REQUESTS {
                    return answer;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    // While it runs, the same client is told to wait (asked until the first has its place).
    let mut told = None;
    for _ in 0..10_000 {
        let (status, _, body) = post_sql(
            &state,
            "SELECT 1 AS x",
            (NOTEBOOK, None),
            "application/json",
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            told = Some(String::from_utf8_lossy(&body).to_string());
            break;
        }
        if long.is_finished() {
            let (status, _, body) = long.await.expect("the long statement");
            panic!(
                "it ended first: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        tokio::task::yield_now().await;
    }
    let told = told.expect("told to wait");
    assert!(told.contains("1 of your statements are running"), "{told}");
    // Another person is not.
    let analyst = (
        site.analyst_cookie.as_str(),
        Some(site.analyst_csrf.as_str()),
    );
    let (status, _, body) = post_sql(&state, "SELECT 1 AS x", analyst, "application/json").await;
    assert_ne!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, body) = long.await.expect("the long statement");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(String::from_utf8_lossy(&body).contains("time limit of 3 s"));
    // Its place is given back. (The statement may still hold the analysts' threads until
    // its operator next yields, so this one may meet its own time limit; it is not refused
    // for being one too many.)
    let (status, _, body) = post_sql(
        &state,
        "SELECT 1 AS x",
        (NOTEBOOK, None),
        "application/json",
    )
    .await;
    assert_ne!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
}
