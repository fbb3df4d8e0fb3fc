//! Second factors: the authenticator-app secret of each account (TOTP, RFC 6238) with the newest
//! time step accepted, single-use recovery codes (SHA-256 only), and the sign-ins waiting for
//! their second step (migration 0020).
//!
//! Every rule that must hold under concurrency is one conditional statement: a time step is
//! accepted only if it is newer than the last one (`use_totp_step`), a recovery code is used
//! only once (`use_recovery_code`), a waiting sign-in completes only once (`take_mfa_pending`).

use async_trait::async_trait;

use super::StoreResult;

/// An account's authenticator app.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The RFC 4226 key, base32 (RFC 4648, no padding).
    pub secret: String,
    pub created_at: i64,
    /// `None` while being set up: not yet a factor.
    pub confirmed_at: Option<i64>,
    /// The newest time step accepted (no code of it or an older one is accepted again).
    pub last_step: Option<i64>,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"[redacted]")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

/// A sign-in whose first factor was proven, waiting for the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaPending {
    /// SHA-256 of the random id the browser holds.
    pub id_hash: String,
    pub user_id: String,
    /// The methods proven so far (`accounts::mfa::method_names`), space-separated.
    pub methods: String,
    pub auth_time: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    async fn find_totp(&self, user_id: &str) -> StoreResult<Option<TotpRecord>>;

    /// Store `secret` as the account's unconfirmed authenticator app, replacing an unconfirmed
    /// one. `false` (nothing written) when the account already has a confirmed one.
    async fn begin_totp(&self, user_id: &str, secret: &str, now: i64) -> StoreResult<bool>;

    /// In one transaction: confirm the unconfirmed app whose secret is `secret` (recording
    /// `step` as used) and replace the account's recovery codes by `recovery_hashes`. `false`
    /// (nothing written) when there is no such unconfirmed app.
    async fn confirm_totp(
        &self,
        user_id: &str,
        secret: &str,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> StoreResult<bool>;

    /// Record time step `step` as used, only if it is newer than the last one used and the app
    /// is confirmed. `false`: a replay (or no confirmed app).
    async fn use_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool>;

    /// Remove the account's authenticator app and recovery codes. Whether there was an app.
    async fn remove_totp(&self, user_id: &str) -> StoreResult<bool>;

    /// Replace the recovery codes, only while the account has a confirmed app.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> StoreResult<bool>;

    /// Use the unused recovery code `hash` of `user_id`. `false`: no such unused code.
    async fn use_recovery_code(&self, user_id: &str, hash: &str, now: i64) -> StoreResult<bool>;

    /// Unused recovery codes left.
    async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<i64>;

    async fn create_mfa_pending(&self, pending: &MfaPending, now: i64) -> StoreResult<()>;

    /// Step-up: the live session `old_id_hash` of `user_id` now has `amr` (space-separated)
    /// from `auth_time` on, and the id `new_id_hash` (a new cookie value, the same `sid`).
    /// `None` (nothing written) when there is no such live session.
    async fn upgrade_session(
        &self,
        old_id_hash: &str,
        new_id_hash: &str,
        user_id: &str,
        amr: &str,
        auth_time: i64,
        now: i64,
    ) -> StoreResult<Option<super::Session>>;
    /// The live waiting sign-in `id_hash`.
    async fn find_mfa_pending(&self, id_hash: &str, now: i64) -> StoreResult<Option<MfaPending>>;
    /// Remove and return the live waiting sign-in `id_hash`: it completes once.
    async fn take_mfa_pending(&self, id_hash: &str, now: i64) -> StoreResult<Option<MfaPending>>;
}

