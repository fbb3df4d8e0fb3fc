//! E-mail verification, both ways: the 6-digit code typed on `/verify-email`, and the
//! single-use link `/verify-email/confirm?token=…` (a GET shows a button; only the POST uses the
//! token, so mail scanners that open links do not consume it). Codes and links are bound to the
//! address they were sent to, single use, and codes die after `accounts.code_max_attempts`
//! wrong guesses. Answers never say whether an account exists.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::accounts::{self, CODE_SENT, LinkForm};
use super::login::origin;
use crate::audit::{self, Event, action};
use crate::domain::Email;
use crate::state::AppState;
use crate::store::{CodeCheck, CodePurpose};
use crate::web::csrf;
use crate::web::limits::Bucket;

const BAD_CODE: &str =
    "That code is wrong or has expired. Check the e-mail, or ask for a new code.";
const FORM_EXPIRED: &str = "This form expired. Please try again.";

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<VerifyQuery>,
) -> Response {
    accounts::verify_page(&state, jar, StatusCode::OK, "", &q.rid, None, None)
}

/// POST /verify-email: check a typed code.
pub async fn submit_code(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    let now = crate::now();
    let origin = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return accounts::verify_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.rid,
            None,
            Some(FORM_EXPIRED),
        );
    }
    let email = Email::parse(&form.email).ok();
    let key = email.as_ref().map(Email::as_str);
    if let Err(resp) = accounts::check_limits(&state, Bucket::Verify, peer, &origin, key).await {
        return resp;
    }
    let wrong = |jar| {
        accounts::verify_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.email,
            &form.rid,
            None,
            Some(BAD_CODE),
        )
    };
    let code = form.code.trim();
    let Some(email) = email.filter(|_| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
    else {
        return wrong(jar);
    };
    let store = &state.provider.store;
    let user = match store.find_user_by_email(email.as_str()).await {
        Ok(u) => u.filter(|u| u.is_active() && !u.email_verified),
        Err(e) => return accounts::store_failed(&state, &e, "user lookup failed"),
    };
    let Some(user) = user else {
        audit::record(
            store.as_ref(),
            Event::new(action::EMAIL_VERIFY)
                .origin(&origin)
                .failure("no_pending_account")
                .detail("method", "code"),
        )
        .await;
        return wrong(jar);
    };
    let max = state.provider.settings.accounts.code_max_attempts;
    let check = store
        .check_code(
            &user.id,
            CodePurpose::EmailVerifyCode,
            &accounts::code_hash(&user.id, code),
            max,
            now,
        )
        .await;
    let accepted = match check {
        Ok(CodeCheck::Accepted(c)) => c,
        Ok(other) => {
            let reason = if other == CodeCheck::Wrong {
                "wrong_code"
            } else {
                "no_live_code"
            };
            audit::record(
                store.as_ref(),
                Event::new(action::EMAIL_VERIFY)
                    .target(&user.id)
                    .origin(&origin)
                    .failure(reason)
                    .detail("method", "code"),
            )
            .await;
            return wrong(jar);
        }
        Err(e) => return accounts::store_failed(&state, &e, "code check failed"),
    };
    match store
        .mark_email_verified(&user.id, &accepted.target, now)
        .await
    {
        Ok(true) => {}
        // The address changed since the code was sent: the code is void.
        Ok(false) => return wrong(jar),
        Err(e) => return accounts::store_failed(&state, &e, "cannot mark verified"),
    }
    tracing::info!(user.id = %user.id, "e-mail address verified");
    audit::record(
        store.as_ref(),
        Event::new(action::EMAIL_VERIFY)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin)
            .detail("method", "code"),
    )
    .await;
    // The code proves the address, not the password: sign in next (continuing `rid`).
    Redirect::to(&accounts::login_path(&form.rid)).into_response()
}

