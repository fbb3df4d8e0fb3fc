//! Token lifecycle storage: refresh tokens with rotation and family revocation (RFC 6749 §6,
//! RFC 9700 §4.14), and updates of a client's token settings.
//!
//! A refresh token row is looked up by the SHA-256 of the token. Each row also records the
//! access token issued alongside it (`access_jti`, `access_exp`), so revoking a family puts every
//! access token descended from the grant on the deny-list too.

use async_trait::async_trait;

use super::StoreResult;
use super::rows::FullUserRow;
use crate::domain::User;

/// A refresh token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshToken {
    pub token_hash: String,
    /// The original grant: every rotation of one authorization code shares it.
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The browser session the grant came from; the token dies when that session is ended.
    pub sid: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub created_at: i64,
    /// Idle expiry of this token (never later than `family_expires_at`).
    pub expires_at: i64,
    /// Absolute expiry of the whole family.
    pub family_expires_at: i64,
    /// Set when the token was rotated: presenting it again is reuse.
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The access token issued together with this refresh token.
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
    /// How the person signed in: RFC 8176 `amr` values, space-separated (from the code).
    pub amr: String,
}

impl RefreshToken {
    /// Usable now: not rotated, not revoked, within both lifetimes.
    pub fn is_live(&self, now: i64) -> bool {
        self.used_at.is_none()
            && self.revoked_at.is_none()
            && self.expires_at > now
            && self.family_expires_at > now
    }
}

#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Store the first refresh token of a family.
    async fn create_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    async fn find_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshToken>>;
    /// The refresh token `token_hash` and its user (with roles and groups; `None` once the
    /// account is deleted), in one round trip: what a refresh grant reads before it rotates.
    async fn find_refresh_grant(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(RefreshToken, Option<User>)>>;
    /// Atomically mark the live token `old_hash` used and store `new` in its place. Returns
    /// `false`, writing nothing, when the old token was no longer live (rotated by a concurrent
    /// request, revoked or expired): exactly one of several concurrent callers gets `true`.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: i64,
        new: &RefreshToken,
    ) -> StoreResult<bool>;
    /// Revoke every refresh token of the family and deny-list the unexpired access tokens
    /// issued with them, in one transaction. Returns the number of refresh tokens revoked now.
    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> StoreResult<u64>;
    /// Delete refresh tokens whose family has passed its absolute lifetime.
    async fn purge_refresh_tokens(&self, now: i64) -> StoreResult<u64>;
}

/// A refresh token joined with its user (`find_refresh_grant`). The token's own columns carry
/// the `rt_` prefix, apart from the user's (both tables have `created_at`).
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshGrantRow {
    rt_token_hash: String,
    rt_family_id: String,
    rt_client_id: String,
    rt_sid: Option<String>,
    rt_scope: String,
    rt_auth_time: i64,
    rt_created_at: i64,
    rt_expires_at: i64,
    rt_family_expires_at: i64,
    rt_used_at: Option<i64>,
    rt_revoked_at: Option<i64>,
    rt_access_jti: Option<String>,
    rt_access_exp: Option<i64>,
    rt_amr: String,
    #[sqlx(flatten)]
    user: FullUserRow,
    user_deleted_at: Option<i64>,
}

/// The `SELECT` list of `RefreshGrantRow` before the dialect's roles and groups aggregates.
pub(crate) const REFRESH_GRANT_COLUMNS: &str = "rt.token_hash AS rt_token_hash, \
    rt.family_id AS rt_family_id, rt.client_id AS rt_client_id, rt.sid AS rt_sid, \
    rt.scope AS rt_scope, rt.auth_time AS rt_auth_time, rt.created_at AS rt_created_at, \
    rt.expires_at AS rt_expires_at, rt.family_expires_at AS rt_family_expires_at, \
    rt.used_at AS rt_used_at, rt.revoked_at AS rt_revoked_at, rt.access_jti AS rt_access_jti, \
    rt.access_exp AS rt_access_exp, rt.amr AS rt_amr, users.deleted_at AS user_deleted_at, \
    users.id, users.email, users.email_verified, users.password_hash, users.name, \
    users.given_name, users.family_name, users.phone_number, users.phone_number_verified, \
    users.picture, users.locale, users.created_at, users.updated_at, users.disabled_at";

impl RefreshGrantRow {
    pub(crate) fn into_parts(self) -> StoreResult<(RefreshToken, Option<User>)> {
        let deleted = self.user_deleted_at.is_some();
        let user = self.user.into_user()?;
        let token = RefreshToken {
            token_hash: self.rt_token_hash,
            family_id: self.rt_family_id,
            client_id: self.rt_client_id,
            user_id: user.id.clone(),
            sid: self.rt_sid,
            scope: self.rt_scope,
            auth_time: self.rt_auth_time,
            created_at: self.rt_created_at,
            expires_at: self.rt_expires_at,
            family_expires_at: self.rt_family_expires_at,
            used_at: self.rt_used_at,
            revoked_at: self.rt_revoked_at,
            access_jti: self.rt_access_jti,
            access_exp: self.rt_access_exp,
            amr: self.rt_amr,
        };
        Ok((token, (!deleted).then_some(user)))
    }
}

