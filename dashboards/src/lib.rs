//! bright-dashboards: the HTTP service that serves bright's pages and boards.
//!
//! [`router`] builds the axum [`Router`] from an [`AppState`] so tests can drive it without a
//! socket; [`serve`] runs it on a listener until a shutdown signal. For now it serves
//! `/health` (the one endpoint that never needs authentication), the ingest API
//! (`POST /api/ingest/{feed}`, [`routes::ingest`]) and feed health (`GET /api/feeds`,
//! [`routes::feeds`]); every route but `/health` goes through
//! [`auth::authenticate`]. Dashboards and boards join the same router as they land; their
//! charts and icons are drawn by [`charts`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use bright_engine::ingest_api::{IngestApi, IngestRefusal, Position};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod charts;
pub mod clock;
pub mod flight;
pub mod kpis;
pub mod live;
pub mod pg;
pub mod routes;
pub mod spec;
pub mod theatre_report;
pub mod trackboard;
pub mod users;
pub mod view;

/// The `[dashboards]` section of `bright.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DashboardsConfig {
    /// Largest request body accepted, in bytes (larger posts get 413).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// API clients and their scopes.
    #[serde(default)]
    pub clients: Vec<auth::ClientConfig>,
    /// A folder of the trust's own dashboard files (`*.toml`), added to the built-in ones.
    #[serde(default)]
    pub folder: Option<std::path::PathBuf>,
    /// Seconds between refreshes of the KPI series the pages show.
    #[serde(default = "default_refresh_secs")]
    pub refresh_secs: u64,
    /// The first day the lake's history is complete (e.g. `2024-12-03`): charts start at the
    /// first period on or after it. Set it when the lake was loaded from an extract that holds
    /// only the stays still open on its first day.
    #[serde(default)]
    pub history_from: Option<chrono::NaiveDate>,
    /// The trust's local time (`HH:MM`) after which each morning's theatre report of the day
    /// before is made.
    #[serde(
        default = "default_theatre_report_at",
        deserialize_with = "hours_minutes"
    )]
    pub theatre_report_at: chrono::NaiveTime,
}

fn default_theatre_report_at() -> chrono::NaiveTime {
    chrono::NaiveTime::from_hms_opt(6, 30, 0).unwrap_or_default()
}

/// A time of day written `HH:MM`.
fn hours_minutes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<chrono::NaiveTime, D::Error> {
    let text = String::deserialize(d)?;
    chrono::NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| serde::de::Error::custom(format!("'{text}' is not a time of day like 06:30")))
}

fn default_refresh_secs() -> u64 {
    30
}

fn default_max_body_bytes() -> usize {
    16 << 20
}

impl Default for DashboardsConfig {
    fn default() -> Self {
        DashboardsConfig {
            max_body_bytes: default_max_body_bytes(),
            clients: Vec::new(),
            folder: None,
            refresh_secs: default_refresh_secs(),
            history_from: None,
            theatre_report_at: default_theatre_report_at(),
        }
    }
}

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    lake: String,
    clients: auth::Clients,
    max_body_bytes: usize,
    ingest: Option<Arc<dyn IngestApi>>,
    /// People and their sessions, once set (see [`AppState::with_users`]).
    users: std::sync::OnceLock<(Arc<users::UserStore>, users::SessionLimits)>,
    /// The KPI series and dashboards the pages show, once set (see [`AppState::with_pages`]).
    pages: std::sync::OnceLock<routes::pages::Pages>,
    /// Where rules raise alerts, once set (see [`AppState::with_alerts`]).
    alerts: std::sync::OnceLock<Arc<alerts::Alerts>>,
    /// Analysts' statements running, per client.
    sql_running: routes::sql::Running,
    /// What analysts' statements may use, once set (see [`AppState::with_sql`]).
    sql: std::sync::OnceLock<routes::sql::SqlConfig>,
    /// Where sign-ins and statements are recorded, once set (see [`AppState::with_audit`]).
    audit: std::sync::OnceLock<audit::Audit>,
    /// When each client's view of patient-level data was last recorded, by what it viewed.
    viewed: std::sync::Mutex<HashMap<(String, &'static str), Instant>>,
}

/// A client's repeated views of the same patient-level data within this long are one entry in
/// the audit log: a wall screen or a script reading a board each second would otherwise bury
/// the log, and who saw it, and when to within minutes, is what the log is for.
const VIEW_RECORDED_EVERY: Duration = Duration::from_secs(300);

