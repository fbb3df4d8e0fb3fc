//! What the self-service account pages share: abuse limits, single-use links and codes, and the
//! verification mail. The pages themselves are `signup`, `verify` and `reset`.

use std::net::SocketAddr;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;

use crate::audit::{self, Event, Origin, action};
use crate::crypto::hash_secret;
use crate::domain::User;
use crate::email::Message;
use crate::state::AppState;
use crate::store::{AccountCode, CodePurpose, NewAccountCode, NewMail};
use crate::web::limits::{Bucket, Limited, Scope};

/// The form behind every e-mailed link: the page at the link posts its token back, so that
/// mail scanners following the GET do not use the link up.
#[derive(serde::Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub csrf: String,
}

/// The steps every e-mailed link's POST starts with: the CSRF token, the verification rate
/// limits, the token's shape (a malformed one is answered with `bad`), then using the link up.
/// `Ok(None)`: no live link with this token for `purpose`; the caller answers (and audits) that.
#[expect(
    clippy::too_many_arguments,
    reason = "the request's parts, each needed once"
)]
pub async fn take_posted_link(
    state: &AppState,
    jar: &axum_extra::extract::cookie::CookieJar,
    peer: SocketAddr,
    from: &Origin,
    form: &LinkForm,
    purpose: CodePurpose,
    bad: fn(&AppState) -> Response,
    now: i64,
) -> Result<Option<AccountCode>, Response> {
    if !crate::web::csrf::verify(state, jar, &form.csrf) {
        return Err(state.templates.error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Open the link from the e-mail again.",
        ));
    }
    check_limits(state, Bucket::Verify, peer, from, None).await?;
    let token = form.token.trim();
    if token.is_empty() || token.len() > 128 {
        return Err(bad(state));
    }
    state
        .provider
        .store
        .take_link(purpose, &hash_secret(token), now)
        .await
        .map_err(|e| store_failed(state, &e, "link lookup failed"))
}

/// The same words whatever happened, so the page never says whether an account exists.
pub const CODE_SENT: &str =
    "If this address needs confirming, we have sent it an e-mail with a link and a code.";

/// Count this request against the per-IP limit and, when `account` is given, the per-account
/// limit of `bucket`. A refusal is audited and answered with 429 and `Retry-After`.
pub async fn check_limits(
    state: &AppState,
    bucket: Bucket,
    peer: SocketAddr,
    origin: &Origin,
    account: Option<&str>,
) -> Result<(), Response> {
    let limits = &state.limits;
    let result = limits
        .check_ip(bucket, peer.ip())
        .and_then(|()| account.map_or(Ok(()), |a| limits.check_account(bucket, a)));
    match result {
        Ok(()) => Ok(()),
        Err(limited) => Err(too_many(state, bucket, limited, origin).await),
    }
}

/// Count this request against the per-account limit only (after `check_limits` counted the IP
/// before the account was known).
pub async fn check_account_limit(
    state: &AppState,
    bucket: Bucket,
    origin: &Origin,
    account: &str,
) -> Result<(), Response> {
    match state.limits.check_account(bucket, account) {
        Ok(()) => Ok(()),
        Err(limited) => Err(too_many(state, bucket, limited, origin).await),
    }
}

async fn too_many(state: &AppState, bucket: Bucket, limited: Limited, origin: &Origin) -> Response {
    let scope = match limited.scope {
        Scope::Ip => "ip",
        Scope::Account => "account",
    };
    tracing::warn!(bucket = bucket.as_str(), scope, "rate limited");
    audit::record(
        state.provider.store.as_ref(),
        Event::new(action::RATE_LIMITED)
            .origin(origin)
            .failure("rate_limited")
            .detail("endpoint", bucket.as_str())
            .detail("scope", scope),
    )
    .await;
    let mut resp = state.templates.error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many attempts. Please wait a little and try again.",
    );
    if let Ok(v) = HeaderValue::from_str(&limited.retry_after_secs().to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The least time the "we sent it if the account exists" answers take, whichever path ran, so
/// that response times do not tell known accounts (which cost a database write and a render)
/// from unknown ones. Above the usual cost of the known path.
const ANSWER_FLOOR: std::time::Duration = std::time::Duration::from_millis(150);

/// Wait until `ANSWER_FLOOR` has passed since `started`.
pub async fn equalise(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + ANSWER_FLOOR).await;
}

/// A uniformly random 6-digit code.
pub fn six_digit_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000u32))
}

/// How a typed code is stored: bound to its user, so equal codes of two users differ.
pub fn code_hash(user_id: &str, code: &str) -> String {
    hash_secret(&format!("{user_id}:{}", code.trim()))
}

/// An absolute link on this provider, built from the configured issuer only.
pub fn link(state: &AppState, path: &str, token: &str) -> String {
    let mut url = format!("{}{path}", state.provider.settings.issuer());
    if !token.is_empty() {
        url.push_str("?token=");
        url.push_str(token);
    }
    url
}

