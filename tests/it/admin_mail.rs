//! Issue 5 leftovers: administrators' e-mails through the outbox: create a user with an
//! invitation (API and pages) and send a user the password-reset e-mail. Mail is captured by the
//! real SMTP sink of `accounts` or read from the outbox.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::{
    NEW_PASSWORD, SmtpSink, exec_sql, free_port, link_in, outbox, page, post_form, signed_in,
    smtp_env, start_with,
};
use crate::admin_api::{Api, admin_token, mint};
use crate::backend_tests;
use crate::helpers::*;

/// The token of the first link to `/reset-password` in a mail body.
fn token_in(body: &str, issuer: &str) -> String {
    let link = link_in(body, "/reset-password");
    assert!(
        link.starts_with(&format!("{issuer}/reset-password?")),
        "{link}"
    );
    query_of(&link).remove("token").expect("token")
}

/// Post the password form of the reset/invitation page for `token`.
async fn choose_password(
    app: &TestApp,
    b: &reqwest::Client,
    token: &str,
    password: &str,
    confirm: &str,
) -> (u16, String) {
    let resp = post_form(
        app,
        b,
        &format!("/reset-password?token={token}"),
        "/reset-password",
        &[
            ("token", token),
            ("password", password),
            ("password_confirm", confirm),
        ],
    )
    .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Post to `/reset-password` with a CSRF token from another page (for dead links).
async fn post_dead_link(app: &TestApp, b: &reqwest::Client, token: &str) -> u16 {
    post_form(
        app,
        b,
        "/forgot-password",
        "/reset-password",
        &[
            ("token", token),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await
    .status()
    .as_u16()
}

async fn audit_of(api: &Api<'_>, action: &str) -> Vec<Value> {
    let (status, body) = api.get(&format!("/audit?action={action}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().expect("items").clone()
}

backend_tests! {
    async fn invitation_over_the_api_then_sign_in_through_oidc(app: TestApp) {
        let port = free_port();
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let app = start_with(app.backend, &smtp_env(port)).await;
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };

        let (status, body) = api.post("/users", json!({
            "email": "Ivy@Example.com", "name": "Ivy", "send_invitation": true,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["email"], "ivy@example.com");
        assert_eq!(body["email_verified"], false);
        let id = body["id"].as_str().unwrap().to_owned();
        let stored = app.provider.store.find_user_by_email("ivy@example.com").await.unwrap().unwrap();
        assert!(stored.password_hash.is_none(), "no password until the person chooses one");

        // The mail arrives over real SMTP, with a link from the configured issuer.
        let mail = sink.wait_for("ivy@example.com", 1).await;
        assert!(mail.contains("Subject: You are invited: choose your password"), "{mail}");
        assert!(mail.contains("valid for 7 days"), "default lifetime");
        let token = token_in(&mail, &app.issuer);
        assert!(token.len() >= 22, "at least 128 bits");
        // Stored only as its SHA-256: no row holds the token itself, one holds its hash.
        for (secret, name) in [(token.clone(), "raw"), (portcullis::crypto::hash_secret(&token), "hashed")] {
            exec_sql(&app, &format!(
                "UPDATE users SET name = '{name}' WHERE EXISTS (SELECT 1 FROM account_codes WHERE secret_hash = '{secret}' AND purpose = 'invitation')"
            )).await;
        }
        let stored = app.provider.store.find_user(&id).await.unwrap().unwrap();
        assert_eq!(stored.name.as_deref(), Some("hashed"));

        let b = browser();
        let (status, html) = page(&b, &app.url(&format!("/reset-password?token={token}"))).await;
        assert_eq!(status, 200);
        assert!(html.contains("Choose your password"), "invitation wording");
        // The sign-up policy applies, and the two entries must match.
        let (status, _) = choose_password(&app, &b, &token, "password1", "password1").await;
        assert_eq!(status, 400);
        let (status, _) = choose_password(&app, &b, &token, PASSWORD, "something else 12").await;
        assert_eq!(status, 400);
        let (status, html) = choose_password(&app, &b, &token, PASSWORD, PASSWORD).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Password set"));
        let stored = app.provider.store.find_user(&id).await.unwrap().unwrap();
        assert!(stored.email_verified, "accepting the invitation verifies the address");

        // Sign in through the OIDC code flow with the chosen password.
        let client = app.confidential_client().await;
        let tokens = app.login_and_exchange(&client, "ivy@example.com", "openid email").await;
        let info: Value = app.http.get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(info["sub"], id.as_str());
        assert_eq!(info["email_verified"], true);

        // Single use: the link is dead on GET and POST, and the password stays.
        let (status, _) = page(&b, &app.url(&format!("/reset-password?token={token}"))).await;
        assert_eq!(status, 400);
        assert_eq!(post_dead_link(&app, &b, &token).await, 400);
        let (status, _) = app.submit_login(&browser(), "/login", "ivy@example.com", PASSWORD).await;
        assert_eq!(status, 303);

        // Audited: who invited whom, and the acceptance.
        let invited = audit_of(&api, "admin.user.invite").await;
        assert_eq!(invited.len(), 1);
        assert_eq!(invited[0]["actor"], admin_id.as_str());
        assert_eq!(invited[0]["target"], id.as_str());
        let accepted = audit_of(&api, "invitation.accept").await;
        assert_eq!(accepted.len(), 1);
        assert_eq!(accepted[0]["target"], id.as_str());
        assert_eq!(accepted[0]["outcome"], "success");
    }

    async fn invitation_validation_conflicts_and_no_half_writes(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        // A password and an invitation together: refused, nothing written.
        let (status, body) = api.post("/users", json!({
            "email": "jo@example.com", "password": PASSWORD, "send_invitation": true,
        })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["field"], "password");
        assert!(app.provider.store.find_user_by_email("jo@example.com").await.unwrap().is_none());
        assert!(outbox(&app, "jo@example.com").await.is_empty());
        // An existing address: 409, and no mail to its owner.
        app.create_user("kim@example.com", PASSWORD).await;
        let (status, body) = api.post("/users", json!({
            "email": "kim@example.com", "send_invitation": true,
        })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(outbox(&app, "kim@example.com").await.is_empty());
        // Without the flag no mail is sent (the existing behaviour).
        let (status, _) = api.post("/users", json!({"email": "lu@example.com"})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(outbox(&app, "lu@example.com").await.is_empty());
        // The OpenAPI document describes both actions.
        let doc: Value = app.http.get(app.url("/admin/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert!(doc["components"]["schemas"]["CreateUser"]["properties"]["send_invitation"].is_object());
        assert!(doc["paths"]["/admin/api/v1/users/{id}/password-reset"]["post"]["responses"]["202"].is_object());
    }

    async fn invitation_link_expires(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[("PORTCULLIS_ACCOUNTS__INVITATION_TTL", "7200")]).await;
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.post("/users", json!({"email": "max@example.com", "send_invitation": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let mails = outbox(&app, "max@example.com").await;
        assert_eq!(mails.len(), 1);
        assert!(mails[0].body_text.contains("valid for 2 hours"), "the configured lifetime");
        let token = token_in(&mails[0].body_text, &app.issuer);
        // Age the link past its configured lifetime instead of waiting.
        exec_sql(&app, "UPDATE account_codes SET expires_at = expires_at - 7201").await;
        let b = browser();
        let (status, _) = page(&b, &app.url(&format!("/reset-password?token={token}"))).await;
        assert_eq!(status, 400);
        assert_eq!(post_dead_link(&app, &b, &token).await, 400);
        let user = app.provider.store.find_user_by_email("max@example.com").await.unwrap().unwrap();
        assert!(user.password_hash.is_none() && !user.email_verified, "nothing changed");
        // A bad config value is refused with the key named.
        let err = portcullis::config::Settings::load_from(
            None,
            std::path::Path::new("/nonexistent"),
            &[("PORTCULLIS_ACCOUNTS__INVITATION_TTL".to_owned(), "10".to_owned())],
        );
        assert!(err.is_err_and(|e| e.key == "accounts.invitation_ttl"));
    }

    async fn admin_triggered_password_reset(app: TestApp) {
        let user = app.create_user("nia@example.com", PASSWORD).await;
        let other = browser();
        let (status, _) = app.submit_login(&other, "/login", "nia@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };

        let (status, body) = api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        // The same mail as the user's own "forgot password".
        let mails = outbox(&app, "nia@example.com").await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "Reset your password");
        let token = token_in(&mails[0].body_text, &app.issuer);
        let b = browser();
        let (status, html) = page(&b, &app.url(&format!("/reset-password?token={token}"))).await;
        assert_eq!(status, 200);
        assert!(html.contains("Choose a new password"));
        let (status, _) = choose_password(&app, &b, &token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 200);
        // Sessions ended; old password dead, new one works; link single use.
        assert!(!signed_in(&app, &other).await);
        let (status, _) = app.submit_login(&browser(), "/login", "nia@example.com", PASSWORD).await;
        assert_eq!(status, 200, "old password refused");
        let (status, _) = app.submit_login(&browser(), "/login", "nia@example.com", NEW_PASSWORD).await;
        assert_eq!(status, 303, "new password works");
        assert_eq!(post_dead_link(&app, &b, &token).await, 400);

        let entries = audit_of(&api, "admin.user.password_reset").await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["actor"], admin_id.as_str());
        assert_eq!(entries[0]["target"], user.id.as_str());

        // Unknown user: 404; disabled user: 409 and no mail.
        let (status, body) = api.post("/users/nope/password-reset", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _) = api.post(&format!("/users/{}/disable", user.id), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let before = outbox(&app, "nia@example.com").await.len();
        let (status, body) = api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(outbox(&app, "nia@example.com").await.len(), before);
    }

    async fn mail_actions_need_an_admin(app: TestApp) {
        let user = app.create_user("oli@example.com", PASSWORD).await;
        let reset = app.url(&format!("/admin/api/v1/users/{}/password-reset", user.id));
        let create = app.url("/admin/api/v1/users");
        let invite = json!({"email": "pat@example.com", "send_invitation": true});
        // No token: 401 with a Bearer challenge.
        let resp = app.http.post(&reset).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let resp = app.http.post(&create).json(&invite).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        // A non-admin user's token, even one carrying the admin scope: 403 insufficient_scope.
        let client = app.confidential_client().await;
        let token = mint(&app, &user.id, &client.id, "openid portcullis:admin");
        for resp in [
            app.http.post(&reset).bearer_auth(&token).send().await.unwrap(),
            app.http.post(&create).bearer_auth(&token).json(&invite).send().await.unwrap(),
        ] {
            assert_eq!(resp.status(), 403);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "insufficient_scope");
        }
        assert!(outbox(&app, "oli@example.com").await.is_empty());
        assert!(outbox(&app, "pat@example.com").await.is_empty());
        assert!(app.provider.store.find_user_by_email("pat@example.com").await.unwrap().is_none());
    }

    async fn pages_invite_and_send_reset_with_csrf(app: TestApp) {
        const ADMIN: &str = "mail-admin@example.com";
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let b = browser();
        let (status, _) = app.submit_login(&b, "/login", ADMIN, PASSWORD).await;
        assert_eq!(status, 303);
        let (status, html) = page(&b, &app.url("/admin/users")).await;
        assert_eq!(status, 200);
        assert!(html.contains("name=\"send_invitation\""));
        let csrf = input_value(&html, "csrf").expect("csrf");

        // Without a valid CSRF token nothing happens.
        let resp = b.post(app.url("/admin/users")).form(&[
            ("csrf", "forged"), ("email", "quinn@example.com"), ("send_invitation", "on"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(app.provider.store.find_user_by_email("quinn@example.com").await.unwrap().is_none());

        let resp = b.post(app.url("/admin/users")).form(&[
            ("csrf", csrf.as_str()), ("email", "quinn@example.com"), ("name", "Quinn"), ("password", ""), ("send_invitation", "on"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let detail = location(&resp);
        let mails = outbox(&app, "quinn@example.com").await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "You are invited: choose your password");
        assert!(mails[0].body_html.contains("Hello Quinn"));
        let token = token_in(&mails[0].body_text, &app.issuer);
        let person = browser();
        let (status, _) = choose_password(&app, &person, &token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 200);
        let (status, _) = app.submit_login(&browser(), "/login", "quinn@example.com", NEW_PASSWORD).await;
        assert_eq!(status, 303);

        // The user's page offers the reset mail; a forged form is refused.
        let (status, html) = page(&b, &app.url(&detail)).await;
        assert_eq!(status, 200);
        assert!(html.contains("value=\"send_password_reset\""));
        let csrf = input_value(&html, "csrf").expect("csrf");
        let resp = b.post(app.url(&detail)).form(&[("csrf", "forged"), ("action", "send_password_reset")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(outbox(&app, "quinn@example.com").await.len(), 1);
        let resp = b.post(app.url(&detail)).form(&[("csrf", csrf.as_str()), ("action", "send_password_reset")]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("Password-reset e-mail sent."));
        let mails = outbox(&app, "quinn@example.com").await;
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[1].subject, "Reset your password");
        let token = token_in(&mails[1].body_text, &app.issuer);
        let (status, _) = choose_password(&app, &person, &token, "yet another secret 7", "yet another secret 7").await;
        assert_eq!(status, 200);
        let (status, _) = app.submit_login(&browser(), "/login", "quinn@example.com", "yet another secret 7").await;
        assert_eq!(status, 303);
    }
}
