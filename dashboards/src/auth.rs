//! Who may call what: bearer tokens, their scopes, and the audit trail.
//!
//! Every endpoint except `/health` needs `Authorization: Bearer <token>`. The configuration
//! holds only each token's SHA-256, never the token, so a leaked config file opens nothing.
//! A client has scopes: `read` (dashboards, KPIs and SQL), `ingest:<feed>` or `ingest:*`.
//! Each authenticated request is written to the audit log (the `bright::audit` tracing
//! target): client, method, path, status. Refused ones are logged there too, without a
//! client.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::users::Role;
use crate::{AppState, error_body};

/// One API client in `bright.toml` (`[[dashboards.clients]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Who the client is, as the audit log names it (e.g. `ed-system`).
    pub name: String,
    /// Hex SHA-256 of the client's token (`bright token new` prints both).
    pub token_sha256: String,
    /// `read`, `annotate`, `sql`, `ingest:<feed>` or `ingest:*`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When the token stops working: an RFC 3339 time (`2027-03-31T18:00:00Z`) or a date
    /// (`2027-03-31`: through that day, UTC). None: until it is removed.
    #[serde(default)]
    pub expires: Option<String>,
}

/// What a scope allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Read,
    /// Posting to one feed, or (`None`) to every feed.
    Ingest(Option<String>),
    /// Adding annotations and rebases to KPIs.
    Annotate,
    /// Running SQL over the lake (`POST /api/sql` and the other SQL doors).
    Sql,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "annotate" => Ok(Scope::Annotate),
            "sql" => Ok(Scope::Sql),
            "ingest:*" => Ok(Scope::Ingest(None)),
            _ => match s.strip_prefix("ingest:") {
                Some(feed) if !feed.is_empty() => Ok(Scope::Ingest(Some(feed.to_string()))),
                _ => Err(format!(
                    "unknown scope '{s}' (read, annotate, sql, ingest:<feed> or ingest:*)"
                )),
            },
        }
    }
}

/// An authenticated client: an API client with a token, or a signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// A person's role; `None` for API clients, whose scopes alone decide.
    pub role: Option<Role>,
    /// A person's session CSRF token, which the pages' forms carry.
    pub csrf: Option<String>,
    /// A wall screen's kiosk link: it reads its one board and nothing else.
    pub kiosk: Option<crate::users::Kiosk>,
}

impl Client {
    /// Whether the client may post to `feed`.
    pub fn may_ingest(&self, feed: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Ingest(None) => true,
            Scope::Ingest(Some(f)) => f == feed,
            Scope::Read | Scope::Annotate | Scope::Sql => false,
        })
    }

    /// Whether the client may annotate and rebase KPIs (managers, admins, clients so scoped).
    pub fn may_annotate(&self) -> bool {
        self.scopes.contains(&Scope::Annotate)
    }

    /// Whether the client may read dashboards, KPIs and the lake.
    pub fn may_read(&self) -> bool {
        self.scopes.contains(&Scope::Read)
    }

    /// Whether the client may run SQL over the lake (analysts, admins, clients so scoped).
    pub fn may_sql(&self) -> bool {
        self.scopes.contains(&Scope::Sql)
    }
}

/// A client entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientsError {
    #[error("client '{name}': token_sha256 must be 64 hex digits")]
    BadHash { name: String },
    #[error("client '{name}': {reason}")]
    BadScope { name: String, reason: String },
    #[error("clients '{first}' and '{second}' have the same token")]
    SharedToken { first: String, second: String },
    #[error("a client has an empty name")]
    NoName,
    #[error(
        "client '{name}': expires must be an RFC 3339 time or a YYYY-MM-DD date, not '{value}'"
    )]
    BadExpiry { name: String, value: String },
}

/// Why a token opens nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefused {
    Unknown,
    /// It belongs to a client, but expired at this time.
    Expired(chrono::DateTime<chrono::Utc>),
}

impl std::fmt::Display for TokenRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenRefused::Unknown => f.write_str("unknown token"),
            TokenRefused::Expired(at) => write!(
                f,
                "this token expired at {}; ask for a new one",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        }
    }
}

/// When a token configured to expire at `value` stops working.
fn expiry(name: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, ClientsError> {
    let value = value.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.succ_opt())
        .and_then(|next| next.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .ok_or_else(|| ClientsError::BadExpiry {
            name: name.to_string(),
            value: value.to_string(),
        })
}

/// The configured clients, by the hash of their token.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    /// Each client, and when its token expires.
    by_hash: HashMap<String, (Arc<Client>, Option<chrono::DateTime<chrono::Utc>>)>,
}