impl AppState {
    /// State for a service over the lake at `lake` (shown on `/health`), with the clients
    /// allowed in; without `ingest`, the ingest API answers 404.
    pub fn new(
        lake: impl Into<String>,
        clients: auth::Clients,
        max_body_bytes: usize,
        ingest: Option<Arc<dyn IngestApi>>,
    ) -> Self {
        AppState {
            inner: Arc::new(Inner {
                started: Instant::now(),
                lake: lake.into(),
                clients,
                max_body_bytes,
                ingest,
                users: std::sync::OnceLock::new(),
                pages: std::sync::OnceLock::new(),
                alerts: std::sync::OnceLock::new(),
                sql_running: routes::sql::Running::default(),
                sql: std::sync::OnceLock::new(),
                audit: std::sync::OnceLock::new(),
                viewed: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Lets people sign in (`/login`) with the accounts of `store`; without it only bearer
    /// tokens open the service. Set once: later calls change nothing.
    pub fn with_users(self, store: Arc<users::UserStore>, limits: users::SessionLimits) -> Self {
        let _ = self.inner.users.set((store, limits));
        self
    }

    /// Serves the pages (`/`, `/ipr`, dashboards, KPIs, data quality) from `kpis`' series and
    /// the `dashboards`; without it they answer 503. Set once.
    pub fn with_pages(
        self,
        kpis: Arc<kpis::KpiService>,
        dashboards: Arc<spec::Dashboards>,
    ) -> Self {
        let _ = self.inner.pages.set(routes::pages::Pages {
            kpis,
            dashboards,
            changes: Default::default(),
            theatres: Default::default(),
            command_centre: Default::default(),
        });
        self
    }

    /// Starts the live boards' tasks (they also start on their first viewer); they stop when
    /// `stopped` turns true. Without pages there is nothing to start.
    pub fn start_live(&self, stopped: tokio::sync::watch::Receiver<bool>) {
        if let Some(pages) = self.pages() {
            routes::pages::theatres::start(&pages.theatres, self, Some(stopped.clone()));
            routes::pages::command_centre::start(&pages.command_centre, self, Some(stopped));
        }
    }

    /// Lets the live boards' rules raise alerts into `alerts` (and its webhooks); without it
    /// nothing is raised and `/api/alerts` answers 503. Set once.
    pub fn with_alerts(self, alerts: Arc<alerts::Alerts>) -> Self {
        let _ = self.inner.alerts.set(alerts);
        self
    }

    pub fn alerts(&self) -> Option<&Arc<alerts::Alerts>> {
        self.inner.alerts.get()
    }

    pub fn pages(&self) -> Option<&routes::pages::Pages> {
        self.inner.pages.get()
    }

    pub(crate) fn sql_running(&self) -> &routes::sql::Running {
        &self.inner.sql_running
    }

    /// Limits analysts' statements (`[sql]`); without it, the defaults. Set once.
    pub fn with_sql(self, config: routes::sql::SqlConfig) -> Self {
        let _ = self.inner.sql.set(config);
        self
    }

    /// Records sign-ins and analysts' statements in the lake's `audit_log` through the ingest
    /// API's durable path (needs the ingest API and a runtime). Set once.
    pub fn with_audit(self) -> Self {
        if let Some(ingest) = &self.inner.ingest {
            let _ = self.inner.audit.set(audit::Audit::start(ingest.clone()));
        }
        self
    }

    /// Records that `client` viewed patient-level data (`what`: a page or its data), at most
    /// once a client and page every few minutes.
    pub(crate) fn audit_view(&self, client: &auth::Client, what: &'static str) {
        let now = Instant::now();
        let Ok(mut viewed) = self.inner.viewed.lock() else {
            return;
        };
        let key = (client.name.clone(), what);
        if viewed
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < VIEW_RECORDED_EVERY)
        {
            return;
        }
        if viewed.len() > 10_000 {
            viewed.retain(|_, at| now.duration_since(*at) < VIEW_RECORDED_EVERY);
        }
        viewed.insert(key, now);
        drop(viewed);
        self.audit(audit::Event {
            actor: client.name.clone(),
            door: "page",
            action: "view",
            detail: Some(what.to_string()),
            rows: None,
            millis: None,
            outcome: "ok",
        });
    }

    /// Records `event` in the audit log, when there is one (it is always traced).
    pub(crate) fn audit(&self, event: audit::Event) {
        match self.inner.audit.get() {
            Some(audit) => audit.record(event),
            None => tracing::info!(
                target: "bright::audit",
                actor = %event.actor,
                action = event.action,
                outcome = event.outcome,
                "Audit event."
            ),
        }
    }

    pub(crate) fn sql_config(&self) -> routes::sql::SqlConfig {
        self.inner.sql.get().cloned().unwrap_or_default()
    }

    pub fn users(&self) -> Option<&Arc<users::UserStore>> {
        self.inner.users.get().map(|(store, _)| store)
    }

    pub fn session_limits(&self) -> users::SessionLimits {
        self.inner
            .users
            .get()
            .map(|(_, limits)| *limits)
            .unwrap_or_default()
    }

    /// Time since the service started.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    pub fn clients(&self) -> &auth::Clients {
        &self.inner.clients
    }

    pub fn ingest(&self) -> Option<&Arc<dyn IngestApi>> {
        self.inner.ingest.as_ref()
    }
}

/// A JSON error body: `{"error": "..."}`.
pub(crate) fn error_body(message: &str) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "error": message }))
}

