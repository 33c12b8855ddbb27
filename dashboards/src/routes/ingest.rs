//! `POST /api/ingest/{feed}`: records of a feed as NDJSON, a JSON array or CSV.
//!
//! 200 with the counts once every record is durable and queryable; 400 naming the first bad
//! record's line (or array element) and field, nothing of the request kept; 401/403 without a
//! token allowed to post to the feed; 404 for an unknown feed; 413 over the body limit; 415
//! for another content type; 503 with `Retry-After` while the lake is behind.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use bright_engine::ingest_api::{BodyFormat, IngestReceipt, IngestRequest};
use serde::Deserialize;

use crate::auth::Client;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub struct IngestQuery {
    /// The trust of records that do not name one (extracts rarely do).
    org_code: Option<String>,
}

pub async fn post(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(feed): Path<String>,
    Query(query): Query<IngestQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestReceipt>, ApiError> {
    if !client.may_ingest(&feed) {
        return Err(ApiError::Forbidden(format!(
            "client '{}' may not post to feed '{feed}'",
            client.name
        )));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = BodyFormat::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type '{content_type}': send application/x-ndjson, application/json or text/csv"
        ))
    })?;
    let Some(api) = state.ingest() else {
        return Err(ApiError::NotFound(
            "ingest is not running in this process (use bright serve)".into(),
        ));
    };
    let receipt = api
        .ingest(IngestRequest {
            feed,
            format,
            body: body.into(),
            org_code: query.org_code,
            client: client.name.clone(),
        })
        .await?;
    Ok(Json(receipt))
}
