//! Sign-in by one-time code: `/login/code` sends a 6-digit code to an e-mail address or a
//! verified phone number, `/login/code/verify` checks it and signs in like a password. The rules
//! are in `accounts::signin`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::login::signed_in;
use super::{PageError, PageResult, Who};
use crate::accounts::AccountError;
use crate::accounts::signin::{self, BAD_CODE, CODE_SENT};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

fn code_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    identifier: &str,
    rid: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Enter your sign-in code");
    ctx.insert("csrf", &token);
    ctx.insert("identifier", identifier);
    ctx.insert("rid", rid);
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    (jar, state.templates.page(status, "login_code.html", &ctx)).into_response()
}

/// POST /login/code: send a code (when the identifier names an account and the cool-down has
/// passed), then show the code form.
pub async fn request(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<RequestForm>,
) -> PageResult {
    if !csrf::verify(&state, &jar, &form.csrf) {
        return Err(PageError::form_expired());
    }
    let result =
        signin::request_code(&state.accounts, &caller, &form.identifier, state.now()).await;
    match result {
        Ok(id) => Ok(code_page(
            &state,
            jar,
            StatusCode::OK,
            &id,
            &form.rid,
            Some(CODE_SENT),
            None,
        )),
        Err(AccountError::Invalid(e)) => Ok(code_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.identifier,
            &form.rid,
            None,
            e.first(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// POST /login/code/verify: a correct code signs in.
pub async fn verify(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<VerifyForm>,
) -> PageResult {
    if !csrf::verify(&state, &jar, &form.csrf) {
        return Err(PageError::form_expired());
    }
    let now = state.now();
    let result =
        signin::verify_code(&state.accounts, &caller, &form.identifier, &form.code, now).await;
    let outcome = match result {
        Err(AccountError::Invalid(e)) => {
            let msg = e.first().unwrap_or(BAD_CODE);
            let page = code_page(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &form.identifier,
                &form.rid,
                None,
                Some(msg),
            );
            return Ok(page);
        }
        other => other?,
    };
    signed_in(&state, jar, outcome, caller, &form.rid, now).await
}
