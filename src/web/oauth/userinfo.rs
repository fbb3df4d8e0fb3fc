//! `GET|POST /userinfo` with a Bearer token (OIDC Core §5.3, RFC 6750 §2.1).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::ErrorCode;
use crate::oidc::userinfo;
use crate::web::state::AppState;

/// RFC 6750 §3: the challenge every 401 carries.
const CHALLENGE: &str = "Bearer realm=\"portcullis\"";

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    // RFC 6750 §3.1: a request with no token at all (or another scheme) is told how to
    // authenticate, with no error code and no error information.
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            super::no_store(),
            [(header::WWW_AUTHENTICATE, CHALLENGE)],
        )
            .into_response();
    };
    let answer = userinfo::userinfo(&state.provider, token, state.now()).await;
    let mut resp = respond(answer.result);
    // Only a cross-origin request needs to know which origins may read the answer.
    if let Some(id) = answer
        .client_id
        .filter(|_| headers.contains_key(header::ORIGIN))
    {
        let provider = &state.provider;
        match provider.clients.find(provider.store.as_ref(), &id).await {
            Ok(client) => crate::web::cors::share_with(&mut resp, client.as_ref()),
            Err(e) => tracing::warn!(error = %e, "userinfo: cannot load the client's origins"),
        }
    }
    resp
}

fn respond(
    result: Result<serde_json::Map<String, serde_json::Value>, crate::oauth::OAuthError>,
) -> Response {
    match result {
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
            // RFC 6750 §3: the challenge names the error; descriptions are plain ASCII without
            // `"` or `\` (RFC 6749 §5.2), so they fit a quoted string as they are.
            let description = e.description_for_client();
            let challenge = format!(
                "{CHALLENGE}, error=\"{}\", error_description=\"{}\"",
                e.code.as_str(),
                description.unwrap_or_default()
            );
            let mut resp = (
                status,
                super::no_store(),
                Json(serde_json::json!({
                    "error": e.code.as_str(),
                    "error_description": description,
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
