//! Token introspection (RFC 7662) for resource servers.
//!
//! Which tokens a caller may introspect ("foreign" tokens are answered `{"active": false}`,
//! exactly like unknown ones, so nothing leaks):
//! - any token issued to the caller itself (`client_id` is the caller);
//! - an access token whose audience (`aud`) is the caller's client id or one of the audiences
//!   registered for the caller — a resource server is registered as a confidential client with
//!   its resource identifier in `audiences`.
//!
//! Refresh tokens are only ever visible to the client they were issued to.

use std::fmt;

use serde_json::{Map, Value};

use super::Provider;
use super::access_token;
use super::error::OAuthError;
use super::form::FormParams;
use crate::crypto::hash_secret;
use crate::domain::Client;

/// An introspection request (RFC 7662 §2.1): the token to look at. `token_type_hint` is accepted
/// but not needed (see [`introspect`]).
pub struct IntrospectionRequest {
    pub token: String,
}

impl IntrospectionRequest {
    /// `token` is required (`invalid_request`).
    pub fn parse(form: &FormParams) -> Result<Self, OAuthError> {
        Ok(Self {
            token: form.required("token")?.to_owned(),
        })
    }
}

impl fmt::Debug for IntrospectionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionRequest")
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Tokens of this shape are JWT access tokens; everything else is looked up as a refresh token.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

fn inactive() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("active".into(), false.into());
    m
}

/// The RFC 7662 §2.2 response for `token` as seen by `caller`. `token_type_hint` is accepted
/// but not needed: access tokens (JWTs) and refresh tokens (opaque) cannot be confused.
pub async fn introspect(
    provider: &Provider,
    caller: &Client,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    if looks_like_jwt(token) {
        access(provider, caller, token, now).await
    } else {
        refresh(provider, caller, token, now).await
    }
}

async fn access(
    provider: &Provider,
    caller: &Client,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    let claims = match access_token::validate_any_audience(provider, token, now).await {
        Ok(c) => c,
        // RFC 7662 §2.2 `active: false` would tell the resource server the token is dead.
        Err(access_token::InvalidToken::Unavailable) => {
            return Err(OAuthError::new(
                super::ErrorCode::TemporarilyUnavailable,
                "the service is temporarily unavailable; retry later",
            ));
        }
        Err(_) => return Ok(inactive()),
    };
    let visible = claims.client_id == caller.id
        || claims.aud == caller.id
        || caller.audiences.contains(&claims.aud);
    if !visible {
        return Ok(inactive());
    }
    // A token issued to a person is only active while that person is.
    let username = if claims.sub == claims.client_id && claims.auth_time.is_none() {
        None
    } else {
        let Some(email) = provider.store.active_user_email(&claims.sub).await? else {
            return Ok(inactive());
        };
        Some(email)
    };
    let mut m = Map::new();
    m.insert("active".into(), true.into());
    m.insert("scope".into(), claims.scope.into());
    m.insert("client_id".into(), claims.client_id.into());
    if let Some(u) = username {
        m.insert("username".into(), u.into());
    }
    m.insert("token_type".into(), "Bearer".into());
    m.insert("exp".into(), claims.exp.into());
    m.insert("iat".into(), claims.iat.into());
    m.insert("sub".into(), claims.sub.into());
    m.insert("aud".into(), claims.aud.into());
    m.insert("iss".into(), claims.iss.into());
    m.insert("jti".into(), claims.jti.into());
    if let Some(t) = claims.auth_time {
        m.insert("auth_time".into(), t.into());
    }
    Ok(m)
}

async fn refresh(
    provider: &Provider,
    caller: &Client,
    token: &str,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    let Some(stored) = provider
        .store
        .find_refresh_token(&hash_secret(token))
        .await?
    else {
        return Ok(inactive());
    };
    if stored.client_id != caller.id || !stored.is_live(now) {
        return Ok(inactive());
    }
    let Some(email) = provider.store.active_user_email(&stored.user_id).await? else {
        return Ok(inactive());
    };
    let mut m = Map::new();
    m.insert("active".into(), true.into());
    m.insert("scope".into(), stored.scope.into());
    m.insert("client_id".into(), stored.client_id.into());
    m.insert("username".into(), email.into());
    m.insert("token_type".into(), "refresh_token".into());
    m.insert("exp".into(), stored.expires_at.into());
    m.insert("iat".into(), stored.created_at.into());
    m.insert("sub".into(), stored.user_id.into());
    m.insert("iss".into(), provider.issuer().into());
    m.insert("auth_time".into(), stored.auth_time.into());
    Ok(m)
}
