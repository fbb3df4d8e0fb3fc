//! Token revocation (RFC 7009).
//!
//! - An access token (a JWT we signed) issued to the caller goes on the deny-list until it
//!   expires; userinfo and introspection refuse it from then on.
//! - A refresh token issued to the caller revokes its whole family (RFC 7009 §2.1 allows it, and
//!   RFC 9700 §4.14 recommends it), including the access tokens issued with it.
//! - Unknown, malformed and expired tokens change nothing; the answer is the same 200 either way
//!   (RFC 7009 §2.2), so the endpoint tells nobody whether a token exists.
//! - A token issued to another client is refused with `unauthorized_client` and stays valid
//!   (RFC 7009 §2.1: the server "verifies whether the token was issued to the client making the
//!   revocation request. If this validation fails, the request is refused"; §2.2.1). The caller
//!   holds the token already, so the answer tells it nothing it could not learn by using it.

use std::fmt;

use super::Provider;
use super::access_token;
use super::error::{ErrorCode, OAuthError};
use super::form::FormParams;
use crate::audit::{self, Event, action};
use crate::crypto::hash_secret;
use crate::domain::Client;

/// A revocation request (RFC 7009 §2.1): the token to revoke. `token_type_hint` is accepted but
/// not needed (see [`revoke`]).
pub struct RevocationRequest {
    pub token: String,
}

impl RevocationRequest {
    /// `token` is required (`invalid_request`).
    pub fn parse(form: &FormParams) -> Result<Self, OAuthError> {
        Ok(Self {
            token: form.required("token")?.to_owned(),
        })
    }
}

impl fmt::Debug for RevocationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationRequest")
            .field("token", &"[redacted]")
            .finish()
    }
}

/// RFC 7009 §2.1, §2.2.1: the token was issued to another client.
fn not_yours() -> OAuthError {
    OAuthError::new(
        ErrorCode::UnauthorizedClient,
        "the token was not issued to this client",
    )
}

/// Revoke `token` for `caller`. `token_type_hint` is accepted but not needed: access tokens
/// (JWTs) and refresh tokens (opaque) cannot be confused.
pub async fn revoke(
    provider: &Provider,
    caller: &Client,
    token: &str,
    now: i64,
) -> Result<(), OAuthError> {
    if token.bytes().filter(|&b| b == b'.').count() == 2 {
        let Ok(claims) = access_token::verify_signed(provider, token) else {
            return Ok(());
        };
        if claims.client_id != caller.id {
            return Err(not_yours());
        }
        if claims.exp <= now {
            return Ok(());
        }
        provider
            .store
            .revoke_access_token(&claims.jti, claims.exp, now)
            .await?;
        audit::record(
            provider.store.as_ref(),
            Event::new(action::TOKEN_REVOKE)
                .actor(format!("client:{}", caller.id))
                .target(claims.sub.as_str())
                .client(caller.id.as_str())
                .detail("token_type", "access_token"),
        )
        .await;
        return Ok(());
    }
    let Some(stored) = provider
        .store
        .find_refresh_token(&hash_secret(token))
        .await?
    else {
        return Ok(());
    };
    if stored.client_id != caller.id {
        return Err(not_yours());
    }
    let revoked = provider
        .store
        .revoke_refresh_family(&stored.family_id, now)
        .await?;
    audit::record(
        provider.store.as_ref(),
        Event::new(action::TOKEN_REVOKE)
            .actor(format!("client:{}", caller.id))
            .target(stored.user_id.as_str())
            .client(caller.id.as_str())
            .detail("token_type", "refresh_token")
            .detail("refresh_tokens_revoked", revoked),
    )
    .await;
    Ok(())
}
