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
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            // Short enough that a rotated-in key is seen before it signs (see `keys rotate`).
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.provider.keys.jwks_json(),
    )
        .into_response()
}
