//! OAuth 2.0 / OpenID Connect error codes (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1,
//! OIDC Core §3.1.2.6). The description is for developers and never carries secrets.
//!
//! Descriptions are in our words only: they never echo a value from the request (an attacker
//! could otherwise have the client show their text, e.g. "your account is locked, call …"), and
//! they name a parameter or scope only when it is one we know ([`known`]). RFC 6749 §5.2 limits
//! them to printable ASCII without `"` and `\`; [`OAuthError::description_for_client`] is the
//! last check before a description leaves the server.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The grant (code, refresh token) is invalid, expired, revoked or bound to someone else.
    InvalidGrant,
    /// The client may not use this grant type or response type.
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown or exceeds what the client may ask for.
    InvalidScope,
    /// The resource owner or the server denied the request.
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    /// `prompt=none` but the person must sign in (OIDC Core §3.1.2.6).
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    /// The access token is missing, expired, revoked or malformed (RFC 6750 §3.1).
    InvalidToken,
    InsufficientScope,
    RequestNotSupported,
    RequestUriNotSupported,
    /// The requested resource or audience is invalid, unknown, or not allowed for this client
    /// (RFC 8707 §2).
    InvalidTarget,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::InteractionRequired => "interaction_required",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::InvalidTarget => "invalid_target",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Option<Cow<'static, str>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            description: None,
        }
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }

    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// An internal failure; the cause is logged by the caller, never sent.
    pub fn server_error() -> Self {
        Self::bare(ErrorCode::ServerError)
    }
}

impl OAuthError {
    /// The description as sent to a client: only when every character is one RFC 6749 §5.2
    /// allows (`%x20-21 / %x23-5B / %x5D-7E`); anything else is dropped rather than sent.
    pub fn description_for_client(&self) -> Option<&str> {
        self.description
            .as_deref()
            .filter(|d| is_valid_description(d))
    }
}

/// Whether `s` is a valid `error_description` (RFC 6749 §5.2: `%x20-21 / %x23-5B / %x5D-7E`).
pub fn is_valid_description(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..=0x7E).contains(&b) && b != b'"' && b != b'\\')
}

/// `name` as one of ours, when it is in `known` (so that a description may name it); `None`
/// for anything the request made up.
pub fn known<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().copied().find(|k| *k == name)
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.code.as_str()),
            None => f.write_str(self.code.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the service is temporarily unavailable; retry later",
            );
        }
        tracing::error!(error = %e, "storage failure");
        Self::server_error()
    }
}

impl From<crate::crypto::KeyError> for OAuthError {
    fn from(e: crate::crypto::KeyError) -> Self {
        tracing::error!(error = %e, "signing failure");
        Self::server_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rfc_characters_reach_the_client() {
        let ok = OAuthError::invalid_request("parameter `scope` is repeated");
        assert_eq!(
            ok.description_for_client(),
            Some("parameter `scope` is repeated")
        );
        for bad in [
            "a\r\nb",
            "say \"hi\"",
            "back\\slash",
            "caf\u{e9}",
            "tab\there",
        ] {
            let e = OAuthError::invalid_request(bad.to_owned());
            assert_eq!(e.description_for_client(), None, "{bad:?}");
        }
        assert_eq!(known("scope", &["scope", "state"]), Some("scope"));
        assert_eq!(known("x\r\ny", &["scope", "state"]), None);
    }
}
