//! Relying parties registered with the provider.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvalidInput;

/// JWS algorithms Portcullis signs with. `none` and symmetric algorithms are deliberately absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlgorithm {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(format!(
                    "unsupported algorithm `{s}`; use RS256, ES256 or EdDSA"
                ))
            })
    }
}

/// How a client proves its identity at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: no secret, PKCE required.
    None,
}

impl TokenEndpointAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

impl FromStr for TokenEndpointAuthMethod {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "none" => Ok(Self::None),
            _ => Err(InvalidInput::new(format!(
                "unsupported token_endpoint_auth_method `{s}`"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Confidential,
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

impl FromStr for GrantType {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                InvalidInput::new(format!(
                    "unsupported grant type `{s}`; use authorization_code, refresh_token or client_credentials"
                ))
            })
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 (hex) of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// Scopes this client may request.
    pub scopes: Vec<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    pub id_token_signed_response_alg: Option<SigningAlgorithm>,
    pub access_token_ttl: Option<i64>,
    pub require_consent: bool,
    /// Where RP-initiated logout may send the browser (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout receiver.
    pub backchannel_logout_uri: Option<String>,
    /// Resource indicators (RFC 8707) this client may request tokens for.
    pub audiences: Vec<String>,
    /// Browser origins (`scheme://host[:port]`) allowed to call the token, userinfo, revocation
    /// and introspection endpoints (CORS). Empty: see [`Client::allowed_origins`].
    pub web_origins: Vec<String>,
    /// Refresh-token lifetimes in seconds; `None` uses the server default.
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

impl Client {
    /// A new registration with the defaults every path (CLI, admin API) starts from: the
    /// authorization code grant, every supported scope except the admin API's (which must be
    /// granted explicitly), and no optional settings. `id` comes from the caller (random).
    pub fn new(id: String, name: String, method: TokenEndpointAuthMethod, now: i64) -> Self {
        Self {
            id,
            name,
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode.as_str().to_owned()],
            scopes: super::SUPPORTED_SCOPES
                .iter()
                .filter(|s| **s != super::ADMIN_SCOPE)
                .map(|s| (*s).to_owned())
                .collect(),
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
            created_at: now,
            updated_at: now,
            disabled_at: None,
        }
    }

    pub fn kind(&self) -> ClientKind {
        if self.token_endpoint_auth_method == TokenEndpointAuthMethod::None {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        }
    }

    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Exact, whole-string match against the registered list (RFC 9700 §4.1.3).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// The origins CORS answers for this client: its `web_origins`, or, when it lists none and is
    /// a public client (a browser app), the origins of its http(s) redirect URIs.
    pub fn allowed_origins(&self) -> Vec<String> {
        if !self.web_origins.is_empty() || self.kind() == ClientKind::Confidential {
            return self.web_origins.clone();
        }
        let mut out: Vec<String> = Vec::new();
        for o in self.redirect_uris.iter().filter_map(|u| origin_of(u)) {
            if !out.contains(&o) {
                out.push(o);
            }
        }
        out
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.iter().any(|g| g == grant.as_str())
    }
}

/// The origin (`scheme://host[:port]`, default port left out) of an http(s) URL; `None` for
/// anything else (custom schemes of native apps have no web origin).
pub fn origin_of(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "secret_hash",
                &self.secret_hash.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field("web_origins", &self.web_origins)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .finish_non_exhaustive()
    }
}
