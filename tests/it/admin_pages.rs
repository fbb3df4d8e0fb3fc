//! Issue 5: the management pages: session gate and return path, admin-only, CSRF on every
//! form, and the pages working over the same service layer as the API. `browser` drives Debian's
//! chromium through chromedriver for the end-to-end journey.

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::*;

const ADMIN: &str = "pages-admin@example.com";

/// Sign `browser` in directly at /login (no authorization request).
async fn sign_in(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let (status, to) = app.submit_login(browser, "/login", email, PASSWORD).await;
    assert_eq!(status, 303);
    assert_eq!(to.as_deref(), Some("/"));
}

async fn get(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
) -> (StatusCode, String, Option<String>) {
    let resp = b.get(app.url(path)).send().await.unwrap();
    let status = resp.status();
    let loc = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), loc)
}

async fn post(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let resp = b.post(app.url(path)).form(form).send().await.unwrap();
    let status = resp.status();
    let loc = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), loc)
}

fn csrf_of(html: &str) -> String {
    input_value(html, "csrf").expect("csrf field")
}

/// Follow a listing page's pager link from `first` to the end: the text of `cell` in every
/// row of every page, and the number of pages.
async fn walk_pages(
    app: &TestApp,
    b: &reqwest::Client,
    first: &str,
    cell: &str,
) -> (Vec<String>, usize) {
    let (rows_sel, pager_sel) = (
        scraper::Selector::parse(cell).unwrap(),
        scraper::Selector::parse("p.pager a").unwrap(),
    );
    let (mut seen, mut pages, mut next) = (vec![], 0, Some(first.to_owned()));
    while let Some(path) = next.take() {
        let (status, html, _) = get(app, b, &path).await;
        assert_eq!(status, 200, "{path}");
        pages += 1;
        assert!(pages <= 10, "the pager never ends");
        let doc = scraper::Html::parse_document(&html);
        seen.extend(doc.select(&rows_sel).map(|e| e.text().collect::<String>()));
        next = doc
            .select(&pager_sel)
            .next()
            .and_then(|a| a.value().attr("href"))
            .map(str::to_owned);
    }
    (seen, pages)
}

