//! `GET /api/alerts`: the latest alerts, newest first (scope `read`); `POST
//! /api/alerts/{id}/ack`: a person acknowledges one (the first acknowledgement stands).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use crate::alerts::{Alert, Deliveries};
use crate::auth::Client;
use crate::{AppState, error_body};

/// How many alerts the list holds.
const LATEST: usize = 50;

#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
    /// The webhook outbox.
    pub deliveries: Deliveries,
}

fn answer(status: StatusCode, message: &str) -> Response {
    (status, error_body(message)).into_response()
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "The alert store failed.");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "bright could not read the alerts; retry in a moment",
    )
}

pub async fn list(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Response {
    if !client.may_read() {
        return answer(
            StatusCode::FORBIDDEN,
            &format!("client '{}' may not read (scope 'read')", client.name),
        );
    }
    let Some(alerts) = state.alerts() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service runs without alerts",
        );
    };
    match (alerts.latest(LATEST), alerts.deliveries()) {
        (Ok(list), Ok(deliveries)) => Json(AlertList {
            alerts: list,
            deliveries,
        })
        .into_response(),
        (Err(e), _) | (_, Err(e)) => failed(e),
    }
}

pub async fn acknowledge(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Path(id): Path<i64>,
) -> Response {
    // An acknowledgement says a person is dealing with it: API clients cannot give one.
    if client.role.is_none() || !client.may_read() {
        return answer(
            StatusCode::FORBIDDEN,
            "only a signed-in person can acknowledge an alert",
        );
    }
    let Some(alerts) = state.alerts() else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service runs without alerts",
        );
    };
    let by = client.name.strip_prefix("user:").unwrap_or(&client.name);
    match alerts.acknowledge(id, by, Utc::now()) {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => answer(StatusCode::NOT_FOUND, &format!("there is no alert {id}")),
        Err(e) => failed(e),
    }
}
