//! Browser sign-in sessions: created at every sign-in (with how the person proved who they are),
//! listed and ended from the account page, and ended all at once when the password changes.
//!
//! The cookie holds a random id; the row holds only its hash.

use async_trait::async_trait;

use super::StoreResult;
use super::accounts::CodePurpose;
use super::outbox::NewMail;

/// A browser sign-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Public session identifier for the `sid` claim (OIDC Front-/Back-Channel Logout).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    /// How the person signed in: RFC 8176 `amr` values (`pwd`, `otp`, `sms`, `mfa` …).
    pub amr: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub expires_at: i64,
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A live browser session, as listed on the account page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    pub sid: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A new password, and what else must change with it in the same transaction.
#[derive(Debug)]
pub struct PasswordChange<'a> {
    pub user_id: &'a str,
    pub password_hash: &'a str,
    /// The single-use link that authorises the change (a reset link): used up first; when it is
    /// no longer live, nothing at all is written.
    pub link: Option<(CodePurpose, &'a str)>,
    /// Notices to queue (the "your password was changed" mail).
    pub mails: &'a [NewMail],
}

/// `amr` values as stored: space-separated.
pub(crate) fn amr_to_text(amr: &[String]) -> String {
    amr.join(" ")
}

pub(crate) fn amr_from_text(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub amr: String,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            sid: r.sid,
            user_id: r.user_id,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
            amr: amr_from_text(&r.amr),
        }
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn create_session(&self, session: &NewSession, now: i64) -> StoreResult<()>;
    /// A live session: not ended, not expired.
    async fn find_session(&self, id_hash: &str, now: i64) -> StoreResult<Option<Session>>;
    /// End one session and revoke the refresh tokens bound to its `sid` (and, like every way of
    /// ending a session, deny-list its access tokens: see migration 0010).
    async fn end_session(&self, id_hash: &str, now: i64) -> StoreResult<()>;
    /// End every live session of a user and revoke every grant tied to them (refresh tokens).
    /// Used by logout-everywhere, disable and delete. Returns the `sid`s ended.
    async fn end_user_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<String>>;
    /// Live sessions of a user, newest first.
    async fn list_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionInfo>>;
    /// Set a new password and, in one transaction: use up `change.link` (when given; `None` is
    /// returned and nothing is written when it is not live), void every reset and invitation
    /// link, queue `change.mails`, revoke every grant of the user, end every live session and
    /// queue a Back-Channel Logout delivery (id from `new_id`) for each client those sessions
    /// signed into. Returns the `sid`s ended.
    async fn change_password(
        &self,
        change: &PasswordChange<'_>,
        now: i64,
        new_id: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<Option<Vec<String>>>;
}

