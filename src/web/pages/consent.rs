//! The consent page (OIDC Core §3.1.2.4): what the application asks for, in plain words, with
//! Allow and Deny. The form is CSRF-protected and bound to its waiting authorization request
//! (`rid`): answering consumes the request, so a replayed or foreign form fails.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use crate::audit::{Event, action};
use crate::domain::scope_description;
use crate::oauth::authorize::{self};
use crate::oauth::{ErrorCode, OAuthError};
use crate::web::client_addr::ClientIp;
use crate::web::oauth::authorize::{issue, respond};
use crate::web::pages::Form;
use crate::web::state::AppState;
use crate::web::{csrf, session};

#[derive(Deserialize)]
pub struct ConsentQuery {
    #[serde(default)]
    rid: String,
}

/// Every field defaults to empty, so a tampered form gets a message, not a 422.
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
    #[serde(default)]
    decision: String,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<ConsentQuery>,
) -> Response {
    let now = state.now();
    let provider = &state.provider;
    let req = match authorize::peek_login_request(provider, &q.rid, now).await {
        Ok(Some(req)) if !q.rid.is_empty() => req,
        Ok(_) => return super::request_expired(&state),
        Err(e) => {
            tracing::error!(error = %e, "authorization request lookup failed");
            return super::internal_error(&state);
        }
    };
    match session::current(&state, &jar, now).await {
        Ok(Some((sess, _))) if req.consent_sid.as_deref() == Some(sess.sid.as_str()) => {}
        Ok(_) => return other_session(&state),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return super::internal_error(&state);
        }
    }
    let client = match super::login::active_client(&state, &req).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let scopes: Vec<&str> = req.scope.iter().map(scope_description).collect();
    let (jar, token) = csrf::token(&state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Allow access?");
    ctx.insert("csrf", &token);
    ctx.insert("rid", &q.rid);
    ctx.insert("client_name", &client.name);
    ctx.insert("scopes", &scopes);
    (
        jar,
        state.templates.page(StatusCode::OK, "consent.html", &ctx),
    )
        .into_response()
}

/// The request waits for another sign-in session's answer (or none): refuse.
fn other_session(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::FORBIDDEN,
        "Not your request",
        "This request belongs to another sign-in. Go back to the application and start again.",
    )
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    let now = state.now();
    let provider = &state.provider;
    if !csrf::verify(&state, &jar, &form.csrf) {
        return state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Go back to the application and start again.",
        );
    }
    let allow = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => {
            return state.templates.error_page(
                StatusCode::BAD_REQUEST,
                "Invalid answer",
                "Choose Allow or Deny.",
            );
        }
    };
    let sess = match session::current(&state, &jar, now).await {
        Ok(Some((sess, _))) => sess,
        Ok(None) => {
            return state.templates.error_page(
                StatusCode::FORBIDDEN,
                "Not signed in",
                "Your session ended. Go back to the application and start again.",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            return super::internal_error(&state);
        }
    };
    // Consume the request: each consent form is answered at most once.
    let req = match authorize::take_login_request(provider, &form.rid, now).await {
        Ok(Some(req)) if !form.rid.is_empty() => req,
        Ok(_) => return super::request_expired(&state),
        Err(e) => {
            tracing::error!(error = %e, "authorization request lookup failed");
            return super::internal_error(&state);
        }
    };
    if req.consent_sid.as_deref() != Some(sess.sid.as_str()) {
        return other_session(&state);
    }
    if let Err(resp) = super::login::active_client(&state, &req).await {
        return resp;
    }
    let origin = super::caller(peer, &headers).origin();
    let event = Event::new(action::CONSENT_GIVE)
        .actor(&sess.user_id)
        .target(&sess.user_id)
        .client(&req.client_id)
        .origin(&origin)
        .detail("scope", req.scope.to_string());
    if !allow {
        state.audit(event.failure("denied")).await;
        let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return respond(&state, &authorize::deny(provider, &req, &error));
    }
    if let Err(e) = authorize::remember_consent(provider, &req, &sess.user_id, now).await {
        tracing::error!(error = %e, "cannot save consent");
        return super::internal_error(&state);
    }
    state.audit(event).await;
    issue(&state, &req, &sess, now).await
}
