//! RP-initiated logout (OIDC RP-Initiated Logout 1.0) at the `end_session_endpoint`, `/logout`,
//! GET and POST. The judging is in `oidc::logout`; this adapter ends the session, clears the
//! cookie, records the event, and answers with the client's `post_logout_redirect_uri` (only
//! when registered), a "signed out" page, or — when the request cannot be tied to this browser's
//! session — a CSRF-protected confirmation page first.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use tera::Context;

use crate::audit::{Event, Origin, action};
use crate::crypto::hash_secret;
use crate::oidc::logout::{self, LogoutRequest};
use crate::store::Session;
use crate::web::client_addr::ClientIp;
use crate::web::oauth::authorize::redirect;
use crate::web::oauth::{form_pairs, is_form};
use crate::web::pages::Form;
use crate::web::state::AppState;
use crate::web::{csrf, session};

/// The confirmation form: only values already judged valid are carried.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    post_logout_redirect_uri: String,
    #[serde(default)]
    state: String,
}

pub async fn get(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = form_pairs(query.unwrap_or_default().as_bytes());
    let origin = super::login::origin(peer, &headers);
    handle(&state, jar, origin, &pairs).await
}

pub async fn post(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return state.templates.error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The logout request must be sent as a form.",
        );
    }
    let origin = super::login::origin(peer, &headers);
    handle(&state, jar, origin, &form_pairs(&body)).await
}

async fn handle(
    state: &AppState,
    jar: CookieJar,
    origin: Origin,
    pairs: &[(String, String)],
) -> Response {
    let now = state.now();
    let req = match logout::validate(&state.provider, pairs).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "logout request lookup failed");
            return super::internal_error(state);
        }
    };
    let current = match session::current(state, &jar, now).await {
        Ok(c) => c.map(|(s, _)| s),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return super::internal_error(state);
        }
    };
    match current {
        // Nobody is signed in here: nothing to end.
        None => finish(state, jar, &req),
        Some(sess) if req.is_tied_to(&sess) => {
            match end(state, jar, &sess, &req, &origin, now).await {
                Ok(jar) => finish(state, jar, &req),
                Err(resp) => resp,
            }
        }
        // A request that may not come from a client of this session (no hint, a forged one,
        // a hint of another session): the person decides.
        Some(_) => confirmation(state, jar, &req),
    }
}

pub async fn confirm(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let now = state.now();
    if !csrf::verify(&state, &jar, &form.csrf) {
        return state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Please sign out again.",
        );
    }
    // Judge the carried values again: the form is only a vehicle.
    let pairs: Vec<(String, String)> = [
        ("client_id", form.client_id),
        ("post_logout_redirect_uri", form.post_logout_redirect_uri),
        ("state", form.state),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let req = match logout::validate(&state.provider, &pairs).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "logout request lookup failed");
            return super::internal_error(&state);
        }
    };
    let origin = super::login::origin(peer, &headers);
    match session::current(&state, &jar, now).await {
        Ok(Some((sess, _))) => match end(&state, jar, &sess, &req, &origin, now).await {
            Ok(jar) => finish(&state, jar, &req),
            Err(resp) => resp,
        },
        Ok(None) => finish(&state, jar, &req),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            super::internal_error(&state)
        }
    }
}

/// End the session (queueing back-channel logout), clear the cookie, record the event.
async fn end(
    state: &AppState,
    jar: CookieJar,
    sess: &Session,
    req: &LogoutRequest,
    origin: &Origin,
    now: i64,
) -> Result<CookieJar, Response> {
    let Some(cookie) = jar.get(state.cookies.session) else {
        return Ok(jar);
    };
    let id_hash = hash_secret(cookie.value());
    if let Err(e) = logout::end_session(&state.provider, &id_hash, sess, now).await {
        tracing::error!(error = %e, "cannot end session");
        return Err(super::internal_error(state));
    }
    tracing::info!(user.id = %sess.user_id, "signed out");
    let mut event = Event::new(action::LOGOUT)
        .actor(&sess.user_id)
        .target(&sess.user_id)
        .origin(origin);
    if let Some(c) = &req.client_id {
        event = event.client(c);
    }
    state.audit(event).await;
    let removal = Cookie::build((state.cookies.session, ""))
        .path("/")
        .http_only(true)
        .secure(state.cookies.secure);
    Ok(jar.remove(removal))
}

/// Back to the client when its redirect is valid, otherwise the "signed out" page.
fn finish(state: &AppState, jar: CookieJar, req: &LogoutRequest) -> Response {
    match &req.redirect {
        Some(url) => (jar, redirect(url.as_str())).into_response(),
        None => {
            let mut ctx = Context::new();
            ctx.insert("title", "Signed out");
            (
                jar,
                state
                    .templates
                    .page(StatusCode::OK, "signed_out.html", &ctx),
            )
                .into_response()
        }
    }
}

fn confirmation(state: &AppState, jar: CookieJar, req: &LogoutRequest) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Sign out?");
    ctx.insert("csrf", &token);
    ctx.insert("client_id", &req.client_id.clone().unwrap_or_default());
    ctx.insert(
        "post_logout_redirect_uri",
        &req.post_logout_redirect_uri.clone().unwrap_or_default(),
    );
    ctx.insert("state", &req.state.clone().unwrap_or_default());
    (
        jar,
        state
            .templates
            .page(StatusCode::OK, "logout_confirm.html", &ctx),
    )
        .into_response()
}
