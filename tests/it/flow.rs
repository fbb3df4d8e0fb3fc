//! Issue 2: the OpenID Connect code flow end to end, driven by the `openidconnect` crate as the
//! relying party, and one negative test per rule of the authorization and token endpoints.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse as _,
};
use portcullis::crypto::hash_secret;
use portcullis::domain::{SigningAlgorithm, TokenEndpointAuthMethod};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "alice@example.com";

async fn discover(app: &TestApp) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &browser())
        .await
        .expect("the openidconnect crate accepts our discovery document and JWKS")
}

/// Exchange `code` through the RP library and return (id token, access token).
async fn exchange(
    app: &TestApp,
    client: &TestClient,
    code: String,
    verifier: PkceCodeVerifier,
    nonce: &Nonce,
    algs: Vec<CoreJwsSigningAlgorithm>,
) -> (openidconnect::core::CoreIdTokenClaims, String) {
    let metadata = discover(app).await;
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        client.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
    let http = browser();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange succeeds");
    let id_token = tokens.id_token().expect("an ID token").clone();
    let verifier = rp.id_token_verifier().set_allowed_algs(algs);
    let claims = id_token
        .claims(&verifier, nonce)
        .expect("ID token verifies against the JWKS")
        .clone();
    // at_hash binds the access token to the ID token (OIDC Core §3.1.3.6).
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    let userinfo: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo answers");
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(userinfo.email_verified(), Some(true));
    (claims, tokens.access_token().secret().clone())
}

/// The whole flow as a relying party sees it: discovery → authorization URL (PKCE, nonce) →
/// hosted login form → code → token exchange → ID token verified → userinfo.
async fn rp_flow(app: &TestApp, client: &TestClient, algs: Vec<CoreJwsSigningAlgorithm>) {
    let metadata = discover(app).await;
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.id.clone()),
        client.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = app
        .authorize_with_login(&browser(), url.as_str(), EMAIL, PASSWORD)
        .await;
    assert!(back.starts_with(&client.redirect_uri), "{back}");
    let q = query_of(&back);
    assert_eq!(
        q.get("state"),
        Some(csrf.secret()),
        "state comes back byte for byte"
    );
    assert_eq!(q.get("iss"), Some(&app.issuer), "RFC 9207 iss");
    let (claims, _) = exchange(app, client, q["code"].clone(), verifier, &nonce, algs).await;
    assert_eq!(claims.issuer().as_str(), app.issuer);
    assert_eq!(claims.audiences()[0].as_str(), client.id);
    assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.email().map(|e| e.as_str()), Some(EMAIL));
    assert_eq!(
        claims.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Test Person")
    );
}

/// Follow an authorization request that must be refused on a page (never redirected).
async fn assert_error_page(app: &TestApp, url: &str) {
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers().get("location").is_none(),
        "must not redirect"
    );
    let html = resp.text().await.unwrap();
    assert!(html.contains("<h1>"), "{html}");
    let _ = app;
}

fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    u.to_string()
}

async fn userinfo_status(app: &TestApp, token: &str) -> (u16, String) {
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.status().as_u16(), challenge)
}

