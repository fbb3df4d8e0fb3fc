//! The types of the authorization endpoint: the validated request, how its answer travels, and
//! the decisions about it. Imports no other part of `authorize`.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::Scope;
use crate::oauth::error::OAuthError;
use crate::store::StoreError;

/// A validated authorization request; stored while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Scope,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_none: bool,
    /// `prompt=consent`: ask again even when consent was remembered.
    #[serde(default)]
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`: the person the client expects to be signed in.
    #[serde(default)]
    pub hint_sub: Option<String>,
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// Set when the request waits on the consent page: the session (`sid`) that must answer it.
    #[serde(default)]
    pub consent_sid: Option<String>,
    /// `acr_values` holds `urn:portcullis:acr:mfa` (OIDC Core §3.1.2.1): a session signed in
    /// with one factor adds the second before a code is issued (step-up).
    #[serde(default)]
    pub acr_mfa: bool,
}

/// How the authorization response travels back (OAuth 2.0 Multiple Response Types §2.1,
/// OAuth 2.0 Form Post Response Mode).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (the default for `code`).
    #[default]
    Query,
    /// An auto-submitting HTML form POSTs the parameters to the redirect URI.
    FormPost,
    /// Parameters in the redirect URI's fragment: the default of every response type that
    /// returns a token from this endpoint (`token`, `id_token`, hybrids; Multiple Response Types
    /// §2.1, §3). We support none of them, so only their errors travel this way (RFC 6749
    /// §4.2.2.1): a client that expects the fragment reads nothing from the query.
    Fragment,
}

/// An authorization response (success or error) for the client's redirect URI: the web layer
/// turns it into a 303 redirect or a self-posting form. It may carry a live authorization code,
/// so `Debug` shows the parameter names only.
#[derive(Clone, PartialEq, Eq)]
pub struct Callback {
    pub redirect_uri: String,
    pub params: Vec<(String, String)>,
    pub mode: ResponseMode,
}

impl Callback {
    /// The redirect URI with the parameters appended to its query (response_mode=query), or
    /// form-encoded in its fragment (fragment mode; registered URIs have no fragment of their
    /// own, RFC 6749 §3.1.2).
    pub fn to_url(&self) -> Url {
        let mut url = parse_registered(&self.redirect_uri);
        if self.params.is_empty() {
            return url;
        }
        if self.mode == ResponseMode::Fragment {
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.params {
                f.append_pair(k, v);
            }
            url.set_fragment(Some(&f.finish()));
        } else {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        url
    }
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Callback")
            .field("redirect_uri", &self.redirect_uri)
            .field("params", &names)
            .field("mode", &self.mode)
            .finish()
    }
}

/// Why a request was refused, and how the answer must travel.
#[derive(Debug)]
pub enum Rejection {
    /// The client or redirect URI cannot be trusted: show this message on a page, never redirect.
    Page(String),
    /// Answer the client at its validated redirect URI, carrying the error.
    Redirect(Callback),
    /// Storage or signing failed; logged already.
    Internal,
    /// The database cannot be reached before the redirect URI could be validated: a 503 page.
    Unavailable,
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable in authorization endpoint");
            return Rejection::Unavailable;
        }
        tracing::error!(error = %e, "storage failure in authorization endpoint");
        Rejection::Internal
    }
}

/// What to do with a valid request given the current sign-in session.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The session satisfies the request: issue a code now.
    Issue,
    /// The person is signed in, but must first answer the consent page.
    Consent,
    /// The person must sign in (again).
    Login,
    /// The person is signed in with one factor where the request asks for two: the second
    /// factor first (step-up), then on as for `Issue`.
    StepUp,
    /// Answer the client with this error (e.g. `login_required` for `prompt=none`).
    Fail(OAuthError),
}

/// Registered redirect URIs were parsed as absolute URLs at registration.
fn parse_registered(uri: &str) -> Url {
    Url::parse(uri).unwrap_or_else(|_| {
        tracing::error!("registered redirect URI failed to parse");
        Url::parse("about:blank").unwrap_or_else(|_| unreachable!("constant URL parses"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_debug_prints_no_code() {
        let callback = Callback {
            redirect_uri: "https://rp.example/cb".into(),
            params: vec![
                ("code".into(), "live-code-value".into()),
                ("state".into(), "s".into()),
            ],
            mode: ResponseMode::Query,
        };
        let shown = format!("{callback:?}");
        assert!(!shown.contains("live-code-value"), "{shown}");
        assert!(
            shown.contains("code") && shown.contains("rp.example"),
            "{shown}"
        );
    }
}
