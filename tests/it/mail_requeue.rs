//! Issue 19 item 8: mail given up after the retry budget, re-queued by an administrator through
//! the admin API, the admin pages and the CLI. The SMTP server is the real sink process of
//! `accounts`, absent at first; `mail.max_attempts = 1` gives a message up at its first failure.

use std::process::Output;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::{SmtpSink, free_port, link_in, outbox, page, smtp_env, start_with};
use crate::admin_api::{ADMIN_EMAIL, Api, admin_token};
use crate::backend_tests;
use crate::cli::cli_on;
use crate::helpers::*;

/// SMTP on `port` (nothing listens there until a test starts the sink), one attempt only.
async fn app_giving_up(backend: Backend, port: u16) -> TestApp {
    let mut env = smtp_env(port);
    env.push(("PORTCULLIS_MAIL__MAX_ATTEMPTS", "1".into()));
    start_with(backend, &env).await
}

/// A new admin token through the code flow, on the app's clock (after `advance`, the first one
/// has expired).
async fn admin_again(app: &TestApp) -> String {
    let client = app.confidential_client().await;
    let tokens = app
        .login_and_exchange(&client, ADMIN_EMAIL, "openid portcullis:admin")
        .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Wait until the newest message to `to` is given up; its id.
async fn given_up(app: &TestApp, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = outbox(app, to).await.pop()
            && m.failed_at.is_some()
        {
            assert!(m.sent_at.is_none());
            return m.id;
        }
        assert!(Instant::now() < deadline, "no given-up mail to {to}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until the message `id` is marked sent.
async fn sent(app: &TestApp, to: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !outbox(app, to)
        .await
        .iter()
        .any(|m| m.id == id && m.sent_at.is_some())
    {
        assert!(Instant::now() < deadline, "{id} not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reset-link token in a mail body.
fn reset_token(body: &str) -> String {
    query_of(&link_in(body, "/reset-password"))
        .remove("token")
        .expect("token")
}

async fn reset_page_status(app: &TestApp, token: &str) -> u16 {
    let (status, _) = page(
        &browser(),
        &app.url(&format!("/reset-password?token={token}")),
    )
    .await;
    status
}

fn problem(status: StatusCode, body: &Value, want: StatusCode, case: &str) {
    assert_eq!(status, want, "{case}: {body}");
    assert_eq!(body["status"], want.as_u16(), "{case}: {body}");
    assert_eq!(body["type"], "about:blank", "{case}: {body}");
}

fn err_line(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim_end().to_owned()
}

backend_tests! {
    async fn a_given_up_mail_is_requeued_as_it_is_over_the_api(app: TestApp) {
        let port = free_port();
        let app = app_giving_up(app.backend, port).await;
        let (admin_id, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let user = app.create_user("rue@example.com", PASSWORD).await;
        let (status, body) = api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let id = given_up(&app, "rue@example.com").await;
        let stored = outbox(&app, "rue@example.com").await.pop().unwrap();
        let token = reset_token(&stored.body_text);

        // Listed, without its body.
        let (status, list) = api.get("/mail/given-up").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let item = list["items"].as_array().unwrap().iter().find(|m| m["id"] == id.as_str()).expect("listed").clone();
        assert_eq!(item["purpose"], "password_reset");
        assert_eq!(item["has_body"], true);
        assert_eq!(item["attempts"], 1);
        assert!(item.get("body_text").is_none() && !item.to_string().contains(&token));

        // Unknown id: 404; bad paging input: 400; both problem documents, nothing changed.
        let (status, body) = api.post("/mail/0190f0f0-0000-7000-8000-000000000000/requeue", json!({})).await;
        problem(status, &body, StatusCode::NOT_FOUND, "unknown id");
        let (status, body) = api.get("/mail/given-up?cursor=%%%").await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY, "{body}");

        // The SMTP server is back; the message goes out as it was, with the same live link.
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let (status, body) = api.post(&format!("/mail/{id}/requeue"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body, json!({"mode": "requeued", "mail_id": id}));
        let mail = sink.wait_for("rue@example.com", 1).await;
        assert!(mail.contains("Reset your password"));
        sent(&app, "rue@example.com", &id).await;
        assert_eq!(reset_page_status(&app, &token).await, 200);

        // Sent now, so not given up: 409, and it is off the list.
        let (status, body) = api.post(&format!("/mail/{id}/requeue"), json!({})).await;
        problem(status, &body, StatusCode::CONFLICT, "sent");
        let (_, list) = api.get("/mail/given-up").await;
        assert!(!list.to_string().contains(&id), "{list}");

        // Audited: who, which message, how.
        let (status, audit) = api.get("/audit?action=admin.mail.requeue").await;
        assert_eq!(status, StatusCode::OK);
        let entries = audit["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{audit}");
        assert_eq!(entries[0]["actor"], admin_id.as_str());
        assert_eq!(entries[0]["target"], user.id.as_str());
        assert_eq!(entries[0]["details"]["mail_id"], id.as_str());
        assert_eq!(entries[0]["details"]["mode"], "requeued");

        // Only administrators: no token, 401.
        let resp = app.http.post(app.url(&format!("/admin/api/v1/mail/{id}/requeue"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_blanked_or_expired_mail_is_reissued_never_resurrected(app: TestApp) {
        let port = free_port();
        let app = app_giving_up(app.backend, port).await;
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let user = app.create_user("sol@example.com", PASSWORD).await;
        api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        let id = given_up(&app, "sol@example.com").await;
        let old = reset_token(&outbox(&app, "sol@example.com").await[0].body_text);
        // Housekeeping blanks bodies of ended mail (10 minutes on; run here directly).
        let now = app.provider.clock.now();
        assert!(app.provider.store.scrub_mail_bodies(now + 1).await.unwrap() >= 1);
        // Another given-up mail, whose body stays stored (for the expiry case below).
        let ted = app.create_user("ted@example.com", PASSWORD).await;
        api.post(&format!("/users/{}/password-reset", ted.id), json!({})).await;
        let ted_mail = given_up(&app, "ted@example.com").await;

        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let (status, body) = api.post(&format!("/mail/{id}/requeue"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["mode"], "reissued");
        let new_id = body["mail_id"].as_str().unwrap().to_owned();
        assert!(!new_id.is_empty() && new_id != id);
        let mail = sink.wait_for("sol@example.com", 1).await;
        let fresh = reset_token(&mail.replace("=\r\n", "").replace("=3D", "="));
        assert_ne!(fresh, old);
        assert_eq!(reset_page_status(&app, &fresh).await, 200, "the fresh link works");
        assert_eq!(reset_page_status(&app, &old).await, 400, "the old link stays dead");
        // The old row is marked, and is not re-issued twice.
        let rows = outbox(&app, "sol@example.com").await;
        assert_eq!(rows[0].last_error.as_deref(), Some("reissued"));
        assert!(rows[0].body_text.is_empty());
        let (status, body) = api.post(&format!("/mail/{id}/requeue"), json!({})).await;
        problem(status, &body, StatusCode::CONFLICT, "already reissued");

        // A stored body whose link expired meanwhile is re-issued too, never sent dead.
        app.provider.clock.advance(app.provider.settings.accounts.reset_link_ttl + 1);
        let api = Api { app: &app, token: admin_again(&app).await };
        let rows = outbox(&app, "ted@example.com").await;
        assert!(!rows[0].body_text.is_empty(), "body still stored");
        let (status, body) = api.post(&format!("/mail/{ted_mail}/requeue"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["mode"], "reissued");
        let mail = sink.wait_for("ted@example.com", 1).await;
        let fresh = reset_token(&mail);
        assert_ne!(fresh, reset_token(&rows[0].body_text));
        assert_eq!(reset_page_status(&app, &fresh).await, 200);
    }

    async fn sign_in_codes_and_notices_without_body_are_not_requeued(app: TestApp) {
        let port = free_port();
        let app = app_giving_up(app.backend, port).await;
        // The administrator; its token is taken after the clock moved.
        admin_token(&app).await;
        app.create_user("tai@example.com", PASSWORD).await;
        let b = browser();
        let resp = crate::accounts::post_form(&app, &b, "/login", "/login/code", &[("identifier", "tai@example.com")]).await;
        assert_eq!(resp.status(), 200);
        let id = given_up(&app, "tai@example.com").await;
        // The code expired: nothing to send as it is, and a sign-in code is not re-issued to a
        // person who is no longer waiting for it.
        app.provider.clock.advance(app.provider.settings.accounts.login_code_ttl + 1);
        let api = Api { app: &app, token: admin_again(&app).await };
        let before = outbox(&app, "tai@example.com").await;
        let (status, body) = api.post(&format!("/mail/{id}/requeue"), json!({})).await;
        problem(status, &body, StatusCode::CONFLICT, "expired sign-in code");
        assert!(body["detail"].as_str().unwrap().contains("requested again by the person"), "{body}");
        assert_eq!(outbox(&app, "tai@example.com").await, before, "nothing changed");

        // A notice (no code) whose body was blanked cannot be rebuilt: 409.
        let notice = portcullis::store::NewMail {
            recipient: "tai@example.com".into(),
            subject: "Notice".into(),
            body_text: "hello".into(),
            body_html: "<p>hello</p>".into(),
            channel: portcullis::store::Channel::Email,
            expires_at: None,
        };
        let now = app.provider.clock.now();
        let nid = app.provider.store.enqueue_mail(&notice, now).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !outbox(&app, "tai@example.com").await.iter().any(|m| m.id == nid && m.failed_at.is_some()) {
            assert!(Instant::now() < deadline, "the notice was never given up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        app.provider.store.scrub_mail_bodies(app.provider.clock.now() + 1).await.unwrap();
        let (status, body) = api.post(&format!("/mail/{nid}/requeue"), json!({})).await;
        problem(status, &body, StatusCode::CONFLICT, "blanked notice");
    }

    async fn the_mail_page_requeues_with_csrf_and_origin_checked(app: TestApp) {
        const ADMIN: &str = "mail-page-admin@example.com";
        let port = free_port();
        let app = app_giving_up(app.backend, port).await;
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let user = app.create_user("uma@example.com", PASSWORD).await;
        api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        let id = given_up(&app, "uma@example.com").await;

        let b = browser();
        let (status, _) = app.submit_login(&b, "/login", ADMIN, PASSWORD).await;
        assert_eq!(status, 303);
        let (status, html) = page(&b, &app.url("/admin/mail")).await;
        assert_eq!(status, 200);
        assert!(html.contains(&format!("action=\"/admin/mail/{id}/requeue\"")), "{html}");
        let csrf = input_value(&html, "csrf").expect("csrf");
        let action = app.url(&format!("/admin/mail/{id}/requeue"));
        let still_given_up = || async {
            outbox(&app, "uma@example.com").await.pop().unwrap().failed_at.is_some()
        };

        // A forged token: 403, nothing changes.
        let resp = b.post(&action).form(&[("csrf", "forged")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(still_given_up().await);
        // A valid token posted from another site: 403, nothing changes.
        let resp = b.post(&action).header("origin", "https://evil.example").form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(still_given_up().await);
        // Unknown id: 404 page.
        let resp = b.post(app.url("/admin/mail/nope/requeue")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        // Not an administrator: 403.
        let plain = browser();
        app.submit_login(&plain, "/login", "uma@example.com", PASSWORD).await;
        let (status, _) = page(&plain, &app.url("/admin/mail")).await;
        assert_eq!(status, 403);

        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let resp = b.post(&action).header("origin", app.issuer.as_str()).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("The message is queued again."));
        sink.wait_for("uma@example.com", 1).await;
        sent(&app, "uma@example.com", &id).await;
        // Again: it is sent, so 409 with the reason on the page.
        let resp = b.post(&action).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 409);
        assert!(resp.text().await.unwrap().contains("not given up"));
    }

    async fn the_cli_lists_and_requeues_given_up_mail(app: TestApp) {
        let port = free_port();
        let app = app_giving_up(app.backend, port).await;
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let user = app.create_user("vic@example.com", PASSWORD).await;
        api.post(&format!("/users/{}/password-reset", user.id), json!({})).await;
        let id = given_up(&app, "vic@example.com").await;

        let out = cli_on(&app, &["mail", "list", "--given-up", "--json"]);
        assert!(out.status.success(), "{}", err_line(&out));
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(list.as_array().unwrap().iter().any(|m| m["id"] == id.as_str() && m["purpose"] == "password_reset"), "{list}");
        // Bad input: one line, non-zero exit, nothing changed.
        let out = cli_on(&app, &["mail", "list"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(err_line(&out).lines().count(), 1, "{}", err_line(&out));
        let out = cli_on(&app, &["mail", "requeue", "nope"]);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(err_line(&out), "portcullis: no message with id nope");

        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let out = cli_on(&app, &["mail", "requeue", &id]);
        assert!(out.status.success(), "{}", err_line(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{id} queued again"));
        // The server's worker delivers it at its next poll.
        sink.wait_for("vic@example.com", 1).await;
        sent(&app, "vic@example.com", &id).await;
        let out = cli_on(&app, &["mail", "requeue", &id]);
        assert_eq!(out.status.code(), Some(1));
        assert!(err_line(&out).starts_with("portcullis: the message is not given up"), "{}", err_line(&out));
        assert_eq!(err_line(&out).lines().count(), 1);
        // Audited with actor `cli`.
        let (_, audit) = api.get("/audit?action=admin.mail.requeue").await;
        assert_eq!(audit["items"][0]["actor"], "cli", "{audit}");
    }
}
