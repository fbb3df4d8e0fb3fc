//! Issue 5 leftovers: administrators' e-mails through the outbox: create a user with an
//! invitation (API and pages), resend it with a new link, and send a user the password-reset
//! e-mail. Mail is captured by the real SMTP sink of `accounts` or read from the outbox.

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
        assert_eq!(body["email"], "Ivy@Example.com", "kept as typed");
        assert_eq!(body["email_verified"], false);
        let id = body["id"].as_str().unwrap().to_owned();
        let stored = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("ivy@example.com").unwrap()).await.unwrap().unwrap();
        assert!(stored.password_hash.is_none(), "no password until the person chooses one");

        // The mail arrives over real SMTP, with a link from the configured issuer.
        let mail = sink.wait_for("Ivy@Example.com", 1).await;
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
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("jo@example.com").unwrap()).await.unwrap().is_none());
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
        // Let the link's configured lifetime pass on the server's clock instead of waiting.
        app.provider.clock.advance(7201);
        let b = browser();
        let (status, _) = page(&b, &app.url(&format!("/reset-password?token={token}"))).await;
        assert_eq!(status, 400);
        assert_eq!(post_dead_link(&app, &b, &token).await, 400);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("max@example.com").unwrap()).await.unwrap().unwrap();
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
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("pat@example.com").unwrap()).await.unwrap().is_none());
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
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("quinn@example.com").unwrap()).await.unwrap().is_none());

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

    async fn resent_invitation_has_a_new_link_and_the_old_one_dies(app: TestApp) {
        let port = free_port();
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let app = start_with(app.backend, &smtp_env(port)).await;
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.post("/users", json!({
            "email": "rae@example.com", "name": "Rae", "send_invitation": true,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["password_set"], false);
        let id = body["id"].as_str().unwrap().to_owned();
        let first = token_in(&sink.wait_for("rae@example.com", 1).await, &app.issuer);

        let resp = app.http.post(api.url(&format!("/users/{id}/invitation")))
            .bearer_auth(&api.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(resp.text().await.unwrap().is_empty());
        // A second mail over real SMTP, same wording, a fresh link from the configured issuer.
        let mail = sink.wait_for("rae@example.com", 2).await;
        assert!(mail.contains("Subject: You are invited: choose your password"), "{mail}");
        assert!(mail.contains("valid for 7 days"), "{mail}");
        let second = token_in(&mail, &app.issuer);
        assert_ne!(first, second);
        assert!(second.len() >= 22, "at least 128 bits");
        // Stored only as its SHA-256.
        for (secret, name) in [(second.clone(), "raw"), (portcullis::crypto::hash_secret(&second), "hashed")] {
            exec_sql(&app, &format!(
                "UPDATE users SET name = '{name}' WHERE EXISTS (SELECT 1 FROM account_codes WHERE secret_hash = '{secret}' AND purpose = 'invitation')"
            )).await;
        }
        assert_eq!(app.provider.store.find_user(&id).await.unwrap().unwrap().name.as_deref(), Some("hashed"));

        // The old link is dead on GET and POST; the new one works once.
        let b = browser();
        let (status, html) = page(&b, &app.url(&format!("/reset-password?token={first}"))).await;
        assert_eq!(status, 400);
        assert!(html.contains("Link not valid"));
        assert_eq!(post_dead_link(&app, &b, &first).await, 400);
        let stored = app.provider.store.find_user(&id).await.unwrap().unwrap();
        assert!(stored.password_hash.is_none(), "the old link set nothing");
        let (status, html) = page(&b, &app.url(&format!("/reset-password?token={second}"))).await;
        assert_eq!(status, 200);
        assert!(html.contains("Choose your password"), "invitation wording");
        let (status, html) = choose_password(&app, &b, &second, PASSWORD, PASSWORD).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("Password set"));
        let (status, _) = app.submit_login(&browser(), "/login", "rae@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        assert_eq!(post_dead_link(&app, &b, &second).await, 400, "single use");
        let (status, body) = api.get(&format!("/users/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["password_set"], true);
        assert_eq!(body["email_verified"], true);

        // Accepted: nothing left to resend. 409 as problem details, no mail, no audit entry.
        let resp = app.http.post(api.url(&format!("/users/{id}/invitation")))
            .bearer_auth(&api.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["status"], 409);
        assert!(problem["detail"].as_str().unwrap().contains("already has a password"), "{problem}");
        assert_eq!(outbox(&app, "rae@example.com").await.len(), 2);

        // Audited once: who resent to whom, never the link.
        let entries = audit_of(&api, "admin.user.invitation_resend").await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["actor"], admin_id.as_str());
        assert_eq!(entries[0]["target"], id.as_str());
        assert_eq!(entries[0]["outcome"], "success");
        assert_eq!(entries[0]["details"]["email"], "rae@example.com");
        let text = entries[0].to_string();
        assert!(!text.contains(&first) && !text.contains(&second));
    }

    async fn resend_invitation_refusals_locale_and_openapi(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        // Unknown user: 404 problem details.
        let (status, body) = api.post("/users/no-such-user/invitation", json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["status"], 404);
        // A user with a password: 409, no mail, no link.
        let kim = app.create_user("kim@example.com", PASSWORD).await;
        let (status, body) = api.post(&format!("/users/{}/invitation", kim.id), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(outbox(&app, "kim@example.com").await.is_empty());
        // A user created without a password (and without an invitation) can be invited.
        let (status, body) = api.post("/users", json!({"email": "lu@example.com"})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["password_set"], false);
        let (status, body) = api.post(&format!("/users/{}/invitation", body["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(outbox(&app, "lu@example.com").await.len(), 1);

        // An invited user whose locale is Korean gets the Korean mail, with a working link.
        let (status, body) = api.post("/users", json!({"email": "min@example.com", "name": "민", "send_invitation": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let min = body["id"].as_str().unwrap().to_owned();
        let (status, _) = api.patch(&format!("/users/{min}"), json!({"locale": "ko-KR"})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = api.post(&format!("/users/{min}/invitation"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let mails = outbox(&app, "min@example.com").await;
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].subject, "You are invited: choose your password");
        assert_eq!(mails[1].subject, "초대: 비밀번호를 정하세요");
        assert!(mails[1].body_text.contains("민님"), "{}", mails[1].body_text);
        assert!(mails[1].body_text.contains("(7일 동안 유효"), "{}", mails[1].body_text);
        assert!(mails[1].body_html.contains("lang=\"ko\""));
        let old = token_in(&mails[0].body_text, &app.issuer);
        let new = token_in(&mails[1].body_text, &app.issuer);
        let b = browser();
        assert_eq!(page(&b, &app.url(&format!("/reset-password?token={old}"))).await.0, 400);
        assert_eq!(page(&b, &app.url(&format!("/reset-password?token={new}"))).await.0, 200);

        // Disabled or deleted: 409 and nothing sent; the live link stays the live one.
        let (status, _) = api.post(&format!("/users/{min}/disable"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = api.post(&format!("/users/{min}/invitation"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        let (status, _) = api.post(&format!("/users/{min}/enable"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = api.delete(&format!("/users/{min}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = api.post(&format!("/users/{min}/invitation"), json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(outbox(&app, "min@example.com").await.len(), 2);
        let (status, _) = api.post(&format!("/users/{min}/restore"), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page(&b, &app.url(&format!("/reset-password?token={new}"))).await.0, 200);

        // The OpenAPI document describes the action.
        let doc: Value = app.http.get(app.url("/admin/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
        let op = &doc["paths"]["/admin/api/v1/users/{id}/invitation"]["post"];
        assert!(op["responses"]["202"].is_object(), "{op}");
        assert!(op["responses"]["409"].is_object(), "{op}");
        assert!(doc["components"]["schemas"]["AdminUserOut"]["properties"]["password_set"].is_object());
    }

    async fn resend_invitation_needs_an_admin(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.post("/users", json!({"email": "sol@example.com", "send_invitation": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let url = api.url(&format!("/users/{}/invitation", body["id"].as_str().unwrap()));
        // No token, or a bad one: 401 with a Bearer challenge.
        for resp in [
            app.http.post(&url).send().await.unwrap(),
            app.http.post(&url).bearer_auth("not-a-token").send().await.unwrap(),
        ] {
            assert_eq!(resp.status(), 401);
            assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        }
        // A non-admin's token, even with the admin scope, and an admin's token without it: 403.
        let user = app.create_user("tam@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        let admin = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(crate::admin_api::ADMIN_EMAIL).unwrap()).await.unwrap().unwrap();
        for token in [
            mint(&app, &user.id, &client.id, "openid portcullis:admin"),
            mint(&app, &admin.id, &client.id, "openid"),
        ] {
            let resp = app.http.post(&url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(resp.status(), 403);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "insufficient_scope");
        }
        assert_eq!(outbox(&app, "sol@example.com").await.len(), 1, "only the first invitation");
    }

    async fn page_resends_the_invitation_with_csrf(app: TestApp) {
        const ADMIN: &str = "resend-admin@example.com";
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let b = browser();
        let (status, _) = app.submit_login(&b, "/login", ADMIN, PASSWORD).await;
        assert_eq!(status, 303);
        let (status, html) = page(&b, &app.url("/admin/users")).await;
        assert_eq!(status, 200);
        let csrf = input_value(&html, "csrf").expect("csrf");
        let resp = b.post(app.url("/admin/users")).form(&[
            ("csrf", csrf.as_str()), ("email", "una@example.com"), ("name", "Una"), ("send_invitation", "on"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let detail = location(&resp);

        // Shown for the invited user; a forged form changes nothing.
        let (status, html) = page(&b, &app.url(&detail)).await;
        assert_eq!(status, 200);
        assert!(html.contains("value=\"resend_invitation\""), "{html}");
        assert!(html.contains("Resend invitation"));
        assert!(html.contains("no password yet"));
        let csrf = input_value(&html, "csrf").expect("csrf");
        let resp = b.post(app.url(&detail)).form(&[("csrf", "forged"), ("action", "resend_invitation")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(outbox(&app, "una@example.com").await.len(), 1);

        let resp = b.post(app.url(&detail)).form(&[("csrf", csrf.as_str()), ("action", "resend_invitation")]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("Invitation e-mail sent with a new link"));
        let mails = outbox(&app, "una@example.com").await;
        assert_eq!(mails.len(), 2);
        assert!(mails[1].body_html.contains("Hello Una"));
        let old = token_in(&mails[0].body_text, &app.issuer);
        let new = token_in(&mails[1].body_text, &app.issuer);
        let person = browser();
        assert_eq!(page(&person, &app.url(&format!("/reset-password?token={old}"))).await.0, 400);
        let (status, _) = choose_password(&app, &person, &new, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 200);

        // Accepted: the button is gone, and a hand-made post is refused on the page (422).
        let (status, html) = page(&b, &app.url(&detail)).await;
        assert_eq!(status, 200);
        assert!(!html.contains("value=\"resend_invitation\""));
        assert!(html.contains("password set"));
        let resp = b.post(app.url(&detail)).form(&[("csrf", csrf.as_str()), ("action", "resend_invitation")]).send().await.unwrap();
        assert_eq!(resp.status(), 422);
        assert!(resp.text().await.unwrap().contains("already has a password"));
        assert_eq!(outbox(&app, "una@example.com").await.len(), 2);
        // Never offered for a user created with a password, nor for a disabled one.
        let vic = app.create_user("vic@example.com", PASSWORD).await;
        let (_, html) = page(&b, &app.url(&format!("/admin/users/{}", vic.id))).await;
        assert!(!html.contains("value=\"resend_invitation\""));
        let resp = b.post(app.url("/admin/users")).form(&[
            ("csrf", csrf.as_str()), ("email", "wes@example.com"), ("send_invitation", "on"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let wes = location(&resp);
        let resp = b.post(app.url(&wes)).form(&[("csrf", csrf.as_str()), ("action", "disable")]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains("User disabled"));
        assert!(!html.contains("value=\"resend_invitation\""));
    }

    async fn reissue_rechecks_the_user_in_its_transaction(app: TestApp) {
        use portcullis::crypto::hash_secret;
        use portcullis::store::{Channel, CodePurpose, NewAccountCode, NewMail};
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let (status, body) = api.post("/users", json!({"email": "xan@example.com", "send_invitation": true})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["id"].as_str().unwrap().to_owned();
        let first = token_in(&outbox(&app, "xan@example.com").await[0].body_text, &app.issuer);
        let store = &app.provider.store;
        let now = portcullis::now();
        let code = |secret: &str, target: &str| NewAccountCode {
            purpose: CodePurpose::Invitation,
            target: target.to_owned(),
            secret_hash: hash_secret(secret),
            expires_at: now + 3600,
        };
        let mail = NewMail {
            recipient: "xan@example.com".into(),
            subject: "s".into(),
            body_text: "t".into(),
            body_html: "h".into(),
            channel: Channel::Email,
            expires_at: None,
        };
        let live = |secret: &str| {
            let hash = hash_secret(secret);
            async move { store.find_link(CodePurpose::Invitation, &hash, portcullis::now()).await.unwrap().is_some() }
        };
        // Eligible: the old link is voided, the new one stored, the mail queued, together.
        assert!(store.reissue_invitation(&id, &code("second", "xan@example.com"), &mail, now).await.unwrap());
        assert!(!live(&first).await && live("second").await);
        assert_eq!(outbox(&app, "xan@example.com").await.len(), 2);
        // Another address, an unknown user, or a password set since the service looked: nothing
        // is written (the live link stays live, no mail).
        assert!(!store.reissue_invitation(&id, &code("third", "other@example.com"), &mail, now).await.unwrap());
        assert!(!store.reissue_invitation("no-such-user", &code("fourth", "xan@example.com"), &mail, now).await.unwrap());
        exec_sql(&app, &format!("UPDATE users SET password_hash = 'set-meanwhile' WHERE id = '{id}'")).await;
        assert!(!store.reissue_invitation(&id, &code("fifth", "xan@example.com"), &mail, now).await.unwrap());
        assert!(live("second").await);
        for secret in ["third", "fourth", "fifth"] {
            assert!(!live(secret).await, "{secret}");
        }
        assert_eq!(outbox(&app, "xan@example.com").await.len(), 2);
    }
}
