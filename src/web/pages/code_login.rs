//! Sign-in by one-time code: instead of a password, a person asks for a 6-digit code sent to
//! their e-mail address or to their verified phone number, and types it. The code is single
//! use, valid `accounts.login_code_ttl` seconds, dies after `accounts.code_max_attempts` wrong
//! guesses, and is bound to the address or number it went to. A correct code ends in
//! `login::finish_login` like a password. The answers are the same for unknown identifiers.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::accounts;
use super::login::{finish_login, origin};
use crate::audit::{self, Event, action};
use crate::domain::{Email, Phone, User};
use crate::email::Message;
use crate::state::AppState;
use crate::store::{CodeCheck, CodePurpose, NewAccountCode, NewMail};
use crate::web::csrf;
use crate::web::limits::Bucket;

const CODE_SENT: &str =
    "If this is the address or confirmed number of an account, we have sent it a sign-in code.";
const BAD_CODE: &str = "That code is wrong or has expired. Go back to ask for a new one.";

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

/// Where a code goes: an e-mail address or a phone number, normalised.
enum Identifier {
    Email(Email),
    Phone(Phone),
}

impl Identifier {
    fn parse(input: &str) -> Option<Self> {
        if input.contains('@') {
            Email::parse(input).ok().map(Self::Email)
        } else {
            Phone::parse(input).ok().map(Self::Phone)
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }

    /// The active account it names (phones: only verified ones).
    async fn user(&self, state: &AppState) -> Result<Option<User>, Response> {
        let store = &state.provider.store;
        let found = match self {
            Self::Email(e) => store.find_user_by_email(e.as_str()).await,
            Self::Phone(p) => store.find_user_by_phone(p.as_str()).await,
        };
        found
            .map(|u| u.filter(User::is_active))
            .map_err(|e| accounts::store_failed(state, &e, "user lookup failed"))
    }
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<RequestForm>,
) -> Response {
    let started = tokio::time::Instant::now();
    let now = crate::now();
    let from = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Go back, reload the page and try again.",
        );
    }
    let id = Identifier::parse(&form.identifier);
    let key = id.as_ref().map(Identifier::as_str);
    if let Err(resp) = accounts::check_limits(&state, Bucket::CodeRequest, peer, &from, key).await {
        return resp;
    }
    let Some(id) = id else {
        return code_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.identifier,
            &form.rid,
            None,
            Some(
                "Enter your e-mail address, or your phone number starting with + and the country code.",
            ),
        );
    };
    let user = match id.user(&state).await {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    match user {
        Some(user) => {
            if let Err(resp) = send_code(&state, &user, &id, now).await {
                return resp;
            }
            audit::record(
                store.as_ref(),
                Event::new(action::CODE_REQUEST)
                    .target(&user.id)
                    .origin(&from)
                    .detail("purpose", "login")
                    .detail(
                        "channel",
                        if matches!(id, Identifier::Phone(_)) {
                            "sms"
                        } else {
                            "email"
                        },
                    ),
            )
            .await;
        }
        None => {
            audit::record(
                store.as_ref(),
                Event::new(action::CODE_REQUEST)
                    .origin(&from)
                    .failure("unknown_account")
                    .detail("purpose", "login"),
            )
            .await;
        }
    }
    accounts::equalise(started).await;
    code_page(
        &state,
        jar,
        StatusCode::OK,
        id.as_str(),
        &form.rid,
        Some(CODE_SENT),
        None,
    )
}

