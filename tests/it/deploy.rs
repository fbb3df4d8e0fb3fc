//! Deployment (issue 6): the shipped reverse-proxy and service files, tested as shipped.
//!
//! - A real nginx (Debian's, its own process: `-p <tmp>`, `daemon off`, no master) runs a copy of
//!   `deploy/nginx/portcullis.conf` with only ports, certificate paths, the upstream address and
//!   the log path substituted, terminating TLS with a certificate the test makes (openssl CLI, a
//!   CA of its own). The server behind it has `issuer = https://127.0.0.1:<nginx port>` and
//!   `trusted_proxies = 127.0.0.1/32` (nginx connects from 127.0.0.1). Clients connect from other
//!   loopback addresses (127.0.0.2, .3, .4: `local_address`), so each is a distinct, untrusted
//!   client as far as nginx and Portcullis are concerned, and none of them is a trusted proxy.
//! - `deploy/systemd/portcullis.service` passes `systemd-analyze verify` without a word, with its
//!   `ExecStart` pointed at the freshly built binary.
//!
//! What the header rules do without nginx (forged chains, untrusted peers, malformed values) is
//! `proxies.rs`; this file proves what only the real proxy can: TLS termination, `Secure` cookies
//! over https, and the headers nginx really sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use portcullis::store::{AuditQuery, AuditRecord};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, SET_COOKIE};

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "ada@example.com";

/// The path of an outside tool, or a failure naming the setup script that installs it.
fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
    assert!(
        found.status.success() && !path.is_empty(),
        "{name} is not installed: run tests/run.sh (tests/setup.d/deploy.sh installs it)"
    );
    path
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A CA of the test's own and a server certificate for IP 127.0.0.1 signed by it:
/// (CA certificate PEM path, server certificate path, server key path).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = tool("openssl");
    let p = |f: &str| dir.join(f);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(Command::new(&openssl)
        .args([
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=Portcullis test CA",
        ])
        .args(ec)
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")));
    run(Command::new(&openssl)
        .args(["req", "-subj", "/CN=127.0.0.1"])
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(
        p("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new(&openssl)
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("server.ext"))
        .arg("-out")
        .arg(p("server.pem")));
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

/// A port nobody listens on right now (nginx binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `text` with `from` replaced by `to`, which must occur exactly once: a shipped line the test
/// relies on that disappears fails the test instead of silently testing something else.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the shipped file must contain `{from}` exactly once"
    );
    text.replacen(from, to, 1)
}

/// Our own nginx process; killed and reaped when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start nginx with the shipped site file: TLS on 127.0.0.1:`tls`, the http→https redirect on
/// 127.0.0.1:`plain`, proxying to `backend`.
fn start_nginx(
    dir: &Path,
    tls: u16,
    plain: u16,
    backend: SocketAddr,
    cert: &Path,
    key: &Path,
) -> Nginx {
    let nginx = tool("nginx");
    let shipped = std::fs::read_to_string(repo_file("deploy/nginx/portcullis.conf")).unwrap();
    let mut site = shipped;
    for (from, to) in [
        (
            "    listen 443 ssl http2;\n".to_owned(),
            format!("    listen 127.0.0.1:{tls} ssl http2;\n"),
        ),
        ("    listen [::]:443 ssl http2;\n".into(), String::new()),
        (
            "    listen 80;\n".into(),
            format!("    listen 127.0.0.1:{plain};\n"),
        ),
        ("    listen [::]:80;\n".into(), String::new()),
        (
            "    server 127.0.0.1:8080;".into(),
            format!("    server {backend};"),
        ),
        (
            "ssl_certificate     /etc/letsencrypt/live/auth.example.com/fullchain.pem;".into(),
            format!("ssl_certificate {};", cert.display()),
        ),
        (
            "ssl_certificate_key /etc/letsencrypt/live/auth.example.com/privkey.pem;".into(),
            format!("ssl_certificate_key {};", key.display()),
        ),
        (
            "access_log /var/log/nginx/portcullis.access.log;".into(),
            format!("access_log {};", dir.join("access.log").display()),
        ),
    ] {
        site = replace_once(&site, &from, &to);
    }
    std::fs::write(dir.join("portcullis.conf"), site).unwrap();
    let d = dir.display();
    // The main file Debian's /etc/nginx/nginx.conf would be, reduced to what a test needs: one
    // foreground process as the current user, everything under `dir`.
    std::fs::write(
        dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             client_body_temp_path {d}/client_body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             include {d}/portcullis.conf;\n}}\n"
        ),
    )
    .unwrap();
    let conf = dir.join("nginx.conf");
    let errors = dir.join("error.log");
    // The configuration must load without a single warning.
    let test = Command::new(&nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(&errors)
        .arg("-c")
        .arg(&conf)
        .arg("-t")
        .output()
        .expect("nginx -t");
    let said = String::from_utf8_lossy(&test.stderr).into_owned();
    assert!(test.status.success(), "nginx -t: {said}");
    assert!(
        !said.contains("[warn]") && !said.contains("[emerg]"),
        "nginx -t: {said}"
    );
    let child = Command::new(&nginx)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(&errors)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut proc = Nginx {
        child,
        dir: dir.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            panic!("nginx exited ({status}): {}", proc.error_log());
        }
        let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
        if up(tls) && up(plain) {
            return proc;
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen: {}",
            proc.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A browser that trusts only the test CA and connects from `local` (a loopback address of its
/// own), sending `headers` with every request.
fn tls_browser(
    ca: &reqwest::Certificate,
    local: Ipv4Addr,
    headers: &[(&str, &str)],
) -> reqwest::Client {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.clone())
        .local_address(IpAddr::V4(local))
        .default_headers(map)
        .build()
        .unwrap()
}

fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// Every cookie set over https is `__Host-` (or `__Secure-`) prefixed, `Secure`, `HttpOnly`.
fn assert_secure_cookies(cookies: &[String], must_include: &str) {
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{must_include}="))),
        "{must_include} was set: {cookies:?}"
    );
    for c in cookies {
        let attrs: Vec<String> = c
            .split(';')
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attrs.contains(&"secure".into()), "Secure: {c}");
        assert!(attrs.contains(&"httponly".into()), "HttpOnly: {c}");
        assert!(
            c.starts_with("__Host-") || c.starts_with("__Secure-"),
            "prefixed: {c}"
        );
        if c.starts_with("__Host-") {
            assert!(
                attrs.contains(&"path=/".into()),
                "__Host- needs Path=/: {c}"
            );
            assert!(
                !attrs.iter().any(|a| a.starts_with("domain=")),
                "__Host- forbids Domain: {c}"
            );
        }
    }
}

