//! `/account`: what a signed-in person manages themselves. Profile; e-mail change (the new
//! address is confirmed by a link before it takes effect, and the old one gets a notice);
//! password change (current password required, every other session ends); sessions with
//! sign-out per session; the applications they consented to, with revoke; and deletion
//! (password required; immediate disable, sessions ended, data purged after the grace period).

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tera::Context;

use super::accounts::{self, LinkForm};
use super::login::origin;
use crate::audit::{self, Event, Origin, action};
use crate::domain::{Email, Password, Phone, User};
use crate::email::Message;
use crate::state::AppState;
use crate::store::{
    CodeCheck, CodePurpose, NewAccountCode, NewMail, ProfileUpdate, Session, StoreError,
};
use crate::web::limits::Bucket;
use crate::web::{csrf, session};

const MAX_FIELD_CHARS: usize = 200;
const WRONG_PASSWORD: &str = "The current password is incorrect.";

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: String,
}

/// Errors shown in each section.
#[derive(Default, Serialize)]
struct SectionErrors {
    profile: Option<String>,
    email: Option<String>,
    password: Option<String>,
    phone: Option<String>,
    delete: Option<String>,
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

/// The signed-in session and user, or a redirect to the login page.
async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<(Session, User), Response> {
    match session::current(state, jar, crate::now()).await {
        Ok(Some(x)) => Ok(x),
        Ok(None) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(accounts::store_failed(state, &e, "session lookup failed")),
    }
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

fn utc(ts: i64) -> String {
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
    sess: &Session,
    user: &User,
    notice: Option<&str>,
    errors: &SectionErrors,
) -> Response {
    let store = &state.provider.store;
    let now = crate::now();
    let sessions = match store.list_sessions(&user.id, now).await {
        Ok(s) => s,
        Err(e) => return accounts::store_failed(state, &e, "session list failed"),
    };
    let consents = match store.list_consents(&user.id).await {
        Ok(c) => c,
        Err(e) => return accounts::store_failed(state, &e, "consent list failed"),
    };
    let sessions: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.sid == sess.sid,
            created: utc(s.created_at),
            ip: s.ip,
            user_agent: s.user_agent.unwrap_or_else(|| "Unknown browser".into()),
            sid: s.sid,
        })
        .collect();
    let consents: Vec<ConsentView> = consents
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
    ctx.insert("notice", &notice);
    ctx.insert("errors", errors);
    ctx.insert(
        "grace_days",
        &(state.provider.settings.accounts.deletion_grace_period / 86_400),
    );
    (jar, state.templates.page(status, "account.html", &ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<ShowQuery>,
) -> Response {
    let (sess, user) = match signed_in(&state, &jar).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let errors = SectionErrors::default();
    render(
        &state,
        jar,
        StatusCode::OK,
        &sess,
        &user,
        notice_for(&q.done),
        &errors,
    )
    .await
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("/account?done={what}")).into_response()
}

/// The common start of every POST: signed in, and a valid CSRF token.
async fn guard(
    state: &AppState,
    jar: &CookieJar,
    csrf_token: &str,
) -> Result<(Session, User), Response> {
    let (sess, user) = signed_in(state, jar).await?;
    if !csrf::verify(state, jar, csrf_token) {
        return Err(state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Go back, reload the page and try again.",
        ));
    }
    Ok((sess, user))
}

