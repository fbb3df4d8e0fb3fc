//! Issue 4: phone numbers, SMS codes and sign-in by one-time code (e-mail or SMS), with the
//! file SMS sender and the HTTP sender against a receiver on 127.0.0.1.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::accounts::{exec_sql, outbox, page, post_form, signed_in};
use crate::backend_tests;
use crate::helpers::*;

/// Texts written by the file SMS sender to `dir` for `to`, oldest first.
fn sms_to(dir: &Path, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("sms file"))
        .filter(|t| t.starts_with(&format!("To: {to}\n")))
        .collect()
}

/// Wait (up to 30 s) until the outbox worker has written at least `count` texts to `to`.
async fn wait_sms(dir: &Path, to: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let texts = sms_to(dir, to);
        if texts.len() >= count {
            return texts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no SMS to {to} within 30 s (have {})",
            texts.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn code_of(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("6-digit code")
        .to_owned()
}

async fn start_with_sms_dir(app: &TestApp) -> (TestApp, std::path::PathBuf) {
    let dir = app.dir.path().join("sms");
    let d = dir.display().to_string();
    let app = TestApp::start_with(app.backend, &[("PORTCULLIS_SMS__DIR", d.as_str())]).await;
    (app, dir)
}

async fn with_verified_phone(app: &TestApp, email: &str, phone: &str) {
    let user = app.create_user(email, PASSWORD).await;
    let store = &app.provider.store;
    store
        .set_phone(&user.id, Some(phone), portcullis::now())
        .await
        .unwrap();
    assert!(
        store
            .mark_phone_verified(&user.id, phone, portcullis::now())
            .await
            .unwrap()
    );
}

/// An SMS gateway on 127.0.0.1:`port`: answers 200 to every request and hands each raw request
/// over. Dropping the task (abort) closes the port again.
fn gateway_on(
    port: u16,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("gateway port");
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .await;
            let _ = tx.send(String::from_utf8_lossy(&buf).to_string());
        }
    });
    (task, rx)
}

/// The JSON body of a gateway request.
fn gateway_json(request: &str) -> serde_json::Value {
    serde_json::from_str(&request[request.find("\r\n\r\n").expect("body") + 4..])
        .expect("JSON body")
}

