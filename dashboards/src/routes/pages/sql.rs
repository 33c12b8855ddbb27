//! `/sql`: analysts' SQL in the browser — an editor, the answer as a table, its CSV, the
//! tables and views with their columns beside it, and each person's saved queries.
//!
//! `GET /sql[?q=LABEL]` shows the editor (with a saved query when asked); `POST /sql` runs
//! the statement and shows the answer under it; `POST /sql.csv` downloads it; `POST
//! /sql/saved` keeps it under a name, `POST /sql/saved/delete` forgets one. Statements run as
//! on every SQL door (`crate::routes::sql::run`): the sandbox, the `[sql]` limits, the audit
//! log. Only analysts and admins see the page.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bright_engine::arrow::array::Array;
use bright_engine::arrow::util::display::array_value_to_string;
use bright_engine::query::{Answer, OutputFormat, QueryOutput};
use bright_engine::reads;
use maud::{Markup, html};
use serde::Deserialize;

use super::favourites::{back_to, person};
use super::{Frame, HtmlError, PageError, Pages, download, page, pages_for, visible};
use crate::AppState;
use crate::auth::Client;
use crate::routes::login::CSRF_FIELD;
use crate::routes::sql::{Ran, run};
use crate::users::SavedQuery;

/// Rows a page shows; the CSV carries the rest (up to the row limit).
const SHOWN_ROWS: usize = 1_000;

/// What the editor holds when nothing else is asked for.
const FIRST: &str =
    "SELECT period, site, value\nFROM kpi.ed_4h_performance\nORDER BY period DESC, site\nLIMIT 50";

#[derive(Debug, Default, Deserialize)]
pub struct SqlQuery {
    /// A saved query's name, to load into the editor.
    #[serde(default)]
    q: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SqlForm {
    sql: String,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    label: String,
}

/// The pages, for a client that may run SQL.
fn analysts<'a>(state: &'a AppState, client: &Client) -> Result<&'a Pages, PageError> {
    let pages = pages_for(state, client)?;
    match crate::routes::sql::not_allowed(client) {
        Some(why) => Err(PageError::Forbidden(why)),
        None => Ok(pages),
    }
}

/// The signed-in analyst and the store their queries are kept in.
fn owner<'a>(
    state: &'a AppState,
    client: &'a Client,
) -> Result<(&'a str, &'a Arc<crate::users::UserStore>), PageError> {
    analysts(state, client)?;
    let name = person(client)
        .ok_or_else(|| PageError::Forbidden("saved queries belong to people who sign in".into()))?;
    let users = state.users().ok_or(PageError::Unavailable)?;
    Ok((name, users))
}

/// The person's saved queries (none for API clients).
fn saved(state: &AppState, client: &Client) -> Vec<SavedQuery> {
    let (Some(name), Some(users)) = (person(client), state.users()) else {
        return Vec::new();
    };
    users.saved_queries(name).unwrap_or_else(|e| {
        tracing::error!(error = %e, "Reading saved queries failed.");
        Vec::new()
    })
}

/// Every table and view analysts can read, with its columns (none, logged, if the listing
/// fails: the editor still works).
async fn catalogue(pages: &Pages) -> Vec<reads::Listed> {
    reads::tables(pages.kpis.engine())
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "Listing the tables failed.");
            Vec::new()
        })
}

/// The answer of the statement on the page, or why there is none.
enum Shown {
    Nothing,
    /// Its first rows, and how many it has.
    Answer(Answer, usize),
    Refused(String),
}

