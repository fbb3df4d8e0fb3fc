//! HTTP: one router listing every route, the middleware stack, and the hosted pages.

pub mod admin;
pub mod client_addr;
pub mod cors;
pub mod csrf;
pub mod metrics;
pub mod oauth;
pub mod origin;
pub mod pages;
pub mod render;
pub mod serve;
pub mod session;
pub mod state;
pub mod text;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{MethodRouter, get};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::web::state::AppState;

/// Form and JSON bodies are small; anything larger is refused before parsing.
const MAX_BODY: usize = 64 * 1024;

/// Pages: no framing, no inline script, no plug-ins. `form-action` is left open on purpose:
/// Chrome applies it to the redirect that follows a form post, which must reach the client.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// No address of ours (they carry codes, link tokens, request handles) reaches another site in a
/// `Referer`. Not `no-referrer`: under it browsers send `Origin: null` with our own form posts,
/// which the origin check (`origin`) must refuse.
const REFERRER_POLICY: &str = "same-origin";

pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .merge(forms(state.clone()))
        .merge(protocol(&state))
        .merge(admin::api::router())
        .fallback(pages::not_found)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::render_error_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            client_addr::resolve,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            text::refuse_bad_text,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(retry_after_on_503))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, REFERRER_POLICY))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("request handler panicked");
            render::plain_error(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
        }));
    // RFC 6797: with an https issuer, every response (errors and panics too) carries HSTS.
    let hsts = state
        .provider
        .settings
        .hsts()
        .and_then(|v| HeaderValue::from_str(&v).ok());
    let app = match hsts {
        Some(value) => app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            value,
        )),
        None => app,
    };
    app.layer(
        // Spans carry the method and the route template only: query strings hold codes,
        // states and hints that must not reach the logs.
        TraceLayer::new_for_http()
            .make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", MatchedPath::as_str);
                tracing::info_span!("http", method = %req.method(), route)
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
    // Outermost: every answer is counted, refusals before the handler and panics included.
    .layer(from_fn(metrics::record))
}

/// The hosted pages and the admin pages: every state-changing request passes the origin check
/// (`origin::same_origin`) before its handler, beside the CSRF token each form carries.
fn forms(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home::show))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route(
            "/consent",
            get(pages::consent::show).post(pages::consent::submit),
        )
        .route(
            "/logout/confirm",
            axum::routing::post(pages::logout::confirm),
        )
        .route(
            "/signup",
            get(pages::signup::show).post(pages::signup::submit),
        )
        .route(
            "/verify-email",
            get(pages::verify::show).post(pages::verify::submit_code),
        )
        .route(
            "/verify-email/resend",
            axum::routing::post(pages::verify::resend),
        )
        .route(
            "/verify-email/confirm",
            get(pages::verify::show_link).post(pages::verify::submit_link),
        )
        .route(
            "/forgot-password",
            get(pages::reset::show_forgot).post(pages::reset::submit_forgot),
        )
        .route(
            "/reset-password",
            get(pages::reset::show_reset).post(pages::reset::submit_reset),
        )
        .route(
            "/login/code",
            axum::routing::post(pages::code_login::request),
        )
        .route(
            "/login/code/verify",
            axum::routing::post(pages::code_login::verify),
        )
        .route("/login/mfa", get(pages::mfa::show).post(pages::mfa::submit))
        .route("/account/mfa", get(pages::mfa_account::manage))
        .route(
            "/account/mfa/totp",
            get(pages::mfa_account::show_setup).post(pages::mfa_account::confirm_setup),
        )
        .route(
            "/account/mfa/recovery",
            axum::routing::post(pages::mfa_account::regenerate),
        )
        .route(
            "/account/mfa/remove",
            axum::routing::post(pages::mfa_account::remove),
        )
        .route("/account/phone", axum::routing::post(pages::account::phone))
        .route(
            "/account/phone/verify",
            axum::routing::post(pages::account::verify_phone),
        )
        .route("/account", get(pages::account::show))
        .route(
            "/account/profile",
            axum::routing::post(pages::account::profile),
        )
        .route("/account/email", axum::routing::post(pages::account::email))
        .route(
            "/account/email/confirm",
            get(pages::email_change::show_link).post(pages::email_change::confirm),
        )
        .route(
            "/account/password",
            axum::routing::post(pages::account::password),
        )
        .route(
            "/account/sessions/end",
            axum::routing::post(pages::account::end_session),
        )
        .route(
            "/account/consents/revoke",
            axum::routing::post(pages::account::revoke_consent),
        )
        .route(
            "/account/delete",
            axum::routing::post(pages::account::delete),
        )
        .route("/static/portcullis.css", get(pages::stylesheet))
        .route("/static/form_post.js", get(pages::form_post_script))
        .merge(admin::pages::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            origin::same_origin,
        ))
}

/// The protocol endpoints, which relying parties and their servers call from anywhere: RP-
/// initiated logout (`/logout`, GET or POST) among them; `/logout/confirm` is our own form.
fn protocol(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/logout", get(pages::logout::get).post(pages::logout::post))
        .route(
            "/authorize",
            get(oauth::authorize::get).post(oauth::authorize::post),
        )
        .route(
            "/token",
            cors_for(axum::routing::post(oauth::token::token), state, POST),
        )
        .route(
            "/revoke",
            cors_for(axum::routing::post(oauth::revoke::revoke), state, POST),
        )
        .route(
            "/introspect",
            cors_for(
                axum::routing::post(oauth::introspect::introspect),
                state,
                POST,
            ),
        )
        .route(
            "/userinfo",
            cors_for(
                get(oauth::userinfo::userinfo).post(oauth::userinfo::userinfo),
                state,
                GET_POST,
            ),
        )
        .route(
            "/jwks.json",
            get(oauth::discovery::jwks).layer(from_fn(cors::public)),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oauth::discovery::discovery).layer(from_fn(cors::public)),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::discovery::discovery).layer(from_fn(cors::public)),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(oauth::health::healthz))
        .route("/readyz", get(oauth::health::readyz))
}

const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

/// `route` answering browser apps of registered origins (`web::cors::registered`).
fn cors_for(
    route: MethodRouter<AppState>,
    state: &AppState,
    methods: &'static [Method],
) -> MethodRouter<AppState> {
    let with = cors::Registered {
        state: state.clone(),
        methods,
    };
    route.layer(from_fn_with_state(with, cors::registered))
}

/// Seconds a client is asked to wait when the database is unreachable.
pub const RETRY_AFTER_SECS: &str = "5";

/// Every 503 (the database is unreachable) says when to retry, whatever the endpoint's format.
async fn retry_after_on_503(mut resp: axum::response::Response) -> axum::response::Response {
    if resp.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    resp
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
