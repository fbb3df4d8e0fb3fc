//! The outbox as an administrator sees it: messages given up after the retry budget (or
//! superseded, or expired), and putting one back in the queue. Bodies never leave the store this
//! way: an entry says only whether its body is still there.

use async_trait::async_trait;

use super::StoreResult;

/// A given-up outbox row, without its body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct OutboxEntry {
    pub id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub created_at: i64,
    pub attempts: i64,
    pub failed_at: Option<i64>,
    pub sent_at: Option<i64>,
    /// Why it was given up: the transport's last error, `superseded`, `expired`, or
    /// `reissued` (an administrator had it re-issued as a fresh message).
    pub last_error: Option<String>,
    /// The account and the purpose of the one-time code or link it carries (none for notices).
    pub user_id: Option<String>,
    pub purpose: Option<String>,
    /// Whether the body is still stored (bodies are blanked 10 minutes after a message ends).
    pub has_body: bool,
}

pub(crate) const ENTRY_COLUMNS: &str = "id, channel, recipient, subject, created_at, attempts, \
    failed_at, sent_at, last_error, user_id, purpose, \
    (body_text <> '' OR body_html <> '') AS has_body";

#[async_trait]
pub trait OutboxAdminStore: Send + Sync + 'static {
    /// Messages given up and never sent, newest first; `before`: a page cursor (an id).
    async fn given_up_mail(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEntry>>;
    /// One outbox row, whatever its state.
    async fn outbox_entry(&self, id: &str) -> StoreResult<Option<OutboxEntry>>;
    /// Put the given-up row `id` back in the queue as it is (attempts from zero, due now), only
    /// while its body is stored, the code it carries is still live (unused, unexpired, not
    /// replaced by a newer one) and its account active. `false` (nothing written) otherwise.
    async fn requeue_mail(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// Record that the given-up row `id` was replaced by a fresh message (`last_error =
    /// 'reissued'`), so it is not re-issued twice. `false` when it is not given up.
    async fn mark_mail_reissued(&self, id: &str) -> StoreResult<bool>;
}

macro_rules! impl_outbox_admin_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::OutboxAdminStore for $store {
            async fn given_up_mail(
                &self,
                before: Option<&str>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxEntry>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM mail_outbox WHERE failed_at IS NOT NULL AND sent_at IS NULL \
                     AND ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
                    $crate::store::outbox_admin::ENTRY_COLUMNS
                ));
                Ok(sqlx::query_as(sql)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn outbox_entry(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::OutboxEntry>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM mail_outbox WHERE id = $1",
                    $crate::store::outbox_admin::ENTRY_COLUMNS
                ));
                Ok(sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn requeue_mail(&self, id: &str, now: i64) -> $crate::store::StoreResult<bool> {
                // The code a message carries was stored with it, in the same transaction and at
                // the same `created_at`; any newer code of the purpose voided it (`used_at`).
                let n = sqlx::query(
                    "UPDATE mail_outbox SET failed_at = NULL, last_error = NULL, attempts = 0, \
                     next_attempt_at = $2 \
                     WHERE id = $1 AND failed_at IS NOT NULL AND sent_at IS NULL \
                     AND body_text <> '' \
                     AND COALESCE(last_error, '') NOT IN ('superseded', 'reissued') \
                     AND (expires_at IS NULL OR expires_at > $2) \
                     AND (user_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE \
                          u.id = mail_outbox.user_id AND u.disabled_at IS NULL \
                          AND u.deleted_at IS NULL)) \
                     AND (purpose IS NULL OR EXISTS (SELECT 1 FROM account_codes c WHERE \
                          c.user_id = mail_outbox.user_id AND c.purpose = mail_outbox.purpose \
                          AND c.created_at = mail_outbox.created_at AND c.used_at IS NULL \
                          AND c.expires_at > $2))",
                )
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn mark_mail_reissued(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let n = sqlx::query(
                    "UPDATE mail_outbox SET last_error = 'reissued' WHERE id = $1 \
                     AND failed_at IS NOT NULL AND sent_at IS NULL",
                )
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }
        }
    };
}

pub(crate) use impl_outbox_admin_store;
