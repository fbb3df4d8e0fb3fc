//! Issue 3 (token lifecycle): refresh rotation and reuse detection, client credentials,
//! revocation (RFC 7009) and introspection (RFC 7662), over real HTTP on both backends.

use base64::Engine;
use portcullis::domain::{GrantType, TokenEndpointAuthMethod};
use portcullis::store::AuditQuery;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "alice@example.com";

/// The claims of a compact JWS, unverified (the server verified it).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWS payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    app.token_request(
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn error_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// POST a form to `path` with HTTP Basic client authentication.
async fn post_basic(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .expect("request")
}

async fn introspect(app: &TestApp, caller: &TestClient, token: &str) -> Value {
    let resp = post_basic(app, "/introspect", caller, &[("token", token)]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.expect("introspection JSON")
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> (u16, String) {
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .unwrap_or_default();
    (status, challenge)
}

fn inactive_only(v: &Value) -> bool {
    v == &serde_json::json!({ "active": false })
}

async fn audit_count(app: &TestApp, action: &str) -> usize {
    app.provider
        .store
        .query_audit(&AuditQuery {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("audit query")
        .len()
}

/// A client allowed client_credentials with registered audiences.
async fn service_client(app: &TestApp, audiences: &[&str]) -> TestClient {
    let audiences: Vec<String> = audiences.iter().map(|a| (*a).to_owned()).collect();
    app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, move |c| {
        c.grant_types = vec![GrantType::ClientCredentials.as_str().into()];
        c.audiences = audiences;
    })
    .await
}

backend_tests! {
    async fn refresh_rotates_and_keeps_sub_and_auth_time(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let first = app.login_and_exchange(&client, EMAIL, "openid email offline_access").await;
        let rt1 = first["refresh_token"].as_str().expect("refresh token issued").to_owned();
        assert!(rt1.len() >= 22, "at least 128 bits");
        let id1 = claims(first["id_token"].as_str().unwrap());

        let resp = refresh(&app, &client, &rt1).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let second: Value = resp.json().await.unwrap();
        let rt2 = second["refresh_token"].as_str().expect("rotated").to_owned();
        assert_ne!(rt1, rt2);
        assert_eq!(second["token_type"], "Bearer");
        assert_eq!(second["scope"], "openid email offline_access");
        let id2 = claims(second["id_token"].as_str().expect("new id token"));
        assert_eq!(id2["sub"], id1["sub"]);
        assert_eq!(id2["auth_time"], id1["auth_time"]);
        assert_eq!(id2["sid"], id1["sid"]);
        // How the person signed in (RFC 8176), stated again in the refreshed ID token.
        assert_eq!(id1["amr"], serde_json::json!(["pwd"]));
        assert_eq!(id2["amr"], id1["amr"]);
        assert!(id2.get("nonce").is_none());
        let at2 = second["access_token"].as_str().unwrap();
        assert_eq!(userinfo_status(&app, at2).await.0, 200);

        // The new token works once more; the old one is now dead.
        let resp = refresh(&app, &client, &rt2).await;
        assert_eq!(resp.status(), 200);
    }

    async fn reuse_of_rotated_token_revokes_the_family(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let first = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
        let at1 = first["access_token"].as_str().unwrap().to_owned();
        let second: Value = refresh(&app, &client, &rt1).await.json().await.unwrap();
        let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
        let at2 = second["access_token"].as_str().unwrap().to_owned();
        assert_eq!(audit_count(&app, "refresh.reuse").await, 0);

        // Replay of the rotated token: refused, and the whole family dies.
        assert_eq!(error_of(refresh(&app, &client, &rt1).await).await, (400, "invalid_grant".into()));
        assert_eq!(error_of(refresh(&app, &client, &rt2).await).await, (400, "invalid_grant".into()));
        // Access tokens issued from the family are on the deny-list.
        for at in [&at1, &at2] {
            let (status, challenge) = userinfo_status(&app, at).await;
            assert_eq!(status, 401);
            assert!(challenge.contains("invalid_token"), "{challenge}");
            assert!(inactive_only(&introspect(&app, &client, at).await));
        }
        assert!(inactive_only(&introspect(&app, &client, &rt2).await));
        let events = app.provider.store.query_audit(&AuditQuery {
            action: Some("refresh.reuse".into()),
            limit: 10,
            ..Default::default()
        }).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].outcome, "failure");
        assert_eq!(events[0].client_id.as_deref(), Some(client.id.as_str()));
    }

    async fn concurrent_refresh_exactly_one_wins(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let first = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let http = browser();
            let url = app.url("/token");
            let (id, secret, rt) = (client.id.clone(), client.secret.clone(), rt.clone());
            tasks.push(tokio::spawn(async move {
                http.post(url)
                    .basic_auth(id, secret)
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str())])
                    .send()
                    .await
                    .expect("refresh")
            }));
        }
        let mut ok = 0;
        for t in tasks {
            let resp = t.await.unwrap();
            match resp.status().as_u16() {
                200 => ok += 1,
                400 => assert_eq!(error_of(resp).await.1, "invalid_grant"),
                other => panic!("unexpected status {other}"),
            }
        }
        assert_eq!(ok, 1, "exactly one concurrent refresh wins");
    }

    async fn refresh_only_with_offline_access_and_the_grant(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let tokens = app.login_and_exchange(&client, EMAIL, "openid email").await;
        assert!(tokens.get("refresh_token").is_none(), "no offline_access, no refresh token");

        let no_grant = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.grant_types = vec![GrantType::AuthorizationCode.as_str().into()];
        }).await;
        let tokens = app.login_and_exchange(&no_grant, EMAIL, "openid offline_access").await;
        assert!(tokens.get("refresh_token").is_none(), "client not allowed refresh_token");
        assert_eq!(
            error_of(refresh(&app, &no_grant, "whatever").await).await,
            (400, "unauthorized_client".into())
        );
    }

    async fn refresh_is_bound_to_client_and_scope(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let first = app.login_and_exchange(&client, EMAIL, "openid email offline_access").await;
        let rt = first["refresh_token"].as_str().unwrap().to_owned();

        // Another client: refused, and the token is not burnt.
        assert_eq!(error_of(refresh(&app, &other, &rt).await).await, (400, "invalid_grant".into()));
        // Wider scope: refused without rotating.
        let resp = app.token_request(&client, &[
            ("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid email phone"),
        ]).await;
        assert_eq!(error_of(resp).await, (400, "invalid_scope".into()));
        // Narrower scope: allowed; the access token carries the narrower scope.
        let resp = app.token_request(&client, &[
            ("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid"),
        ]).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["scope"], "openid");
        assert_eq!(claims(body["access_token"].as_str().unwrap())["scope"], "openid");
        // The rotated token keeps the original grant: email is still available.
        let rt2 = body["refresh_token"].as_str().unwrap();
        let body: Value = refresh(&app, &client, rt2).await.json().await.unwrap();
        assert_eq!(body["scope"], "openid email offline_access");
        // Unknown and empty tokens.
        assert_eq!(error_of(refresh(&app, &client, "nope").await).await, (400, "invalid_grant".into()));
        assert_eq!(error_of(refresh(&app, &client, "").await).await, (400, "invalid_request".into()));
    }

    async fn refresh_idle_and_absolute_lifetimes(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        // A zero lifetime is already over at issue: deterministic, no waiting.
        let idle = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.refresh_token_idle_ttl = Some(0);
        }).await;
        let absolute = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.refresh_token_absolute_ttl = Some(0);
        }).await;
        for client in [&idle, &absolute] {
            let t = app.login_and_exchange(client, EMAIL, "openid offline_access").await;
            let rt = t["refresh_token"].as_str().unwrap();
            assert_eq!(error_of(refresh(&app, client, rt).await).await, (400, "invalid_grant".into()));
            assert!(inactive_only(&introspect(&app, client, rt).await));
        }
        // Expired (not rotated) is not reuse.
        assert_eq!(audit_count(&app, "refresh.reuse").await, 0);
    }

    async fn refresh_dies_with_the_users_sessions(app: TestApp) {
        let user = app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let t = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let rt = t["refresh_token"].as_str().unwrap();
        let at = t["access_token"].as_str().unwrap();
        // What logout-everywhere, password change, disable and delete call.
        let ended = app.provider.store.end_user_sessions(&user.id, portcullis::now()).await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(error_of(refresh(&app, &client, rt).await).await, (400, "invalid_grant".into()));
        assert_eq!(userinfo_status(&app, at).await.0, 401);
        // Not reuse: no family alarm.
        assert_eq!(audit_count(&app, "refresh.reuse").await, 0);
    }

    async fn code_replay_revokes_refresh_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let b = browser();
        let (url, verifier, _, _) = app.authorize_url(&client, "openid offline_access");
        let back = app.authorize_with_login(&b, &url, EMAIL, PASSWORD).await;
        let code = query_of(&back).remove("code").unwrap();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", client.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        let first: Value = app.token_request(&client, &form).await.json().await.unwrap();
        let rt = first["refresh_token"].as_str().unwrap().to_owned();
        // Rotate once, so the family has a second member and a second access token.
        let second: Value = refresh(&app, &client, &rt).await.json().await.unwrap();
        let rt2 = second["refresh_token"].as_str().unwrap();
        let at2 = second["access_token"].as_str().unwrap();
        assert_eq!(error_of(app.token_request(&client, &form).await).await, (400, "invalid_grant".into()));
        assert_eq!(error_of(refresh(&app, &client, rt2).await).await, (400, "invalid_grant".into()));
        assert_eq!(userinfo_status(&app, at2).await.0, 401);
        assert_eq!(audit_count(&app, "code.replay").await, 1);
    }

    async fn client_credentials_issues_client_tokens(app: TestApp) {
        let svc = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.grant_types = vec![GrantType::ClientCredentials.as_str().into()];
            c.scopes = vec!["profile".into(), "email".into(), "openid".into()];
            c.audiences = vec!["https://api.example.com".into()];
        }).await;
        let resp = app.token_request(&svc, &[("grant_type", "client_credentials"), ("scope", "email")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let body: Value = resp.json().await.unwrap();
        assert!(body.get("refresh_token").is_none());
        assert!(body.get("id_token").is_none());
        assert_eq!(body["scope"], "email");
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], svc.id.as_str());
        assert_eq!(c["client_id"], svc.id.as_str());
        assert_eq!(c["aud"], app.issuer.as_str());
        assert_eq!(c["scope"], "email");

        // RFC 8707 resource, and the `audience` alias.
        for param in ["resource", "audience"] {
            let resp = app.token_request(&svc, &[
                ("grant_type", "client_credentials"), (param, "https://api.example.com"),
            ]).await;
            assert_eq!(resp.status(), 200, "{param}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], "https://api.example.com");
            // A token for another resource does not open userinfo.
            assert_eq!(userinfo_status(&app, body["access_token"].as_str().unwrap()).await.0, 401);
        }
        let resp = app.token_request(&svc, &[
            ("grant_type", "client_credentials"), ("resource", "https://evil.example.com"),
        ]).await;
        assert_eq!(error_of(resp).await, (400, "invalid_target".into()));
        let resp = app.token_request(&svc, &[
            ("grant_type", "client_credentials"), ("resource", "https://api.example.com"),
            ("audience", "https://other.example.com"),
        ]).await;
        assert_eq!(error_of(resp).await, (400, "invalid_request".into()));

        // Person-only scopes and scopes outside the client's list.
        for scope in ["openid", "offline_access", "phone", "email nonsense"] {
            let resp = app.token_request(&svc, &[("grant_type", "client_credentials"), ("scope", scope)]).await;
            assert_eq!(error_of(resp).await, (400, "invalid_scope".into()), "{scope}");
        }
    }

    async fn client_credentials_needs_a_confidential_client_allowed_it(app: TestApp) {
        let public = app.public_client().await;
        let resp = app.token_request(&public, &[("grant_type", "client_credentials")]).await;
        assert_eq!(error_of(resp).await, (400, "unauthorized_client".into()));
        let code_only = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.grant_types = vec![GrantType::AuthorizationCode.as_str().into()];
        }).await;
        let resp = app.token_request(&code_only, &[("grant_type", "client_credentials")]).await;
        assert_eq!(error_of(resp).await, (400, "unauthorized_client".into()));
        let wrong = TestClient { secret: Some("wrong".into()), ..code_only };
        let resp = app.token_request(&wrong, &[("grant_type", "client_credentials")]).await;
        assert!(resp.headers().get("www-authenticate").is_some());
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
    }

    async fn revoking_an_access_token(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let t = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let at = t["access_token"].as_str().unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        assert_eq!(userinfo_status(&app, at).await.0, 200);

        // Another client may not revoke it (RFC 7009 §2.1); the token stays valid.
        let resp = post_basic(&app, "/revoke", &other, &[("token", at)]).await;
        assert_eq!(error_of(resp).await, (400, "unauthorized_client".into()));
        assert_eq!(userinfo_status(&app, at).await.0, 200);
        assert_eq!(introspect(&app, &client, at).await["active"], true);

        let resp = post_basic(&app, "/revoke", &client, &[("token", at), ("token_type_hint", "access_token")]).await;
        assert_eq!(resp.status(), 200);
        let (status, challenge) = userinfo_status(&app, at).await;
        assert_eq!(status, 401);
        assert!(challenge.contains("invalid_token"));
        assert!(inactive_only(&introspect(&app, &client, at).await));
        // Revoking the access token leaves the refresh token alone.
        assert_eq!(refresh(&app, &client, rt).await.status(), 200);
        assert_eq!(audit_count(&app, "token.revoke").await, 1);
    }

    async fn revoking_a_refresh_token_revokes_its_family(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let other = app.confidential_client().await;
        let t = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let rt1 = t["refresh_token"].as_str().unwrap();
        let second: Value = refresh(&app, &client, rt1).await.json().await.unwrap();
        let rt2 = second["refresh_token"].as_str().unwrap();
        let at2 = second["access_token"].as_str().unwrap();

        // Other client: refused, untouched.
        let resp = post_basic(&app, "/revoke", &other, &[("token", rt2)]).await;
        assert_eq!(error_of(resp).await, (400, "unauthorized_client".into()));
        assert_eq!(introspect(&app, &client, rt2).await["active"], true);

        // The hint is optional, and a wrong hint does not matter.
        let resp = post_basic(&app, "/revoke", &client, &[("token", rt2), ("token_type_hint", "access_token")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(error_of(refresh(&app, &client, rt2).await).await, (400, "invalid_grant".into()));
        assert!(inactive_only(&introspect(&app, &client, rt2).await));
        assert_eq!(userinfo_status(&app, at2).await.0, 401);
        // A revoked token is not "reuse".
        assert_eq!(audit_count(&app, "refresh.reuse").await, 0);
    }

    async fn revocation_answers_and_refusals(app: TestApp) {
        let client = app.confidential_client().await;
        // Unknown and malformed tokens: 200 (RFC 7009 §2.2).
        for token in ["unknown", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            assert_eq!(post_basic(&app, "/revoke", &client, &[("token", token)]).await.status(), 200);
        }
        // Missing token.
        let resp = post_basic(&app, "/revoke", &client, &[("token_type_hint", "refresh_token")]).await;
        assert_eq!(error_of(resp).await, (400, "invalid_request".into()));
        // No client authentication.
        let resp = app.http.post(app.url("/revoke")).form(&[("token", "x")]).send().await.unwrap();
        assert!(resp.headers().get("www-authenticate").is_some());
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
        // Public clients revoke with their client_id (RFC 7009 §2.1).
        let public = app.public_client().await;
        let resp = app.http.post(app.url("/revoke"))
            .form(&[("token", "x"), ("client_id", public.id.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn introspection_requires_client_authentication(app: TestApp) {
        let client = app.confidential_client().await;
        let resp = app.http.post(app.url("/introspect")).form(&[("token", "x")]).send().await.unwrap();
        assert!(resp.headers().get("www-authenticate").is_some());
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
        let wrong = TestClient { secret: Some("wrong".into()), ..client.clone() };
        let resp = post_basic(&app, "/introspect", &wrong, &[("token", "x")]).await;
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
        // Public clients cannot introspect.
        let public = app.public_client().await;
        let resp = app.http.post(app.url("/introspect"))
            .form(&[("token", "x"), ("client_id", public.id.as_str())]).send().await.unwrap();
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
        // Missing token parameter.
        let resp = post_basic(&app, "/introspect", &client, &[]).await;
        assert_eq!(error_of(resp).await, (400, "invalid_request".into()));
    }

    async fn introspection_refuses_a_disabled_accounts_tokens_by_the_account_alone(app: TestApp) {
        // The account row alone (its sessions not ended, nothing on the deny-list) decides.
        let user = app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let t = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
        let at = t["access_token"].as_str().unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        assert_eq!(introspect(&app, &client, at).await["username"], EMAIL);
        assert_eq!(introspect(&app, &client, rt).await["username"], EMAIL);
        let now = portcullis::now();
        assert!(app.provider.store.set_user_disabled(&user.id, Some(now), now).await.unwrap());
        assert_eq!(introspect(&app, &client, at).await, serde_json::json!({"active": false}));
        assert_eq!(introspect(&app, &client, rt).await, serde_json::json!({"active": false}));
        assert!(app.provider.store.set_user_disabled(&user.id, None, now).await.unwrap());
        assert_eq!(introspect(&app, &client, at).await["active"], true);
    }

    async fn introspection_of_active_and_inactive_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let t = app.login_and_exchange(&client, EMAIL, "openid email offline_access").await;
        let at = t["access_token"].as_str().unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        let c = claims(at);

        let v = introspect(&app, &client, at).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["scope"], "openid email offline_access");
        assert_eq!(v["client_id"], client.id.as_str());
        assert_eq!(v["sub"], c["sub"]);
        assert_eq!(v["username"], EMAIL);
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["exp"], c["exp"]);
        assert_eq!(v["iat"], c["iat"]);
        assert_eq!(v["iss"], app.issuer.as_str());
        assert_eq!(v["aud"], app.issuer.as_str());
        assert_eq!(v["jti"], c["jti"]);

        let v = introspect(&app, &client, rt).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["token_type"], "refresh_token");
        assert_eq!(v["client_id"], client.id.as_str());
        assert_eq!(v["username"], EMAIL);

        // Foreign: another client sees nothing, for either kind.
        let stranger = app.confidential_client().await;
        assert!(inactive_only(&introspect(&app, &stranger, at).await));
        assert!(inactive_only(&introspect(&app, &stranger, rt).await));

        // Malformed, forged and tampered tokens.
        let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"admin","client_id":"x"}"#);
        for bad in ["", "garbage", "a.b.c", &parts.join(".")] {
            if bad.is_empty() { continue; }
            assert!(inactive_only(&introspect(&app, &client, bad).await), "{bad}");
        }
    }

    async fn resource_server_introspects_tokens_for_its_audience(app: TestApp) {
        const API: &str = "https://api.example.com";
        let caller = service_client(&app, &[API]).await;
        // The resource server: a confidential client with its resource identifier registered.
        let rs = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.grant_types = vec![];
            c.audiences = vec![API.into()];
        }).await;
        let unrelated = service_client(&app, &["https://other.example.com"]).await;
        let body: Value = app.token_request(&caller, &[
            ("grant_type", "client_credentials"), ("resource", API),
        ]).await.json().await.unwrap();
        let at = body["access_token"].as_str().unwrap();
        let v = introspect(&app, &rs, at).await;
        assert_eq!(v["active"], true);
        assert_eq!(v["aud"], API);
        assert_eq!(v["sub"], caller.id.as_str());
        assert!(v.get("username").is_none(), "client tokens have no username");
        assert!(inactive_only(&introspect(&app, &unrelated, at).await));
    }

    async fn expired_access_token_is_inactive(app: TestApp) {
        // The shortest allowed lifetime is 30 s; a stored client may say 0 (already expired).
        let svc = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.grant_types = vec![GrantType::ClientCredentials.as_str().into()];
            c.access_token_ttl = Some(0);
        }).await;
        let body: Value = app.token_request(&svc, &[("grant_type", "client_credentials")]).await.json().await.unwrap();
        let at = body["access_token"].as_str().unwrap();
        assert!(inactive_only(&introspect(&app, &svc, at).await));
    }

    async fn discovery_advertises_token_lifecycle(app: TestApp) {
        let d: Value = app.http.get(app.url("/.well-known/openid-configuration"))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(d["revocation_endpoint"], app.url("/revoke"));
        assert_eq!(d["introspection_endpoint"], app.url("/introspect"));
        let grants = d["grant_types_supported"].as_array().unwrap();
        for g in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(grants.iter().any(|v| v == g), "{g}");
        }
        assert!(d["introspection_endpoint_auth_methods_supported"].as_array().unwrap()
            .iter().all(|m| m != "none"));
    }
}

