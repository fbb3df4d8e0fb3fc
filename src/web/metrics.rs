//! `GET /metrics` (Prometheus text exposition format 0.0.4, see `crate::observability`) and the
//! middleware that counts every request by its route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::web::state::AppState;

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = state.provider.settings.metrics.token.expose();
    if !token.is_empty() && !bearer_matches(&headers, token) {
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"portcullis-metrics\""),
        );
        return resp;
    }
    match crate::observability::render(state.provider.store.as_ref()).await {
        Some(text) => (
            [
                (header::CONTENT_TYPE, TEXT_FORMAT),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, given)| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

/// Count the request and its latency under its route template (`/admin/clients/{id}`, never
/// the path itself: ids and codes would make a series each); `unmatched` for the rest.
pub async fn record(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // Standard methods only: any other token would be a label value of the client's choosing.
    let method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        .into_iter()
        .find(|m| *m == req.method().as_str())
        .unwrap_or("other");
    let resp = next.run(req).await;
    crate::observability::http_request(&route, method, resp.status().as_u16(), started.elapsed());
    resp
}
