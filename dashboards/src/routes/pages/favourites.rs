//! A person's own bright: `POST /favourites` pins or unpins a dashboard (pinned ones come
//! first on the home page), `POST /views` saves the page on screen with its filters under a
//! name, `POST /views/delete` forgets one. They are kept per person in the user store and
//! belong to people, not API clients.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{HtmlError, PageError, pages_for};
use crate::AppState;
use crate::auth::Client;
use crate::routes::login::CSRF_FIELD;
use crate::users::{SavedView, UserStore, UsersError};

#[derive(Debug, Deserialize)]
pub struct FavouriteForm {
    dashboard: String,
    /// `true` pins, anything else unpins.
    pinned: String,
    back: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ViewForm {
    label: String,
    path: String,
}

#[derive(Debug, Deserialize)]
pub struct DeleteViewForm {
    label: String,
    back: Option<String>,
}

/// The signed-in person's name, if the client is a person.
pub(crate) fn person(client: &Client) -> Option<&str> {
    client.role?;
    client.name.strip_prefix("user:")
}

/// The person and the store their things are kept in.
fn store_of<'a>(
    state: &'a AppState,
    client: &'a Client,
) -> Result<(&'a str, &'a Arc<UserStore>), PageError> {
    pages_for(state, client)?;
    let name = person(client).ok_or_else(|| {
        PageError::Forbidden("favourites and saved views belong to people who sign in".into())
    })?;
    let users = state.users().ok_or(PageError::Unavailable)?;
    Ok((name, users))
}

fn store_error(e: UsersError) -> PageError {
    match e {
        UsersError::BadView(m) => PageError::BadRequest(m),
        other => PageError::Failed(other.to_string()),
    }
}

/// `303` to `path` when it is a page of bright's, else home.
pub(crate) fn back_to(path: Option<&str>) -> Response {
    let path = crate::routes::login::safe_next(path);
    match axum::http::HeaderValue::from_str(path) {
        Ok(value) => (StatusCode::SEE_OTHER, [(LOCATION, value)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, axum::http::HeaderValue::from_static("/"))],
        )
            .into_response(),
    }
}

/// `POST /favourites`.
pub async fn favourite(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<FavouriteForm>,
) -> Result<Response, HtmlError> {
    let (name, users) = store_of(&state, &client)?;
    let pages = pages_for(&state, &client)?;
    let known = super::visible(&pages.dashboards, &client)
        .iter()
        .any(|d| d.id == form.dashboard);
    if !known {
        return Err(PageError::NotFound("no such dashboard".into()).into());
    }
    users
        .set_favourite(name, &form.dashboard, form.pinned == "true")
        .map_err(store_error)?;
    Ok(back_to(form.back.as_deref()))
}

/// `POST /views`: saved, then shown.
pub async fn save_view(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<ViewForm>,
) -> Result<Response, HtmlError> {
    let (name, users) = store_of(&state, &client)?;
    let saved = users
        .save_view(name, &form.label, &form.path)
        .map_err(store_error)?;
    Ok(back_to(Some(&saved.path)))
}

/// `POST /views/delete`.
pub async fn delete_view(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
    Form(form): Form<DeleteViewForm>,
) -> Result<Response, HtmlError> {
    let (name, users) = store_of(&state, &client)?;
    users.delete_view(name, &form.label).map_err(store_error)?;
    Ok(back_to(form.back.as_deref()))
}

/// The person's favourites and saved views, empty for API clients.
pub(crate) fn own(state: &AppState, client: &Client) -> (Vec<String>, Vec<SavedView>) {
    let (Some(name), Some(users)) = (person(client), state.users()) else {
        return (Vec::new(), Vec::new());
    };
    let favourites = users.favourites(name).unwrap_or_else(|e| {
        tracing::error!(error = %e, "Reading favourites failed.");
        Vec::new()
    });
    let views = users.saved_views(name).unwrap_or_else(|e| {
        tracing::error!(error = %e, "Reading saved views failed.");
        Vec::new()
    });
    (favourites, views)
}

fn csrf_field(client: &Client) -> Markup {
    html! {
        @if let Some(csrf) = &client.csrf {
            input type="hidden" name=(CSRF_FIELD) value=(csrf);
        }
    }
}

/// The pin / unpin button of a dashboard, for people.
pub(crate) fn pin_button(client: &Client, dashboard: &str, pinned: bool, back: &str) -> Markup {
    html! {
        @if person(client).is_some() {
            form class="inline" method="post" action="/favourites" {
                (csrf_field(client))
                input type="hidden" name="dashboard" value=(dashboard);
                input type="hidden" name="pinned" value=(if pinned { "false" } else { "true" });
                input type="hidden" name="back" value=(back);
                button class="quiet" type="submit" aria-pressed=(if pinned { "true" } else { "false" }) {
                    @if pinned { "★ Favourite (unpin)" } @else { "☆ Add to favourites" }
                }
            }
        }
    }
}

/// "Save this view" for the page at `path` (with its query string), for people.
pub(crate) fn save_form(client: &Client, path: &str) -> Markup {
    html! {
        @if person(client).is_some() {
            form class="annotate save-view" method="post" action="/views" {
                (csrf_field(client))
                input type="hidden" name="path" value=(path);
                label for="view-label" { "Save this view as" input id="view-label" type="text" name="label" required maxlength="80"; }
                button class="button" type="submit" { "Save view" }
            }
        }
    }
}

/// The delete button of a saved view.
pub(crate) fn delete_button(client: &Client, label: &str) -> Markup {
    html! {
        form class="inline" method="post" action="/views/delete" {
            (csrf_field(client))
            input type="hidden" name="label" value=(label);
            input type="hidden" name="back" value="/";
            button class="quiet" type="submit" aria-label=(format!("Delete saved view {label}")) { "Delete" }
        }
    }
}
