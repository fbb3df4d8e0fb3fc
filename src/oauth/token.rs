//! The token endpoint (RFC 6749 §3.2, §5): dispatch of a parsed [`TokenRequest`] to its grant,
//! and the successful response.
//!
//! The request is read once (`TokenRequest::parse`); each grant returns a [`GrantOutcome`].
//! When an ID token is due, the caller has `oidc` sign it and builds the [`TokenResponse`] with
//! [`TokenResponse::new`]: the OAuth core never reaches into OpenID Connect.

use std::fmt;

use serde::Serialize;

use super::Provider;
use super::error::OAuthError;
use super::grants::{authorization_code, client_credentials, refresh_token};
use crate::domain::Client;

pub use super::grants::common::{GrantOutcome, IdTokenContext};
pub use super::grants::request::{
    ClientCredentialsRequest, CodeRequest, RefreshRequest, TokenRequest,
};

/// The successful response (RFC 6749 §5.1, OIDC Core §3.1.3.3). Holds live tokens: `Debug`
/// shows none of them.
#[derive(Serialize)]
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

impl TokenResponse {
    /// The answer to a grant, with the ID token `oidc` signed for it (if one was due).
    pub fn new(outcome: GrantOutcome, id_token: Option<String>) -> Self {
        Self {
            access_token: outcome.access_token,
            token_type: "Bearer",
            expires_in: outcome.expires_in,
            scope: outcome.scope,
            refresh_token: outcome.refresh_token,
            id_token,
        }
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |t: &Option<String>| t.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("id_token", &redacted(&self.id_token))
            .finish()
    }
}

/// Run the grant `request` names for the authenticated `client`.
pub async fn exchange(
    provider: &Provider,
    client: &Client,
    request: TokenRequest,
    now: i64,
) -> Result<GrantOutcome, OAuthError> {
    // `TokenRequest::parse` refused a grant the client may not use; checked again here so a
    // request built by hand cannot skip it.
    let grant = request.grant_type();
    super::grants::request::permit(client, grant)?;
    let outcome = match request {
        TokenRequest::AuthorizationCode(r) => {
            authorization_code::grant(provider, client, r, now).await
        }
        TokenRequest::RefreshToken(r) => refresh_token::grant(provider, client, r, now).await,
        TokenRequest::ClientCredentials(r) => {
            client_credentials::grant(provider, client, r, now).await
        }
    }?;
    crate::observability::token_issued(grant.as_str());
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_token() {
        let resp = TokenResponse::new(
            GrantOutcome {
                access_token: "eyJ.access-secret.sig".into(),
                expires_in: 300,
                scope: "openid offline_access".into(),
                refresh_token: Some("refresh-secret".into()),
                id_token: None,
            },
            Some("eyJ.id-token-secret.sig".into()),
        );
        let shown = format!("{resp:?}");
        for secret in ["access-secret", "refresh-secret", "id-token-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("[redacted]") && shown.contains("offline_access"));
        // The wire format is unchanged.
        let json = serde_json::to_value(&resp).unwrap();
        assert_eq!(json["access_token"], "eyJ.access-secret.sig");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["refresh_token"], "refresh-secret");
        assert_eq!(json["id_token"], "eyJ.id-token-secret.sig");
    }
}