/// Hex SHA-256 of a token, as the configuration stores it.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Clients {
    /// Checks and indexes the configured clients.
    pub fn new(configs: &[ClientConfig]) -> Result<Clients, ClientsError> {
        let mut by_hash = HashMap::new();
        for config in configs {
            if config.name.trim().is_empty() {
                return Err(ClientsError::NoName);
            }
            let hash = config.token_sha256.trim().to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ClientsError::BadHash {
                    name: config.name.clone(),
                });
            }
            let scopes = config
                .scopes
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<Scope>, String>>()
                .map_err(|reason| ClientsError::BadScope {
                    name: config.name.clone(),
                    reason,
                })?;
            let client = Arc::new(Client {
                name: config.name.clone(),
                scopes,
                role: None,
                csrf: None,
                kiosk: None,
            });
            let expires = config
                .expires
                .as_deref()
                .map(|value| expiry(&config.name, value))
                .transpose()?;
            if let Some((first, _)) = by_hash.insert(hash, (client, expires)) {
                return Err(ClientsError::SharedToken {
                    first: first.name.clone(),
                    second: config.name.clone(),
                });
            }
        }
        Ok(Clients { by_hash })
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The client a bearer token belongs to, while the token has not expired.
    pub fn authenticate(&self, token: &str) -> Result<Arc<Client>, TokenRefused> {
        match self.by_hash.get(&token_sha256(token)) {
            None => Err(TokenRefused::Unknown),
            Some((_, Some(at))) if *at <= chrono::Utc::now() => Err(TokenRefused::Expired(*at)),
            Some((client, _)) => Ok(client.clone()),
        }
    }
}

fn unauthorized(reason: &str) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, error_body(reason)).into_response();
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"bright\""),
    );
    response
}

/// A signed-in person as a client: their session (from its cookie), live, with the `read`
/// scope; a request that changes anything must also carry the session's CSRF token in the
/// `x-csrf-token` header, so another site cannot act in their name.
fn session_client(state: &AppState, request: &Request) -> Result<Arc<Client>, Box<Response>> {
    let none = || {
        Box::new(unauthorized(
            "this endpoint needs Authorization: Bearer <token> or a signed-in session",
        ))
    };
    let (Some(users), Some(token)) = (
        state.users(),
        crate::routes::login::session_cookie(request.headers()),
    ) else {
        return Err(none());
    };
    let now = chrono::Utc::now().timestamp();
    let session = match users.session(token, now, state.session_limits()) {
        Ok(Some(session)) => session,
        Ok(None) => return Err(none()),
        Err(e) => {
            tracing::error!(error = %e, "Looking up a session failed.");
            return Err(Box::new(StatusCode::INTERNAL_SERVER_ERROR.into_response()));
        }
    };
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let csrf = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok());
    if !safe && csrf != Some(session.csrf.as_str()) {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                error_body("a signed-in request that changes anything needs its x-csrf-token"),
            )
                .into_response(),
        ));
    }
    Ok(Arc::new(person(&session.user, Some(session.csrf))))
}

/// A signed-in person as a client: what their role allows.
pub(crate) fn person(user: &crate::users::User, csrf: Option<String>) -> Client {
    let scopes = match user.role {
        Role::Manager => vec![Scope::Read, Scope::Annotate],
        Role::Admin => vec![Scope::Read, Scope::Annotate, Scope::Sql],
        Role::Analyst => vec![Scope::Read, Scope::Sql],
        _ => vec![Scope::Read],
    };
    Client {
        name: format!("user:{}", user.name),
        scopes,
        role: Some(user.role),
        csrf,
        kiosk: None,
    }
}

/// A wall screen with a kiosk link (its cookie), asking for a page of its board with GET:
/// a reader of that board only.
fn kiosk_client(state: &AppState, request: &Request) -> Option<Result<Arc<Client>, Box<Response>>> {
    let token = crate::routes::kiosk::kiosk_cookie(request.headers())?;
    let users = state.users()?;
    let kiosk = match users.kiosk(token) {
        Ok(Some(kiosk)) => kiosk,
        Ok(None) => {
            return Some(Err(Box::new(unauthorized(
                "this screen's kiosk link was revoked; ask an administrator for a new one",
            ))));
        }
        Err(e) => {
            tracing::error!(error = %e, "Looking up a kiosk link failed.");
            return Some(Err(Box::new(
                StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            )));
        }
    };
    let reading = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !reading || !crate::routes::kiosk::paths(&kiosk.board).contains(&request.uri().path()) {
        return Some(Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                error_body("a kiosk link opens only its own board"),
            )
                .into_response(),
        )));
    }
    Some(Ok(Arc::new(Client {
        name: format!("kiosk:{}", kiosk.id),
        scopes: vec![Scope::Read],
        role: None,
        csrf: None,
        kiosk: Some(kiosk),
    })))
}

/// A browser's page request (not the API, not a change): sent to sign in when it has no
/// session, where an API call gets 401.
fn is_page(request: &Request) -> bool {
    matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) && !request.uri().path().starts_with("/api/")
}

/// `303 See Other` to `/login?next=<this page>`.
fn sign_in_first(request: &Request) -> Response {
    let wanted = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let next: String = url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect();
    let location = format!("/login?next={next}");
    match HeaderValue::from_str(&location) {
        Ok(value) => (
            StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, value)],
        )
            .into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(
                axum::http::header::LOCATION,
                HeaderValue::from_static("/login"),
            )],
        )
            .into_response(),
    }
}

