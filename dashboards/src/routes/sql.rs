//! `POST /api/sql` (`{"sql": "…"}`): an analyst's statement over the lake, answered as JSON
//! (default), CSV (`Accept: text/csv`) or an Arrow IPC stream
//! (`Accept: application/vnd.apache.arrow.stream`).
//!
//! Only analysts and admins (or API clients with the `sql` scope) may; the statement runs in
//! the engine's sandbox (read-only, time, row and answer limits, its own memory and threads:
//! [`bright_engine::query::sandbox`]), a few at once per client ([`SqlConfig`]), and
//! each is written to the audit log with who, what, how many rows, how long and how it ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bright_engine::query::{Answer, Limits, OutputFormat, QueryError};
use serde::Deserialize;

use crate::auth::{Client, TokenRefused};
use crate::{AppState, error_body};

/// `[sql]` in `bright.toml`: what analysts' statements may use, on every door.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// A statement is stopped after this long.
    pub time_limit_secs: u64,
    /// Interactive doors answer at most this many rows (and say when there were more).
    pub max_rows: usize,
    /// A statement whose answer holds more is stopped.
    pub max_answer_mib: usize,
    /// Memory analysts' statements may hold together, apart from the service's own.
    pub memory_limit_mib: usize,
    /// Statements one client may have running at once: a second tab is fine, a script
    /// firing a hundred is told to wait.
    pub running_per_client: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        let limits = Limits::default();
        SqlConfig {
            time_limit_secs: limits.time.as_secs(),
            max_rows: limits.max_rows.unwrap_or(10_000),
            max_answer_mib: limits.max_result_bytes >> 20,
            memory_limit_mib: bright_engine::query::QueryConfig::default().analyst_memory_limit
                >> 20,
            running_per_client: 2,
        }
    }
}

impl SqlConfig {
    /// The limits of an interactive door's statement.
    pub fn limits(&self) -> Limits {
        Limits {
            time: std::time::Duration::from_secs(self.time_limit_secs.max(1)),
            max_rows: Some(self.max_rows.max(1)),
            max_result_bytes: self.max_answer_mib.max(1) << 20,
            ..Limits::default()
        }
    }
}

/// The Arrow IPC stream's media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub sql: String,
}

/// Statements running per client.
#[derive(Debug, Default)]
pub struct Running {
    by_client: Mutex<HashMap<String, usize>>,
}

/// A place among a client's running statements, given back when dropped.
pub struct Slot<'a> {
    running: &'a Running,
    client: String,
}

