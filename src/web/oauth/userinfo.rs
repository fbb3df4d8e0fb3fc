//! `GET|POST /userinfo` with a Bearer token (OIDC Core §5.3, RFC 6750 §2.1).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::ErrorCode;
use crate::oidc::userinfo;
use crate::web::state::AppState;

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    match userinfo::userinfo(&state.provider, token, state.now()).await {
        Ok(claims) => (super::no_store(), Json(claims)).into_response(),
        // RFC 6750 has no code for an outage: 503 with Retry-After and no challenge.
        Err(e)
            if matches!(
                e.code,
                ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
            ) =>
        {
            super::json_error(&e)
        }
        Err(e) => {
            let status = if e.code == ErrorCode::InsufficientScope {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            // RFC 6750 §3: the challenge names the error; descriptions are plain ASCII.
            let challenge = format!(
                "Bearer realm=\"portcullis\", error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                e.description.as_deref().unwrap_or_default()
            );
            let mut resp = (
                status,
                super::no_store(),
                Json(serde_json::json!({
                    "error": e.code.as_str(),
                    "error_description": e.description,
                })),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
    }
}
