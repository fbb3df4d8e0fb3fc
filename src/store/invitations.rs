//! Invitations: an administrator creates a user without a password and mails a single-use link
//! (`CodePurpose::Invitation`, stored with `AccountStore::sign_up`, so the user, the link and the
//! mail are written in one transaction). Accepting it is one transaction too: the link is used,
//! the password set and the address marked verified together, or nothing happens. Resending
//! (`reissue_invitation`) voids the outstanding links and stores the new link and its mail in one
//! transaction, only while the user still has no password.

use async_trait::async_trait;

use super::StoreResult;
use super::accounts::{AccountCode, NewAccountCode};
use super::outbox::NewMail;

#[async_trait]
pub trait InvitationStore: Send + Sync + 'static {
    /// Use the live invitation link `secret_hash` and, in the same transaction, set the user's
    /// password and mark the address the link was sent to verified; voids the user's other
    /// reset and invitation links. `None` (nothing written) when the link is not live, or the
    /// account is disabled, deleted or no longer has that address.
    async fn accept_invitation(
        &self,
        secret_hash: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccountCode>>;

    /// In one transaction: void every unused invitation link of `user_id`, store `code` (an
    /// invitation link to the user's current address `code.target`) and queue `mail`. Only while
    /// the user is active, still has that address and has no password: `false` (nothing
    /// written) otherwise, also when the user does not exist.
    async fn reissue_invitation(
        &self,
        user_id: &str,
        code: &NewAccountCode,
        mail: &NewMail,
        now: i64,
    ) -> StoreResult<bool>;
}

macro_rules! impl_invitation_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::InvitationStore for $store {
            async fn accept_invitation(
                &self,
                secret_hash: &str,
                password_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::AccountCode>> {
                let mut tx = self.begin_write().await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE account_codes SET used_at = $3 WHERE secret_hash = $1 AND purpose = $2 \
                     AND used_at IS NULL AND expires_at > $3 RETURNING {}",
                    $crate::store::accounts::CODE_COLUMNS
                ));
                let code: Option<$crate::store::AccountCode> = sqlx::query_as(sql)
                    .bind(secret_hash)
                    .bind($crate::store::CodePurpose::Invitation.as_str())
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(code) = code else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let changed = sqlx::query(
                    "UPDATE users SET password_hash = $1, email_verified = TRUE, updated_at = $2 \
                     WHERE id = $3 AND email = $4 AND disabled_at IS NULL AND deleted_at IS NULL",
                )
                .bind(password_hash)
                .bind(now)
                .bind(&code.user_id)
                .bind(&code.target)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                {
                    use $crate::store::CodePurpose::{
                        EmailVerifyCode, EmailVerifyLink, Invitation, PasswordReset,
                    };
                    let purposes = [PasswordReset, Invitation, EmailVerifyLink, EmailVerifyCode];
                    Self::void_codes(&mut tx, &code.user_id, Some(&purposes), now).await?;
                }
                tx.commit().await?;
                Ok(Some(code))
            }

            async fn reissue_invitation(
                &self,
                user_id: &str,
                code: &$crate::store::NewAccountCode,
                mail: &$crate::store::NewMail,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                // Rows are locked in the order `accept_invitation` locks them (links, then the
                // user), so a resend racing an acceptance waits instead of deadlocking: either
                // the old link is used first (then the user has a password and nothing is
                // written here) or it is voided first (then the acceptance finds no live link).
                let purposes = [$crate::store::CodePurpose::Invitation];
                Self::void_codes(&mut tx, user_id, Some(&purposes), now).await?;
                // A no-op write: it checks the conditions and holds the user's row until commit.
                let eligible = sqlx::query(
                    "UPDATE users SET updated_at = updated_at WHERE id = $1 AND email = $2 \
                     AND password_hash IS NULL AND disabled_at IS NULL AND deleted_at IS NULL",
                )
                .bind(user_id)
                .bind(&code.target)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if eligible == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_codes_and_mail(
                    &mut tx,
                    user_id,
                    std::slice::from_ref(code),
                    std::slice::from_ref(mail),
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}
pub(crate) use impl_invitation_store;