/// Run the real `portcullis` binary against this test's database and keys (folder and
/// key-encryption key).
pub(crate) fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let settings = &app.provider.settings;
    std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", settings.database_url.expose())
        .env("PORTCULLIS_KEYS_DIR", &settings.keys_dir)
        .env(
            "PORTCULLIS_KEYS_ENCRYPTION_KEY",
            settings.keys_encryption_key.expose(),
        )
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .output()
        .expect("run portcullis")
}

fn stderr_line(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    err
}

/// The `kid` in a JWS header.
pub(crate) fn kid_of(jwt: &str) -> String {
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kid"].as_str().unwrap().to_owned()
}

/// What a resource server does: verify with a key from the published JWKS.
pub(crate) fn verifies_with_jwks(jwks: &[u8], jwt: &str) -> bool {
    let set = josekit::jwk::JwkSet::from_bytes(jwks).expect("JWKS");
    let kid = kid_of(jwt);
    let Some(jwk) = set.get(&kid).first().copied() else {
        return false;
    };
    let verifier = josekit::jws::ES256
        .verifier_from_jwk(jwk)
        .expect("ES256 key");
    josekit::jwt::decode_with_verifier(jwt, &verifier).is_ok()
}

async fn jwks(app: &TestApp) -> Vec<u8> {
    let resp = app.http.get(app.url("/jwks.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cc = resp.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.contains("max-age=300"), "{cc}");
    resp.bytes().await.unwrap().to_vec()
}

async fn cc_token(app: &TestApp, client: &TestClient) -> String {
    let body: Value = app
        .token_request(client, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

backend_tests! {
    async fn keys_rotate_keeps_old_tokens_valid_until_prune(app: TestApp) {
        let svc = service_client(&app, &[]).await;
        let old_token = cc_token(&app, &svc).await;
        let old_kid = kid_of(&old_token);

        // `--now`: no pre-publication delay (an emergency rotation).
        let out = cli(&app, &["keys", "rotate", "--alg", "ES256", "--now"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // What the key watcher does (within 30 s from files, at once on SIGHUP; every second
        // from the database, so it may have done it already).
        app.keyring.reload().await.unwrap();

        let new_token = cc_token(&app, &svc).await;
        let new_kid = kid_of(&new_token);
        assert_ne!(new_kid, old_kid, "the new key signs");
        let published = jwks(&app).await;
        assert!(verifies_with_jwks(&published, &old_token), "old token verifies via the new JWKS");
        assert!(verifies_with_jwks(&published, &new_token));
        assert_eq!(introspect(&app, &svc, &old_token).await["active"], true);

        // Prune now: the old key's tokens may still be alive, so it stays.
        let out = cli(&app, &["keys", "prune"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!app.keyring.reload().await.unwrap(), "nothing removed");
        assert!(verifies_with_jwks(&jwks(&app).await, &old_token));

        let out = cli(&app, &["keys", "list", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let old = list.as_array().unwrap().iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
        let retired = old["retired"].as_i64().expect("old key is retired");

        // Once its tokens have expired (retention past the retirement), prune removes it.
        let clients = app.provider.store.list_clients().await.unwrap();
        let retention = portcullis::oauth::key_retention(&app.provider.settings, &clients);
        assert!(app.keyring.prune(retention, retired + retention).await.unwrap().is_empty());
        let removed = app.keyring.prune(retention, retired + retention + 1).await.unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].kid, old_kid);
        app.keyring.reload().await.unwrap();
        let published = jwks(&app).await;
        assert!(!verifies_with_jwks(&published, &old_token), "old kid is gone");
        assert!(verifies_with_jwks(&published, &new_token));
        assert!(inactive_only(&introspect(&app, &svc, &old_token).await));
    }

    async fn keys_rotate_publishes_the_new_key_before_it_signs(app: TestApp) {
        let svc = service_client(&app, &[]).await;
        let old_token = cc_token(&app, &svc).await;
        let old_kid = kid_of(&old_token);

        let out = cli(&app, &["keys", "rotate", "--alg", "ES256"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        app.keyring.reload().await.unwrap();
        let out = cli(&app, &["keys", "list", "--json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        let es256: Vec<&Value> = list.as_array().unwrap().iter().filter(|k| k["alg"] == "ES256").collect();
        let new = es256.iter().find(|k| k["kid"] != old_kid.as_str()).expect("the new key is listed");
        let new_kid = new["kid"].as_str().unwrap().to_owned();
        let delay = app.provider.settings.keys_prepublish_seconds;
        assert!(delay >= app.provider.settings.jwks_max_age, "at least the JWKS max-age");
        assert_eq!(new["status"], "pending");
        assert_eq!(new["activates"].as_i64().unwrap(), new["created"].as_i64().unwrap() + delay);
        let old = es256.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
        assert_eq!(old["status"], "active");
        assert_eq!(old["retired"], new["activates"], "retires when the new key activates");

        // Published at once, but the old key goes on signing: a relying party that cached the
        // JWKS before the rotation still knows every kid it meets.
        let published = jwks(&app).await;
        let set = josekit::jwk::JwkSet::from_bytes(&published).unwrap();
        assert_eq!(set.get(&new_kid).len(), 1, "the pending key is in the JWKS");
        let still_old = cc_token(&app, &svc).await;
        assert_eq!(kid_of(&still_old), old_kid, "not signing before its time");
        app.provider.clock.advance(delay - 60);
        assert_eq!(kid_of(&cc_token(&app, &svc).await), old_kid, "nor shortly before it");

        // Its time comes: the running server switches without a reload or a restart.
        app.provider.clock.advance(61);
        let new_token = cc_token(&app, &svc).await;
        assert_eq!(kid_of(&new_token), new_kid);
        let published = jwks(&app).await;
        assert!(verifies_with_jwks(&published, &new_token));
        assert!(verifies_with_jwks(&published, &old_token), "old tokens still verify");
        assert_eq!(introspect(&app, &svc, &old_token).await["active"], true);
        assert_eq!(introspect(&app, &svc, &new_token).await["active"], true);
    }

    async fn keys_cli_refuses_bad_input(app: TestApp) {
        let out = cli(&app, &["keys", "rotate", "--alg", "none"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr_line(&out).contains("unsupported algorithm"));
    }

    async fn cli_client_create_and_update_token_settings(app: TestApp) {
        let out = cli(&app, &[
            "client", "create", "--name", "Billing", "--json",
            "--grant-type", "client_credentials", "--scope", "email",
            "--audience", "https://api.example.com", "--access-token-ttl", "120",
            "--id-token-alg", "ES256", "--auth-method", "client_secret_post",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        let c = app.provider.store.find_client(&id).await.unwrap().unwrap();
        assert_eq!(c.grant_types, vec!["client_credentials"]);
        assert_eq!(c.audiences, vec!["https://api.example.com"]);
        assert_eq!(c.access_token_ttl, Some(120));
        assert_eq!(c.token_endpoint_auth_method.as_str(), "client_secret_post");

        // The stored settings are what the token endpoint uses.
        let resp = app.http.post(app.url("/token")).form(&[
            ("grant_type", "client_credentials"), ("client_id", id.as_str()),
            ("client_secret", secret.as_str()), ("resource", "https://api.example.com"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["expires_in"], 120);

        let out = cli(&app, &[
            "client", "update", &id, "--json",
            "--grant-type", "authorization_code", "--grant-type", "refresh_token",
            "--redirect-uri", "https://billing.example.com/cb",
            "--refresh-token-idle-ttl", "3600", "--refresh-token-absolute-ttl", "86400",
            "--post-logout-redirect-uri", "https://billing.example.com/bye",
            "--backchannel-logout-uri", "https://billing.example.com/bc",
            "--require-consent", "--access-token-ttl", "0", "--audience", "",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let c = app.provider.store.find_client(&id).await.unwrap().unwrap();
        assert_eq!(c.grant_types, vec!["authorization_code", "refresh_token"]);
        assert_eq!(c.redirect_uris, vec!["https://billing.example.com/cb"]);
        assert_eq!(c.refresh_token_idle_ttl, Some(3600));
        assert_eq!(c.refresh_token_absolute_ttl, Some(86400));
        assert_eq!(c.post_logout_redirect_uris, vec!["https://billing.example.com/bye"]);
        assert_eq!(c.backchannel_logout_uri.as_deref(), Some("https://billing.example.com/bc"));
        assert!(c.require_consent);
        assert_eq!(c.access_token_ttl, None, "0 resets to the server default");
        assert!(c.audiences.is_empty());
        assert_eq!(c.id_token_signed_response_alg.map(|a| a.as_str()), Some("ES256"), "kept");
        assert_eq!(c.secret_hash.as_deref(), Some(portcullis::crypto::hash_secret(&secret).as_str()));

        // Bad input: one line, exit 2, nothing written.
        let before = app.provider.store.find_client(&id).await.unwrap().unwrap();
        for bad in [
            vec!["--access-token-ttl", "5"],
            vec!["--grant-type", "password"],
            vec!["--scope", "admin"],
            vec!["--id-token-alg", "HS256"],
            vec!["--redirect-uri", "http://evil.example.com/cb"],
            vec!["--audience", "not a uri"],
            vec!["--backchannel-logout-uri", "ftp://x.example.com/"],
            vec!["--refresh-token-idle-ttl", "90000"],
            vec!["--auth-method", "none", "--grant-type", "client_credentials"],
        ] {
            let mut args = vec!["client", "update", id.as_str()];
            args.extend(bad.iter().copied());
            let out = cli(&app, &args);
            assert_eq!(out.status.code(), Some(2), "{bad:?}");
            stderr_line(&out);
        }
        assert_eq!(app.provider.store.find_client(&id).await.unwrap().unwrap(), before);
        // Malformed values are refused by the argument parser the same way.
        for bad in [["--access-token-ttl", "soon"], ["--require-consent", "maybe"]] {
            let mut args = vec!["client", "update", id.as_str()];
            args.extend(bad);
            let out = cli(&app, &args);
            assert_eq!(out.status.code(), Some(2), "{bad:?}");
            stderr_line(&out);
        }
        let out = cli(&app, &["client", "update", "no-such-client", "--require-consent", "false"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr_line(&out).contains("no client"));
        let out = cli(&app, &["client", "create", "--name", "X", "--public", "--grant-type", "client_credentials"]);
        assert_eq!(out.status.code(), Some(2));
        stderr_line(&out);
        assert_eq!(app.provider.store.list_clients().await.unwrap().len(), 1);
    }
}

backend_tests! {
    async fn refresh_dies_when_its_session_is_ended(app: TestApp) {
        use portcullis::store::{NewSession, RefreshToken};
        let user = app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let now = portcullis::now();
        let store = &app.provider.store;
        for (id_hash, sid) in [("session-a", "sid-a"), ("session-b", "sid-b")] {
            store.create_session(&NewSession {
                id_hash: id_hash.into(), sid: sid.into(), user_id: user.id.clone(),
                auth_time: now, expires_at: now + 3600, amr: vec![], ip: None, user_agent: None,
            }, now).await.unwrap();
        }
        // A refresh token per session, as the code exchange would store them.
        let mut tokens = Vec::new();
        for (family, sid) in [("family-a", "sid-a"), ("family-b", "sid-b")] {
            let token = portcullis::crypto::random_secret(32);
            store.create_refresh_token(&RefreshToken {
                token_hash: portcullis::crypto::hash_secret(&token), family_id: family.into(),
                client_id: client.id.clone(), user_id: user.id.clone(), sid: Some(sid.into()),
                scope: "openid offline_access".into(), auth_time: now, created_at: now,
                expires_at: now + 3600, family_expires_at: now + 7200, used_at: None,
                revoked_at: None, access_jti: None, access_exp: None, amr: String::new(),
            }).await.unwrap();
            tokens.push(token);
        }
        // Logout of session A: a plain `UPDATE sessions SET ended_at`, so the refresh tokens die
        // through the trigger of migration 0002, whichever code ends the session.
        store.end_session("session-a", now).await.unwrap();
        assert_eq!(error_of(refresh(&app, &client, &tokens[0]).await).await, (400, "invalid_grant".into()));
        // The other session's token lives on and rotates.
        let resp = refresh(&app, &client, &tokens[1]).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let c = claims(body["id_token"].as_str().unwrap());
        assert_eq!(c["sid"], "sid-b");
        assert_eq!(c["auth_time"], now);
        assert_eq!(audit_count(&app, "refresh.reuse").await, 0);

        // The outcome of a rotation racing a logout (on PostgreSQL the logout's trigger cannot see
        // a token inserted by a transaction it does not wait for): a live token of an ended
        // session. The rotation itself checks the session, so the token still cannot be used.
        let rotated = body["refresh_token"].as_str().unwrap().to_owned();
        store.end_session("session-b", now).await.unwrap();
        crate::accounts::exec_sql(&app, "UPDATE refresh_tokens SET revoked_at = NULL").await;
        assert_eq!(error_of(refresh(&app, &client, &rotated).await).await, (400, "invalid_grant".into()));
        // A session purged after it expired (not ended) does not stop offline access.
        let token = portcullis::crypto::random_secret(32);
        store.create_refresh_token(&RefreshToken {
            token_hash: portcullis::crypto::hash_secret(&token), family_id: "family-c".into(),
            client_id: client.id.clone(), user_id: user.id.clone(), sid: Some("sid-gone".into()),
            scope: "openid offline_access".into(), auth_time: now, created_at: now,
            expires_at: now + 3600, family_expires_at: now + 7200, used_at: None,
            revoked_at: None, access_jti: None, access_exp: None, amr: String::new(),
        }).await.unwrap();
        assert_eq!(refresh(&app, &client, &token).await.status(), 200);
    }
}

backend_tests! {
    async fn disabled_client_stops_within_the_cache_ttl(app: TestApp) {
        let svc = service_client(&app, &[]).await;
        let token = cc_token(&app, &svc).await;
        assert_eq!(introspect(&app, &svc, &token).await["active"], true);
        let mut stored = app.provider.store.find_client(&svc.id).await.unwrap().unwrap();
        stored.disabled_at = Some(portcullis::now());
        assert!(app.provider.store.update_client(&stored).await.unwrap());
        // The cached record is reused for at most CLIENT_CACHE_TTL; past it, the change holds.
        tokio::time::sleep(
            portcullis::oauth::client_auth::CLIENT_CACHE_TTL + std::time::Duration::from_millis(50),
        )
        .await;
        let resp = app.token_request(&svc, &[("grant_type", "client_credentials")]).await;
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
        let resp = post_basic(&app, "/introspect", &svc, &[("token", token.as_str())]).await;
        assert_eq!(error_of(resp).await, (401, "invalid_client".into()));
    }
}

/// A `portcullis serve` process on this test's database and keys, killed on drop.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

backend_tests! {
    async fn running_server_picks_up_a_rotation_on_sighup(app: TestApp) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let settings = &app.provider.settings;
        let server = ServerProcess(
            std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
                .arg("serve")
                .env("PORTCULLIS_DATABASE_URL", settings.database_url.expose())
                .env("PORTCULLIS_KEYS_DIR", &settings.keys_dir)
                .env("PORTCULLIS_KEYS_ENCRYPTION_KEY", settings.keys_encryption_key.expose())
                .env("PORTCULLIS_ISSUER", &base)
                .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
                .env("PORTCULLIS_LOG_LEVEL", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start portcullis serve"),
        );
        let http = browser();
        let fetch_kids = || async {
            let jwks: Value = http.get(format!("{base}/jwks.json")).send().await?.json().await?;
            Ok::<Vec<String>, reqwest::Error>(
                jwks["keys"].as_array().unwrap().iter()
                    .map(|k| k["kid"].as_str().unwrap().to_owned()).collect(),
            )
        };
        let mut before = None;
        for _ in 0..100 {
            if let Ok(k) = fetch_kids().await {
                before = Some(k);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let before = before.expect("server answers");
        assert_eq!(before.len(), 3);

        let out = cli(&app, &["keys", "rotate", "--alg", "EdDSA"]);
        assert!(out.status.success());
        let status = std::process::Command::new("kill")
            .args(["-HUP", &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        // The reload runs right after the signal; poll until it shows (bounded, no fixed sleep).
        let mut after = before.clone();
        for _ in 0..100 {
            after = fetch_kids().await.unwrap();
            if after.len() == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(after.len(), 4, "the new key is published without a restart");
        assert!(before.iter().all(|k| after.contains(k)), "old keys stay published");
    }
}

/// Sign `browser` in through the real pages and the code flow: the token response.
async fn browser_tokens(app: &TestApp, browser: &reqwest::Client, client: &TestClient) -> Value {
    let (url, verifier, _, _) = app.authorize_url(client, "openid");
    let back = app
        .authorize_with_login(browser, &url, EMAIL, PASSWORD)
        .await;
    let code = query_of(&back).remove("code").expect("code in redirect");
    redeem(app, client, &code, &verifier)
        .await
        .json()
        .await
        .expect("token JSON")
}

async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    app.token_request(
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Introspection says inactive and userinfo refuses the token with `invalid_token`.
async fn assert_dead(app: &TestApp, client: &TestClient, access_token: &str) {
    assert!(inactive_only(&introspect(app, client, access_token).await));
    let (status, challenge) = userinfo_status(app, access_token).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

async fn assert_live(app: &TestApp, client: &TestClient, access_token: &str) {
    assert_eq!(introspect(app, client, access_token).await["active"], true);
    assert_eq!(userinfo_status(app, access_token).await.0, 200);
}

backend_tests! {
    async fn logout_deactivates_the_sessions_access_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let svc = service_client(&app, &[]).await;
        let cc = cc_token(&app, &svc).await;
        let b = browser();
        let tokens = browser_tokens(&app, &b, &client).await;
        let at = tokens["access_token"].as_str().unwrap();
        assert!(claims(at)["sid"].is_string());
        assert_live(&app, &client, at).await;
        // A second code of the same session, not yet redeemed when the session ends.
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let back = app.authorize_with_login(&b, &url, EMAIL, PASSWORD).await;
        let pending = query_of(&back).remove("code").expect("code");

        let mut logout = url::Url::parse(&app.url("/logout")).unwrap();
        logout.query_pairs_mut()
            .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
            .append_pair("client_id", &client.id);
        let resp = b.get(logout.as_str()).send().await.unwrap();
        assert!(resp.status().is_success() || resp.status().is_redirection(), "{}", resp.status());
        assert!(!crate::accounts::signed_in(&app, &b).await, "signed out");

        assert_dead(&app, &client, at).await;
        // No new token for the ended session either.
        let (status, error) = error_of(redeem(&app, &client, &pending, &verifier).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_grant"));
        // Client-credentials tokens carry no sid and are not affected.
        assert_eq!(introspect(&app, &svc, &cc).await["active"], true);
        // Purging keeps the deny row while the token may live.
        app.provider.store.purge_expired(portcullis::now()).await.unwrap();
        assert_dead(&app, &client, at).await;
    }

    async fn ending_one_session_leaves_the_others_tokens_active(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (one, two) = (browser(), browser());
        let t1 = browser_tokens(&app, &one, &client).await;
        let t2 = browser_tokens(&app, &two, &client).await;
        let (at1, at2) = (t1["access_token"].as_str().unwrap(), t2["access_token"].as_str().unwrap());
        // The session list of browser two offers to end the other one: browser one's.
        let (_, html) = crate::accounts::page(&two, &app.url("/account")).await;
        let sid = input_value(&html, "sid").expect("another session listed");
        assert_eq!(claims(at1)["sid"], sid.as_str());
        let resp = crate::accounts::post_form(&app, &two, "/account", "/account/sessions/end", &[("sid", &sid)]).await;
        assert_eq!(resp.status(), 303);
        assert_dead(&app, &client, at1).await;
        assert_live(&app, &client, at2).await;
    }

    async fn password_change_deactivates_every_sessions_tokens(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (one, two) = (browser(), browser());
        let t1 = browser_tokens(&app, &one, &client).await;
        let t2 = browser_tokens(&app, &two, &client).await;
        let resp = crate::accounts::post_form(&app, &two, "/account", "/account/password", &[
            ("current_password", PASSWORD),
            ("password", crate::accounts::NEW_PASSWORD),
            ("password_confirm", crate::accounts::NEW_PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 303);
        for t in [&t1, &t2] {
            assert_dead(&app, &client, t["access_token"].as_str().unwrap()).await;
        }
        // Browser two was given a new session: its new tokens work.
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let resp = two.get(&url).send().await.unwrap();
        let code = query_of(&location(&resp)).remove("code").expect("signed in: a code at once");
        let t3: Value = redeem(&app, &client, &code, &verifier).await.json().await.unwrap();
        assert_live(&app, &client, t3["access_token"].as_str().unwrap()).await;
    }
}

/// The deny-list of ended sessions lives in the database: a fresh SQLite store on the same file
/// (as after a restart: its in-memory mirror starts empty and loads the tables) still refuses the
/// ended session's tokens, and only those.
#[tokio::test]
async fn ended_sessions_tokens_stay_inactive_after_a_restart() {
    let app = TestApp::start(Backend::Sqlite).await;
    app.create_user(EMAIL, PASSWORD).await;
    let client = app.confidential_client().await;
    let (one, two) = (browser(), browser());
    let t1 = browser_tokens(&app, &one, &client).await;
    let t2 = browser_tokens(&app, &two, &client).await;
    let (_, html) = crate::accounts::page(&two, &app.url("/account")).await;
    let sid = input_value(&html, "sid").expect("another session listed");
    let resp = crate::accounts::post_form(
        &app,
        &two,
        "/account",
        "/account/sessions/end",
        &[("sid", &sid)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let db = app.provider.settings.database_url.expose().to_owned();
    // (The app keeps its temporary folder, hence the file, until it is stopped.)
    let store = portcullis::store::connect(&db, 1, std::time::Duration::from_secs(5))
        .await
        .expect("reopen the database");
    let c1 = claims(t1["access_token"].as_str().unwrap());
    let c2 = claims(t2["access_token"].as_str().unwrap());
    let key = |c: &Value| {
        (
            c["jti"].as_str().unwrap().to_owned(),
            c["sid"].as_str().unwrap().to_owned(),
        )
    };
    let ((jti1, sid1), (jti2, sid2)) = (key(&c1), key(&c2));
    assert_eq!(sid1, sid);
    assert!(
        store
            .is_access_token_revoked(&jti1, Some(&sid1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .is_access_token_revoked(&jti2, Some(&sid2))
            .await
            .unwrap()
    );
    // Keyed by sid only: the same string as a jti, or a token without sid, is not denied.
    assert!(!store.is_access_token_revoked(&sid1, None).await.unwrap());
    assert!(!store.is_access_token_revoked(&jti1, None).await.unwrap());
    store.close().await;
    app.stop().await;
}
