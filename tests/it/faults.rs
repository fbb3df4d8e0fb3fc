//! Faults: slow and silent clients, a shutdown with connections held open, a database that stops
//! answering. Each test drives the real server (in-process, or the `portcullis serve` binary).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::backend_tests;
use crate::helpers::*;

/// A bound on waits for an event, far above every configured limit: not a speed assertion.
const BOUND: Duration = Duration::from_secs(20);

const SHORT_LIMITS: &[(&str, &str)] = &[
    ("PORTCULLIS_SERVER__HEADER_READ_TIMEOUT_SECS", "1"),
    ("PORTCULLIS_SERVER__BODY_READ_TIMEOUT_SECS", "1"),
];

/// Read until the server closes the connection (or `BOUND` passes: `None`).
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

fn host(app: &TestApp) -> String {
    app.issuer.trim_start_matches("http://").to_owned()
}

async fn start_short(backend: Backend) -> TestApp {
    TestApp::start_with(backend, SHORT_LIMITS).await
}

mod slow_clients {
    use super::*;

    /// Headers announcing a body that never comes: 408, and the connection is closed.
    async fn body_never_sent(app: TestApp) {
        let mut s = TcpStream::connect(host(&app)).await.unwrap();
        let head = format!(
            "POST /token HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\ngrant_type=",
            host(&app)
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut s)
            .await
            .expect("the server closes a connection whose body never arrives");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        // Nothing else was affected: the server still answers.
        let ok = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(ok.status(), 200);
    }

