//! HTTP: one router listing every route, the middleware stack, and the hosted pages.

pub mod admin;
pub mod csrf;
pub mod nul;
pub mod oauth;
pub mod pages;
pub mod render;
pub mod serve;
pub mod session;
pub mod state;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::get;
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::home::show))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route(
            "/consent",
            get(pages::consent::show).post(pages::consent::submit),
        )
        .route("/logout", get(pages::logout::get).post(pages::logout::post))
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
        .route(
            "/authorize",
            get(oauth::authorize::get).post(oauth::authorize::post),
        )
        .route("/token", axum::routing::post(oauth::token::token))
        .route("/revoke", axum::routing::post(oauth::revoke::revoke))
        .route(
            "/introspect",
            axum::routing::post(oauth::introspect::introspect),
        )
        .route(
            "/userinfo",
            get(oauth::userinfo::userinfo).post(oauth::userinfo::userinfo),
        )
        .route("/jwks.json", get(oauth::discovery::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(oauth::discovery::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::discovery::discovery),
        )
        .route("/healthz", get(oauth::health::healthz))
        .route("/readyz", get(oauth::health::readyz))
        .merge(admin::api::router())
        .merge(admin::pages::router())
        .fallback(pages::not_found)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::render_error_pages,
        ))
        .layer(axum::middleware::from_fn_with_state(state, nul::refuse_nul))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(retry_after_on_503))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("request handler panicked");
            render::plain_error(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
        }))
        .layer(
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
