//! `GET /kiosk/{token}`: a wall screen opens its kiosk link once; bright checks the link,
//! keeps it in a cookie (so the board's live stream can use it too) and shows the board. The
//! cookie opens only that board, read-only, until an admin revokes the link (`bright kiosk
//! revoke`), after which the screen's next request is refused and the board dims.

use axum::extract::{Path, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The cookie a kiosk screen keeps its link in.
pub const KIOSK_COOKIE: &str = "bright_kiosk";

/// The paths a kiosk link for `board` may open (GET only).
pub fn paths(board: &str) -> &'static [&'static str] {
    match board {
        "theatres" => &["/theatres", "/theatres/stream", "/api/theatres"],
        "command-centre" => &[
            "/command-centre",
            "/command-centre/stream",
            "/api/command-centre",
        ],
        _ => &[],
    }
}

/// The kiosk cookie's value, if the request has one.
pub fn kiosk_cookie(headers: &HeaderMap) -> Option<&str> {
    crate::routes::login::cookie(headers, KIOSK_COOKIE)
}

pub async fn open(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let found = state.users().map(|users| users.kiosk(&token));
    let kiosk = match found {
        Some(Ok(Some(kiosk))) => kiosk,
        Some(Err(e)) => {
            tracing::error!(error = %e, "Looking up a kiosk link failed.");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        _ => {
            tracing::warn!(target: "bright::audit", status = 404, "An unknown or revoked kiosk link was opened.");
            return (
                StatusCode::NOT_FOUND,
                "This kiosk link is not valid: it may have been revoked. Ask an administrator for a new one.",
            )
                .into_response();
        }
    };
    tracing::info!(target: "bright::audit", kiosk = %kiosk.id, board = %kiosk.board, "A kiosk link was opened.");
    let board = paths(&kiosk.board).first().copied().unwrap_or("/");
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(LOCATION, HeaderValue::from_static(board));
    // A year: the screen stays signed in until the link is revoked.
    let cookie =
        format!("{KIOSK_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000");
    match HeaderValue::from_str(&cookie) {
        Ok(cookie) => {
            headers.insert(SET_COOKIE, cookie);
        }
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    }
    response
}
