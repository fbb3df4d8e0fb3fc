//! The waiting sign-in's browser side: when a sign-in still needs its second factor, the
//! cookie that names it and the redirect to `/login/mfa` (`pages::mfa`). Used by
//! `login::finish_login` and by step-up; imports neither.

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::login_path;
use crate::accounts::AccountError;
use crate::accounts::mfa;
use crate::accounts::signin::Authenticated;
use crate::web::state::AppState;

/// The cookie naming the waiting sign-in (`__Host-` prefixed and Secure on https).
pub fn cookie_name(state: &AppState) -> &'static str {
    if state.cookies.secure {
        "__Host-portcullis_mfa"
    } else {
        "portcullis_mfa"
    }
}

fn waiting_cookie(state: &AppState, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build((cookie_name(state), value))
        .path("/")
        .http_only(true)
        .secure(state.cookies.secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(max_age))
        .build()
}

/// The path of the second step, continuing the authorization request `rid`.
fn step_path(rid: &str) -> String {
    login_path(rid).replacen("/login", "/login/mfa", 1)
}

/// Called by `finish_login` before a session starts: when `auth` still needs a second factor,
/// record the waiting sign-in and send the browser to the second step (`Some`); else `None`.
pub async fn require_second_factor(
    state: &AppState,
    jar: &CookieJar,
    auth: &Authenticated,
    rid: &str,
    now: i64,
) -> Result<Option<Response>, AccountError> {
    if !mfa::needs_second_factor(&state.accounts, auth).await? {
        return Ok(None);
    }
    let waiting = mfa::begin(&state.accounts, auth, now).await?;
    let ttl = state.provider.settings.session.login_request_ttl;
    let jar = jar.clone().add(waiting_cookie(state, waiting.secret, ttl));
    Ok(Some((jar, Redirect::to(&step_path(rid))).into_response()))
}