/// Check the current password (rate limited like a login).
async fn check_password(
    state: &AppState,
    peer: SocketAddr,
    origin: &Origin,
    user: &User,
    password: &str,
) -> Result<bool, Response> {
    accounts::check_limits(state, Bucket::Login, peer, origin, Some(&user.email)).await?;
    if password.len() > Password::MAX_BYTES {
        return Ok(false);
    }
    state
        .provider
        .hasher
        .verify(password, user.password_hash.as_deref())
        .await
        .map_err(|e| accounts::store_failed(state, &e, "password verification failed"))
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

fn optional(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn parse_profile(form: &ProfileForm) -> Result<ProfileUpdate, String> {
    for (label, v) in [
        ("Name", &form.name),
        ("Given name", &form.given_name),
        ("Family name", &form.family_name),
    ] {
        if v.trim().chars().count() > MAX_FIELD_CHARS {
            return Err(format!(
                "{label}: use at most {MAX_FIELD_CHARS} characters."
            ));
        }
    }
    let picture = optional(&form.picture);
    if let Some(p) = &picture {
        let ok = url::Url::parse(p)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && p.len() <= 2000);
        if !ok {
            return Err("Picture URL: use an https:// address of an image.".into());
        }
    }
    let locale = optional(&form.locale);
    if let Some(l) = &locale
        && !accounts::is_language_tag(l)
    {
        return Err("Language: use a tag such as en, th or ko-KR.".into());
    }
    Ok(ProfileUpdate {
        name: optional(&form.name),
        given_name: optional(&form.given_name),
        family_name: optional(&form.family_name),
        picture,
        locale,
    })
}

pub async fn profile(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ProfileForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let update = match parse_profile(&form) {
        Ok(u) => u,
        Err(msg) => {
            let errors = SectionErrors {
                profile: Some(msg),
                ..SectionErrors::default()
            };
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
    };
    let store = &state.provider.store;
    if let Err(e) = store.update_profile(&user.id, &update, crate::now()).await {
        return accounts::store_failed(&state, &e, "profile update failed");
    }
    audit::record(
        store.as_ref(),
        Event::new(action::PROFILE_UPDATE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin(peer, &headers)),
    )
    .await;
    done("profile")
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<EmailForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = crate::now();
    let from = origin(peer, &headers);
    let error = |msg: String| SectionErrors {
        email: Some(msg),
        ..SectionErrors::default()
    };
    let new_email = match Email::parse(&form.new_email) {
        Ok(e) => e,
        Err(e) => {
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &error(e.0),
            )
            .await;
        }
    };
    match check_password(&state, peer, &from, &user, &form.password).await {
        Ok(true) => {}
        Ok(false) => {
            let errors = error(WRONG_PASSWORD.into());
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
        Err(resp) => return resp,
    }
    if new_email.as_str() == user.email {
        let errors = error("That is already your address.".into());
        return render(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &sess,
            &user,
            None,
            &errors,
        )
        .await;
    }
    // Whether the new address is taken is not revealed here: the link simply fails later.
    let ttl = state.provider.settings.accounts.verification_link_ttl;
    let (token, code) =
        NewAccountCode::link(CodePurpose::EmailChange, new_email.as_str(), now + ttl);
    let mail = match state.mailer.render_in(
        new_email.as_str(),
        &Message::EmailChange {
            name: user.name.clone(),
            link: accounts::link(&state, "/account/email/confirm", &token),
            link_hours: ttl / 3600,
        },
        user.locale.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => return accounts::store_failed(&state, &e, "cannot render mail"),
    };
    let store = &state.provider.store;
    if let Err(e) = store.issue_codes(&user.id, &[code], &[mail], now).await {
        return accounts::store_failed(&state, &e, "cannot store e-mail change");
    }
    state.mailer.wake();
    audit::record(
        store.as_ref(),
        Event::new(action::EMAIL_CHANGE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from)
            .detail("step", "requested"),
    )
    .await;
    done("email")
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

/// GET /account/email/confirm?token=…: a button that posts the token.
pub async fn show_email_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LinkQuery>,
) -> Response {
    let (jar, token) = csrf::token(&state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Confirm your new e-mail address");
    ctx.insert("csrf", &token);
    ctx.insert("token", &q.token);
    ctx.insert("action", "/account/email/confirm");
    (
        jar,
        state
            .templates
            .page(StatusCode::OK, "verify_link.html", &ctx),
    )
        .into_response()
}

fn bad_email_link(state: &AppState) -> Response {
    accounts::notice_page(
        state,
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "This link is wrong, expired or already used, or the address is no longer available. Start the change again from your account page.",
        Some(("/account", "Your account")),
    )
}

pub async fn confirm_email(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LinkForm>,
) -> Response {
    let now = crate::now();
    let from = origin(peer, &headers);
    let link = match accounts::take_posted_link(
        &state,
        &jar,
        peer,
        &from,
        &form,
        CodePurpose::EmailChange,
        bad_email_link,
        now,
    )
    .await
    {
        Ok(Some(l)) => l,
        Ok(None) => return bad_email_link(&state),
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    let user = match store.find_user(&link.user_id).await {
        Ok(Some(u)) if u.is_active() => u,
        Ok(_) => return bad_email_link(&state),
        Err(e) => return accounts::store_failed(&state, &e, "user lookup failed"),
    };
    // The old address is told, in the same transaction as the change.
    let notice = match state.mailer.render_in(
        &user.email,
        &Message::EmailChanged {
            name: user.name.clone(),
            new_email: link.target.clone(),
        },
        user.locale.as_deref(),
    ) {
        Ok(m) => m,
        Err(e) => return accounts::store_failed(&state, &e, "cannot render mail"),
    };
    match store
        .change_email(&user.id, &link.target, &[notice], now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            audit::record(
                store.as_ref(),
                Event::new(action::EMAIL_CHANGE)
                    .target(&user.id)
                    .origin(&from)
                    .failure("email_taken"),
            )
            .await;
            return bad_email_link(&state);
        }
        Err(e) => return accounts::store_failed(&state, &e, "e-mail change failed"),
    }
    state.mailer.wake();
    audit::record(
        store.as_ref(),
        Event::new(action::EMAIL_CHANGE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from)
            .detail("step", "confirmed"),
    )
    .await;
    accounts::notice_page(
        &state,
        StatusCode::OK,
        "E-mail address changed",
        "Your new e-mail address is confirmed and now used for your account.",
        Some(("/account", "Your account")),
    )
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

pub async fn password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = crate::now();
    let from = origin(peer, &headers);
    let fail = |msg: &str| SectionErrors {
        password: Some(msg.to_owned()),
        ..SectionErrors::default()
    };
    match check_password(&state, peer, &from, &user, &form.current_password).await {
        Ok(true) => {}
        Ok(false) => {
            audit::record(
                state.provider.store.as_ref(),
                Event::new(action::PASSWORD_CHANGE)
                    .actor(&user.id)
                    .target(&user.id)
                    .origin(&from)
                    .failure("bad_password"),
            )
            .await;
            let errors = fail(WRONG_PASSWORD);
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
        Err(resp) => return resp,
    }
    let Ok(email) = Email::parse(&user.email) else {
        return super::internal_error(&state);
    };
    let new = match Password::parse_new(&form.password, &email) {
        Ok(p) => p,
        Err(e) => {
            let errors = fail(&e.0);
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
    };
    if form.password != form.password_confirm {
        let errors = fail("The two passwords are not the same.");
        return render(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &sess,
            &user,
            None,
            &errors,
        )
        .await;
    }
    let hash = match state.provider.hasher.hash(&new).await {
        Ok(h) => h,
        Err(e) => return accounts::store_failed(&state, &e, "password hashing failed"),
    };
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
    let store = &state.provider.store;
    if let Err(e) = store.reset_password(&user.id, &hash, &[notice], now).await {
        return accounts::store_failed(&state, &e, "password change failed");
    }
    state.mailer.wake();
    // End every session and grant of the user, then give this browser a fresh session.
    if let Err(e) = crate::oidc::logout::end_user_sessions(&state.provider, &user.id, now).await {
        return accounts::store_failed(&state, &e, "cannot end sessions");
    }
    let jar = match session::start(
        &state,
        jar,
        &user,
        from.ip.clone(),
        from.user_agent.clone(),
        now,
    )
    .await
    {
        Ok((jar, _)) => jar,
        Err(e) => return accounts::store_failed(&state, &e, "cannot create session"),
    };
    audit::record(
        store.as_ref(),
        Event::new(action::PASSWORD_CHANGE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from),
    )
    .await;
    (jar, done("password")).into_response()
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SessionForm>,
) -> Response {
    let (_, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    // Only this user's sessions match; another user's sid changes nothing.
    match crate::oidc::logout::end_session_by_sid(
        &state.provider,
        &user.id,
        &form.sid,
        crate::now(),
    )
    .await
    {
        Ok(true) => {
            audit::record(
                store.as_ref(),
                Event::new(action::SESSION_END)
                    .actor(&user.id)
                    .target(&user.id)
                    .origin(&origin(peer, &headers)),
            )
            .await;
        }
        Ok(false) => {}
        Err(e) => return accounts::store_failed(&state, &e, "cannot end session"),
    }
    done("session")
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ConsentForm>,
) -> Response {
    let (_, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    match store.revoke_consent(&user.id, &form.client_id).await {
        Ok(true) => {
            audit::record(
                store.as_ref(),
                Event::new(action::CONSENT_REVOKE)
                    .actor(&user.id)
                    .target(&user.id)
                    .client(&form.client_id)
                    .origin(&origin(peer, &headers)),
            )
            .await;
        }
        Ok(false) => {}
        Err(e) => return accounts::store_failed(&state, &e, "cannot revoke consent"),
    }
    done("consent")
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<DeleteForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = crate::now();
    let from = origin(peer, &headers);
    match check_password(&state, peer, &from, &user, &form.password).await {
        Ok(true) => {}
        Ok(false) => {
            let errors = SectionErrors {
                delete: Some(WRONG_PASSWORD.into()),
                ..SectionErrors::default()
            };
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
        Err(resp) => return resp,
    }
    let store = &state.provider.store;
    if let Err(e) = store.soft_delete_user(&user.id, now).await {
        return accounts::store_failed(&state, &e, "account deletion failed");
    }
    if let Err(e) = crate::oidc::logout::end_user_sessions(&state.provider, &user.id, now).await {
        return accounts::store_failed(&state, &e, "cannot end sessions");
    }
    tracing::info!(user.id = %user.id, "account deleted by its owner");
    audit::record(
        store.as_ref(),
        Event::new(action::ACCOUNT_DELETE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from),
    )
    .await;
    let jar =
        jar.remove(axum_extra::extract::cookie::Cookie::build(state.cookies.session).path("/"));
    (
        jar,
        accounts::notice_page(
            &state,
            StatusCode::OK,
            "Account deleted",
            "Your account was deleted and you were signed out everywhere.",
            None,
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    csrf: String,
}

/// POST /account/phone: set the number (unverified) and text it a 6-digit code. Asking again
/// for the same number re-sends, subject to the cool-down.
pub async fn phone(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<PhoneForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = crate::now();
    let from = origin(peer, &headers);
    let phone = match Phone::parse(&form.phone) {
        Ok(p) => p,
        Err(e) => {
            let errors = SectionErrors {
                phone: Some(e.0),
                ..SectionErrors::default()
            };
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
    };
    if let Err(resp) = accounts::check_limits(
        &state,
        Bucket::CodeRequest,
        peer,
        &from,
        Some(phone.as_str()),
    )
    .await
    {
        return resp;
    }
    let store = &state.provider.store;
    let a = &state.provider.settings.accounts;
    let same = user.phone_number.as_deref() == Some(phone.as_str());
    if same && user.phone_number_verified {
        return done("phone_verified");
    }
    if !same {
        if let Err(e) = store.set_phone(&user.id, Some(phone.as_str()), now).await {
            return accounts::store_failed(&state, &e, "cannot set phone");
        }
    } else {
        let last = match store
            .last_code_issued_at(&user.id, CodePurpose::PhoneVerify)
            .await
        {
            Ok(t) => t,
            Err(e) => return accounts::store_failed(&state, &e, "code lookup failed"),
        };
        if last.is_some_and(|t| now - t < a.resend_cooldown) {
            return done("phone");
        }
    }
    let code = accounts::six_digit_code();
    let expires_at = now + a.phone_code_ttl;
    let text = format!(
        "Your confirmation code is {code}. It expires in {} minutes.",
        a.phone_code_ttl / 60
    );
    let row = NewAccountCode {
        purpose: CodePurpose::PhoneVerify,
        target: phone.as_str().to_owned(),
        secret_hash: accounts::code_hash(&user.id, &code),
        expires_at,
    };
    // The SMS is queued with the code (one transaction) and sent by the outbox worker: a down
    // gateway delays it, never loses it.
    let sms = NewMail::sms(phone.as_str(), text, expires_at);
    if let Err(e) = store.issue_codes(&user.id, &[row], &[sms], now).await {
        return accounts::store_failed(&state, &e, "cannot store phone code");
    }
    state.mailer.wake();
    audit::record(
        store.as_ref(),
        Event::new(action::CODE_REQUEST)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from)
            .detail("purpose", "phone_verify"),
    )
    .await;
    done("phone")
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<PhoneCodeForm>,
) -> Response {
    let (sess, user) = match guard(&state, &jar, &form.csrf).await {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let now = crate::now();
    let from = origin(peer, &headers);
    let store = &state.provider.store;
    let Some(phone) = user.phone_number.clone() else {
        return done("");
    };
    if let Err(resp) =
        accounts::check_limits(&state, Bucket::Verify, peer, &from, Some(&phone)).await
    {
        return resp;
    }
    let fail = |msg: &str| SectionErrors {
        phone: Some(msg.to_owned()),
        ..SectionErrors::default()
    };
    let code = form.code.trim();
    let check = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        store
            .check_code(
                &user.id,
                CodePurpose::PhoneVerify,
                &accounts::code_hash(&user.id, code),
                state.provider.settings.accounts.code_max_attempts,
                now,
            )
            .await
    } else {
        Ok(CodeCheck::Wrong)
    };
    let accepted = match check {
        Ok(CodeCheck::Accepted(c)) if c.target == phone => c,
        Ok(_) => {
            audit::record(
                store.as_ref(),
                Event::new(action::PHONE_VERIFY)
                    .actor(&user.id)
                    .target(&user.id)
                    .origin(&from)
                    .failure("wrong_code"),
            )
            .await;
            let errors = fail("That code is wrong or has expired. Ask for a new one.");
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
        Err(e) => return accounts::store_failed(&state, &e, "code check failed"),
    };
    match store
        .mark_phone_verified(&user.id, &accepted.target, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => return done(""),
        Err(StoreError::Conflict) => {
            let errors = fail("This number cannot be confirmed for your account.");
            return render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &sess,
                &user,
                None,
                &errors,
            )
            .await;
        }
        Err(e) => return accounts::store_failed(&state, &e, "cannot mark phone verified"),
    }
    audit::record(
        store.as_ref(),
        Event::new(action::PHONE_VERIFY)
            .actor(&user.id)
            .target(&user.id)
            .origin(&from),
    )
    .await;
    done("phone_verified")
}
