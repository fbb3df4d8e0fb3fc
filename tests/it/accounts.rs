//! Issue 4: self-service accounts through the real pages. Mail is captured by a real SMTP server
//! process (`tests/support/smtp_sink.py`, Python's aiosmtpd) or read from the outbox.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portcullis::store::OutboxMail;

use crate::backend_tests;
use crate::helpers::*;

pub(crate) const NEW_PASSWORD: &str = "a brand new secret 42";

/// A real SMTP server on 127.0.0.1:`port`, writing each message into `dir`.
pub(crate) struct SmtpSink {
    child: Child,
    dir: PathBuf,
}

impl SmtpSink {
    pub(crate) fn start(port: u16, dir: &Path) -> Self {
        Self::start_slow(port, dir, 0.0)
    }

    /// Like `start`, but each message is acknowledged only `delay` seconds after its data.
    pub(crate) fn start_slow(port: u16, dir: &Path, delay: f64) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir)
            .arg(delay.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "start python3 smtp_sink.py (is aiosmtpd installed? see tests/setup.d/accounts.sh)",
            );
        // It prints "ready" once it listens.
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("sink output");
        assert_eq!(line.trim(), "ready", "SMTP sink did not start");
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// How many messages to `to` arrived so far.
    pub(crate) fn count_to(&self, to: &str) -> usize {
        std::fs::read_dir(&self.dir)
            .expect("sink dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter(|p| {
                std::fs::read_to_string(p)
                    .expect("message")
                    .contains(&format!("To: {to}\r\n"))
            })
            .count()
    }

    /// Wait (up to 30 s) until a message to `to` arrives; return the newest such message.
    pub(crate) async fn wait_for(&self, to: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(&self.dir)
                .expect("sink dir")
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .map(|p| {
                    let text = std::fs::read_to_string(&p).expect("message");
                    (p, text)
                })
                .filter(|(_, text)| text.contains(&format!("To: {to}")))
                .collect();
            found.sort();
            if found.len() >= count {
                return found.pop().expect("message").1;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} within 30 s (have {})",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Mail settings that deliver to an SMTP server on `port`, retrying quickly.
pub(crate) fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("PORTCULLIS_MAIL__TRANSPORT", "smtp".into()),
        (
            "PORTCULLIS_MAIL__SMTP_URL",
            format!("smtp://127.0.0.1:{port}"),
        ),
        ("PORTCULLIS_MAIL__RETRY_BASE", "1".into()),
        ("PORTCULLIS_MAIL__POLL_INTERVAL", "1".into()),
    ]
}

pub(crate) async fn start_with(backend: Backend, env: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::start_with(backend, &pairs).await
}

/// Decode a quoted-printable mail body enough to read links and codes (soft line breaks, =3D).
fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The 6-digit code in a verification mail.
fn code_in(mail: &str) -> String {
    let text = unfold(mail);
    let after = text
        .split("verification page")
        .nth(1)
        .expect("code paragraph");
    after
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("6-digit code")
        .to_owned()
}

/// The first link to `path` in a mail, with its token.
pub(crate) fn link_in(mail: &str, path: &str) -> String {
    let text = unfold(mail);
    let start = text.find(path).expect("link in mail");
    let begin = text[..start].rfind("http").expect("absolute link");
    text[begin..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .expect("link")
        .to_owned()
}

pub(crate) async fn page(browser: &reqwest::Client, url: &str) -> (u16, String) {
    let resp = browser.get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Open the form at `get_path` (for its CSRF token), then post `fields` to `post_path`.
pub(crate) async fn post_form(
    app: &TestApp,
    browser: &reqwest::Client,
    get_path: &str,
    post_path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (status, html) = page(browser, &app.url(get_path)).await;
    assert_eq!(status, 200, "GET {get_path}");
    let csrf = input_value(&html, "csrf").expect("csrf field");
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    browser
        .post(app.url(post_path))
        .form(&form)
        .send()
        .await
        .expect("POST")
}

pub(crate) async fn sign_up(
    app: &TestApp,
    browser: &reqwest::Client,
    email: &str,
    password: &str,
    rid: &str,
) -> (u16, String) {
    let get = if rid.is_empty() {
        "/signup".to_owned()
    } else {
        format!("/signup?rid={rid}")
    };
    let resp = post_form(
        app,
        browser,
        &get,
        "/signup",
        &[
            ("name", "Ann Example"),
            ("email", email),
            ("password", password),
            ("password_confirm", password),
            ("rid", rid),
        ],
    )
    .await;
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The outbox rows for `to`, newest last.
pub(crate) async fn outbox(app: &TestApp, to: &str) -> Vec<OutboxMail> {
    app.provider.store.mail_for(to).await.expect("outbox")
}

/// Payload of a JWT, unverified (the signature is checked by the code-flow suite).
fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Run one SQL statement against the test's database (to age rows: no sleeping past timers).
pub(crate) async fn exec_sql(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    let url = app.provider.settings.database_url.expose().to_owned();
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&url).await.expect("pg");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect("sql");
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect("sql");
    }
}

/// Whether this browser holds a live session (`/login` without a request sends it home).
pub(crate) async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let resp = browser.get(app.url("/login")).send().await.expect("GET");
    resp.status() == 303
}

