//! `POST /token` (RFC 6749 §3.2).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Client;
use crate::oauth::client_auth::{self, Presented};
use crate::oauth::{OAuthError, token};
use crate::state::AppState;

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(resp) => (super::no_store(), Json(resp)).into_response(),
        Err(e) => {
            if e.code != crate::oauth::ErrorCode::ServerError {
                tracing::info!(error = e.code.as_str(), "token request refused");
            }
            super::json_error(&e)
        }
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<token::TokenResponse, OAuthError> {
    let (params, client) = authenticated_form(state, headers, body).await?;
    token::exchange(&state.provider, &client, &params, crate::now()).await
}

/// A form POST with client authentication (RFC 6749 §2.3), as the token, revocation and
/// introspection endpoints take it: the parameters (none repeated) and the authenticated client.
pub async fn authenticated_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(HashMap<String, String>, Client), OAuthError> {
    if !super::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = token::collect_params(super::form_pairs(body))?;
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(client_auth::parse_basic)
                .ok_or_else(OAuthError::invalid_client)?,
        ),
    };
    let presented = client_auth::presented(
        basic,
        params.get("client_id").map(String::as_str),
        params.get("client_secret").map(String::as_str),
    )?;
    if presented == Presented::Nothing {
        return Err(OAuthError::invalid_client());
    }
    let client = client_auth::authenticate(&state.provider, presented).await?;
    Ok((params, client))
}
