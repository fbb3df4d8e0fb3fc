//! Issue 10: two-step sign-in with an authenticator app (TOTP, RFC 6238) and recovery codes,
//! through the real pages; codes computed here with `totp-rs` from the key the set-up page
//! shows, at the server's (injected) clock. `amr`/`acr` checked in ID tokens verified by the
//! `openidconnect` relying-party library.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, TokenResponse as _,
};
use portcullis::store::{AuditQuery, AuditRecord};
use reqwest::header::LOCATION;

use crate::backend_tests;
use crate::helpers::*;

pub(crate) const EMAIL: &str = "mia@example.com";
const WRONG: &str = "That code is wrong. Enter the 6-digit code your authenticator app shows now.";
const REUSED: &str =
    "That code was already used. Wait for your authenticator app to show the next one.";
const WRONG_RECOVERY: &str = "That recovery code is wrong or was already used.";

/// The code of time step `step` for the base32 key `secret` (RFC 6238: SHA-1, 6 digits, 30 s).
pub(crate) fn code(secret: &str, step: i64) -> String {
    let key = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("base32 key");
    let totp =
        totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 0, 30, key, None, String::new());
    totp.generate(u64::try_from(step * 30).expect("positive"))
}

/// Move the server's clock to the first second of a time step, so that the steps the test
/// computes stay the server's for the next 29 seconds whatever the wall clock does.
pub(crate) fn align(app: &TestApp) -> i64 {
    let now = app.provider.clock.now();
    app.provider.clock.advance(30 - now.rem_euclid(30) + 1);
    app.provider.clock.now().div_euclid(30)
}

/// A six-digit code that is none of the codes of `steps`.
fn wrong_code(secret: &str, steps: std::ops::RangeInclusive<i64>) -> String {
    let valid: Vec<String> = steps.map(|s| code(secret, s)).collect();
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| !valid.iter().any(|v| v == c))
        .unwrap()
        .to_owned()
}

fn text_of(html: &str, selector: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(selector).unwrap();
    doc.select(&sel)
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .collect()
}

async fn csrf_of(b: &reqwest::Client, url: String) -> String {
    let page = b.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    input_value(&page.text().await.unwrap(), "csrf").expect("csrf field")
}