backend_tests! {
    async fn signup_then_code_verification_then_oidc_flow(app: TestApp) {
        let port = free_port();
        let sink_dir = app.dir.path().join("sink");
        let sink = SmtpSink::start(port, &sink_dir);
        let app = start_with(app.backend, &smtp_env(port)).await;
        let client = app.confidential_client().await;
        let browser = browser();
        // The relying party sends the person to /authorize; they choose "Create an account".
        let (url, verifier, _, nonce) = app.authorize_url(&client, "openid email profile");
        let resp = browser.get(&url).send().await.expect("authorize");
        assert_eq!(resp.status(), 303);
        let rid = query_of(&location(&resp)).remove("rid").expect("rid");
        let (_, login_html) = page(&browser, &app.url(&format!("/login?rid={rid}"))).await;
        assert!(login_html.contains(&format!("/signup?rid={rid}")), "login links to sign-up");

        let (status, html) = sign_up(&app, &browser, "  Ann@Example.COM ", PASSWORD, &rid).await;
        assert_eq!(status, 200);
        assert!(html.contains("Confirm your e-mail address"));
        // Trimmed, kept as typed, and mailed there; any form of it signs in (below).
        assert_eq!(input_value(&html, "email").as_deref(), Some("Ann@Example.COM"));

        let mail = sink.wait_for("Ann@Example.COM", 1).await;
        assert!(mail.contains("Subject: Confirm your e-mail address"));
        assert!(mail.contains("text/plain") && mail.contains("text/html"), "both parts");
        let code = code_in(&mail);
        // Links come from the configured issuer.
        assert!(link_in(&mail, "/verify-email/confirm").starts_with(&app.issuer));

        // Before verification, the right password does not sign in: verification page instead.
        let login = format!("/login?rid={rid}");
        let (status, to) = app.submit_login(&browser, &login, "ann@example.com", PASSWORD).await;
        assert_eq!((status, to), (200, None));

        let resp = post_form(&app, &browser, &format!("/verify-email?rid={rid}"), "/verify-email", &[
            ("email", "ann@example.com"), ("code", &code), ("rid", &rid),
        ]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), format!("/login?rid={rid}"));

        // A code is single use.
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[
            ("email", "ann@example.com"), ("code", &code),
        ]).await;
        assert_eq!(resp.status(), 400);

        let (status, back) = app.submit_login(&browser, &login, "ann@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        let back = back.expect("redirect");
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        let code = query_of(&back).remove("code").expect("code");
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
        ]).await;
        assert_eq!(resp.status(), 200);
        let tokens: serde_json::Value = resp.json().await.expect("JSON");
        let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
        assert_eq!(claims["email"], "Ann@Example.COM", "the address as the person typed it");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["nonce"], nonce.as_str());
        let info: serde_json::Value = app.http.get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(info["email"], "Ann@Example.COM");
        assert_eq!(info["email_verified"], true);
    }

    async fn verification_by_link(app: TestApp) {
        let port = free_port();
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let app = start_with(app.backend, &smtp_env(port)).await;
        let browser = browser();
        let (status, _) = sign_up(&app, &browser, "bob@example.com", PASSWORD, "").await;
        assert_eq!(status, 200);
        let mail = sink.wait_for("bob@example.com", 1).await;
        let link = link_in(&mail, "/verify-email/confirm");

        // A wrong token is refused.
        let resp = post_form(&app, &browser, "/verify-email/confirm?token=nope", "/verify-email/confirm", &[
            ("token", "nope"),
        ]).await;
        assert_eq!(resp.status(), 400);

        // Opening the link only shows a button (mail scanners do not consume it).
        let (status, html) = page(&browser, &link).await;
        assert_eq!(status, 200);
        let token = input_value(&html, "token").expect("token field");
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("bob@example.com").unwrap()).await.unwrap().unwrap();
        assert!(!user.email_verified);
        let csrf = input_value(&html, "csrf").expect("csrf");
        let resp = browser.post(app.url("/verify-email/confirm"))
            .form(&[("token", token.as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("bob@example.com").unwrap()).await.unwrap().unwrap();
        assert!(user.email_verified);
        // Single use.
        let resp = browser.post(app.url("/verify-email/confirm"))
            .form(&[("token", token.as_str()), ("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        // Now the password signs in.
        let (status, to) = app.submit_login(&browser, "/login", "bob@example.com", PASSWORD).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
    }

    async fn verification_link_returns_to_the_waiting_authorization_request(app: TestApp) {
        let client = app.confidential_client().await;
        let here = browser();
        let (url, verifier, _, _) = app.authorize_url(&client, "openid email");
        let resp = here.get(&url).send().await.expect("authorize");
        assert_eq!(resp.status(), 303);
        let rid = query_of(&location(&resp)).remove("rid").expect("rid");
        let link_for = |to: &'static str| {
            let app = &app;
            async move {
                let mails = outbox(app, to).await;
                link_in(&mails.last().expect("verification mail").body_text, "/verify-email/confirm")
            }
        };
        let confirm = |b: reqwest::Client, link: String| {
            let app = &app;
            async move {
                let (status, html) = page(&b, &link).await;
                assert_eq!(status, 200);
                let token = input_value(&html, "token").expect("token field");
                let csrf = input_value(&html, "csrf").expect("csrf");
                b.post(app.url("/verify-email/confirm"))
                    .form(&[("token", token.as_str()), ("csrf", csrf.as_str())])
                    .send().await.expect("POST")
            }
        };

        // Opened in another browser: the address is confirmed, then the plain sign-in page
        // (that browser knows nothing of the request).
        let (status, _) = sign_up(&app, &here, "carol@example.com", PASSWORD, &rid).await;
        assert_eq!(status, 200);
        let elsewhere = browser();
        let resp = confirm(elsewhere.clone(), link_for("carol@example.com").await).await;
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert!(html.contains("E-mail address confirmed"), "{html}");
        assert!(!html.contains(&rid), "no request leaks to another browser");
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("carol@example.com").unwrap()).await.unwrap().unwrap().email_verified);

        // Opened in the browser that signed up from the application: back to the request.
        let (status, _) = sign_up(&app, &here, "dave@example.com", PASSWORD, &rid).await;
        assert_eq!(status, 200);
        let resp = confirm(here.clone(), link_for("dave@example.com").await).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), format!("/login?rid={rid}"));
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("dave@example.com").unwrap()).await.unwrap().unwrap().email_verified);
        // The link proves the address, not the password: signing in completes the request.
        let (status, back) = app
            .submit_login(&here, &format!("/login?rid={rid}"), "dave@example.com", PASSWORD)
            .await;
        assert_eq!(status, 303);
        let back = back.expect("redirect");
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        let code = query_of(&back).remove("code").expect("code");
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
        ]).await;
        assert_eq!(resp.status(), 200);

        // A request that is no longer waiting (here: already completed) is not resumed: the
        // plain page, even in the same browser.
        let (status, _) = sign_up(&app, &here, "erin@example.com", PASSWORD, &rid).await;
        assert_eq!(status, 200);
        let resp = confirm(here.clone(), link_for("erin@example.com").await).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.text().await.unwrap().contains("E-mail address confirmed"));
    }

    async fn signup_validation_and_duplicates(app: TestApp) {
        let browser = browser();
        // Policy: too short, common, equal to the e-mail, too long, mismatch.
        for (pw, confirm, needle) in [
            ("short", "short", "at least 8"),
            ("password123", "password123", "too common"),
            ("carol@example.com", "carol@example.com", "must not be your e-mail"),
            (&"x".repeat(129)[..], &"x".repeat(129)[..], "at most 128"),
            ("a fine password 9", "another one 9", "not the same"),
        ] {
            let resp = post_form(&app, &browser, "/signup", "/signup", &[
                ("email", "carol@example.com"), ("password", pw), ("password_confirm", confirm),
            ]).await;
            assert_eq!(resp.status(), 400, "{needle}");
            let html = resp.text().await.unwrap();
            assert!(html.contains(needle), "{needle}: {html}");
            assert!(html.contains("aria-invalid=\"true\""));
        }
        let resp = post_form(&app, &browser, "/signup", "/signup", &[
            ("email", "not an address"), ("password", PASSWORD), ("password_confirm", PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 400);
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("carol@example.com").unwrap()).await.unwrap().is_none());

        // Missing CSRF token: refused.
        let resp = browser.post(app.url("/signup")).form(&[
            ("email", "carol@example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD),
            ("csrf", "forged"),
        ]).send().await.unwrap();
        assert_eq!(resp.status(), 403);

        // Case and Unicode variants are one account.
        let (status, _) = sign_up(&app, &browser, "Jos\u{e9}@example.com", PASSWORD, "").await;
        assert_eq!(status, 200);
        let (status, _) = sign_up(&app, &browser, "JOSE\u{301}@EXAMPLE.com", PASSWORD, "").await;
        assert_eq!(status, 200);
        let one = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("jos\u{e9}@example.com").unwrap()).await.unwrap();
        assert!(one.is_some());
        // Kept and mailed as first typed; the notice goes to the account's own address.
        let mails = outbox(&app, "Jos\u{e9}@example.com").await;
        assert_eq!(mails.len(), 2);
        assert_eq!(mails[0].subject, "Confirm your e-mail address");
        assert_eq!(mails[1].subject, "Someone tried to create an account with your address");
    }

    async fn enumeration_gets_identical_answers(app: TestApp) {
        app.create_user("known@example.com", PASSWORD).await;
        let browser = browser();
        let same = |a: String, a_email: &str, b: String, b_email: &str| {
            assert_eq!(a.replace(a_email, "EMAIL"), b.replace(b_email, "EMAIL"));
        };
        // Sign-up.
        let (s1, b1) = sign_up(&app, &browser, "known@example.com", PASSWORD, "").await;
        let (s2, b2) = sign_up(&app, &browser, "unknown@example.com", PASSWORD, "").await;
        assert_eq!((s1, s2), (200, 200));
        same(b1, "known@example.com", b2, "unknown@example.com");
        // Forgot password. Both answers also take at least the same floor time.
        let mut answers = vec![];
        for email in ["known@example.com", "nobody@example.com"] {
            let started = Instant::now();
            let resp = post_form(&app, &browser, "/forgot-password", "/forgot-password", &[("email", email)]).await;
            assert!(started.elapsed() >= Duration::from_millis(150));
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, 200);
        assert_eq!(answers[0].0, answers[1].0);
        same(answers[0].1.clone(), "known@example.com", answers[1].1.clone(), "nobody@example.com");
        // Code requests (resend).
        let mut answers = vec![];
        for email in ["unknown@example.com", "nobody@example.com"] {
            let resp = post_form(&app, &browser, "/verify-email", "/verify-email/resend", &[("email", email)]).await;
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, 200);
        assert_eq!(answers[0].0, answers[1].0);
        same(answers[0].1.clone(), "unknown@example.com", answers[1].1.clone(), "nobody@example.com");
        // A wrong code for a real pending account and for nobody look the same too.
        let mut answers = vec![];
        for email in ["unknown@example.com", "nobody@example.com"] {
            let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", email), ("code", "000000")]).await;
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, 400);
        assert_eq!(answers[0].0, answers[1].0);
        same(answers[0].1.clone(), "unknown@example.com", answers[1].1.clone(), "nobody@example.com");
        // Only the real accounts got mail.
        assert_eq!(outbox(&app, "nobody@example.com").await.len(), 0);
        assert_eq!(outbox(&app, "known@example.com").await.len(), 2);
    }

    async fn code_attempts_are_limited_and_resend_has_a_cooldown(app: TestApp) {
        // Room for more guesses than the code allows, so the code's own limit is what is tested.
        let app = TestApp::start_with(app.backend, &[("PORTCULLIS_RATE_LIMIT__ACCOUNT_BURST", "20")]).await;
        let browser = browser();
        sign_up(&app, &browser, "dan@example.com", PASSWORD, "").await;
        let mails = outbox(&app, "dan@example.com").await;
        let code = code_in(&mails[0].body_text);
        let wrong = if code == "111111" { "222222" } else { "111111" };
        for _ in 0..5 {
            let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", "dan@example.com"), ("code", wrong)]).await;
            assert_eq!(resp.status(), 400);
        }
        // The right code after five wrong ones is dead.
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", "dan@example.com"), ("code", &code)]).await;
        assert_eq!(resp.status(), 400);
        // Resend within the cool-down sends nothing.
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email/resend", &[("email", "dan@example.com")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(outbox(&app, "dan@example.com").await.len(), 1);
        // After the cool-down (the server's clock moved on), a new code comes and works.
        app.provider.clock.advance(3600);
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email/resend", &[("email", "dan@example.com")]).await;
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "dan@example.com").await;
        assert_eq!(mails.len(), 2);
        let new_code = code_in(&mails[1].body_text);
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", "dan@example.com"), ("code", &new_code)]).await;
        assert_eq!(resp.status(), 303);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("dan@example.com").unwrap()).await.unwrap().unwrap();
        assert!(user.email_verified);
    }

    async fn password_reset_flow(app: TestApp) {
        app.create_user("erin@example.com", PASSWORD).await;
        // A signed-in browser whose session the reset must end.
        let other = browser();
        let (status, _) = app.submit_login(&other, "/login", "erin@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        assert!(signed_in(&app, &other).await);

        let browser = browser();
        let resp = post_form(&app, &browser, "/forgot-password", "/forgot-password", &[("email", "Erin@Example.com")]).await;
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "erin@example.com").await;
        assert_eq!(mails[0].subject, "Reset your password");
        let link = link_in(&mails[0].body_text, "/reset-password");
        assert!(link.starts_with(&app.issuer));
        let token = query_of(&link).remove("token").expect("token");

        // The new password follows the policy.
        let resp = post_form(&app, &browser, &format!("/reset-password?token={token}"), "/reset-password", &[
            ("token", &token), ("password", "password1"), ("password_confirm", "password1"),
        ]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &browser, &format!("/reset-password?token={token}"), "/reset-password", &[
            ("token", &token), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 200);

        // Sessions ended, notice sent, old password dead, new one works.
        assert!(!signed_in(&app, &other).await);
        let mails = outbox(&app, "erin@example.com").await;
        assert_eq!(mails.last().unwrap().subject, "Your password was changed");
        let (status, _) = app.submit_login(&crate::helpers::browser(), "/login", "erin@example.com", PASSWORD).await;
        assert_eq!(status, 200);
        let (status, _) = app.submit_login(&crate::helpers::browser(), "/login", "erin@example.com", NEW_PASSWORD).await;
        assert_eq!(status, 303);

        // Reuse of the link: refused, on GET and POST.
        let (status, _) = page(&browser, &link).await;
        assert_eq!(status, 400);
        let resp = post_form(&app, &browser, "/forgot-password", "/reset-password", &[
            ("token", &token), ("password", "yet another secret 7"), ("password_confirm", "yet another secret 7"),
        ]).await;
        assert_eq!(resp.status(), 400);
    }

    async fn a_reset_link_submitted_twice_at_once_changes_the_password_once(app: TestApp) {
        const OTHER_PASSWORD: &str = "another long passphrase entirely";
        app.create_user("ida@example.com", PASSWORD).await;
        let signed = browser();
        assert_eq!(app.submit_login(&signed, "/login", "ida@example.com", PASSWORD).await.0, 303);
        post_form(&app, &browser(), "/forgot-password", "/forgot-password", &[("email", "ida@example.com")]).await;
        let mails = outbox(&app, "ida@example.com").await;
        let link = link_in(&mails[0].body_text, "/reset-password");
        let token = query_of(&link).remove("token").expect("token");
        let path = format!("/reset-password?token={token}");
        let (a, b) = (browser(), browser());
        let form_a = [("token", token.as_str()), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD)];
        let form_b = [("token", token.as_str()), ("password", OTHER_PASSWORD), ("password_confirm", OTHER_PASSWORD)];
        let (ra, rb) = tokio::join!(
            post_form(&app, &a, &path, "/reset-password", &form_a),
            post_form(&app, &b, &path, "/reset-password", &form_b),
        );
        let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400], "the link is used once");
        // Exactly one of the two passwords is the account's now, and the old one is gone.
        let mut works = Vec::new();
        for pw in [NEW_PASSWORD, OTHER_PASSWORD, PASSWORD] {
            let b = browser();
            works.push(app.submit_login(&b, "/login", "ida@example.com", pw).await.0 == 303);
        }
        assert!(works[0] ^ works[1], "exactly one new password took: {works:?}");
        assert!(!works[2], "the old password is gone");
        // The session that was open ended with the change, and one notice went out.
        assert!(!signed_in(&app, &signed).await);
        let notices = outbox(&app, "ida@example.com").await.into_iter()
            .filter(|m| m.subject == "Your password was changed").count();
        assert_eq!(notices, 1);
    }

    async fn password_reset_link_expires(app: TestApp) {
        app.create_user("fay@example.com", PASSWORD).await;
        let browser = browser();
        post_form(&app, &browser, "/forgot-password", "/forgot-password", &[("email", "fay@example.com")]).await;
        let mails = outbox(&app, "fay@example.com").await;
        let link = link_in(&mails[0].body_text, "/reset-password");
        let token = query_of(&link).remove("token").expect("token");
        // Let the link's lifetime pass on the server's clock instead of waiting for it.
        app.provider.clock.advance(1801);
        let (status, _) = page(&browser, &link).await;
        assert_eq!(status, 400);
        let resp = post_form(&app, &browser, "/forgot-password", "/reset-password", &[
            ("token", &token), ("password", NEW_PASSWORD), ("password_confirm", NEW_PASSWORD),
        ]).await;
        assert_eq!(resp.status(), 400);
        let (status, _) = app.submit_login(&browser, "/login", "fay@example.com", PASSWORD).await;
        assert_eq!(status, 303, "old password still valid");
    }

    async fn outbox_survives_a_down_smtp_server(app: TestApp) {
        let port = free_port();
        // Nothing listens on `port` yet.
        let app = start_with(app.backend, &smtp_env(port)).await;
        let browser = browser();
        let (status, _) = sign_up(&app, &browser, "gus@example.com", PASSWORD, "").await;
        assert_eq!(status, 200, "sign-up does not fail when mail is down");
        // Wait until the worker has failed at least once.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = outbox(&app, "gus@example.com").await;
            assert_eq!(rows.len(), 1);
            if rows[0].attempts >= 1 {
                assert!(rows[0].sent_at.is_none());
                assert!(rows[0].last_error.is_some());
                break;
            }
            assert!(Instant::now() < deadline, "worker never tried");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The server comes up: the message is delivered by a retry.
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let mail = sink.wait_for("gus@example.com", 1).await;
        assert!(mail.contains("Confirm your e-mail address"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while outbox(&app, "gus@example.com").await[0].sent_at.is_none() {
            assert!(Instant::now() < deadline, "not marked sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn a_superseded_mail_code_is_never_sent(app: TestApp) {
        let port = free_port();
        // Nothing listens on `port` yet: mail waits in the outbox.
        let app = start_with(app.backend, &smtp_env(port)).await;
        let to = "cai@example.com";
        app.create_user(to, PASSWORD).await;
        let b = browser();
        let resp = post_form(&app, &b, "/login", "/login/code", &[("identifier", to)]).await;
        assert_eq!(resp.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        while outbox(&app, to).await[0].attempts < 1 {
            assert!(Instant::now() < deadline, "worker never tried");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A mail of another purpose for the same person is not affected by a new sign-in code.
        let resp = post_form(&app, &b, "/forgot-password", "/forgot-password", &[("email", to)]).await;
        assert_eq!(resp.status(), 200);
        // A second sign-in code once the cool-down is over (the clock moved on, not waited for).
        app.provider.clock.advance(3600);
        let resp = post_form(&app, &b, "/login", "/login/code", &[("identifier", to)]).await;
        assert_eq!(resp.status(), 200);
        let rows = outbox(&app, to).await;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].subject, "Your sign-in code");
        assert_eq!(rows[0].last_error.as_deref(), Some("superseded"), "{:?}", rows[0]);
        assert!(rows[0].failed_at.is_some() && rows[0].sent_at.is_none());
        assert_eq!(rows[1].subject, "Reset your password");
        assert_eq!(rows[2].subject, "Your sign-in code");
        for r in &rows[1..] {
            assert!(r.failed_at.is_none() && r.sent_at.is_none(), "{r:?}");
        }
        let code_in_body = |body: &str| {
            body.split("code is:").nth(1).unwrap()
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap()
                .to_owned()
        };
        let (old_code, new_code) = (code_in_body(&rows[0].body_text), code_in_body(&rows[2].body_text));

        // The server comes up; the waiting rows are due now (aged, not waited for).
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        exec_sql(&app, "UPDATE mail_outbox SET next_attempt_at = 0 WHERE sent_at IS NULL AND failed_at IS NULL").await;
        sink.wait_for(to, 2).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while outbox(&app, to).await[1..].iter().any(|r| r.sent_at.is_none()) {
            assert!(Instant::now() < deadline, "not marked sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rows = outbox(&app, to).await;
        assert!(rows[0].sent_at.is_none(), "the superseded mail is not sent");
        // Every row is settled: the sink holds exactly the reset mail and the newest code.
        let mails: Vec<String> = std::fs::read_dir(&sink.dir).unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .map(|p| unfold(&std::fs::read_to_string(p).unwrap()))
            .filter(|m| m.contains(&format!("To: {to}")))
            .collect();
        assert_eq!(mails.len(), 2);
        assert_eq!(mails.iter().filter(|m| m.contains("Reset your password")).count(), 1);
        let code_mails: Vec<&String> = mails.iter().filter(|m| m.contains("Your sign-in code")).collect();
        assert_eq!(code_mails.len(), 1);
        assert!(code_mails[0].contains(&new_code));
        if old_code != new_code {
            assert!(!code_mails[0].contains(&old_code));
        }
    }

    async fn rate_limits_answer_429_with_retry_after(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_RATE_LIMIT__IP_PER_MINUTE", "1"),
            ("PORTCULLIS_RATE_LIMIT__IP_BURST", "2"),
            ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_IP", "2"),
        ]).await;
        let browser = browser();
        for expected in [200, 200, 429] {
            let resp = post_form(&app, &browser, "/forgot-password", "/forgot-password", &[("email", "hal@example.com")]).await;
            assert_eq!(resp.status(), expected);
            if expected == 429 {
                let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry), "{retry}");
            }
        }
        // Sign-in counts failures per address (`login_failures_per_ip`).
        for expected in [200, 200, 429] {
            let (status, _) = app.submit_login(&browser, "/login", "hal@example.com", "wrong password").await;
            assert_eq!(status, expected);
        }
        let audit = app.provider.store.query_audit(&portcullis::store::AuditQuery {
            action: Some("rate_limited".into()), limit: 10, ..Default::default()
        }).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert_eq!(audit[0].outcome, "failure");
    }

    async fn per_account_limit(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_RATE_LIMIT__ACCOUNT_PER_HOUR", "1"),
            ("PORTCULLIS_RATE_LIMIT__ACCOUNT_BURST", "2"),
        ]).await;
        // Different browsers (same IP, within the IP limit), same account.
        for expected in [200, 200, 429] {
            let resp = post_form(&app, &browser(), "/forgot-password", "/forgot-password", &[("email", "ida@example.com")]).await;
            assert_eq!(resp.status(), expected);
        }
        // Another account is not affected.
        let resp = post_form(&app, &browser(), "/forgot-password", "/forgot-password", &[("email", "jo@example.com")]).await;
        assert_eq!(resp.status(), 200);
    }

    async fn configuration_switches(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SIGNUP__ENABLED", "false"),
            ("PORTCULLIS_ACCOUNTS__REQUIRE_VERIFIED_EMAIL", "false"),
        ]).await;
        let (status, _) = page(&browser(), &app.url("/signup")).await;
        assert_eq!(status, 404);
        let resp = browser().post(app.url("/signup")).form(&[("email", "x@example.com")]).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        let (_, login) = page(&browser(), &app.url("/login")).await;
        assert!(!login.contains("/signup"));
        // Unverified users may sign in when verification is not required.
        app.create_user_with("kim@example.com", PASSWORD, false, &[]).await;
        let (status, to) = app.submit_login(&browser(), "/login", "kim@example.com", PASSWORD).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
    }

    async fn verification_is_bound_to_the_address_and_expires(app: TestApp) {
        let browser = browser();
        sign_up(&app, &browser, "lou@example.com", PASSWORD, "").await;
        let mails = outbox(&app, "lou@example.com").await;
        let code = code_in(&mails[0].body_text);
        let link = link_in(&mails[0].body_text, "/verify-email/confirm");
        let token = query_of(&link).remove("token").expect("token");
        // The address changes (as an admin might): code and link sent to the old one are void.
        exec_sql(&app, "UPDATE users SET email = 'lou.new@example.com', email_canonical = 'lou.new@example.com' \
                        WHERE email = 'lou@example.com'").await;
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", "lou.new@example.com"), ("code", &code)]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &browser, &format!("/verify-email/confirm?token={token}"), "/verify-email/confirm", &[("token", &token)]).await;
        assert_eq!(resp.status(), 400);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("lou.new@example.com").unwrap()).await.unwrap().unwrap();
        assert!(!user.email_verified);

        // Expiry: a fresh link and code (after the cool-down), then past their lifetimes.
        app.provider.clock.advance(3600);
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email/resend", &[("email", "lou.new@example.com")]).await;
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "lou.new@example.com").await;
        let code = code_in(&mails[0].body_text);
        let link = link_in(&mails[0].body_text, "/verify-email/confirm");
        let token = query_of(&link).remove("token").expect("token");
        app.provider.clock.advance(86401);
        let resp = post_form(&app, &browser, "/verify-email", "/verify-email", &[("email", "lou.new@example.com"), ("code", &code)]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &browser, &format!("/verify-email/confirm?token={token}"), "/verify-email/confirm", &[("token", &token)]).await;
        assert_eq!(resp.status(), 400);
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("lou.new@example.com").unwrap()).await.unwrap().unwrap();
        assert!(!user.email_verified);
    }

    async fn mails_follow_the_language(app: TestApp) {
        let browser = browser();
        let (_, html) = page(&browser, &app.url("/signup")).await;
        let csrf = input_value(&html, "csrf").unwrap();
        let resp = browser.post(app.url("/signup"))
            .header("accept-language", "ko-KR,ko;q=0.9,en;q=0.5")
            .form(&[("email", "min@example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD), ("csrf", csrf.as_str())])
            .send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "min@example.com").await;
        assert_eq!(mails[0].subject, "이메일 주소를 확인해 주세요");
        assert!(mails[0].body_html.contains("lang=\"ko\""));
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("min@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(user.locale.as_deref(), Some("ko-KR"));
        // Later mails follow the account's locale.
        let resp = post_form(&app, &browser, "/forgot-password", "/forgot-password", &[("email", "min@example.com")]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(outbox(&app, "min@example.com").await.last().unwrap().subject, "비밀번호 재설정");
        // Without a translation for the language: English.
        let resp = browser.post(app.url("/signup"))
            .header("accept-language", "fr-CH")
            .form(&[("email", "jean@example.com"), ("password", PASSWORD), ("password_confirm", PASSWORD), ("csrf", csrf.as_str())])
            .send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(outbox(&app, "jean@example.com").await[0].subject, "Confirm your e-mail address");
    }
}

backend_tests! {
    async fn delivered_mail_bodies_are_scrubbed_by_housekeeping(app: TestApp) {
        use portcullis::store::{Channel, NewMail};
        let store = app.provider.store.as_ref();
        let now = portcullis::now();
        let mail = NewMail {
            recipient: "scrub@example.com".into(),
            subject: "Your code".into(),
            body_text: "Your code is 123456".into(),
            body_html: "<p>Your code is 123456</p>".into(),
            channel: Channel::Email,
            expires_at: None,
        };
        let sent = store.enqueue_mail(&mail, now).await.unwrap();
        store.mark_mail_sent(&sent, now).await.unwrap();
        let settings = &app.provider.settings;
        // Just delivered: kept (support may look at it for a few minutes).
        portcullis::startup::run_housekeeping(store, settings, now + 60).await;
        let rows = store.mail_for("scrub@example.com").await.unwrap();
        assert!(rows.iter().all(|m| m.body_text.contains("123456")));
        // Ten minutes after delivery the code is gone (queued mail is never touched: the
        // scrub only matches rows with sent_at or failed_at set).
        portcullis::startup::run_housekeeping(store, settings, now + 601).await;
        let rows = store.mail_for("scrub@example.com").await.unwrap();
        let by_id = |id: &str| rows.iter().find(|m| m.id == id).unwrap().clone();
        assert_eq!(by_id(&sent).body_text, "");
        assert_eq!(by_id(&sent).body_html, "");
        assert_eq!(by_id(&sent).subject, "Your code", "headers stay for support");
    }
}

backend_tests! {
    async fn mailed_links_use_the_issuer_never_the_host_header(app: TestApp) {
        app.create_user("hal@example.com", PASSWORD).await;
        let browser = browser();
        let (status, html) = page(&browser, &app.url("/forgot-password")).await;
        assert_eq!(status, 200);
        let csrf = input_value(&html, "csrf").expect("csrf field");
        // A forged Host (and forwarding headers) on the request that makes the mail.
        let resp = browser
            .post(app.url("/forgot-password"))
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .form(&[("email", "hal@example.com"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "hal@example.com").await;
        let mail = mails.last().expect("reset mail");
        assert!(!mail.body_text.contains("evil.example"), "{}", mail.body_text);
        assert!(!mail.body_html.contains("evil.example"));
        let link = link_in(&mail.body_text, "/reset-password");
        assert!(link.starts_with(&format!("{}/reset-password", app.issuer)), "{link}");
    }
}
