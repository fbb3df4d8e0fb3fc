//! The hosted login page: identifier (e-mail address or verified phone number) and password.
//! The checks are in `accounts::signin`; every sign-in method ends in [`finish_login`].

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use tera::Context;

use super::{FORM_EXPIRED, PageError, PageResult, Who};
use crate::accounts::signin::{self, Authenticated, SignIn};
use crate::accounts::{Caller, sessions, throttle};
use crate::oauth::authorize::{self, AuthorizationRequest};
use crate::store::Session;
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    rid: String,
}

/// Every field defaults to empty, so a tampered form gets a message, not a 422.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

/// The name of the application a waiting request `rid` comes from, if any.
pub async fn client_name(state: &AppState, rid: &str, now: i64) -> Option<String> {
    if rid.is_empty() {
        return None;
    }
    let req = authorize::peek_login_request(&state.provider, rid, now)
        .await
        .ok()
        .flatten()?;
    crate::oauth::lookup::client_name(&state.provider, &req).await
}

/// The login form; `client_name` names the application of the waiting request, if any.
fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    rid: &str,
    email: &str,
    error: Option<&str>,
    client_name: Option<String>,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Sign in");
    ctx.insert("csrf", &token);
    ctx.insert("rid", rid);
    ctx.insert("email", email);
    ctx.insert("error", &error);
    ctx.insert("client_name", &client_name);
    ctx.insert("signup_enabled", &state.provider.settings.signup.enabled);
    (jar, state.templates.page(status, "login.html", &ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> PageResult {
    let now = state.now();
    let req = if q.rid.is_empty() {
        None
    } else {
        authorize::peek_login_request(&state.provider, &q.rid, now)
            .await
            .map_err(|e| PageError::store(&e))?
    };
    if q.rid.is_empty()
        && let Ok(Some(_)) = super::super::session::current(&state, &jar, now).await
    {
        return Ok(Redirect::to("/").into_response());
    }
    let hint = req
        .as_ref()
        .and_then(|r| r.login_hint.clone())
        .unwrap_or_default();
    let error = (!q.rid.is_empty() && req.is_none()).then_some(
        "This sign-in request expired. You can still sign in here, then return to the application.",
    );
    let name = match &req {
        Some(req) => crate::oauth::lookup::client_name(&state.provider, req).await,
        None => None,
    };
    Ok(render(
        &state,
        jar,
        StatusCode::OK,
        &q.rid,
        &hint,
        error,
        name,
    ))
}

pub async fn submit(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let now = state.now();
    // The form again, with a message: for a stale form, or for wrong credentials.
    let again = |jar, status, error: &str| {
        let (state, rid, email, error) = (&state, &form.rid, &form.email, error.to_owned());
        async move {
            let name = client_name(state, rid, now).await;
            render(state, jar, status, rid, email, Some(&error), name)
        }
    };
    if !csrf::verify(&state, &jar, &form.csrf) {
        return Ok(again(jar, StatusCode::FORBIDDEN, FORM_EXPIRED).await);
    }
    let outcome =
        signin::password(&state.accounts, &caller, &form.email, &form.password, now).await;
    let outcome = match outcome {
        Err(crate::accounts::AccountError::Invalid(e)) => {
            let msg = e.first().unwrap_or(signin::BAD_CREDENTIALS);
            return Ok(again(jar, StatusCode::OK, msg).await);
        }
        other => other?,
    };
    signed_in(&state, jar, outcome, caller, &form.rid, now).await
}

/// Where a sign-in attempt goes next: a session and the waiting request, or the page that asks
/// to confirm the address first.
pub async fn signed_in(
    state: &AppState,
    jar: CookieJar,
    outcome: SignIn,
    caller: Caller,
    rid: &str,
    now: i64,
) -> PageResult {
    match outcome {
        SignIn::Done(auth) => finish_login(state, jar, &auth, &caller, rid, now).await,
        SignIn::VerifyEmailFirst { email } => Ok(super::verify::page(
            state,
            jar,
            StatusCode::OK,
            &email,
            rid,
            Some("Confirm your e-mail address to sign in. We have sent you a link and a code."),
            None,
        )),
    }
}

/// The session cookie for `secret` (`__Host-` prefixed and Secure on https).
pub fn session_cookie(state: &AppState, secret: String) -> Cookie<'static> {
    Cookie::build((state.cookies.session, secret))
        .path("/")
        .http_only(true)
        .secure(state.cookies.secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(state.provider.settings.session.ttl))
        .build()
}

/// Set (or renew) the known-device cookie after a sign-in (`accounts::throttle`). A failure to
/// record the device is logged and does not fail the sign-in: the browser stays unknown.
async fn remember_device(
    state: &AppState,
    jar: CookieJar,
    auth: &Authenticated,
    caller: &Caller,
    now: i64,
) -> CookieJar {
    match throttle::remember_device(&state.accounts, caller, &auth.user, now).await {
        Ok(device) => jar.add(
            Cookie::build((state.cookies.device, device.value().to_owned()))
                .path("/")
                .http_only(true)
                .secure(state.cookies.secure)
                .same_site(SameSite::Lax)
                .max_age(time::Duration::seconds(
                    state.provider.settings.rate_limit.known_device_ttl,
                ))
                .build(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not record the known device");
            jar
        }
    }
}

/// A person proved who they are (password, one-time code...): start a new session (recording
/// how), set its cookie, and continue the authorization request `rid` (or go home when there is
/// none). Every sign-in method ends here, so the session rules and the rest of the flow are the
/// same for all.
pub async fn finish_login(
    state: &AppState,
    jar: CookieJar,
    auth: &Authenticated,
    caller: &Caller,
    rid: &str,
    now: i64,
) -> PageResult {
    // An account with a second factor is asked for it before any session starts.
    if let Some(resp) = super::mfa_wait::require_second_factor(state, &jar, auth, rid, now).await? {
        return Ok(resp);
    }
    let replacing = jar.get(state.cookies.session).map(|c| c.value().to_owned());
    let started = sessions::start(&state.accounts, replacing.as_deref(), auth, caller, now).await?;
    let user = &auth.user;
    tracing::info!(user.id = %user.id, "signed in");
    state
        .audit(
            crate::audit::Event::new(crate::audit::action::LOGIN)
                .actor(&user.id)
                .target(&user.id)
                .origin(&caller.origin())
                .detail("amr", auth.amr().join(" ")),
        )
        .await;
    let jar = jar.add(session_cookie(state, started.secret));
    let jar = remember_device(state, jar, auth, caller, now).await;
    if rid.is_empty() {
        return Ok((jar, Redirect::to("/")).into_response());
    }
    let resp = resume_authorization(state, rid, &started.session, now).await;
    Ok((jar, resp).into_response())
}

/// Continue a waiting authorization request for a signed-in session: through the same decision
/// as `/authorize` (hint, consent), then a code for the client or the consent page.
pub async fn resume_authorization(
    state: &AppState,
    rid: &str,
    sess: &Session,
    now: i64,
) -> Response {
    let provider = &state.provider;
    let req = match authorize::peek_login_request(provider, rid, now).await {
        Ok(Some(req)) => req,
        Ok(None) => return super::request_expired(state),
        Err(e) => return PageError::store(&e).into_response(),
    };
    let client = match active_client(state, &req).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    crate::web::oauth::authorize::proceed(state, req, &client, sess, Some(rid), now).await
}

/// The request's client, if it is still active and still has the redirect URI (it may have
/// been changed while the person was signing in); otherwise the page to show.
pub async fn active_client(
    state: &AppState,
    req: &AuthorizationRequest,
) -> Result<crate::domain::Client, Response> {
    match crate::oauth::lookup::active_client(&state.provider, req).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(state.templates.error_page(
            StatusCode::BAD_REQUEST,
            "Application unavailable",
            "The application that sent you here is no longer registered.",
        )),
        Err(e) => Err(PageError::store(&e).into_response()),
    }
}

/// Where a request came from, for sessions and the audit log.
pub fn origin(ip: std::net::IpAddr, headers: &axum::http::HeaderMap) -> crate::audit::Origin {
    super::caller(ip, headers).origin()
}
