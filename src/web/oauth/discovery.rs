//! Discovery and JWKS: bytes serialised once at start, cacheable, readable cross-origin (the
//! `Access-Control-Allow-Origin: *` comes from `web::cors::public`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::web::state::AppState;

const JSON: &str = "application/json";

pub async fn discovery(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, JSON),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        state.discovery.clone(),
    )
        .into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    // `keys rotate` publishes a new key at least this long (plus the reload interval) before it
    // signs, so a cached copy never lacks a kid in use (`keys_prepublish_seconds`).
    let cache = format!("public, max-age={}", state.provider.settings.jwks_max_age);
    (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        [(header::CACHE_CONTROL, cache)],
        state.provider.keys.jwks_json(),
    )
        .into_response()
}