backend_tests! {
    async fn relying_party_completes_the_flow_confidential(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        rp_flow(&app, &client, vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]).await;
    }

    async fn relying_party_completes_the_flow_public_with_es256(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::None, |c| {
                c.id_token_signed_response_alg = Some(SigningAlgorithm::ES256);
            })
            .await;
        rp_flow(&app, &client, vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]).await;
    }

    async fn client_secret_post_and_eddsa_id_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretPost, |c| {
                c.id_token_signed_response_alg = Some(SigningAlgorithm::EdDSA);
            })
            .await;
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
        let code = query_of(&back)["code"].clone();
        let resp = app
            .http
            .post(app.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
                ("client_id", client.id.as_str()),
                ("client_secret", client.secret.as_deref().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let id_token = body["id_token"].as_str().unwrap();
        let header = josekit::jwt::decode_header(id_token).unwrap();
        assert_eq!(header.claim("alg").and_then(Value::as_str), Some("EdDSA"));
        // Verifiable with the published key named by kid.
        let claims = app.provider.keys.verify(id_token).expect("verifies").0;
        assert_eq!(claims["aud"], client.id.as_str());
    }

    async fn discovery_is_truthful_and_jwks_public_only(app: TestApp) {
        let resp = app.http.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let d: Value = resp.json().await.unwrap();
        assert_eq!(d["issuer"], app.issuer.as_str());
        for (k, v) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("userinfo_endpoint", "/userinfo"),
            ("jwks_uri", "/jwks.json"),
        ] {
            assert_eq!(d[k], app.url(v).as_str(), "{k}");
        }
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        for s in ["openid", "profile", "email", "phone", "offline_access", "groups"] {
            assert!(d["scopes_supported"].as_array().unwrap().iter().any(|x| x == s), "{s}");
        }
        for m in ["client_secret_basic", "client_secret_post", "none"] {
            assert!(d["token_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|x| x == m));
        }
        assert!(d["id_token_signing_alg_values_supported"].as_array().unwrap().iter().any(|x| x == "RS256"));
        let rfc8414: Value = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(rfc8414["issuer"], d["issuer"]);

        let jwks: Value = app.http.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        let algs: Vec<&str> = keys.iter().filter_map(|k| k["alg"].as_str()).collect();
        for alg in ["RS256", "ES256", "EdDSA"] {
            assert!(algs.contains(&alg), "{alg} published: {algs:?}");
        }
        let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        kids.sort_unstable();
        kids.dedup();
        assert_eq!(kids.len(), keys.len(), "unique kids");
        for k in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(k.get(private).is_none(), "private member {private} published");
            }
            if k["kty"] == "RSA" {
                use base64::Engine;
                let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(k["n"].as_str().unwrap())
                    .unwrap();
                assert!(n.len() * 8 >= 2048, "RSA ≥ 2048 bits");
            }
        }
    }

    async fn unknown_client_or_unregistered_redirect_is_an_error_page(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        assert_error_page(&app, &with_param(&url, "redirect_uri", Some("http://127.0.0.1:9/other"))).await;
        assert_error_page(&app, &with_param(&url, "redirect_uri", Some("http://127.0.0.1:9/callback/extra"))).await;
        assert_error_page(&app, &with_param(&url, "redirect_uri", Some("http://127.0.0.1:9/callback?x=1"))).await;
        assert_error_page(&app, &with_param(&url, "redirect_uri", None)).await;
        assert_error_page(&app, &with_param(&url, "client_id", Some("nope"))).await;
        assert_error_page(&app, &with_param(&url, "client_id", None)).await;
    }

    async fn other_errors_redirect_with_state_and_iss(app: TestApp) {
        let client = app.public_client().await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let cases = [
            (with_param(&url, "code_challenge", None), "invalid_request"),
            (with_param(&with_param(&url, "code_challenge_method", Some("plain")), "code_challenge", Some(&"a".repeat(43))), "invalid_request"),
            // (Types that return a token answer in the fragment: see hardening.rs.)
            (with_param(&url, "response_type", Some("bogus")), "unsupported_response_type"),
            (with_param(&url, "scope", Some("openid bogus")), "invalid_scope"),
            (with_param(&url, "prompt", Some("none login")), "invalid_request"),
        ];
        for (bad, code) in cases {
            let resp = browser().get(&bad).send().await.unwrap();
            assert_eq!(resp.status(), 303, "{bad}");
            let to = location(&resp);
            assert!(to.starts_with(REDIRECT_URI), "{to}");
            let q = query_of(&to);
            assert_eq!(q.get("error").map(String::as_str), Some(code), "{bad}");
            assert_eq!(q.get("state"), Some(&state));
            assert_eq!(q.get("iss"), Some(&app.issuer));
        }
        // Unknown parameters are ignored.
        let resp = browser().get(with_param(&url, "frobnicate", Some("1"))).send().await.unwrap();
        assert!(location(&resp).starts_with("/login"));
    }

    async fn authorize_by_post_form(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let pairs: Vec<(String, String)> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
        let b = browser();
        let resp = b.post(app.url("/authorize")).form(&pairs).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let login = location(&resp);
        assert!(login.starts_with("/login?rid="), "{login}");
        let (_, back) = app.submit_login(&b, &login, EMAIL, PASSWORD).await;
        let q = query_of(&back.unwrap());
        assert!(q.contains_key("code"));
        assert_eq!(q["state"], state);
        // Not a form: refused on a page.
        let resp = b.post(app.url("/authorize")).json(&serde_json::json!({"client_id": client.id})).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.headers().get("location").is_none());
    }

    async fn prompt_none_without_session_is_login_required(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let resp = browser().get(with_param(&url, "prompt", Some("none"))).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "login_required");
        assert_eq!(q["state"], state);
    }

    async fn session_is_reused_and_prompt_login_max_age_force_a_new_login(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let b = browser();
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&b, &url, EMAIL, PASSWORD).await;
        assert!(query_of(&back).contains_key("code"));
        // Same browser: no login page, straight back with a code (also with prompt=none).
        for extra in [None, Some("none")] {
            let (url, _, _, _) = app.authorize_url(&client, "openid");
            let resp = b.get(with_param(&url, "prompt", extra)).send().await.unwrap();
            assert!(query_of(&location(&resp)).contains_key("code"), "{extra:?}");
        }
        // prompt=login and max_age=0 send the person to the login page again.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = b.get(with_param(&url, "prompt", Some("login"))).send().await.unwrap();
        assert!(location(&resp).starts_with("/login"));
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let url = with_param(&url, "max_age", Some("0"));
        let resp = b.get(&url).send().await.unwrap();
        let login = location(&resp);
        assert!(login.starts_with("/login"));
        let (_, back) = app.submit_login(&b, &login, EMAIL, PASSWORD).await;
        let code = query_of(&back.unwrap())["code"].clone();
        let tokens: Value = app
            .token_request(&client, &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .await
            .json()
            .await
            .unwrap();
        let claims = app.provider.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap().0;
        assert!(claims["auth_time"].as_i64().unwrap() >= claims["iat"].as_i64().unwrap() - 5);
    }

    async fn wrong_verifier_missing_verifier_and_wrong_redirect_are_invalid_grant(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (other, _) = pkce_pair();
        for (verifier, redirect) in [
            (Some(other.as_str()), REDIRECT_URI),
            (None, REDIRECT_URI),
            (None, "http://127.0.0.1:9/elsewhere"),
        ] {
            let (url, right, _, _) = app.authorize_url(&client, "openid");
            let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
            let code = query_of(&back)["code"].clone();
            let mut form = vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", redirect)];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            } else if redirect != REDIRECT_URI {
                form.push(("code_verifier", right.as_str()));
            }
            let resp = app.token_request(&client, &form).await;
            assert_eq!(resp.status(), 400);
            assert_eq!(resp.headers()["cache-control"], "no-store");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "invalid_grant");
        }
    }

    async fn code_reuse_is_refused_and_revokes_the_first_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (url, verifier, _, _) = app.authorize_url(&client, "openid email");
        let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
        let code = query_of(&back)["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let first = app.token_request(&client, &form).await;
        assert_eq!(first.status(), 200);
        assert_eq!(first.headers()["cache-control"], "no-store");
        let first: Value = first.json().await.unwrap();
        let access = first["access_token"].as_str().unwrap();
        assert_eq!(userinfo_status(&app, access).await.0, 200);

        let second = app.token_request(&client, &form).await;
        assert_eq!(second.status(), 400);
        assert_eq!(second.json::<Value>().await.unwrap()["error"], "invalid_grant");
        let (status, challenge) = userinfo_status(&app, access).await;
        assert_eq!(status, 401, "tokens from the first use are revoked");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    async fn code_bound_to_its_client(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
        let code = query_of(&back)["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let resp = app.token_request(&other, &form).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
        // The rightful client can still redeem it: another client's attempt does not burn it.
        assert_eq!(app.token_request(&client, &form).await.status(), 200);
    }

    async fn expired_code_is_invalid_grant(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
        let code = query_of(&back)["code"].clone();
        // Age the code in storage instead of waiting for it.
        let stored = app.provider.store.find_code(&hash_secret(&code)).await.unwrap().unwrap();
        assert!(stored.expires_at - stored.created_at <= 60, "codes live at most 60 s by default");
        assert_ne!(stored.code_hash, code, "codes are stored hashed");
        let mut aged = stored.clone();
        aged.code_hash = hash_secret("aged-copy");
        aged.expires_at = portcullis::now() - 1;
        app.provider.store.create_code(&aged).await.unwrap();
        let resp = app
            .token_request(&client, &[
                ("grant_type", "authorization_code"),
                ("code", "aged-copy"),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier.as_str()),
            ])
            .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn client_authentication_failures(app: TestApp) {
        let client = app.confidential_client().await;
        let form = [("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", REDIRECT_URI)];
        // Wrong secret over Basic → 401 with a challenge.
        let resp = app.http.post(app.url("/token")).basic_auth(&client.id, Some("wrong")).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");
        // Unknown client, no credentials, and a confidential client posing as public.
        for creds in [
            vec![("client_id", "nope"), ("client_secret", "x")],
            vec![],
            vec![("client_id", client.id.as_str())],
        ] {
            let mut f = form.to_vec();
            f.extend(creds);
            let resp = app.http.post(app.url("/token")).form(&f).send().await.unwrap();
            assert_eq!(resp.status(), 401);
            assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");
        }
        // Malformed requests get RFC 6749 §5.2 JSON, never a 500.
        let resp = app.http.post(app.url("/token")).basic_auth(&client.id, client.secret.as_ref()).form(&[("grant_type", "password")]).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
        let resp = app.http.post(app.url("/token")).basic_auth(&client.id, client.secret.as_ref()).body("{}").header("content-type", "application/json").send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");
        let resp = app.http.post(app.url("/token")).basic_auth(&client.id, client.secret.as_ref())
            .form(&[("grant_type", "authorization_code"), ("grant_type", "authorization_code")]).send().await.unwrap();
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_request");
    }

    async fn public_client_must_use_pkce_at_the_token_endpoint(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.public_client().await;
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&browser(), &url, EMAIL, PASSWORD).await;
        let code = query_of(&back)["code"].clone();
        let resp = app
            .token_request(&client, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT_URI)])
            .await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }

    async fn tampered_id_token_is_rejected_by_the_relying_party(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let tokens = app.login_and_exchange(&client, EMAIL, "openid").await;
        let id_token = tokens["id_token"].as_str().unwrap();
        let rp = CoreClient::from_provider_metadata(
            discover(&app).await,
            ClientId::new(client.id.clone()),
            client.secret.clone().map(ClientSecret::new),
        );
        let verifier = rp.id_token_verifier().require_issuer_match(true);
        // Unchanged, it verifies (nonce checked separately by the flow tests).
        let ok: CoreIdToken = id_token.parse().unwrap();
        assert!(ok.claims(&verifier, |_: Option<&Nonce>| Ok(())).is_ok());
        // A different subject with the original signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = id_token.split('.').collect();
        let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = "someone-else".into();
        let forged = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
        let forged: CoreIdToken = forged.parse().unwrap();
        assert!(forged.claims(&verifier, |_: Option<&Nonce>| Ok(())).is_err());
        // alg=none with no signature.
        let none = format!("{}.{}.", b64.encode(r#"{"alg":"none"}"#), parts[1]);
        if let Ok(none) = none.parse::<CoreIdToken>() {
            assert!(none.claims(&verifier, |_: Option<&Nonce>| Ok(())).is_err());
        }
    }

    async fn userinfo_refuses_missing_invalid_and_expired_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let resp = app.http.get(app.url("/userinfo")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let (status, challenge) = userinfo_status(&app, "not-a-jwt").await;
        assert_eq!(status, 401);
        assert!(challenge.contains("invalid_token"));
        // An ID token is not an access token.
        let tokens = app.login_and_exchange(&client, EMAIL, "openid email").await;
        let (status, _) = userinfo_status(&app, tokens["id_token"].as_str().unwrap()).await;
        assert_eq!(status, 401);
        // Expired: sign one with our own key but an exp in the past.
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(EMAIL).unwrap()).await.unwrap().unwrap();
        let now = portcullis::now();
        let expired = portcullis::oauth::access_token::mint(
            &app.provider,
            &portcullis::oauth::access_token::Grant {
                sub: &user.id,
                client_id: &client.id,
                scope: "openid email",
                auth_time: None,
                sid: None,
                aud: None,
                ttl: 60,
                user: None,
            },
            portcullis::oauth::access_token::new_jti(),
            now - 3600,
        )
        .unwrap();
        let (status, challenge) = userinfo_status(&app, &expired.token).await;
        assert_eq!(status, 401);
        assert!(challenge.contains("invalid_token"));
        // POST works like GET.
        let resp = app.http.post(app.url("/userinfo")).bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["email"], EMAIL);
        assert_eq!(body["sub"], user.id.as_str());
    }

    async fn access_token_is_an_rfc9068_jwt(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let tokens = app.login_and_exchange(&client, EMAIL, "openid email").await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "openid email");
        assert!(tokens["expires_in"].as_i64().unwrap() > 0);
        let at = tokens["access_token"].as_str().unwrap();
        let header = josekit::jwt::decode_header(at).unwrap();
        assert_eq!(header.claim("typ").and_then(Value::as_str), Some("at+jwt"));
        // A resource server needs only the JWKS: verify with the published key, not our KeySet.
        let jwks: Value = app.http.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
        let kid = header.claim("kid").and_then(Value::as_str).unwrap();
        let jwk = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap();
        let jwk = josekit::jwk::Jwk::from_bytes(jwk.to_string()).unwrap();
        let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
        let (payload, _) = josekit::jwt::decode_with_verifier(at, &verifier).unwrap();
        for claim in ["iss", "sub", "aud", "client_id", "scope", "iat", "exp", "jti"] {
            assert!(payload.claim(claim).is_some(), "{claim}");
        }
        assert_eq!(payload.claim("iss").unwrap(), app.issuer.as_str());
        assert_eq!(payload.claim("client_id").unwrap(), client.id.as_str());
    }

    async fn login_page_rules(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let b = browser();
        let page = b.get(app.url("/login")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"), "{csrf_cookie}");
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"name="email""#) && html.contains(r#"name="password""#));
        assert!(html.contains(r#"<label for="email""#) && html.contains(r#"<label for="password""#));
        let csrf = input_value(&html, "csrf").unwrap();

        // Without a valid CSRF token nothing happens.
        let resp = b.post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", "forged"), ("rid", "")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(resp.headers().get("location").is_none());
        let resp = browser().post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str()), ("rid", "")]).send().await.unwrap();
        assert_eq!(resp.status(), 403, "token without its cookie");

        // Wrong password and unknown account: the same answer.
        let mut bodies = Vec::new();
        for (email, password) in [(EMAIL, "wrong password!"), ("nobody@example.com", PASSWORD)] {
            let resp = b.post(app.url("/login")).form(&[("email", email), ("password", password), ("csrf", csrf.as_str()), ("rid", "")]).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            let html = resp.text().await.unwrap();
            assert!(html.contains("The e-mail address or password is incorrect."));
            bodies.push(html.replace(email, "EMAIL").replace(&input_value(&html, "csrf").unwrap(), "CSRF"));
        }
        assert_eq!(bodies[0], bodies[1], "no difference between unknown user and wrong password");
        // Garbage input is a message, not a 4xx/5xx from the framework.
        let resp = b.post(app.url("/login")).form(&[("email", "\u{0}")]).send().await.unwrap();
        assert_eq!(resp.status(), 400, "a NUL is refused before the CSRF check");
        let resp = b.post(app.url("/login")).form(&[("email", "x")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);

        // Success: a new session cookie, HttpOnly, SameSite=Lax, not Secure on http.
        let resp = b.post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str()), ("rid", "")]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let cookie = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("portcullis_session=")).expect("session cookie");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"), "{cookie}");
        let id = cookie.split(';').next().unwrap().trim_start_matches("portcullis_session=");
        // Stored only hashed.
        assert!(app.provider.store.find_session(id, portcullis::now()).await.unwrap().is_none());
        assert!(app.provider.store.find_session(&hash_secret(id), portcullis::now()).await.unwrap().is_some());
        // Rotated at the next login.
        let html = b.get(app.url("/login?rid=x")).send().await.unwrap().text().await.unwrap();
        let csrf = input_value(&html, "csrf").unwrap();
        let resp = b.post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str()), ("rid", "")]).send().await.unwrap();
        let cookie2 = resp.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).find(|c| c.starts_with("portcullis_session=")).unwrap();
        assert_ne!(cookie, cookie2);
        assert!(app.provider.store.find_session(&hash_secret(id), portcullis::now()).await.unwrap().is_none(), "old session ended");
    }

    async fn health_and_readiness(app: TestApp) {
        let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        app.provider.store.close().await;
        let resp = app.http.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), 503);
    }
}

#[tokio::test]
async fn https_issuer_sets_secure_host_cookies() {
    let app = TestApp::start_with(
        Backend::Sqlite,
        &[("PORTCULLIS_ISSUER", "https://127.0.0.1:1")],
    )
    .await;
    // The issuer is https (behind a TLS proxy); the test talks to the listener directly.
    let addr = app.provider.settings.bind;
    let resp = browser()
        .get(format!("http://{addr}/login"))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-portcullis_csrf=") && cookie.contains("Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn signing_keys_survive_a_restart() {
    let first = TestApp::start(Backend::Sqlite).await;
    let keys_dir = first.provider.settings.keys_dir.clone();
    let jwks1: Value = first
        .http
        .get(first.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let db = first.provider.settings.database_url.expose().to_owned();
    // Same keys folder and database, new process state.
    let second = TestApp::start_with(
        Backend::Sqlite,
        &[
            ("PORTCULLIS_KEYS_DIR", keys_dir.to_str().unwrap()),
            ("PORTCULLIS_DATABASE_URL", db.as_str()),
        ],
    )
    .await;
    let jwks2: Value = second
        .http
        .get(second.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks1, jwks2);
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&keys_dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is private", path.display());
    }
}
