//! The browser side of sign-in sessions: the cookie. The sessions themselves are
//! `accounts::sessions`.

use axum_extra::extract::cookie::CookieJar;

use crate::domain::User;
use crate::store::{Session, StoreError};
use crate::web::state::AppState;

/// The live session and its active user named by this browser's cookie, if any.
pub async fn current(
    state: &AppState,
    jar: &CookieJar,
    now: i64,
) -> Result<Option<(Session, User)>, StoreError> {
    let secret = jar.get(state.cookies.session).map(|c| c.value());
    crate::accounts::sessions::current(&state.accounts, secret, now).await
}
