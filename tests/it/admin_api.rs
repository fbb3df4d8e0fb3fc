//! Issue 5: the admin API (`/admin/api/v1`): authorisation, users, clients, groups, audit,
//! problem details, pagination, and the `groups`/`roles` claims.

use base64::Engine;
use portcullis::domain::{NewUser, TokenEndpointAuthMethod};
use portcullis::oauth::access_token::{self, Grant};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::*;

pub const ADMIN_EMAIL: &str = "root@example.com";

/// An access token minted directly for `sub` / `client_id` with `scope`.
pub fn mint(app: &TestApp, sub: &str, client_id: &str, scope: &str) -> String {
    access_token::mint(
        &app.provider,
        &Grant {
            sub,
            client_id,
            scope,
            auth_time: None,
            sid: None,
            aud: None,
            ttl: 300,
            user: None,
        },
        access_token::new_jti(),
        portcullis::now(),
    )
    .expect("mint")
    .token
}

/// An admin user and an admin-scoped token for it, obtained through the real code flow.
pub async fn admin_token(app: &TestApp) -> (String, String) {
    let admin = app
        .create_user_with(ADMIN_EMAIL, PASSWORD, true, &["admin"])
        .await;
    let client = app.confidential_client().await;
    let tokens = app
        .login_and_exchange(&client, ADMIN_EMAIL, "openid portcullis:admin")
        .await;
    assert_eq!(tokens["scope"], "openid portcullis:admin");
    (
        admin.id,
        tokens["access_token"].as_str().unwrap().to_owned(),
    )
}

