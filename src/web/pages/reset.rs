//! Password reset: `/forgot-password` mails a single-use link (same answer whether or not the
//! account exists), `/reset-password?token=…` sets a new password under the sign-up policy,
//! ends every session of the user and sends a notice.
//!
//! The same page accepts an administrator's invitation link (`CodePurpose::Invitation`): an
//! invitation is a first password reset with different wording, which also marks the address
//! verified (`InvitationStore::accept_invitation`, one transaction).

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::accounts;
use super::login::origin;
use crate::audit::{self, Event, action};
use crate::crypto::hash_secret;
use crate::domain::{Email, Password};
use crate::email::Message;
use crate::state::AppState;
use crate::store::{AccountCode, CodePurpose, NewAccountCode};
use crate::web::csrf;
use crate::web::limits::Bucket;

const LINK_SENT: &str = "If an account exists for this address, we have sent it a link to choose a new password. Check your inbox.";
const FORM_EXPIRED: &str = "This form expired. Please try again.";

#[derive(Deserialize)]
pub struct ForgotQuery {
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf: String,
}

fn forgot_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    email: &str,
    rid: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Forgot your password?");
    ctx.insert("csrf", &token);
    ctx.insert("email", email);
    ctx.insert("rid", rid);
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    (
        jar,
        state.templates.page(status, "forgot_password.html", &ctx),
    )
        .into_response()
}

pub async fn show_forgot(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<ForgotQuery>,
) -> Response {
    forgot_page(&state, jar, StatusCode::OK, "", &q.rid, None, None)
}

pub async fn submit_forgot(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ForgotForm>,
) -> Response {
    let started = tokio::time::Instant::now();
    let now = crate::now();
    let origin = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return forgot_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.rid,
            None,
            Some(FORM_EXPIRED),
        );
    }
    if let Err(resp) = accounts::check_limits(&state, Bucket::Reset, peer, &origin, None).await {
        return resp;
    }
    let email = match Email::parse(&form.email) {
        Ok(e) => e,
        Err(e) => {
            return forgot_page(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &form.email,
                &form.rid,
                None,
                Some(&e.0),
            );
        }
    };
    if let Err(resp) =
        accounts::check_account_limit(&state, Bucket::Reset, &origin, email.as_str()).await
    {
        return resp;
    }
    let store = &state.provider.store;
    let user = match store.find_user_by_email(email.as_str()).await {
        Ok(u) => u.filter(|u| u.is_active()),
        Err(e) => return accounts::store_failed(&state, &e, "user lookup failed"),
    };
    match user {
        Some(user) => {
            let ttl = state.provider.settings.accounts.reset_link_ttl;
            let (token, code) =
                NewAccountCode::link(CodePurpose::PasswordReset, &user.email, now + ttl);
            let mail = match state.mailer.render_in(
                &user.email,
                &Message::PasswordReset {
                    name: user.name.clone(),
                    link: accounts::link(&state, "/reset-password", &token),
                    minutes: ttl / 60,
                },
                user.locale.as_deref(),
            ) {
                Ok(m) => m,
                Err(e) => return accounts::store_failed(&state, &e, "cannot render mail"),
            };
            if let Err(e) = store.issue_codes(&user.id, &[code], &[mail], now).await {
                return accounts::store_failed(&state, &e, "cannot store reset link");
            }
            state.mailer.wake();
            audit::record(
                store.as_ref(),
                Event::new(action::CODE_REQUEST)
                    .target(&user.id)
                    .origin(&origin)
                    .detail("purpose", "password_reset"),
            )
            .await;
        }
        None => {
            audit::record(
                store.as_ref(),
                Event::new(action::CODE_REQUEST)
                    .origin(&origin)
                    .failure("unknown_account")
                    .detail("purpose", "password_reset"),
            )
            .await;
        }
    }
    accounts::equalise(started).await;
    forgot_page(
        &state,
        jar,
        StatusCode::OK,
        &form.email,
        &form.rid,
        Some(LINK_SENT),
        None,
    )
}

