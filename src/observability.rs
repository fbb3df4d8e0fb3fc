//! Metrics for `GET /metrics` (Prometheus text exposition format 0.0.4).
//!
//! Any layer records through the `metrics` facade with the helpers here (no HTTP involved); the
//! web layer serves [`render`]. The names, and their labels:
//!
//! | metric | labels |
//! | --- | --- |
//! | `portcullis_http_requests_total` | `route` (the route template, never the raw path), `method`, `status` |
//! | `portcullis_http_request_duration_seconds` (histogram) | `route`, `method`, `status` |
//! | `portcullis_signins_total` | `method` (`password`, `email_code`, `sms_code`, `code`), `outcome` (`success`, `failure`, `unverified`, `rate_limited`, `error`) |
//! | `portcullis_tokens_issued_total` | `grant` (`authorization_code`, `refresh_token`, `client_credentials`) |
//! | `portcullis_outbox_depth` (gauge) | `outbox` (`email`, `sms`, `backchannel_logout`) |
//! | `portcullis_outbox_delivery_failures_total` | `outbox` |
//! | `portcullis_db_pool_connections` (gauge) | `state` (`active`, `idle`) |
//! | `portcullis_change_listener_up` (gauge) | — (PostgreSQL: 1 while other nodes' changes are heard) |
//!
//! The `metrics` facade has one recorder per process (its design); it is installed by the first
//! [`exporter`] call and shared by every server the process runs (the test suite runs many).
//! Gauges describe the database and are set from it at each scrape.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
pub const HTTP_DURATION: &str = "portcullis_http_request_duration_seconds";
pub const SIGNINS: &str = "portcullis_signins_total";
pub const TOKENS_ISSUED: &str = "portcullis_tokens_issued_total";
pub const OUTBOX_DEPTH: &str = "portcullis_outbox_depth";
pub const DELIVERY_FAILURES: &str = "portcullis_outbox_delivery_failures_total";
pub const DB_POOL: &str = "portcullis_db_pool_connections";

/// Request latency buckets (seconds): from a cached discovery answer to a slow argon2 sign-in.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often histogram samples are folded in when nobody scrapes (bounds their memory).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder.
pub struct Exporter {
    handle: PrometheusHandle,
    /// One scrape at a time: the gauges set from the database and the text rendered from them
    /// belong together.
    scrape: tokio::sync::Mutex<()>,
}

impl Exporter {
    /// Fold in recent histogram samples (called periodically by the server).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The recorder, installed on first use; `None` if another recorder holds the facade (an
/// embedding program installed its own), in which case `/metrics` answers 503.
pub fn exporter() -> Option<&'static Exporter> {
    static EXPORTER: OnceLock<Option<Exporter>> = OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), DURATION_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::error!("another metrics recorder is installed; /metrics is off");
                return None;
            }
            describe();
            Some(Exporter {
                handle,
                scrape: tokio::sync::Mutex::new(()),
            })
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_counter!(SIGNINS, "Sign-in attempts by method and outcome");
    describe_counter!(TOKENS_ISSUED, "Token responses issued, by grant type");
    describe_gauge!(OUTBOX_DEPTH, "Messages waiting for delivery, per outbox");
    describe_counter!(DELIVERY_FAILURES, "Failed delivery attempts, per outbox");
    describe_gauge!(DB_POOL, "Database pool connections, active and idle");
    describe_gauge!(
        crate::store::CHANGE_LISTENER_UP,
        "1 while this node hears other nodes' changes (PostgreSQL LISTEN), 0 while it does not"
    );
}

/// One answered HTTP request.
pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// One sign-in attempt.
pub fn signin(method: &'static str, outcome: &'static str) {
    counter!(SIGNINS, "method" => method, "outcome" => outcome).increment(1);
}

/// One token response issued by `grant`.
pub fn token_issued(grant: &'static str) {
    counter!(TOKENS_ISSUED, "grant" => grant).increment(1);
}

/// One failed delivery attempt from `outbox` (`email`, `sms`, `backchannel_logout`).
pub fn delivery_failed(outbox: &'static str) {
    counter!(DELIVERY_FAILURES, "outbox" => outbox).increment(1);
}

/// The exposition text, with the gauges read from `store` now; `None` when metrics are off.
pub async fn render(store: &dyn Store) -> Option<String> {
    let exporter = exporter()?;
    let _one = exporter.scrape.lock().await;
    let (open, idle) = store.pool_usage();
    gauge!(DB_POOL, "state" => "active").set(f64::from(open.saturating_sub(idle)));
    gauge!(DB_POOL, "state" => "idle").set(f64::from(idle));
    match store.outbox_depths().await {
        Ok(depths) => {
            for (outbox, n) in depths {
                gauge!(OUTBOX_DEPTH, "outbox" => outbox).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count the outboxes"),
    }
    Some(exporter.handle.render())
}