/// Issue a login code for `user` to `id`, unless one went out within the cool-down.
async fn send_code(
    state: &AppState,
    user: &User,
    id: &Identifier,
    now: i64,
) -> Result<(), Response> {
    let a = &state.provider.settings.accounts;
    let store = &state.provider.store;
    let last = store
        .last_code_issued_at(&user.id, CodePurpose::LoginCode)
        .await
        .map_err(|e| accounts::store_failed(state, &e, "code lookup failed"))?;
    if last.is_some_and(|t| now - t < a.resend_cooldown) {
        return Ok(());
    }
    let code = accounts::six_digit_code();
    let row = NewAccountCode {
        purpose: CodePurpose::LoginCode,
        target: id.as_str().to_owned(),
        secret_hash: accounts::code_hash(&user.id, &code),
        expires_at: now + a.login_code_ttl,
    };
    let minutes = a.login_code_ttl / 60;
    match id {
        Identifier::Email(email) => {
            let mail = state
                .mailer
                .render_in(
                    email.as_str(),
                    &Message::LoginCode {
                        name: user.name.clone(),
                        code,
                        minutes,
                    },
                    user.locale.as_deref(),
                )
                .map_err(|e| accounts::store_failed(state, &e, "cannot render mail"))?;
            store
                .issue_codes(&user.id, &[row], &[mail], now)
                .await
                .map_err(|e| accounts::store_failed(state, &e, "cannot store login code"))?;
            state.mailer.wake();
        }
        Identifier::Phone(phone) => {
            // Queued with the code and sent by the outbox worker (retried while the gateway is
            // down, never after the code expired).
            let text = format!("Your sign-in code is {code}. It expires in {minutes} minutes.");
            let sms = NewMail::sms(phone.as_str(), text, row.expires_at);
            store
                .issue_codes(&user.id, &[row], &[sms], now)
                .await
                .map_err(|e| accounts::store_failed(state, &e, "cannot store login code"))?;
            state.mailer.wake();
        }
    }
    Ok(())
}

/// POST /login/code/verify: a correct code signs in.
pub async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<VerifyForm>,
) -> Response {
    let now = crate::now();
    let from = origin(peer, &headers);
    if !csrf::verify(&state, &jar, &form.csrf) {
        return state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Go back, reload the page and try again.",
        );
    }
    let id = Identifier::parse(&form.identifier);
    let key = id.as_ref().map(Identifier::as_str);
    if let Err(resp) = accounts::check_limits(&state, Bucket::Verify, peer, &from, key).await {
        return resp;
    }
    let wrong = |jar| {
        code_page(
            &state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.identifier,
            &form.rid,
            None,
            Some(BAD_CODE),
        )
    };
    let code = form.code.trim();
    let Some(id) = id.filter(|_| code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()))
    else {
        return wrong(jar);
    };
    let user = match id.user(&state).await {
        Ok(Some(u)) => u,
        Ok(None) => return wrong(jar),
        Err(resp) => return resp,
    };
    let store = &state.provider.store;
    let max = state.provider.settings.accounts.code_max_attempts;
    let accepted = match store
        .check_code(
            &user.id,
            CodePurpose::LoginCode,
            &accounts::code_hash(&user.id, code),
            max,
            now,
        )
        .await
    {
        Ok(CodeCheck::Accepted(c)) => c,
        Ok(other) => {
            let reason = if other == CodeCheck::Wrong {
                "wrong_code"
            } else {
                "no_live_code"
            };
            audit::record(
                store.as_ref(),
                Event::new(action::LOGIN)
                    .target(&user.id)
                    .origin(&from)
                    .failure(reason)
                    .detail("method", "code"),
            )
            .await;
            return wrong(jar);
        }
        Err(e) => return accounts::store_failed(&state, &e, "code check failed"),
    };
    // Bound to where it was sent: it must still be this account's address or verified number.
    let still_bound = match &id {
        Identifier::Email(e) => accepted.target == e.as_str() && user.email == accepted.target,
        Identifier::Phone(p) => {
            accepted.target == p.as_str()
                && user.phone_number.as_deref() == Some(accepted.target.as_str())
                && user.phone_number_verified
        }
    };
    if !still_bound {
        return wrong(jar);
    }
    let mut user = user;
    if let Identifier::Email(e) = &id
        && !user.email_verified
    {
        // The code proves the person reads this mailbox.
        match store.mark_email_verified(&user.id, e.as_str(), now).await {
            Ok(true) => user.email_verified = true,
            Ok(false) => return wrong(jar),
            Err(e) => return accounts::store_failed(&state, &e, "cannot mark verified"),
        }
    }
    if !user.email_verified && state.provider.settings.accounts.require_verified_email {
        if let Err(resp) = accounts::resend_verification(&state, &user, &from, now).await {
            return resp;
        }
        return accounts::verify_page(
            &state,
            jar,
            StatusCode::OK,
            &user.email,
            &form.rid,
            Some("Confirm your e-mail address to sign in. We have sent you a link and a code."),
            None,
        );
    }
    finish_login(&state, jar, &user, from, &form.rid, now).await
}