backend_tests! {
    async fn visitors_sign_in_and_come_back(app: TestApp) {
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let b = browser();
        let (status, _, loc) = get(&app, &b, "/admin/audit?action=login").await;
        assert_eq!(status, 303);
        assert_eq!(loc.as_deref(), Some("/login"));
        sign_in(&app, &b, ADMIN).await;
        let (status, _, loc) = get(&app, &b, "/").await;
        assert_eq!(status, 303);
        assert_eq!(loc.as_deref(), Some("/admin/audit?action=login"));
        // Used once: the next visit to / shows the normal page.
        let (status, _, _) = get(&app, &b, "/").await;
        assert_eq!(status, 200);
        let (status, html, _) = get(&app, &b, "/admin").await;
        assert_eq!(status, 200);
        assert!(html.contains("<svg"), "dashboard has the chart");
        assert!(html.contains("id=\"count-users\">1<"));
    }

    async fn return_path_cannot_leave_the_admin_area(app: TestApp) {
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        for evil in ["//evil.example/admin", "https://evil.example/", "/admin/..//evil.example", "/\\evil.example"] {
            let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
            let url = url::Url::parse(&app.url("/")).unwrap();
            jar.add_cookie_str(&format!("portcullis_admin_next={evil}; Path=/"), &url);
            let b = reqwest::Client::builder().cookie_provider(jar).redirect(reqwest::redirect::Policy::none()).build().unwrap();
            sign_in(&app, &b, ADMIN).await;
            let (status, _, loc) = get(&app, &b, "/").await;
            assert_eq!(status, 200, "{evil} must be ignored, got {loc:?}");
        }
    }

    async fn non_admins_get_403(app: TestApp) {
        app.create_user(ADMIN, PASSWORD).await;
        let b = browser();
        sign_in(&app, &b, ADMIN).await;
        for path in ["/admin", "/admin/users", "/admin/clients", "/admin/groups", "/admin/audit", "/admin/audit/export?format=csv"] {
            let (status, _, _) = get(&app, &b, path).await;
            assert_eq!(status, 403, "{path}");
        }
        let (status, _, _) = post(&app, &b, "/admin/groups", &[("name", "x"), ("csrf", "x")]).await;
        assert_eq!(status, 403);
        let groups = app.provider.store.list_groups().await.unwrap();
        assert!(groups.is_empty());
    }

    async fn forms_need_the_csrf_token(app: TestApp) {
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let b = browser();
        sign_in(&app, &b, ADMIN).await;
        let (status, html, _) = post(&app, &b, "/admin/groups", &[("name", "sneaky"), ("csrf", "forged")]).await;
        assert_eq!(status, 403);
        assert!(html.contains("Form expired"));
        let (status, _, _) = post(&app, &b, "/admin/users", &[("email", "x@example.com")]).await;
        assert_eq!(status, 403);
        assert!(app.provider.store.list_groups().await.unwrap().is_empty());
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("x@example.com").unwrap()).await.unwrap().is_none());
    }

    async fn manage_users_clients_groups_and_read_the_audit(app: TestApp) {
        let admin = app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        let b = browser();
        sign_in(&app, &b, ADMIN).await;

        // A group
        let (_, html, _) = get(&app, &b, "/admin/groups").await;
        let (status, _, loc) = post(&app, &b, "/admin/groups", &[("csrf", &csrf_of(&html)), ("name", "Support")]).await;
        assert_eq!(status, 303);
        let group_path = loc.unwrap();
        let (status, html, _) = post(&app, &b, "/admin/groups", &[("csrf", &csrf_of(&html)), ("name", "Support")]).await;
        assert_eq!(status, 422);
        assert!(html.contains("already exists"));

        // A user, put in the group, verified, disabled
        let (_, html, _) = get(&app, &b, "/admin/users").await;
        let (status, html_err, _) = post(&app, &b, "/admin/users", &[("csrf", &csrf_of(&html)), ("email", "nope")]).await;
        assert_eq!(status, 422);
        assert!(html_err.contains("role=\"alert\""));
        let (status, _, loc) = post(&app, &b, "/admin/users", &[("csrf", &csrf_of(&html)), ("email", "ivy@example.com"), ("name", "Ivy <b>")]).await;
        assert_eq!(status, 303);
        let user_path = loc.unwrap();
        let (status, html, _) = get(&app, &b, &user_path).await;
        assert_eq!(status, 200);
        assert!(html.contains("Ivy &lt;b&gt;"), "escaped");
        let group_id = group_path.rsplit('/').next().unwrap();
        let (status, html, _) = post(&app, &b, &user_path, &[("csrf", &csrf_of(&html)), ("action", "add_group"), ("group_id", group_id)]).await;
        assert_eq!(status, 200);
        assert!(html.contains("Added to the group."));
        let ivy = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("ivy@example.com").unwrap()).await.unwrap().unwrap();
        assert_eq!(ivy.groups, vec!["Support".to_owned()]);
        let (status, html, _) = post(&app, &b, &user_path, &[("csrf", &csrf_of(&html)), ("action", "verify_email")]).await;
        assert_eq!(status, 200);
        let (status, html, _) = post(&app, &b, &user_path, &[("csrf", &csrf_of(&html)), ("action", "update"),
            ("email", "ivy@example.com"), ("name", "Ivy"), ("attributes", "{\"desk\": 7}")]).await;
        assert_eq!(status, 200, "{html}");
        let (status, html, _) = post(&app, &b, &user_path, &[("csrf", &csrf_of(&html)), ("action", "update"), ("attributes", "[1]")]).await;
        assert_eq!(status, 422);
        let (status, _, _) = post(&app, &b, &user_path, &[("csrf", &csrf_of(&html)), ("action", "disable")]).await;
        assert_eq!(status, 200);
        assert!(app.provider.store.find_user(&ivy.id).await.unwrap().unwrap().disabled_at.is_some());
        // The last admin cannot delete itself from the page either.
        let (_, html, _) = get(&app, &b, &format!("/admin/users/{}", admin.id)).await;
        let (status, html, _) = post(&app, &b, &format!("/admin/users/{}", admin.id), &[("csrf", &csrf_of(&html)), ("action", "delete")]).await;
        assert_eq!(status, 422);
        assert!(html.contains("last administrator"));

        // Search and filters
        let (_, html, _) = get(&app, &b, &format!("/admin/users?q=IVY&group={group_id}")).await;
        assert!(html.contains("ivy@example.com"));
        let (_, html, _) = get(&app, &b, "/admin/users?disabled=no").await;
        assert!(!html.contains("ivy@example.com"));

        // A client: the secret is shown once
        let (_, html, _) = get(&app, &b, "/admin/clients").await;
        let (status, html, _) = post(&app, &b, "/admin/clients", &[("csrf", &csrf_of(&html)), ("name", "Portal"),
            ("token_endpoint_auth_method", "client_secret_basic"), ("redirect_uris", "http://example.com/cb")]).await;
        assert_eq!(status, 422);
        assert!(html.contains("non-loopback"));
        let (status, html, _) = post(&app, &b, "/admin/clients", &[("csrf", &csrf_of(&html)), ("name", "Portal"),
            ("token_endpoint_auth_method", "client_secret_basic"), ("redirect_uris", "https://portal.example/cb"),
            ("web_origins", "https://portal.example/app")]).await;
        assert_eq!(status, 422);
        assert!(html.contains("web_origins"), "the field is named");
        let (status, html, _) = post(&app, &b, "/admin/clients", &[("csrf", &csrf_of(&html)), ("name", "Portal"),
            ("token_endpoint_auth_method", "client_secret_basic"), ("redirect_uris", "https://portal.example/cb\nhttp://127.0.0.1:8000/cb"),
            ("grant_types", "authorization_code refresh_token"), ("scopes", "openid email groups"),
            ("web_origins", "https://portal.example\nhttp://127.0.0.1:8000")]).await;
        assert_eq!(status, 201, "{html}");
        assert!(html.contains("id=\"client-secret\""));
        let doc = scraper::Html::parse_document(&html);
        let id_sel = scraper::Selector::parse("#client-id").unwrap();
        let client_id = doc.select(&id_sel).next().unwrap().text().collect::<String>();
        let client = app.provider.store.find_client(&client_id).await.unwrap().unwrap();
        assert_eq!(client.redirect_uris, vec!["https://portal.example/cb", "http://127.0.0.1:8000/cb"]);
        assert_eq!(client.web_origins, vec!["https://portal.example", "http://127.0.0.1:8000"]);
        let (_, html, _) = get(&app, &b, &format!("/admin/clients/{client_id}")).await;
        let doc = scraper::Html::parse_document(&html);
        let field = scraper::Selector::parse("textarea[name=web_origins]").unwrap();
        let shown: String = doc.select(&field).next().expect("web_origins field").text().collect();
        assert_eq!(shown, "https://portal.example\nhttp://127.0.0.1:8000");
        assert!(!html.contains("id=\"client-secret\""), "shown only once");
        let (status, html, _) = post(&app, &b, &format!("/admin/clients/{client_id}"), &[("csrf", &csrf_of(&html)), ("action", "rotate_secret")]).await;
        assert_eq!(status, 200);
        assert!(html.contains("id=\"client-secret\""));

        // The audit page finds all of it; the CSV export too.
        let (status, html, _) = get(&app, &b, &format!("/admin/audit?user={}", ivy.id)).await;
        assert_eq!(status, 200);
        for action in ["admin.user.create", "admin.group.member_add", "admin.user.update", "admin.user.disable"] {
            assert!(html.contains(action), "{action} on the audit page");
        }
        let (_, html, _) = get(&app, &b, "/admin/audit?action=admin.client.secret_rotate&outcome=success").await;
        assert!(html.contains(&client_id));
        let (status, _, _) = get(&app, &b, "/admin/audit?from=yesterday").await;
        assert_eq!(status, 422);
        let (status, csv, _) = get(&app, &b, &format!("/admin/audit/export?format=csv&client_id={client_id}")).await;
        assert_eq!(status, 200);
        assert!(csv.starts_with("id,at,actor,action"));
        assert_eq!(csv.lines().count(), 3);
    }
}

