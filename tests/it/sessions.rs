//! Issue 3 (second half): consent, RP-initiated and back-channel logout, `id_token_hint` and
//! `login_hint` on /authorize, and `response_mode=form_post`.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::domain::TokenEndpointAuthMethod;
use portcullis::store::{AuditQuery, AuditRecord};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "alice@example.com";
const LOGOUT_URI: &str = "http://127.0.0.1:9/signed-out";

/// Sign in `browser` through the real pages and exchange the code: the token response.
async fn sign_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &TestClient,
    scope: &str,
) -> Value {
    let (url, verifier, state, _) = app.authorize_url(client, scope);
    let back = app
        .authorize_with_login(browser, &url, EMAIL, PASSWORD)
        .await;
    let q = query_of(&back);
    assert_eq!(q.get("state"), Some(&state), "redirect {back}");
    exchange(app, client, &q["code"], &verifier).await
}

async fn exchange(app: &TestApp, client: &TestClient, code: &str, verifier: &str) -> Value {
    let resp = app
        .token_request(
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &client.redirect_uri),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("token JSON")
}

/// An /authorize URL with extra parameters.
fn with_params(url: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(url).expect("url");
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWS payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditRecord> {
    app.provider
        .store
        .query_audit(&AuditQuery {
            action: Some(action.into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("audit query")
}

async fn consent_client(app: &TestApp) -> TestClient {
    app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
        c.require_consent = true;
        c.name = "Photo Printer".into();
    })
    .await
}

/// GET the consent page at `path`; returns (csrf, rid, html).
async fn consent_page(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
) -> (String, String, String) {
    assert!(
        path.starts_with("/consent?rid="),
        "expected the consent page, got {path}"
    );
    let resp = browser
        .get(app.url(path))
        .send()
        .await
        .expect("consent page");
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.expect("html");
    let csrf = input_value(&html, "csrf").expect("csrf field");
    let rid = input_value(&html, "rid").expect("rid field");
    (csrf, rid, html)
}

async fn answer_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    rid: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/consent"))
        .form(&[("csrf", csrf), ("rid", rid), ("decision", decision)])
        .send()
        .await
        .expect("consent post")
}

/// A `logout_token` receiver on 127.0.0.1:0 that answers `fail_first` requests with 500.
struct Receiver {
    uri: String,
    tokens: Arc<Mutex<Vec<String>>>,
    hits: Arc<Mutex<usize>>,
}

async fn receiver(fail_first: usize) -> Receiver {
    use axum::extract::State;
    use axum::http::StatusCode;
    type Shared = (Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>, usize);
    async fn receive(
        State((tokens, hits, fail_first)): State<Shared>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> StatusCode {
        let n = {
            let mut h = hits.lock().unwrap();
            *h += 1;
            *h
        };
        if n <= fail_first {
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        assert_eq!(
            headers[axum::http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(pairs.len(), 1);
        assert_eq!(pairs[0].0, "logout_token");
        tokens.lock().unwrap().push(pairs[0].1.clone());
        StatusCode::OK
    }
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(Mutex::new(0));
    let app = axum::Router::new()
        .route("/backchannel", axum::routing::post(receive))
        .with_state((tokens.clone(), hits.clone(), fail_first));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("receiver");
    });
    Receiver {
        uri: format!("http://{addr}/backchannel"),
        tokens,
        hits,
    }
}

impl Receiver {
    /// Wait (bounded) until a token arrived; the worker is woken by the logout itself.
    async fn wait_token(&self, deadline_secs: u64) -> String {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(deadline_secs);
        loop {
            if let Some(t) = self.tokens.lock().unwrap().first().cloned() {
                return t;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no logout token delivered (hits: {})",
                self.hits.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Verify a compact JWS against the provider's published JWKS (as a relying party would).
async fn verify_with_jwks(app: &TestApp, token: &str) -> (Value, Value) {
    let jwks: Value = app
        .http
        .get(app.url("/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    let header = josekit::jwt::decode_header(token).expect("header");
    let kid = header.claim("kid").and_then(Value::as_str).expect("kid");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid published in JWKS");
    let jwk = josekit::jwk::Jwk::from_bytes(key.to_string().as_bytes()).expect("jwk");
    let alg = key["alg"].as_str().expect("alg");
    let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
        "RS256" => Box::new(
            josekit::jws::RS256
                .verifier_from_jwk(&jwk)
                .expect("verifier"),
        ),
        "ES256" => Box::new(
            josekit::jws::ES256
                .verifier_from_jwk(&jwk)
                .expect("verifier"),
        ),
        "EdDSA" => Box::new(
            josekit::jws::EdDSA
                .verifier_from_jwk(&jwk)
                .expect("verifier"),
        ),
        other => panic!("unexpected alg {other}"),
    };
    let (payload, header) =
        josekit::jwt::decode_with_verifier(token, verifier.as_ref()).expect("valid signature");
    (
        Value::Object(header.claims_set().clone()),
        Value::Object(payload.claims_set().clone()),
    )
}

backend_tests! {
    async fn consent_allow_is_remembered_and_prompt_consent_asks_again(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = consent_client(&app).await;
        let browser = browser();
        let (url, verifier, state, _) = app.authorize_url(&client, "openid email");
        let to = app.authorize_with_login(&browser, &url, EMAIL, PASSWORD).await;
        let (csrf, rid, html) = consent_page(&app, &browser, &to).await;
        assert!(html.contains("Photo Printer"));
        assert!(html.contains("Confirm your identity"));
        assert!(html.contains("See your e-mail address"));
        let resp = answer_consent(&app, &browser, &csrf, &rid, "allow").await;
        assert_eq!(resp.status(), 303);
        let back = location(&resp);
        assert!(back.starts_with(REDIRECT_URI));
        let q = query_of(&back);
        assert_eq!(q["state"], state);
        assert_eq!(q["iss"], app.issuer);
        let tokens = exchange(&app, &client, &q["code"], &verifier).await;
        assert!(tokens["id_token"].is_string());
        let given = audit(&app, "consent.give").await;
        assert_eq!(given.len(), 1);
        assert_eq!(given[0].outcome, "success");
        assert_eq!(given[0].client_id.as_deref(), Some(client.id.as_str()));

        // Replaying the answered form fails: the request completed.
        let replay = answer_consent(&app, &browser, &csrf, &rid, "allow").await;
        assert_eq!(replay.status(), 400);

        // Remembered: the same scopes (or fewer) skip the page.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        assert!(query_of(&location(&resp)).contains_key("code"));

        // A wider scope set asks again.
        let (url, _, _, _) = app.authorize_url(&client, "openid email profile");
        let resp = browser.get(&url).send().await.unwrap();
        assert!(location(&resp).starts_with("/consent?rid="));

        // prompt=consent forces the page even when remembered.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(with_params(&url, &[("prompt", "consent")])).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        assert!(location(&resp).starts_with("/consent?rid="));
    }

    async fn consent_deny_sends_access_denied(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = consent_client(&app).await;
        let browser = browser();
        let (url, _, state, _) = app.authorize_url(&client, "openid email");
        let to = app.authorize_with_login(&browser, &url, EMAIL, PASSWORD).await;
        let (csrf, rid, _) = consent_page(&app, &browser, &to).await;
        let resp = answer_consent(&app, &browser, &csrf, &rid, "deny").await;
        assert_eq!(resp.status(), 303);
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "access_denied");
        assert_eq!(q["state"], state);
        assert_eq!(q["iss"], app.issuer);
        assert!(!q.contains_key("code"));
        let given = audit(&app, "consent.give").await;
        assert_eq!(given[0].outcome, "failure");
        // Nothing was remembered: the next request asks again.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(&url).send().await.unwrap();
        let to = location(&resp);
        let (csrf, rid, _) = consent_page(&app, &browser, &to).await;
        // The form is bound to the session it was shown to: after a new sign-in it fails.
        let (status, _) = app.submit_login(&browser, "/login?rid=expired", EMAIL, PASSWORD).await;
        assert_eq!(status, 400, "signed in again; the bogus request is reported expired");
        let resp = browser.get(app.url(&to)).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        let resp = answer_consent(&app, &browser, &csrf, &rid, "allow").await;
        assert_eq!(resp.status(), 403);
        assert!(resp.headers().get("location").is_none());
    }

    async fn consent_without_csrf_is_refused(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = consent_client(&app).await;
        let browser = browser();
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let to = app.authorize_with_login(&browser, &url, EMAIL, PASSWORD).await;
        let (csrf, rid, _) = consent_page(&app, &browser, &to).await;
        for bad in ["", "AAAA", &csrf[..csrf.len() - 2]] {
            let resp = answer_consent(&app, &browser, bad, &rid, "allow").await;
            assert_eq!(resp.status(), 403, "csrf {bad:?}");
            assert!(resp.headers().get("location").is_none());
        }
        // Another browser (another CSRF cookie, no session) cannot answer it either.
        let other = crate::helpers::browser();
        let resp = answer_consent(&app, &other, &csrf, &rid, "allow").await;
        assert_eq!(resp.status(), 403);
        // A form for an unknown request fails; the genuine one still works.
        let resp = answer_consent(&app, &browser, &csrf, "not-a-request", "allow").await;
        assert_eq!(resp.status(), 400);
        let resp = answer_consent(&app, &browser, &csrf, &rid, "allow").await;
        assert_eq!(resp.status(), 303);
        assert!(query_of(&location(&resp)).contains_key("code"));
        assert_eq!(audit(&app, "consent.give").await.len(), 1);
    }

    async fn prompt_none_needing_consent_is_consent_required(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = consent_client(&app).await;
        let plain = app.confidential_client().await;
        let browser = browser();
        // Sign in through a client that needs no consent.
        sign_in(&app, &browser, &plain, "openid").await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "consent_required");
        assert_eq!(q["state"], state);
        // A client without require_consent is not asked.
        let (url, _, _, _) = app.authorize_url(&plain, "openid email");
        let resp = browser.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
        assert!(query_of(&location(&resp)).contains_key("code"));
    }

    async fn logout_with_valid_hint_redirects_with_state(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.post_logout_redirect_uris = vec![LOGOUT_URI.into()];
            })
            .await;
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        let hint = tokens["id_token"].as_str().unwrap();
        let url = with_params(&app.url("/logout"), &[
            ("id_token_hint", hint),
            ("client_id", &client.id),
            ("post_logout_redirect_uri", LOGOUT_URI),
            ("state", "af0ifjsldkj"),
        ]);
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert!(to.starts_with(LOGOUT_URI), "{to}");
        assert_eq!(query_of(&to)["state"], "af0ifjsldkj");
        let cleared = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("portcullis_session=;"));
        assert!(cleared, "session cookie cleared");
        let events = audit(&app, "logout").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].client_id.as_deref(), Some(client.id.as_str()));

        // After logout, prompt=none must not find a session.
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "login_required");
        assert_eq!(q["state"], state);

        // A POST logout (form) with the hint works the same, even though nothing is signed in.
        let resp = browser
            .post(app.url("/logout"))
            .form(&[("id_token_hint", hint), ("post_logout_redirect_uri", LOGOUT_URI)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), LOGOUT_URI);
    }

    async fn forged_hints_get_the_confirmation_page(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.post_logout_redirect_uris = vec![LOGOUT_URI.into()];
            })
            .await;
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        let genuine = tokens["id_token"].as_str().unwrap();
        let parts: Vec<&str> = genuine.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let kid = header["kid"].as_str().unwrap().to_owned();

        // 1. alg none, with our kid.
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
        let alg_none = format!("{none_header}.{}.", parts[1]);
        // 2. Signed by a foreign RSA key, claiming our kid.
        let foreign = josekit::jws::RS256.generate_key_pair(2048).unwrap();
        let signer = josekit::jws::RS256.signer_from_der(foreign.to_der_private_key()).unwrap();
        let mut h = josekit::jws::JwsHeader::new();
        h.set_token_type("JWT");
        h.set_key_id(kid.clone());
        let payload = josekit::jwt::JwtPayload::from_map(
            claims_of(genuine).as_object().unwrap().clone(),
        )
        .unwrap();
        let foreign_signed = josekit::jwt::encode_with_signer(&payload, &h, &signer).unwrap();
        // 3. Tampered payload: another subject, the original signature.
        let mut claims = claims_of(genuine);
        claims["sub"] = "someone-else".into();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        );

        for (name, hint) in [("alg none", alg_none), ("foreign key", foreign_signed), ("tampered", tampered)] {
            let url = with_params(&app.url("/logout"), &[
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", LOGOUT_URI),
                ("state", "s1"),
            ]);
            let resp = browser.get(&url).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{name}: confirmation page, not a redirect");
            assert!(resp.headers().get("location").is_none(), "{name}");
            let html = resp.text().await.unwrap();
            assert!(html.contains("action=\"/logout/confirm\""), "{name}");
            assert!(!html.contains("signed-out"), "{name}: the unproven redirect is not carried");
            assert!(audit(&app, "logout").await.is_empty(), "{name}: still signed in");
        }

        // Still signed in: prompt=none issues a code.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
        assert!(query_of(&location(&resp)).contains_key("code"));

        // Confirming without the CSRF token is refused; with it, the person is signed out and
        // shown the signed-out page (the unproven redirect is not used).
        let url = with_params(&app.url("/logout"), &[("post_logout_redirect_uri", LOGOUT_URI)]);
        let html = browser.get(&url).send().await.unwrap().text().await.unwrap();
        let csrf = input_value(&html, "csrf").expect("csrf");
        let resp = browser.post(app.url("/logout/confirm")).form(&[("csrf", "")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        let resp = browser
            .post(app.url("/logout/confirm"))
            .form(&[("csrf", csrf.as_str()), ("post_logout_redirect_uri", LOGOUT_URI)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("You are signed out"));
        assert_eq!(audit(&app, "logout").await.len(), 1);
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
        assert_eq!(query_of(&location(&resp))["error"], "login_required");
    }

    async fn hint_of_another_session_asks_and_client_id_must_match(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.post_logout_redirect_uris = vec![LOGOUT_URI.into()];
            })
            .await;
        let other_client = app.confidential_client().await;
        let old_browser = browser();
        let old = sign_in(&app, &old_browser, &client, "openid").await;
        let browser = browser();
        let current = sign_in(&app, &browser, &client, "openid").await;
        // A genuine hint, but for the other browser's session: confirm first.
        let url = with_params(&app.url("/logout"), &[
            ("id_token_hint", old["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", LOGOUT_URI),
        ]);
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("/logout/confirm"));
        // client_id inconsistent with the hint's audience: no redirect, confirmation.
        let url = with_params(&app.url("/logout"), &[
            ("id_token_hint", current["id_token"].as_str().unwrap()),
            ("client_id", &other_client.id),
            ("post_logout_redirect_uri", LOGOUT_URI),
        ]);
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("location").is_none());
        assert!(audit(&app, "logout").await.is_empty());
    }

    async fn unregistered_post_logout_uri_is_not_followed(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.post_logout_redirect_uris = vec![LOGOUT_URI.into()];
            })
            .await;
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        let url = with_params(&app.url("/logout"), &[
            ("id_token_hint", tokens["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "https://evil.example/phish"),
            ("state", "s"),
        ]);
        let resp = browser.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "signed-out page, no redirect");
        assert!(resp.headers().get("location").is_none());
        let html = resp.text().await.unwrap();
        assert!(html.contains("You are signed out"));
        assert!(!html.contains("evil.example"));
        // The hint tied the request to the session, so the logout happened.
        assert_eq!(audit(&app, "logout").await.len(), 1);
    }

    async fn backchannel_logout_token_is_delivered_and_verifiable(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(0).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
                c.id_token_signed_response_alg = Some(portcullis::domain::SigningAlgorithm::ES256);
            })
            .await;
        let quiet = app.confidential_client().await; // signed into, but no back-channel URI
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        sign_in_again(&app, &browser, &quiet).await;
        let id_claims = claims_of(tokens["id_token"].as_str().unwrap());
        let resp = browser
            .get(with_params(&app.url("/logout"), &[("id_token_hint", tokens["id_token"].as_str().unwrap())]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let token = rx.wait_token(20).await;
        let (header, claims) = verify_with_jwks(&app, &token).await;
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims["iss"], app.issuer);
        assert_eq!(claims["aud"], client.id.as_str());
        assert_eq!(claims["sub"], id_claims["sub"]);
        assert_eq!(claims["sid"], id_claims["sid"]);
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        assert!(claims["iat"].as_i64().unwrap() <= claims["exp"].as_i64().unwrap());
        assert!(claims.get("nonce").is_none());
        assert_eq!(
            claims["events"],
            serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert_eq!(*rx.hits.lock().unwrap(), 1, "one delivery, only to the listening client");
        wait_queue_empty(&app).await;
    }

    async fn backchannel_delivery_is_retried_after_failure(app: TestApp) {
        // This test's server retries one second after a failure.
        let app = {
            let backend = app.backend;
            drop(app);
            TestApp::start_with(backend, &[("PORTCULLIS_LOGOUT__BACKCHANNEL_RETRY_BASE", "1")]).await
        };
        app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(2).await; // down for the first two attempts
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
            })
            .await;
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        let resp = browser
            .get(with_params(&app.url("/logout"), &[("id_token_hint", tokens["id_token"].as_str().unwrap())]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The person never waits for delivery: the answer comes while the receiver is still
        // failing (the successful third attempt is two back-offs of at least a second away).
        assert!(rx.tokens.lock().unwrap().is_empty(), "logout waited for the delivery");
        assert!(*rx.hits.lock().unwrap() < 3);
        let token = rx.wait_token(30).await;
        assert_eq!(*rx.hits.lock().unwrap(), 3, "delivered on the third attempt");
        let (_, claims) = verify_with_jwks(&app, &token).await;
        assert_eq!(claims["aud"], client.id.as_str());
        wait_queue_empty(&app).await;
        // Failed attempts that end in a delivery are not audited as given up.
        assert!(audit(&app, "backchannel_logout.failed").await.is_empty());
    }

    async fn a_backchannel_delivery_given_up_is_audited_once(app: TestApp) {
        // Retried one second after the first failure; the second attempt is the last.
        let app = {
            let backend = app.backend;
            drop(app);
            TestApp::start_with(backend, &[
                ("PORTCULLIS_LOGOUT__BACKCHANNEL_RETRY_BASE", "1"),
                ("PORTCULLIS_LOGOUT__BACKCHANNEL_MAX_ATTEMPTS", "2"),
            ]).await
        };
        app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(usize::MAX).await; // always answers 500
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
            })
            .await;
        let healthy = receiver(0).await;
        let other = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(healthy.uri.clone());
            })
            .await;
        let browser = browser();
        let tokens = sign_in(&app, &browser, &client, "openid").await;
        sign_in_again(&app, &browser, &other).await;
        let id_claims = claims_of(tokens["id_token"].as_str().unwrap());
        let resp = browser
            .get(with_params(&app.url("/logout"), &[("id_token_hint", tokens["id_token"].as_str().unwrap())]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        // The entry is written after the delivery left the queue: wait for it (bounded).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let entries = audit(&app, "backchannel_logout.failed").await;
            if !entries.is_empty() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no audit entry for the given-up delivery (hits: {})",
                rx.hits.lock().unwrap()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        wait_queue_empty(&app).await;
        assert_eq!(*rx.hits.lock().unwrap(), 2, "tried max_attempts times, then no more");
        assert!(rx.tokens.lock().unwrap().is_empty());
        // Exactly one entry, for the failing client only (the healthy one got its token).
        let entries = audit(&app, "backchannel_logout.failed").await;
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(healthy.tokens.lock().unwrap().len(), 1);
        let e = &entries[0];
        assert_eq!(e.outcome, "failure");
        assert_eq!(e.target.as_deref(), Some(client.id.as_str()));
        assert_eq!(e.client_id.as_deref(), Some(client.id.as_str()));
        let details: Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(details["sid"], id_claims["sid"]);
        assert_eq!(details["sub"], id_claims["sub"]);
        assert_eq!(details["attempts"], 2);
        assert_eq!(details["reason"], "HTTP 500");
        // Nothing else in it, and never the logout token (a JWS starts with "eyJ").
        let mut keys: Vec<&String> = details.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["attempts", "reason", "sid", "sub"]);
        assert!(!e.details.contains("eyJ"), "{}", e.details);
        // Administrators find it through the audit API, by action and by client.
        let robot = app.confidential_client().await;
        let admin: Value = app
            .token_request(&robot, &[("grant_type", "client_credentials"), ("scope", "portcullis:admin")])
            .await
            .json()
            .await
            .unwrap();
        let resp = app
            .http
            .get(app.url(&format!(
                "/admin/api/v1/audit?action=backchannel_logout.failed&client_id={}",
                client.id
            )))
            .bearer_auth(admin["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["id"], e.id.as_str());
        assert!(!body.to_string().contains("eyJ"));
    }

    async fn a_replaced_session_is_logged_out_by_backchannel(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(0).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
            })
            .await;
        let browser = browser();
        let first = sign_in(&app, &browser, &client, "openid").await;
        // prompt=login: a new sign-in in the same browser replaces the session.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let url = with_params(&url, &[("prompt", "login")]);
        let back = app.authorize_with_login(&browser, &url, EMAIL, PASSWORD).await;
        assert!(query_of(&back).contains_key("code"));
        let token = rx.wait_token(20).await;
        let (_, claims) = verify_with_jwks(&app, &token).await;
        assert_eq!(claims["sid"], claims_of(first["id_token"].as_str().unwrap())["sid"]);
    }

    async fn ending_all_sessions_of_a_user_notifies_every_client(app: TestApp) {
        let user = app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(0).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
            })
            .await;
        let (laptop, phone) = (browser(), browser());
        let a = sign_in(&app, &laptop, &client, "openid").await;
        let b = sign_in(&app, &phone, &client, "openid").await;
        let sids: Vec<Value> = [a, b]
            .iter()
            .map(|t| claims_of(t["id_token"].as_str().unwrap())["sid"].clone())
            .collect();
        let ended =
            portcullis::oidc::logout::end_user_sessions(&app.provider, &user.id, portcullis::now())
                .await
                .unwrap();
        assert_eq!(ended.len(), 2);
        wait_queue_empty(&app).await;
        let tokens = rx.tokens.lock().unwrap().clone();
        assert_eq!(tokens.len(), 2);
        for t in &tokens {
            let (_, claims) = verify_with_jwks(&app, t).await;
            assert!(sids.contains(&claims["sid"]));
            assert_eq!(claims["sub"], user.id.as_str());
        }
        for b in [&laptop, &phone] {
            let (url, _, _, _) = app.authorize_url(&client, "openid");
            let resp = b.get(with_params(&url, &[("prompt", "none")])).send().await.unwrap();
            assert_eq!(query_of(&location(&resp))["error"], "login_required");
        }
    }

    async fn admin_disable_notifies_clients_by_backchannel(app: TestApp) {
        let user = app.create_user(EMAIL, PASSWORD).await;
        let rx = receiver(0).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.backchannel_logout_uri = Some(rx.uri.clone());
            })
            .await;
        let tokens = sign_in(&app, &browser(), &client, "openid").await;
        let sid = claims_of(tokens["id_token"].as_str().unwrap())["sid"].clone();
        // An automation client with the admin scope disables the user through the API.
        let robot = app.confidential_client().await;
        let admin: Value = app
            .token_request(&robot, &[("grant_type", "client_credentials"), ("scope", "portcullis:admin")])
            .await
            .json()
            .await
            .unwrap();
        let resp = app
            .http
            .post(app.url(&format!("/admin/api/v1/users/{}/disable", user.id)))
            .bearer_auth(admin["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        wait_queue_empty(&app).await;
        let delivered = rx.tokens.lock().unwrap().clone();
        assert_eq!(delivered.len(), 1, "the client that user signed into is told");
        let (_, claims) = verify_with_jwks(&app, &delivered[0]).await;
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["sub"], user.id.as_str());
    }

    async fn id_token_hint_on_authorize(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        app.create_user("bob@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        let alice = browser();
        let alice_tokens = sign_in(&app, &alice, &client, "openid").await;
        let bob = browser();
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&bob, &url, "bob@example.com", PASSWORD).await;
        let bob_tokens = exchange(&app, &client, &query_of(&back)["code"], &verifier).await;
        let bob_hint = bob_tokens["id_token"].as_str().unwrap();

        // Alice's browser with Bob's hint and prompt=none: never a code for Alice.
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let resp = alice
            .get(with_params(&url, &[("prompt", "none"), ("id_token_hint", bob_hint)]))
            .send()
            .await
            .unwrap();
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "login_required");
        assert_eq!(q["state"], state);
        // Without prompt=none: ask to sign in.
        let resp = alice.get(with_params(&url, &[("id_token_hint", bob_hint)])).send().await.unwrap();
        let to = location(&resp);
        assert!(to.starts_with("/login?rid="), "{to}");
        // Signing in as someone else than the hint named still gives no code.
        let (status, to) = app.submit_login(&alice, &to, EMAIL, PASSWORD).await;
        assert_eq!(status, 303);
        assert_eq!(query_of(&to.unwrap())["error"], "login_required");

        // Her own hint: a code without a prompt.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let own = alice_tokens["id_token"].as_str().unwrap();
        let alice = browser();
        sign_in(&app, &alice, &client, "openid").await;
        let resp = alice
            .get(with_params(&url, &[("prompt", "none"), ("id_token_hint", own)]))
            .send()
            .await
            .unwrap();
        assert!(query_of(&location(&resp)).contains_key("code"));
        // A forged hint is refused.
        let mut parts: Vec<String> = own.split('.').map(str::to_owned).collect();
        parts[2] = URL_SAFE_NO_PAD.encode([0u8; 64]);
        let resp = alice
            .get(with_params(&url, &[("id_token_hint", &parts.join("."))]))
            .send()
            .await
            .unwrap();
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "invalid_request");
        // A hint issued to another client is refused too.
        let other = app.confidential_client().await;
        let (url, _, _, _) = app.authorize_url(&other, "openid");
        let resp = alice.get(with_params(&url, &[("id_token_hint", own)])).send().await.unwrap();
        assert_eq!(query_of(&location(&resp))["error"], "invalid_request");
    }

    async fn login_hint_prefills_the_email(app: TestApp) {
        let client = app.confidential_client().await;
        let browser = browser();
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser
            .get(with_params(&url, &[("login_hint", "carol@example.com")]))
            .send()
            .await
            .unwrap();
        let to = location(&resp);
        let html = browser.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
        assert_eq!(input_value(&html, "email").as_deref(), Some("carol@example.com"));
    }

    async fn form_post_response_mode(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let browser = browser();
        let (url, verifier, state, _) = app.authorize_url(&client, "openid");
        let url = with_params(&url, &[("response_mode", "form_post")]);
        let resp = browser.get(&url).send().await.unwrap();
        let login = location(&resp);
        let page = browser.get(app.url(&login)).send().await.unwrap().text().await.unwrap();
        let csrf = input_value(&page, "csrf").unwrap();
        let rid = input_value(&page, "rid").unwrap();
        let resp = browser
            .post(app.url("/login"))
            .form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", &csrf), ("rid", &rid)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "a page, not a redirect");
        assert!(resp.headers().get("location").is_none());
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.contains("form-action http://127.0.0.1:9"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"));
        let html = resp.text().await.unwrap();
        let doc = scraper::Html::parse_document(&html);
        let form = doc
            .select(&scraper::Selector::parse("form#response").unwrap())
            .next()
            .expect("response form");
        assert_eq!(form.value().attr("method"), Some("post"));
        assert_eq!(form.value().attr("action"), Some(REDIRECT_URI));
        assert_eq!(input_value(&html, "state").as_deref(), Some(state.as_str()));
        assert_eq!(input_value(&html, "iss").as_deref(), Some(app.issuer.as_str()));
        assert!(html.contains("<button type=\"submit\">"), "no-JavaScript button");
        assert!(html.contains("<script src=\"/static/form_post.js\"></script>"));
        let script = browser.get(app.url("/static/form_post.js")).send().await.unwrap();
        assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
        assert!(script.text().await.unwrap().contains("submit()"));
        let code = input_value(&html, "code").expect("code field");
        exchange(&app, &client, &code, &verifier).await;

        // Errors travel the same way: prompt=none after logout gives login_required by form.
        let fresh = crate::helpers::browser();
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let resp = fresh
            .get(with_params(&url, &[("response_mode", "form_post"), ("prompt", "none")]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert_eq!(input_value(&html, "error").as_deref(), Some("login_required"));
        assert_eq!(input_value(&html, "state").as_deref(), Some(state.as_str()));
        // Unknown modes are refused (in the default mode).
        let resp = fresh.get(with_params(&url, &[("response_mode", "fragment")])).send().await.unwrap();
        assert_eq!(query_of(&location(&resp))["error"], "invalid_request");
    }

    async fn form_post_page_submits_itself_in_a_real_browser(app: TestApp) {
        let rp = callback_receiver().await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.redirect_uris = vec![rp.uri.clone()];
            })
            .await;
        // A fresh browser has no session: prompt=none answers login_required, by form_post.
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let url = with_params(&url, &[("response_mode", "form_post"), ("prompt", "none")]);
        let dir = tempfile::tempdir().unwrap();
        let profile = format!("--user-data-dir={}", dir.path().display());
        let dom = tokio::task::spawn_blocking(move || run_chromium(&profile, &url))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let body = loop {
            if let Some(b) = rp.bodies.lock().unwrap().first().cloned() {
                break b;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the form was not submitted; DOM: {dom}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let got: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        assert_eq!(got["error"], "login_required");
        assert_eq!(got["state"], state);
        assert_eq!(got["iss"], app.issuer);
    }

    async fn discovery_advertises_logout_and_form_post(app: TestApp) {
        let doc: Value = app
            .http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["end_session_endpoint"], app.url("/logout"));
        assert_eq!(doc["backchannel_logout_supported"], true);
        assert_eq!(doc["backchannel_logout_session_supported"], true);
        assert_eq!(doc["frontchannel_logout_supported"], false);
        assert!(doc["response_modes_supported"].as_array().unwrap().contains(&"form_post".into()));
    }
}

/// Load `url` in headless Chromium and return the final DOM. Chromium is killed after 60 s (a
/// blocked navigation can keep it waiting), so the test fails instead of hanging.
fn run_chromium(profile: &str, url: &str) -> String {
    use std::io::Read;
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--timeout=15000",
            profile,
            "--dump-dom",
            url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium runs (install it with tests/setup.d/sessions.sh)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().expect("wait for chromium").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return String::from("(chromium killed after 60 s)");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut dom = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut dom);
    }
    dom
}

/// A relying party's redirect URI on 127.0.0.1:0 that records form posts.
struct CallbackReceiver {
    uri: String,
    bodies: Arc<Mutex<Vec<String>>>,
}

async fn callback_receiver() -> CallbackReceiver {
    use axum::extract::State;
    async fn receive(State(bodies): State<Arc<Mutex<Vec<String>>>>, body: String) -> &'static str {
        bodies.lock().unwrap().push(body);
        "received"
    }
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route("/cb", axum::routing::post(receive))
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("callback receiver");
    });
    CallbackReceiver {
        uri: format!("http://{addr}/cb"),
        bodies,
    }
}

/// Sign the same browser into another client (the session now spans two clients).
async fn sign_in_again(app: &TestApp, browser: &reqwest::Client, client: &TestClient) {
    let (url, _, _, _) = app.authorize_url(client, "openid");
    let resp = browser.get(&url).send().await.unwrap();
    assert!(query_of(&location(&resp)).contains_key("code"));
}

async fn wait_queue_empty(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.provider.store.pending_deliveries().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery still queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