macro_rules! impl_mfa_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Replace `user_id`'s recovery codes by `hashes`, inside `tx`.
            async fn store_recovery_codes(
                tx: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                hashes: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut **tx)
                    .await?;
                for h in hashes {
                    sqlx::query(
                        "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(user_id)
                    .bind(h)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::MfaStore for $store {
            async fn find_totp(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::TotpRecord>> {
                let row: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT secret, created_at, confirmed_at, last_step FROM mfa_totp \
                     WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(secret, created_at, confirmed_at, last_step)| {
                    $crate::store::TotpRecord {
                        secret,
                        created_at,
                        confirmed_at,
                        last_step,
                    }
                }))
            }

            async fn begin_totp(
                &self,
                user_id: &str,
                secret: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "INSERT INTO mfa_totp (user_id, secret, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, \
                     created_at = excluded.created_at WHERE mfa_totp.confirmed_at IS NULL",
                )
                .bind(user_id)
                .bind(secret)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn confirm_totp(
                &self,
                user_id: &str,
                secret: &str,
                step: i64,
                recovery_hashes: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE mfa_totp SET confirmed_at = $3, last_step = $4 \
                     WHERE user_id = $1 AND secret = $2 AND confirmed_at IS NULL",
                )
                .bind(user_id)
                .bind(secret)
                .bind(now)
                .bind(step)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::store_recovery_codes(&mut tx, user_id, recovery_hashes, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn use_totp_step(
                &self,
                user_id: &str,
                step: i64,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE mfa_totp SET last_step = $2 WHERE user_id = $1 \
                     AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn remove_totp(&self, user_id: &str) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            async fn replace_recovery_codes(
                &self,
                user_id: &str,
                hashes: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                // A no-op write: checks the app is confirmed and holds its row until commit.
                let n = sqlx::query(
                    "UPDATE mfa_totp SET created_at = created_at \
                     WHERE user_id = $1 AND confirmed_at IS NOT NULL",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::store_recovery_codes(&mut tx, user_id, hashes, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn use_recovery_code(
                &self,
                user_id: &str,
                hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE mfa_recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn recovery_codes_left(&self, user_id: &str) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            async fn create_mfa_pending(
                &self,
                p: &$crate::store::MfaPending,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO mfa_pending (id_hash, user_id, methods, auth_time, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&p.id_hash)
                .bind(&p.user_id)
                .bind(&p.methods)
                .bind(p.auth_time)
                .bind(now)
                .bind(p.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn upgrade_session(
                &self,
                old_id_hash: &str,
                new_id_hash: &str,
                user_id: &str,
                amr: &str,
                auth_time: i64,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let row: Option<(String, String, i64, i64, i64, String)> = sqlx::query_as(
                    "UPDATE sessions SET id_hash = $2, amr = $4, auth_time = $5 \
                     WHERE id_hash = $1 AND user_id = $3 AND ended_at IS NULL AND expires_at > $6 \
                     RETURNING sid, user_id, auth_time, created_at, expires_at, amr",
                )
                .bind(old_id_hash)
                .bind(new_id_hash)
                .bind(user_id)
                .bind(amr)
                .bind(auth_time)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(sid, user_id, auth_time, created_at, expires_at, amr)| {
                    $crate::store::Session {
                        sid,
                        user_id,
                        auth_time,
                        created_at,
                        expires_at,
                        amr: amr.split_whitespace().map(str::to_owned).collect(),
                    }
                }))
            }

            async fn find_mfa_pending(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::MfaPending>> {
                let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
                    "SELECT id_hash, user_id, methods, auth_time, expires_at FROM mfa_pending \
                     WHERE id_hash = $1 AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map($crate::store::mfa::pending_from_row))
            }

            async fn take_mfa_pending(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::MfaPending>> {
                let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
                    "DELETE FROM mfa_pending WHERE id_hash = $1 AND expires_at > $2 \
                     RETURNING id_hash, user_id, methods, auth_time, expires_at",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map($crate::store::mfa::pending_from_row))
            }
        }
    };
}
pub(crate) use impl_mfa_store;

pub(crate) fn pending_from_row(
    (id_hash, user_id, methods, auth_time, expires_at): (String, String, String, i64, i64),
) -> MfaPending {
    MfaPending {
        id_hash,
        user_id,
        methods,
        auth_time,
        expires_at,
    }
}