/// A minimal W3C WebDriver client over reqwest, talking to Debian's `chromedriver` driving
/// headless `chromium` (no extra crate: the protocol is a handful of JSON calls).
mod webdriver {
    use std::process::{Child, Command, Stdio};

    use base64::Engine;
    use serde_json::{Value, json};

    const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

    pub struct Browser {
        http: reqwest::Client,
        base: String,
        session: String,
        driver: Child,
        _profile: tempfile::TempDir,
    }

    pub fn installed() -> bool {
        ["chromium", "chromedriver"].iter().all(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }

    impl Browser {
        pub async fn start() -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let driver = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver");
            let base = format!("http://127.0.0.1:{port}");
            let http = reqwest::Client::new();
            let mut ready = false;
            for _ in 0..100 {
                if let Ok(r) = http.get(format!("{base}/status")).send().await
                    && let Ok(v) = r.json::<Value>().await
                    && v["value"]["ready"] == true
                {
                    ready = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert!(ready, "chromedriver did not start");
            let profile = tempfile::tempdir().unwrap();
            let caps = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--window-size=1280,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}});
            let resp: Value = http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
                .expect("new session")
                .json()
                .await
                .unwrap();
            let session = resp["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {resp}"))
                .to_owned();
            Self {
                http,
                base,
                session,
                driver,
                _profile: profile,
            }
        }

        async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
            let url = format!("{}/session/{}{path}", self.base, self.session);
            let mut req = self.http.request(method, url);
            req = req.json(&body.unwrap_or_else(|| json!({})));
            let v: Value = req
                .send()
                .await
                .expect("webdriver call")
                .json()
                .await
                .unwrap();
            assert!(v["value"].get("error").is_none(), "webdriver {path}: {v}");
            v["value"].clone()
        }

        pub async fn goto(&self, url: &str) {
            self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
                .await;
        }

        pub async fn url(&self) -> String {
            let url = format!("{}/session/{}/url", self.base, self.session);
            let v: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["value"].as_str().unwrap().to_owned()
        }

        pub async fn source(&self) -> String {
            let url = format!("{}/session/{}/source", self.base, self.session);
            let v: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["value"].as_str().unwrap().to_owned()
        }

        async fn find(&self, css: &str) -> String {
            let v = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            v[ELEMENT]
                .as_str()
                .unwrap_or_else(|| panic!("no element {css}"))
                .to_owned()
        }

        /// Wait (up to 10 s, polling) until an element matching `css` is on the current page: a
        /// click that submits a form returns before the next page has loaded.
        pub async fn wait_for(&self, css: &str) {
            for _ in 0..200 {
                let v = self
                    .call(
                        reqwest::Method::POST,
                        "/elements",
                        Some(json!({"using": "css selector", "value": css})),
                    )
                    .await;
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("timed out waiting for {css} on {}", self.url().await);
        }

        pub async fn type_into(&self, css: &str, text: &str) {
            let id = self.find(css).await;
            self.call(reqwest::Method::POST, &format!("/element/{id}/clear"), None)
                .await;
            self.call(
                reqwest::Method::POST,
                &format!("/element/{id}/value"),
                Some(json!({"text": text})),
            )
            .await;
        }

        pub async fn click(&self, css: &str) {
            let id = self.find(css).await;
            self.call(reqwest::Method::POST, &format!("/element/{id}/click"), None)
                .await;
        }

        /// End the session: chromedriver closes its chromium.
        pub async fn quit(&self) {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = self.http.delete(url).send().await;
        }

        /// Save a PNG screenshot under `target/artifacts/`.
        pub async fn screenshot(&self, name: &str) {
            let url = format!("{}/session/{}/screenshot", self.base, self.session);
            let v: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let png = base64::engine::general_purpose::STANDARD
                .decode(v["value"].as_str().unwrap())
                .unwrap();
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/artifacts");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }

    impl Drop for Browser {
        fn drop(&mut self) {
            // Even when the test failed half-way: end the session (chromedriver then closes its
            // chromium) with a plain blocking request, then end the chromedriver this test started.
            if let Some(addr) = self.base.strip_prefix("http://")
                && let Ok(mut conn) = std::net::TcpStream::connect(addr)
            {
                use std::io::{Read, Write};
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let req = format!(
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                if conn.write_all(req.as_bytes()).is_ok() {
                    let _ = conn.read(&mut [0u8; 512]);
                }
            }
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
    }
}

backend_tests! {
    async fn listing_pages_walk_every_row_once_and_keep_their_filters(app: TestApp) {
        app.create_user_with(ADMIN, PASSWORD, true, &["admin"]).await;
        // 120 users, some of them matching a search: more than two pages of 50.
        let users: Vec<_> = (0..120)
            .map(|i| portcullis::domain::NewUser {
                email: portcullis::domain::Email::parse(&format!("{}{i:03}@example.net", if i % 2 == 0 { "even" } else { "odd" })).unwrap(),
                email_verified: false,
                password_hash: None,
                name: None,
                roles: vec![],
                phone_number: None,
                locale: None,
            })
            .collect();
        app.provider.store.bulk_create_users(&users, portcullis::now()).await.unwrap();
        for i in 0..75 {
            portcullis::audit::record(
                app.provider.store.as_ref(),
                portcullis::audit::Event::new("test.paging").target(format!("entry{i:03}")),
            ).await;
        }
        let b = browser();
        sign_in(&app, &b, ADMIN).await;

        let (emails, pages) = walk_pages(&app, &b, "/admin/users", "tbody tr td:first-child a").await;
        assert_eq!(pages, 3);
        assert_eq!(emails.len(), 121);
        let mut sorted = emails.clone();
        sorted.sort();
        assert_eq!(emails, sorted, "pages follow one another in e-mail order");
        sorted.dedup();
        assert_eq!(sorted.len(), 121, "no row twice");

        // The search is kept on every page.
        let (emails, pages) = walk_pages(&app, &b, "/admin/users?q=odd", "tbody tr td:first-child a").await;
        assert_eq!(pages, 2);
        assert_eq!(emails.len(), 60);
        assert!(emails.iter().all(|e| e.starts_with("odd")), "{emails:?}");

        // A group page shows its first 50 members and links to the rest, page by page.
        let group = app.provider.store.create_group("big", portcullis::now()).await.unwrap();
        for i in (1..120).step_by(2) {
            let u = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(&format!("odd{i:03}@example.net")).unwrap()).await.unwrap().unwrap();
            assert!(app.provider.store.add_member(&group.id, &u.id, portcullis::now()).await.unwrap());
        }
        let (status, html, _) = get(&app, &b, &format!("/admin/groups/{}", group.id)).await;
        assert_eq!(status, 200);
        let doc = scraper::Html::parse_document(&html);
        let shown = doc.select(&scraper::Selector::parse("section[aria-labelledby=members] li a").unwrap()).count();
        assert_eq!(shown, 50);
        let all = doc
            .select(&scraper::Selector::parse("p.pager a").unwrap())
            .next()
            .and_then(|a| a.value().attr("href").map(str::to_owned))
            .expect("a link to all members");
        let (members, pages) = walk_pages(&app, &b, &all, "tbody tr td:first-child a").await;
        assert_eq!((members.len(), pages), (60, 2));
        assert!(members.iter().all(|e| e.starts_with("odd")));

        let small = app.provider.store.create_group("small", portcullis::now()).await.unwrap();
        let (_, html, _) = get(&app, &b, &format!("/admin/groups/{}", small.id)).await;
        assert!(html.contains("No members.") && !html.contains("class=\"pager\""));

        // The audit log pages back in time, its filter kept.
        let (targets, pages) = walk_pages(&app, &b, "/admin/audit?action=test.paging", "#audit tbody tr td:nth-child(5)").await;
        assert_eq!(pages, 2);
        let expected: Vec<String> = (0..75).rev().map(|i| format!("entry{i:03}")).collect();
        assert_eq!(targets, expected, "newest first, each once");
    }
}

/// The admin journey in a real browser: sign in, register a client, create a user, put them in
/// a group, and find those events on the audit page. Screenshots: `target/artifacts/admin-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_journey() {
    assert!(
        webdriver::installed(),
        "chromium and chromedriver are not installed: run the suite with tests/run.sh, which \
         installs them (tests/setup.d/admin.sh)"
    );
    let app = TestApp::start(Backend::Sqlite).await;
    app.create_user_with(ADMIN, PASSWORD, true, &["admin"])
        .await;
    let b = webdriver::Browser::start().await;

    b.goto(&app.url("/admin")).await;
    assert!(b.url().await.ends_with("/login"), "sent to sign in");
    b.type_into("#email", ADMIN).await;
    b.type_into("#password", PASSWORD).await;
    b.screenshot("admin-01-login").await;
    b.click("form button[type=submit]").await;
    b.wait_for("#count-users").await;
    assert_eq!(
        b.url().await,
        app.url("/admin"),
        "back on the admin page after sign-in"
    );
    assert!(b.source().await.contains("Sign-ins per day"));
    b.screenshot("admin-02-dashboard").await;

    // Register a client: the secret is shown once.
    b.goto(&app.url("/admin/clients")).await;
    b.type_into("#name", "Browser Portal").await;
    b.type_into("#redirect_uris", "https://portal.example/cb")
        .await;
    b.click("form[method=post][action='/admin/clients'] button[type=submit]")
        .await;
    b.wait_for("#client-secret, .alert").await;
    let html = b.source().await;
    assert!(
        html.contains("id=\"client-secret\""),
        "secret shown: {html}"
    );
    b.screenshot("admin-03-client-created").await;

    // A group, then a user who joins it.
    b.goto(&app.url("/admin/groups")).await;
    b.type_into("#name", "Browser Crew").await;
    b.click("form[method=post][action='/admin/groups'] button[type=submit]")
        .await;
    b.wait_for("input[value=rename]").await;
    assert!(b.url().await.contains("/admin/groups/"));

    b.goto(&app.url("/admin/users")).await;
    b.type_into("#new-email", "june@example.com").await;
    b.type_into("#new-name", "June Browser").await;
    b.click("form[method=post][action='/admin/users'] button[type=submit]")
        .await;
    b.wait_for("input[value=add_group]").await;
    assert!(
        b.url().await.contains("/admin/users/"),
        "on the new user's page"
    );
    b.click("form:has(input[value=add_group]) button[type=submit]")
        .await;
    b.wait_for(".notice").await;
    assert!(b.source().await.contains("Added to the group."));
    b.screenshot("admin-04-user-in-group").await;
    let june = app
        .provider
        .store
        .find_user_by_email(&portcullis::domain::Email::parse("june@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(june.groups, vec!["Browser Crew".to_owned()]);

    // The audit page shows all of it.
    b.goto(&app.url("/admin/audit")).await;
    b.wait_for("table#audit").await;
    let html = b.source().await;
    for action in [
        "admin.client.create",
        "admin.group.create",
        "admin.user.create",
        "admin.group.member_add",
        "login",
    ] {
        assert!(html.contains(action), "{action} on the audit page");
    }
    b.type_into("#action", "admin.group.member_add").await;
    b.click("form[role=search] button[type=submit]").await;
    b.wait_for("input#action[value='admin.group.member_add']")
        .await;
    let html = b.source().await;
    assert!(html.contains(&june.id));
    assert!(!html.contains("admin.client.create"));
    b.screenshot("admin-05-audit").await;
    b.quit().await;
}
