//! `POST /introspect` (RFC 7662 §2): confidential clients only; anything else is 401
//! `invalid_client` with a `WWW-Authenticate` challenge.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::domain::{Client, ClientKind};
use crate::oauth::OAuthError;
use crate::oauth::introspection::{self, IntrospectionRequest};
use crate::web::state::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut client = None;
    let mut resp = match handle(&state, &headers, &body, &mut client).await {
        Ok(m) => (super::no_store(), Json(m)).into_response(),
        Err(e) => {
            if !matches!(
                e.code,
                crate::oauth::ErrorCode::ServerError
                    | crate::oauth::ErrorCode::TemporarilyUnavailable
            ) {
                tracing::info!(error = e.code.as_str(), "introspection request refused");
            }
            super::json_error(&e)
        }
    };
    crate::web::cors::share_with(&mut resp, client.as_ref());
    resp
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    authenticated: &mut Option<Client>,
) -> Result<Map<String, Value>, OAuthError> {
    let (form, client) = super::token::authenticated_form(state, headers, body).await?;
    let client = authenticated.insert(client);
    // A public client proves nothing about itself: it may not probe tokens.
    if client.kind() != ClientKind::Confidential {
        return Err(OAuthError::invalid_client());
    }
    let request = IntrospectionRequest::parse(&form)?;
    introspection::introspect(&state.provider, client, &request.token, state.now()).await
}
