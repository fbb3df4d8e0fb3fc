//! `/account`: what a signed-in person manages themselves: profile, e-mail address (see
//! `email_change`), phone number, password, sessions, consents and deletion. Each POST is one
//! call into `accounts::profile` or `accounts::security`; a refused input shows the page again
//! with the message in its section.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::login::session_cookie;
use super::{PageError, PageResult, SignedIn, Who, field_view};
use crate::accounts::profile::{self, PhoneOutcome, ProfileInput};
use crate::accounts::{AccountError, AccountResult, FieldErrors, security, sessions};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

/// The page's sections, each showing its own message.
const SECTIONS: &[&str] = &["profile", "email", "password", "phone", "delete"];

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

#[derive(Serialize)]
struct SessionView {
    sid: String,
    current: bool,
    created: String,
    ip: Option<String>,
    user_agent: String,
}

#[derive(Serialize)]
struct ConsentView {
    client_id: String,
    client_name: String,
    scopes: String,
}

fn notice_for(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile was saved.",
        "email" => "We sent a link to the new address. The change takes effect when you open it.",
        "password" => "Your password was changed. Every other session was signed out.",
        "session" => "That session was signed out.",
        "consent" => "The application's access was removed.",
        "phone" => "We sent a code by SMS to the number. Type it below to confirm the number.",
        "phone_verified" => "Your phone number is confirmed.",
        _ => return None,
    })
}

pub(super) fn utc(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    me: &SignedIn,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> PageResult {
    let user = &me.user;
    let overview = security::overview(&state.accounts, user, state.now()).await?;
    let sessions: Vec<SessionView> = overview
        .sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.sid == me.session.sid,
            created: utc(s.created_at),
            ip: s.ip,
            user_agent: s.user_agent.unwrap_or_else(|| "Unknown browser".into()),
            sid: s.sid,
        })
        .collect();
    let consents: Vec<ConsentView> = overview
        .consents
        .into_iter()
        .map(|c| ConsentView {
            client_id: c.client_id,
            client_name: c.client_name,
            scopes: c.scopes.join(" "),
        })
        .collect();
    let (jar, token) = csrf::token(state, jar);
    let mut profile = std::collections::BTreeMap::new();
    profile.insert("name", user.name.clone().unwrap_or_default());
    profile.insert("given_name", user.given_name.clone().unwrap_or_default());
    profile.insert("family_name", user.family_name.clone().unwrap_or_default());
    profile.insert("picture", user.picture.clone().unwrap_or_default());
    profile.insert("locale", user.locale.clone().unwrap_or_default());
    let mut ctx = Context::new();
    ctx.insert("title", "Your account");
    ctx.insert("csrf", &token);
    ctx.insert("email", &user.email);
    ctx.insert("email_verified", &user.email_verified);
    ctx.insert("phone", &user.phone_number);
    ctx.insert("phone_verified", &user.phone_number_verified);
    ctx.insert("profile", &profile);
    ctx.insert("sessions", &sessions);
    ctx.insert("consents", &consents);
    ctx.insert(
        "mfa",
        &crate::accounts::mfa::factors(&state.accounts, user).await?,
    );
    ctx.insert("notice", &notice);
    ctx.insert("errors", &field_view(SECTIONS, errors));
    ctx.insert(
        "grace_days",
        &(state.provider.settings.accounts.deletion_grace_period / 86_400),
    );
    Ok((jar, state.templates.page(status, "account.html", &ctx)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    me: SignedIn,
    jar: CookieJar,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let errors = FieldErrors::default();
    render(
        &state,
        jar,
        StatusCode::OK,
        &me,
        notice_for(&q.done),
        &errors,
    )
    .await
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("/account?done={what}")).into_response()
}

/// The CSRF check every POST starts with.
pub(super) fn check_csrf(state: &AppState, jar: &CookieJar, token: &str) -> Result<(), PageError> {
    if csrf::verify(state, jar, token) {
        Ok(())
    } else {
        Err(PageError::form_expired())
    }
}

