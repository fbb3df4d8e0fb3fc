//! `GET|POST /authorize` (OIDC Core §3.1.2.1: both methods, same parameters).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use tera::Context;
use url::Url;

use crate::domain::Client;
use crate::oauth::authorize::{
    self, AuthorizationRequest, Callback, Decision, Rejection, ResponseMode,
};
use crate::oidc::hints;
use crate::store::Session;
use crate::web::state::AppState;
use crate::web::{pages, session};

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = super::form_pairs(query.unwrap_or_default().as_bytes());
    handle(&state, &jar, &pairs).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !super::is_form(&headers) {
        return state.templates.error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The authorization request must be sent as a form.",
        );
    }
    handle(&state, &jar, &super::form_pairs(&body)).await
}

async fn handle(state: &AppState, jar: &CookieJar, pairs: &[(String, String)]) -> Response {
    let provider = &state.provider;
    let now = state.now();
    let hint_subject =
        |hint: &str, client: &Client| hints::authorization_hint_subject(provider, hint, client);
    let (req, client) = match authorize::validate(provider, pairs, hint_subject).await {
        Ok(v) => v,
        Err(Rejection::Page(message)) => {
            return state.templates.error_page(
                StatusCode::BAD_REQUEST,
                "Invalid sign-in request",
                &message,
            );
        }
        Err(Rejection::Redirect(callback)) => return respond(state, &callback),
        Err(Rejection::Internal) => return pages::internal_error(state),
        Err(Rejection::Unavailable) => return pages::unavailable(state),
    };
    let current = match session::current(state, jar, now).await {
        Ok(c) => c,
        Err(e) => return store_failure(state, &req, &e, "session lookup failed"),
    };
    match authorize::decide(&req, current.as_ref().map(|(s, _)| s), now) {
        Decision::Issue | Decision::Consent => {
            let Some((sess, _)) = current else {
                return pages::internal_error(state);
            };
            proceed(state, req, &client, &sess, None, now).await
        }
        Decision::Fail(error) => respond(state, &authorize::deny(provider, &req, &error)),
        Decision::StepUp => {
            let Some((sess, user)) = current else {
                return pages::internal_error(state);
            };
            pages::mfa::step_up(state, jar, req, &client, &sess, &user, now).await
        }
        Decision::Login => match authorize::save_login_request(provider, &req, now).await {
            Ok(handle) => redirect(&format!("/login?rid={handle}")),
            Err(e) => store_failure(state, &req, &e, "cannot save login request"),
        },
    }
}

/// The person is known (live session, or just signed in): make the one decision of the protocol
/// core (`decide_for_user`) and answer with a code, an error, or the consent page. `rid` is the
/// handle of the stored request when there is one; it is consumed when the request completes.
pub async fn proceed(
    state: &AppState,
    req: AuthorizationRequest,
    client: &Client,
    sess: &Session,
    rid: Option<&str>,
    now: i64,
) -> Response {
    let provider = &state.provider;
    let decision = match authorize::decide_for_user(provider, &req, client, &sess.user_id).await {
        Ok(d) => d,
        Err(e) => return store_failure(state, &req, &e, "consent lookup failed"),
    };
    if let Decision::Consent = decision {
        // Keep the request, bound to this session, until the consent form is answered.
        return match authorize::await_consent(provider, req.clone(), rid, sess, now).await {
            Ok(Some(handle)) => redirect(&format!("/consent?rid={handle}")),
            Ok(None) => pages::request_expired(state),
            Err(e) => store_failure(state, &req, &e, "cannot save authorization request"),
        };
    }
    // Anything else completes the request: consume it first, so it completes at most once.
    if let Some(rid) = rid {
        match authorize::take_login_request(provider, rid, now).await {
            Ok(Some(_)) => {}
            Ok(None) => return pages::request_expired(state),
            Err(e) => return store_failure(state, &req, &e, "login request lookup failed"),
        }
    }
    match decision {
        Decision::Fail(error) => respond(state, &authorize::deny(provider, &req, &error)),
        _ => issue(state, &req, sess, now).await,
    }
}

/// Issue the code and send it to the client.
pub async fn issue(
    state: &AppState,
    req: &AuthorizationRequest,
    sess: &Session,
    now: i64,
) -> Response {
    match authorize::issue_code(&state.provider, req, sess, now).await {
        Ok(callback) => respond(state, &callback),
        Err(e) => {
            tracing::error!(error = %e, "cannot issue authorization code");
            pages::internal_error(state)
        }
    }
}

/// Deliver an authorization response in its response mode: a 303 redirect (query or fragment),
/// or an auto-submitting form (OAuth 2.0 Form Post Response Mode §2) whose script is a static
/// file (the CSP allows no inline script) and whose button works without JavaScript.
pub fn respond(state: &AppState, callback: &Callback) -> Response {
    match callback.mode {
        ResponseMode::Query | ResponseMode::Fragment => redirect(callback.to_url().as_str()),
        ResponseMode::FormPost => {
            let Ok(target) = Url::parse(&callback.redirect_uri) else {
                return pages::internal_error(state);
            };
            let mut ctx = Context::new();
            ctx.insert("title", "Continue");
            ctx.insert("action", &callback.redirect_uri);
            let params: Vec<serde_json::Value> = callback
                .params
                .iter()
                .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
                .collect();
            ctx.insert("params", &params);
            let mut resp = state.templates.page(StatusCode::OK, "form_post.html", &ctx);
            // The form must be allowed to post to the client, and only there.
            let form_action = match target.origin() {
                url::Origin::Tuple(..) => target.origin().ascii_serialization(),
                url::Origin::Opaque(_) => format!("{}:", target.scheme()),
            };
            let csp = format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 base-uri 'none'; frame-ancestors 'none'; form-action {form_action}"
            );
            match HeaderValue::from_str(&csp) {
                Ok(v) => {
                    resp.headers_mut()
                        .insert(header::CONTENT_SECURITY_POLICY, v);
                    resp
                }
                Err(_) => pages::internal_error(state),
            }
        }
    }
}

/// 303 See Other (RFC 9700 §4.11: never 307 after a POST), uncached.
pub fn redirect(to: &str) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Redirect::to(to)).into_response()
}

/// A storage failure after the redirect URI was validated: an outage goes back to the client as
/// `temporarily_unavailable` (RFC 6749 §4.1.2.1), anything else is the generic page.
fn store_failure(
    state: &AppState,
    req: &AuthorizationRequest,
    e: &crate::store::StoreError,
    what: &'static str,
) -> Response {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "{what}: database unavailable");
        let error = crate::oauth::OAuthError::new(
            crate::oauth::ErrorCode::TemporarilyUnavailable,
            "the service is temporarily unavailable; retry later",
        );
        return respond(state, &authorize::deny(&state.provider, req, &error));
    }
    tracing::error!(error = %e, "{what}");
    pages::internal_error(state)
}
