//! The answers to the client (RFC 6749 §4.1.2, §4.1.2.1, RFC 9207): a code, or an error.

use super::types::{AuthorizationRequest, Callback, ResponseMode};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::ADMIN_SCOPE;
use crate::oauth::Provider;
use crate::oauth::error::OAuthError;
use crate::store::{AuthorizationCode, Session, StoreError};

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
            amr: session.amr.join(" "),
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
    if let Some(d) = error.description_for_client() {
        params.push(("error_description".into(), d.to_owned()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::error::ErrorCode;

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

    #[test]
    fn fragment_errors_leave_the_query_alone() {
        let e = OAuthError::new(ErrorCode::UnsupportedResponseType, "no");
        let url = error_callback(
            "https://rp.example/cb?x=1",
            &e,
            Some("a b&c"),
            "https://id.example",
            ResponseMode::Fragment,
        )
        .to_url();
        assert_eq!(url.query(), Some("x=1"));
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            pairs[0],
            ("error".into(), "unsupported_response_type".into())
        );
        assert!(pairs.contains(&("state".into(), "a b&c".into())));
        assert!(pairs.contains(&("iss".into(), "https://id.example".into())));
    }
}
