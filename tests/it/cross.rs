//! Rules that span areas: admin API access through tokens from the real grants.

use portcullis::domain::{ADMIN_SCOPE, TokenEndpointAuthMethod};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

async fn admin_users_status(app: &TestApp, token: &str) -> (u16, Value) {
    let resp = app
        .http
        .get(app.url("/admin/api/v1/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn client_credentials(app: &TestApp, client: &TestClient, scope: &str) -> reqwest::Response {
    app.token_request(
        client,
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await
}

backend_tests! {
    async fn automation_client_uses_the_admin_api_via_client_credentials(app: TestApp) {
        let robot = app.confidential_client().await;
        let resp = client_credentials(&app, &robot, ADMIN_SCOPE).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["scope"], ADMIN_SCOPE);
        let (status, _) = admin_users_status(&app, body["access_token"].as_str().unwrap()).await;
        assert_eq!(status, 200);

        // A client not allowed the admin scope cannot obtain it...
        let plain = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
                c.scopes.retain(|s| s != ADMIN_SCOPE);
                c.scopes.push("api".into());
            })
            .await;
        let resp = client_credentials(&app, &plain, ADMIN_SCOPE).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_scope");
        // ...and its other tokens are refused with 403 insufficient_scope.
        let resp = client_credentials(&app, &plain, "api").await;
        assert_eq!(resp.status(), 200);
        let token = resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
        let (status, problem) = admin_users_status(&app, &token).await;
        assert_eq!(status, 403);
        assert_eq!(problem["status"], 403);
    }

    async fn admin_scope_through_the_code_flow_only_for_admins(app: TestApp) {
        app.create_user_with("root@example.com", PASSWORD, true, &["admin"]).await;
        app.create_user("pat@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        let scope = format!("openid {ADMIN_SCOPE}");
        let admin = app.login_and_exchange(&client, "root@example.com", &scope).await;
        assert_eq!(admin["scope"], scope.as_str());
        assert_eq!(admin_users_status(&app, admin["access_token"].as_str().unwrap()).await.0, 200);
        let user = app.login_and_exchange(&client, "pat@example.com", &scope).await;
        assert_eq!(user["scope"], "openid", "the admin scope is not granted to non-admins");
        assert_eq!(admin_users_status(&app, user["access_token"].as_str().unwrap()).await.0, 403);
        assert_eq!(admin_users_status(&app, "garbage").await.0, 401);
    }
}

/// Status, content type and body of a response.
async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

backend_tests! {
    // PostgreSQL cannot hold U+0000 in text: every way a request carries text is checked before a
    // handler runs, and the request is refused in the endpoint's own format (it was a 500 there).
    async fn nul_characters_are_refused_everywhere_and_change_nothing(app: TestApp) {
        let (_, token) = crate::admin_api::admin_token(&app).await;
        let client = app.confidential_client().await;
        let secret = client.secret.clone().unwrap();
        let h = &app.http;
        let clients_before = app.provider.store.list_clients().await.unwrap().len();

        // Admin API: RFC 7807 problem details, nothing created.
        for resp in [
            h.post(app.url("/admin/api/v1/users")).bearer_auth(&token)
                .json(&serde_json::json!({"email": "nul@example.com", "name": "a\u{0}b"})).send().await.unwrap(),
            h.post(app.url("/admin/api/v1/clients")).bearer_auth(&token)
                .json(&serde_json::json!({"name": "c\u{0}", "redirect_uris": ["https://x.example.com/cb"]})).send().await.unwrap(),
            h.get(app.url("/admin/api/v1/users?q=a%00b")).bearer_auth(&token).send().await.unwrap(),
            h.get(app.url("/admin/api/v1/audit?action=a%00b")).bearer_auth(&token).send().await.unwrap(),
            h.get(app.url("/admin/api/v1/users/a%00b")).bearer_auth(&token).send().await.unwrap(),
        ] {
            let (status, ctype, body) = answer(resp).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(ctype, "application/problem+json", "{body}");
        }
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("nul@example.com").unwrap()).await.unwrap().is_none());
        assert_eq!(app.provider.store.list_clients().await.unwrap().len(), clients_before);

        // Protocol endpoints: RFC 6749 `invalid_request`, in the body and in Basic credentials.
        for resp in [
            h.post(app.url("/token")).form(&[("grant_type", "authorization_code"), ("code", "c"),
                ("client_id", "x\u{0}"), ("client_secret", "y")]).send().await.unwrap(),
            h.post(app.url("/token")).basic_auth(&client.id, Some(&secret))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", "a\u{0}b")]).send().await.unwrap(),
            h.post(app.url("/introspect")).basic_auth("x\u{0}", Some("y")).form(&[("token", "a")]).send().await.unwrap(),
            h.post(app.url("/revoke")).basic_auth(&client.id, Some(&secret)).form(&[("token", "a\u{0}b")]).send().await.unwrap(),
        ] {
            let (status, _, body) = answer(resp).await;
            assert_eq!(status, 400, "{body}");
            let body: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(body["error"], "invalid_request");
        }

        // Pages: an error page, never a redirect carrying the bad value.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let b = browser();
        for resp in [
            b.get(app.url("/authorize?client_id=a%00b&response_type=code&redirect_uri=https://x")).send().await.unwrap(),
            b.get(format!("{url}&login_hint=a%00b")).send().await.unwrap(),
        ] {
            let (status, ctype, _) = answer(resp).await;
            assert_eq!(status, 400);
            assert!(ctype.starts_with("text/html"), "{ctype}");
        }
        let (status, _) = app.submit_login(&b, "/login", "a\u{0}b@example.com", PASSWORD).await;
        assert_eq!(status, 400);

        // The six characters `\u0000` as text (an escaped backslash in JSON) are not a NUL.
        let resp = h.post(app.url("/admin/api/v1/users")).bearer_auth(&token)
            .json(&serde_json::json!({"email": "text@example.com", "name": "a\\u0000b"})).send().await.unwrap();
        assert_eq!(resp.status(), 201);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("text@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(user.name.as_deref(), Some("a\\u0000b"));
    }
}
