//! The outbox of mail and text messages: rows queued in the same transaction as the change
//! that sends them, claimed and delivered by the worker in `crate::email`.

use async_trait::async_trait;

use super::StoreResult;

/// How an outbox row is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An e-mail (subject, plain text and HTML parts) to an address.
    Email,
    /// A text message (`body_text`) to an E.164 number, through the `SmsSender`.
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// A rendered e-mail (or text message) for the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub channel: Channel,
    /// Not delivered after this time (the code it carries has expired); `None`: no limit.
    pub expires_at: Option<i64>,
}

impl NewMail {
    /// A text message to `to` (E.164) carrying a code that expires at `expires_at`: queued like
    /// mail, in the same transaction as the code, and delivered by the same worker.
    pub fn sms(to: &str, text: String, expires_at: i64) -> Self {
        Self {
            recipient: to.to_owned(),
            subject: String::new(),
            body_text: text,
            body_html: String::new(),
            channel: Channel::Sms,
            expires_at: Some(expires_at),
        }
    }
}

impl std::fmt::Debug for NewMail {
    // Bodies hold links and codes: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An outbox row as the delivery worker sees it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
    /// `email` or `sms` (see `Channel`).
    pub channel: String,
    pub expires_at: Option<i64>,
}

impl OutboxMail {
    pub fn is_sms(&self) -> bool {
        self.channel == Channel::Sms.as_str()
    }
}