/// Every way a request can fail, as a status and a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Ingest(#[from] IngestRefusal),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, error_body(&message)).into_response(),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, error_body(&message)).into_response(),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, error_body(&message)).into_response()
            }
            ApiError::Ingest(refusal) => match refusal {
                IngestRefusal::UnknownFeed { .. } => {
                    (StatusCode::NOT_FOUND, error_body(&message)).into_response()
                }
                IngestRefusal::BadRecord {
                    position, field, ..
                } => {
                    let mut body = serde_json::json!({ "error": message, "field": field });
                    match position {
                        Position::Line(n) => body["line"] = n.into(),
                        Position::Element(n) => body["record"] = n.into(),
                    }
                    (StatusCode::BAD_REQUEST, Json(body)).into_response()
                }
                IngestRefusal::Busy { retry_after_secs } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(RETRY_AFTER, retry_after_secs.to_string())],
                    error_body(&message),
                )
                    .into_response(),
                IngestRefusal::Failed(source) => {
                    // The client sees a generic message; the cause is logged once, here.
                    tracing::error!(error = %source, "Storing an ingest request failed.");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        error_body("bright could not store the records; retry later"),
                    )
                        .into_response()
                }
            },
        }
    }
}

/// What `/health` answers.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    lake: String,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.inner.started.elapsed().as_secs(),
        lake: state.inner.lake.clone(),
    })
}

/// Routes anyone may open: health, and signing in and out.
pub const PUBLIC_PATHS: [&str; 3] = ["/health", "/login", "/logout"];

/// Every route that needs a token or a session, with its handlers: the router is built from
/// this list, so a test can walk it and prove that none of them opens without credentials.
pub fn protected_routes(state: &AppState) -> Vec<(&'static str, MethodRouter<AppState>)> {
    use routes::pages;
    vec![
        (
            "/api/ingest/{feed}",
            post(routes::ingest::post).layer(DefaultBodyLimit::max(state.inner.max_body_bytes)),
        ),
        ("/api/feeds", get(routes::feeds::get)),
        ("/metrics", get(routes::metrics::get)),
        ("/api/alerts", get(routes::alerts::list)),
        ("/api/alerts/{id}/ack", post(routes::alerts::acknowledge)),
        ("/", get(pages::home::html)),
        ("/api/home", get(pages::home::api)),
        ("/ipr", get(pages::ipr::html)),
        ("/ipr/export", get(pages::ipr::export)),
        ("/api/ipr", get(pages::ipr::api)),
        ("/dashboards/{id}", get(pages::dashboard::html)),
        ("/api/dashboards/{id}", get(pages::dashboard::api)),
        ("/kpi/{id}", get(pages::kpi::html)),
        ("/api/kpi/{id}", get(pages::kpi::api)),
        ("/kpi/{id}/annotations", post(pages::annotations::form)),
        ("/kpi/{id}/chart.svg", get(pages::kpi::svg)),
        ("/kpi/{id}/chart.png", get(pages::kpi::png)),
        ("/favourites", post(pages::favourites::favourite)),
        ("/views", post(pages::favourites::save_view)),
        ("/views/delete", post(pages::favourites::delete_view)),
        (
            "/api/annotations",
            get(pages::annotations::list).post(pages::annotations::post),
        ),
        ("/data-quality", get(pages::data_quality::html)),
        ("/theatres", get(pages::theatres::html)),
        ("/api/theatres", get(pages::theatres::api)),
        ("/theatres/stream", get(pages::theatres::events)),
        ("/theatres/report", get(pages::theatre_report::html)),
        ("/theatres/report.csv", get(pages::theatre_report::csv)),
        (
            "/theatres/report/export",
            get(pages::theatre_report::export),
        ),
        ("/api/theatres/report", get(pages::theatre_report::api)),
        ("/command-centre", get(pages::command_centre::html)),
        ("/api/command-centre", get(pages::command_centre::api)),
        ("/command-centre/stream", get(pages::command_centre::events)),
        ("/api/data-quality", get(pages::data_quality::api)),
        ("/api/sql", post(routes::sql::post)),
        ("/sql", get(pages::sql::html).post(pages::sql::post)),
        ("/sql.csv", post(pages::sql::csv)),
        ("/sql/saved", post(pages::sql::save)),
        ("/sql/saved/delete", post(pages::sql::delete)),
    ]
}

