//! Validation of an authorization request (RFC 6749 §4.1.1, §4.1.2.1, OIDC Core §3.1.2.1), in
//! RFC order: until the client and its redirect URI are validated, errors are shown on a page and
//! never redirected; afterwards they go back to the client.

use std::collections::HashMap;

use super::respond::error_callback;
use super::types::{AuthorizationRequest, Rejection, ResponseMode};
use crate::domain::{Client, GrantType, SUPPORTED_SCOPES, Scope, TokenEndpointAuthMethod};
use crate::oauth::Provider;
use crate::oauth::error::{ErrorCode, OAuthError, known};
use crate::oauth::pkce;

/// The authorization request's parameters (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1,
/// OAuth 2.0 Multiple Response Types §2.1, RFC 9101, RFC 8707): the only names an error
/// description may repeat back.
const KNOWN_PARAMETERS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_mode",
    "nonce",
    "display",
    "prompt",
    "max_age",
    "ui_locales",
    "id_token_hint",
    "login_hint",
    "acr_values",
    "claims",
    "claims_locales",
    "request",
    "request_uri",
    "registration",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

const MAX_STATE_LEN: usize = 2048;
const MAX_NONCE_LEN: usize = 512;
const MAX_HINT_LEN: usize = 254;

/// Validate raw request parameters (from the query or a form body) in RFC order.
///
/// `hint_subject` checks an `id_token_hint` (OIDC Core §3.1.2.1), which only `oidc` can verify:
/// given the hint and the validated client, it returns the hint's `sub` when the hint is an ID
/// token this provider issued to that client (expired ones too), `None` otherwise. It is called
/// last, only when a hint was sent; a hint that does not check out is refused, never ignored.
pub async fn validate(
    provider: &Provider,
    pairs: &[(String, String)],
    hint_subject: impl FnOnce(&str, &Client) -> Option<String>,
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
    // is answered in the response type's default mode.
    let fallback_mode = default_mode(params.get("response_type").copied());
    let mode = match params.get("response_mode").copied() {
        // Multiple Response Types §2.1: never the query for a type that returns a token.
        None | Some("query") => Ok(fallback_mode),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(()),
    };
    let fail = |error: OAuthError| {
        Rejection::Redirect(error_callback(
            redirect_uri,
            &error,
            state.as_deref(),
            provider.issuer(),
            mode.unwrap_or(fallback_mode),
        ))
    };
    if let Some(name) = repeated.first() {
        return Err(fail(OAuthError::invalid_request(
            match known(name, KNOWN_PARAMETERS) {
                Some(name) => format!("parameter `{name}` is repeated").into(),
                None => std::borrow::Cow::Borrowed("a parameter is repeated"),
            },
        )));
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
            match known(bad, SUPPORTED_SCOPES) {
                Some(name) => format!("scope `{name}` is not available to this client").into(),
                None => std::borrow::Cow::Borrowed("a requested scope is not supported"),
            },
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
    // OIDC Core §3.1.2.1 `acr_values`: space-separated, in order of preference, voluntary
    // (§5.5.1.1); unknown values are ignored. Asking for `mfa` asks for a second factor.
    let acr_mfa = params
        .get("acr_values")
        .is_some_and(|v| v.split(' ').any(|a| a == crate::domain::acr::ACR_MFA));
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
            hint_subject(hint, &client)
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
            acr_mfa,
        },
        client,
    ))
}

/// The default response mode of a `response_type` (OAuth 2.0 Multiple Response Types §2.1, §3,
/// §5; RFC 6749 §4.2.2): the fragment when it names `token` or `id_token` (implicit and hybrid
/// flows), the query otherwise.
fn default_mode(response_type: Option<&str>) -> ResponseMode {
    let returns_token = response_type
        .unwrap_or_default()
        .split(' ')
        .any(|t| t == "token" || t == "id_token");
    if returns_token {
        ResponseMode::Fragment
    } else {
        ResponseMode::Query
    }
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
            _ => {
                return Err(OAuthError::invalid_request(
                    "prompt has an unsupported value (supported: none, login, consent, \
                     select_account)",
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_response_types_default_to_the_fragment() {
        for t in [
            "token",
            "id_token",
            "id_token token",
            "code id_token",
            "code token",
        ] {
            assert_eq!(default_mode(Some(t)), ResponseMode::Fragment, "{t}");
        }
        for t in ["code", "none", "", "tokens", "code  bogus"] {
            assert_eq!(default_mode(Some(t)), ResponseMode::Query, "{t}");
        }
        assert_eq!(default_mode(None), ResponseMode::Query);
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
}
