//! The token endpoint (RFC 6749 §3.2, §4.1.3, §5): grant dispatch and the authorization code
//! grant with PKCE (RFC 7636 §4.6) and replay revocation (RFC 6749 §4.1.2).

use std::collections::HashMap;

use serde::Serialize;

use super::access_token::{self, Grant};
use super::error::{ErrorCode, OAuthError};
use super::{Provider, pkce};
use crate::domain::{Client, GrantType, Scope};
use crate::oidc::id_token::{self, IdTokenInput};
use crate::store::Redemption;

/// The successful response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Form parameters with the RFC 6749 §3.2 rule applied: none may appear twice.
pub fn collect_params(pairs: Vec<(String, String)>) -> Result<HashMap<String, String>, OAuthError> {
    let mut map = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if map.contains_key(&k) {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{k}` is repeated"
            )));
        }
        map.insert(k, v);
    }
    Ok(map)
}

/// Run the grant named by `grant_type` for an authenticated client.
pub async fn exchange(
    provider: &Provider,
    client: &Client,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    match params.get("grant_type").map(String::as_str) {
        None | Some("") => Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => authorization_code(provider, client, params, now).await,
        Some("refresh_token") => super::refresh::grant(provider, client, params, now).await,
        Some("client_credentials") => {
            super::client_credentials::grant(provider, client, params, now).await
        }
        Some(_) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "supported grant types: authorization_code, refresh_token, client_credentials",
        )),
    }
}

async fn authorization_code(
    provider: &Provider,
    client: &Client,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    let code = params
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = params.get("code_verifier");
    let code_hash = crate::crypto::hash_secret(code);
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
    if stored.redirect_uri != *redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&stored.code_challenge, verifier) {
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

    let ttl = client
        .access_token_ttl
        .unwrap_or(provider.settings.tokens.access_token_ttl);
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
    let access = access_token::mint(
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
        jti.clone(),
        now,
    )?;
    // RFC 6749 §6 / OIDC Core §11: a refresh token only for clients allowed the grant, and only
    // when the person granted offline_access. Its family is this code.
    let refresh_token =
        if client.allows_grant(GrantType::RefreshToken) && scope.contains("offline_access") {
            Some(
                super::refresh::issue_first(
                    provider,
                    client,
                    &super::refresh::FamilyStart {
                        family_id: &code_hash,
                        user_id: &user.id,
                        sid: stored.sid.as_deref(),
                        scope: &stored.scope,
                        auth_time: stored.auth_time,
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
    let id_token = if scope.contains("openid") {
        Some(id_token::mint(
            provider,
            &IdTokenInput {
                client,
                user: &user,
                scope: &scope,
                nonce: stored.nonce.as_deref(),
                auth_time: stored.auth_time,
                sid: stored.sid.as_deref(),
                access_token: Some(&access.token),
            },
            now,
        )?)
    } else {
        None
    };
    tracing::info!(client.id = %client.id, user.id = %user.id, "authorization code redeemed");
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
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
