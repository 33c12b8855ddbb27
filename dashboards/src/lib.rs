//! bright-dashboards: the HTTP service that serves bright's pages and boards.
//!
//! [`router`] builds the axum [`Router`] from an [`AppState`] so tests can drive it without a
//! socket; [`serve`] runs it on a listener until a shutdown signal. For now it serves
//! `/health` (the one endpoint that never needs authentication); dashboards, boards and the
//! ingest API join the same router as they land.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    lake: String,
}

impl AppState {
    /// State for a service over the lake at `lake` (shown on `/health`).
    pub fn new(lake: impl Into<String>) -> Self {
        AppState {
            inner: Arc::new(Inner {
                started: Instant::now(),
                lake: lake.into(),
            }),
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

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
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
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_answers_ok_with_the_lake() {
        let response = router(AppState::new("file:///tmp/lake/"))
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["lake"], "file:///tmp/lake/");
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let response = router(AppState::new("x"))
            .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
