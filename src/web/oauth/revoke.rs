//! `POST /revoke` (RFC 7009 §2): client-authenticated; 200 with an empty body whether or not the
//! token was known (§2.2), 400 `unauthorized_client` for a token issued to another client.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::domain::Client;
use crate::oauth::OAuthError;
use crate::oauth::revocation::{self, RevocationRequest};
use crate::web::state::AppState;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let mut client = None;
    let mut resp = match handle(&state, &headers, &body, &mut client).await {
        Ok(()) => (StatusCode::OK, super::no_store()).into_response(),
        Err(e) => {
            if e.code != crate::oauth::ErrorCode::ServerError {
                tracing::info!(error = e.code.as_str(), "revocation request refused");
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
) -> Result<(), OAuthError> {
    let (form, client) = super::token::authenticated_form(state, headers, body).await?;
    let client = authenticated.insert(client);
    let request = RevocationRequest::parse(&form)?;
    revocation::revoke(&state.provider, client, &request.token, state.now()).await
}
