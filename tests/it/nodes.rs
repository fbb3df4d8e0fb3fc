//! Issue 14 item 4: several nodes on one PostgreSQL database. Three real `portcullis serve`
//! processes (plus the test's own in-process server) share one schema, one issuer and one keys
//! directory; requests alternate between them. A revocation, a logout or a client change on one
//! node is refused by the others on the very next request (LISTEN/NOTIFY, no sleep), and mail
//! is sent once however many nodes work the outbox. SQLite stays single-node: a second server
//! on the same file is warned about.

use std::time::Duration;

use portcullis::store::NewMail;
use serde_json::Value;

use crate::accounts::{SmtpSink, free_port, smtp_env, start_with};
use crate::admin_api::admin_token;
use crate::faults::ServerProcess;
use crate::helpers::*;

/// Asynchrony inherent to starting processes and listeners is waited for up to this long.
const BOUND: Duration = Duration::from_secs(30);

/// A node started on `app`'s database and keys, answering for `app`'s issuer.
async fn node(app: &TestApp) -> ServerProcess {
    ServerProcess::start(app, &[("PORTCULLIS_ISSUER", app.issuer.as_str())]).await
}

/// Wait until `base` hears other nodes' changes (`portcullis_change_listener_up 1`).
async fn wait_listening(base: &str) {
    let http = browser();
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text
            .lines()
            .any(|l| l.trim() == "portcullis_change_listener_up 1")
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{base} never listened for changes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Authorize and sign in on node `base` (its cookies, its pages): the code and PKCE verifier.
async fn code_on(app: &TestApp, base: &str, client: &TestClient, email: &str) -> (String, String) {
    let b = browser();
    let (url, verifier, _, _) = app.authorize_url(client, "openid email offline_access");
    let url = url.replacen(&app.issuer, base, 1);
    let resp = b.get(&url).send().await.expect("authorize");
    assert_eq!(resp.status(), 303);
    let login = location(&resp);
    assert!(login.starts_with("/login"), "{login}");
    let html = b
        .get(format!("{base}{login}"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let csrf = input_value(&html, "csrf").expect("csrf");
    let rid = input_value(&html, "rid").unwrap_or_default();
    let resp = b
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
            ("rid", rid.as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 303);
    let code = query_of(&location(&resp))
        .remove("code")
        .expect("code in redirect");
    (code, verifier)
}

async fn token_on(base: &str, client: &TestClient, form: &[(&str, &str)]) -> reqwest::Response {
    browser()
        .post(format!("{base}/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(form)
        .send()
        .await
        .expect("token")
}

async fn redeem_on(base: &str, client: &TestClient, code: &str, verifier: &str) -> Value {
    let resp = token_on(
        base,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200, "code redeemed on {base}");
    resp.json().await.expect("json")
}

async fn introspect_on(base: &str, client: &TestClient, token: &str) -> reqwest::Response {
    browser()
        .post(format!("{base}/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect")
}

async fn active_on(base: &str, client: &TestClient, token: &str) -> bool {
    let resp = introspect_on(base, client, token).await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.expect("json")["active"] == true
}

async fn userinfo_on(base: &str, token: &str) -> reqwest::Response {
    browser()
        .get(format!("{base}/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .expect("userinfo")
}

fn assert_invalid_token(resp: &reqwest::Response) {
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

/// The multi-node test (signing-key rotation and shared rate limits are tested with
/// their own features).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn three_nodes_on_one_postgres_database() {
    require_postgres();
    let app = TestApp::start(Backend::Postgres).await;
    app.create_user("nodes@example.com", PASSWORD).await;
    let client = app.confidential_client().await;
    let (_, admin) = admin_token(&app).await;
    let n1 = node(&app).await;
    let n2 = node(&app).await;
    let mut n3 = node(&app).await;
    for n in [&n1, &n2, &n3] {
        wait_listening(&n.base).await;
    }
    let (b1, b2, b3) = (n1.base.as_str(), n2.base.as_str(), n3.base.as_str());

    // A code flow that starts on node 1 and finishes on node 2; the token works on node 3.
    let (code, verifier) = code_on(&app, b1, &client, "nodes@example.com").await;
    let tokens = redeem_on(b2, &client, &code, &verifier).await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo_on(b3, &at).await.status(), 200);
    // The code is used up on every node.
    let replay = token_on(
        b3,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(replay.status(), 400);
    assert_eq!(
        replay.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    // The replay on node 3 revoked what the code had issued on node 2 (RFC 6749 §4.1.2):
    // node 1 refuses that access token on its very next request.
    assert_invalid_token(&userinfo_on(b1, &at).await);
    assert!(!active_on(b2, &client, &at).await);

    // A refresh token issued on node 1, used on node 2.
    let (code, verifier) = code_on(&app, b1, &client, "nodes@example.com").await;
    let first = redeem_on(b1, &client, &code, &verifier).await;
    let old_refresh = first["refresh_token"].as_str().expect("refresh token");
    let refreshed = token_on(
        b2,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", old_refresh),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let at = first["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();

    // Node 1 has the token in its mirror as active; node 3 revokes it; node 1 refuses it on
    // the very next request (no sleep, no poll).
    assert!(active_on(b1, &client, &at).await);
    assert_eq!(userinfo_on(b1, &at).await.status(), 200);
    let revoked = browser()
        .post(format!("{b3}/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(
        !active_on(b1, &client, &at).await,
        "node 1 still accepts it"
    );
    assert_invalid_token(&userinfo_on(b1, &at).await);
    assert!(!active_on(b2, &client, &at).await);

    // The refreshed family's access token, revoked with its family on node 2 (a refresh token
    // revocation deny-lists the access tokens issued with it), is refused on node 1 at once.
    let at2 = refreshed["access_token"].as_str().unwrap();
    assert_eq!(userinfo_on(b1, at2).await.status(), 200);
    let resp = browser()
        .post(format!("{b2}/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", refreshed["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_invalid_token(&userinfo_on(b1, at2).await);
    assert!(!active_on(b3, &client, at2).await);

    // An administrator disables the client on node 2: nodes 1 and 3, which authenticated it a
    // moment ago (and cache it), refuse it on the next request.
    assert!(!active_on(b3, &client, "x").await);
    let disabled = browser()
        .post(format!("{b2}/admin/api/v1/clients/{}/disable", client.id))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    for base in [b1, b3] {
        let resp = introspect_on(base, &client, "x").await;
        assert_eq!(
            resp.status(),
            401,
            "{base} still authenticates a disabled client"
        );
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"],
            "invalid_client"
        );
    }
    let enabled = browser()
        .post(format!("{b1}/admin/api/v1/clients/{}/enable", client.id))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), 200);
    assert_eq!(introspect_on(b3, &client, "x").await.status(), 200);

    // Node 3 is killed in the middle of a flow: the code it issued is redeemed on node 1, and
    // nodes 1 and 2 carry on (a revocation on one still reaches the other at once).
    let (code, verifier) = code_on(&app, b3, &client, "nodes@example.com").await;
    n3.signal("-KILL");
    assert!(n3.wait_exit().await.is_some(), "node 3 exits");
    let tokens = redeem_on(b1, &client, &code, &verifier).await;
    let at3 = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_on(b2, at3).await.status(), 200);
    let resp = browser()
        .post(format!("{b1}/revoke"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", at3)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_invalid_token(&userinfo_on(b2, at3).await);
}

/// Two nodes and a slow SMTP server: a node whose reservation looks expired to the other (its
/// clock is a minute ahead) never makes a message go out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn two_nodes_and_a_slow_smtp_server_send_each_mail_once() {
    require_postgres();
    const MAILS: usize = 8;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_slow(port, dir.path(), 0.3);
    // Node A: the test's server, whose worker delivers through the slow sink.
    let app = start_with(Backend::Postgres, &smtp_env(port)).await;
    let settings = &app.provider.settings;
    // Node B: its own pool and mailer on the same database, its clock a minute ahead.
    let store_b = portcullis::store::connect(settings.database_url.expose(), 4, BOUND)
        .await
        .unwrap();
    let clock_b = portcullis::clock::Clock::default();
    clock_b.advance(60);
    let sms = portcullis::sms::from_settings(&settings.sms).unwrap();
    let mailer_b = portcullis::email::Mailer::new(&settings.mail, sms, clock_b).unwrap();

    let now = app.provider.clock.now();
    for i in 0..MAILS {
        let mail = NewMail {
            recipient: format!("once{i}@example.com"),
            subject: "once".into(),
            body_text: "hello".into(),
            body_html: String::new(),
            channel: portcullis::store::Channel::Email,
            expires_at: None,
        };
        app.provider.store.enqueue_mail(&mail, now).await.unwrap();
    }
    // Node A is busy with its batch (the first message is through) when node B works the
    // outbox: every lease of A's looks expired to B.
    sink.wait_for("once0@example.com", 1).await;
    mailer_b.deliver_due(store_b.as_ref()).await.unwrap();
    // A finishes its batch; then every message is marked sent.
    let deadline = tokio::time::Instant::now() + BOUND;
    for i in 0..MAILS {
        let to = format!("once{i}@example.com");
        loop {
            let rows = app.provider.store.mail_for(&to).await.unwrap();
            if rows.iter().all(|m| m.sent_at.is_some()) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{to} never sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for i in 0..MAILS {
        let to = format!("once{i}@example.com");
        assert_eq!(sink.count_to(&to), 1, "{to} received a duplicate");
    }
    store_b.close().await;
}

/// SQLite serves one node: a second server on the same file says so, in one warning line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_file_is_warned_about() {
    let app = TestApp::start(Backend::Sqlite).await;
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("serve")
        .env(
            "PORTCULLIS_DATABASE_URL",
            app.provider.settings.database_url.expose(),
        )
        .env("PORTCULLIS_KEYS_DIR", &app.provider.settings.keys_dir)
        .env("PORTCULLIS_ISSUER", format!("http://127.0.0.1:{port}"))
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start portcullis serve");
    let mut server = ServerProcess {
        child: out,
        base: format!("http://127.0.0.1:{port}"),
    };
    // Logs go to stderr.
    let stderr = server.child.stderr.take().unwrap();
    let warned = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("another server process has this SQLite database open"))
    });
    let line = tokio::time::timeout(BOUND, async {
        // The server keeps running (a warning, not a refusal); stop it to end its output.
        let deadline = tokio::time::Instant::now() + BOUND;
        while browser()
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "second server answers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.signal("-TERM");
        server.wait_exit().await;
        warned.await.unwrap()
    })
    .await
    .expect("bounded");
    let line = line.expect("one warning about the second server");
    assert!(line.contains("WARN"), "{line}");
    // The test's own server was first: it took the lock, and still serves.
    let ok = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}