/// One sign-in attempt on the hosted pages: open `login_path`, post the form with an extra
/// `X-Forwarded-For` a client made up. Returns (status, Set-Cookie of the post, Location).
async fn login(
    app: &TestApp,
    b: &reqwest::Client,
    login_path: &str,
    password: &str,
    forged_xff: &str,
) -> (u16, Vec<String>, Option<String>) {
    let page = b
        .get(app.url(login_path))
        .header("x-forwarded-for", forged_xff)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let csrf = input_value(&html, "csrf").expect("csrf field");
    let rid = input_value(&html, "rid").unwrap_or_default();
    let resp = b
        .post(app.url("/login"))
        .header("x-forwarded-for", forged_xff)
        .form(&[
            ("email", EMAIL),
            ("password", password),
            ("csrf", csrf.as_str()),
            ("rid", rid.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let loc = resp
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status().as_u16(), set_cookies(&resp), loc)
}

async fn audit(app: &TestApp, action: &str) -> Vec<AuditRecord> {
    app.provider
        .store
        .query_audit(&AuditQuery {
            action: Some(action.into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

backend_tests! {
    async fn the_code_flow_through_nginx_with_tls(app: TestApp) {
        let work = tempfile::tempdir().unwrap();
        let (ca_pem, cert, key) = make_certificates(work.path());
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_pem).unwrap()).unwrap();
        let (tls, plain) = (free_port(), free_port());
        let public = format!("https://127.0.0.1:{tls}");
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_ISSUER", public.as_str()),
            ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1/32"),
            // Sign-in: 2 failures per client address.
            ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_IP", "2"),
        ]).await;
        // TestApp knows its listening address as its issuer; from now on it is reached through
        // nginx only.
        let backend: SocketAddr = app.issuer.trim_start_matches("http://").parse().unwrap();
        let mut app = app;
        app.issuer = public.clone();
        app.http = tls_browser(&ca, Ipv4Addr::LOCALHOST, &[]);
        let _nginx = start_nginx(work.path(), tls, plain, backend, &cert, &key);
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;

        // Discovery over TLS names the https issuer and https endpoints.
        let disco: serde_json::Value = app.http.get(app.url("/.well-known/openid-configuration"))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(disco["issuer"], public.as_str());
        assert_eq!(disco["token_endpoint"], format!("{public}/token").as_str());
        // Plain http is only a redirect to https, and sets no cookie.
        let redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none())
            .build().unwrap()
            .get(format!("http://127.0.0.1:{plain}/authorize?x=1")).send().await.unwrap();
        assert_eq!(redirect.status(), 301);
        assert_eq!(location(&redirect), "https://127.0.0.1/authorize?x=1");
        assert!(set_cookies(&redirect).is_empty());

        // The full code flow, a person on 127.0.0.2 whose browser (or a proxy of theirs that we
        // do not trust) sends forged forwarding headers. nginx appends the address it saw
        // (X-Forwarded-For: 203.0.113.9, 127.0.0.2) and replaces Forwarded (for=127.0.0.2);
        // Portcullis trusts nginx (127.0.0.1), walks from the right, and 127.0.0.2 is the first
        // hop that is not a trusted proxy: that is the client, never the forged 203.0.113.9.
        let ann = tls_browser(&ca, Ipv4Addr::new(127, 0, 0, 2), &[("forwarded", "for=198.51.100.1")]);
        let (url, verifier, state, _) = app.authorize_url(&client, "openid email");
        let resp = ann.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let to_login = location(&resp);
        assert!(to_login.starts_with("/login"), "{to_login}");
        let page = ann.get(app.url(&to_login)).send().await.unwrap();
        assert_secure_cookies(&set_cookies(&page), "__Host-portcullis_csrf");
        let (status, cookies, back) = login(&app, &ann, &to_login, PASSWORD, "203.0.113.9").await;
        assert_eq!(status, 303);
        assert_secure_cookies(&cookies, "__Host-portcullis_session");
        let back = back.expect("redirect to the client");
        assert!(back.starts_with(REDIRECT_URI), "{back}");
        let q = query_of(&back);
        assert_eq!(q.get("state"), Some(&state));
        assert_eq!(q.get("iss"), Some(&public), "RFC 9207 iss is the https issuer");
        let resp = app.token_request(&client, &[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
        ]).await;
        assert_eq!(resp.status(), 200);
        let tokens: serde_json::Value = resp.json().await.unwrap();
        let id = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
        assert_eq!(id["iss"], public.as_str());
        assert_eq!(jwt_claims(tokens["access_token"].as_str().unwrap())["iss"], public.as_str());
        let me: serde_json::Value = app.http.get(app.url("/userinfo"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(me["email"], EMAIL);
        let logins = audit(&app, "login").await;
        assert_eq!(logins.len(), 1);
        assert_eq!(logins[0].ip.as_deref(), Some("127.0.0.2"), "the address nginx saw");

        // Each person behind nginx has a sign-in budget of their own: Bo (127.0.0.3) spends his,
        // a new forged X-Forwarded-For on every attempt notwithstanding; Cy (127.0.0.4) still
        // signs in. (Trusting no proxy would put everyone on nginx's 127.0.0.1 and one budget.)
        let bo = tls_browser(&ca, Ipv4Addr::new(127, 0, 0, 3), &[]);
        for (i, expected) in [200, 200, 429].into_iter().enumerate() {
            let forged = format!("203.0.113.{}", 20 + i);
            let (status, _, _) = login(&app, &bo, "/login", "wrong password", &forged).await;
            assert_eq!(status, expected, "attempt {i} from 127.0.0.3 (forged {forged})");
        }
        let cy = tls_browser(&ca, Ipv4Addr::new(127, 0, 0, 4), &[]);
        let (status, cookies, _) = login(&app, &cy, "/login", PASSWORD, "203.0.113.20").await;
        assert_eq!(status, 303, "another client behind the same nginx is not limited");
        assert_secure_cookies(&cookies, "__Host-portcullis_session");
        assert_secure_cookies(&cookies, "__Host-portcullis_device");
        let limited = audit(&app, "rate_limited").await;
        assert_eq!(limited.len(), 1);
        assert_eq!(limited[0].ip.as_deref(), Some("127.0.0.3"));
        let logins = audit(&app, "login").await;
        assert_eq!(logins[0].ip.as_deref(), Some("127.0.0.4"));
    }
}

/// `systemd-analyze verify` of the shipped unit, with `ExecStart` pointed at the binary this
/// build made (the shipped path, /usr/local/bin/portcullis, is not installed here): any output at
/// all fails the test. A copy with a misspelt directive shows the check can fail.
#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let analyze = tool("systemd-analyze");
    let shipped = std::fs::read_to_string(repo_file("deploy/systemd/portcullis.service")).unwrap();
    for hardening in [
        "DynamicUser=yes",
        "StateDirectory=portcullis",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "EnvironmentFile=-/etc/portcullis/env",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=",
    ] {
        assert!(shipped.contains(hardening), "the unit sets {hardening:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let verify = |text: &str| {
        let unit = dir.path().join("portcullis.service");
        std::fs::write(&unit, text).unwrap();
        let out = Command::new(&analyze)
            .arg("verify")
            .arg(&unit)
            .output()
            .expect("systemd-analyze");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    };
    let built = replace_once(
        &shipped,
        "ExecStart=/usr/local/bin/portcullis serve",
        &format!("ExecStart={} serve", env!("CARGO_BIN_EXE_portcullis")),
    );
    let (ok, said) = verify(&built);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );

    let broken = built.replace("ProtectSystem=strict", "ProtectSystm=strict");
    let (_, said) = verify(&broken);
    assert!(
        said.contains("ProtectSystm"),
        "verify reports a misspelt directive: {said}"
    );
}