/// POST /verify-email/resend: a new link and code, subject to the cool-down. Same answer for
/// every address.
pub async fn resend(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> Response {
    let started = tokio::time::Instant::now();
    let now = crate::now();
    let origin = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return accounts::verify_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.rid,
            None,
            Some(FORM_EXPIRED),
        );
    }
    let email = Email::parse(&form.email).ok();
    let key = email.as_ref().map(Email::as_str);
    if let Err(resp) = accounts::check_limits(&state, Bucket::CodeRequest, peer, &origin, key).await
    {
        return resp;
    }
    if let Some(email) = email {
        let user = match state
            .provider
            .store
            .find_user_by_email(email.as_str())
            .await
        {
            Ok(u) => u.filter(|u| u.is_active() && !u.email_verified),
            Err(e) => return accounts::store_failed(&state, &e, "user lookup failed"),
        };
        match user {
            Some(user) => {
                if let Err(resp) = accounts::resend_verification(&state, &user, &origin, now).await
                {
                    return resp;
                }
            }
            None => {
                audit::record(
                    state.provider.store.as_ref(),
                    Event::new(action::CODE_REQUEST)
                        .origin(&origin)
                        .failure("no_pending_account")
                        .detail("purpose", "email_verify"),
                )
                .await;
            }
        }
    }
    accounts::equalise(started).await;
    accounts::verify_page(
        &state,
        jar,
        StatusCode::OK,
        &form.email,
        &form.rid,
        Some(CODE_SENT),
        None,
    )
}

fn bad_link(state: &AppState) -> Response {
    accounts::notice_page(
        state,
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "This confirmation link is wrong, expired or already used. Sign in to get a new one.",
        Some(("/login", "Sign in")),
    )
}

/// GET /verify-email/confirm?token=…: a button that posts the token.
pub async fn show_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (jar, token) = csrf::token(&state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Confirm your e-mail address");
    ctx.insert("csrf", &token);
    ctx.insert("token", &q.token);
    ctx.insert("action", "/verify-email/confirm");
    (
        jar,
        state
            .templates
            .page(StatusCode::OK, "verify_link.html", &ctx),
    )
        .into_response()
}

/// POST /verify-email/confirm: use the link token.
pub async fn submit_link(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LinkForm>,
) -> Response {
    let now = crate::now();
    let origin = origin(peer, &headers);
    let taken = match accounts::take_posted_link(
        &state,
        &jar,
        peer,
        &origin,
        &form,
        CodePurpose::EmailVerifyLink,
        bad_link,
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    let verified = match &taken {
        Some(code) => match store
            .mark_email_verified(&code.user_id, &code.target, now)
            .await
        {
            Ok(v) => v,
            Err(e) => return accounts::store_failed(&state, &e, "cannot mark verified"),
        },
        None => false,
    };
    let Some(code) = taken.filter(|_| verified) else {
        audit::record(
            store.as_ref(),
            Event::new(action::EMAIL_VERIFY)
                .origin(&origin)
                .failure("bad_link")
                .detail("method", "link"),
        )
        .await;
        return bad_link(&state);
    };
    tracing::info!(user.id = %code.user_id, "e-mail address verified");
    audit::record(
        store.as_ref(),
        Event::new(action::EMAIL_VERIFY)
            .actor(&code.user_id)
            .target(&code.user_id)
            .origin(&origin)
            .detail("method", "link"),
    )
    .await;
    // Opened in the browser that was signing in to an application: continue that request
    // (sign in next, as after a typed code). Anywhere else: the plain sign-in page.
    let (jar, rid) = accounts::take_remembered_rid(&state, jar, now).await;
    if let Some(rid) = rid {
        return (jar, Redirect::to(&accounts::login_path(&rid))).into_response();
    }
    (
        jar,
        accounts::notice_page(
            &state,
            StatusCode::OK,
            "E-mail address confirmed",
            "Thank you: your e-mail address is confirmed. You can sign in now.",
            Some(("/login", "Sign in")),
        ),
    )
        .into_response()
}
