//! The hosted login page. One generic message for any wrong e-mail or password, with the same
//! work done either way (a dummy argon2 verification for unknown accounts).

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use crate::audit::{self, Event, Origin, action};
use crate::domain::{Email, User};
use crate::oauth::authorize::{self, AuthorizationRequest};
use crate::state::AppState;
use crate::store::Session;
use crate::web::{csrf, session};

const BAD_CREDENTIALS: &str = "The e-mail address or password is incorrect.";
const FORM_EXPIRED: &str = "This form expired. Please try again.";

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

struct View<'a> {
    rid: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    client_name: Option<String>,
}

async fn client_name(state: &AppState, req: Option<&AuthorizationRequest>) -> Option<String> {
    let req = req?;
    state
        .provider
        .store
        .find_client(&req.client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
}

fn render(state: &AppState, jar: CookieJar, status: StatusCode, view: View<'_>) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Sign in");
    ctx.insert("csrf", &token);
    ctx.insert("rid", view.rid);
    ctx.insert("email", view.email);
    ctx.insert("error", &view.error);
    ctx.insert("client_name", &view.client_name);
    ctx.insert("signup_enabled", &state.provider.settings.signup.enabled);
    (jar, state.templates.page(status, "login.html", &ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Response {
    let now = crate::now();
    let req = if q.rid.is_empty() {
        None
    } else {
        match authorize::peek_login_request(&state.provider, &q.rid, now).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "login request lookup failed");
                return super::internal_error(&state);
            }
        }
    };
    if q.rid.is_empty()
        && let Ok(Some(_)) = session::current(&state, &jar, now).await
    {
        return Redirect::to("/").into_response();
    }
    let hint = req
        .as_ref()
        .and_then(|r| r.login_hint.clone())
        .unwrap_or_default();
    let view = View {
        rid: &q.rid,
        email: &hint,
        error: (!q.rid.is_empty() && req.is_none())
            .then_some("This sign-in request expired. You can still sign in here, then return to the application."),
        client_name: client_name(&state, req.as_ref()).await,
    };
    render(&state, jar, StatusCode::OK, view)
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let now = crate::now();
    let again = |jar, status, error| {
        let state = state.clone();
        let rid = form.rid.clone();
        let email = form.email.clone();
        async move {
            let req = authorize::peek_login_request(&state.provider, &rid, now)
                .await
                .ok()
                .flatten();
            let name = client_name(&state, req.as_ref()).await;
            render(
                &state,
                jar,
                status,
                View {
                    rid: &rid,
                    email: &email,
                    error: Some(error),
                    client_name: name,
                },
            )
        }
    };
    if !csrf::verify(&state, &jar, &form.csrf) {
        return again(jar, StatusCode::FORBIDDEN, FORM_EXPIRED).await;
    }
    let from = origin(peer, &headers);
    let account = Email::parse(&form.email)
        .map(|e| e.as_str().to_owned())
        .or_else(|_| crate::domain::Phone::parse(&form.email).map(|p| p.as_str().to_owned()))
        .ok();
    if let Err(resp) = super::accounts::check_limits(
        &state,
        crate::web::limits::Bucket::Login,
        peer,
        &from,
        account.as_deref(),
    )
    .await
    {
        return resp;
    }
    let user = match check_credentials(&state, &form.email, &form.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!("sign-in failed: bad credentials");
            audit::record(
                state.provider.store.as_ref(),
                Event::new(action::LOGIN)
                    .origin(&origin(peer, &headers))
                    .failure("bad_credentials"),
            )
            .await;
            return again(jar, StatusCode::OK, BAD_CREDENTIALS).await;
        }
        Err(resp) => return resp,
    };
    if !user.email_verified && state.provider.settings.accounts.require_verified_email {
        // The password was right, but the address is unconfirmed: send a code (unless one was
        // sent moments ago) and show the verification page instead of signing in.
        tracing::info!(user.id = %user.id, "sign-in held: e-mail address not verified");
        audit::record(
            state.provider.store.as_ref(),
            Event::new(action::LOGIN)
                .actor(&user.id)
                .target(&user.id)
                .origin(&from)
                .failure("email_not_verified"),
        )
        .await;
        if let Err(resp) = super::accounts::resend_verification(&state, &user, &from, now).await {
            return resp;
        }
        return super::accounts::verify_page(
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

/// Where a request came from, for sessions and the audit log.
pub fn origin(peer: SocketAddr, headers: &HeaderMap) -> Origin {
    Origin {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

/// A person proved who they are (password, one-time code...): start a new session, record it,
/// and continue the authorization request `rid` (or go home when there is none). Every sign-in
/// method ends here, so the session rules and the rest of the flow are the same for all.
pub async fn finish_login(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    origin: Origin,
    rid: &str,
    now: i64,
) -> Response {
    let (jar, sess) = match session::start(
        state,
        jar,
        user,
        origin.ip.clone(),
        origin.user_agent.clone(),
        now,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "cannot create session");
            return super::internal_error(state);
        }
    };
    tracing::info!(user.id = %user.id, "signed in");
    audit::record(
        state.provider.store.as_ref(),
        Event::new(action::LOGIN)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin),
    )
    .await;
    if rid.is_empty() {
        return (jar, Redirect::to("/")).into_response();
    }
    let resp = resume_authorization(state, rid, &sess, now).await;
    (jar, resp).into_response()
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
        Err(e) => {
            tracing::error!(error = %e, "login request lookup failed");
            return super::internal_error(state);
        }
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
    match state.provider.store.find_client(&req.client_id).await {
        Ok(Some(c)) if c.is_active() && c.has_redirect_uri(&req.redirect_uri) => Ok(c),
        Ok(_) => Err(state.templates.error_page(
            StatusCode::BAD_REQUEST,
            "Application unavailable",
            "The application that sent you here is no longer registered.",
        )),
        Err(e) => {
            tracing::error!(error = %e, "client lookup failed");
            Err(super::internal_error(state))
        }
    }
}

/// The active user these credentials belong to, or `None` (for any reason: the answer must not
/// say which). Unknown or malformed e-mails still cost one argon2 verification.
async fn check_credentials(
    state: &AppState,
    email: &str,
    password: &str,
) -> Result<Option<User>, Response> {
    let provider = &state.provider;
    // An e-mail address, or a verified phone number (E.164 after normalisation).
    let found = match (Email::parse(email), crate::domain::Phone::parse(email)) {
        (Ok(email), _) => provider.store.find_user_by_email(email.as_str()).await,
        (Err(_), Ok(phone)) => provider.store.find_user_by_phone(phone.as_str()).await,
        (Err(_), Err(_)) => Ok(None),
    };
    let user = found.map_err(|e| {
        tracing::error!(error = %e, "user lookup failed");
        super::internal_error(state)
    })?;
    // Over-long passwords are refused without hashing, for known and unknown users alike.
    let too_long = password.len() > crate::domain::Password::MAX_BYTES;
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = !too_long
        && provider.hasher.verify(password, hash).await.map_err(|e| {
            tracing::error!(error = %e, "password verification failed");
            super::internal_error(state)
        })?;
    let Some(user) = user.filter(|u| ok && u.is_active()) else {
        return Ok(None);
    };
    // Upgrade hashes made with older parameters, now that we hold the password.
    if let Some(h) = user.password_hash.as_deref()
        && provider.hasher.needs_rehash(h)
        && let Ok(pw) = crate::domain::Password::parse(password)
        && let Ok(new_hash) = provider.hasher.hash(&pw).await
    {
        let _ = provider
            .store
            .set_password_hash(&user.id, &new_hash, crate::now())
            .await;
    }
    Ok(Some(user))
}
