//! Sign-in throttling (docs/accounts.md, "Sign-in throttling"): failures, not requests, are
//! counted; a known device (its cookie has signed in to the account before) is not held back by
//! failures others caused; unknown devices and unknown accounts are refused alike; the limits
//! are shared by every server process on one PostgreSQL database.

use std::sync::Arc;

use portcullis::store::{AuditQuery, Reservation};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER, SET_COOKIE};

use crate::backend_tests;
use crate::faults::ServerProcess;
use crate::helpers::*;

const TOO_MANY: &str = "Too many attempts. Please wait a little and try again.";
const BAD: &str = "The e-mail address or password is incorrect.";
const WRONG: &str = "not the password";

/// A browser at `base` whose client address (through the trusted proxy) is `ip`, holding only
/// the device cookie `device` (if any).
fn browser_at(base: &str, ip: &str, device: Option<&str>) -> reqwest::Client {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    if let Some(d) = device {
        jar.add_cookie_str(
            &format!("portcullis_device={d}; Path=/"),
            &base.parse().unwrap(),
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-for", HeaderValue::from_str(ip).unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Fill in and send the login form at `base`.
async fn login_at(
    base: &str,
    b: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = b.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = input_value(&page.text().await.unwrap(), "csrf").expect("csrf field");
    b.post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", csrf.as_str()),
            ("rid", ""),
        ])
        .send()
        .await
        .unwrap()
}

async fn login(app: &TestApp, b: &reqwest::Client, email: &str, password: &str) -> u16 {
    login_at(&app.issuer, b, email, password)
        .await
        .status()
        .as_u16()
}

/// The known-device cookie a successful sign-in set, after checking its attributes.
fn device_cookie(resp: &reqwest::Response) -> String {
    let set = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portcullis_device="))
        .expect("a device cookie is set");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let value = set["portcullis_device=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(value.len(), 43);
    value
}

/// Status, `Retry-After` and text of a throttled answer.
async fn refused(resp: reqwest::Response) -> (u16, u64, String) {
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(0);
    (status, retry, resp.text().await.unwrap())
}

async fn limited_scopes(app: &TestApp) -> Vec<String> {
    let entries = app
        .provider
        .store
        .query_audit(&AuditQuery {
            action: Some("rate_limited".into()),
            limit: 200,
            ..Default::default()
        })
        .await
        .unwrap();
    entries
        .iter()
        .map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
            assert_eq!(d["endpoint"], "login");
            d["scope"].as_str().unwrap().to_owned()
        })
        .collect()
}

const PROXIED: (&str, &str) = ("PORTCULLIS_TRUSTED_PROXIES", "127.0.0.1/32");
const FIVE_PER_ACCOUNT: (&str, &str) = ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_ACCOUNT", "5");
const TWENTY_PER_IP: (&str, &str) = ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_IP", "20");

