//! The authorization code grant (RFC 6749 §4.1.3) with PKCE (RFC 7636 §4.6) and replay
//! revocation (RFC 6749 §4.1.2).

use super::common::{
    FamilyStart, GrantOutcome, IdTokenContext, access_token_ttl, amr_list,
    issue_first_refresh_token,
};
use super::request::CodeRequest;
use crate::domain::{Client, GrantType, Scope};
use crate::oauth::Provider;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::error::OAuthError;
use crate::oauth::pkce;
use crate::store::Redemption;

/// Redeem `request.code` for `client` (allowed the grant: checked when the request was parsed).
pub async fn grant(
    provider: &Provider,
    client: &Client,
    request: CodeRequest,
    now: i64,
) -> Result<GrantOutcome, OAuthError> {
    let code_hash = crate::crypto::hash_secret(&request.code);
    let invalid = || OAuthError::invalid_grant("the code is invalid, expired or was already used");

    let stored = provider
        .store
        .find_code(&code_hash)
        .await?
        .ok_or_else(invalid)?;
    // Bound to its client: another client's attempt neither succeeds nor burns the code.
    if stored.client_id != client.id {
        return Err(invalid());
    }
    if stored.used_at.is_some() {
        revoke_replayed(
            provider,
            &stored,
            stored.access_jti.as_deref(),
            stored.access_exp,
            now,
        )
        .await?;
        return Err(invalid());
    }
    if stored.expires_at <= now {
        return Err(invalid());
    }
    if stored.redirect_uri != request.redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&stored.code_challenge, &request.code_verifier) {
        (Some(challenge), Some(v)) if pkce::verify_s256(v, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant("code_verifier does not match"));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "no code_challenge was sent for this code",
            ));
        }
        (None, None) => {}
    }

    let ttl = access_token_ttl(provider, client);
    let jti = access_token::new_jti();
    match provider
        .store
        .redeem_code(&code_hash, now, &jti, now + ttl)
        .await?
    {
        Redemption::Redeemed => {}
        Redemption::AlreadyUsed {
            access_jti,
            access_exp,
        } => {
            revoke_replayed(provider, &stored, access_jti.as_deref(), access_exp, now).await?;
            return Err(invalid());
        }
        Redemption::Expired => return Err(invalid()),
    }
    let user = provider
        .store
        .find_user(&stored.user_id)
        .await?
        .filter(crate::domain::User::is_active)
        .ok_or_else(invalid)?;

    let scope = Scope::parse(&stored.scope).unwrap_or_default();
    let access = access_token::mint_with_amr(
        provider,
        &Grant {
            sub: &user.id,
            client_id: &client.id,
            scope: &stored.scope,
            auth_time: Some(stored.auth_time),
            sid: stored.sid.as_deref(),
            aud: None,
            ttl,
            user: Some(&user),
        },
        &stored.amr,
        jti.clone(),
        now,
    )?;
    // RFC 6749 §6 / OIDC Core §11: a refresh token only for clients allowed the grant, and only
    // when the person granted offline_access. Its family is this code.
    let refresh_token =
        if client.allows_grant(GrantType::RefreshToken) && scope.contains("offline_access") {
            Some(
                issue_first_refresh_token(
                    provider,
                    client,
                    &FamilyStart {
                        family_id: &code_hash,
                        user_id: &user.id,
                        sid: stored.sid.as_deref(),
                        scope: &stored.scope,
                        auth_time: stored.auth_time,
                        amr: &stored.amr,
                        access_jti: &jti,
                        access_exp: access.claims.exp,
                    },
                    now,
                )
                .await?,
            )
        } else {
            None
        };
    tracing::info!(client.id = %client.id, user.id = %user.id, "authorization code redeemed");
    let wants_id_token = scope.contains("openid");
    let id_token = wants_id_token.then_some(IdTokenContext {
        user,
        scope,
        nonce: stored.nonce,
        auth_time: stored.auth_time,
        sid: stored.sid,
        amr: amr_list(&stored.amr),
    });
    Ok(GrantOutcome {
        access_token: access.token,
        expires_in: ttl,
        scope: stored.scope,
        refresh_token,
        id_token,
    })
}

/// RFC 6749 §4.1.2: a code used twice revokes what its first use issued: the access token,
/// and the refresh-token family that started with it (with every access token issued from it).
async fn revoke_replayed(
    provider: &Provider,
    code: &crate::store::AuthorizationCode,
    jti: Option<&str>,
    exp: Option<i64>,
    now: i64,
) -> Result<(), OAuthError> {
    tracing::warn!("authorization code replayed; revoking the tokens issued from it");
    if let (Some(jti), Some(exp)) = (jti, exp) {
        provider.store.revoke_access_token(jti, exp, now).await?;
    }
    let revoked = provider
        .store
        .revoke_refresh_family(&code.code_hash, now)
        .await?;
    crate::audit::record(
        provider.store.as_ref(),
        crate::audit::Event::new(crate::audit::action::CODE_REPLAY)
            .target(code.user_id.as_str())
            .client(code.client_id.as_str())
            .failure("code_replayed")
            .detail("refresh_tokens_revoked", revoked),
    )
    .await;
    Ok(())
}
