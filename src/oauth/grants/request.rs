//! The token request (RFC 6749 §4.1.3, §4.4.2, §6), read once from the form into the grant it
//! names. Imports no grant.
//!
//! The order of the checks is part of the behaviour (RFC 6749 §5.2 codes): `grant_type` first
//! (`invalid_request` when missing, `unsupported_grant_type` when unknown), then whether this
//! client may use that grant (`unauthorized_client`), then the grant's own parameters
//! (`invalid_request` for a missing one, `invalid_scope` for a malformed scope).

use std::fmt;

use crate::domain::{Client, ClientKind, GrantType, Scope};
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::oauth::form::FormParams;

/// A token request, by grant type.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    RefreshToken(RefreshRequest),
    ClientCredentials(ClientCredentialsRequest),
}

/// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5).
pub struct CodeRequest {
    pub code: String,
    /// Compared byte for byte with the authorization request's; may be empty (then it differs).
    pub redirect_uri: String,
    pub code_verifier: Option<String>,
}

/// `grant_type=refresh_token` (RFC 6749 §6).
pub struct RefreshRequest {
    pub refresh_token: String,
    /// The narrower scope asked for, as sent. It is parsed and judged against the grant only
    /// after the refresh token is checked, so a malformed scope can never keep a replayed token
    /// from being detected (RFC 9700 §4.14.2).
    pub scope: Option<String>,
}

/// `grant_type=client_credentials` (RFC 6749 §4.4.2, RFC 8707 §2).
#[derive(Debug)]
pub struct ClientCredentialsRequest {
    pub scope: Scope,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// The widespread `audience` alias of `resource`.
    pub audience: Option<String>,
}

impl TokenRequest {
    /// Read the request `client` (already authenticated) sent, in the order described above.
    pub fn parse(form: &FormParams, client: &Client) -> Result<Self, OAuthError> {
        let grant = match form.get("grant_type") {
            None | Some("") => return Err(OAuthError::invalid_request("grant_type is required")),
            Some(name) => name.parse::<GrantType>().map_err(|_| {
                OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "supported grant types: authorization_code, refresh_token, client_credentials",
                )
            })?,
        };
        permit(client, grant)?;
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode(CodeRequest {
                code: form.required("code")?.to_owned(),
                redirect_uri: form
                    .get("redirect_uri")
                    .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?
                    .to_owned(),
                code_verifier: form.get("code_verifier").map(str::to_owned),
            }),
            GrantType::RefreshToken => Self::RefreshToken(RefreshRequest {
                refresh_token: form.required("refresh_token")?.to_owned(),
                scope: form.get("scope").map(str::to_owned),
            }),
            GrantType::ClientCredentials => Self::ClientCredentials(ClientCredentialsRequest {
                scope: match form.get("scope") {
                    None => Scope::default(),
                    Some(s) => Scope::parse(s)
                        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.0))?,
                },
                resource: form.get("resource").map(str::to_owned),
                audience: form.get("audience").map(str::to_owned),
            }),
        })
    }

    pub fn grant_type(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
        }
    }
}

/// Whether `client` may use `grant` (`unauthorized_client` otherwise). The client credentials
/// grant is for confidential clients only (RFC 6749 §4.4).
pub fn permit(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    let confidential_only = grant == GrantType::ClientCredentials;
    if client.allows_grant(grant)
        && (!confidential_only || client.kind() == ClientKind::Confidential)
    {
        return Ok(());
    }
    Err(OAuthError::new(
        ErrorCode::UnauthorizedClient,
        match grant {
            GrantType::AuthorizationCode => "this client may not use the authorization code grant",
            GrantType::RefreshToken => "this client may not use the refresh_token grant",
            GrantType::ClientCredentials => "this client may not use the client_credentials grant",
        },
    ))
}

impl fmt::Debug for CodeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeRequest")
            .field("code", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field(
                "code_verifier",
                &self.code_verifier.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshRequest")
            .field("refresh_token", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenEndpointAuthMethod;

    fn client(method: TokenEndpointAuthMethod, grants: &[GrantType]) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: grants.iter().map(|g| g.as_str().to_owned()).collect(),
            scopes: vec![],
            token_endpoint_auth_method: method,
            id_token_signed_response_alg: None,
            access_token_ttl: None,
            require_consent: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            audiences: vec![],
            web_origins: vec![],
            refresh_token_idle_ttl: None,
            refresh_token_absolute_ttl: None,
            created_at: 0,
            updated_at: 0,
            disabled_at: None,
        }
    }

    fn form(list: &[(&str, &str)]) -> FormParams {
        FormParams::from_pairs(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
        .unwrap()
    }

    fn code(e: Result<TokenRequest, OAuthError>) -> ErrorCode {
        e.unwrap_err().code
    }

    #[test]
    fn grant_type_then_permission_then_parameters() {
        let all = client(TokenEndpointAuthMethod::ClientSecretBasic, &GrantType::ALL);
        let code_only = client(
            TokenEndpointAuthMethod::ClientSecretBasic,
            &[GrantType::AuthorizationCode],
        );
        let public = client(TokenEndpointAuthMethod::None, &GrantType::ALL);
        let parse = |c: &Client, f: &[(&str, &str)]| TokenRequest::parse(&form(f), c);

        assert_eq!(code(parse(&all, &[])), ErrorCode::InvalidRequest);
        assert_eq!(
            code(parse(&all, &[("grant_type", "")])),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(parse(&all, &[("grant_type", "password")])),
            ErrorCode::UnsupportedGrantType
        );
        // Not allowed the grant: said before any missing parameter.
        assert_eq!(
            code(parse(&code_only, &[("grant_type", "refresh_token")])),
            ErrorCode::UnauthorizedClient
        );
        assert_eq!(
            code(parse(&public, &[("grant_type", "client_credentials")])),
            ErrorCode::UnauthorizedClient
        );
        assert_eq!(
            code(parse(&all, &[("grant_type", "authorization_code")])),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(parse(
                &all,
                &[("grant_type", "authorization_code"), ("code", "x")]
            )),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(parse(
                &all,
                &[("grant_type", "refresh_token"), ("refresh_token", "")]
            )),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(parse(
                &all,
                &[("grant_type", "client_credentials"), ("scope", "a\"b")]
            )),
            ErrorCode::InvalidScope
        );
        let ok = parse(
            &all,
            &[
                ("grant_type", "authorization_code"),
                ("code", "the-code"),
                ("redirect_uri", "https://rp.example/cb"),
                ("code_verifier", "the-verifier"),
            ],
        )
        .unwrap();
        assert_eq!(ok.grant_type(), GrantType::AuthorizationCode);
        let shown = format!("{ok:?}");
        assert!(
            !shown.contains("the-code") && !shown.contains("the-verifier"),
            "{shown}"
        );
    }
}