    /// A request head that is never finished, and a kept-alive connection left idle: both closed.
    async fn head_never_finished_and_idle_connection(app: TestApp) {
        let mut partial = TcpStream::connect(host(&app)).await.unwrap();
        partial
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(host(&app)).await.unwrap();
        idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", host(&app)).as_bytes())
            .await
            .unwrap();
        assert!(
            read_until_closed(&mut partial).await.is_some(),
            "an unfinished request head is not held open"
        );
        let answer = read_until_closed(&mut idle)
            .await
            .expect("an idle kept-alive connection is closed");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn body_never_sent_sqlite() {
        body_never_sent(start_short(Backend::Sqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(portcullis_pg_tests),
        ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
    )]
    async fn body_never_sent_postgres() {
        require_postgres();
        body_never_sent(start_short(Backend::Postgres).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn head_never_finished_and_idle_connection_sqlite() {
        head_never_finished_and_idle_connection(start_short(Backend::Sqlite).await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(portcullis_pg_tests),
        ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
    )]
    async fn head_never_finished_and_idle_connection_postgres() {
        require_postgres();
        head_never_finished_and_idle_connection(start_short(Backend::Postgres).await).await;
    }
}

/// A `portcullis serve` process on this test's database and keys, killed on drop.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
}

impl ServerProcess {
    /// Start `portcullis serve` on a free port with `extra` environment; wait until it answers.
    pub async fn start(app: &TestApp, extra: &[(&str, &str)]) -> Self {
        let server = Self::spawn(app, extra, std::process::Stdio::null());
        server.wait_ready().await;
        server
    }

    /// `portcullis serve` with this test's database, keys (folder and key-encryption key) and
    /// `extra` environment on a free port, not waited for; `stderr` piped for
    /// `wait_exit_output` (only for a process that exits: a full pipe would block a server).
    pub fn spawn(app: &TestApp, extra: &[(&str, &str)], stderr: std::process::Stdio) -> Self {
        let settings = &app.provider.settings;
        let keys_dir = settings.keys_dir.display().to_string();
        let mut env = vec![
            ("PORTCULLIS_DATABASE_URL", settings.database_url.expose()),
            ("PORTCULLIS_KEYS_DIR", keys_dir.as_str()),
            (
                "PORTCULLIS_KEYS_ENCRYPTION_KEY",
                settings.keys_encryption_key.expose(),
            ),
        ];
        env.extend_from_slice(extra);
        Self::spawn_with(&env, stderr)
    }

    /// `portcullis serve` on a free port with `env` (plus issuer, bind and log level).
    pub fn spawn_with(env: &[(&str, &str)], stderr: std::process::Stdio) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"));
        cmd.arg("serve")
            .env("PORTCULLIS_ISSUER", &base)
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
            .env("PORTCULLIS_LOG_LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().expect("start portcullis serve"),
            base,
        }
    }

    /// Wait (bounded) until the server answers `/healthz`.
    pub async fn wait_ready(&self) {
        let http = browser();
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "portcullis serve answers"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait (bounded) for a process expected to refuse to start: its exit status and stderr.
    pub async fn wait_exit_output(mut self) -> (std::process::ExitStatus, String) {
        let status = self
            .wait_exit()
            .await
            .expect("the server refuses to start and exits");
        let mut err = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use std::io::Read;
            pipe.read_to_string(&mut err).unwrap();
        }
        (status, err)
    }

    pub fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit: its status, or `None` if it is still running.
    pub async fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + BOUND;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

backend_tests! {
    async fn sigterm_exits_within_the_deadline_while_a_client_holds_a_request(app: TestApp) {
        let mut server = ServerProcess::start(&app, &[
            // The body limit alone would not free the connection before the test's bound.
            ("PORTCULLIS_SERVER__BODY_READ_TIMEOUT_SECS", "600"),
            ("PORTCULLIS_SERVER__HEADER_READ_TIMEOUT_SECS", "600"),
            ("PORTCULLIS_SERVER__SHUTDOWN_TIMEOUT_SECS", "1"),
        ]).await;
        let addr = server.base.trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(&addr).await.unwrap();
        // `Expect: 100-continue`: the server says "100 Continue" once it reads the body, so the
        // request is known to be in flight before the signal.
        let head = format!(
            "POST /token HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(BOUND, s.read(&mut buf)).await.expect("100 Continue").unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));

        server.signal("-TERM");
        let status = server.wait_exit().await;
        assert!(status.is_some(), "the server exits after the shutdown deadline");
        assert!(read_until_closed(&mut s).await.is_some(), "the held connection was closed");
    }
}

/// A TCP proxy in front of PostgreSQL that the test can cut: the listener closes (new
/// connections are refused at once) and every forwarded connection is dropped.
struct CuttableProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    tasks: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let tasks = Arc::new(std::sync::Mutex::new(tokio::task::JoinSet::new()));
        let (c, t) = (cut.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                if c.load(Ordering::SeqCst) {
                    break;
                }
                let upstream = upstream.clone();
                t.lock().unwrap().spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });
        Self {
            port,
            cut,
            tasks,
            accept,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.accept.abort();
        self.tasks.lock().unwrap().abort_all();
    }
}

/// PostgreSQL stops answering while the server runs: every endpoint answers 503 with
/// `Retry-After` in its own format, and a valid access token is never called revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn database_outage_answers_503_and_never_revokes() {
    require_postgres();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let upstream = url::Url::parse(&admin).unwrap();
    let upstream = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(5432)
    );
    let proxy = CuttableProxy::start(upstream).await;
    let port = proxy.port;
    let app = TestApp::start_routed(Backend::Postgres, &[], move |url| {
        let mut u = url::Url::parse(&url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(port)).unwrap();
        u.to_string()
    })
    .await;
    app.create_user("outage@example.com", PASSWORD).await;
    let client = app.confidential_client().await;
    let tokens = app
        .login_and_exchange(&client, "outage@example.com", "openid email")
        .await;
    let at = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().map(str::to_owned);
    let userinfo = |t: String| {
        let http = app.http.clone();
        let url = app.url("/userinfo");
        async move { http.get(url).bearer_auth(t).send().await.unwrap() }
    };
    assert_eq!(userinfo(at.clone()).await.status(), 200);

    proxy.cut();

