//! Annotations and rebases: `GET /api/annotations` lists them, `POST /api/annotations` adds
//! one (JSON, for scripts), and `POST /kpi/{id}/annotations` is the KPI page's form (a note,
//! or "rebase here" with the reason). Only managers, admins and clients with the `annotate`
//! scope may add; each is stored in the lake with who wrote it and when, and drawn at once on
//! every chart of its KPI.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use bright_engine::annotations::{Annotation, AnnotationError, EVERY_ORG, Kind};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{HtmlError, PageError, pages_for};
use crate::AppState;
use crate::auth::Client;

/// What a person or script says of an annotation.
#[derive(Debug, Clone, Deserialize)]
pub struct Fields {
    /// The day it is about, `YYYY-MM-DD`.
    pub on_date: String,
    pub note: String,
    /// `note` (the default) or `rebase`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The organisation it is about (default: every organisation in the lake).
    #[serde(default)]
    pub org_code: Option<String>,
}

/// A script's annotation: the fields and the KPI.
#[derive(Debug, Clone, Deserialize)]
pub struct NewAnnotation {
    pub kpi: String,
    #[serde(flatten)]
    pub fields: Fields,
}

/// The KPI page's form: the KPI is in the path.
#[derive(Debug, Clone, Deserialize)]
pub struct AnnotationForm {
    #[serde(flatten)]
    pub fields: Fields,
    /// The page's query string, to go back to the same view.
    #[serde(default)]
    pub back: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    kpi: Option<String>,
    org_code: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Listed {
    pub annotations: Vec<Annotation>,
}

/// The earliest day a note may be about; notes may look up to a year ahead (a planned
/// change), not further.
const EARLIEST: NaiveDate = match NaiveDate::from_ymd_opt(1990, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

fn random_id() -> Result<String, PageError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes)
        .map_err(|e| PageError::Failed(format!("no randomness from the system: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Who a note is from: a person's name, or an API client's.
fn author(client: &Client) -> String {
    client
        .name
        .strip_prefix("user:")
        .unwrap_or(&client.name)
        .to_string()
}

async fn add(
    state: &AppState,
    client: &Client,
    new: NewAnnotation,
) -> Result<Annotation, PageError> {
    let pages = pages_for(state, client)?;
    if !client.may_annotate() {
        return Err(PageError::Forbidden(
            "only managers may annotate or rebase a KPI".into(),
        ));
    }
    let service = &pages.kpis;
    let catalogue = service
        .engine()
        .kpi_catalogue()
        .ok_or(PageError::Unavailable)?;
    let kpi = catalogue
        .get(&new.kpi)
        .map_err(|_| PageError::BadRequest(format!("no KPI '{}'", clip(&new.kpi))))?;
    let on_date =
        NaiveDate::parse_from_str(new.fields.on_date.trim(), "%Y-%m-%d").map_err(|_| {
            PageError::BadRequest(format!(
                "'{}' is not a date (YYYY-MM-DD)",
                clip(&new.fields.on_date)
            ))
        })?;
    let latest = service
        .today()
        .checked_add_days(chrono::Days::new(366))
        .unwrap_or(NaiveDate::MAX);
    if on_date < EARLIEST || on_date > latest {
        return Err(PageError::BadRequest(format!(
            "a note is about a day from {EARLIEST} to a year from today, not {on_date}"
        )));
    }
    let kind = match new.fields.kind.as_deref().map(str::trim) {
        None | Some("") => Kind::Note,
        Some(kind) => kind
            .parse()
            .map_err(|e: AnnotationError| PageError::BadRequest(e.to_string()))?,
    };
    let org_code = match new.fields.org_code.as_deref().map(str::trim) {
        None | Some("") => EVERY_ORG.to_string(),
        Some(org) => org.to_string(),
    };
    let annotation = Annotation {
        id: random_id()?,
        kpi_id: kpi.id.to_string(),
        org_code,
        kind,
        on_date,
        note: new.fields.note.trim().to_string(),
        author: author(client),
        created_at: chrono::Utc::now(),
    };
    service.annotate(&annotation).await.map_err(|e| match e {
        AnnotationError::Invalid(m) => PageError::BadRequest(m),
        other => PageError::Failed(other.to_string()),
    })?;
    tracing::info!(
        target: "bright::audit",
        client = %client.name,
        kpi = %annotation.kpi_id,
        kind = %annotation.kind,
        on_date = %annotation.on_date,
        id = %annotation.id,
        "Annotation added."
    );
    Ok(annotation)
}

/// At most 60 characters of what someone sent, for a message.
fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

/// `GET /api/annotations[?kpi=…&org_code=…]`.
pub async fn list(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Listed>, PageError> {
    let pages = pages_for(&state, &client)?;
    let service = &pages.kpis;
    service.read_notes_once().await;
    let org = query.org_code.as_deref().filter(|o| !o.is_empty());
    let annotations = match &query.kpi {
        Some(kpi) => service.notes(kpi, org),
        None => service
            .engine()
            .kpi_catalogue()
            .map(|c| {
                c.kpis
                    .iter()
                    .flat_map(|k| service.notes(k.id.as_str(), org))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(Json(Listed { annotations }))
}

/// `POST /api/annotations`: `201 Created` with the stored annotation.
pub async fn post(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Json(new): Json<NewAnnotation>,
) -> Result<(StatusCode, Json<Annotation>), PageError> {
    Ok((StatusCode::CREATED, Json(add(&state, &client, new).await?)))
}

/// `POST /kpi/{id}/annotations`: the KPI page's form; back to the page, at its notes.
pub async fn form(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<String>,
    Form(form): Form<AnnotationForm>,
) -> Result<Response, HtmlError> {
    let new = NewAnnotation {
        kpi: id.clone(),
        fields: form.fields,
    };
    let added = add(&state, &client, new).await?;
    let id = added.kpi_id;
    // Only this KPI's own page, with a plain query string, is a place to go back to.
    let back = form
        .back
        .filter(|q| !q.contains(['#', '/', '\\']) && !q.chars().any(char::is_control))
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let location = format!("/kpi/{id}{back}#notes");
    match axum::http::HeaderValue::from_str(&location) {
        Ok(value) => Ok((StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response()),
        Err(_) => Err(PageError::BadRequest("no page to go back to".into()).into()),
    }
}
