//! The refresh token grant (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).
//!
//! Refresh tokens are opaque 256-bit random strings, stored only as SHA-256. Every use rotates:
//! the presented token is marked used and a new one is returned, in one atomic step
//! (`UPDATE … WHERE used_at IS NULL`), so of several concurrent requests with the same token
//! exactly one succeeds. Presenting a rotated token again is reuse: the whole family (every
//! refresh token descended from the same grant, and the access tokens issued with them) is
//! revoked and the event is audited. The loser of a concurrent race cannot be told apart from an
//! attacker replaying a stolen token, so it triggers the same revocation: a well-behaved client
//! never sends one refresh token twice.

use super::common::{GrantOutcome, IdTokenContext, access_token_ttl, amr_list, refresh_lifetimes};
use super::request::RefreshRequest;
use crate::audit::{self, Event, action};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::{Client, Scope, User};
use crate::oauth::Provider;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::RefreshToken;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("the refresh token is invalid, expired or revoked")
}

/// Rotate `request.refresh_token` for `client` (allowed the grant: checked when the request
/// was parsed).
pub async fn grant(
    provider: &Provider,
    client: &Client,
    request: RefreshRequest,
    now: i64,
) -> Result<GrantOutcome, OAuthError> {
    let hash = hash_secret(&request.refresh_token);
    // The token and its user in one read: a refresh is two round trips to the database, this
    // and the rotation.
    let (stored, user) = provider
        .store
        .find_refresh_grant(&hash)
        .await?
        .ok_or_else(invalid)?;
    // Bound to its client (RFC 6749 §6): another client's attempt changes nothing.
    if stored.client_id != client.id {
        return Err(invalid());
    }
    if stored.revoked_at.is_some() {
        return Err(invalid());
    }
    if stored.used_at.is_some() {
        reuse_detected(provider, &stored, now).await?;
        return Err(invalid());
    }
    if !stored.is_live(now) {
        return Err(invalid());
    }
    // RFC 6749 §6: the scope may be narrowed for this access token, never widened. The new
    // refresh token keeps the original grant's scope.
    let granted = Scope::parse(&stored.scope).unwrap_or_default();
    let scope = match request.scope.as_deref() {
        None => granted.clone(),
        Some(s) => {
            let asked =
                Scope::parse(s).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?;
            if asked.is_empty() {
                granted.clone()
            } else if asked.iter().all(|a| granted.contains(a)) {
                asked
            } else {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "the requested scope exceeds the original grant",
                ));
            }
        }
    };
    let Some(user) = user.filter(User::is_active) else {
        // Disabled or deleted: the grant is over.
        provider
            .store
            .revoke_refresh_family(&stored.family_id, now)
            .await?;
        return Err(invalid());
    };

    let ttl = access_token_ttl(provider, client);
    let jti = access_token::new_jti();
    let (idle, _) = refresh_lifetimes(provider, client);
    let new_token = random_secret(32);
    let rotated = provider
        .store
        .rotate_refresh_token(
            &hash,
            now,
            &RefreshToken {
                token_hash: hash_secret(&new_token),
                family_id: stored.family_id.clone(),
                client_id: stored.client_id.clone(),
                user_id: stored.user_id.clone(),
                sid: stored.sid.clone(),
                scope: stored.scope.clone(),
                auth_time: stored.auth_time,
                amr: stored.amr.clone(),
                created_at: now,
                expires_at: (now + idle).min(stored.family_expires_at),
                family_expires_at: stored.family_expires_at,
                used_at: None,
                revoked_at: None,
                access_jti: Some(jti.clone()),
                access_exp: Some(now + ttl),
            },
        )
        .await?;
    if !rotated {
        // Another request rotated it between our read and our write: reuse.
        reuse_detected(provider, &stored, now).await?;
        return Err(invalid());
    }

    let scope_text = scope.to_string();
    let access = access_token::mint_with_amr(
        provider,
        &Grant {
            sub: &user.id,
            client_id: &client.id,
            scope: &scope_text,
            auth_time: Some(stored.auth_time),
            sid: stored.sid.as_deref(),
            aud: None,
            ttl,
            user: Some(&user),
        },
        &stored.amr,
        jti,
        now,
    )?;
    // OIDC Core §12.2: same `sub` and `auth_time` as the original ID token; no nonce.
    let wants_id_token = scope.contains("openid");
    let id_token = wants_id_token.then_some(IdTokenContext {
        user,
        scope,
        nonce: None,
        auth_time: stored.auth_time,
        sid: stored.sid,
        amr: amr_list(&stored.amr),
    });
    Ok(GrantOutcome {
        access_token: access.token,
        expires_in: ttl,
        scope: scope_text,
        refresh_token: Some(new_token),
        id_token,
    })
}

/// RFC 9700 §4.14.2: a rotated refresh token came back. Revoke its family and record it.
async fn reuse_detected(
    provider: &Provider,
    stored: &RefreshToken,
    now: i64,
) -> Result<(), OAuthError> {
    tracing::warn!(client.id = %stored.client_id, "refresh token reused; revoking its family");
    let revoked = provider
        .store
        .revoke_refresh_family(&stored.family_id, now)
        .await?;
    audit::record(
        provider.store.as_ref(),
        Event::new(action::REFRESH_REUSE)
            .target(stored.user_id.as_str())
            .client(stored.client_id.as_str())
            .failure("refresh_token_reused")
            .detail("refresh_tokens_revoked", revoked),
    )
    .await;
    Ok(())
}
