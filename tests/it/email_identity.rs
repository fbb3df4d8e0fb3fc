//! E-mail identity (ASVS 6.2, RFC 8265 style): width, case and IDNA forms of one address are one
//! account, kept and mailed as typed; addresses mixing confusable scripts are refused; rows from
//! before the canonical column get it at start, and a collision among them does not stop it.

use portcullis::domain::Email;
use portcullis::store::UserFilter;
use serde_json::{Value, json};

use crate::accounts::{exec_sql, outbox, post_form};
use crate::admin_api::{Api, admin_token};
use crate::backend_tests;
use crate::helpers::*;

/// `ａｌｉｃｅ@example.com`, in full-width letters.
const FULL_WIDTH_ALICE: &str = "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}@example.com";
/// `аlice@example.com` with a Cyrillic `а` (U+0430) first.
const CYRILLIC_ALICE: &str = "\u{0430}lice@example.com";

async fn all_users(app: &TestApp) -> Vec<portcullis::store::AdminUser> {
    app.provider
        .store
        .list_users(&UserFilter {
            limit: 500,
            ..UserFilter::default()
        })
        .await
        .unwrap()
}

async fn sign_up(app: &TestApp, email: &str) -> (u16, String) {
    sign_up_in(app, &browser(), email).await
}

async fn sign_up_in(app: &TestApp, browser: &reqwest::Client, email: &str) -> (u16, String) {
    let resp = post_form(
        app,
        browser,
        "/signup",
        "/signup",
        &[
            ("name", "Ann Example"),
            ("email", email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The `sub` of the ID token a code flow signed in as `email` ends with.
async fn sub_after_login(app: &TestApp, client: &TestClient, email: &str) -> String {
    let tokens = app.login_and_exchange(client, email, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sub"].as_str().unwrap().to_owned()
}

backend_tests! {
    async fn a_full_width_sign_up_is_a_duplicate_of_the_existing_account(app: TestApp) {
        let alice = app.create_user("alice@example.com", PASSWORD).await;
        // A duplicate answers exactly like a new account (no enumeration)...
        let browser = browser();
        let (dup_status, dup_page) = sign_up_in(&app, &browser, FULL_WIDTH_ALICE).await;
        let (new_status, new_page) = sign_up_in(&app, &browser, "bob@example.com").await;
        assert_eq!((dup_status, new_status), (200, 200));
        assert_eq!(
            dup_page.replace(FULL_WIDTH_ALICE, "EMAIL"),
            new_page.replace("bob@example.com", "EMAIL")
        );
        // ...but makes no second account: alice and bob only.
        let users = all_users(&app).await;
        assert_eq!(users.len(), 2, "{users:?}");
        let found = app.provider.store.find_user_by_email(&Email::parse(FULL_WIDTH_ALICE).unwrap())
            .await.unwrap().unwrap();
        assert_eq!(found.id, alice.id);
        // The owner is told, at the address the account has; nothing goes to the variant.
        let mails = outbox(&app, "alice@example.com").await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "Someone tried to create an account with your address");
        assert!(outbox(&app, FULL_WIDTH_ALICE).await.is_empty());
    }

    async fn width_case_and_idna_forms_sign_in_to_one_account(app: TestApp) {
        let client = app.confidential_client().await;
        let alice = app.create_user("alice@example.com", PASSWORD).await;
        // Stored as typed: a Unicode domain.
        let anna = app.create_user("Anna@b\u{FC}cher.example", PASSWORD).await;
        assert_eq!(anna.email, "Anna@b\u{FC}cher.example", "kept as typed");
        for form in [FULL_WIDTH_ALICE, "ALICE@\u{FF25}XAMPLE.COM"] {
            assert_eq!(sub_after_login(&app, &client, form).await, alice.id, "{form}");
        }
        for form in ["anna@xn--bcher-kva.example", "ANNA@B\u{DC}CHER.EXAMPLE"] {
            assert_eq!(sub_after_login(&app, &client, form).await, anna.id, "{form}");
        }
        // The punycode form cannot register a second account either; the owner is told.
        let (status, _) = sign_up(&app, "anna@xn--bcher-kva.example").await;
        assert_eq!(status, 200);
        assert_eq!(all_users(&app).await.len(), 2);
        // A password reset asked for with another form reaches the account's own address.
        let resp = post_form(&app, &browser(), "/forgot-password", "/forgot-password",
            &[("email", "anna@XN--BCHER-KVA.example")]).await;
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "Anna@b\u{FC}cher.example").await;
        let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects.len(), 2, "{subjects:?}");
        assert_eq!(subjects[0], "Someone tried to create an account with your address");
        assert!(outbox(&app, "anna@xn--bcher-kva.example").await.is_empty());
        assert!(outbox(&app, "anna@XN--BCHER-KVA.example").await.is_empty());
    }

    async fn confusable_mixed_script_addresses_are_refused(app: TestApp) {
        // Sign-up: a message beside the field, no account, no mail.
        let (status, html) = sign_up(&app, CYRILLIC_ALICE).await;
        assert_eq!(status, 400);
        assert!(html.contains("mixes letters of different scripts"), "{html}");
        assert!(all_users(&app).await.is_empty());
        assert!(outbox(&app, CYRILLIC_ALICE).await.is_empty());
        // The same in a domain label.
        let (status, _) = sign_up(&app, "alice@ex\u{0430}mple.com").await;
        assert_eq!(status, 400);

        // Admin API: 422 on the field, nothing written.
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let before = all_users(&app).await.len();
        let (status, body) = api.post("/users", json!({"email": CYRILLIC_ALICE})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], "email");
        let (status, user) = api.post("/users", json!({"email": "carol@example.com"})).await;
        assert_eq!(status, 201, "{user}");
        let id = user["id"].as_str().unwrap();
        let (status, body) = api.patch(&format!("/users/{id}"), json!({"email": "c\u{0430}rol@example.com"})).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["field"], "email");
        // A width variant of another account's address is that account's: a conflict.
        let (status, _) = api.post("/users", json!({"email": "\u{FF23}AROL@example.com"})).await;
        assert_eq!(status, 409);
        assert_eq!(all_users(&app).await.len(), before + 1);
        assert_eq!(app.provider.store.find_user(id).await.unwrap().unwrap().email, "carol@example.com");

        // CLI: one line, exit 2, nothing written.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["user", "create", "--email", CYRILLIC_ALICE, "--password", "long enough pw"])
            .env("PORTCULLIS_DATABASE_URL", app.provider.settings.database_url.expose())
            .env("PORTCULLIS_KEYS_DIR", &app.provider.settings.keys_dir)
            .env("PORTCULLIS_LOG_LEVEL", "error")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("mixes letters of different scripts"), "{err}");
        assert_eq!(all_users(&app).await.len(), before + 1);
    }

    async fn old_rows_get_their_canonical_form_and_a_collision_does_not_stop_the_start(app: TestApp) {
        // Two accounts made before the canonical column, by the old rules (lower case, NFC):
        // canonically one address. And one that only needs filling in.
        exec_sql(&app, &format!(
            "INSERT INTO users (id, email, email_verified, created_at, updated_at) VALUES \
             ('old-1', 'alice@example.com', TRUE, 100, 100), \
             ('old-2', '{FULL_WIDTH_ALICE}', TRUE, 200, 200), \
             ('old-3', 'dora@b\u{FC}cher.example', TRUE, 300, 300)"
        )).await;
        assert!(app.provider.store.find_user_by_email(&Email::parse("alice@example.com").unwrap())
            .await.unwrap().is_none(), "not filled in yet");
        // What every start (server or CLI) does after the migrations: no error for the collision.
        let store = portcullis::startup::open_store(&app.provider.settings).await.expect("starts");
        let issues = store.backfill_email_canonical().await.unwrap();
        assert_eq!(
            issues,
            vec![portcullis::store::EmailBackfillIssue::Duplicate {
                user_id: "old-2".into(),
                holder: "old-1".into()
            }],
            "still reported on a later start"
        );
        store.close().await;
        // The older account keeps the address, by any form of it.
        let found = app.provider.store.find_user_by_email(&Email::parse(FULL_WIDTH_ALICE).unwrap())
            .await.unwrap().unwrap();
        assert_eq!(found.id, "old-1");
        let dora = app.provider.store.find_user_by_email(&Email::parse("DORA@xn--bcher-kva.example").unwrap())
            .await.unwrap().unwrap();
        assert_eq!(dora.id, "old-3");
        // And a new sign-up cannot add a third form of it.
        let (status, _) = sign_up(&app, "Alice@Example.com").await;
        assert_eq!(status, 200);
        assert_eq!(all_users(&app).await.len(), 3);
    }
}
