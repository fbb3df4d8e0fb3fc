//! The protocol's HTTP endpoints: thin adapters from requests to `crate::oauth` / `crate::oidc`.

pub mod authorize;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod revoke;
pub mod token;
pub mod userinfo;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::{ErrorCode, OAuthError};

/// RFC 6749 §5.2 JSON error. `invalid_client` is 401 with a `WWW-Authenticate` challenge.
pub fn json_error(e: &OAuthError) -> Response {
    let status = match e.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), e.code.as_str().into());
    if let Some(d) = e.description_for_client() {
        body.insert("error_description".into(), d.into());
    }
    let mut resp = (status, no_store(), Json(body)).into_response();
    if e.code == ErrorCode::InvalidClient {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"portcullis\", charset=\"UTF-8\""),
        );
    }
    resp
}

/// RFC 6749 §5.1: token responses are never cached.
pub fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// Raw `application/x-www-form-urlencoded` pairs, duplicates kept for the caller to judge.
pub fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Whether the request body is declared as a form.
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}
