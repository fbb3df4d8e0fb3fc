//! Password reset pages: `/forgot-password` asks for a link, `/reset-password?token=…` sets the
//! new password (also for an administrator's invitation link). The rules are in
//! `accounts::reset`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::{FORM_EXPIRED, PageResult, Who};
use crate::accounts::AccountError;
use crate::accounts::reset::{self, LINK_SENT, LinkKind, Outcome};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

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
    form: &ForgotForm,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Forgot your password?");
    ctx.insert("csrf", &token);
    ctx.insert("email", &form.email);
    ctx.insert("rid", &form.rid);
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
    let form = ForgotForm {
        email: String::new(),
        csrf: String::new(),
        rid: q.rid,
    };
    forgot_page(&state, jar, StatusCode::OK, &form, None, None)
}

pub async fn submit_forgot(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<ForgotForm>,
) -> PageResult {
    if !csrf::verify(&state, &jar, &form.csrf) {
        return Ok(forgot_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form,
            None,
            Some(FORM_EXPIRED),
        ));
    }
    match reset::forgot(&state.accounts, &caller, &form.email, state.now()).await {
        Ok(()) => Ok(forgot_page(
            &state,
            jar,
            StatusCode::OK,
            &form,
            Some(LINK_SENT),
            None,
        )),
        Err(AccountError::Invalid(e)) => Ok(forgot_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form,
            None,
            e.first(),
        )),
        Err(e) => Err(e.into()),
    }
}

fn reset_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    token: &str,
    kind: LinkKind,
    error: Option<&str>,
) -> Response {
    let invitation = kind == LinkKind::Invitation;
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

pub async fn show_reset(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<ResetQuery>,
) -> PageResult {
    let kind = reset::inspect(&state.accounts, &q.token, state.now()).await?;
    Ok(reset_page(
        &state,
        jar,
        StatusCode::OK,
        &q.token,
        kind,
        None,
    ))
}

pub async fn submit_reset(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<ResetForm>,
) -> PageResult {
    let now = state.now();
    if !csrf::verify(&state, &jar, &form.csrf) {
        let page = reset_page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.token,
            LinkKind::Reset,
            Some(FORM_EXPIRED),
        );
        return Ok(page);
    }
    let result = reset::complete(
        &state.accounts,
        &caller,
        &form.token,
        &form.password,
        &form.password_confirm,
        now,
    )
    .await;
    let (title, message) = match result {
        Ok(Outcome::PasswordReset { .. }) => (
            "Password changed",
            "Your password was changed and every session was signed out. Sign in with the new password.",
        ),
        Ok(Outcome::InvitationAccepted) => (
            "Password set",
            "Your password is set and your e-mail address is confirmed. Sign in with it.",
        ),
        Err(AccountError::Invalid(e)) => {
            // The link is still live (nothing was used): its kind picks the words.
            let kind = reset::inspect(&state.accounts, &form.token, now).await?;
            return Ok(reset_page(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &form.token,
                kind,
                e.first(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(state
        .templates
        .notice_page(StatusCode::OK, title, message, Some(("/login", "Sign in"))))
}
