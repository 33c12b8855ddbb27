//! `GET /login`, `POST /login`, `POST /logout`: people sign in with their name and password
//! and get a session cookie (HttpOnly, SameSite=Strict); logout ends the session on the server,
//! so the cookie opens nothing afterwards.
//!
//! Repeated failures for a name wait longer and longer (see [`crate::users`]); a wrong
//! password and an unknown name get the same answer. After signing in the browser goes back to
//! the page it came from, but only to a page of bright (a path, never another site).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "bright_session";
/// The form field (and, for scripts, the `x-csrf-token` header) carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

/// Where to go after signing in: a path of bright's, else the home page.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// The session token in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of cookie `wanted`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn page(message: Option<&str>, next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            (super::pages::head("Sign in", LOGIN_CSS))
            body {
                main {
                    h1 { "bright" }
                    p class="lead" { "Operational analytics for the trust. Sign in to see your dashboards." }
                    @if let Some(message) = message {
                        p class="error" role="alert" { (message) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="name" { "User name" }
                        input id="name" name="name" type="text" autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

const LOGIN_CSS: &str = "body{font-family:\"Segoe UI\",Arial,Helvetica,\"Liberation Sans\",sans-serif;background:#f0f4f5;color:#212b32;margin:0}\
main{max-width:24rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:4px;box-shadow:0 1px 3px rgba(0,0,0,.2)}\
h1{margin:0 0 .5rem;color:#005eb8}.lead{margin:0 0 1.5rem}\
label{display:block;font-weight:600;margin:1rem 0 .25rem}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:2px solid #4c6272}\
input:focus,button:focus{outline:3px solid #ffeb3b;outline-offset:0}\
button{margin-top:1.5rem;background:#007f3b;color:#fff;border:0;padding:.6rem 1.2rem;font-size:1rem;font-weight:600;cursor:pointer}\
.error{background:#fde8e8;border-left:6px solid #d5281b;padding:.5rem .75rem}";

/// `GET /login`.
pub async fn form(Query(query): Query<Next>) -> Markup {
    page(None, safe_next(query.next.as_deref()))
}

fn refused(status: StatusCode, message: &str, next: &str) -> Response {
    (status, page(Some(message), next)).into_response()
}

/// `POST /login`.
pub async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref()).to_string();
    let Some(users) = state.users().cloned() else {
        return refused(
            StatusCode::NOT_FOUND,
            "Signing in is not set up on this server.",
            &next,
        );
    };
    let name = form.name.trim().to_string();
    let tried = name.clone();
    // Hashing is CPU work: keep it off the threads that serve requests.
    let checked = tokio::task::spawn_blocking(move || {
        let at = now();
        let wait = users.login_wait_secs(&name, at)?;
        if wait > 0 {
            return Ok(Err(wait));
        }
        let user = users.verify(&name, &form.password)?;
        users.record_login(&name, user.is_some(), at)?;
        match user {
            Some(user) => users
                .start_session(&user, at)
                .map(|(token, _)| Ok(Some(token))),
            None => Ok(Ok(None)),
        }
    })
    .await;
    let checked = checked
        .map_err(|e| e.to_string())
        .and_then(|found| found.map_err(|e: crate::users::UsersError| e.to_string()));
    let outcome = match &checked {
        Ok(Ok(Some(_))) => Some(("login", "ok")),
        Ok(Ok(None)) => Some(("login_failed", "refused")),
        Ok(Err(_)) => Some(("login_failed", "locked")),
        Err(_) => None,
    };
    if let Some((action, outcome)) = outcome {
        state.audit(crate::audit::Event {
            actor: format!("user:{tried}"),
            door: "login",
            action,
            detail: None,
            rows: None,
            millis: None,
            outcome,
        });
    }
    match checked {
        Ok(Ok(Some(token))) => {
            let cookie = format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                token.0
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            // A path a header cannot carry goes home rather than nowhere.
            let location =
                HeaderValue::from_str(&next).unwrap_or_else(|_| HeaderValue::from_static("/"));
            headers.insert(LOCATION, location);
            match HeaderValue::from_str(&cookie) {
                Ok(cookie) => {
                    headers.insert(SET_COOKIE, cookie);
                }
                // The token is hex: this cannot happen, but if it did the person would only
                // be asked to sign in again.
                Err(e) => tracing::error!(error = %e, "A session cookie could not be set."),
            }
            response
        }
        Ok(Ok(None)) => refused(
            StatusCode::UNAUTHORIZED,
            "That user name and password do not match.",
            &next,
        ),
        Ok(Err(wait)) => {
            let mut response = refused(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed attempts for this name: try again in {wait} seconds."),
                &next,
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "Signing in failed.");
            refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bright could not sign you in; try again.",
                &next,
            )
        }
    }
}

/// `POST /logout`: ends the session when the form carries its CSRF token (so another site
/// cannot sign people out), and clears the cookie either way.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let (Some(users), Some(token)) = (state.users(), session_cookie(&headers)) {
        let limits = state.session_limits();
        match users.session(token, now(), limits) {
            Ok(Some(session)) if form.csrf.as_deref() == Some(session.csrf.as_str()) => {
                if let Err(e) = users.end_session(token) {
                    tracing::error!(error = %e, "Ending a session failed.");
                }
            }
            Ok(Some(_)) => return StatusCode::FORBIDDEN.into_response(),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "Looking up a session failed."),
        }
    }
    (
        StatusCode::SEE_OTHER,
        [
            (LOCATION, "/login"),
            (
                SET_COOKIE,
                "bright_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bright_paths_are_followed_after_signing_in() {
        assert_eq!(safe_next(Some("/ipr?site=NGH")), "/ipr?site=NGH");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "ipr",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
