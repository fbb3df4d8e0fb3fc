//! The client credentials grant (RFC 6749 §4.4): a confidential client gets an access token for
//! itself (`sub` = its client id), optionally for one resource server (RFC 8707 `resource`, or the
//! widespread `audience` parameter), limited to the audiences registered for the client.

use std::collections::HashMap;

use super::Provider;
use super::access_token::{self, Grant};
use super::error::{ErrorCode, OAuthError};
use super::token::TokenResponse;
use crate::domain::{Client, ClientKind, GrantType, Scope};

/// Scopes that only make sense with a person behind the grant.
const USER_ONLY_SCOPES: &[&str] = &["openid", "offline_access"];

pub async fn grant(
    provider: &Provider,
    client: &Client,
    params: &HashMap<String, String>,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: confidential clients only.
    if client.kind() != ClientKind::Confidential
        || !client.allows_grant(GrantType::ClientCredentials)
    {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ));
    }
    let scope = match params.get("scope") {
        None => Scope::default(),
        Some(s) => Scope::parse(s).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?,
    };
    if let Some(bad) = scope
        .iter()
        .find(|s| USER_ONLY_SCOPES.contains(s) || !client.scopes.iter().any(|c| c == s))
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{bad}` is not available to this client for client_credentials"),
        ));
    }
    let target = target(client, params)?;
    let ttl = client
        .access_token_ttl
        .unwrap_or(provider.settings.tokens.access_token_ttl);
    let scope_text = scope.to_string();
    let access = access_token::mint(
        provider,
        &Grant {
            sub: &client.id,
            client_id: &client.id,
            scope: &scope_text,
            auth_time: None,
            sid: None,
            aud: target,
            ttl,
            user: None,
        },
        access_token::new_jti(),
        now,
    )?;
    // RFC 6749 §4.4.3: no refresh token.
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: ttl,
        scope: scope_text,
        refresh_token: None,
        id_token: None,
    })
}

/// The audience asked for (`resource` or `audience`; one value — a repeated parameter is refused
/// earlier as `invalid_request`), which must be registered for the client (RFC 8707 §2).
fn target<'a>(
    client: &Client,
    params: &'a HashMap<String, String>,
) -> Result<Option<&'a str>, OAuthError> {
    let resource = params.get("resource").map(String::as_str);
    let audience = params.get("audience").map(String::as_str);
    let wanted = match (resource, audience) {
        (Some(r), Some(a)) if r != a => {
            return Err(OAuthError::invalid_request(
                "resource and audience name different targets",
            ));
        }
        (Some(r), _) => Some(r),
        (None, a) => a,
    };
    match wanted {
        None => Ok(None),
        Some(t) if client.audiences.iter().any(|a| a == t) => Ok(Some(t)),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "the requested resource is not registered for this client",
        )),
    }
}