pub(crate) const REFRESH_COLUMNS: &str = "token_hash, family_id, client_id, user_id, sid, scope, auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, access_jti, access_exp, amr";

/// Binds the columns of one refresh token, in `REFRESH_COLUMNS` order, as `$1`..`$15`.
macro_rules! bind_refresh {
    ($q:expr, $t:expr) => {
        $q.bind(&$t.token_hash)
            .bind(&$t.family_id)
            .bind(&$t.client_id)
            .bind(&$t.user_id)
            .bind(&$t.sid)
            .bind(&$t.scope)
            .bind($t.auth_time)
            .bind($t.created_at)
            .bind($t.expires_at)
            .bind($t.family_expires_at)
            .bind($t.used_at)
            .bind($t.revoked_at)
            .bind(&$t.access_jti)
            .bind($t.access_exp)
            .bind(&$t.amr)
    };
}

pub(crate) use bind_refresh;

/// The INSERT of one refresh token, bound and ready to execute on a pool or a transaction.
macro_rules! insert_refresh {
    ($t:expr) => {
        $crate::store::tokens::bind_refresh!(
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, sid, scope, \
                 auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, access_jti, access_exp, amr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            ),
            $t
        )
    };
}

pub(crate) use insert_refresh;

macro_rules! impl_token_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::TokenStore for $store {
            async fn create_refresh_token(
                &self,
                t: &$crate::store::RefreshToken,
            ) -> $crate::store::StoreResult<()> {
                $crate::store::tokens::insert_refresh!(t).execute(&self.pool).await.map_err($crate::store::map_unique)?;
                Ok(())
            }

            async fn find_refresh_token(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::RefreshToken>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM refresh_tokens WHERE token_hash = $1",
                    $crate::store::tokens::REFRESH_COLUMNS
                ));
                Ok(sqlx::query_as(sql)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn find_refresh_grant(
                &self,
                token_hash: &str,
            ) -> $crate::store::StoreResult<
                Option<($crate::store::RefreshToken, Option<$crate::domain::User>)>,
            > {
                // A user row is deleted only with its tokens (ON DELETE CASCADE): an inner join
                // finds every token there is.
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {}, {} FROM refresh_tokens rt JOIN users ON users.id = rt.user_id \
                     WHERE rt.token_hash = $1",
                    $crate::store::tokens::REFRESH_GRANT_COLUMNS,
                    Self::USER_ROLES_GROUPS,
                ));
                let row: Option<$crate::store::tokens::RefreshGrantRow> = sqlx::query_as(sql)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map($crate::store::tokens::RefreshGrantRow::into_parts).transpose()
            }

            async fn rotate_refresh_token(
                &self,
                old_hash: &str,
                now: i64,
                new: &$crate::store::RefreshToken,
            ) -> $crate::store::StoreResult<bool> {
                // One statement per dialect (`rotate_refresh` in sqlite.rs / postgres.rs).
                self.rotate_refresh(old_hash, now, new).await
            }

            async fn revoke_refresh_family(
                &self,
                family_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let rows: Vec<(Option<String>, Option<i64>)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL \
                     RETURNING access_jti, access_exp",
                )
                .bind(now)
                .bind(family_id)
                .fetch_all(&mut *tx)
                .await?;
                for (jti, exp) in &rows {
                    if let (Some(jti), Some(exp)) = (jti, exp)
                        && *exp > now
                    {
                        sqlx::query(
                            "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (jti) DO NOTHING",
                        )
                        .bind(jti)
                        .bind(exp)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                self.deny.invalidate();
                Ok(rows.len() as u64)
            }

            async fn purge_refresh_tokens(&self, now: i64) -> $crate::store::StoreResult<u64> {
                // Kept while the access token issued with it may be live: ending its session
                // deny-lists the session until the last such token expires (migration 0010).
                Ok(sqlx::query(
                    "DELETE FROM refresh_tokens WHERE family_expires_at <= $1 \
                     AND (access_exp IS NULL OR access_exp <= $1)",
                )
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(crate) use impl_token_store;

#[cfg(test)]
mod tests {
    use super::RefreshToken;

    #[test]
    fn liveness() {
        let t = RefreshToken {
            token_hash: "h".into(),
            family_id: "f".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            sid: None,
            scope: "openid".into(),
            auth_time: 0,
            created_at: 0,
            expires_at: 100,
            family_expires_at: 200,
            used_at: None,
            revoked_at: None,
            access_jti: None,
            access_exp: None,
            amr: String::new(),
        };
        assert!(t.is_live(99));
        assert!(!t.is_live(100));
        assert!(
            !RefreshToken {
                used_at: Some(1),
                ..t.clone()
            }
            .is_live(1)
        );
        assert!(
            !RefreshToken {
                revoked_at: Some(1),
                ..t
            }
            .is_live(1)
        );
    }
}
