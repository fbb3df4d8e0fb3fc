//! What the grants share: their typed outcome, token lifetimes, and the start of a refresh-token
//! family. Imports no grant.

use std::fmt;

use crate::crypto::{hash_secret, random_secret};
use crate::domain::{Client, Scope, User};
use crate::oauth::Provider;
use crate::oauth::error::OAuthError;
use crate::store::RefreshToken;

/// What a successful grant issued (RFC 6749 §5.1), before the token endpoint answers.
pub struct GrantOutcome {
    pub access_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: i64,
    /// The scope granted to the access token, space-separated.
    pub scope: String,
    pub refresh_token: Option<String>,
    /// `Some` when an ID token is due (a person behind the grant, `openid` granted): what it
    /// must state. The token endpoint has `oidc` sign it; the grant never does.
    pub id_token: Option<IdTokenContext>,
}

/// Everything an ID token issued with a grant must state (OIDC Core §2, §3.1.3.6, §12.2): the
/// person, the scope deciding which claims go in, and the facts of the sign-in. A new fact of
/// the sign-in (e.g. `amr`) is one more field here, set by the grants, read where `oidc` mints the ID token.
pub struct IdTokenContext {
    pub user: User,
    pub scope: Scope,
    /// From the authorization request; `None` after a refresh (OIDC Core §12.2).
    pub nonce: Option<String>,
    /// When the person signed in (the same for every token of one grant).
    pub auth_time: i64,
    /// The sign-in session (Back-Channel Logout 1.0 §2.1 `sid`).
    pub sid: Option<String>,
    /// How the person signed in (RFC 8176 `amr` values; empty when unknown).
    pub amr: Vec<String>,
}

/// `amr` values as stored on codes and refresh tokens (space-separated).
pub fn amr_list(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

impl fmt::Debug for GrantOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantOutcome")
            .field("access_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("id_token", &self.id_token)
            .finish()
    }
}

impl fmt::Debug for IdTokenContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenContext")
            .field("user", &self.user.id)
            .field("scope", &self.scope)
            .field("nonce", &self.nonce.as_ref().map(|_| "[redacted]"))
            .field("auth_time", &self.auth_time)
            .field("sid", &self.sid)
            .finish()
    }
}

/// The client's access-token lifetime, or the server default, in seconds.
pub fn access_token_ttl(provider: &Provider, client: &Client) -> i64 {
    client
        .access_token_ttl
        .unwrap_or(provider.settings.tokens.access_token_ttl)
}

/// The client's refresh-token lifetimes, or the server defaults: (idle, absolute) in seconds.
pub fn refresh_lifetimes(provider: &Provider, client: &Client) -> (i64, i64) {
    let t = &provider.settings.tokens;
    (
        client
            .refresh_token_idle_ttl
            .unwrap_or(t.refresh_token_idle_ttl),
        client
            .refresh_token_absolute_ttl
            .unwrap_or(t.refresh_token_absolute_ttl),
    )
}

/// What starts a refresh-token family: the grant a code exchange made.
pub struct FamilyStart<'a> {
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub sid: Option<&'a str>,
    pub scope: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    pub access_jti: &'a str,
    pub access_exp: i64,
}

/// Store the first refresh token of a new family; returns the token to hand out. Refresh tokens
/// are opaque 256-bit random strings, stored only as SHA-256.
pub async fn issue_first_refresh_token(
    provider: &Provider,
    client: &Client,
    start: &FamilyStart<'_>,
    now: i64,
) -> Result<String, OAuthError> {
    let (idle, absolute) = refresh_lifetimes(provider, client);
    let token = random_secret(32);
    let family_expires_at = now + absolute;
    provider
        .store
        .create_refresh_token(&RefreshToken {
            token_hash: hash_secret(&token),
            family_id: start.family_id.to_owned(),
            client_id: client.id.clone(),
            user_id: start.user_id.to_owned(),
            sid: start.sid.map(str::to_owned),
            scope: start.scope.to_owned(),
            auth_time: start.auth_time,
            amr: start.amr.to_owned(),
            created_at: now,
            expires_at: (now + idle).min(family_expires_at),
            family_expires_at,
            used_at: None,
            revoked_at: None,
            access_jti: Some(start.access_jti.to_owned()),
            access_exp: Some(start.access_exp),
        })
        .await?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_debug_prints_no_token() {
        let outcome = GrantOutcome {
            access_token: "eyJ.access-secret.sig".into(),
            expires_in: 60,
            scope: "openid".into(),
            refresh_token: Some("refresh-secret".into()),
            id_token: None,
        };
        let shown = format!("{outcome:?}");
        assert!(!shown.contains("access-secret"), "{shown}");
        assert!(!shown.contains("refresh-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