    let check_503 = |r: &reqwest::Response| {
        assert_eq!(r.status(), 503, "{r:?}");
        assert!(
            r.headers().get("retry-after").is_some(),
            "Retry-After on {r:?}"
        );
    };
    // /userinfo: 503, no invalid_token challenge.
    let r = tokio::time::timeout(BOUND, userinfo(at.clone()))
        .await
        .expect("answered");
    check_503(&r);
    assert!(r.headers().get("www-authenticate").is_none());
    // /introspect: 503, not `active: false`.
    let r = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    check_503(&r);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // /token: RFC 6749 JSON error.
    if let Some(refresh) = refresh {
        let r = app
            .token_request(
                &client,
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            )
            .await;
        check_503(&r);
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    // The admin API: an RFC 7807 document, not 401 for a token it could not check.
    let r = app
        .http
        .get(app.url("/admin/api/v1/users"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    check_503(&r);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // /authorize: the client cannot be looked up, so no redirect: a 503 page.
    let (url, _, _, _) = app.authorize_url(&client, "openid");
    let r = app.http.get(url).send().await.unwrap();
    if r.status().is_redirection() {
        // The client was still in the short-lived client cache: the request was validated, so
        // the error goes back to the client (RFC 6749 §4.1.2.1).
        assert!(
            location(&r).contains("error=temporarily_unavailable"),
            "{}",
            location(&r)
        );
    } else {
        check_503(&r);
    }
    drop(proxy);
    app.stop().await;
}

backend_tests! {
    async fn mail_claimed_by_a_killed_process_is_delivered_by_the_next(app: TestApp) {
        use crate::accounts::{SmtpSink, free_port};
        use portcullis::store::{Channel, NewMail};

        // This test's own in-process server must not deliver the mail: its worker's first round
        // runs at start (nothing queued yet), the next an hour later.
        let app = TestApp::start_with(app.backend, &[("PORTCULLIS_MAIL__POLL_INTERVAL", "3600")]).await;

        // An SMTP server that accepts connections and never says a word.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let smtp = |port: u16| {
            vec![
                ("PORTCULLIS_MAIL__TRANSPORT", "smtp".to_owned()),
                ("PORTCULLIS_MAIL__SMTP_URL", format!("smtp://127.0.0.1:{port}")),
                ("PORTCULLIS_MAIL__RETRY_BASE", "1".to_owned()),
                ("PORTCULLIS_MAIL__POLL_INTERVAL", "1".to_owned()),
            ]
        };
        let env = |v: &[(&'static str, String)]| -> Vec<(&'static str, String)> { v.to_vec() };
        let first_env = env(&smtp(silent_port));
        let pairs: Vec<(&str, &str)> = first_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut first = ServerProcess::start(&app, &pairs).await;

        let to = "crash@example.com";
        let mail = NewMail {
            recipient: to.to_owned(),
            subject: "Survives a crash".to_owned(),
            body_text: "hello".to_owned(),
            body_html: "<p>hello</p>".to_owned(),
            channel: Channel::Email,
            expires_at: None,
        };
        app.provider.store.enqueue_mail(&mail, app.provider.clock.now()).await.unwrap();
        // The first process claims it and connects to the silent server: the claim is held.
        let (held, _) = tokio::time::timeout(BOUND, silent.accept())
            .await
            .expect("the first process tries to deliver")
            .unwrap();
        first.signal("-KILL");
        assert!(first.wait_exit().await.is_some());
        drop(held);
        let rows = app.provider.store.mail_for(to).await.unwrap();
        assert!(rows[0].sent_at.is_none() && rows[0].failed_at.is_none());

        let port = free_port();
        let sink = SmtpSink::start(port, &app.dir.path().join("sink"));
        let second_env = env(&smtp(port));
        let pairs: Vec<(&str, &str)> = second_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _second = ServerProcess::start(&app, &pairs).await;
        // Within SmtpSink's bound (30 s), far below the old 120 s reservation.
        let got = sink.wait_for(to, 1).await;
        assert!(got.contains("Survives a crash"), "{got}");
        let rows = app.provider.store.mail_for(to).await.unwrap();
        assert!(rows[0].sent_at.is_some());
        assert_eq!(rows.len(), 1, "delivered once, not queued twice");
    }
}
