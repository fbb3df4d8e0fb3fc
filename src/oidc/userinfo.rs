//! The userinfo endpoint (OIDC Core §5.3): claims for a valid access token with `openid`.

use serde_json::{Map, Value};

use super::claims::user_claims;
use crate::domain::Scope;
use crate::oauth::access_token::{self, InvalidToken};
use crate::oauth::{ErrorCode, OAuthError, Provider};

/// The answer to a userinfo request: the claims or the RFC 6750 error, and the client the access
/// token was issued to, once the token proved valid (its web origins may read the answer).
#[derive(Debug)]
pub struct Answer {
    pub client_id: Option<String>,
    pub result: Result<Map<String, Value>, OAuthError>,
}

/// Claims for the bearer of `token`, or the RFC 6750 error to answer with. (A request without
/// any token is answered by the caller with a bare challenge: RFC 6750 §3.1 gives it no error.)
pub async fn userinfo(provider: &Provider, token: &str, now: i64) -> Answer {
    let mut client_id = None;
    let result = claims(provider, token, now, &mut client_id).await;
    Answer { client_id, result }
}

async fn claims(
    provider: &Provider,
    token: &str,
    now: i64,
    client_id: &mut Option<String>,
) -> Result<Map<String, Value>, OAuthError> {
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
    *client_id = Some(claims.client_id.clone());
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