pub struct Api<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl Api<'_> {
    pub fn url(&self, path: &str) -> String {
        self.app.url(&format!("/admin/api/v1{path}"))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .app
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }
    pub async fn put(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, None).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, None).await
    }
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("JWS payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn raw_get(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url("/admin/api/v1/users"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

async fn audit_actions(api: &Api<'_>, query: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/audit?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

backend_tests! {
    async fn no_or_invalid_token_is_401_with_bearer_challenge(app: TestApp) {
        let resp = raw_get(&app, None).await;
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["status"], 401);
        assert_eq!(body["title"], "Unauthorized");

        let resp = raw_get(&app, Some("not-a-token")).await;
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }

    async fn non_admin_user_gets_no_admin_scope_and_403(app: TestApp) {
        app.create_user("bob@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        // The client may ask for the scope, but a non-admin is not granted it (RFC 6749 §3.3).
        let tokens = app.login_and_exchange(&client, "bob@example.com", "openid portcullis:admin").await;
        assert_eq!(tokens["scope"], "openid");
        let token = tokens["access_token"].as_str().unwrap();
        let resp = raw_get(&app, Some(token)).await;
        assert_eq!(resp.status(), 403);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");

        // Even a token that does carry the scope is refused for a non-admin user.
        let bob = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("bob@example.com").unwrap()).await.unwrap().unwrap();
        let forged = mint(&app, &bob.id, &client.id, "openid portcullis:admin");
        let resp = raw_get(&app, Some(&forged)).await;
        assert_eq!(resp.status(), 403);
    }

    async fn client_without_admin_scope_cannot_request_it(app: TestApp) {
        app.create_user_with(ADMIN_EMAIL, PASSWORD, true, &["admin"]).await;
        let client = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.scopes = vec!["openid".into()];
        }).await;
        let (url, _, _, _) = app.authorize_url(&client, "openid portcullis:admin");
        let resp = app.http.get(url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert_eq!(query_of(&to).get("error").map(String::as_str), Some("invalid_scope"));
    }

    async fn admin_user_token_works_and_scope_is_required(app: TestApp) {
        let (admin_id, token) = admin_token(&app).await;
        let resp = raw_get(&app, Some(&token)).await;
        assert_eq!(resp.status(), 200);
        // An admin's token without the admin scope is not enough.
        let plain = mint(&app, &admin_id, "some-client", "openid");
        let resp = raw_get(&app, Some(&plain)).await;
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    async fn client_tokens_need_the_scope_allowed(app: TestApp) {
        let allowed = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |_| {}).await;
        let denied = app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
            c.scopes = vec!["openid".into()];
        }).await;
        let token = mint(&app, &allowed.id, &allowed.id, "portcullis:admin");
        assert_eq!(raw_get(&app, Some(&token)).await.status(), 200);
        let token = mint(&app, &denied.id, &denied.id, "portcullis:admin");
        let resp = raw_get(&app, Some(&token)).await;
        assert_eq!(resp.status(), 403);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        let token = mint(&app, &allowed.id, &allowed.id, "openid");
        assert_eq!(raw_get(&app, Some(&token)).await.status(), 403);

        // The client's action is audited with actor client:<id>.
        let api = Api { app: &app, token: mint(&app, &allowed.id, &allowed.id, "portcullis:admin") };
        let (status, _) = api.post("/groups", json!({"name": "ops"})).await;
        assert_eq!(status, 201);
        let entries = audit_actions(&api, "action=admin.group.create").await;
        assert_eq!(entries[0]["actor"], format!("client:{}", allowed.id));
    }

    async fn last_admin_is_protected_and_demotion_is_immediate(app: TestApp) {
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        for (method, path) in [
            (reqwest::Method::DELETE, format!("/users/{admin_id}/roles/admin")),
            (reqwest::Method::DELETE, format!("/users/{admin_id}")),
            (reqwest::Method::POST, format!("/users/{admin_id}/disable")),
        ] {
            let (status, body) = api.send(method, &path, None).await;
            assert_eq!(status, 409, "{path}: {body}");
            assert_eq!(body["title"], "Conflict");
        }
        // With a second admin, the first may demote itself, and then loses access at once.
        let (status, other) = api.post("/users", json!({"email": "second@example.com"})).await;
        assert_eq!(status, 201);
        let other_id = other["id"].as_str().unwrap();
        let (status, body) = api.put(&format!("/users/{other_id}/roles/admin")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["roles"], json!(["admin"]));
        let (status, body) = api.delete(&format!("/users/{admin_id}/roles/admin")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["roles"], json!([]));
        let (status, body) = api.get("/users").await;
        assert_eq!(status, 403);
        assert_eq!(body["error"], "insufficient_scope");
    }

    async fn users_create_validate_edit_and_audit(app: TestApp) {
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.post("/users", json!({"email": "not-an-email"})).await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "email");
        let (status, body) = api.post("/users", json!({"email": "a@example.com", "bogus": 1})).await;
        assert_eq!(status, 422, "{body}");
        let resp = app.http.post(api.url("/users")).bearer_auth(&api.token)
            .body("{").header("content-type", "application/json").send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");

        let (status, user) = api.post("/users", json!({
            "email": "carol@example.com", "name": "Carol", "password": PASSWORD
        })).await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["email_verified"], false);
        assert!(user.get("password_hash").is_none());
        let id = user["id"].as_str().unwrap();
        let (status, _) = api.post("/users", json!({"email": "carol@example.com"})).await;
        assert_eq!(status, 409);

        let (status, user) = api.patch(&format!("/users/{id}"), json!({
            "email_verified": true, "phone_number": "+15550100",
            "attributes": {"department": "R&D"}
        })).await;
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["email_verified"], true);
        assert_eq!(user["attributes"]["department"], "R&D");
        let (status, body) = api.patch(&format!("/users/{id}"), json!({"picture": "javascript:x"})).await;
        assert_eq!(status, 422, "{body}");

        let entries = audit_actions(&api, &format!("action=admin.user.update&user={id}")).await;
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e["actor"], admin_id);
        assert_eq!(e["target"], id);
        assert_eq!(e["details"]["changes"]["email_verified"], json!({"before": false, "after": true}));
        assert_eq!(e["details"]["changes"]["phone_number"], json!({"before": null, "after": "+15550100"}));
        assert!(e["details"].to_string().find(PASSWORD).is_none());

        let (status, _) = api.get("/users/no-such-user").await;
        assert_eq!(status, 404);
    }

    async fn disable_ends_sessions_and_blocks_login(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let dave = app.create_user("dave@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        // Dave has a session in his browser.
        let browser = browser();
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        app.authorize_with_login(&browser, &url, "dave@example.com", PASSWORD).await;
        let tokens = app.login_and_exchange(&client, "dave@example.com", "openid").await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let app_ref = &app;
        let userinfo = |t: String| async move {
            app_ref.http.get(app_ref.url("/userinfo")).bearer_auth(t).send().await.unwrap().status()
        };
        assert_eq!(userinfo(access.clone()).await, 200);
        let (status, body) = api.post(&format!("/users/{}/disable", dave.id), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["disabled_at"].is_i64());
        // The access token no longer works at this provider's endpoints.
        assert_eq!(userinfo(access).await, 401);
        // The session is gone: a new authorization request goes to the login page again.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser.get(&url).send().await.unwrap();
        assert!(location(&resp).starts_with("/login"));
        let (status, body) = api.post(&format!("/users/{}/enable", dave.id), json!({})).await;
        assert_eq!(status, 200);
        assert!(body["disabled_at"].is_null());
        let (status, body) = api.delete(&format!("/users/{}/sessions", dave.id)).await;
        assert_eq!(status, 200);
        assert_eq!(body["sessions_ended"], 0);
    }

    async fn soft_delete_restore_and_purge(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let erin = app.create_user("erin@example.com", PASSWORD).await;
        let (status, _) = api.post(&format!("/users/{}/purge", erin.id), json!({})).await;
        assert_eq!(status, 409);
        let (status, _) = api.post(&format!("/users/{}/restore", erin.id), json!({})).await;
        assert_eq!(status, 409);
        let (status, _) = api.delete(&format!("/users/{}", erin.id)).await;
        assert_eq!(status, 204);
        assert!(app.provider.store.find_user(&erin.id).await.unwrap().is_none());
        let (_, list) = api.get("/users?q=erin").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 0);
        let (_, list) = api.get("/users?q=erin&deleted=true").await;
        assert_eq!(list["items"][0]["id"], erin.id.as_str());
        let (status, body) = api.post(&format!("/users/{}/restore", erin.id), json!({})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["deleted_at"].is_null());
        assert!(app.provider.store.find_user(&erin.id).await.unwrap().is_some());
        api.delete(&format!("/users/{}", erin.id)).await;
        let (status, _) = api.post(&format!("/users/{}/purge", erin.id), json!({})).await;
        assert_eq!(status, 204);
        let (status, _) = api.get(&format!("/users/{}", erin.id)).await;
        assert_eq!(status, 404);
    }

    async fn restore_refused_after_grace_period_and_housekeeping_purges(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let fay = app.create_user("fay@example.com", PASSWORD).await;
        let long_ago = portcullis::now() - 31 * 86_400;
        app.provider.store.set_user_deleted(&fay.id, Some(long_ago), long_ago).await.unwrap();
        let (status, body) = api.post(&format!("/users/{}/restore", fay.id), json!({})).await;
        assert_eq!(status, 409, "{body}");
        portcullis::startup::run_housekeeping(
            app.provider.store.as_ref(), &app.provider.settings, portcullis::now()).await;
        assert!(app.provider.store.admin_find_user(&fay.id).await.unwrap().is_none());
    }

    async fn user_list_search_filters_and_pagination(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        for i in 0..7 {
            app.create_user_with(&format!("user{i}@example.org"), PASSWORD, i % 2 == 0, &[]).await;
        }
        let (status, group) = api.post("/groups", json!({"name": "staff"})).await;
        assert_eq!(status, 201);
        let gid = group["id"].as_str().unwrap();
        let u3 = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("user3@example.org").unwrap()).await.unwrap().unwrap();
        assert_eq!(api.put(&format!("/groups/{gid}/members/{}", u3.id)).await.0, 204);

        let mut seen = Vec::new();
        let mut path = "/users?q=EXAMPLE.ORG&limit=3".to_owned();
        loop {
            let (status, page) = api.get(&path).await;
            assert_eq!(status, 200, "{page}");
            for u in page["items"].as_array().unwrap() {
                seen.push(u["email"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => path = format!("/users?q=EXAMPLE.ORG&limit=3&cursor={c}"),
                None => break,
            }
        }
        let expected: Vec<String> = (0..7).map(|i| format!("user{i}@example.org")).collect();
        assert_eq!(seen, expected);

        let (_, page) = api.get("/users?q=example.org&verified=false").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 3);
        let (_, page) = api.get(&format!("/users?group={gid}")).await;
        assert_eq!(page["items"][0]["email"], "user3@example.org");
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        api.post(&format!("/users/{}/disable", u3.id), json!({})).await;
        let (_, page) = api.get("/users?disabled=true").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);

        let (status, body) = api.get("/users?verified=maybe").await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = api.get("/users?cursor=%25%25").await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "cursor");
        let (status, _) = api.get("/users?unknown=1").await;
        assert_eq!(status, 400);
    }

    async fn clients_create_validate_rotate_disable_delete(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        for (uri, why) in [
            ("http://example.com/cb", "http"),
            ("https://example.com/cb#frag", "fragment"),
            ("/relative", "absolute"),
        ] {
            let (status, body) = api.post("/clients", json!({
                "name": "Bad", "redirect_uris": [uri]
            })).await;
            assert_eq!(status, 422, "{uri}");
            assert_eq!(body["field"], "redirect_uris");
            assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
        }
        let (status, body) = api.post("/clients", json!({"name": "X", "redirect_uris": [REDIRECT_URI], "scopes": ["bogus"]})).await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "scopes");
        let (status, body) = api.post("/clients", json!({"redirect_uris": [REDIRECT_URI]})).await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "name");

        let (status, created) = api.post("/clients", json!({
            "name": "Shop", "redirect_uris": [REDIRECT_URI],
            "post_logout_redirect_uris": ["https://shop.example/bye"],
            "backchannel_logout_uri": "https://shop.example/bcl",
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "email", "groups"], "audiences": ["https://api.shop.example"],
            "require_consent": true, "access_token_ttl": 300, "id_token_signed_response_alg": "ES256"
        })).await;
        assert_eq!(status, 201, "{created}");
        let id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        assert_eq!(created["kind"], "confidential");
        let (_, shown) = api.get(&format!("/clients/{id}")).await;
        assert!(shown.get("client_secret").is_none());
        assert!(shown.get("secret_hash").is_none());
        assert_eq!(shown["id_token_signed_response_alg"], "ES256");

        let test_client = TestClient { id: id.clone(), secret: Some(secret.clone()), redirect_uri: REDIRECT_URI.into() };
        let bogus = [("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", REDIRECT_URI)];
        assert_eq!(app.token_request(&test_client, &bogus).await.status(), 400);
        let (status, rotated) = api.post(&format!("/clients/{id}/secret"), json!({})).await;
        assert_eq!(status, 200);
        let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, secret);
        assert_eq!(app.token_request(&test_client, &bogus).await.status(), 401);
        let renewed = TestClient { secret: Some(new_secret), ..test_client.clone() };
        assert_eq!(app.token_request(&renewed, &bogus).await.status(), 400);

        let (status, edited) = api.patch(&format!("/clients/{id}"), json!({"name": "Shop 2", "access_token_ttl": 0})).await;
        assert_eq!(status, 200, "{edited}");
        assert_eq!(edited["name"], "Shop 2");
        assert!(edited["access_token_ttl"].is_null());
        let (status, _) = api.patch(&format!("/clients/{id}"), json!({"token_endpoint_auth_method": "none"})).await;
        assert_eq!(status, 422);
        let entries = audit_actions(&api, &format!("action=admin.client.update&client_id={id}")).await;
        assert_eq!(entries[0]["details"]["changes"]["name"], json!({"before": "Shop", "after": "Shop 2"}));
        assert!(!entries[0]["details"].to_string().contains(&secret));

        let (status, body) = api.post(&format!("/clients/{id}/disable"), json!({})).await;
        assert_eq!(status, 200);
        assert!(body["disabled_at"].is_i64());
        let (status, _) = api.delete(&format!("/clients/{id}")).await;
        assert_eq!(status, 204);
        let (status, _) = api.get(&format!("/clients/{id}")).await;
        assert_eq!(status, 404);

        let (status, public) = api.post("/clients", json!({"name": "SPA", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"})).await;
        assert_eq!(status, 201);
        assert!(public.get("client_secret").is_none());
        let (status, _) = api.post(&format!("/clients/{}/secret", public["client_id"].as_str().unwrap()), json!({})).await;
        assert_eq!(status, 409);
    }

    async fn client_list_search_and_pagination(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        for i in 0..5 {
            let (status, _) = api.post("/clients", json!({"name": format!("App {i}"), "redirect_uris": [REDIRECT_URI]})).await;
            assert_eq!(status, 201);
        }
        let (_, page1) = api.get("/clients?q=app%20&limit=2").await;
        assert_eq!(page1["items"][0]["name"], "App 0");
        assert_eq!(page1["items"][1]["name"], "App 1");
        let cursor = page1["next_cursor"].as_str().unwrap();
        let (_, page2) = api.get(&format!("/clients?q=app%20&limit=2&cursor={cursor}")).await;
        assert_eq!(page2["items"][0]["name"], "App 2");
        let (_, page) = api.get("/clients?q=app%204").await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert!(page.get("next_cursor").is_none());
    }

    async fn groups_crud_and_claims_follow_membership(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let gus = app.create_user_with("gus@example.com", PASSWORD, true, &["editor"]).await;
        let client = app.confidential_client().await;
        let tokens = app.login_and_exchange(&client, "gus@example.com", "openid groups").await;
        let at = claims_of(tokens["access_token"].as_str().unwrap());
        assert_eq!(at["groups"], json!([]));
        assert_eq!(at["roles"], json!(["editor"]));

        let (status, group) = api.post("/groups", json!({"name": "Engineering"})).await;
        assert_eq!(status, 201);
        let gid = group["id"].as_str().unwrap().to_owned();
        let (status, _) = api.post("/groups", json!({"name": "Engineering"})).await;
        assert_eq!(status, 409);
        let (status, body) = api.post("/groups", json!({"name": "  "})).await;
        assert_eq!(status, 422);
        assert_eq!(body["field"], "name");
        assert_eq!(api.put(&format!("/groups/{gid}/members/{}", gus.id)).await.0, 204);
        assert_eq!(api.put(&format!("/groups/{gid}/members/nobody")).await.0, 404);
        let (_, members) = api.get(&format!("/groups/{gid}/members")).await;
        assert_eq!(members["items"][0]["id"], gus.id.as_str());
        let (_, groups) = api.get(&format!("/users/{}/groups", gus.id)).await;
        assert_eq!(groups[0]["name"], "Engineering");

        let tokens = app.login_and_exchange(&client, "gus@example.com", "openid groups").await;
        let at = claims_of(tokens["access_token"].as_str().unwrap());
        assert_eq!(at["groups"], json!(["Engineering"]));
        let id = claims_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(id["groups"], json!(["Engineering"]));
        let info: Value = app.http.get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
        assert_eq!(info["groups"], json!(["Engineering"]));

        let (status, renamed) = api.patch(&format!("/groups/{gid}"), json!({"name": "R&D"})).await;
        assert_eq!(status, 200);
        assert_eq!(renamed["name"], "R&D");
        let tokens = app.login_and_exchange(&client, "gus@example.com", "openid groups").await;
        assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["groups"], json!(["R&D"]));
        // Without the groups scope there are no such claims.
        let tokens = app.login_and_exchange(&client, "gus@example.com", "openid").await;
        assert!(claims_of(tokens["access_token"].as_str().unwrap()).get("groups").is_none());

        assert_eq!(api.delete(&format!("/groups/{gid}/members/{}", gus.id)).await.0, 204);
        assert_eq!(api.delete(&format!("/groups/{gid}/members/{}", gus.id)).await.0, 404);
        let tokens = app.login_and_exchange(&client, "gus@example.com", "openid groups").await;
        assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["groups"], json!([]));
        assert_eq!(api.delete(&format!("/groups/{gid}")).await.0, 204);
        assert_eq!(api.get(&format!("/groups/{gid}")).await.0, 404);
    }

    async fn audit_filters_pagination_export_and_no_mutation(app: TestApp) {
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        app.create_user("hal@example.com", PASSWORD).await;
        // Two failed sign-ins and one success.
        for pw in ["wrong password 1", "wrong password 2"] {
            let b = browser();
            let (status, _) = app.submit_login(&b, "/login", "hal@example.com", pw).await;
            assert_eq!(status, 200);
        }
        for i in 0..4 {
            api.post("/groups", json!({"name": format!("g{i}")})).await;
        }
        let failures = audit_actions(&api, "action=login&outcome=failure").await;
        assert_eq!(failures.len(), 2);
        assert!(failures.iter().all(|e| e["details"]["reason"].is_string()));
        let logins = audit_actions(&api, "action=login&outcome=success").await;
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0]["actor"], admin_id);

        let (_, page1) = api.get("/audit?action=admin.group.create&limit=3").await;
        assert_eq!(page1["items"].as_array().unwrap().len(), 3);
        let cursor = page1["next_cursor"].as_str().unwrap();
        let (_, page2) = api.get(&format!("/audit?action=admin.group.create&limit=3&cursor={cursor}")).await;
        assert_eq!(page2["items"].as_array().unwrap().len(), 1);
        assert_eq!(page2["items"][0]["details"]["name"], "g0");
        let now = portcullis::now();
        let (_, none) = api.get(&format!("/audit?from={}", now + 1000)).await;
        assert_eq!(none["items"].as_array().unwrap().len(), 0);
        let (status, _) = api.get(&format!("/audit?from={}&to={}", now, now - 10)).await;
        assert_eq!(status, 422);
        let (status, _) = api.get("/audit?outcome=maybe").await;
        assert_eq!(status, 400);

        let resp = app.http.get(api.url("/audit/export?format=csv&action=admin.group.create"))
            .bearer_auth(&api.token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = resp.text().await.unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "id,at,actor,action,target,client_id,ip,user_agent,outcome,details");
        assert_eq!(lines.len(), 5);
        assert!(lines[1].contains("admin.group.create"));
        let (status, json_export) = api.get("/audit/export?format=json&outcome=failure").await;
        assert_eq!(status, 200);
        assert_eq!(json_export.as_array().unwrap().len(), 2);
        let (status, _) = api.get("/audit/export?format=xml").await;
        assert_eq!(status, 400);

        // Nothing in the API changes or deletes entries.
        let id = page1["items"][0]["id"].as_str().unwrap();
        for method in [reqwest::Method::DELETE, reqwest::Method::PATCH, reqwest::Method::PUT] {
            let (status, _) = api.send(method, &format!("/audit/{id}"), None).await;
            assert_eq!(status, 404);
            let resp = app.http.delete(api.url("/audit")).bearer_auth(&api.token).send().await.unwrap();
            assert_eq!(resp.status(), 405);
        }
    }

    async fn audit_retention_is_applied_by_housekeeping(app: TestApp) {
        let store = app.provider.store.as_ref();
        let now = portcullis::now();
        let retention = app.provider.settings.audit.retention_days;
        for (id, at) in [("old", now - (retention + 1) * 86_400), ("new", now - 86_400)] {
            let mut record = portcullis::audit::Event::new(portcullis::audit::action::LOGIN).into_record(at);
            record.target = Some(id.into());
            store.append_audit(&record).await.unwrap();
        }
        portcullis::startup::run_housekeeping(store, &app.provider.settings, now).await;
        let left = store.query_audit(&portcullis::store::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
        let targets: Vec<_> = left.iter().filter_map(|r| r.target.clone()).collect();
        assert_eq!(targets, vec!["new".to_owned()]);
    }

    async fn dashboard_counts_and_days(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.get("/dashboard").await;
        assert_eq!(status, 200);
        assert_eq!(body["counts"]["users"], 1);
        assert_eq!(body["counts"]["clients"], 1);
        assert_eq!(body["counts"]["active_sessions"], 1);
        let days = body["days"].as_array().unwrap();
        assert_eq!(days.len(), 30);
        assert_eq!(days[29]["success"], 1);
    }

    async fn user_list_stays_fast_at_100k_users(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let users: Vec<NewUser> = (0..100_000)
            .map(|i| NewUser {
                email: portcullis::domain::Email::parse(&format!("bulk{i:06}@example.net")).unwrap(),
                email_verified: i % 3 == 0,
                password_hash: None,
                name: Some(format!("Bulk Person {i}")),
                roles: vec![],
                phone_number: None,
                locale: None,
            })
            .collect();
        let t = std::time::Instant::now();
        let n = app.provider.store.bulk_create_users(&users, portcullis::now()).await.unwrap();
        assert_eq!(n, 100_000);
        eprintln!("[{:?}] seeded 100,000 users in {:?}", app.backend, t.elapsed());

        let t = std::time::Instant::now();
        let (_, first) = api.get("/users?limit=50").await;
        let first_page = t.elapsed();
        // Walk 20 pages deep by cursor, then measure one deep page.
        let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
        for _ in 0..20 {
            let (_, page) = api.get(&format!("/users?limit=50&cursor={cursor}")).await;
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
        }
        let t = std::time::Instant::now();
        let (_, deep) = api.get(&format!("/users?limit=50&cursor={cursor}")).await;
        let deep_page = t.elapsed();
        assert_eq!(deep["items"][0]["email"], "bulk001050@example.net");
        let t = std::time::Instant::now();
        let (_, found) = api.get("/users?q=bulk099999").await;
        let search = t.elapsed();
        assert_eq!(found["items"][0]["email"], "bulk099999@example.net");
        let t = std::time::Instant::now();
        let (_, filtered) = api.get("/users?verified=true&limit=50").await;
        let filter = t.elapsed();
        assert_eq!(filtered["items"].as_array().unwrap().len(), 50);
        eprintln!(
            "[{:?}] 100k users: first page {first_page:?}, page 22 {deep_page:?}, search {search:?}, verified filter {filter:?}",
            app.backend
        );
    }
}

