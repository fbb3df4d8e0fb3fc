//! Browser sign-in sessions: a random id that the web layer keeps in a cookie, only its SHA-256
//! in the database, and how the person proved who they are (`amr`).

use super::signin::Authenticated;
use super::{AccountResult, Accounts, Caller};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::User;
use crate::store::{NewSession, Session, StoreError};

/// A session just started: the secret for the cookie (shown once) and the session.
#[derive(Clone)]
pub struct Started {
    pub secret: String,
    pub session: Session,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started")
            .field("secret", &"[redacted]")
            .field("session", &self.session)
            .finish()
    }
}

/// The live session named by the cookie value `secret`, and its active user.
pub async fn current(
    acc: &Accounts,
    secret: Option<&str>,
    now: i64,
) -> Result<Option<(Session, User)>, StoreError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    let store = acc.store();
    let Some(session) = store.find_session(&hash_secret(secret), now).await? else {
        return Ok(None);
    };
    let user = store
        .find_user(&session.user_id)
        .await?
        .filter(User::is_active);
    Ok(user.map(|u| (session, u)))
}

/// Start a new session for the person `auth` names (a new id at every sign-in, so a planted id
/// is useless), ending the one the browser had (`replacing`, its cookie value) like a logout:
/// its clients hear of it by back-channel.
pub async fn start(
    acc: &Accounts,
    replacing: Option<&str>,
    auth: &Authenticated,
    caller: &Caller,
    now: i64,
) -> AccountResult<Started> {
    let store = acc.store();
    if let Some(old) = replacing {
        end(acc, old, now).await?;
    }
    let secret = random_secret(32);
    let ttl = acc.settings().session.ttl;
    let new = NewSession {
        id_hash: hash_secret(&secret),
        sid: random_secret(16),
        user_id: auth.user.id.clone(),
        auth_time: auth.at,
        expires_at: now + ttl,
        amr: auth.amr(),
        ip: Some(caller.ip.to_string()),
        user_agent: caller
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(512).collect()),
    };
    store.create_session(&new, now).await?;
    Ok(Started {
        secret,
        session: Session {
            sid: new.sid,
            user_id: new.user_id,
            auth_time: new.auth_time,
            created_at: now,
            expires_at: new.expires_at,
            amr: new.amr,
        },
    })
}

/// End the session whose cookie value is `secret` (with Back-Channel Logout when it was live).
pub async fn end(acc: &Accounts, secret: &str, now: i64) -> Result<(), StoreError> {
    let id_hash = hash_secret(secret);
    let store = acc.store();
    match store.find_session(&id_hash, now).await? {
        Some(old) => {
            crate::oidc::logout::end_session(&acc.provider, &id_hash, &old, now).await?;
        }
        None => store.end_session(&id_hash, now).await?,
    }
    Ok(())
}
