//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::domain::Client;
use crate::oauth::OAuthError;
use crate::oauth::client_auth::{self, Presented};
use crate::oauth::form::FormParams;
use crate::oauth::token::{self, TokenRequest, TokenResponse};
use crate::web::state::AppState;

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let mut client = None;
    let mut resp = match handle(&state, &headers, &body, &mut client).await {
        Ok(resp) => (super::no_store(), Json(resp)).into_response(),
        Err(e) => {
            if e.code != crate::oauth::ErrorCode::ServerError {
                tracing::info!(error = e.code.as_str(), "token request refused");
            }
            super::json_error(&e)
        }
    };
    crate::web::cors::share_with(&mut resp, client.as_ref());
    resp
}

/// Authenticate, read the typed request, run its grant, and have `oidc` add the ID token.
async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    authenticated: &mut Option<Client>,
) -> Result<TokenResponse, OAuthError> {
    let (form, client) = authenticated_form(state, headers, body).await?;
    let client = authenticated.insert(client);
    let request = TokenRequest::parse(&form, client)?;
    let now = state.now();
    let outcome = token::exchange(&state.provider, client, request, now).await?;
    crate::oidc::token::respond(&state.provider, client, outcome, now)
}

/// A form POST with client authentication (RFC 6749 §2.3), as the token, revocation and
/// introspection endpoints take it: the parameters (none repeated) and the authenticated client.
pub async fn authenticated_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(FormParams, Client), OAuthError> {
    if !super::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let form = FormParams::from_pairs(super::form_pairs(body))?;
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(client_auth::parse_basic)
                .ok_or_else(OAuthError::invalid_client)?,
        ),
    };
    let presented =
        client_auth::presented(basic, form.get("client_id"), form.get("client_secret"))?;
    if presented == Presented::Nothing {
        return Err(OAuthError::invalid_client());
    }
    let client = client_auth::authenticate(&state.provider, presented).await?;
    Ok((form, client))
}
