//! Oversized input, a logout posted from another site, and anti-framing headers on every kind
//! of response.

use std::io::{Read, Write};

use serde_json::Value;

use crate::accounts::{page, signed_in};
use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "kai@example.com";

/// Every response carries the anti-framing pair (RFC 7034, CSP `frame-ancestors`).
fn unframable(resp: &reqwest::Response, what: &str) {
    assert_eq!(resp.headers()["x-frame-options"], "DENY", "{what}");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(
        resp.headers()["x-content-type-options"],
        "nosniff",
        "{what}"
    );
}

backend_tests! {
    async fn an_oversized_token_request_is_413_in_the_oauth_format(app: TestApp) {
        let client = app.confidential_client().await;
        let big = format!("grant_type=client_credentials&scope={}", "a".repeat(70 * 1024));
        let resp = app
            .http
            .post(app.url("/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }

    async fn an_oversized_sign_in_form_is_refused_and_signs_nobody_in(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let b = browser();
        let (status, html) = page(&b, &app.url("/login")).await;
        assert_eq!(status, 200);
        let csrf = input_value(&html, "csrf").unwrap();
        let padding = "x".repeat(70 * 1024);
        let resp = b
            .post(app.url("/login"))
            .form(&[("csrf", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD), ("pad", padding.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 413);
        assert!(!signed_in(&app, &b).await);
    }

    async fn too_many_request_headers_are_refused_with_431(app: TestApp) {
        let addr = app.issuer.trim_start_matches("http://").to_owned();
        let mut head = String::from("GET /health HTTP/1.1\r\nHost: x\r\n");
        for i in 0..150 {
            head.push_str(&format!("X-Pad-{i}: y\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        let answer = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }

    async fn an_oversized_state_is_refused_and_not_echoed(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let mut u = url::Url::parse(&url).unwrap();
        let long = "s".repeat(2049);
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .into_owned()
            .map(|(k, v)| if k == "state" { (k, long.clone()) } else { (k, v) })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
        let resp = browser().get(u.as_str()).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        let q = query_of(&to);
        assert_eq!(q.get("error").map(String::as_str), Some("invalid_request"));
        assert!(!q.contains_key("state"), "{to}");
    }

    async fn a_logout_confirmation_posted_from_another_site_is_refused(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let b = browser();
        let (status, _) = app.submit_login(&b, "/login", EMAIL, PASSWORD).await;
        assert_eq!(status, 303);
        let (status, html) = page(&b, &app.url("/logout")).await;
        assert_eq!(status, 200);
        assert!(html.contains("action=\"/logout/confirm\""), "{html}");
        let csrf = input_value(&html, "csrf").unwrap();
        for (name, value) in [("origin", "https://evil.example"), ("origin", "null")] {
            let resp = b.post(app.url("/logout/confirm")).header(name, value)
                .form(&[("csrf", csrf.as_str())]).send().await.unwrap();
            assert_eq!(resp.status(), 403, "{value}");
            assert!(signed_in(&app, &b).await, "{value}: still signed in");
        }
        let resp = b.post(app.url("/logout/confirm")).header("referer", "https://evil.example/page")
            .form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert!(signed_in(&app, &b).await);
        // From our own page it works (the check is not a blanket refusal).
        let resp = b.post(app.url("/logout/confirm")).header("origin", app.issuer.as_str())
            .form(&[("csrf", csrf.as_str())]).send().await.unwrap();
        assert!(resp.status().is_success() || resp.status().is_redirection(), "{}", resp.status());
        assert!(!signed_in(&app, &b).await);
    }

    async fn anti_framing_headers_are_on_every_kind_of_response(app: TestApp) {
        let client = app.confidential_client().await;
        let b = browser();
        let resp = b.get(app.url("/login")).send().await.unwrap();
        unframable(&resp, "page");
        let resp = b.get(app.url("/no-such-page")).send().await.unwrap();
        assert_eq!(resp.status(), 404);
        unframable(&resp, "404 page");
        let resp = b.get(app.url("/authorize?client_id=nope")).send().await.unwrap();
        assert_eq!(resp.status(), 400);
        unframable(&resp, "authorize error page");
        let resp = app.token_request(&client, &[("grant_type", "bogus")]).await;
        assert_eq!(resp.status(), 400);
        unframable(&resp, "token error");
        let resp = b.get(app.url("/userinfo")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        unframable(&resp, "userinfo challenge");
        let resp = b.get(app.url("/admin/api/v1/users")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        unframable(&resp, "admin API problem");
        let resp = b.get(app.url("/.well-known/openid-configuration")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        unframable(&resp, "discovery");
    }
}
