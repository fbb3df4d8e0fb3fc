//! Browser sign-in sessions: a random id in an HttpOnly cookie, only its SHA-256 in the database.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use crate::crypto::{hash_secret, random_secret};
use crate::domain::User;
use crate::state::AppState;
use crate::store::{NewSession, Session, StoreError};

/// The live session and its active user named by this browser's cookie, if any.
pub async fn current(
    state: &AppState,
    jar: &CookieJar,
    now: i64,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(cookie) = jar.get(state.cookies.session) else {
        return Ok(None);
    };
    let store = &state.provider.store;
    let Some(session) = store
        .find_session(&hash_secret(cookie.value()), now)
        .await?
    else {
        return Ok(None);
    };
    let user = store
        .find_user(&session.user_id)
        .await?
        .filter(User::is_active);
    Ok(user.map(|u| (session, u)))
}

/// Start a new session for `user` (a new id at every sign-in, so a planted id is useless),
/// ending the one the browser had.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    ip: Option<String>,
    user_agent: Option<String>,
    now: i64,
) -> Result<(CookieJar, Session), StoreError> {
    let store = &state.provider.store;
    if let Some(old) = jar.get(state.cookies.session) {
        // The replaced session ends like a logout: its clients hear of it by back-channel.
        let id_hash = hash_secret(old.value());
        match store.find_session(&id_hash, now).await? {
            Some(old) => {
                crate::oidc::logout::end_session(&state.provider, &id_hash, &old, now).await?;
            }
            None => store.end_session(&id_hash, now).await?,
        }
    }
    let id = random_secret(32);
    let ttl = state.provider.settings.session.ttl;
    let new = NewSession {
        id_hash: hash_secret(&id),
        sid: random_secret(16),
        user_id: user.id.clone(),
        auth_time: now,
        expires_at: now + ttl,
        ip,
        user_agent: user_agent.map(|ua| ua.chars().take(512).collect()),
    };
    store.create_session(&new, now).await?;
    let cookie = Cookie::build((state.cookies.session, id))
        .path("/")
        .http_only(true)
        .secure(state.cookies.secure)
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(ttl))
        .build();
    Ok((
        jar.add(cookie),
        Session {
            sid: new.sid,
            user_id: new.user_id,
            auth_time: now,
            created_at: now,
            expires_at: new.expires_at,
        },
    ))
}