/// An account flow's result: refused input shows the page again with the section's message.
async fn or_section<T>(
    state: &AppState,
    jar: &CookieJar,
    me: &SignedIn,
    result: AccountResult<T>,
) -> Result<T, PageError> {
    match result {
        Ok(v) => Ok(v),
        Err(AccountError::Invalid(errors)) => {
            let page = render(
                state,
                jar.clone(),
                StatusCode::BAD_REQUEST,
                me,
                None,
                &errors,
            );
            Err(PageError::Rendered(Box::new(page.await.into_response())))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    picture: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    csrf: String,
}

pub async fn profile(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<ProfileForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let input = ProfileInput {
        name: form.name,
        given_name: form.given_name,
        family_name: form.family_name,
        picture: form.picture,
        locale: form.locale,
    };
    let result =
        profile::update_profile(&state.accounts, &caller, &me.user, &input, state.now()).await;
    or_section(&state, &jar, &me, result).await?;
    Ok(done("profile"))
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn email(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<EmailForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let result = profile::request_email_change(
        &state.accounts,
        &caller,
        &me.user,
        &form.new_email,
        &form.password,
        state.now(),
    )
    .await;
    or_section(&state, &jar, &me, result).await?;
    Ok(done("email"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf: String,
}

/// Every session ended with the change (this one too); this browser gets a fresh one.
pub async fn password(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let now = state.now();
    let result = security::change_password(
        &state.accounts,
        &caller,
        &me.user,
        &form.current_password,
        &form.password,
        &form.password_confirm,
        now,
    )
    .await;
    let auth = or_section(&state, &jar, &me, result).await?;
    let started = sessions::start(&state.accounts, None, &auth, &caller, now).await?;
    let jar = jar.add(session_cookie(&state, started.secret));
    Ok((jar, done("password")).into_response())
}

#[derive(Deserialize)]
pub struct SessionForm {
    #[serde(default)]
    sid: String,
    #[serde(default)]
    csrf: String,
}

pub async fn end_session(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<SessionForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    security::end_session(&state.accounts, &caller, &me.user, &form.sid, state.now()).await?;
    Ok(done("session"))
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    csrf: String,
}

pub async fn revoke_consent(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    security::revoke_consent(&state.accounts, &caller, &me.user, &form.client_id).await?;
    Ok(done("consent"))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn delete(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<DeleteForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let result = security::delete(
        &state.accounts,
        &caller,
        &me.user,
        &form.password,
        state.now(),
    )
    .await;
    or_section(&state, &jar, &me, result).await?;
    let jar = jar.remove(Cookie::build(state.cookies.session).path("/"));
    let page = state.templates.notice_page(
        StatusCode::OK,
        "Account deleted",
        "Your account was deleted and you were signed out everywhere.",
        None,
    );
    Ok((jar, page).into_response())
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    csrf: String,
}

/// POST /account/phone: set the number (unverified) and text it a 6-digit code.
pub async fn phone(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<PhoneForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let result =
        profile::set_phone(&state.accounts, &caller, &me.user, &form.phone, state.now()).await;
    Ok(match or_section(&state, &jar, &me, result).await? {
        PhoneOutcome::CodeSent => done("phone"),
        PhoneOutcome::AlreadyVerified => done("phone_verified"),
    })
}

#[derive(Deserialize)]
pub struct PhoneCodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// POST /account/phone/verify: the SMS code confirms the number.
pub async fn verify_phone(
    State(state): State<AppState>,
    me: SignedIn,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<PhoneCodeForm>,
) -> PageResult {
    check_csrf(&state, &jar, &form.csrf)?;
    let result =
        profile::verify_phone(&state.accounts, &caller, &me.user, &form.code, state.now()).await;
    Ok(if or_section(&state, &jar, &me, result).await? {
        done("phone_verified")
    } else {
        done("")
    })
}