async fn render(
    state: &AppState,
    client: &Client,
    pages: &Pages,
    sql: &str,
    shown: Shown,
) -> Markup {
    let tables = catalogue(pages).await;
    let saved = saved(state, client);
    let csrf = html! {
        @if let Some(csrf) = &client.csrf {
            input type="hidden" name=(CSRF_FIELD) value=(csrf);
        }
    };
    let main = html! {
        h1 { "SQL" }
        p class="lead" {
            "Ask the lake anything: its tables, the buffer of rows just received, and every KPI as a view ("
            code { "kpi.…" } "). SQL here only reads; a statement is stopped after "
            (state.sql_config().time_limit_secs) " s, and each is recorded."
        }
        div class="sql-layout" {
            div class="sql-work" {
                form class="sql-editor" method="post" action="/sql" {
                    (csrf)
                    label for="sql" { "Statement" }
                    textarea id="sql" name="sql" rows="10" spellcheck="false" required { (sql) }
                    div class="sql-actions" {
                        button class="button" type="submit" { "Run" }
                        button class="quiet" type="submit" formaction="/sql.csv" { "Download CSV" }
                        @if person(client).is_some() {
                            label for="label" { "Save as" }
                            input id="label" type="text" name="label" maxlength="80";
                            button class="quiet" type="submit" formaction="/sql/saved" { "Save" }
                        }
                    }
                }
                @match &shown {
                    Shown::Nothing => {}
                    Shown::Refused(why) => {
                        div class="sql-error" role="alert" { strong { "Not answered. " } (why) }
                    }
                    Shown::Answer(answer, total) => { (answer_table(answer, *total)) }
                }
            }
            aside class="sql-side" aria-label="Tables and saved queries" {
                @if !saved.is_empty() {
                    h2 { "Your saved queries" }
                    ul class="saved-queries" {
                        @for q in &saved {
                            li {
                                a href=(format!("/sql?q={}", url::form_urlencoded::byte_serialize(q.label.as_bytes()).collect::<String>())) { (q.label) }
                                form class="inline" method="post" action="/sql/saved/delete" {
                                    (csrf)
                                    input type="hidden" name="label" value=(q.label);
                                    button class="quiet" type="submit" aria-label=(format!("Delete saved query {}", q.label)) { "Delete" }
                                }
                            }
                        }
                    }
                }
                h2 { "Tables and views" }
                @for table in &tables {
                    details class="table-columns" {
                        summary { code { (table.name) } }
                        ul {
                            @for (column, kind) in &table.columns {
                                li { code { (column) } " " span class="type" { (kind) } }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        &Frame {
            title: "SQL",
            client,
            dashboards: visible(&pages.dashboards, client),
            current: "/sql",
            as_of: "Live lake".to_string(),
        },
        main,
    )
}

/// The answer as a table (its first [`SHOWN_ROWS`] rows), with its size, `total`, said
/// above it.
fn answer_table(answer: &Answer, total: usize) -> Markup {
    let output: &QueryOutput = &answer.output;
    let fields = output.schema.fields();
    html! {
        p class="sql-count" role="status" {
            (total) @if total == 1 { " row" } @else { " rows" }
            @if answer.truncated { " (the first; there are more — aggregate, or add a LIMIT)" }
            @if total > SHOWN_ROWS { ". The first " (SHOWN_ROWS) " are shown; the CSV has them all." }
        }
        // Scrolls on its own (wide and long answers), so the keyboard can reach it too.
        div class="sql-answer" tabindex="0" role="region" aria-label="Answer" {
            table class="report" {
                thead { tr { @for f in fields { th scope="col" { (f.name()) } } } }
                tbody {
                    @for batch in &output.batches {
                        @for r in 0..batch.num_rows() {
                            tr {
                                @for c in 0..batch.num_columns() {
                                    @let column = batch.column(c);
                                    @if column.is_null(r) {
                                        td class="null" { "NULL" }
                                    } @else {
                                        td { (array_value_to_string(column, r).unwrap_or_default()) }
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

/// The answer limited to the rows a page shows.
fn first_rows(mut answer: Answer) -> Answer {
    let mut left = SHOWN_ROWS;
    answer.output.batches = answer
        .output
        .batches
        .into_iter()
        .filter_map(|b| {
            let keep = b.num_rows().min(left);
            left -= keep;
            (keep > 0).then(|| b.slice(0, keep))
        })
        .collect();
    answer
}

/// `GET /sql[?q=LABEL]`.
pub async fn html(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<SqlQuery>,
) -> Result<Markup, HtmlError> {
    let pages = analysts(&state, &client)?;
    let sql = match &query.q {
        Some(label) => saved(&state, &client)
            .into_iter()
            .find(|q| q.label == *label)
            .map(|q| q.sql)
            .ok_or_else(|| PageError::NotFound(format!("no saved query '{label}'")))?,
        None => FIRST.to_string(),
    };
    Ok(render(&state, &client, pages, &sql, Shown::Nothing).await)
}

/// `POST /sql`: the statement run, its answer under it.
pub async fn post(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<SqlForm>,
) -> Result<Response, HtmlError> {
    let pages = analysts(&state, &client)?;
    let (status, shown) = match run(&state, &pages.kpis, &client, &form.sql, "page").await {
        Ok(answer) => {
            let total = answer.output.num_rows();
            (StatusCode::OK, Shown::Answer(first_rows(answer), total))
        }
        Err(Ran::Busy(why)) => (StatusCode::TOO_MANY_REQUESTS, Shown::Refused(why)),
        Err(Ran::Query(e)) => (StatusCode::BAD_REQUEST, Shown::Refused(e.to_string())),
    };
    Ok((
        status,
        render(&state, &client, pages, &form.sql, shown).await,
    )
        .into_response())
}

/// `POST /sql.csv`: the answer as a file.
pub async fn csv(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<SqlForm>,
) -> Result<Response, HtmlError> {
    let pages = analysts(&state, &client)?;
    let answer = match run(&state, &pages.kpis, &client, &form.sql, "page").await {
        Ok(answer) => answer,
        Err(Ran::Busy(why)) => return Err(PageError::BadRequest(why).into()),
        Err(Ran::Query(e)) => return Err(PageError::BadRequest(e.to_string()).into()),
    };
    let mut body = Vec::new();
    answer
        .output
        .write(OutputFormat::Csv, &mut body)
        .map_err(|e| PageError::Failed(e.to_string()))?;
    Ok(download(
        "text/csv; charset=utf-8",
        "bright-query.csv".into(),
        body,
    ))
}

/// `POST /sql/saved`: kept under its name, then shown.
pub async fn save(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<SqlForm>,
) -> Result<Response, HtmlError> {
    let (name, users) = owner(&state, &client)?;
    let label = form.label.unwrap_or_default();
    let kept = users
        .save_query(name, &label, &form.sql)
        .map_err(|e| match e {
            crate::users::UsersError::BadView(m) => PageError::BadRequest(m),
            other => PageError::Failed(other.to_string()),
        })?;
    let to = format!(
        "/sql?q={}",
        url::form_urlencoded::byte_serialize(kept.label.as_bytes()).collect::<String>()
    );
    Ok(back_to(Some(&to)))
}

/// `POST /sql/saved/delete`.
pub async fn delete(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, HtmlError> {
    let (name, users) = owner(&state, &client)?;
    users
        .delete_query(name, &form.label)
        .map_err(|e| PageError::Failed(e.to_string()))?;
    Ok(back_to(Some("/sql")))
}