/// All routes: [`PUBLIC_PATHS`] open, every one of [`protected_routes`] behind
/// [`auth::authenticate`].
pub fn router(state: AppState) -> Router {
    let mut protected = Router::new();
    for (path, handlers) in protected_routes(&state) {
        protected = protected.route(path, handlers);
    }
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    Router::new()
        .route("/health", get(health))
        .route(
            "/login",
            get(routes::login::form).post(routes::login::login),
        )
        .route("/logout", post(routes::login::logout))
        // The link is the credential: it is checked by its handler.
        .route("/kiosk/{token}", get(routes::kiosk::open))
        .merge(protected)
        .with_state(state)
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then finishes requests in
/// flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const TOKEN: &str = "t-ed-system";

    fn state() -> AppState {
        let clients = auth::Clients::new(&[auth::ClientConfig {
            name: "ed-system".into(),
            token_sha256: auth::token_sha256(TOKEN),
            scopes: vec!["ingest:ed_attendances".into()],
            expires: None,
        }])
        .unwrap();
        AppState::new("file:///tmp/lake/", clients, 1024, None)
    }

    async fn send(request: Request<Body>) -> (StatusCode, serde_json::Value, Response) {
        let response = router(state()).oneshot(request).await.unwrap();
        let status = response.status();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json, Response::from_parts(parts, Body::empty()))
    }

    fn post(feed: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Request<Body> {
        let mut request =
            Request::post(format!("/api/ingest/{feed}")).header("content-type", content_type);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body)).unwrap()
    }

    /// A state whose people can sign in: `ward.manager` with `correct horse battery`.
    fn state_with_people(dir: &std::path::Path) -> AppState {
        let store = users::UserStore::open(&dir.join("users.sqlite3")).unwrap();
        store
            .add(
                "ward.manager",
                users::Role::Manager,
                "correct horse battery",
            )
            .unwrap();
        state().with_users(Arc::new(store), users::SessionLimits::default())
    }

    fn form(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.body(Body::from(body.to_string())).unwrap()
    }

    async fn answer(
        state: &AppState,
        request: Request<Body>,
    ) -> (StatusCode, String, axum::http::HeaderMap) {
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            String::from_utf8_lossy(&bytes).into_owned(),
            parts.headers,
        )
    }

    #[tokio::test]
    async fn people_sign_in_use_their_session_and_sign_out() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with_people(dir.path());

        let (status, page, _) = answer(
            &state,
            Request::get("/login?next=/api/feeds")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains(r#"<form method="post" action="/login">"#),
            "{page}"
        );
        assert!(page.contains(r#"value="/api/feeds""#), "{page}");
        // The page's style reaches the browser as written (not HTML-escaped).
        assert!(page.contains(r#"font-family:"Segoe UI""#), "{page}");

        // A wrong password: the page again, no cookie.
        let (status, page, headers) = answer(
            &state,
            form(
                "/login",
                "name=ward.manager&password=wrong+horse+battery&next=%2Fapi%2Ffeeds",
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(page.contains("do not match"), "{page}");
        assert!(headers.get("set-cookie").is_none());

        // The right one: a session cookie, and back to the page asked for.
        let (status, _, headers) = answer(
            &state,
            form(
                "/login",
                "name=ward.manager&password=correct+horse+battery&next=%2Fapi%2Ffeeds",
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/api/feeds");
        let set = headers["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();

        let get = |cookie: &str| {
            Request::get("/api/feeds")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap()
        };
        let (status, body, _) = answer(&state, get(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Changing anything with only the cookie (as another site could make a browser do)
        // is refused without the session's CSRF token.
        let (status, _, _) = answer(
            &state,
            Request::post("/api/ingest/ed_attendances")
                .header("cookie", &cookie)
                .header("content-type", "text/csv")
                .body(Body::from("a\n1\n"))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Logout needs the CSRF token too; then the cookie opens nothing.
        let (status, _, _) = answer(&state, form("/logout", "csrf=guess", Some(&cookie))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let token = cookie.split_once('=').unwrap().1;
        let csrf = state
            .users()
            .unwrap()
            .session(
                token,
                chrono::Utc::now().timestamp(),
                state.session_limits(),
            )
            .unwrap()
            .unwrap()
            .csrf;
        let (status, _, headers) = answer(
            &state,
            form("/logout", &format!("csrf={csrf}"), Some(&cookie)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/login");
        assert!(
            headers["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let (status, _, _) = answer(&state, get(&cookie)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, _) = answer(&state, get("bright_session=made-up")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn signing_in_goes_only_to_bright_and_slows_repeated_failures() {
        let dir = tempfile::tempdir().unwrap();
        let state = state_with_people(dir.path());
        let (status, _, headers) = answer(
            &state,
            form(
                "/login",
                "name=ward.manager&password=correct+horse+battery&next=%2F%2Fevil.example%2F",
                None,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"], "/");
        let (status, _, headers) = answer(
            &state,
            form(
                "/login",
                "name=ward.manager&password=correct+horse+battery&next=%2Fipr%3Fward%3D%C3%9Clm",
                None,
            ),
        )
        .await;
        // A path with non-ASCII text still leads there (as UTF-8 bytes, which browsers read).
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(headers["location"].as_bytes(), "/ipr?ward=Ülm".as_bytes());
        assert!(headers.contains_key("set-cookie"));

        let mut statuses = Vec::new();
        for _ in 0..6 {
            let (status, _, headers) = answer(
                &state,
                form("/login", "name=nobody&password=not+the+password", None),
            )
            .await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(headers.contains_key("retry-after"));
            }
            statuses.push(status);
        }
        assert_eq!(statuses[..4], [StatusCode::UNAUTHORIZED; 4]);
        assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    }

    #[tokio::test]
    async fn health_answers_ok_with_the_lake_and_needs_no_token() {
        let (status, body, _) = send(Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["lake"], "file:///tmp/lake/");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let (status, _, _) = send(Request::get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn ingest_without_a_valid_token_is_unauthorised() {
        let (status, body, response) =
            send(post("ed_attendances", None, "text/csv", b"a\n1\n".to_vec())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["error"].as_str().unwrap().contains("Bearer"));
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"bright\""
        );
        let (status, _, _) = send(post(
            "ed_attendances",
            Some("t-guess"),
            "text/csv",
            b"a\n".to_vec(),
        ))
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn a_client_posts_only_to_its_own_feeds() {
        let (status, body, _) = send(post("beds", Some(TOKEN), "text/csv", b"a\n".to_vec())).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body["error"].as_str().unwrap().contains("'beds'"));
    }

    #[tokio::test]
    async fn feed_health_needs_the_read_scope() {
        let request = Request::get("/api/feeds")
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        let (status, body, _) = send(request).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body["error"].as_str().unwrap().contains("'read'"));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_too_large() {
        let (status, _, _) = send(post(
            "ed_attendances",
            Some(TOKEN),
            "text/csv",
            vec![b'x'; 2048],
        ))
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn other_content_types_are_unsupported() {
        let (status, body, _) = send(post(
            "ed_attendances",
            Some(TOKEN),
            "text/plain",
            b"x".to_vec(),
        ))
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(body["error"].as_str().unwrap().contains("text/csv"));
    }
}
