//! The accept loop: HTTP/1.1 connections with bounded reads and a bounded shutdown.
//!
//! - A connection that does not send a complete request head within
//!   `server.header_read_timeout_secs` of the server starting to wait for one (a new connection,
//!   or a kept-alive one between requests) is closed; this is also the idle keep-alive limit.
//! - A request body that has not fully arrived `server.body_read_timeout_secs` after its head is
//!   answered 408 and its connection closed (`body_deadline`).
//! - On shutdown the listener is closed at once (new connections are refused), connections are
//!   asked to finish their request and close, and whatever is still open
//!   `server.shutdown_timeout_secs` later is closed.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::ServerSettings;

/// The time limits of one server, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read: Duration,
    pub body_read: Duration,
    pub shutdown: Duration,
}

impl Limits {
    pub fn from_settings(s: &ServerSettings) -> Self {
        Self {
            header_read: ServerSettings::secs(s.header_read_timeout_secs),
            body_read: ServerSettings::secs(s.body_read_timeout_secs),
            shutdown: ServerSettings::secs(s.shutdown_timeout_secs),
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then drain within `limits.shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.body_read,
        body_deadline,
    ));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Finished connections leave the set as new ones arrive.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = router
            .clone()
            .map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        open = connections.len(),
        "shutdown requested; finishing in-flight requests"
    );
    if tokio::time::timeout(limits.shutdown, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown deadline reached; closing the remaining connections"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// Marks a request whose body was over `MAX_BODY` (or broken off): it reaches the router with an
/// empty body, and `text::refuse_bad_text` answers 413 in the endpoint's format.
#[derive(Debug, Clone, Copy)]
pub struct BodyTooLarge;

/// Read the whole request body within `limit` of its head, or answer 408 and close.
///
/// Bodies are small (forms and JSON under `MAX_BODY`), so they are buffered here and the handler
/// gets them whole; a body over the limit is marked [`BodyTooLarge`] and answered 413 by the
/// endpoint.
async fn body_deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match tokio::time::timeout(limit, axum::body::to_bytes(body, super::MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => {
            // Too large, or the client broke off: nothing more will be read from it. The
            // endpoint still answers, in its own format (`text::refuse_bad_text` sees the mark).
            let mut req = Request::from_parts(parts, Body::empty());
            req.extensions_mut().insert(BodyTooLarge);
            let mut r = next.run(req).await;
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        Err(_) => {
            tracing::info!("request body not received in time; closing the connection");
            let mut r = StatusCode::REQUEST_TIMEOUT.into_response();
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
    }
}