impl std::fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMail")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .field("attempts", &self.attempts)
            .field("sent_at", &self.sent_at)
            .field("failed_at", &self.failed_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, recipient, subject, body_text, body_html, created_at, attempts, next_attempt_at, sent_at, failed_at, last_error, channel, expires_at";

/// `mark_mail_sent` (and `MailSendLock::sent`): $1 now, $2 id.
pub(crate) const MARK_SENT: &str = "UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1, \
    last_error = NULL, failed_at = NULL, \
    body_text = CASE WHEN channel = 'sms' THEN '' ELSE body_text END WHERE id = $2";

/// `mark_mail_failed` (and `MailSendLock::failed`): $1 error, $2 next attempt, $3 given up at,
/// $4 id, $5 give up.
pub(crate) const MARK_FAILED: &str = "UPDATE mail_outbox SET attempts = attempts + 1, \
    last_error = $1, next_attempt_at = $2, failed_at = $3, \
    body_text = CASE WHEN channel = 'sms' AND $5 THEN '' ELSE body_text END \
    WHERE id = $4 AND failed_at IS NULL";

/// The outbox, for the delivery worker and for any feature that sends mail.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Queue one mail on its own (account changes queue theirs inside their own transaction).
    async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> StoreResult<String>;
    /// Claim up to `limit` due mails: each returned row's next attempt is pushed `lease` seconds
    /// ahead so another worker does not send it at the same time.
    async fn claim_due_mail(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>>;
    /// Push the claim on `ids` from `held_until` to `until`, for the rows still held (not sent,
    /// not given up, and not claimed since by anyone else): the live worker's heartbeat.
    async fn renew_mail_claims(&self, ids: &[&str], held_until: i64, until: i64)
    -> StoreResult<()>;
    /// The transport accepted it (even if it was superseded or expired while in flight).
    async fn mark_mail_sent(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Record a failed attempt: retry at `next_attempt_at`, or give up when `give_up`. A row
    /// given up while the attempt was under way (superseded, expired) stays given up.
    async fn mark_mail_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        give_up: bool,
        now: i64,
    ) -> StoreResult<()>;
    /// Every outbox row for `recipient`, oldest first (tests, support).
    async fn mail_for(&self, recipient: &str) -> StoreResult<Vec<OutboxMail>>;
    /// Delete delivered or abandoned mail older than `before`.
    async fn purge_mail_before(&self, before: i64) -> StoreResult<u64>;
    /// Blank the bodies of mail delivered or abandoned before `before`: they carry one-time
    /// codes and links in the clear, which must not outlive their delivery. Returns rows changed.
    async fn scrub_mail_bodies(&self, before: i64) -> StoreResult<u64>;
}

/// Implements `MailStore`; needs the account store's `insert_mail` (`impl_account_store!`) and
/// `Self::SKIP_LOCKED` (the dialect's clause that skips rows another transaction holds).
macro_rules! impl_mail_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::MailStore for $store {
            async fn enqueue_mail(
                &self,
                mail: &$crate::store::NewMail,
                now: i64,
            ) -> $crate::store::StoreResult<String> {
                Self::insert_mail(&self.pool, mail, None, now).await
            }

            async fn claim_due_mail(
                &self,
                now: i64,
                lease: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxMail>> {
                // Rows whose code has expired are given up, and an SMS text is blanked: it
                // must not outlive its use.
                sqlx::query(
                    "UPDATE mail_outbox SET failed_at = $1, last_error = 'expired', \
                     body_text = CASE WHEN channel = 'sms' THEN '' ELSE body_text END \
                     WHERE sent_at IS NULL AND failed_at IS NULL AND expires_at <= $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                // One statement: rows another worker holds (`SKIP_LOCKED`, PostgreSQL) are
                // skipped, not waited for, and each row goes to one claimer.
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE mail_outbox SET next_attempt_at = $1 + $3 WHERE id IN (\
                     SELECT id FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $1) \
                     AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2{}) \
                     AND next_attempt_at <= $1 AND sent_at IS NULL AND failed_at IS NULL \
                     RETURNING {}",
                    Self::SKIP_LOCKED,
                    $crate::store::outbox::OUTBOX_COLUMNS
                ));
                let mut claimed: Vec<$crate::store::OutboxMail> = sqlx::query_as(sql)
                    .bind(now)
                    .bind(limit)
                    .bind(lease)
                    .fetch_all(&self.pool)
                    .await?;
                claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(claimed)
            }

            async fn renew_mail_claims(
                &self,
                ids: &[&str],
                held_until: i64,
                until: i64,
            ) -> $crate::store::StoreResult<()> {
                // A row another worker holds is no longer ours: skipped, not waited for.
                let sql = format!(
                    "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id IN (\
                     SELECT id FROM mail_outbox WHERE id = $2 AND next_attempt_at = $3 \
                     AND sent_at IS NULL AND failed_at IS NULL{})",
                    Self::SKIP_LOCKED
                );
                for id in ids {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(until)
                    .bind(*id)
                    .bind(held_until)
                    .execute(&self.pool)
                    .await?;
                }
                Ok(())
            }

            async fn mark_mail_sent(&self, id: &str, now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::outbox::MARK_SENT)
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mark_mail_failed(
                &self,
                id: &str,
                error: &str,
                next_attempt_at: i64,
                give_up: bool,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query($crate::store::outbox::MARK_FAILED)
                .bind(error)
                .bind(next_attempt_at)
                .bind(give_up.then_some(now))
                .bind(id)
                .bind(give_up)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mail_for(
                &self,
                recipient: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::OutboxMail>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM mail_outbox WHERE recipient = $1 ORDER BY id",
                    $crate::store::outbox::OUTBOX_COLUMNS
                ));
                Ok(sqlx::query_as(sql).bind(recipient).fetch_all(&self.pool).await?)
            }

            async fn scrub_mail_bodies(&self, before: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE mail_outbox SET body_text = '', body_html = '' \
                     WHERE ((sent_at IS NOT NULL AND sent_at < $1) \
                     OR (failed_at IS NOT NULL AND failed_at < $1)) \
                     AND (body_text <> '' OR body_html <> '')",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn purge_mail_before(&self, before: i64) -> $crate::store::StoreResult<u64> {
                let mut n = sqlx::query(
                    "DELETE FROM mail_outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) \
                     AND created_at < $1",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
                n += sqlx::query("DELETE FROM account_codes WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_mail_store;
