//! The client credentials grant (RFC 6749 §4.4): a confidential client gets an access token for
//! itself (`sub` = its client id), optionally for one resource server (RFC 8707 `resource`, or the
//! widespread `audience` parameter), limited to the audiences registered for the client.

use super::common::{GrantOutcome, access_token_ttl};
use super::request::ClientCredentialsRequest;
use crate::domain::{Client, SUPPORTED_SCOPES};
use crate::oauth::Provider;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::error::{ErrorCode, OAuthError, known};

/// Scopes that only make sense with a person behind the grant.
const USER_ONLY_SCOPES: &[&str] = &["openid", "offline_access"];

/// Issue `client` a token of its own (a confidential client allowed the grant: checked when the
/// request was parsed).
pub async fn grant(
    provider: &Provider,
    client: &Client,
    request: ClientCredentialsRequest,
    now: i64,
) -> Result<GrantOutcome, OAuthError> {
    let scope = request.scope;
    if let Some(bad) = scope
        .iter()
        .find(|s| USER_ONLY_SCOPES.contains(s) || !client.scopes.iter().any(|c| c == s))
    {
        // Named only when it is one of ours: the description never repeats the request.
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            match known(bad, SUPPORTED_SCOPES) {
                Some(name) => {
                    format!("scope `{name}` is not available to this client for client_credentials")
                        .into()
                }
                None => {
                    std::borrow::Cow::Borrowed("a requested scope is not available to this client")
                }
            },
        ));
    }
    let target = target(
        client,
        request.resource.as_deref(),
        request.audience.as_deref(),
    )?;
    let ttl = access_token_ttl(provider, client);
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
    // RFC 6749 §4.4.3: no refresh token; no person, so no ID token.
    Ok(GrantOutcome {
        access_token: access.token,
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
    resource: Option<&'a str>,
    audience: Option<&'a str>,
) -> Result<Option<&'a str>, OAuthError> {
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
