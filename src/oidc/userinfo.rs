//! The userinfo endpoint (OIDC Core §5.3): claims for a valid access token with `openid`.

use serde_json::{Map, Value};

use super::claims::user_claims;
use crate::domain::Scope;
use crate::oauth::access_token::{self, InvalidToken};
use crate::oauth::{ErrorCode, OAuthError, Provider};

/// Claims for the bearer of `token`, or the RFC 6750 error to answer with.
pub async fn userinfo(
    provider: &Provider,
    token: Option<&str>,
    now: i64,
) -> Result<Map<String, Value>, OAuthError> {
    let token = token.ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "no access token"))?;
    let claims = access_token::validate(provider, token, now)
        .await
        .map_err(|e| {
            if e == InvalidToken::Unavailable {
                return OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable; retry later",
                );
            }
            let msg = match e {
                InvalidToken::Expired => "the access token expired",
                InvalidToken::Revoked => "the access token was revoked",
                _ => "the access token is invalid",
            };
            OAuthError::new(ErrorCode::InvalidToken, msg)
        })?;
    let scope = Scope::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(OAuthError::new(
            ErrorCode::InsufficientScope,
            "the openid scope is required",
        ));
    }
    let user = provider
        .store
        .find_user(&claims.sub)
        .await?
        .filter(crate::domain::User::is_active)
        .ok_or_else(|| OAuthError::new(ErrorCode::InvalidToken, "the access token is invalid"))?;
    let mut out = Map::new();
    out.insert("sub".into(), Value::from(user.id.as_str()));
    out.extend(user_claims(&user, &scope));
    Ok(out)
}
