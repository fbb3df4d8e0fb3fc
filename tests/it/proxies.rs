//! `trusted_proxies`: the client address behind a reverse proxy (`Forwarded`, `X-Forwarded-For`),
//! and the same headers ignored from anyone else. The test server's peer is always 127.0.0.1.

use portcullis::store::{AuditQuery, AuditRecord};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::accounts::page;
use crate::backend_tests;
use crate::helpers::*;

/// A cookie-keeping browser that sends `headers` with every request (as a proxy would add them).
fn browser_with(headers: &[(&str, &str)]) -> reqwest::Client {
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
        .default_headers(map)
        .build()
        .unwrap()
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

/// Sign-in limited to 2 failures per address.
const TIGHT_LIMIT: [(&str, &str); 1] = [("PORTCULLIS_RATE_LIMIT__LOGIN_FAILURES_PER_IP", "2")];

backend_tests! {
    async fn behind_a_trusted_proxy_the_forwarded_client_is_limited_audited_and_shown(app: TestApp) {
        let mut env = TIGHT_LIMIT.to_vec();
        env.push(("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1/32"));
        let app = TestApp::start_with(app.backend, &env).await;
        app.create_user("ada@example.com", PASSWORD).await;

        // The client forged a left-most hop; the proxy appended the address it saw.
        let b = browser_with(&[("x-forwarded-for", "198.51.100.1, 203.0.113.7")]);
        let (status, _) = app.submit_login(&b, "/login", "ada@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        let logins = audit(&app, "login").await;
        assert_eq!(logins[0].ip.as_deref(), Some("203.0.113.7"));
        let (_, html) = page(&b, &app.url("/account")).await;
        assert!(html.contains("from 203.0.113.7"), "the account page shows the session's address");

        // Each person behind the proxy has a limit of their own.
        let one = browser_with(&[("x-forwarded-for", "203.0.113.8")]);
        for expected in [200, 200, 429] {
            let (status, _) = app.submit_login(&one, "/login", "ada@example.com", "wrong password").await;
            assert_eq!(status, expected);
        }
        let other = browser_with(&[("x-forwarded-for", "203.0.113.9, 10.0.0.5")]);
        let (status, _) = app.submit_login(&other, "/login", "ada@example.com", "wrong password").await;
        assert_eq!(status, 200, "another client behind the same proxy is not limited");
        let limited = audit(&app, "rate_limited").await;
        assert_eq!(limited.len(), 1);
        assert_eq!(limited[0].ip.as_deref(), Some("203.0.113.8"));

        // RFC 7239 with a quoted IPv6 node and a port.
        let v6 = browser_with(&[("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https")]);
        let (status, _) = app.submit_login(&v6, "/login", "ada@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        assert_eq!(audit(&app, "login").await[0].ip.as_deref(), Some("2001:db8:cafe::17"));

        // A header that cannot be read: the request is served, attributed to the proxy itself.
        let broken = browser_with(&[("x-forwarded-for", "not an address")]);
        let (status, _) = app.submit_login(&broken, "/login", "ada@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        assert_eq!(audit(&app, "login").await[0].ip.as_deref(), Some("127.0.0.1"));
    }

    async fn forwarded_headers_from_an_untrusted_peer_change_nothing(app: TestApp) {
        // Default: no trusted proxies, so 127.0.0.1 is the client whatever the headers claim.
        let app = TestApp::start_with(app.backend, &TIGHT_LIMIT).await;
        app.create_user("bo@example.com", PASSWORD).await;
        let b = browser_with(&[("x-forwarded-for", "203.0.113.7")]);
        let (status, _) = app.submit_login(&b, "/login", "bo@example.com", PASSWORD).await;
        assert_eq!(status, 303);
        assert_eq!(audit(&app, "login").await[0].ip.as_deref(), Some("127.0.0.1"));
        let (_, html) = page(&b, &app.url("/account")).await;
        assert!(html.contains("from 127.0.0.1") && !html.contains("203.0.113.7"));

        // (A new browser: the signed-in one is sent past the login form.)
        let again = browser_with(&[("x-forwarded-for", "203.0.113.7")]);
        for _ in 0..2 {
            let (status, _) = app.submit_login(&again, "/login", "bo@example.com", "wrong password").await;
            assert_eq!(status, 200);
        }
        // The per-IP limit is spent; a new forged address on every attempt does not escape it.
        for (i, header) in ["x-forwarded-for", "forwarded", "x-forwarded-for", "forwarded"].iter().enumerate() {
            let value = if *header == "forwarded" { format!("for=203.0.113.{}", 20 + i) } else { format!("203.0.113.{}", 20 + i) };
            let spoofed = browser_with(&[(header, &value)]);
            let (status, _) = app.submit_login(&spoofed, "/login", "bo@example.com", "wrong password").await;
            assert_eq!(status, 429, "{header}: {value}");
        }
        let limited = audit(&app, "rate_limited").await;
        assert_eq!(limited.len(), 4);
        assert!(limited.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")));
    }
}
