//! E-mail verification pages: the 6-digit code typed on `/verify-email`, and the single-use link
//! `/verify-email/confirm?token=…` (a GET shows a button; only the POST uses the token, so mail
//! scanners that open links do not consume it). The rules are in `accounts::signup`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tera::Context;

use super::{FORM_EXPIRED, PageError, PageResult, Who, login_path};
use crate::accounts::{AccountError, VERIFICATION_SENT, signup};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

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
    pub token: String,
}

/// The form behind every e-mailed link: the page at the link posts its token back, so that
/// mail scanners following the GET do not use the link up.
#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub csrf: String,
}

/// The verification page (code form), with an optional notice or error.
pub fn page(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    email: &str,
    rid: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let jar = remember_rid(state, jar, rid);
    let mut ctx = Context::new();
    ctx.insert("title", "Confirm your e-mail address");
    ctx.insert("csrf", &token);
    ctx.insert("rid", rid);
    ctx.insert("email", email);
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    (jar, state.templates.page(status, "verify_email.html", &ctx)).into_response()
}

/// The page at an e-mailed link: a button that posts `token` to `action`.
pub fn link_page(
    state: &AppState,
    jar: CookieJar,
    title: &str,
    action: &str,
    token: &str,
) -> Response {
    let (jar, csrf_token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", title);
    ctx.insert("csrf", &csrf_token);
    ctx.insert("token", token);
    ctx.insert("action", action);
    (
        jar,
        state
            .templates
            .page(StatusCode::OK, "verify_link.html", &ctx),
    )
        .into_response()
}

/// A posted link form's CSRF check: the link's page says to open the link again.
pub fn check_link_form(
    state: &AppState,
    jar: &CookieJar,
    form: &LinkForm,
) -> Result<(), PageError> {
    if csrf::verify(state, jar, &form.csrf) {
        Ok(())
    } else {
        Err(PageError::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Open the link from the e-mail again.",
        ))
    }
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<VerifyQuery>,
) -> Response {
    page(&state, jar, StatusCode::OK, "", &q.rid, None, None)
}

/// POST /verify-email: check a typed code; then sign in (continuing `rid`).
pub async fn submit_code(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> PageResult {
    let show = |jar, status, error| {
        page(
            &state,
            jar,
            status,
            &form.email,
            &form.rid,
            None,
            Some(error),
        )
    };
    if !csrf::verify(&state, &jar, &form.csrf) {
        return Ok(show(jar, StatusCode::FORBIDDEN, FORM_EXPIRED));
    }
    let result = signup::verify_code(
        &state.accounts,
        &caller,
        &form.email,
        &form.code,
        state.now(),
    )
    .await;
    match result {
        // The code proves the address, not the password: sign in next.
        Ok(()) => Ok(Redirect::to(&login_path(&form.rid)).into_response()),
        Err(AccountError::Invalid(e)) => Ok(show(
            jar,
            StatusCode::BAD_REQUEST,
            e.first().unwrap_or(signup::BAD_CODE),
        )),
        Err(e) => Err(e.into()),
    }
}

/// POST /verify-email/resend: a new link and code, subject to the cool-down. Same answer for
/// every address.
pub async fn resend(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<CodeForm>,
) -> PageResult {
    if !csrf::verify(&state, &jar, &form.csrf) {
        let resp = page(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.email,
            &form.rid,
            None,
            Some(FORM_EXPIRED),
        );
        return Ok(resp);
    }
    signup::resend(&state.accounts, &caller, &form.email, state.now()).await?;
    Ok(page(
        &state,
        jar,
        StatusCode::OK,
        &form.email,
        &form.rid,
        Some(VERIFICATION_SENT),
        None,
    ))
}

/// GET /verify-email/confirm?token=…: a button that posts the token.
pub async fn show_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LinkQuery>,
) -> Response {
    link_page(
        &state,
        jar,
        "Confirm your e-mail address",
        "/verify-email/confirm",
        &q.token,
    )
}

/// POST /verify-email/confirm: use the link token.
pub async fn submit_link(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<LinkForm>,
) -> PageResult {
    check_link_form(&state, &jar, &form)?;
    let now = state.now();
    signup::confirm_link(&state.accounts, &caller, &form.token, now).await?;
    // Opened in the browser that was signing in to an application: continue that request
    // (sign in next, as after a typed code). Anywhere else: the plain sign-in page.
    let (jar, rid) = take_remembered_rid(&state, jar, now).await;
    if let Some(rid) = rid {
        return Ok((jar, Redirect::to(&login_path(&rid))).into_response());
    }
    Ok((
        jar,
        state.templates.notice_page(
            StatusCode::OK,
            "E-mail address confirmed",
            "Thank you: your e-mail address is confirmed. You can sign in now.",
            Some(("/login", "Sign in")),
        ),
    )
        .into_response())
}

/// Path of the cookie that remembers the waiting authorization request: only the link
/// confirmation reads it.
const PENDING_RID_PATH: &str = "/verify-email";

/// Remember in this browser the authorization request `rid` that waits while the address is
/// confirmed, so the confirmation link, when opened in this same browser, can return to it
/// (`take_remembered_rid`). A link opened elsewhere finds no cookie and ends on the plain sign-in
/// page: nothing in the link itself selects a request.
fn remember_rid(state: &AppState, jar: CookieJar, rid: &str) -> CookieJar {
    if rid.is_empty() || rid.len() > 128 {
        return jar;
    }
    let ttl = state.provider.settings.accounts.verification_link_ttl;
    jar.add(
        Cookie::build((state.cookies.pending_rid, rid.to_owned()))
            .path(PENDING_RID_PATH)
            .http_only(true)
            .secure(state.cookies.secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(ttl))
            .build(),
    )
}

/// The authorization request this browser was in when it was sent to confirm its address, if
/// it is still waiting; the cookie is removed either way.
async fn take_remembered_rid(
    state: &AppState,
    jar: CookieJar,
    now: i64,
) -> (CookieJar, Option<String>) {
    let Some(rid) = jar
        .get(state.cookies.pending_rid)
        .map(|c| c.value().to_owned())
    else {
        return (jar, None);
    };
    let jar = jar.remove(Cookie::build(state.cookies.pending_rid).path(PENDING_RID_PATH));
    if rid.is_empty() || rid.len() > 128 {
        return (jar, None);
    }
    match crate::oauth::authorize::peek_login_request(&state.provider, &rid, now).await {
        Ok(Some(_)) => (jar, Some(rid)),
        Ok(None) => (jar, None),
        Err(e) => {
            // Not worth failing the confirmation for: the plain sign-in page still works.
            tracing::warn!(error = %e, "login request lookup failed");
            (jar, None)
        }
    }
}
