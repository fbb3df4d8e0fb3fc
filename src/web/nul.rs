//! NUL characters are refused at the door. No parameter of OAuth, OpenID Connect, the pages or the
//! admin API may contain U+0000, and PostgreSQL cannot store or even compare it in `text` (it
//! fails the statement: a 500). One middleware looks at every place a request carries text — the
//! path, the query, a Basic `Authorization` header and the body (raw, `%00` in form encoding,
//! `\u0000` in JSON) — and refuses the request in the endpoint's own error format before any
//! handler runs, so nothing is read or written.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::oauth::OAuthError;
use crate::web::state::AppState;

const MESSAGE: &str = "the request contains a NUL character, which is never valid here";

pub async fn refuse_nul(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let head_has_nul = has_percent_nul(path.as_bytes())
        || req
            .uri()
            .query()
            .is_some_and(|q| has_percent_nul(q.as_bytes()))
        || basic_credentials_have_nul(&req);
    if head_has_nul {
        return refusal(&state, &path);
    }
    if !carries_body(&req) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, super::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if bytes.contains(&0) || has_percent_nul(&bytes) || has_json_nul(&bytes) {
        return refusal(&state, &path);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// GET, HEAD and bodies announced empty are passed through without buffering.
fn carries_body(req: &Request) -> bool {
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    !(req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD || empty)
}

/// `%00` in a percent-encoded string (path, query, form body).
fn has_percent_nul(s: &[u8]) -> bool {
    s.windows(3).any(|w| w == b"%00")
}

/// A JSON `\u0000` escape: `u0000` after an odd run of backslashes (an even run is an escaped
/// backslash followed by the plain text `u0000`).
fn has_json_nul(s: &[u8]) -> bool {
    s.windows(5).enumerate().any(|(i, w)| {
        w == b"u0000" && s[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

/// Client credentials in `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded, then base64).
fn basic_credentials_have_nul(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return false;
    };
    STANDARD
        .decode(encoded.trim())
        .is_ok_and(|raw| raw.contains(&0) || has_percent_nul(&raw))
}

/// Refused in the format of the endpoint that was asked: RFC 6749 `invalid_request` (400) at the
/// protocol endpoints, RFC 7807 problem details in the admin API (422, as for any other value the
/// API does not accept), a 400 error page elsewhere.
fn refusal(state: &AppState, path: &str) -> Response {
    if path.starts_with("/admin/api/") {
        return super::admin::api::problem::Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Entity",
            MESSAGE,
        )
        .into_response();
    }
    if matches!(path, "/token" | "/introspect" | "/revoke" | "/userinfo") {
        return super::oauth::json_error(&OAuthError::invalid_request(MESSAGE));
    }
    state
        .templates
        .error_page(StatusCode::BAD_REQUEST, "Bad request", "The request contains a character that is never valid here. Go back and check what you typed.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_each_encoding() {
        assert!(has_percent_nul(b"a=%00"));
        assert!(!has_percent_nul(b"a=%2500&b=%0A"));
        assert!(has_json_nul(br#"{"a":"x\u0000"}"#));
        assert!(has_json_nul(br#"{"a":"x\\\u0000"}"#));
        assert!(!has_json_nul(br#"{"a":"x\\u0000"}"#));
        assert!(!has_json_nul(br#"{"a":"u0000"}"#));
    }
}