backend_tests! {
    async fn an_attackers_fifty_failures_do_not_stop_bobs_known_browser(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[PROXIED, FIVE_PER_ACCOUNT, TWENTY_PER_IP]).await;
        app.create_user("bob@example.com", PASSWORD).await;
        let base = app.issuer.clone();
        let resp = login_at(&base, &browser_at(&base, "203.0.113.10", None), "bob@example.com", PASSWORD).await;
        assert_eq!(resp.status(), 303);
        let device = device_cookie(&resp);

        // 50 wrong passwords for bob, each from another address.
        let mut statuses = Vec::new();
        for i in 0..50 {
            let b = browser_at(&base, &format!("198.51.100.{i}"), None);
            statuses.push(login(&app, &b, "bob@example.com", WRONG).await);
        }
        assert_eq!(statuses[..5], [200; 5]);
        assert_eq!(statuses[5..], [429; 45]);

        // Bob's browser signs in, from his address and from one of the attacker's.
        for ip in ["203.0.113.10", "198.51.100.7"] {
            let known = browser_at(&base, ip, Some(&device));
            assert_eq!(login(&app, &known, "bob@example.com", PASSWORD).await, 303, "from {ip}");
        }

        // A browser bob never used is throttled, right password or not.
        let (status, retry, text) =
            refused(login_at(&base, &browser_at(&base, "203.0.113.11", None), "bob@example.com", PASSWORD).await).await;
        assert_eq!(status, 429);
        assert!((1..=900).contains(&retry), "Retry-After {retry}");
        assert!(text.contains(TOO_MANY));
        assert!(!text.contains("bob@example.com"));

        // An account that does not exist: the same five answers, then the same refusal.
        for i in 0..5 {
            let resp = login_at(&base, &browser_at(&base, &format!("192.0.2.{i}"), None), "nobody@example.com", WRONG).await;
            assert_eq!(resp.status(), 200);
            assert!(resp.text().await.unwrap().contains(BAD));
        }
        let (n_status, n_retry, n_text) =
            refused(login_at(&base, &browser_at(&base, "192.0.2.99", None), "nobody@example.com", PASSWORD).await).await;
        assert_eq!((n_status, n_text.as_str()), (429, text.as_str()));
        assert!((1..=900).contains(&n_retry));

        let scopes = limited_scopes(&app).await;
        assert_eq!(scopes.len(), 45 + 1 + 1);
        assert!(scopes.iter().all(|s| s == "account"), "{scopes:?}");

        // The window ends: new browsers may sign in again.
        app.provider.clock.advance(900);
        let b = browser_at(&base, "203.0.113.11", None);
        assert_eq!(login(&app, &b, "bob@example.com", PASSWORD).await, 303);
    }

    async fn an_attacker_on_bobs_own_address_does_not_stop_his_known_browser(app: TestApp) {
        // No proxy: everyone is 127.0.0.1, attacker and bob alike.
        let app = TestApp::start_with(app.backend, &[FIVE_PER_ACCOUNT, TWENTY_PER_IP]).await;
        app.create_user("bob@example.com", PASSWORD).await;
        app.create_user("carol@example.com", PASSWORD).await;
        let base = app.issuer.clone();
        let resp = login_at(&base, &browser(), "bob@example.com", PASSWORD).await;
        assert_eq!(resp.status(), 303);
        let device = device_cookie(&resp);

        let mut statuses = Vec::new();
        for _ in 0..50 {
            statuses.push(login(&app, &browser(), "bob@example.com", WRONG).await);
        }
        assert_eq!(statuses[..5], [200; 5]);
        assert_eq!(statuses[5..], [429; 45]);
        // Refused attempts count nothing: the address holds 5 failures. 15 more (one for each
        // of other accounts) fill its 20, then the address is refused.
        let mut statuses = Vec::new();
        for i in 0..30 {
            statuses.push(login(&app, &browser(), &format!("guess{i}@example.com"), WRONG).await);
        }
        assert_eq!(statuses[..15], [200; 15]);
        assert_eq!(statuses[15..], [429; 15]);

        let known = browser_at(&base, "127.0.0.1", Some(&device));
        assert_eq!(login(&app, &known, "bob@example.com", PASSWORD).await, 303);
        // Carol has never signed in here: her new browser shares the address's refusal.
        let (status, retry, text) = refused(login_at(&base, &browser(), "carol@example.com", PASSWORD).await).await;
        assert_eq!(status, 429);
        assert!((1..=900).contains(&retry));
        assert!(text.contains(TOO_MANY));
        let scopes = limited_scopes(&app).await;
        assert_eq!(scopes.iter().filter(|s| *s == "account").count(), 45);
        assert_eq!(scopes.iter().filter(|s| *s == "ip").count(), 16);
    }

    async fn successful_sign_ins_do_not_consume_the_failure_budget(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_ACCOUNT", "3"),
        ]).await;
        app.create_user("bob@example.com", PASSWORD).await;
        let base = app.issuer.clone();
        let mut device = String::new();
        for _ in 0..10 {
            let resp = login_at(&base, &browser(), "bob@example.com", PASSWORD).await;
            assert_eq!(resp.status(), 303);
            device = device_cookie(&resp);
        }
        for expected in [200, 200, 200, 429] {
            assert_eq!(login(&app, &browser(), "bob@example.com", WRONG).await, expected);
        }
        // A known device has a budget of its own for the account, counted the same way. (A new
        // client each time, holding only the device cookie: a session would skip the form.)
        for expected in [303, 200, 200, 200, 429, 429] {
            let known = browser_at(&base, "127.0.0.1", Some(&device));
            let password = if expected == 303 { PASSWORD } else { WRONG };
            assert_eq!(login(&app, &known, "bob@example.com", password).await, expected);
        }
        let scopes = limited_scopes(&app).await;
        assert_eq!(scopes, ["device", "device", "account"].map(String::from), "newest first");
    }

    async fn a_forged_or_foreign_device_cookie_is_an_unknown_device(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_ACCOUNT", "3"),
        ]).await;
        app.create_user("bob@example.com", PASSWORD).await;
        app.create_user("alice@example.com", PASSWORD).await;
        let base = app.issuer.clone();
        let bobs = device_cookie(&login_at(&base, &browser(), "bob@example.com", PASSWORD).await);
        let alices = device_cookie(&login_at(&base, &browser(), "alice@example.com", PASSWORD).await);
        for _ in 0..3 {
            assert_eq!(login(&app, &browser(), "bob@example.com", WRONG).await, 200);
        }
        let last = bobs.chars().last().unwrap();
        let tampered = format!("{}{}", &bobs[..42], if last == 'A' { 'B' } else { 'A' });
        let random = portcullis::crypto::random_secret(32);
        for cookie in [tampered.as_str(), random.as_str(), "garbage", &bobs[..42], alices.as_str()] {
            let b = browser_at(&base, "127.0.0.1", Some(cookie));
            assert_eq!(login(&app, &b, "bob@example.com", PASSWORD).await, 429, "cookie {cookie}");
        }
        let b = browser_at(&base, "127.0.0.1", Some(&bobs));
        assert_eq!(login(&app, &b, "bob@example.com", PASSWORD).await, 303);
    }

    async fn limiter_statements_follow_gcra_and_fixed_windows(app: TestApp) {
        // The store's statements with explicit times: nothing depends on the wall clock.
        let store = &app.provider.store;
        let t = 1_000_000_000_000_i64;
        // One request a second, two at once.
        assert_eq!(store.rate_limit_hit("k", t, 1000, 2).await.unwrap(), None);
        assert_eq!(store.rate_limit_hit("k", t, 1000, 2).await.unwrap(), None);
        assert_eq!(store.rate_limit_hit("k", t, 1000, 2).await.unwrap(), Some(1000));
        assert_eq!(store.rate_limit_hit("k", t + 400, 1000, 2).await.unwrap(), Some(600));
        assert_eq!(store.rate_limit_hit("k", t + 1000, 1000, 2).await.unwrap(), None);
        assert_eq!(store.rate_limit_hit("k", t + 1000, 1000, 2).await.unwrap(), Some(1000));
        assert_eq!(store.rate_limit_hit("other", t, 1000, 2).await.unwrap(), None);

        let now = 1_700_000_000_i64;
        let granted = Reservation::Granted { window_start: now };
        assert_eq!(store.reserve_failure("f", now, 60, 2).await.unwrap(), granted);
        assert_eq!(store.reserve_failure("f", now + 1, 60, 2).await.unwrap(), granted);
        let full = Reservation::Refused { until: now + 60 };
        assert_eq!(store.reserve_failure("f", now + 2, 60, 2).await.unwrap(), full);
        assert_eq!(store.reserve_failure("f", now + 3, 60, 2).await.unwrap(), full);
        // Given back: room for one more in the same window.
        store.release_failure("f", now, 2).await.unwrap();
        assert_eq!(store.reserve_failure("f", now + 4, 60, 2).await.unwrap(), granted);
        assert_eq!(store.reserve_failure("f", now + 5, 60, 2).await.unwrap(), full);
        // A new window at the first failure after the old one ended.
        let next = Reservation::Granted { window_start: now + 60 };
        assert_eq!(store.reserve_failure("f", now + 60, 60, 2).await.unwrap(), next);
        // A give-back for an ended window changes nothing.
        store.release_failure("f", now, 2).await.unwrap();
        assert_eq!(store.reserve_failure("f", now + 61, 60, 2).await.unwrap(), next);
        assert_eq!(
            store.reserve_failure("f", now + 62, 60, 2).await.unwrap(),
            Reservation::Refused { until: now + 120 }
        );
        // Housekeeping drops finished windows and spent limiter state only.
        assert_eq!(store.purge_limits(now, t + 500).await.unwrap(), 0);
        assert_eq!(store.purge_limits(now + 60, t + 3001).await.unwrap(), 3);
    }
}

