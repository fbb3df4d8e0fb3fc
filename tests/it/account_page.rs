//! Issue 4: the account page (`/account`) through real HTTP, on both backends.

use crate::accounts::{NEW_PASSWORD, link_in, outbox, page, post_form, signed_in};
use crate::backend_tests;
use crate::helpers::*;

/// A browser signed in as `email` (password `PASSWORD`).
async fn signed_in_browser(app: &TestApp, email: &str) -> reqwest::Client {
    let b = browser();
    let (status, _) = app.submit_login(&b, "/login", email, PASSWORD).await;
    assert_eq!(status, 303);
    b
}

backend_tests! {
    async fn account_page_requires_a_session(app: TestApp) {
        let resp = browser().get(app.url("/account")).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/login");
        // A POST without a session changes nothing.
        let resp = browser().post(app.url("/account/delete")).form(&[("password", PASSWORD), ("csrf", "x")]).send().await.unwrap();
        assert_eq!(resp.status(), 303);
    }

    async fn profile_edit(app: TestApp) {
        let user = app.create_user("lee@example.com", PASSWORD).await;
        let b = signed_in_browser(&app, "lee@example.com").await;
        let resp = post_form(&app, &b, "/account", "/account/profile", &[
            ("name", "Lee Park"), ("given_name", "Lee"), ("family_name", "Park"),
            ("picture", "https://img.example.com/lee.png"), ("locale", "ko-KR"),
        ]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/account?done=profile");
        let u = app.provider.store.find_user(&user.id).await.unwrap().unwrap();
        assert_eq!(u.name.as_deref(), Some("Lee Park"));
        assert_eq!(u.family_name.as_deref(), Some("Park"));
        assert_eq!(u.locale.as_deref(), Some("ko-KR"));
        for (field, bad) in [("picture", "javascript:alert(1)"), ("locale", "not a tag!")] {
            let resp = post_form(&app, &b, "/account", "/account/profile", &[(field, bad)]).await;
            assert_eq!(resp.status(), 400, "{field}");
        }
        let (_, html) = page(&b, &app.url("/account")).await;
        assert!(html.contains("Lee Park"));
        // CSRF is required.
        let resp = b.post(app.url("/account/profile")).form(&[("name", "X"), ("csrf", "forged")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
    }

    async fn password_change_ends_other_sessions(app: TestApp) {
        app.create_user("max@example.com", PASSWORD).await;
        let other = signed_in_browser(&app, "max@example.com").await;
        let b = signed_in_browser(&app, "max@example.com").await;
        let resp = post_form(&app, &b, "/account", "/account/password", &[
            ("current_password", "not my password"), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/account", "/account/password", &[
            ("current_password", PASSWORD), ("password", "12345678"), ("password_confirm", "12345678"),
        ]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/account", "/account/password", &[
            ("current_password", PASSWORD), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 303);
        assert!(!signed_in(&app, &other).await, "other session ended");
        assert!(signed_in(&app, &b).await, "this browser stays signed in");
        let (status, _) = app.submit_login(&browser(), "/login", "max@example.com", NEW_PASSWORD).await;
        assert_eq!(status, 303);
        let mails = outbox(&app, "max@example.com").await;
        assert_eq!(mails.last().unwrap().subject, "Your password was changed");
    }

    async fn sessions_list_and_sign_out_one(app: TestApp) {
        app.create_user("ned@example.com", PASSWORD).await;
        app.create_user("oz@example.com", PASSWORD).await;
        let other = signed_in_browser(&app, "ned@example.com").await;
        let stranger = signed_in_browser(&app, "oz@example.com").await;
        let b = signed_in_browser(&app, "ned@example.com").await;
        let (_, html) = page(&b, &app.url("/account")).await;
        assert!(html.contains("This browser"));
        let sid = input_value(&html, "sid").expect("another session listed");
        // Someone else cannot end it.
        let resp = post_form(&app, &stranger, "/account", "/account/sessions/end", &[("sid", &sid)]).await;
        assert_eq!(resp.status(), 303);
        assert!(signed_in(&app, &other).await);
        let resp = post_form(&app, &b, "/account", "/account/sessions/end", &[("sid", &sid)]).await;
        assert_eq!(resp.status(), 303);
        assert!(!signed_in(&app, &other).await);
        assert!(signed_in(&app, &b).await);
    }

    async fn email_change_needs_the_new_address_confirmed(app: TestApp) {
        let user = app.create_user("pat@example.com", PASSWORD).await;
        app.create_user("taken@example.com", PASSWORD).await;
        let b = signed_in_browser(&app, "pat@example.com").await;
        let resp = post_form(&app, &b, "/account", "/account/email", &[("new_email", "pat.new@example.com"), ("password", "wrong password")]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/account", "/account/email", &[("new_email", "Pat.New@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(resp.status(), 303);
        // Not changed yet.
        assert_eq!(app.provider.store.find_user(&user.id).await.unwrap().unwrap().email, "pat@example.com");
        // Mailed, and later stored, as typed; found by any form of it.
        let mails = outbox(&app, "Pat.New@example.com").await;
        assert_eq!(mails[0].subject, "Confirm your new e-mail address");
        let link = link_in(&mails[0].body_text, "/account/email/confirm");
        let (status, html) = page(&b, &link).await;
        assert_eq!(status, 200);
        let token = input_value(&html, "token").unwrap();
        let csrf = input_value(&html, "csrf").unwrap();
        let resp = b.post(app.url("/account/email/confirm")).form(&[("token", token.as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let u = app.provider.store.find_user(&user.id).await.unwrap().unwrap();
        assert_eq!(u.email, "Pat.New@example.com");
        assert!(u.email_verified);
        // The old address is told.
        let old = outbox(&app, "pat@example.com").await;
        assert_eq!(old.last().unwrap().subject, "The e-mail address of your account was changed");
        // Single use.
        let resp = b.post(app.url("/account/email/confirm")).form(&[("token", token.as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 400);

        // An address that another account holds cannot be taken over.
        let resp = post_form(&app, &b, "/account", "/account/email", &[("new_email", "taken@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(resp.status(), 303);
        let mails = outbox(&app, "taken@example.com").await;
        let link = link_in(&mails.last().unwrap().body_text, "/account/email/confirm");
        let token = query_of(&link).remove("token").unwrap();
        let resp = b.post(app.url("/account/email/confirm")).form(&[("token", token.as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(app.provider.store.find_user(&user.id).await.unwrap().unwrap().email, "Pat.New@example.com");
    }

    async fn consents_listed_and_revoked(app: TestApp) {
        let user = app.create_user("quinn@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        app.provider.store.save_consent(&user.id, &client.id, &["openid".into(), "email".into()], portcullis::now()).await.unwrap();
        let b = signed_in_browser(&app, "quinn@example.com").await;
        let (_, html) = page(&b, &app.url("/account")).await;
        assert!(html.contains("Test App"));
        let resp = post_form(&app, &b, "/account", "/account/consents/revoke", &[("client_id", &client.id)]).await;
        assert_eq!(resp.status(), 303);
        assert!(app.provider.store.list_consents(&user.id).await.unwrap().is_empty());
    }

    async fn delete_account_disables_then_purges(app: TestApp) {
        let user = app.create_user("ray@example.com", PASSWORD).await;
        let other = signed_in_browser(&app, "ray@example.com").await;
        let b = signed_in_browser(&app, "ray@example.com").await;
        let resp = post_form(&app, &b, "/account", "/account/delete", &[("password", "not it at all")]).await;
        assert_eq!(resp.status(), 400);
        assert!(signed_in(&app, &b).await);
        let resp = post_form(&app, &b, "/account", "/account/delete", &[("password", PASSWORD)]).await;
        assert_eq!(resp.status(), 200);
        assert!(!signed_in(&app, &b).await);
        assert!(!signed_in(&app, &other).await);
        let (status, _) = app.submit_login(&browser(), "/login", "ray@example.com", PASSWORD).await;
        assert_eq!(status, 200, "a deleted account cannot sign in");
        assert!(app.provider.store.find_user(&user.id).await.unwrap().is_none());
        // Within the grace period the row is kept and an administrator can restore it.
        let grace = app.provider.settings.accounts.deletion_grace_period;
        let now = portcullis::now();
        assert_eq!(app.provider.store.purge_deleted_users(now - grace).await.unwrap(), 0);
        assert!(app.provider.store.restore_user(&user.id, now).await.unwrap());
        let (status, _) = app.submit_login(&browser(), "/login", "ray@example.com", PASSWORD).await;
        assert_eq!(status, 303, "restored account signs in");
        let b = signed_in_browser(&app, "ray@example.com").await;
        let resp = post_form(&app, &b, "/account", "/account/delete", &[("password", PASSWORD)]).await;
        assert_eq!(resp.status(), 200);
        // After the grace period (on the server's clock) it is purged.
        app.provider.clock.advance(grace + 1);
        let later = app.provider.clock.now();
        assert_eq!(app.provider.store.purge_deleted_users(later - grace).await.unwrap(), 1);
    }
}
