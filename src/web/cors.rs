//! CORS (the Fetch standard) for browser apps, on the protocol endpoints only: pages and the admin
//! API never send these headers.
//!
//! - Discovery and JWKS are public documents: `Access-Control-Allow-Origin: *` ([`public`]).
//! - `/token`, `/revoke`, `/introspect` and `/userinfo` ([`registered`]): a preflight (`OPTIONS`
//!   with `Origin` and `Access-Control-Request-Method`) is answered `204` with the allowed
//!   methods and headers when some active client registered that origin (the preflight names no
//!   client; the in-memory index of `ClientCache::origin_registered` answers without a query), and
//!   `403` without any CORS header otherwise. The actual response carries
//!   `Access-Control-Allow-Origin: <origin>` only when the origin belongs to the client the request
//!   authenticated as (for `/userinfo`: the client the access token was issued to), which the
//!   handler names with [`share_with`].
//!
//! `Access-Control-Allow-Credentials` is never sent: these endpoints take credentials in headers
//! and bodies, never from cookies.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::Client;
use crate::web::state::AppState;

/// Request headers a browser app may send to the protocol endpoints.
const ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP";
/// How long a browser may reuse a preflight answer (seconds).
const MAX_AGE: &str = "600";

/// The origins a response may be shared with, put in its extensions by the handler.
#[derive(Debug, Clone)]
pub struct SharedWith(Vec<String>);

/// Let the response be read by `client`'s web origins (see [`Client::allowed_origins`]).
pub fn share_with(resp: &mut Response, client: Option<&Client>) {
    if let Some(client) = client.filter(|c| c.is_active()) {
        resp.extensions_mut()
            .insert(SharedWith(client.allowed_origins()));
    }
}

/// The state of the [`registered`] middleware: the app and the route's methods.
#[derive(Clone)]
pub struct Registered {
    pub state: AppState,
    pub methods: &'static [Method],
}

/// Middleware for the endpoints that answer only registered origins (see the module docs).
pub async fn registered(State(cors): State<Registered>, req: Request, next: Next) -> Response {
    let origin = origin(req.headers());
    if let Some(requested) = preflight(&req) {
        let Some(origin) = origin else {
            return refused();
        };
        if !cors.methods.contains(&requested) {
            return refused();
        }
        let provider = &cors.state.provider;
        return match provider
            .clients
            .origin_registered(provider.store.as_ref(), &origin)
            .await
        {
            Ok(true) => allowed_preflight(&origin, cors.methods),
            Ok(false) => {
                tracing::info!("CORS preflight from an unregistered origin refused");
                refused()
            }
            Err(e) => {
                tracing::error!(error = %e, "CORS preflight: cannot load client origins");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        };
    }
    let mut resp = next.run(req).await;
    let shared = resp.extensions_mut().remove::<SharedWith>();
    let headers = resp.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (Some(origin), Some(SharedWith(list))) = (origin, shared)
        && list.contains(&origin)
        && let Ok(v) = HeaderValue::from_str(&origin)
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    resp
}

/// Middleware for public documents (discovery, JWKS): any origin may read them.
pub async fn public(req: Request, next: Next) -> Response {
    if preflight(&req).is_some() {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::ACCESS_CONTROL_ALLOW_METHODS, "GET"),
                (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE),
            ],
        )
            .into_response();
    }
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// The `Origin` of a cross-origin request (`null` counts as none: it can never be registered).
fn origin(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| !o.is_empty() && *o != "null")
        .map(str::to_owned)
}

/// The method a preflight asks about, when `req` is one.
fn preflight(req: &Request) -> Option<Method> {
    if req.method() != Method::OPTIONS {
        return None;
    }
    let requested = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
    Some(Method::from_bytes(requested.as_bytes()).unwrap_or(Method::CONNECT))
}

fn allowed_preflight(origin: &str, methods: &[Method]) -> Response {
    let methods: Vec<&str> = methods.iter().map(Method::as_str).collect();
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let (Ok(o), Ok(m)) = (
        HeaderValue::from_str(origin),
        HeaderValue::from_str(&methods.join(", ")),
    ) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, m);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// A preflight that is not allowed: no CORS header, so the browser stops there.
fn refused() -> Response {
    (StatusCode::FORBIDDEN, [(header::VARY, "Origin")]).into_response()
}