/// `portcullis user grant-admin|revoke-admin EMAIL`, run as the real binary on the test database.
fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env(
            "PORTCULLIS_DATABASE_URL",
            app.provider.settings.database_url.expose(),
        )
        .env("PORTCULLIS_LOG_LEVEL", "error")
        .current_dir(app.dir.path())
        .output()
        .expect("run portcullis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

backend_tests! {
    async fn cli_grants_and_revokes_admin(app: TestApp) {
        let kim = app.create_user("kim@example.com", PASSWORD).await;
        let (ok, out) = cli(&app, &["user", "grant-admin", "kim@example.com"]);
        assert!(ok, "{out}");
        assert!(out.contains("is now an administrator"), "{out}");
        let roles = app.provider.store.user_roles(&kim.id).await.unwrap();
        assert_eq!(roles, vec!["admin".to_owned()]);
        // The only admin cannot be demoted.
        let (ok, out) = cli(&app, &["user", "revoke-admin", "kim@example.com"]);
        assert!(!ok);
        assert!(out.contains("last active administrator"), "{out}");
        app.create_user_with("lee@example.com", PASSWORD, true, &["admin"]).await;
        let (ok, out) = cli(&app, &["user", "revoke-admin", "kim@example.com"]);
        assert!(ok, "{out}");
        assert!(app.provider.store.user_roles(&kim.id).await.unwrap().is_empty());
        let (ok, out) = cli(&app, &["user", "grant-admin", "nobody@example.com"]);
        assert!(!ok);
        assert!(out.contains("no user"), "{out}");
        let entries = app.provider.store.query_audit(&portcullis::store::AuditQuery {
            user: Some(kim.id.clone()), limit: 10, ..Default::default()
        }).await.unwrap();
        let actions: Vec<_> = entries.iter().map(|e| (e.action.as_str(), e.actor.as_deref())).collect();
        assert_eq!(actions, vec![("admin.role.revoke", Some("cli")), ("admin.role.grant", Some("cli"))]);
    }
}

backend_tests! {
    async fn two_admins_demoting_each_other_at_once_leave_one(app: TestApp) {
        for round in 0..5 {
            let a = app.create_user_with(&format!("a{round}@example.com"), PASSWORD, true, &["admin"]).await;
            let b = app.create_user_with(&format!("b{round}@example.com"), PASSWORD, true, &["admin"]).await;
            // Only these two are admins in this round.
            for u in app.provider.store.list_users(&portcullis::store::UserFilter { limit: 100, ..Default::default() }).await.unwrap() {
                if u.id != a.id && u.id != b.id {
                    app.provider.store.remove_role(&u.id, "admin").await.unwrap();
                }
            }
            let api_a = Api { app: &app, token: mint(&app, &a.id, "c", "portcullis:admin") };
            let api_b = Api { app: &app, token: mint(&app, &b.id, "c", "portcullis:admin") };
            let path_b = format!("/users/{}/roles/admin", b.id);
            let path_a = format!("/users/{}/roles/admin", a.id);
            let (ra, rb) = tokio::join!(api_a.delete(&path_b), api_b.delete(&path_a));
            let ok = [ra.0, rb.0].iter().filter(|s| **s == StatusCode::OK).count();
            assert_eq!(ok, 1, "exactly one demotion wins: {ra:?} {rb:?}");
            let admins_a = app.provider.store.user_roles(&a.id).await.unwrap();
            let admins_b = app.provider.store.user_roles(&b.id).await.unwrap();
            assert_eq!(admins_a.len() + admins_b.len(), 1, "one admin remains");
        }
    }
}

backend_tests! {
    async fn search_treats_like_wildcards_as_literals(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        app.create_user("john_doe@example.com", PASSWORD).await;
        app.create_user("johnxdoe@example.com", PASSWORD).await;
        let emails = |body: &Value| -> Vec<String> {
            body["items"].as_array().unwrap().iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()).collect()
        };
        let (status, found) = api.get("/users?q=john_doe").await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(emails(&found), ["john_doe@example.com"], "`_` is not a wildcard");
        let (_, found) = api.get("/users?q=JOHN_DOE").await;
        assert_eq!(emails(&found), ["john_doe@example.com"], "still case-insensitive");
        // `%` alone is a literal: no address has one, so nothing matches.
        let (status, found) = api.get("/users?q=%25").await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(emails(&found), Vec::<String>::new());
        let (_, found) = api.get("/users?q=john%25doe").await;
        assert_eq!(emails(&found), Vec::<String>::new());
        let (_, found) = api.get("/users?q=%5C").await;
        assert_eq!(emails(&found), Vec::<String>::new(), "`\\` is a literal too");

        for name in ["Shop_A", "ShopxA"] {
            let (status, body) = api.post("/clients", json!({"name": name, "redirect_uris": [REDIRECT_URI]})).await;
            assert_eq!(status, 201, "{body}");
        }
        let names = |body: &Value| -> Vec<String> {
            body["items"].as_array().unwrap().iter()
                .map(|c| c["name"].as_str().unwrap().to_owned()).collect()
        };
        let (status, found) = api.get("/clients?q=shop_a").await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(names(&found), ["Shop_A"]);
        let (_, found) = api.get("/clients?q=%25").await;
        assert_eq!(names(&found), Vec::<String>::new());
    }
}