fn reset_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    token: &str,
    invitation: bool,
    error: Option<&str>,
) -> Response {
    let (jar, csrf_token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert(
        "title",
        if invitation {
            "Choose your password"
        } else {
            "Choose a new password"
        },
    );
    ctx.insert("invitation", &invitation);
    ctx.insert("csrf", &csrf_token);
    ctx.insert("token", token);
    ctx.insert("error", &error);
    (
        jar,
        state.templates.page(status, "reset_password.html", &ctx),
    )
        .into_response()
}

fn bad_link(state: &AppState) -> Response {
    accounts::notice_page(
        state,
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "This link is wrong, expired or already used. Ask for a new one.",
        Some(("/forgot-password", "Ask for a new link")),
    )
}

/// The live reset or invitation link named by `token`, if any.
async fn live_link(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Option<AccountCode>, Response> {
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = hash_secret(token);
    for purpose in [CodePurpose::PasswordReset, CodePurpose::Invitation] {
        match state.provider.store.find_link(purpose, &hash, now).await {
            Ok(Some(code)) => return Ok(Some(code)),
            Ok(None) => {}
            Err(e) => return Err(accounts::store_failed(state, &e, "link lookup failed")),
        }
    }
    Ok(None)
}

fn is_invitation(link: &AccountCode) -> bool {
    link.purpose == CodePurpose::Invitation.as_str()
}

pub async fn show_reset(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<ResetQuery>,
) -> Response {
    match live_link(&state, &q.token, crate::now()).await {
        Ok(Some(link)) => reset_page(
            &state,
            jar,
            StatusCode::OK,
            &q.token,
            is_invitation(&link),
            None,
        ),
        Ok(None) => bad_link(&state),
        Err(resp) => resp,
    }
}

pub async fn submit_reset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ResetForm>,
) -> Response {
    let now = crate::now();
    let origin = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return reset_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.token,
            false,
            Some(FORM_EXPIRED),
        );
    }
    if let Err(resp) = accounts::check_limits(&state, Bucket::Reset, peer, &origin, None).await {
        return resp;
    }
    let store = &state.provider.store;
    let link = match live_link(&state, &form.token, now).await {
        Ok(Some(l)) => l,
        Ok(None) => {
            audit::record(
                store.as_ref(),
                Event::new(action::PASSWORD_RESET)
                    .origin(&origin)
                    .failure("bad_link"),
            )
            .await;
            return bad_link(&state);
        }
        Err(resp) => return resp,
    };
    let user = match store.find_user(&link.user_id).await {
        // Bound to the address it was sent to.
        Ok(u) => u.filter(|u| u.is_active() && u.email == link.target),
        Err(e) => return accounts::store_failed(&state, &e, "user lookup failed"),
    };
    let Some(user) = user else {
        return bad_link(&state);
    };
    let Ok(email) = Email::parse(&user.email) else {
        return bad_link(&state);
    };
    let password = match Password::parse_new(&form.password, &email) {
        Ok(p) => p,
        Err(e) => {
            return reset_page(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &form.token,
                is_invitation(&link),
                Some(&e.0),
            );
        }
    };
    if form.password != form.password_confirm {
        return reset_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.token,
            is_invitation(&link),
            Some("The two passwords are not the same."),
        );
    }
    let hash = match state.provider.hasher.hash(&password).await {
        Ok(h) => h,
        Err(e) => return accounts::store_failed(&state, &e, "password hashing failed"),
    };
    if is_invitation(&link) {
        return accept_invitation(&state, &form.token, &hash, &origin, now).await;
    }
    // Use the link now: of two parallel submissions only one gets past this.
    match store
        .take_link(
            CodePurpose::PasswordReset,
            &hash_secret(form.token.trim()),
            now,
        )
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return bad_link(&state),
        Err(e) => return accounts::store_failed(&state, &e, "link use failed"),
    }
    let notice = match state.mailer.render_in(
        &user.email,
        &Message::PasswordChanged {
            name: user.name.clone(),
            reset_link: accounts::link(&state, "/forgot-password", ""),
        },
        user.locale.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => return accounts::store_failed(&state, &e, "cannot render mail"),
    };
    if let Err(e) = store.reset_password(&user.id, &hash, &[notice], now).await {
        return accounts::store_failed(&state, &e, "cannot reset password");
    }
    state.mailer.wake();
    let ended = match crate::oidc::logout::end_user_sessions(&state.provider, &user.id, now).await {
        Ok(sids) => sids.len(),
        Err(e) => return accounts::store_failed(&state, &e, "cannot end sessions"),
    };
    tracing::info!(user.id = %user.id, sessions.ended = ended, "password reset");
    audit::record(
        store.as_ref(),
        Event::new(action::PASSWORD_RESET)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin)
            .detail("sessions_ended", ended),
    )
    .await;
    accounts::notice_page(
        &state,
        StatusCode::OK,
        "Password changed",
        "Your password was changed and every session was signed out. Sign in with the new password.",
        Some(("/login", "Sign in")),
    )
}

/// Set the first password through an invitation link: link used, password set and address
/// verified in one transaction. The invited account has no session to end.
async fn accept_invitation(
    state: &AppState,
    token: &str,
    password_hash: &str,
    origin: &audit::Origin,
    now: i64,
) -> Response {
    let store = &state.provider.store;
    let code = match store
        .accept_invitation(&hash_secret(token.trim()), password_hash, now)
        .await
    {
        Ok(Some(code)) => code,
        Ok(None) => return bad_link(state),
        Err(e) => return accounts::store_failed(state, &e, "cannot accept invitation"),
    };
    tracing::info!(user.id = %code.user_id, "invitation accepted");
    audit::record(
        store.as_ref(),
        Event::new(action::INVITATION_ACCEPT)
            .actor(&code.user_id)
            .target(&code.user_id)
            .origin(origin),
    )
    .await;
    accounts::notice_page(
        state,
        StatusCode::OK,
        "Password set",
        "Your password is set and your e-mail address is confirmed. Sign in with it.",
        Some(("/login", "Sign in")),
    )
}
