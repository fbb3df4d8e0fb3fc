//! What to do with a valid request (OIDC Core §3.1.2.1, §3.1.2.4): sign in, ask for consent,
//! issue a code, or fail; and remembering consent.

use super::types::{AuthorizationRequest, Decision};
use crate::domain::Client;
use crate::oauth::Provider;
use crate::oauth::error::{ErrorCode, OAuthError};
use crate::store::{Session, StoreError};

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
        Some(s) if !req.prompt_login && fresh_enough(s) && hinted(s) => {
            if !req.acr_mfa || crate::domain::acr::is_mfa(&s.amr) {
                Decision::Issue
            } else if req.prompt_none {
                // OIDC Core §3.1.2.6: the second factor needs the person.
                Decision::Fail(OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "the request needs a second factor that the session does not have",
                ))
            } else {
                Decision::StepUp
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Scope, TokenEndpointAuthMethod};
    use crate::oauth::authorize::types::ResponseMode;

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
            acr_mfa: false,
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
    fn acr_values_mfa_steps_up_a_one_factor_session() {
        let pwd = session(100);
        let mfa = Session {
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            ..session(100)
        };
        let asks = AuthorizationRequest {
            acr_mfa: true,
            ..req()
        };
        assert_eq!(decide(&asks, Some(&pwd), 150), Decision::StepUp);
        assert_eq!(decide(&asks, Some(&mfa), 150), Decision::Issue);
        assert_eq!(decide(&asks, None, 150), Decision::Login);
        let none = AuthorizationRequest {
            prompt_none: true,
            ..asks
        };
        assert!(matches!(
            decide(&none, Some(&pwd), 150),
            Decision::Fail(e) if e.code == ErrorCode::InteractionRequired
        ));
        assert_eq!(decide(&none, Some(&mfa), 150), Decision::Issue);
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
            web_origins: vec![],
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
}
