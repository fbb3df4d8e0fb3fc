//! `TestApp`: a real Portcullis on 127.0.0.1:0 with its own database (a temp SQLite file, or a
//! fresh PostgreSQL schema per test), its own keys, and fast argon2 parameters.
#![allow(
    dead_code,
    reason = "shared by every suite; not every suite uses every helper"
)]

use std::collections::HashMap;

use portcullis::config::Settings;
use portcullis::crypto::{hash_secret, random_secret};
use portcullis::domain::{
    Client, Email, GrantType, NewUser, Password, SUPPORTED_SCOPES, TokenEndpointAuthMethod, User,
};
use portcullis::oauth::Provider;
use portcullis::startup::Application;
use reqwest::header::LOCATION;
use sqlx::Connection;

/// Runs each listed test on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set:
///
/// ```ignore
/// backend_tests! {
///     async fn name(app: TestApp) { ... }
/// }
/// ```
///
/// Without `TEST_DATABASE_URL` at build time (build.rs sets `cfg(portcullis_pg_tests)` from it)
/// each `postgres` variant is `#[ignore]`d, so `cargo test` counts it as ignored, never as a pass.
/// Run on purpose (`--include-ignored`) without the variable, it fails.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident : TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::helpers::TestApp::start($crate::helpers::Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(portcullis_pg_tests),
                    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
                )]
                async fn postgres() {
                    $crate::helpers::require_postgres();
                    run($crate::helpers::TestApp::start($crate::helpers::Backend::Postgres).await).await;
                }
            }
        )*
    };
}

/// The PostgreSQL variant of a test runs only against a configured server: without
/// `TEST_DATABASE_URL` it fails here rather than passing having checked nothing.
pub fn require_postgres() {
    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
    assert!(
        !url.is_empty(),
        "TEST_DATABASE_URL is not set: this PostgreSQL test cannot run (set it, e.g. to \
         postgres://postgres@127.0.0.1:5432/postgres)"
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub issuer: String,
    pub provider: Provider,
    /// Where the signing keys live (the database on PostgreSQL): reload, rotate, prune.
    pub keyring: std::sync::Arc<portcullis::keyring::Keyring>,
    pub backend: Backend,
    /// Cookie-keeping client that does not follow redirects (a browser we steer by hand).
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL schema this test owns (dropped with the app).
    pg_schema: Option<String>,
}

/// A client registered for a test, with its secret (confidential clients only).
#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
}

/// The key-encryption key of the PostgreSQL test servers (required there; 32 bytes, base64).
pub const TEST_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A fresh, uniquely named PostgreSQL schema on the server of `TEST_DATABASE_URL`, and the URL
/// that makes it the server's `search_path` (migrations and every table live in it). Schemas
/// are cheap to create and drop, unlike databases (each CREATE/DROP DATABASE checkpoints).
pub async fn fresh_pg_schema() -> (String, String) {
    let admin = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to TEST_DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    conn.close().await.ok();
    let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={name}"));
    (url.to_string(), name)
}

/// Drop a test's schema (from `Drop`, so on a separate thread with its own runtime).
pub fn drop_pg_schema(name: String) {
    let Ok(admin) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let dropped = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(&mut conn)
            .await
            .ok()?;
            conn.close().await.ok()
        })
    })
    .join();
    if !matches!(dropped, Ok(Some(()))) {
        eprintln!("could not drop a test schema; .ci/run removes leftovers");
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    /// Start with extra configuration, as `PORTCULLIS_*` environment pairs.
    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        Self::start_routed(backend, extra, |url| url).await
    }

    /// Like `start_with`, with the database URL passed through `route` first (e.g. to reach the
    /// database through a proxy the test can cut).
    pub async fn start_routed(
        backend: Backend,
        extra: &[(&str, &str)],
        route: impl FnOnce(String) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}");
        let mut pg_schema = None;
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("test.db").display()),
            Backend::Postgres => {
                let (url, schema) = fresh_pg_schema().await;
                pg_schema = Some(schema);
                url
            }
        };
        let database_url = route(database_url);
        let keys = dir.path().join("keys");
        let mut env: Vec<(String, String)> = vec![
            ("PORTCULLIS_ISSUER".into(), issuer.clone()),
            ("PORTCULLIS_BIND".into(), addr.to_string()),
            ("PORTCULLIS_DATABASE_URL".into(), database_url),
            ("PORTCULLIS_KEYS_DIR".into(), keys.display().to_string()),
            ("PORTCULLIS_ARGON2__MEMORY_KIB".into(), "8192".into()),
            ("PORTCULLIS_ARGON2__ITERATIONS".into(), "1".into()),
            ("PORTCULLIS_LOG_LEVEL".into(), "warn".into()),
        ];
        if backend == Backend::Postgres {
            env.push(("PORTCULLIS_KEYS_ENCRYPTION_KEY".into(), TEST_KEK.into()));
        }
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let settings = Settings::load_from(None, std::path::Path::new("/nonexistent"), &env)
            .expect("test settings")
            .settings;
        let app = Application::with_listener(settings, listener)
            .await
            .expect("application starts");
        let provider = app.provider().clone();
        let keyring = app.keyring();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Self {
            issuer,
            provider,
            keyring,
            backend,
            http: browser(),
            dir,
            shutdown: Some(tx),
            server: Some(server),
            pg_schema,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Stop serving and wait until the server has closed its pool.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }

    pub async fn create_user(&self, email: &str, password: &str) -> User {
        self.create_user_with(email, password, true, &[]).await
    }

    pub async fn create_user_with(
        &self,
        email: &str,
        password: &str,
        verified: bool,
        roles: &[&str],
    ) -> User {
        let hash = self
            .provider
            .hasher
            .hash(&Password::parse(password).expect("valid password"))
            .await
            .expect("hash");
        self.provider
            .store
            .create_user(
                &NewUser {
                    email: Email::parse(email).expect("valid e-mail"),
                    email_verified: verified,
                    password_hash: Some(hash),
                    name: Some("Test Person".into()),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    phone_number: None,
                    locale: None,
                },
                portcullis::now(),
            )
            .await
            .expect("create user")
    }

    /// A confidential client (client_secret_basic) allowed every grant and scope.
    pub async fn confidential_client(&self) -> TestClient {
        self.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |_| {})
            .await
    }

    pub async fn public_client(&self) -> TestClient {
        self.register_client(TokenEndpointAuthMethod::None, |_| {})
            .await
    }

    /// Register a client; `tweak` may change any setting before it is stored.
    pub async fn register_client(
        &self,
        method: TokenEndpointAuthMethod,
        tweak: impl FnOnce(&mut Client),
    ) -> TestClient {
        let secret = (method != TokenEndpointAuthMethod::None).then(|| random_secret(32));
        let now = portcullis::now();
        let mut client = Client {
            id: portcullis::crypto::new_client_id(),
            name: "Test App".into(),
            secret_hash: secret.as_deref().map(hash_secret),
            redirect_uris: vec![REDIRECT_URI.into()],
            grant_types: GrantType::ALL
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: SUPPORTED_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            token_endpoint_auth_method: method,
            id_token_signed_response_alg: None,
            access_token_ttl: None,
            require_consent: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            audiences: vec![],
            web_origins: vec![],
            refresh_token_idle_ttl: None,
            refresh_token_absolute_ttl: None,
            created_at: now,
            updated_at: now,
            disabled_at: None,
        };
        tweak(&mut client);
        self.provider
            .store
            .create_client(&client)
            .await
            .expect("create client");
        TestClient {
            redirect_uri: client.redirect_uris[0].clone(),
            id: client.id,
            secret,
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(schema) = self.pg_schema.take() {
            drop_pg_schema(schema);
        }
    }
}