impl Running {
    fn take(&self, client: &str, most: usize) -> Option<Slot<'_>> {
        let mut by_client = self.by_client.lock().ok()?;
        let n = by_client.entry(client.to_string()).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(Slot {
            running: self,
            client: client.to_string(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut by_client) = self.running.by_client.lock()
            && let Some(n) = by_client.get_mut(&self.client)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// Why `client` may not run SQL, if it may not.
pub(crate) fn not_allowed(client: &Client) -> Option<String> {
    if client.may_sql() {
        return None;
    }
    let who = match client.role {
        Some(role) => format!("the role '{}'", role.as_str()),
        None => "this token".to_string(),
    };
    Some(format!(
        "SQL is for analysts and admins: {who} may not run it (a token needs the scope 'sql')"
    ))
}

/// Why a client of a SQL door (the Postgres or Flight SQL door) is not signed in.
pub(crate) enum SignIn {
    /// Said to the client: a wrong password, an expired token, a role without SQL.
    Refused(String),
    /// The user store could not be read.
    Failed(String),
}

/// Signs a SQL door's client in: `password` is an API token (then `user` is any name) or
/// the password of the person `user`, throttled as the sign-in page throttles. The client
/// must be allowed SQL. Each try is written to the audit log.
pub(crate) async fn sign_in(
    state: &AppState,
    user: String,
    password: String,
    door: &'static str,
) -> Result<Client, SignIn> {
    let (actor, checked) = match state.clients().authenticate(&password) {
        Ok(client) => (client.name.clone(), Ok(Client::clone(&client))),
        Err(expired @ TokenRefused::Expired(_)) => {
            (format!("user:{user}"), Err(expired.to_string()))
        }
        Err(TokenRefused::Unknown) => {
            let Some(users) = state.users().cloned() else {
                return Err(SignIn::Refused(
                    "password authentication failed: no such token".into(),
                ));
            };
            let name = user.clone();
            // Hashing is CPU work: off the connection's thread, as the sign-in page does.
            let found = tokio::task::spawn_blocking(move || {
                let at = chrono::Utc::now().timestamp();
                let wait = users.login_wait_secs(&name, at)?;
                if wait > 0 {
                    return Ok(Err(format!(
                        "too many failed attempts for \"{name}\": try again in {wait} seconds"
                    )));
                }
                let found = users.verify(&name, &password)?;
                users.record_login(&name, found.is_some(), at)?;
                Ok(found
                    .map(|u| crate::auth::person(&u, None))
                    .ok_or_else(|| format!("password authentication failed for user \"{name}\"")))
            })
            .await
            .map_err(|e| SignIn::Failed(e.to_string()))?
            .map_err(|e: crate::users::UsersError| SignIn::Failed(e.to_string()))?;
            (format!("user:{user}"), found)
        }
    };
    let checked = checked.and_then(|client| match not_allowed(&client) {
        Some(why) => Err(why),
        None => Ok(client),
    });
    let (action, outcome) = match checked {
        Ok(_) => ("login", "ok"),
        Err(_) => ("login_failed", "refused"),
    };
    state.audit(crate::audit::Event {
        actor,
        door,
        action,
        detail: None,
        rows: None,
        millis: None,
        outcome,
    });
    checked.map_err(SignIn::Refused)
}

/// Why a statement gave no answer.
pub(crate) enum Ran {
    /// The client has as many statements running as it may.
    Busy(String),
    Query(QueryError),
}

/// Runs `sql` for `client` through `door` under the `[sql]` limits, once the client has a
/// free place, and writes it to the audit log: who, what, how many rows, how long, how it
/// ended.
pub(crate) async fn run(
    state: &AppState,
    kpis: &crate::kpis::KpiService,
    client: &Client,
    sql: &str,
    door: &'static str,
) -> Result<Answer, Ran> {
    let engine = kpis.engine();
    let limits = limits_for(state, client);
    run_with(state, client, sql, door, engine.analyst_sql(sql, &limits)).await
}

/// The engine analysts' statements run in, when this service has one (the doors share it).
pub(crate) fn engine(
    state: &AppState,
) -> Option<std::sync::Arc<bright_engine::query::QueryEngine>> {
    state.pages().map(|pages| pages.kpis.engine().clone())
}

/// The `[sql]` limits of `client`'s statements: admins may read the audit log.
pub(crate) fn limits_for(state: &AppState, client: &Client) -> Limits {
    let mut limits = state.sql_config().limits();
    if client.role == Some(crate::users::Role::Admin) {
        limits.forbidden_tables.clear();
    }
    limits
}

/// The limits of a statement from analysts' own tools (the Postgres and Flight SQL doors):
/// no row limit, as BI tools import whole tables; the time, answer and table limits hold.
pub(crate) fn tool_limits(state: &AppState, client: &Client) -> Limits {
    Limits {
        max_rows: None,
        ..limits_for(state, client)
    }
}

/// Runs `work` (the statement `sql`, however a door runs it) once `client` has a free
/// place, and writes it to the audit log.
pub(crate) async fn run_with(
    state: &AppState,
    client: &Client,
    sql: &str,
    door: &'static str,
    work: impl Future<Output = Result<Answer, QueryError>>,
) -> Result<Answer, Ran> {
    let config = state.sql_config();
    let Some(_slot) = state
        .sql_running()
        .take(&client.name, config.running_per_client)
    else {
        return Err(Ran::Busy(format!(
            "{} of your statements are running; wait for one to finish",
            config.running_per_client
        )));
    };
    // Written however it ends, also when the client goes away or cancels it (psql's Ctrl-C)
    // and this wait is dropped half-way.
    let mut entry = Entry {
        state,
        client,
        sql,
        door,
        started: Instant::now(),
        ended: None,
    };
    let answer = work.await;
    entry.ended = Some(match &answer {
        Ok(a) => (Some(a.output.num_rows() as i64), outcome(None)),
        Err(e) => (None, outcome(Some(e))),
    });
    drop(entry);
    answer.map_err(Ran::Query)
}

/// One statement's line in the audit log, written when dropped.
struct Entry<'a> {
    state: &'a AppState,
    client: &'a Client,
    sql: &'a str,
    door: &'static str,
    started: Instant,
    /// Rows answered and the outcome; `None` while running (dropped then: cancelled).
    ended: Option<(Option<i64>, &'static str)>,
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        let (rows, outcome) = self.ended.unwrap_or((None, "cancelled"));
        record(
            self.state,
            self.client,
            self.sql,
            self.door,
            rows,
            self.started,
            outcome,
        );
    }
}

/// How a statement ended, as the audit log says it: `failed` is why it gave no answer.
pub(crate) fn outcome(failed: Option<&QueryError>) -> &'static str {
    match failed {
        None => "answered",
        Some(QueryError::Refused(_)) => "refused",
        Some(QueryError::Limit(_)) => "stopped",
        Some(_) => "failed",
    }
}

/// Writes one statement to the audit log.
pub(crate) fn record(
    state: &AppState,
    client: &Client,
    sql: &str,
    door: &'static str,
    rows: Option<i64>,
    started: Instant,
    outcome: &'static str,
) {
    state.audit(crate::audit::Event {
        actor: client.name.clone(),
        door,
        action: "sql",
        detail: Some(sql.to_string()),
        rows,
        millis: Some(started.elapsed().as_millis() as i64),
        outcome,
    });
}

fn refused(status: StatusCode, message: &str) -> Response {
    (status, error_body(message)).into_response()
}

pub async fn post(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    headers: HeaderMap,
    Json(request): Json<SqlRequest>,
) -> Response {
    if let Some(why) = not_allowed(&client) {
        return refused(StatusCode::FORBIDDEN, &why);
    }
    let Some(pages) = state.pages() else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service has no query engine",
        );
    };
    let e = match run(&state, &pages.kpis, &client, &request.sql, "http").await {
        Ok(answer) => return respond(&headers, &answer),
        Err(Ran::Busy(message)) => return refused(StatusCode::TOO_MANY_REQUESTS, &message),
        Err(Ran::Query(e)) => e,
    };
    match e {
        QueryError::Refused(_) | QueryError::DataFusion(_) | QueryError::Catalogue(_) => {
            refused(StatusCode::BAD_REQUEST, &e.to_string())
        }
        QueryError::Limit(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        e => {
            tracing::error!(error = %e, "An analyst's statement failed.");
            refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the statement failed inside bright; it is in the service's log",
            )
        }
    }
}