/// Implements `SessionStore` for a store with `pool`, `deny`, `begin_write()` and the account
/// store's `void_codes`/`insert_mail` helpers (`impl_account_store!`).
macro_rules! impl_session_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Revoke every refresh token of the user (deny-listing the access tokens issued
            /// with them) and end the live sessions, queueing Back-Channel Logout deliveries when
            /// `new_id` is given. Returns the `sid`s ended.
            async fn end_all_sessions_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                now: i64,
                new_id: Option<&(dyn Fn() -> String + Send + Sync)>,
            ) -> $crate::store::StoreResult<Vec<String>> {
                // Before the sessions are ended: the session trigger of migration 0002 would
                // otherwise revoke the session-bound refresh tokens first, without their access
                // tokens.
                let issued: Vec<(Option<String>, Option<i64>)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                     RETURNING access_jti, access_exp",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&mut **tx)
                .await?;
                for (jti, exp) in issued {
                    if let (Some(jti), Some(exp)) = (jti, exp)
                        && exp > now
                    {
                        sqlx::query(
                            "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (jti) DO NOTHING",
                        )
                        .bind(jti)
                        .bind(exp)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                let targets: Vec<(String, String)> = if new_id.is_some() {
                    sqlx::query_as(
                        "SELECT s.sid, c.id FROM sessions s \
                         JOIN session_clients sc ON sc.sid = s.sid \
                         JOIN clients c ON c.id = sc.client_id \
                         WHERE s.user_id = $1 AND s.ended_at IS NULL \
                         AND c.backchannel_logout_uri IS NOT NULL AND c.disabled_at IS NULL",
                    )
                    .bind(user_id)
                    .fetch_all(&mut **tx)
                    .await?
                } else {
                    Vec::new()
                };
                let ended: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL RETURNING sid",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&mut **tx)
                .await?;
                if let Some(new_id) = new_id {
                    for (sid, client_id) in targets {
                        sqlx::query(
                            "INSERT INTO backchannel_deliveries \
                             (id, client_id, sid, sub, attempts, next_attempt_at, created_at) \
                             VALUES ($1, $2, $3, $4, 0, $5, $5)",
                        )
                        .bind(new_id())
                        .bind(&client_id)
                        .bind(&sid)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(ended.into_iter().map(|r| r.0).collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn create_session(
                &self,
                s: &$crate::store::NewSession,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, sid, user_id, auth_time, created_at, expires_at, ip, user_agent, amr) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&s.id_hash)
                .bind(&s.sid)
                .bind(&s.user_id)
                .bind(s.auth_time)
                .bind(now)
                .bind(s.expires_at)
                .bind(&s.ip)
                .bind(&s.user_agent)
                .bind($crate::store::sessions::amr_to_text(&s.amr))
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_session(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let row: Option<$crate::store::sessions::SessionRow> = sqlx::query_as(
                    "SELECT sid, user_id, auth_time, created_at, expires_at, amr FROM sessions \
                     WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn end_session(&self, id_hash: &str, now: i64) -> $crate::store::StoreResult<()> {
                // The trigger of migration 0010 deny-lists the session's access tokens.
                sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                self.deny.invalidate();
                Ok(())
            }

            async fn end_user_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let mut tx = self.begin_write().await?;
                let sids = Self::end_all_sessions_in(&mut tx, user_id, now, None).await?;
                tx.commit().await?;
                self.deny.invalidate();
                Ok(sids)
            }

            async fn list_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::SessionInfo>> {
                Ok(sqlx::query_as(
                    "SELECT sid, created_at, expires_at, ip, user_agent FROM sessions \
                     WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
                     ORDER BY created_at DESC, sid",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn change_password(
                &self,
                change: &$crate::store::PasswordChange<'_>,
                now: i64,
                new_id: &(dyn Fn() -> String + Send + Sync),
            ) -> $crate::store::StoreResult<Option<Vec<String>>> {
                let mut tx = self.begin_write().await?;
                if let Some((purpose, secret_hash)) = change.link {
                    let taken: Option<(String,)> = sqlx::query_as(
                        "UPDATE account_codes SET used_at = $1 \
                         WHERE purpose = $2 AND secret_hash = $3 AND user_id = $4 \
                         AND used_at IS NULL AND expires_at > $1 RETURNING id",
                    )
                    .bind(now)
                    .bind(purpose.as_str())
                    .bind(secret_hash)
                    .bind(change.user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if taken.is_none() {
                        return Ok(None);
                    }
                }
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(change.password_hash)
                    .bind(now)
                    .bind(change.user_id)
                    .execute(&mut *tx)
                    .await?;
                // A password set any way voids the outstanding reset links and invitation.
                {
                    use $crate::store::accounts::CodePurpose::{Invitation, PasswordReset};
                    Self::void_codes(&mut tx, change.user_id, Some(&[PasswordReset, Invitation]), now)
                        .await?;
                }
                for m in change.mails {
                    Self::insert_mail(&mut *tx, m, None, now).await?;
                }
                let sids =
                    Self::end_all_sessions_in(&mut tx, change.user_id, now, Some(new_id)).await?;
                tx.commit().await?;
                self.deny.invalidate();
                Ok(Some(sids))
            }
        }
    };
}

pub(crate) use impl_session_store;
