//! `GET /metrics`: Prometheus text exposition format, parsed with `prometheus-parse`, counting a
//! real code flow; optional bearer protection.
//!
//! The `metrics` facade keeps one recorder per process, shared by the servers other tests run at
//! the same time, so counters are compared as "moved by at least what this test did".

use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use crate::accounts::{free_port, outbox, sign_up, smtp_env, start_with};
use crate::backend_tests;
use crate::helpers::*;

async fn scrape(app: &TestApp, bearer: Option<&str>) -> Scrape {
    let mut req = app.http.get(app.url("/metrics"));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    // Every sample line is `name{labels} value`, with a # TYPE for its family before it.
    let mut typed = std::collections::HashSet::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| typed.contains(*f))
            .unwrap_or(&name);
        assert!(typed.contains(family), "no # TYPE before {line}");
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("exposition text parses")
}

/// The sum of the samples of `metric` whose labels include `labels` (a histogram: its count).
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than == f64::INFINITY)
                .map_or(0.0, |b| b.count),
            Value::Summary(_) => panic!("{metric} is a summary"),
        })
        .sum()
}

fn present(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> bool {
    s.samples
        .iter()
        .any(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

backend_tests! {
    async fn metrics_count_a_code_flow(app: TestApp) {
        let before = scrape(&app, None).await;
        app.create_user("di@example.com", PASSWORD).await;
        let client = app.public_client().await;
        let (status, _) = app.submit_login(&browser(), "/login", "di@example.com", "wrong password").await;
        assert_eq!(status, 200);
        app.login_and_exchange(&client, "di@example.com", "openid").await;
        let unmatched = format!("/no-such-page-{}", client.id);
        assert_eq!(app.http.get(app.url(&unmatched)).send().await.unwrap().status(), 404);
        let after = scrape(&app, None).await;

        let moved = |metric: &str, labels: &[(&str, &str)]| value(&after, metric, labels) - value(&before, metric, labels);
        assert!(moved("portcullis_tokens_issued_total", &[("grant", "authorization_code")]) >= 1.0);
        assert!(moved("portcullis_signins_total", &[("method", "password"), ("outcome", "success")]) >= 1.0);
        assert!(moved("portcullis_signins_total", &[("method", "password"), ("outcome", "failure")]) >= 1.0);
        let token_ok = [("route", "/token"), ("method", "POST"), ("status", "200")];
        assert!(moved("portcullis_http_requests_total", &token_ok) >= 1.0);
        assert!(moved("portcullis_http_request_duration_seconds", &token_ok) >= 1.0);
        assert!(moved("portcullis_http_requests_total", &[("route", "/authorize"), ("method", "GET"), ("status", "303")]) >= 1.0);
        assert!(moved("portcullis_http_requests_total", &[("route", "unmatched"), ("status", "404")]) >= 1.0);
        // Route templates only: no path (with its id) becomes a label.
        assert!(after.samples.iter().all(|x| x.labels.get("route").is_none_or(|r| !r.contains(&client.id))));

        for outbox in ["email", "sms", "backchannel_logout"] {
            assert!(present(&after, "portcullis_outbox_depth", &[("outbox", outbox)]), "{outbox}");
        }
        let pool = value(&after, "portcullis_db_pool_connections", &[("state", "active")])
            + value(&after, "portcullis_db_pool_connections", &[("state", "idle")]);
        assert!(pool >= 1.0, "the pool has a connection: {pool}");
    }

    async fn outbox_depth_and_delivery_failures(app: TestApp) {
        // Nothing listens on the SMTP port: the sign-up mail waits in the outbox and fails.
        let app = start_with(app.backend, &smtp_env(free_port())).await;
        let before = scrape(&app, None).await;
        let (status, _) = sign_up(&app, &browser(), "eli@example.com", PASSWORD, "").await;
        assert_eq!(status, 200);
        // Wait until the worker has failed at least once (a deadline, not a timing assertion).
        let deadline = Instant::now() + Duration::from_secs(30);
        while outbox(&app, "eli@example.com").await[0].attempts < 1 {
            assert!(Instant::now() < deadline, "the worker never tried");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let after = scrape(&app, None).await;
        // The depth is this server's own database, read at the scrape.
        assert_eq!(value(&after, "portcullis_outbox_depth", &[("outbox", "email")]), 1.0);
        assert_eq!(value(&after, "portcullis_outbox_depth", &[("outbox", "backchannel_logout")]), 0.0);
        let failures = |s: &Scrape| value(s, "portcullis_outbox_delivery_failures_total", &[("outbox", "email")]);
        assert!(failures(&after) - failures(&before) >= 1.0);
    }

    async fn a_metrics_token_is_required_when_set(app: TestApp) {
        let app = TestApp::start_with(app.backend, &[("PORTCULLIS_METRICS__TOKEN", "scrape-secret-1")]).await;
        let url = app.url("/metrics");
        let resp = app.http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert!(!resp.text().await.unwrap().contains("portcullis_"));
        for wrong in ["scrape-secret-2", "scrape-secret-1x", ""] {
            let resp = app.http.get(&url).bearer_auth(wrong).send().await.unwrap();
            assert_eq!(resp.status(), 401, "{wrong:?}");
        }
        let resp = app.http.get(&url).basic_auth("scrape-secret-1", Some("")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let s = scrape(&app, Some("scrape-secret-1")).await;
        assert!(present(&s, "portcullis_db_pool_connections", &[]));
    }
}