/// The answer in the format `Accept` asks for; rows left out at the row limit are said in a
/// header (`x-bright-truncated: true`) and, in JSON, in the body.
fn respond(headers: &HeaderMap, answer: &Answer) -> Response {
    let accept = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let truncated = [("x-bright-truncated", answer.truncated.to_string())];
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "Writing an analyst's answer failed.");
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the answer could not be written",
        )
    };
    if accept.contains(ARROW_STREAM) {
        let mut out = Vec::new();
        let written = (|| {
            let mut writer =
                arrow_ipc::writer::StreamWriter::try_new(&mut out, &answer.output.schema)?;
            for batch in &answer.output.batches {
                writer.write(batch)?;
            }
            writer.finish()
        })();
        return match written {
            Ok(()) => (truncated, [(CONTENT_TYPE, ARROW_STREAM)], out).into_response(),
            Err(e) => failed(&e),
        };
    }
    if accept.contains("text/csv") {
        let mut out = Vec::new();
        return match answer.output.write(OutputFormat::Csv, &mut out) {
            Ok(()) => (truncated, [(CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response(),
            Err(e) => failed(&e),
        };
    }
    let mut rows = Vec::new();
    if let Err(e) = answer.output.write(OutputFormat::Json, &mut rows) {
        return failed(&e);
    }
    let rows: serde_json::Value = match serde_json::from_slice(&rows) {
        Ok(rows) => rows,
        Err(e) => return failed(&e),
    };
    let columns: Vec<serde_json::Value> = answer
        .output
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    (
        truncated,
        Json(serde_json::json!({
            "columns": columns,
            "rows": rows,
            "row_count": answer.output.num_rows(),
            "truncated": answer.truncated,
        })),
    )
        .into_response()
}