/// A fresh verification link and code for `user`'s current address: the rows to store and the
/// mail that carries them.
#[expect(
    clippy::result_large_err,
    reason = "the error is the finished page, as in every handler helper"
)]
pub fn verification(
    state: &AppState,
    user_id: &str,
    email: &str,
    name: Option<String>,
    locale: Option<&str>,
    now: i64,
) -> Result<(Vec<NewAccountCode>, NewMail), Response> {
    let a = &state.provider.settings.accounts;
    let (token, link_code) = NewAccountCode::link(
        CodePurpose::EmailVerifyLink,
        email,
        now + a.verification_link_ttl,
    );
    let code = six_digit_code();
    let codes = vec![
        link_code,
        NewAccountCode {
            purpose: CodePurpose::EmailVerifyCode,
            target: email.to_owned(),
            secret_hash: code_hash(user_id, &code),
            expires_at: now + a.verification_code_ttl,
        },
    ];
    let mail = state
        .mailer
        .render_in(
            email,
            &Message::VerifyEmail {
                name,
                link: link(state, "/verify-email/confirm", &token),
                code,
                link_hours: a.verification_link_ttl / 3600,
                code_minutes: a.verification_code_ttl / 60,
            },
            locale,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot render the verification mail");
            super::internal_error(state)
        })?;
    Ok((codes, mail))
}

/// Send `user` a new verification link and code unless one was sent within the cool-down.
/// Returns whether a mail was queued.
pub async fn resend_verification(
    state: &AppState,
    user: &User,
    origin: &Origin,
    now: i64,
) -> Result<bool, Response> {
    let store = &state.provider.store;
    let cooldown = state.provider.settings.accounts.resend_cooldown;
    let last = store
        .last_code_issued_at(&user.id, CodePurpose::EmailVerifyCode)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "code lookup failed");
            super::internal_error(state)
        })?;
    if last.is_some_and(|t| now - t < cooldown) {
        audit::record(
            store.as_ref(),
            Event::new(action::CODE_REQUEST)
                .target(&user.id)
                .origin(origin)
                .failure("cooldown")
                .detail("purpose", "email_verify"),
        )
        .await;
        return Ok(false);
    }
    let (codes, mail) = verification(
        state,
        &user.id,
        &user.email,
        user.name.clone(),
        user.locale.as_deref(),
        now,
    )?;
    store
        .issue_codes(&user.id, &codes, &[mail], now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store verification codes");
            super::internal_error(state)
        })?;
    state.mailer.wake();
    audit::record(
        store.as_ref(),
        Event::new(action::CODE_REQUEST)
            .target(&user.id)
            .origin(origin)
            .detail("purpose", "email_verify"),
    )
    .await;
    Ok(true)
}

/// Log a store failure once and answer with the generic error page.
pub fn store_failed(state: &AppState, e: &impl std::fmt::Display, what: &str) -> Response {
    tracing::error!(error = %e, "{what}");
    super::internal_error(state)
}

/// The verification page (code form), with an optional notice or error.
pub fn verify_page(
    state: &AppState,
    jar: axum_extra::extract::cookie::CookieJar,
    status: StatusCode,
    email: &str,
    rid: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (jar, token) = crate::web::csrf::token(state, jar);
    let jar = remember_rid(state, jar, rid);
    let mut ctx = tera::Context::new();
    ctx.insert("title", "Confirm your e-mail address");
    ctx.insert("csrf", &token);
    ctx.insert("rid", rid);
    ctx.insert("email", email);
    ctx.insert("notice", &notice);
    ctx.insert("error", &error);
    (jar, state.templates.page(status, "verify_email.html", &ctx)).into_response()
}

/// Path of the cookie that remembers the waiting authorization request: only the link
/// confirmation reads it.
const PENDING_RID_PATH: &str = "/verify-email";

/// Remember in this browser the authorization request `rid` that waits while the address is
/// confirmed, so the confirmation link, when opened in this same browser, can return to it
/// (`take_remembered_rid`). A link opened elsewhere finds no cookie and ends on the plain sign-in
/// page: nothing in the link itself selects a request.
fn remember_rid(
    state: &AppState,
    jar: axum_extra::extract::cookie::CookieJar,
    rid: &str,
) -> axum_extra::extract::cookie::CookieJar {
    use axum_extra::extract::cookie::{Cookie, SameSite};
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
pub async fn take_remembered_rid(
    state: &AppState,
    jar: axum_extra::extract::cookie::CookieJar,
    now: i64,
) -> (axum_extra::extract::cookie::CookieJar, Option<String>) {
    use axum_extra::extract::cookie::Cookie;
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

/// A page with a title, a message and an optional link onwards.
pub fn notice_page(
    state: &AppState,
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("title", title);
    ctx.insert("message", message);
    ctx.insert("link", &link.map(|l| l.0));
    ctx.insert("link_text", &link.map(|l| l.1));
    state.templates.page(status, "notice.html", &ctx)
}

/// The person's preferred language from `Accept-Language` (its first tag), for mails sent
/// before the account has a `locale`.
pub fn accept_language(headers: &axum::http::HeaderMap) -> Option<String> {
    let first = headers
        .get(header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?
        .split([',', ';'])
        .next()?
        .trim();
    (!first.is_empty() && first.len() <= 35).then(|| first.to_owned())
}

/// A plausible BCP 47 language tag (`en`, `ko-KR`, `zh-Hant-TW`).
pub fn is_language_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// `/login`, continuing the authorization request `rid` when there is one.
pub fn login_path(rid: &str) -> String {
    if rid.is_empty() {
        "/login".to_owned()
    } else {
        format!("/login?rid={}", url_escape(rid))
    }
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
