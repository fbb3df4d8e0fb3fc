//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate the request, decide
//! whether the person must sign in, and issue a code.
//!
//! Order matters (RFC 6749 §4.1.2.1): until the client and its redirect URI are validated, errors
//! are shown on a page and never redirected; afterwards they go back to the client with `error`,
//! `state` and `iss` (RFC 9207).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ErrorCode, OAuthError};
use super::{Provider, pkce};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::{
    ADMIN_SCOPE, Client, GrantType, SUPPORTED_SCOPES, Scope, TokenEndpointAuthMethod,
};
use crate::store::{AuthorizationCode, Session, StoreError};

const MAX_STATE_LEN: usize = 2048;
const MAX_NONCE_LEN: usize = 512;
const MAX_HINT_LEN: usize = 254;

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
}

/// An authorization response (success or error) for the client's redirect URI: the web layer
/// turns it into a 303 redirect or a self-posting form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub redirect_uri: String,
    pub params: Vec<(String, String)>,
    pub mode: ResponseMode,
}

impl Callback {
    /// The redirect URI with the parameters appended to its query (response_mode=query).
    pub fn to_url(&self) -> Url {
        let mut url = parse_registered(&self.redirect_uri);
        if !self.params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        url
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
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
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
    /// Answer the client with this error (e.g. `login_required` for `prompt=none`).
    Fail(OAuthError),
}

/// Validate raw request parameters (from the query or a form body) in RFC order.
pub async fn validate(
    provider: &Provider,
    pairs: &[(String, String)],
) -> Result<(AuthorizationRequest, Client), Rejection> {
    let mut params: HashMap<&str, &str> = HashMap::new();
    let mut repeated: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if params.insert(k.as_str(), v.as_str()).is_some() {
            repeated.push(k.as_str());
        }
    }
    // 1. The client and its redirect URI: failures here are pages.
    if repeated.contains(&"client_id") || repeated.contains(&"redirect_uri") {
        return Err(Rejection::Page(
            "The request repeats client_id or redirect_uri.".into(),
        ));
    }
    let client_id = params
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Rejection::Page("The request has no client_id.".into()))?;
    let client = provider
        .store
        .find_client(client_id)
        .await?
        .filter(Client::is_active)
        .ok_or_else(|| {
            Rejection::Page("The application that sent you here is not registered.".into())
        })?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Rejection::Page("The request has no redirect_uri.".into()))?;
    if !client.has_redirect_uri(redirect_uri) {
        return Err(Rejection::Page(
            "The redirect_uri is not registered for this application.".into(),
        ));
    }

    // 2. From here on, errors are redirected to the client.
    let state = params
        .get("state")
        .filter(|s| s.len() <= MAX_STATE_LEN && !repeated.contains(&"state"))
        .map(|s| (*s).to_owned());
    // The response mode decides how even errors travel, so it is read first; an unknown mode
    // is answered in the default (query) mode.
    let mode = match params.get("response_mode").copied() {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(()),
    };
    let fail = |error: OAuthError| {
        Rejection::Redirect(error_callback(
            redirect_uri,
            &error,
            state.as_deref(),
            provider.issuer(),
            mode.unwrap_or_default(),
        ))
    };
    if let Some(name) = repeated.first() {
        return Err(fail(OAuthError::invalid_request(format!(
            "parameter `{name}` is repeated"
        ))));
    }
    if params.get("state").is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(fail(OAuthError::invalid_request("state is too long")));
    }
    if params.contains_key("request") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        )));
    }
    if params.contains_key("request_uri") {
        return Err(fail(OAuthError::new(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        )));
    }
    match params.get("response_type").copied() {
        None | Some("") => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    let Ok(response_mode) = mode else {
        return Err(fail(OAuthError::invalid_request(
            "response_mode must be query or form_post",
        )));
    };
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        )));
    }
    let scope = Scope::parse(params.get("scope").copied().unwrap_or_default())
        .map_err(|e| fail(OAuthError::new(ErrorCode::InvalidScope, e.0)))?;
    if scope.is_empty() {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidScope,
            "scope is required",
        )));
    }
    if let Some(bad) = scope
        .iter()
        .find(|s| !SUPPORTED_SCOPES.contains(s) || !client.scopes.iter().any(|c| c == s))
    {
        return Err(fail(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{bad}` is not available to this client"),
        )));
    }
    let prompt = parse_prompt(params.get("prompt").copied()).map_err(fail)?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(OAuthError::invalid_request(
                "max_age must be a non-negative integer",
            ))
        })?),
    };
    let nonce = params.get("nonce").map(|n| (*n).to_owned());
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(fail(OAuthError::invalid_request("nonce is too long")));
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            )));
        }
        (Some(c), Some(&"S256")) => {
            if !pkce::is_valid_challenge(c) {
                return Err(fail(OAuthError::invalid_request(
                    "code_challenge must be a base64url SHA-256 (43 characters)",
                )));
            }
            Some((*c).to_owned())
        }
        // RFC 7636 §4.3: no method means plain, which is refused like any other method.
        (Some(_), _) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            )));
        }
    };
    if code_challenge.is_none()
        && client.token_endpoint_auth_method == TokenEndpointAuthMethod::None
    {
        return Err(fail(OAuthError::invalid_request(
            "PKCE with code_challenge_method=S256 is required for public clients",
        )));
    }
    let login_hint = params
        .get("login_hint")
        .filter(|h| h.len() <= MAX_HINT_LEN)
        .map(|h| (*h).to_owned());
    // OIDC Core §3.1.2.1: an ID token we issued (expired ones too) naming who the client
    // expects. Anything else is refused rather than ignored: the client asked for a check.
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(hint) => Some(
            crate::oidc::hints::verify_id_token_hint(provider, hint)
                .filter(|h| h.audiences.iter().any(|a| a == &client.id))
                .map(|h| h.sub)
                .ok_or_else(|| fail(OAuthError::invalid_request("id_token_hint is not valid")))?,
        ),
    };

    Ok((
        AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri: (*redirect_uri).to_owned(),
            scope,
            state,
            nonce,
            code_challenge,
            prompt_login: prompt.login,
            prompt_none: prompt.none,
            prompt_consent: prompt.consent,
            max_age,
            login_hint,
            hint_sub,
            response_mode,
            consent_sid: None,
        },
        client,
    ))
}

/// The `prompt` values that change the flow.
#[derive(Debug, Default, PartialEq, Eq)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// OIDC Core §3.1.2.1: `none` must stand alone; `login` forces a new sign-in; `consent` forces
/// the consent page. `select_account` is satisfied by the flow (one account per browser).
fn parse_prompt(value: Option<&str>) -> Result<Prompt, OAuthError> {
    let mut prompt = Prompt::default();
    let mut count = 0;
    for p in value
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
    {
        count += 1;
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            other => {
                return Err(OAuthError::invalid_request(format!(
                    "unsupported prompt value `{other}`"
                )));
            }
        }
    }
    if prompt.none && count > 1 {
        return Err(OAuthError::invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// Decide from the session (if any) whether a code can be issued without a new sign-in. A session
/// of someone other than the `id_token_hint`'s subject never gets a code silently. `Issue` here
/// still goes through [`decide_for_user`] before a code is made.
pub fn decide(req: &AuthorizationRequest, session: Option<&Session>, now: i64) -> Decision {
    // OIDC Core §3.1.2.1: re-authenticate when more than max_age seconds passed. max_age=0 asks
    // for a fresh sign-in every time (a session from this very second must not satisfy it).
    let fresh_enough = |s: &Session| {
        req.max_age
            .is_none_or(|max| max > 0 && now - s.auth_time <= max)
    };
    let hinted = |s: &Session| req.hint_sub.as_ref().is_none_or(|sub| *sub == s.user_id);
    match session {
        Some(s) if !req.prompt_login && fresh_enough(s) && hinted(s) => Decision::Issue,
        _ if req.prompt_none => Decision::Fail(OAuthError::new(
            ErrorCode::LoginRequired,
            "the user must sign in",
        )),
        _ => Decision::Login,
    }
}

/// Whether `client` needs this person's consent for `req` (OIDC Core §3.1.2.4): forced by
/// `prompt=consent`; otherwise when the client requires consent and the remembered consent does
/// not cover every requested scope.
pub fn needs_consent(
    req: &AuthorizationRequest,
    client: &Client,
    remembered: Option<&[String]>,
) -> bool {
    if req.prompt_consent {
        return true;
    }
    client.require_consent && !remembered.is_some_and(|granted| req.scope.is_subset_of(granted))
}

/// The one decision once the person is known (from `/authorize` with a live session, and after
/// a sign-in): `login_required` when they are not whom the `id_token_hint` named (OIDC Core
/// §3.1.2.1: never a code for another user); otherwise the consent question: `Issue`, `Consent`
/// (show the page), or `consent_required` for `prompt=none`.
pub async fn decide_for_user(
    provider: &Provider,
    req: &AuthorizationRequest,
    client: &Client,
    user_id: &str,
) -> Result<Decision, StoreError> {
    if req.hint_sub.as_ref().is_some_and(|sub| sub != user_id) {
        return Ok(Decision::Fail(OAuthError::new(
            ErrorCode::LoginRequired,
            "the signed-in user is not the one named by id_token_hint",
        )));
    }
    let remembered = if client.require_consent && !req.prompt_consent {
        provider.store.find_consent(user_id, &client.id).await?
    } else {
        None
    };
    Ok(if !needs_consent(req, client, remembered.as_deref()) {
        Decision::Issue
    } else if req.prompt_none {
        Decision::Fail(OAuthError::new(
            ErrorCode::ConsentRequired,
            "the user must consent",
        ))
    } else {
        Decision::Consent
    })
}

/// Remember that `user_id` granted `client_id` the request's scopes, widening what was granted.
pub async fn remember_consent(
    provider: &Provider,
    req: &AuthorizationRequest,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let mut scopes = provider
        .store
        .find_consent(user_id, &req.client_id)
        .await?
        .unwrap_or_default();
    for s in req.scope.iter() {
        if !scopes.iter().any(|g| g == s) {
            scopes.push(s.to_owned());
        }
    }
    scopes.sort();
    provider
        .store
        .save_consent(user_id, &req.client_id, &scopes, now)
        .await
}

/// The answer for a refused authorization (e.g. the person denied consent).
pub fn deny(provider: &Provider, req: &AuthorizationRequest, error: &OAuthError) -> Callback {
    error_callback(
        &req.redirect_uri,
        error,
        req.state.as_deref(),
        provider.issuer(),
        req.response_mode,
    )
}

/// The scope the code grants: as requested, except `portcullis:admin`, which only users holding
/// the `admin` role receive (RFC 6749 §3.3 lets the server grant less than asked; the token
/// response's `scope` says what was granted).
async fn granted_scope(
    provider: &Provider,
    req: &AuthorizationRequest,
    user_id: &str,
) -> Result<String, StoreError> {
    if !req.scope.contains(ADMIN_SCOPE) {
        return Ok(req.scope.to_string());
    }
    let is_admin = provider
        .store
        .find_user(user_id)
        .await?
        .is_some_and(|u| u.is_active() && u.has_role("admin"));
    if is_admin {
        return Ok(req.scope.to_string());
    }
    Ok(req
        .scope
        .iter()
        .filter(|s| *s != ADMIN_SCOPE)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Create a single-use code bound to the client, redirect URI, PKCE challenge and session, and
/// return the redirect carrying it (RFC 6749 §4.1.2, RFC 9207).
pub async fn issue_code(
    provider: &Provider,
    req: &AuthorizationRequest,
    session: &Session,
    now: i64,
) -> Result<Callback, StoreError> {
    let code = random_secret(32);
    // Back-Channel Logout 1.0 §2.1: remember which clients this session signed into.
    provider
        .store
        .record_session_client(&session.sid, &req.client_id, now)
        .await?;
    let scope = granted_scope(provider, req, &session.user_id).await?;
    provider
        .store
        .create_code(&AuthorizationCode {
            code_hash: hash_secret(&code),
            client_id: req.client_id.clone(),
            user_id: session.user_id.clone(),
            sid: Some(session.sid.clone()),
            redirect_uri: req.redirect_uri.clone(),
            scope,
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + provider.settings.tokens.authorization_code_ttl,
            used_at: None,
            access_jti: None,
            access_exp: None,
        })
        .await?;
    let mut params = vec![("code".to_owned(), code)];
    if let Some(state) = &req.state {
        params.push(("state".into(), state.clone()));
    }
    params.push(("iss".into(), provider.issuer().to_owned()));
    Ok(Callback {
        redirect_uri: req.redirect_uri.clone(),
        params,
        mode: req.response_mode,
    })
}

/// The response carrying an error (RFC 6749 §4.1.2.1) with `state` and `iss` (RFC 9207).
pub fn error_callback(
    redirect_uri: &str,
    error: &OAuthError,
    state: Option<&str>,
    issuer: &str,
    mode: ResponseMode,
) -> Callback {
    let mut params = vec![("error".to_owned(), error.code.as_str().to_owned())];
    if let Some(d) = &error.description {
        params.push(("error_description".into(), d.to_string()));
    }
    if let Some(state) = state {
        params.push(("state".into(), state.to_owned()));
    }
    params.push(("iss".into(), issuer.to_owned()));
    Callback {
        redirect_uri: redirect_uri.to_owned(),
        params,
        mode,
    }
}

/// Registered redirect URIs were parsed as absolute URLs at registration.
fn parse_registered(uri: &str) -> Url {
    Url::parse(uri).unwrap_or_else(|_| {
        tracing::error!("registered redirect URI failed to parse");
        Url::parse("about:blank").unwrap_or_else(|_| unreachable!("constant URL parses"))
    })
}

/// Keep a validated request while the person signs in; returns the handle for the login form.
pub async fn save_login_request(
    provider: &Provider,
    req: &AuthorizationRequest,
    now: i64,
) -> Result<String, StoreError> {
    let handle = random_secret(24);
    let json = serde_json::to_string(req).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    provider
        .store
        .save_login_request(
            &hash_secret(&handle),
            &json,
            now,
            now + provider.settings.session.login_request_ttl,
        )
        .await?;
    Ok(handle)
}

fn decode_request(json: Option<String>) -> Option<AuthorizationRequest> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

/// Move a request to the consent stage for `session`: the sign-in handle `rid` (if any) is
/// consumed and a new handle returned, so the consent form is bound to this request and this
/// session, and the old login form cannot complete it.
pub async fn await_consent(
    provider: &Provider,
    mut req: AuthorizationRequest,
    rid: Option<&str>,
    session: &Session,
    now: i64,
) -> Result<Option<String>, StoreError> {
    if let Some(rid) = rid
        && take_login_request(provider, rid, now).await?.is_none()
    {
        return Ok(None);
    }
    req.consent_sid = Some(session.sid.clone());
    save_login_request(provider, &req, now).await.map(Some)
}

/// Look at a waiting request without consuming it (to show the login page).
pub async fn peek_login_request(
    provider: &Provider,
    handle: &str,
    now: i64,
) -> Result<Option<AuthorizationRequest>, StoreError> {
    Ok(decode_request(
        provider
            .store
            .find_login_request(&hash_secret(handle), now)
            .await?,
    ))
}

/// Consume a waiting request: each completes at most once.
pub async fn take_login_request(
    provider: &Provider,
    handle: &str,
    now: i64,
) -> Result<Option<AuthorizationRequest>, StoreError> {
    Ok(decode_request(
        provider
            .store
            .take_login_request(&hash_secret(handle), now)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp.example/cb?x=1".into(),
            scope: Scope::parse("openid").unwrap(),
            state: Some("s".into()),
            nonce: None,
            code_challenge: None,
            prompt_login: false,
            prompt_none: false,
            prompt_consent: false,
            max_age: None,
            login_hint: None,
            hint_sub: None,
            response_mode: ResponseMode::Query,
            consent_sid: None,
        }
    }

    fn session(auth_time: i64) -> Session {
        Session {
            sid: "sid".into(),
            user_id: "u".into(),
            auth_time,
            created_at: auth_time,
            expires_at: auth_time + 1000,
            amr: vec![],
        }
    }

    #[test]
    fn decisions() {
        let s = session(100);
        assert_eq!(decide(&req(), Some(&s), 150), Decision::Issue);
        assert_eq!(decide(&req(), None, 150), Decision::Login);
        let none = AuthorizationRequest {
            prompt_none: true,
            ..req()
        };
        assert!(
            matches!(decide(&none, None, 150), Decision::Fail(e) if e.code == ErrorCode::LoginRequired)
        );
        assert_eq!(decide(&none, Some(&s), 150), Decision::Issue);
        let login = AuthorizationRequest {
            prompt_login: true,
            ..req()
        };
        assert_eq!(decide(&login, Some(&s), 150), Decision::Login);
        let max_age = AuthorizationRequest {
            max_age: Some(30),
            ..req()
        };
        assert_eq!(decide(&max_age, Some(&s), 150), Decision::Login);
        assert_eq!(decide(&max_age, Some(&s), 120), Decision::Issue);
        let none_old = AuthorizationRequest {
            prompt_none: true,
            max_age: Some(0),
            ..req()
        };
        assert!(matches!(
            decide(&none_old, Some(&s), 150),
            Decision::Fail(_)
        ));
    }

    #[test]
    fn hint_for_another_user_never_issues_silently() {
        let s = session(100);
        let other = AuthorizationRequest {
            hint_sub: Some("someone-else".into()),
            ..req()
        };
        assert_eq!(decide(&other, Some(&s), 150), Decision::Login);
        let other_none = AuthorizationRequest {
            prompt_none: true,
            ..other
        };
        assert!(matches!(
            decide(&other_none, Some(&s), 150),
            Decision::Fail(e) if e.code == ErrorCode::LoginRequired
        ));
        let same = AuthorizationRequest {
            hint_sub: Some("u".into()),
            ..req()
        };
        assert_eq!(decide(&same, Some(&s), 150), Decision::Issue);
    }

    #[test]
    fn consent_rules() {
        let mut client = Client {
            id: "c".into(),
            name: "C".into(),
            secret_hash: None,
            redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            id_token_signed_response_alg: None,
            access_token_ttl: None,
            require_consent: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            audiences: vec![],
            refresh_token_idle_ttl: None,
            refresh_token_absolute_ttl: None,
            created_at: 0,
            updated_at: 0,
            disabled_at: None,
        };
        let r = AuthorizationRequest {
            scope: Scope::parse("openid email").unwrap(),
            ..req()
        };
        assert!(!needs_consent(&r, &client, None));
        let forced = AuthorizationRequest {
            prompt_consent: true,
            ..r.clone()
        };
        assert!(needs_consent(&forced, &client, None));
        client.require_consent = true;
        assert!(needs_consent(&r, &client, None));
        let some = ["openid".to_owned()];
        assert!(needs_consent(&r, &client, Some(&some)));
        let all = ["email".to_owned(), "openid".to_owned(), "phone".to_owned()];
        assert!(!needs_consent(&r, &client, Some(&all)));
        assert!(needs_consent(&forced, &client, Some(&all)));
    }

    #[test]
    fn prompt_parsing() {
        assert_eq!(parse_prompt(None).unwrap(), Prompt::default());
        assert_eq!(
            parse_prompt(Some("login consent")).unwrap(),
            Prompt {
                login: true,
                consent: true,
                none: false
            }
        );
        assert!(parse_prompt(Some("none consent")).is_err());
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("bogus")).is_err());
    }

    #[test]
    fn error_redirect_keeps_query_and_adds_iss() {
        let e = OAuthError::new(ErrorCode::AccessDenied, "no");
        let url = error_callback(
            "https://rp.example/cb?x=1",
            &e,
            Some("a b&c"),
            "https://id.example",
            ResponseMode::Query,
        )
        .to_url();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("x".into(), "1".into()));
        assert!(pairs.contains(&("error".into(), "access_denied".into())));
        assert!(pairs.contains(&("state".into(), "a b&c".into())));
        assert!(pairs.contains(&("iss".into(), "https://id.example".into())));
    }
}