/// The largest form a page posts (a note and a few fields); a bigger one is refused before
/// its CSRF token is looked for.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A page's form carries its CSRF token as the field `csrf` (a form cannot set headers): for
/// a signed-in form post without the `x-csrf-token` header, the field's value is copied into
/// it, so the one check in [`session_client`] covers forms and scripts alike. The body is put
/// back for the handler.
async fn form_csrf_to_header(request: Request) -> Result<Request, Response> {
    let is_form = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|e| e.trim() == "application/x-www-form-urlencoded")
        });
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !is_form || safe || request.headers().contains_key("x-csrf-token") {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                error_body("a form of more than 16 KiB"),
            )
                .into_response()
        })?;
    let field = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == crate::routes::login::CSRF_FIELD)
        .and_then(|(_, value)| HeaderValue::from_str(&value).ok());
    if let Some(value) = field {
        parts.headers.insert("x-csrf-token", value);
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// Middleware on every route but `/health` and the login pages: authenticates the bearer
/// token (or a signed-in session), hands the [`Client`] to the handler, and writes the audit
/// line.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let client = match token {
        Some(token) => match state.clients().authenticate(token) {
            Ok(client) => client,
            Err(refused) => {
                tracing::warn!(target: "bright::audit", %method, %path, status = 401, %refused, "Request with a token refused.");
                return unauthorized(&refused.to_string());
            }
        },
        None => {
            request = match form_csrf_to_header(request).await {
                Ok(request) => request,
                Err(response) => return response,
            };
            let kiosk = crate::routes::login::session_cookie(request.headers())
                .is_none()
                .then(|| kiosk_client(&state, &request))
                .flatten();
            match kiosk.unwrap_or_else(|| session_client(&state, &request)) {
                Ok(client) => client,
                Err(response)
                    if response.status() == StatusCode::UNAUTHORIZED && is_page(&request) =>
                {
                    // A person opening a page is sent to sign in, and brought back afterwards.
                    tracing::info!(target: "bright::audit", %method, %path, status = 303, "Page without a session: sent to sign in.");
                    return sign_in_first(&request);
                }
                Err(response) => {
                    tracing::info!(target: "bright::audit", %method, %path, status = response.status().as_u16(), "Request without a token or session refused.");
                    return *response;
                }
            }
        }
    };
    request.extensions_mut().insert(client.clone());
    let response = next.run(request).await;
    tracing::info!(
        target: "bright::audit",
        client = %client.name,
        %method,
        %path,
        status = response.status().as_u16(),
        "Request."
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, token: &str, scopes: &[&str]) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            token_sha256: token_sha256(token),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            expires: None,
        }
    }

    #[test]
    fn a_token_finds_its_client_and_scopes() {
        let clients = Clients::new(&[
            config("ed", "t-ed", &["ingest:ed_attendances"]),
            config("ops", "t-ops", &["read", "ingest:*"]),
        ])
        .unwrap();
        let ed = clients.authenticate("t-ed").unwrap();
        assert!(ed.may_ingest("ed_attendances"));
        assert!(!ed.may_ingest("beds"));
        assert!(!ed.may_read());
        let ops = clients.authenticate("t-ops").unwrap();
        assert!(ops.may_ingest("beds") && ops.may_read());
        assert_eq!(
            clients.authenticate("t-nobody").unwrap_err(),
            TokenRefused::Unknown
        );
    }

    #[test]
    fn an_expired_token_is_refused_with_when() {
        let mut old = config("old", "t-old", &["sql"]);
        old.expires = Some("2020-01-31".into());
        let mut new = config("new", "t-new", &["sql"]);
        new.expires = Some("2999-01-01T00:00:00Z".into());
        let clients = Clients::new(&[old, new]).unwrap();
        let refused = clients.authenticate("t-old").unwrap_err();
        // A date is the last day the token works.
        assert_eq!(
            refused,
            TokenRefused::Expired("2020-02-01T00:00:00Z".parse().unwrap())
        );
        assert!(refused.to_string().contains("expired at 2020-02-01 00:00"));
        assert_eq!(clients.authenticate("t-new").unwrap().name, "new");
        let mut bad = config("bad", "t-bad", &[]);
        bad.expires = Some("soon".into());
        assert!(matches!(
            Clients::new(&[bad]).unwrap_err(),
            ClientsError::BadExpiry { .. }
        ));
    }

    #[test]
    fn bad_client_entries_are_refused_by_name() {
        let mut bad = config("x", "t", &[]);
        bad.token_sha256 = "abc".into();
        assert_eq!(
            Clients::new(&[bad]).unwrap_err(),
            ClientsError::BadHash { name: "x".into() }
        );
        let e = Clients::new(&[config("y", "t", &["write"])]).unwrap_err();
        assert!(e.to_string().contains("unknown scope 'write'"), "{e}");
        let e = Clients::new(&[config("a", "t", &[]), config("b", "t", &[])]).unwrap_err();
        assert!(matches!(e, ClientsError::SharedToken { .. }));
    }
}
