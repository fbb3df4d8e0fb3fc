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