/// Two `portcullis serve` processes on one PostgreSQL schema count as one: the request limit
/// of an anonymous endpoint and the sign-in failures of one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn two_server_processes_on_one_postgres_share_the_limits() {
    require_postgres();
    let app = TestApp::start(Backend::Postgres).await;
    app.create_user("bob@example.com", PASSWORD).await;
    let env = [
        ("PORTCULLIS_RATE_LIMIT__IP_PER_MINUTE", "1"),
        ("PORTCULLIS_RATE_LIMIT__IP_BURST", "2"),
        ("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_ACCOUNT", "2"),
        ("PORTCULLIS_ARGON2__MEMORY_KIB", "8192"),
        ("PORTCULLIS_ARGON2__ITERATIONS", "1"),
    ];
    let one = ServerProcess::start(&app, &env).await;
    let two = ServerProcess::start(&app, &env).await;

    // Forgot-password, 2 at once per address: node one, node two, node one.
    for (node, expected) in [(&one, 200), (&two, 200), (&one, 429)] {
        let b = browser();
        let page = b
            .get(format!("{}/forgot-password", node.base))
            .send()
            .await
            .unwrap();
        let csrf = input_value(&page.text().await.unwrap(), "csrf").expect("csrf field");
        let resp = b
            .post(format!("{}/forgot-password", node.base))
            .form(&[("email", "x@example.com"), ("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "{}", node.base);
        if expected == 429 {
            let retry: u64 = resp.headers()[RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
        }
    }

    // Bob's sign-in failures: one on each node fill his 2; the third attempt (right password,
    // unknown browser) is refused on either node.
    for node in [&one, &two] {
        let resp = login_at(&node.base, &browser(), "bob@example.com", WRONG).await;
        assert_eq!(resp.status(), 200, "{}", node.base);
    }
    for node in [&one, &two] {
        let resp = login_at(&node.base, &browser(), "bob@example.com", PASSWORD).await;
        assert_eq!(resp.status(), 429, "{}", node.base);
    }
}