/// Sign in with the password in `b`, then set up an authenticator app from the account page
/// (checking a wrong confirmation code is refused). Returns the key and the recovery codes.
pub(crate) async fn enrol(app: &TestApp, b: &reqwest::Client) -> (String, Vec<String>) {
    let (status, to) = app.submit_login(b, "/login", EMAIL, PASSWORD).await;
    assert_eq!((status, to.as_deref()), (303, Some("/")));
    let account = b
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("href=\"/account/mfa/totp\""),
        "set-up is linked from /account"
    );
    let page = b.get(app.url("/account/mfa/totp")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    let secret = text_of(&html, "#totp-secret").remove(0);
    assert_eq!(secret.len(), 32, "160-bit key in base32");
    let doc = scraper::Html::parse_document(&html);
    let img = doc
        .select(&scraper::Selector::parse("img").unwrap())
        .next()
        .expect("QR code");
    assert!(
        img.value()
            .attr("src")
            .unwrap()
            .starts_with("data:image/svg+xml;base64,"),
        "rendered here as SVG"
    );
    assert!(img.value().attr("alt").is_some_and(|a| !a.is_empty()));
    let uri = text_of(&html, "#totp-uri").remove(0);
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={secret}")),
        "{uri}"
    );
    let csrf = input_value(&html, "csrf").unwrap();
    // A reload shows the same key (it may already be scanned).
    let again = b
        .get(app.url("/account/mfa/totp"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&again, "#totp-secret").first(), Some(&secret));
    let step = align(app);
    let resp = b
        .post(app.url("/account/mfa/totp"))
        .form(&[
            ("code", wrong_code(&secret, step - 1..=step + 1).as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains(WRONG));
    let resp = b
        .post(app.url("/account/mfa/totp"))
        .form(&[
            ("code", code(&secret, step).as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let codes = text_of(&resp.text().await.unwrap(), "ul.codes code");
    assert_eq!(codes.len(), 10);
    // The key is never shown again.
    let resp = b.get(app.url("/account/mfa/totp")).send().await.unwrap();
    assert_eq!(
        (resp.status().as_u16(), location(&resp).as_str()),
        (303, "/account/mfa")
    );
    let manage = b
        .get(app.url("/account/mfa"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!manage.contains(&secret) && manage.contains("10 recovery codes left"));
    // The confirming step is used: the same code cannot sign in.
    (secret, codes)
}

/// Sign in with the password in a new browser; returns it and the second step's path.
async fn password_step(app: &TestApp, login_path: &str) -> (reqwest::Client, String) {
    let b = browser();
    let (status, to) = app.submit_login(&b, login_path, EMAIL, PASSWORD).await;
    assert_eq!(status, 303);
    let to = to.unwrap();
    assert!(to.starts_with("/login/mfa"), "{to}");
    // No session yet.
    let resp = b.get(app.url("/account")).send().await.unwrap();
    assert_eq!(location(&resp), "/login");
    (b, to)
}

/// Submit the second step with `field` = `value`: status, `Location`, body.
pub(crate) async fn second_step(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    field: &str,
    value: &str,
) -> (u16, Option<String>, String) {
    let page = b.get(app.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = input_value(&html, "csrf").unwrap();
    let rid = input_value(&html, "rid").unwrap_or_default();
    assert!(
        html.contains("name=\"code\""),
        "the code field is named code"
    );
    let resp = b
        .post(app.url("/login/mfa"))
        .form(&[
            (field, value),
            ("csrf", csrf.as_str()),
            ("rid", rid.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let loc = resp
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, loc, resp.text().await.unwrap())
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditRecord> {
    app.provider
        .store
        .query_audit(&AuditQuery {
            action: Some(action.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn failures(rows: &[AuditRecord], reason: &str) -> usize {
    let reason = format!("\"reason\":\"{reason}\"");
    rows.iter()
        .filter(|r| r.outcome == "failure" && r.details.contains(&reason))
        .count()
}

backend_tests! {
    async fn totp_sign_in_gives_mfa_amr_and_acr_to_the_relying_party(app: TestApp) {
        let user = app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &browser())
            .await.unwrap();
        let acr: Vec<&str> = metadata.acr_values_supported().unwrap().iter().map(|a| a.as_str()).collect();
        assert_eq!(acr, ["urn:portcullis:acr:pwd", "urn:portcullis:acr:mfa"]);
        let claims: Vec<&str> = metadata.claims_supported().unwrap().iter().map(|c| c.as_str()).collect();
        assert!(claims.contains(&"amr") && claims.contains(&"acr"));
        let rp = CoreClient::from_provider_metadata(metadata, ClientId::new(client.id.clone()), client.secret.clone().map(ClientSecret::new))
            .set_redirect_uri(RedirectUrl::new(client.redirect_uri.clone()).unwrap());
        let http = browser();
        // The relying party's whole flow; `second` completes the TOTP step when asked.
        let flow = |second: Option<String>| {
            let (rp, http, app, client) = (&rp, &http, &app, &client);
            async move {
                let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
                let (url, _, nonce) = rp.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
                    .set_pkce_challenge(challenge).url();
                let b = browser();
                let resp = b.get(url.as_str()).send().await.unwrap();
                let login = location(&resp);
                let (status, to) = app.submit_login(&b, &login, EMAIL, PASSWORD).await;
                assert_eq!(status, 303);
                let mut back = to.unwrap();
                if let Some(code) = second {
                    assert!(back.starts_with("/login/mfa?rid="), "{back}");
                    let (status, to, _) = second_step(app, &b, &back, "code", &code).await;
                    assert_eq!(status, 303);
                    back = to.unwrap();
                }
                assert!(back.starts_with(&client.redirect_uri), "{back}");
                let tokens = rp.exchange_code(AuthorizationCode::new(query_of(&back)["code"].clone())).unwrap()
                    .set_pkce_verifier(verifier).request_async(http).await.expect("code exchange");
                tokens.id_token().unwrap().claims(&rp.id_token_verifier(), &nonce).expect("ID token verifies").clone()
            }
        };
        let before = flow(None).await;
        let amr: Vec<&str> = before.auth_method_refs().unwrap().iter().map(|a| a.as_str()).collect();
        assert_eq!(amr, ["pwd"]);
        assert_eq!(before.auth_context_ref().unwrap().as_str(), "urn:portcullis:acr:pwd");

        let (secret, _) = enrol(&app, &browser()).await;
        let step = align(&app);
        let after = flow(Some(code(&secret, step + 1))).await;
        let amr: Vec<&str> = after.auth_method_refs().unwrap().iter().map(|a| a.as_str()).collect();
        assert_eq!(amr, ["pwd", "otp", "mfa"]);
        assert_eq!(after.auth_context_ref().unwrap().as_str(), "urn:portcullis:acr:mfa");
        assert_eq!(after.subject().as_str(), user.id);
        // Audited: the set-up (one wrong code, then success) and the two-factor sign-in.
        let enable = audit(&app, "mfa.totp.enable").await;
        assert_eq!(enable.iter().filter(|r| r.outcome == "success").count(), 1);
        assert_eq!(failures(&enable, "wrong_code"), 1);
        let logins = audit(&app, "login").await;
        assert!(logins.iter().any(|r| r.outcome == "success" && r.details.contains("pwd otp mfa")));
    }

    async fn wrong_replayed_and_skewed_codes_are_refused(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let (secret, _) = enrol(&app, &browser()).await;
        // Two steps past the one the set-up used, so that one step behind is still unused.
        align(&app);
        let step = align(&app);
        let (b, path) = password_step(&app, "/login").await;
        let (status, _, body) = second_step(&app, &b, &path, "code", &wrong_code(&secret, step - 1..=step + 1)).await;
        assert_eq!(status, 400);
        assert!(body.contains(WRONG) && body.contains("aria-invalid=\"true\""));
        // Two steps off: refused.
        let (status, _, body) = second_step(&app, &b, &path, "code", &code(&secret, step - 2)).await;
        assert_eq!(status, 400);
        assert!(body.contains(WRONG));
        let resp = b.get(app.url("/account")).send().await.unwrap();
        assert_eq!(location(&resp), "/login", "no session after wrong codes");
        // One step behind: accepted.
        let (status, to, _) = second_step(&app, &b, &path, "code", &code(&secret, step - 1)).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
        assert_eq!(b.get(app.url("/account")).send().await.unwrap().status(), 200);
        // The same code again, in another browser: refused.
        let (b2, path2) = password_step(&app, "/login").await;
        let (status, _, body) = second_step(&app, &b2, &path2, "code", &code(&secret, step - 1)).await;
        assert_eq!(status, 400);
        assert!(body.contains(REUSED), "{body}");
        // Two steps ahead: refused; one ahead: accepted.
        let (status, _, body) = second_step(&app, &b2, &path2, "code", &code(&secret, step + 2)).await;
        assert_eq!(status, 400);
        assert!(body.contains(WRONG));
        let (status, to, _) = second_step(&app, &b2, &path2, "code", &code(&secret, step + 1)).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
        // The current step is older than the newest used: refused too (no code twice, RFC 6238 §5.2).
        let (b3, path3) = password_step(&app, "/login").await;
        let (status, _, body) = second_step(&app, &b3, &path3, "code", &code(&secret, step)).await;
        assert_eq!(status, 400);
        assert!(body.contains(REUSED));
        let rows = audit(&app, "login").await;
        assert_eq!(failures(&rows, "wrong_code"), 3);
        assert_eq!(failures(&rows, "reused_code"), 2);
        // A waiting sign-in expires with the login-request lifetime.
        let csrf = csrf_of(&b3, app.url(&path3)).await;
        app.provider.clock.advance(901);
        let resp = b3.post(app.url("/login/mfa"))
            .form(&[("code", code(&secret, step + 31).as_str()), ("csrf", csrf.as_str())])
            .send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("Sign-in expired"));
    }

    async fn recovery_codes_are_single_use_and_regenerable(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let b = browser();
        let (_, codes) = enrol(&app, &b).await;
        let (b1, path) = password_step(&app, "/login").await;
        let (status, to, _) = second_step(&app, &b1, &path, "recovery_code", &codes[0].to_uppercase()).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
        let (b2, path) = password_step(&app, "/login").await;
        let (status, _, body) = second_step(&app, &b2, &path, "recovery_code", &codes[0]).await;
        assert_eq!(status, 400);
        assert!(body.contains(WRONG_RECOVERY));
        let used = audit(&app, "mfa.recovery.use").await;
        assert_eq!(used.len(), 1);
        assert!(used[0].details.contains("\"remaining\":9"), "{}", used[0].details);
        assert_eq!(failures(&audit(&app, "login").await, "wrong_recovery_code"), 1);
        let manage = b.get(app.url("/account/mfa")).send().await.unwrap().text().await.unwrap();
        assert!(manage.contains("9 recovery codes left"));
        // New codes need the password; the old ones stop working.
        let csrf = csrf_of(&b, app.url("/account/mfa")).await;
        let resp = b.post(app.url("/account/mfa/recovery")).form(&[("password", "wrong password!"), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("The password is incorrect."));
        let resp = b.post(app.url("/account/mfa/recovery")).form(&[("password", PASSWORD), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let fresh = text_of(&resp.text().await.unwrap(), "ul.codes code");
        assert_eq!(fresh.len(), 10);
        assert_eq!(audit(&app, "mfa.recovery.regenerate").await.len(), 1);
        let (status, _, _) = second_step(&app, &b2, &path, "recovery_code", &codes[1]).await;
        assert_eq!(status, 400);
        let (status, to, _) = second_step(&app, &b2, &path, "recovery_code", &fresh[3]).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
        // Removing the app (with the password) ends the second step.
        let csrf = csrf_of(&b, app.url("/account/mfa")).await;
        let resp = b.post(app.url("/account/mfa/remove")).form(&[("password", PASSWORD), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(location(&resp), "/account/mfa?done=removed");
        assert_eq!(audit(&app, "mfa.totp.remove").await.len(), 1);
        let (status, to) = app.submit_login(&browser(), "/login", EMAIL, PASSWORD).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
    }

    async fn the_second_step_is_a_protected_form(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let (secret, _) = enrol(&app, &browser()).await;
        let step = align(&app);
        // Without a waiting sign-in there is no second step.
        let resp = browser().get(app.url("/login/mfa")).send().await.unwrap();
        assert_eq!(location(&resp), "/login");
        let (b, path) = password_step(&app, "/login").await;
        // A forged form: no CSRF token, or another site's Origin.
        let resp = b.post(app.url("/login/mfa")).form(&[("code", code(&secret, step).as_str()), ("csrf", "x")]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        let csrf = csrf_of(&b, app.url(&path)).await;
        let resp = b.post(app.url("/login/mfa")).header("Origin", "http://evil.example")
            .form(&[("code", code(&secret, step).as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        // Neither used the code.
        let (status, to, _) = second_step(&app, &b, &path, "code", &code(&secret, step)).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_throttled_per_account() {
    let app = TestApp::start_with(
        Backend::Sqlite,
        &[
            ("PORTCULLIS_RATE_LIMIT__ACCOUNT_BURST", "5"),
            ("PORTCULLIS_RATE_LIMIT__IP_BURST", "1000"),
        ],
    )
    .await;
    app.create_user(EMAIL, PASSWORD).await;
    // Set-up counts too: one wrong and one right code.
    let (secret, _) = enrol(&app, &browser()).await;
    let step = align(&app);
    let (b, path) = password_step(&app, "/login").await;
    let wrong = wrong_code(&secret, step - 1..=step + 1);
    for _ in 0..3 {
        let (status, _, _) = second_step(&app, &b, &path, "code", &wrong).await;
        assert_eq!(status, 400);
    }
    let page = b
        .get(app.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = input_value(&page, "csrf").unwrap();
    let resp = b
        .post(app.url("/login/mfa"))
        .form(&[
            ("code", code(&secret, step).as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429, "even the right code waits");
    assert!(resp.headers().contains_key("retry-after"));
    let limited = audit(&app, "rate_limited").await;
    assert!(
        limited
            .iter()
            .any(|r| r.details.contains("\"scope\":\"account\"") && r.details.contains("verify"))
    );
    app.stop().await;
}