/// The `Location` header of a redirect response.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location header (status {})", resp.status()))
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// Query parameters of a URL (relative URLs are resolved against a dummy base).
pub fn query_of(url: &str) -> HashMap<String, String> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://relative.invalid").and_then(|b| b.join(url)))
        .expect("URL");
    parsed.query_pairs().into_owned().collect()
}

/// The value of `<input name=NAME value=...>` in an HTML page.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let doc = scraper::Html::parse_document(html);
    let sel = scraper::Selector::parse(&format!("input[name=\"{name}\"]")).ok()?;
    doc.select(&sel)
        .next()
        .and_then(|e| e.value().attr("value"))
        .map(str::to_owned)
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce_pair() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = random_secret(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

impl TestApp {
    /// Drive the browser through `/authorize` → login form → back to the client. Returns the
    /// final redirect to the client's redirect URI (code or error in its query).
    pub async fn authorize_with_login(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        email: &str,
        password: &str,
    ) -> String {
        let resp = browser.get(authorize_url).send().await.expect("authorize");
        assert_eq!(resp.status(), 303, "authorize should redirect to login");
        let to = location(&resp);
        if !to.starts_with("/login") {
            return to;
        }
        let (status, to) = self.submit_login(browser, &to, email, password).await;
        assert_eq!(status, 303, "login should redirect back to the client");
        to.expect("redirect")
    }

    /// Open the login page at `login_path`, submit the form, and return the status and
    /// `Location` (if any).
    pub async fn submit_login(
        &self,
        browser: &reqwest::Client,
        login_path: &str,
        email: &str,
        password: &str,
    ) -> (u16, Option<String>) {
        let page = browser
            .get(self.url(login_path))
            .send()
            .await
            .expect("login page");
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("html");
        let csrf = input_value(&html, "csrf").expect("csrf field");
        let rid = input_value(&html, "rid").unwrap_or_default();
        let resp = browser
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf", csrf.as_str()),
                ("rid", rid.as_str()),
            ])
            .send()
            .await
            .expect("login post");
        let status = resp.status().as_u16();
        let loc = resp
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().expect("ASCII").to_owned());
        (status, loc)
    }

    /// A simple authorization URL for `client` with PKCE; returns (url, verifier, state, nonce).
    pub fn authorize_url(
        &self,
        client: &TestClient,
        scope: &str,
    ) -> (String, String, String, String) {
        let (verifier, challenge) = pkce_pair();
        let state = random_secret(12);
        let nonce = random_secret(12);
        let mut url = url::Url::parse(&self.url("/authorize")).expect("url");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &client.redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url.to_string(), verifier, state, nonce)
    }

    /// POST /token with client_secret_basic (or client_id in the body for public clients).
    pub async fn token_request(
        &self,
        client: &TestClient,
        params: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let req = self.http.post(self.url("/token"));
        let req = match &client.secret {
            Some(secret) => req.basic_auth(&client.id, Some(secret)),
            None => {
                form.push(("client_id", client.id.as_str()));
                req
            }
        };
        req.form(&form).send().await.expect("token request")
    }

    /// Sign in through the real pages and exchange the code: returns the token response JSON.
    pub async fn login_and_exchange(
        &self,
        client: &TestClient,
        email: &str,
        scope: &str,
    ) -> serde_json::Value {
        let browser = browser();
        let (url, verifier, _, _) = self.authorize_url(client, scope);
        let back = self
            .authorize_with_login(&browser, &url, email, PASSWORD)
            .await;
        let code = query_of(&back).remove("code").expect("code in redirect");
        let resp = self
            .token_request(
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &client.redirect_uri),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(resp.status(), 200);
        resp.json().await.expect("token JSON")
    }
}
