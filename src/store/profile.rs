//! The account page's writes: profile, address change, phone number, deletion and restore.

use async_trait::async_trait;

use super::StoreResult;
use super::outbox::NewMail;
use crate::domain::User;

/// Profile fields a person edits on the account page (OIDC standard claims).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
}

/// The account page: profile, sessions, address change and deletion.
#[async_trait]
pub trait AccountPageStore: Send + Sync + 'static {
    async fn update_profile(
        &self,
        user_id: &str,
        profile: &ProfileUpdate,
        now: i64,
    ) -> StoreResult<()>;
    /// Replace the address with a verified new one (voiding codes bound to the old one).
    /// `StoreError::Conflict` when another account has it.
    /// Make `new_email` the account's (verified) address and queue `mails` (the notice to the
    /// old address) in the same transaction. `StoreError::Conflict` if another account holds it.
    async fn change_email(
        &self,
        user_id: &str,
        new_email: &crate::domain::Email,
        mails: &[NewMail],
        now: i64,
    ) -> StoreResult<()>;
    /// Soft delete: disabled and hidden at once; personal data purged after the grace period.
    async fn soft_delete_user(&self, user_id: &str, now: i64) -> StoreResult<()>;
    /// Undo a soft delete within the grace period (for administrators). The account is enabled
    /// again unless it had been disabled before it was deleted. Whether anything changed.
    async fn restore_user(&self, user_id: &str, now: i64) -> StoreResult<bool>;
    /// Remove for good the accounts deleted before `before` (rows referencing them cascade).
    async fn purge_deleted_users(&self, before: i64) -> StoreResult<u64>;
    /// Set (or clear) the phone number, unverified.
    async fn set_phone(&self, user_id: &str, phone: Option<&str>, now: i64) -> StoreResult<()>;
    /// Mark the number verified if it is still the account's; `StoreError::Conflict` when
    /// another account has verified it.
    async fn mark_phone_verified(&self, user_id: &str, phone: &str, now: i64) -> StoreResult<bool>;
    /// The account whose verified phone number this is.
    async fn find_user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
}

/// Implements `AccountPageStore`; needs the account store's `void_codes` and `insert_mail`.
macro_rules! impl_profile_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountPageStore for $store {
            async fn update_profile(
                &self,
                user_id: &str,
                p: &$crate::store::ProfileUpdate,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET name = $1, given_name = $2, family_name = $3, picture = $4, \
                     locale = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&p.name)
                .bind(&p.given_name)
                .bind(&p.family_name)
                .bind(&p.picture)
                .bind(&p.locale)
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn change_email(
                &self,
                user_id: &str,
                new_email: &$crate::domain::Email,
                mails: &[$crate::store::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET email = $1, email_canonical = $4, email_verified = TRUE, \
                     updated_at = $2 WHERE id = $3",
                )
                .bind(new_email.as_str())
                .bind(now)
                .bind(user_id)
                .bind(new_email.canonical())
                .execute(&mut *tx)
                .await
                .map_err($crate::store::map_unique)?;
                Self::void_codes(&mut tx, user_id, None, now).await?;
                for m in mails {
                    Self::insert_mail(&mut *tx, m, None, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn soft_delete_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET deleted_at = $1, disabled_at = COALESCE(disabled_at, $1), \
                     updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                Self::void_codes(&mut tx, user_id, None, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_phone(
                &self,
                user_id: &str,
                phone: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET phone_number = $1, phone_number_verified = FALSE, \
                     updated_at = $2 WHERE id = $3",
                )
                .bind(phone)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                // The number changed: a confirmation SMS still queued for the old one is not sent.
                let purposes = [$crate::store::accounts::CodePurpose::PhoneVerify];
                Self::void_codes(&mut tx, user_id, Some(&purposes), now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mark_phone_verified(
                &self,
                user_id: &str,
                phone: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE users SET phone_number_verified = TRUE, updated_at = $1 \
                     WHERE id = $2 AND phone_number = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(user_id)
                .bind(phone)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?
                .rows_affected()
                    > 0)
            }

            async fn find_user_by_phone(
                &self,
                phone: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM users WHERE phone_number = $1 AND phone_number_verified \
                     AND deleted_at IS NULL",
                )
                .bind(phone)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some((id,)) => $crate::store::CoreStore::find_user(self, &id).await,
                    None => Ok(None),
                }
            }

            async fn restore_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE users SET disabled_at = CASE WHEN disabled_at = deleted_at THEN NULL \
                     ELSE disabled_at END, deleted_at = NULL, updated_at = $1 \
                     WHERE id = $2 AND deleted_at IS NOT NULL",
                )
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?
                .rows_affected()
                    > 0)
            }

            async fn purge_deleted_users(&self, before: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query(
                    "DELETE FROM users WHERE deleted_at IS NOT NULL AND deleted_at < $1",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }
        }
    };
}

pub(crate) use impl_profile_store;