/// Poll the outbox (up to 30 s) until the newest row for `to` satisfies `done`.
async fn wait_outbox(
    app: &TestApp,
    to: &str,
    done: impl Fn(&portcullis::store::OutboxMail) -> bool,
) -> portcullis::store::OutboxMail {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(row) = outbox(app, to).await.pop()
            && done(&row)
        {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox row for {to} not in the expected state within 30 s: {:?}",
            outbox(app, to).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

backend_tests! {
    async fn phone_verification_then_phone_password_login(app: TestApp) {
        let (app, sms_dir) = start_with_sms_dir(&app).await;
        app.create_user("sam@example.com", PASSWORD).await;
        let b = browser();
        assert_eq!(app.submit_login(&b, "/login", "sam@example.com", PASSWORD).await.0, 303);
        // Before verification the number does not sign in.
        let resp = post_form(&app, &b, "/account", "/account/phone", &[("phone", "not a number")]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/account", "/account/phone", &[("phone", "+66 81-234 5678")]).await;
        assert_eq!(resp.status(), 303);
        let (status, _) = app.submit_login(&browser(), "/login", "+66812345678", PASSWORD).await;
        assert_eq!(status, 200, "unverified number cannot sign in");
        let texts = wait_sms(&sms_dir, "+66812345678", 1).await;
        assert_eq!(texts.len(), 1);
        let code = code_of(&texts[0]);
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let resp = post_form(&app, &b, "/account", "/account/phone/verify", &[("code", wrong)]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/account", "/account/phone/verify", &[("code", &code)]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/account?done=phone_verified");
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("sam@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(user.phone_number.as_deref(), Some("+66812345678"));
        assert!(user.phone_number_verified);
        // Phone + password, in any usual notation.
        let (status, to) = app.submit_login(&browser(), "/login", "+66 81 234 5678", PASSWORD).await;
        assert_eq!((status, to.as_deref()), (303, Some("/")));
        // The same number cannot be verified by another account.
        app.create_user("tia@example.com", PASSWORD).await;
        let t = browser();
        assert_eq!(app.submit_login(&t, "/login", "tia@example.com", PASSWORD).await.0, 303);
        post_form(&app, &t, "/account", "/account/phone", &[("phone", "+66812345678")]).await;
        let code = code_of(wait_sms(&sms_dir, "+66812345678", 2).await.last().unwrap());
        let resp = post_form(&app, &t, "/account", "/account/phone/verify", &[("code", &code)]).await;
        assert_eq!(resp.status(), 400);
    }

    async fn sms_code_login_completes_the_code_flow(app: TestApp) {
        let (app, sms_dir) = start_with_sms_dir(&app).await;
        with_verified_phone(&app, "uma@example.com", "+821012345678").await;
        let client = app.confidential_client().await;
        let b = browser();
        let (url, verifier, _, _) = app.authorize_url(&client, "openid phone");
        let resp = b.get(&url).send().await.unwrap();
        let rid = query_of(&location(&resp)).remove("rid").unwrap();
        let resp = post_form(&app, &b, &format!("/login?rid={rid}"), "/login/code", &[
            ("identifier", "+82 10-1234-5678"), ("rid", &rid),
        ]).await;
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert_eq!(input_value(&html, "identifier").as_deref(), Some("+821012345678"));
        let code = code_of(&wait_sms(&sms_dir, "+821012345678", 1).await[0]);
        let resp = post_form(&app, &b, &format!("/login?rid={rid}"), "/login/code/verify", &[
            ("identifier", "+821012345678"), ("code", &code), ("rid", &rid),
        ]).await;
        assert_eq!(resp.status(), 303);
        let back = location(&resp);
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        let code = query_of(&back).remove("code").unwrap();
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", &client.redirect_uri), ("code_verifier", &verifier),
        ]).await;
        assert_eq!(resp.status(), 200);
        // The ID token says how: a one-time code by SMS (RFC 8176 `otp`, `sms`).
        let tokens: serde_json::Value = resp.json().await.unwrap();
        let claims = app.provider.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap().0;
        assert_eq!(claims["amr"], serde_json::json!(["otp", "sms"]));
        // The code was single use.
        let c = browser();
        let resp = post_form(&app, &c, "/login", "/login/code/verify", &[
            ("identifier", "+821012345678"), ("code", &code_of(&sms_to(&sms_dir, "+821012345678")[0])),
        ]).await;
        assert_eq!(resp.status(), 400);
    }

    async fn email_code_login_completes_the_code_flow_with_amr_otp(app: TestApp) {
        app.create_user("wes@example.com", PASSWORD).await;
        let client = app.confidential_client().await;
        let b = browser();
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let resp = b.get(&url).send().await.unwrap();
        let rid = query_of(&location(&resp)).remove("rid").unwrap();
        let login = format!("/login?rid={rid}");
        let resp = post_form(&app, &b, &login, "/login/code", &[("identifier", "wes@example.com"), ("rid", &rid)]).await;
        assert_eq!(resp.status(), 200);
        let mails = outbox(&app, "wes@example.com").await;
        let code = code_of(mails[0].body_text.split("code is:").nth(1).unwrap());
        let resp = post_form(&app, &b, &login, "/login/code/verify", &[
            ("identifier", "wes@example.com"), ("code", &code), ("rid", &rid),
        ]).await;
        assert_eq!(resp.status(), 303);
        let back = location(&resp);
        let code = query_of(&back).remove("code").expect("a code for the client");
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", &client.redirect_uri), ("code_verifier", &verifier),
        ]).await;
        assert_eq!(resp.status(), 200);
        let tokens: serde_json::Value = resp.json().await.unwrap();
        let claims = app.provider.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap().0;
        assert_eq!(claims["amr"], serde_json::json!(["otp"]));
        // The session records it too, for every later authorization in this browser.
        let (url, verifier, _, _) = app.authorize_url(&client, "openid");
        let resp = b.get(&url).send().await.unwrap();
        let code = query_of(&location(&resp)).remove("code").expect("signed in: a code at once");
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"), ("code", &code),
            ("redirect_uri", &client.redirect_uri), ("code_verifier", &verifier),
        ]).await;
        let tokens: serde_json::Value = resp.json().await.unwrap();
        let claims = app.provider.keys.verify(tokens["id_token"].as_str().unwrap()).unwrap().0;
        assert_eq!(claims["amr"], serde_json::json!(["otp"]));
    }

    async fn email_code_login_and_enumeration(app: TestApp) {
        app.create_user("vic@example.com", PASSWORD).await;
        let b = browser();
        let mut answers = vec![];
        for id in ["vic@example.com", "nobody@example.com"] {
            let resp = post_form(&app, &b, "/login", "/login/code", &[("identifier", id)]).await;
            answers.push((resp.status().as_u16(), resp.text().await.unwrap().replace(id, "ID")));
        }
        assert_eq!(answers[0].0, 200);
        assert_eq!(answers[0], answers[1]);
        let mails = outbox(&app, "vic@example.com").await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0].subject, "Your sign-in code");
        let code = code_of(mails[0].body_text.split("code is:").nth(1).unwrap());
        // Wrong guesses are counted; the right code still works before the limit.
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "vic@example.com"), ("code", wrong)]).await;
        assert_eq!(resp.status(), 400);
        let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "Vic@Example.com"), ("code", &code)]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/");
        assert!(signed_in(&app, &b).await);
        // Unknown identifier with any code: the same refusal.
        let resp = post_form(&app, &browser(), "/login", "/login/code/verify", &[("identifier", "nobody@example.com"), ("code", &code)]).await;
        assert_eq!(resp.status(), 400);
    }

    async fn http_sms_sender_posts_to_the_gateway(app: TestApp) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // A tiny gateway: reads one request, answers 200, hands the raw request over.
        let gateway = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end].lines()
                        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap()))
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
                if n == 0 { break; }
            }
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await.unwrap();
            String::from_utf8_lossy(&buf).to_string()
        });
        let url = format!("http://127.0.0.1:{port}/send");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_URL", url.as_str()),
            ("PORTCULLIS_SMS__HTTP_AUTHORIZATION", "Bearer gateway-token"),
        ]).await;
        with_verified_phone(&app, "wes@example.com", "+442079460958").await;
        let b = browser();
        let resp = post_form(&app, &b, "/login", "/login/code", &[("identifier", "+442079460958")]).await;
        assert_eq!(resp.status(), 200);
        let request = tokio::time::timeout(std::time::Duration::from_secs(10), gateway).await.unwrap().unwrap();
        assert!(request.starts_with("POST /send HTTP/1.1"), "{request}");
        assert!(request.to_ascii_lowercase().contains("authorization: bearer gateway-token"));
        assert!(request.to_ascii_lowercase().contains("content-type: application/json"));
        let body = &request[request.find("\r\n\r\n").unwrap() + 4..];
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(json["to"], "+442079460958");
        let code = code_of(json["text"].as_str().unwrap());
        let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "+442079460958"), ("code", &code)]).await;
        assert_eq!(resp.status(), 303);
        let _ = page(&b, &app.url("/")).await;
    }
    async fn sms_waits_in_the_outbox_while_the_gateway_is_down(app: TestApp) {
        // The gateway's port is free: nothing listens there yet (the gateway is down).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/send");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_URL", url.as_str()),
            ("PORTCULLIS_MAIL__RETRY_BASE", "1"),
            ("PORTCULLIS_MAIL__POLL_INTERVAL", "1"),
        ]).await;

        // A sign-in code by SMS: the usual answer (the same as for an unknown number).
        with_verified_phone(&app, "xena@example.com", "+12025550123").await;
        let b = browser();
        let mut answers = vec![];
        for id in ["+12025550123", "+12025550199"] {
            let resp = post_form(&app, &b, "/login", "/login/code", &[("identifier", id)]).await;
            answers.push((resp.status().as_u16(), resp.text().await.unwrap().replace(id, "ID")));
        }
        assert_eq!(answers[0].0, 200);
        assert_eq!(answers[0], answers[1]);

        // A phone confirmation on the account page: accepted as usual (no 503).
        app.create_user("yan@example.com", PASSWORD).await;
        let y = browser();
        assert_eq!(app.submit_login(&y, "/login", "yan@example.com", PASSWORD).await.0, 303);
        let resp = post_form(&app, &y, "/account", "/account/phone", &[("phone", "+12025550124")]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/account?done=phone");

        // Both wait in the outbox, retried while the gateway refuses connections.
        let xena = wait_outbox(&app, "+12025550123", |m| m.attempts >= 1).await;
        assert!(xena.is_sms() && xena.sent_at.is_none() && xena.failed_at.is_none(), "{xena:?}");
        assert!(xena.last_error.is_some());
        let yan = wait_outbox(&app, "+12025550124", |m| m.attempts >= 1).await;
        assert!(yan.sent_at.is_none() && yan.failed_at.is_none(), "{yan:?}");

        // The code an SMS carries expires: then the SMS is never sent and its text is blanked.
        exec_sql(&app, "UPDATE mail_outbox SET expires_at = 1 WHERE recipient = '+12025550124'").await;
        let yan = wait_outbox(&app, "+12025550124", |m| m.failed_at.is_some()).await;
        assert_eq!(yan.last_error.as_deref(), Some("expired"));
        assert_eq!(yan.body_text, "", "no code text kept after expiry");
        assert!(yan.sent_at.is_none());

        // The gateway comes up: the waiting SMS arrives and its code signs in.
        let (gateway, mut requests) = gateway_on(port);
        let request = tokio::time::timeout(std::time::Duration::from_secs(30), requests.recv())
            .await.expect("SMS within 30 s").expect("request");
        let json = gateway_json(&request);
        assert_eq!(json["to"], "+12025550123");
        let code = code_of(json["text"].as_str().unwrap());
        let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "+12025550123"), ("code", &code)]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), "/");
        assert!(signed_in(&app, &b).await);
        // Delivered once; the text is not kept.
        let xena = wait_outbox(&app, "+12025550123", |m| m.sent_at.is_some()).await;
        assert_eq!(xena.body_text, "", "no code text kept after delivery");
        assert!(xena.failed_at.is_none());
        // The expired one never went out, and nothing else did.
        assert!(requests.try_recv().is_err(), "only the live SMS is sent");
        assert!(outbox(&app, "+12025550199").await.is_empty(), "nothing queued for an unknown number");
        gateway.abort();
    }
    async fn a_superseded_sms_code_is_never_sent(app: TestApp) {
        // The gateway is down: nothing listens on its port yet.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/send");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_URL", url.as_str()),
            ("PORTCULLIS_MAIL__RETRY_BASE", "1"),
            ("PORTCULLIS_MAIL__POLL_INTERVAL", "1"),
        ]).await;
        with_verified_phone(&app, "ada@example.com", "+12025550131").await;
        with_verified_phone(&app, "bea@example.com", "+12025550132").await;
        let b = browser();
        let ask = |id: &'static str| {
            let (app, b) = (&app, &b);
            async move {
                let resp = post_form(app, b, "/login", "/login/code", &[("identifier", id)]).await;
                assert_eq!(resp.status(), 200);
            }
        };
        ask("+12025550131").await;
        ask("+12025550132").await; // another person's code, same purpose
        // The first SMS waits, tried at least once while the gateway refuses connections.
        let first = wait_outbox(&app, "+12025550131", |m| m.attempts >= 1).await;
        assert!(first.sent_at.is_none() && first.failed_at.is_none(), "{first:?}");
        let first_code = code_of(&first.body_text);
        // A new code is asked for once the resend cool-down is over (aged, not waited for).
        exec_sql(&app, "UPDATE account_codes SET created_at = created_at - 3600").await;
        ask("+12025550131").await;
        let rows = outbox(&app, "+12025550131").await;
        assert_eq!(rows.len(), 2);
        // The older SMS is given up in the same transaction: never sent, its text gone.
        let old = &rows[0];
        assert_eq!(old.id, first.id);
        assert_eq!(old.last_error.as_deref(), Some("superseded"), "{old:?}");
        assert!(old.failed_at.is_some() && old.sent_at.is_none());
        assert_eq!(old.body_text, "", "no code text kept once superseded");
        let new_text = rows[1].body_text.clone();
        assert!(rows[1].failed_at.is_none() && rows[1].sent_at.is_none());
        // The other person's waiting SMS is untouched.
        let other = outbox(&app, "+12025550132").await;
        assert_eq!(other.len(), 1);
        assert!(other[0].failed_at.is_none() && other[0].sent_at.is_none(), "{other:?}");

        // The gateway comes up; the waiting rows are due now (aged, not waited for).
        let (gateway, mut requests) = gateway_on(port);
        exec_sql(&app, "UPDATE mail_outbox SET next_attempt_at = 0 WHERE sent_at IS NULL AND failed_at IS NULL").await;
        let mut delivered = std::collections::HashMap::new();
        for _ in 0..2 {
            let request = tokio::time::timeout(std::time::Duration::from_secs(30), requests.recv())
                .await.expect("SMS within 30 s").expect("request");
            let json = gateway_json(&request);
            let to = json["to"].as_str().unwrap().to_owned();
            assert!(delivered.insert(to, json["text"].as_str().unwrap().to_owned()).is_none(), "one SMS per number");
        }
        assert_eq!(delivered["+12025550131"], new_text, "only the newest code is sent");
        assert!(delivered.contains_key("+12025550132"));
        wait_outbox(&app, "+12025550131", |m| m.sent_at.is_some()).await;
        wait_outbox(&app, "+12025550132", |m| m.sent_at.is_some()).await;
        let old = outbox(&app, "+12025550131").await.remove(0);
        assert!(old.sent_at.is_none() && old.last_error.as_deref() == Some("superseded"), "{old:?}");
        // Every row is settled, so nothing more can go out.
        assert!(requests.try_recv().is_err(), "the superseded SMS is not sent");
        // The old code no longer works; the delivered one signs in.
        let new_code = code_of(&delivered["+12025550131"]);
        if first_code != new_code {
            let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "+12025550131"), ("code", &first_code)]).await;
            assert_eq!(resp.status(), 400);
        }
        let resp = post_form(&app, &b, "/login", "/login/code/verify", &[("identifier", "+12025550131"), ("code", &new_code)]).await;
        assert_eq!(resp.status(), 303);
        gateway.abort();
    }

    async fn changing_the_number_gives_up_the_old_confirmation_sms(app: TestApp) {
        // The gateway is down, so the first confirmation SMS is still waiting when the number
        // changes; it must never go out to the number the account no longer has.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/send");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_URL", url.as_str()),
        ]).await;
        app.create_user("cy@example.com", PASSWORD).await;
        let b = browser();
        assert_eq!(app.submit_login(&b, "/login", "cy@example.com", PASSWORD).await.0, 303);
        let resp = post_form(&app, &b, "/account", "/account/phone", &[("phone", "+12025550141")]).await;
        assert_eq!(resp.status(), 303);
        // The resend cool-down is over (aged, not waited for).
        exec_sql(&app, "UPDATE account_codes SET created_at = created_at - 3600").await;
        let resp = post_form(&app, &b, "/account", "/account/phone", &[("phone", "+12025550142")]).await;
        assert_eq!(resp.status(), 303);
        let old = outbox(&app, "+12025550141").await;
        assert_eq!(old.len(), 1);
        assert_eq!(old[0].last_error.as_deref(), Some("superseded"), "{:?}", old[0]);
        assert!(old[0].failed_at.is_some() && old[0].sent_at.is_none());
        assert_eq!(old[0].body_text, "");
        let new = outbox(&app, "+12025550142").await;
        assert_eq!(new.len(), 1);
        assert!(new[0].failed_at.is_none() && !new[0].body_text.is_empty());
        // The old number's code is dead: only a code sent to the current number verifies it.
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("cy@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(user.phone_number.as_deref(), Some("+12025550142"));
        assert!(!user.phone_number_verified);
    }

    async fn sms_attempts_are_bounded_and_the_text_is_not_kept(app: TestApp) {
        // Nothing ever listens on the gateway's port; two attempts at most.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/send");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_URL", url.as_str()),
            ("PORTCULLIS_MAIL__RETRY_BASE", "1"),
            ("PORTCULLIS_MAIL__POLL_INTERVAL", "1"),
            ("PORTCULLIS_MAIL__MAX_ATTEMPTS", "2"),
        ]).await;
        with_verified_phone(&app, "zoe@example.com", "+12025550125").await;
        let resp = post_form(&app, &browser(), "/login", "/login/code", &[("identifier", "+12025550125")]).await;
        assert_eq!(resp.status(), 200);
        let row = wait_outbox(&app, "+12025550125", |m| m.failed_at.is_some()).await;
        assert_eq!(row.attempts, 2);
        assert!(row.sent_at.is_none());
        assert_ne!(row.last_error.as_deref(), Some("expired"), "given up, not expired");
        assert_eq!(row.body_text, "", "no code text kept once given up");
    }
}
