//! Redirect URIs are compared to the registered ones exactly (RFC 9700 §4.1.3, RFC 6749 §3.1.2):
//! every variant below is answered with an error page, never a redirect. A verifier for a code
//! issued without a challenge is a PKCE downgrade (RFC 9700 §2.1.1).

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "iris@example.com";

/// `/authorize` for a registered client, with `redirect_uri` replaced by `variant`: a 400 error
/// page, no `Location` (so nothing reaches `variant`), and not the login page either.
async fn refused(app: &TestApp, variant: &str) {
    let client = app.confidential_client().await;
    assert_eq!(client.redirect_uri, REDIRECT_URI);
    let (url, _, _, _) = app.authorize_url(&client, "openid");
    let mut u = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" {
                variant.to_owned()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    let resp = browser().get(u.as_str()).send().await.unwrap();
    assert_eq!(resp.status(), 400, "{variant}");
    assert!(
        resp.headers().get("location").is_none(),
        "{variant}: must not redirect"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("not registered"), "{variant}: {html}");
}

backend_tests! {
    async fn redirect_uri_with_a_fragment_is_refused(app: TestApp) {
        refused(&app, "http://127.0.0.1:9/callback#frag").await;
        refused(&app, "http://127.0.0.1:9/callback#").await;
    }

    async fn redirect_uri_with_another_scheme_is_refused(app: TestApp) {
        refused(&app, "https://127.0.0.1:9/callback").await;
        refused(&app, "HTTP://127.0.0.1:9/callback").await;
    }

    async fn redirect_uri_on_another_or_lookalike_host_is_refused(app: TestApp) {
        refused(&app, "http://127.0.0.1.evil.example:9/callback").await;
        refused(&app, "http://localhost:9/callback").await;
        refused(&app, "http://evil.example/callback").await;
    }

    async fn redirect_uri_on_another_port_is_refused(app: TestApp) {
        refused(&app, "http://127.0.0.1:10/callback").await;
        refused(&app, "http://127.0.0.1/callback").await;
    }

    async fn redirect_uri_with_userinfo_is_refused(app: TestApp) {
        refused(&app, "http://127.0.0.1:9@evil.example/callback").await;
        refused(&app, "http://evil.example@127.0.0.1:9/callback").await;
    }

    async fn redirect_uri_with_encoded_case_or_dot_segment_variants_is_refused(app: TestApp) {
        for v in [
            "http://127.0.0.1:9/%63allback",
            "http://127.0.0.1:9%2Fcallback",
            "http://127.0.0.1:9/Callback",
            "http://127.0.0.1:9/callback/",
            "http://127.0.0.1:9/x/../callback",
            "http://127.0.0.1:9//callback",
            " http://127.0.0.1:9/callback",
        ] {
            refused(&app, v).await;
        }
    }

    async fn a_verifier_for_a_code_issued_without_challenge_is_a_pkce_downgrade(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let mut u = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        let back = app.authorize_with_login(&browser(), u.as_str(), EMAIL, PASSWORD).await;
        let code = query_of(&back).remove("code").expect("a confidential client may omit PKCE");
        let resp = app
            .token_request(&client, &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
}
