//! The account's second factors: `/account/mfa` (what is set up; new recovery codes; removal),
//! `/account/mfa/totp` (set up an authenticator app: QR code, key, confirm with a code). Each
//! POST is one call into `accounts::mfa`; recovery codes are shown once, on the page that
//! answers the POST that made them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use serde::Deserialize;
use tera::Context;

use super::account::check_csrf;
use super::{PageError, PageResult, SignedIn, Who, field_view};
use crate::accounts::signin;
use crate::accounts::{AccountError, FieldErrors, mfa};
use crate::domain::User;
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Deserialize)]
pub struct ManageQuery {
    #[serde(default)]
    done: String,
}

async fn manage_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    user: &User,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> PageResult {
    let f = mfa::factors(&state.accounts, user).await?;
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Two-step sign-in");
    ctx.insert("csrf", &token);
    ctx.insert("totp", &f.totp);
    ctx.insert("since", &f.totp_since.map(super::account::utc));
    ctx.insert("left", &f.recovery_codes_left);
    ctx.insert("notice", &notice);
    ctx.insert("errors", &field_view(&["recovery", "remove"], errors));
    Ok((jar, state.templates.page(status, "mfa_manage.html", &ctx)).into_response())
}

/// GET /account/mfa.
pub async fn manage(
    State(state): State<AppState>,
    me: SignedIn,
    jar: CookieJar,
    Query(q): Query<ManageQuery>,
) -> PageResult {
    let notice = (q.done == "removed").then_some("The authenticator app was removed.");
    let errors = FieldErrors::default();
    manage_page(&state, jar, StatusCode::OK, &me.user, notice, &errors).await
}

fn setup_page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    setup: &mfa::Setup,
    error: Option<&str>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let qr = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&setup.qr_svg)
    );
    let mut ctx = Context::new();
    ctx.insert("title", "Set up an authenticator app");
    ctx.insert("csrf", &token);
    ctx.insert("secret", &setup.secret);
    ctx.insert("uri", &setup.uri);
    ctx.insert("qr", &qr);
    ctx.insert("error", &error);
    (jar, state.templates.page(status, "mfa_setup.html", &ctx)).into_response()
}

fn codes_page(state: &AppState, jar: CookieJar, codes: &[String], first: bool) -> Response {
    let mut ctx = Context::new();
    ctx.insert("title", "Your recovery codes");
    ctx.insert("codes", codes);
    ctx.insert("first", &first);
    let mut resp = state
        .templates
        .page(StatusCode::OK, "mfa_codes.html", &ctx)
        .into_response();
    // Shown once: no cache keeps them.
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    (jar, resp).into_response()
}

/// GET /account/mfa/totp: the key, its QR code and the confirmation form; to `/account/mfa`
/// when an app is already set up (its key is never shown again).
pub async fn show_setup(State(state): State<AppState>, me: SignedIn, jar: CookieJar) -> PageResult {
    match mfa::setup(&state.accounts, &me.user, state.now()).await? {
        Some(setup) => {
            let mut resp = setup_page(&state, jar, StatusCode::OK, &setup, None);
            resp.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            Ok(resp)
        }
        None => Ok(Redirect::to("/account/mfa").into_response()),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// POST /account/mfa/totp: a right code turns the app on and shows the recovery codes.
pub async fn confirm_setup(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let now = state.now();
    match mfa::confirm(&state.accounts, &caller, &me.user, &form.code, now).await {
        Ok(codes) => Ok(codes_page(&state, jar, &codes, true)),
        Err(AccountError::Invalid(errors)) => {
            let Some(setup) = mfa::setup(&state.accounts, &me.user, now).await? else {
                return Ok(Redirect::to("/account/mfa").into_response());
            };
            let msg = errors.first().unwrap_or(mfa::WRONG_TOTP);
            Ok(setup_page(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &setup,
                Some(msg),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// The current password, checked (rate limited like a sign-in) before a change to the factors;
/// a wrong one shows the page again with the message in `section`.
async fn confirm_password(
    state: &AppState,
    jar: &CookieJar,
    me: &SignedIn,
    caller: &crate::accounts::Caller,
    password: &str,
    section: &'static str,
) -> Result<(), PageError> {
    if signin::confirm_password(&state.accounts, caller, &me.user, password).await? {
        return Ok(());
    }
    let errors = FieldErrors::one(section, BAD_CREDENTIALS_SHORT);
    let page = manage_page(
        state,
        jar.clone(),
        StatusCode::BAD_REQUEST,
        &me.user,
        None,
        &errors,
    )
    .await?;
    Err(PageError::Rendered(Box::new(page)))
}

const BAD_CREDENTIALS_SHORT: &str = "The password is incorrect.";

/// POST /account/mfa/recovery: new recovery codes, shown once.
pub async fn regenerate(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    confirm_password(&state, &jar, &me, &caller, &form.password, "recovery").await?;
    let codes = mfa::regenerate_recovery(&state.accounts, &caller, &me.user, state.now()).await?;
    Ok(codes_page(&state, jar, &codes, false))
}

/// POST /account/mfa/remove: the authenticator app and recovery codes are removed.
pub async fn remove(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    confirm_password(&state, &jar, &me, &caller, &form.password, "remove").await?;
    mfa::remove(&state.accounts, &caller.origin(), &me.user.id, &me.user).await?;
    Ok(Redirect::to("/account/mfa?done=removed").into_response())
}
