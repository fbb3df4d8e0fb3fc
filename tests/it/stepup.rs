//! Issue 10, step-up (OIDC Core §3.1.2.1 `acr_values`, RFC 9470): a relying party (the
//! `openidconnect` crate) asks for `urn:portcullis:acr:mfa` from a person signed in with a
//! password only; the code comes only after the second factor, and the ID token then states
//! `acr` and `amr` with `mfa`.

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    TokenResponse as _,
};

use crate::backend_tests;
use crate::helpers::*;
use crate::mfa::{EMAIL, align, code, enrol, second_step};

const MFA: &str = "urn:portcullis:acr:mfa";

type Rp = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

async fn relying_party(app: &TestApp, client: &TestClient) -> Rp {
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.issuer.clone()).unwrap(),
        &browser(),
    )
    .await
    .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        client.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap())
}

/// The relying party's authorization URL, asking for `acr` (and `prompt=none`) when given.
fn auth_url(rp: &Rp, acr: Option<&str>, none: bool) -> (String, PkceCodeVerifier, Nonce) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    if let Some(acr) = acr {
        req = req.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
    }
    if none {
        req = req.add_prompt(CoreAuthPrompt::None);
    }
    let (url, _, nonce) = req.url();
    (url.to_string(), verifier, nonce)
}

/// Exchange the code of redirect `back`: the verified ID token claims and the access token.
async fn exchange(
    rp: &Rp,
    back: &str,
    verifier: PkceCodeVerifier,
    nonce: &Nonce,
) -> (CoreIdTokenClaims, String) {
    let code = query_of(back)
        .remove("code")
        .unwrap_or_else(|| panic!("a code: {back}"));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&browser())
        .await
        .expect("code exchange");
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), nonce)
        .expect("ID token verifies")
        .clone();
    (claims, tokens.access_token().secret().clone())
}

fn amr_of(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str().to_owned())
        .collect()
}

backend_tests! {
    async fn acr_values_mfa_steps_up_a_password_session(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let rp = relying_party(&app, &client).await;
        // Signed in with the password only; the app is set up afterwards in the same browser.
        let b = browser();
        let (secret, _) = enrol(&app, &b).await;
        // Without acr_values the session serves as it is: one factor.
        let (url, verifier, nonce) = auth_url(&rp, None, false);
        let resp = b.get(&url).send().await.unwrap();
        let (claims, _) = exchange(&rp, &location(&resp), verifier, &nonce).await;
        assert_eq!(amr_of(&claims), ["pwd"]);
        assert_eq!(claims.auth_context_ref().unwrap().as_str(), "urn:portcullis:acr:pwd");
        // prompt=none cannot add a factor: interaction_required (OIDC Core §3.1.2.6).
        let (url, _, _) = auth_url(&rp, Some(MFA), true);
        let resp = b.get(&url).send().await.unwrap();
        let back = location(&resp);
        assert!(back.starts_with(&client.redirect_uri), "{back}");
        let q = query_of(&back);
        assert_eq!(q.get("error").map(String::as_str), Some("interaction_required"));
        assert!(!q.contains_key("code"));
        // acr_values=…:mfa: the second factor first, not a new sign-in.
        let (url, verifier, nonce) = auth_url(&rp, Some(MFA), false);
        let resp = b.get(&url).send().await.unwrap();
        let to = location(&resp);
        assert!(to.starts_with("/login/mfa?rid="), "{to}");
        let step = align(&app);
        let (status, back, _) = second_step(&app, &b, &to, "code", &code(&secret, step)).await;
        assert_eq!(status, 303);
        let back = back.unwrap();
        let (claims, access) = exchange(&rp, &back, verifier, &nonce).await;
        assert_eq!(amr_of(&claims), ["pwd", "otp", "mfa"]);
        assert_eq!(claims.auth_context_ref().unwrap().as_str(), MFA);
        assert!(claims.auth_time().unwrap().timestamp() >= app.provider.clock.now() - 5);
        // The JWT access token says the same (RFC 9068 §2.2.1).
        let payload = access.split('.').nth(1).expect("a JWS");
        let at: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
        ).unwrap();
        assert_eq!(at["acr"], MFA);
        assert_eq!(at["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
        // The session was upgraded: the account page still works, and the next request for
        // mfa (even with prompt=none) is answered at once.
        assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 200);
        let (url, verifier, nonce) = auth_url(&rp, Some(MFA), true);
        let resp = b.get(&url).send().await.unwrap();
        let (claims, _) = exchange(&rp, &location(&resp), verifier, &nonce).await;
        assert_eq!(claims.auth_context_ref().unwrap().as_str(), MFA);
        let logins = app.provider.store.query_audit(&portcullis::store::AuditQuery {
            action: Some("login".into()), limit: 100, ..Default::default()
        }).await.unwrap();
        assert!(logins.iter().any(|r| r.details.contains("\"step_up\":true")));
    }

    async fn acr_values_mfa_without_a_second_factor_gives_one_factor(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let rp = relying_party(&app, &client).await;
        let b = browser();
        let (url, verifier, nonce) = auth_url(&rp, Some(MFA), false);
        let resp = b.get(&url).send().await.unwrap();
        let (status, back) = app.submit_login(&b, &location(&resp), EMAIL, PASSWORD).await;
        assert_eq!(status, 303);
        // acr_values is voluntary (OIDC Core §5.5.1.1): the ID token tells the client.
        let (claims, _) = exchange(&rp, &back.unwrap(), verifier, &nonce).await;
        assert_eq!(claims.auth_context_ref().unwrap().as_str(), "urn:portcullis:acr:pwd");
        // From the live session too.
        let (url, verifier, nonce) = auth_url(&rp, Some(MFA), false);
        let resp = b.get(&url).send().await.unwrap();
        let (claims, _) = exchange(&rp, &location(&resp), verifier, &nonce).await;
        assert_eq!(amr_of(&claims), ["pwd"]);
    }
}
