//! Hosted pages, each a GET + POST pair rendered from `templates/`.

pub mod account;
pub mod accounts;
pub mod code_login;
pub mod consent;
pub mod home;
pub mod login;
pub mod logout;
pub mod reset;
pub mod signup;
pub mod verify;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const STYLESHEET: &str = include_str!("../../../templates/portcullis.css");
const FORM_POST_SCRIPT: &str = include_str!("../../../templates/form_post.js");

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The one script of the site: submits the form_post response form (served as a file, since
/// the CSP forbids inline script).
pub async fn form_post_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FORM_POST_SCRIPT,
    )
        .into_response()
}

/// A waiting authorization request that expired or was already completed.
pub fn request_expired(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::BAD_REQUEST,
        "Sign-in request expired",
        "This request expired or was already answered. Go back to the application and start again.",
    )
}

pub async fn not_found(State(state): State<AppState>) -> Response {
    state.templates.error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
}

/// A minimal answer when even rendering failed: the status, and nothing internal.
pub fn plain_error(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Something went wrong on our side. Please try again later.",
    )
        .into_response()
}

/// The page for a failure that was already logged.
pub fn internal_error(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. Please try again in a moment.",
    )
}
