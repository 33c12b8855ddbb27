//! `GET /api/feeds`: every feed's health (last delivery, rates, refusals, rows waiting for the
//! lake, stale or not), for the command centre and alerts. Needs the `read` scope.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use bright_engine::ingest_api::FeedStatus;
use serde::Serialize;

use crate::auth::Client;
use crate::{ApiError, AppState};

#[derive(Debug, Serialize)]
pub struct Feeds {
    feeds: Vec<FeedStatus>,
}

pub async fn get(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Result<Json<Feeds>, ApiError> {
    if !client.may_read() {
        return Err(ApiError::Forbidden(format!(
            "client '{}' may not read (scope 'read')",
            client.name
        )));
    }
    let feeds = state.ingest().map(|api| api.feeds()).unwrap_or_default();
    Ok(Json(Feeds { feeds }))
}
