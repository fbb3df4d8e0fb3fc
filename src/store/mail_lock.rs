//! One message handed to the transport by one worker at a time, on any number of nodes.
//!
//! A claim (`MailStore::claim_due_mail`) reserves a batch with a lease; leases can expire while a
//! slow SMTP server holds the worker (that is how two nodes once sent 24 mails for 20 sign-ups).
//! So right before sending, the worker also locks the message itself: on PostgreSQL a
//! transaction takes the row with `FOR UPDATE SKIP LOCKED`, holds it for the whole attempt and
//! records the outcome in the same transaction. Another node skips a locked row (in its claims
//! and here), and finds it sent once the lock is gone, whatever the lease says; if the sending
//! node dies, its connection closes, the lock goes with it and the message is retried. SQLite
//! serves one process, whose one worker sends one message at a time: the check that the row is
//! still unsent is enough there.

use async_trait::async_trait;

use super::StoreResult;

/// Held while one message is being delivered; consumed by recording the outcome. Dropping it
/// records nothing (the lock is released; the lease makes the message due again).
#[async_trait]
pub trait MailSendLock: Send {
    /// The transport accepted it.
    async fn sent(self: Box<Self>, now: i64) -> StoreResult<()>;
    /// The attempt failed: as `MailStore::mark_mail_failed`.
    async fn failed(
        self: Box<Self>,
        error: &str,
        next_attempt_at: i64,
        give_up: bool,
        now: i64,
    ) -> StoreResult<()>;
}

/// Implements `MailSendLock` as `$guard` for pool type `$db` and `MailLocking` for `$store`;
/// `$lock` is the clause that locks the row (`FOR UPDATE SKIP LOCKED`, or nothing), `$tx`
/// whether the row stays locked for the attempt.
macro_rules! impl_mail_lock {
    ($store:ty, $guard:ident, $db:ty, $lock:literal, $tx:literal) => {
        pub(crate) struct $guard {
            id: String,
            pool: sqlx::Pool<$db>,
            tx: Option<sqlx::Transaction<'static, $db>>,
        }

        impl $guard {
            async fn finish(
                self: Box<Self>,
                query: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>,
            ) -> $crate::store::StoreResult<()> {
                let me = *self;
                match me.tx {
                    Some(mut tx) => {
                        query.execute(&mut *tx).await?;
                        tx.commit().await?;
                    }
                    None => {
                        query.execute(&me.pool).await?;
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::MailSendLock for $guard {
            async fn sent(self: Box<Self>, now: i64) -> $crate::store::StoreResult<()> {
                let id = self.id.clone();
                let q = sqlx::query($crate::store::outbox::MARK_SENT)
                    .bind(now)
                    .bind(id);
                self.finish(q).await
            }

            async fn failed(
                self: Box<Self>,
                error: &str,
                next_attempt_at: i64,
                give_up: bool,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let id = self.id.clone();
                let q = sqlx::query($crate::store::outbox::MARK_FAILED)
                    .bind(error.to_owned())
                    .bind(next_attempt_at)
                    .bind(give_up.then_some(now))
                    .bind(id)
                    .bind(give_up);
                self.finish(q).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::MailLocking for $store {
            async fn lock_mail_for_send(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<Box<dyn $crate::store::MailSendLock>>> {
                let sql = concat!(
                    "SELECT 1 FROM mail_outbox WHERE id = $1 AND sent_at IS NULL ",
                    "AND failed_at IS NULL ",
                    $lock
                );
                let mut tx = if $tx {
                    Some(self.pool.begin().await?)
                } else {
                    None
                };
                let q = sqlx::query_scalar::<_, i32>(sql).bind(id);
                let row = match tx.as_mut() {
                    Some(tx) => q.fetch_optional(&mut **tx).await?,
                    None => q.fetch_optional(&self.pool).await?,
                };
                Ok(row.map(|_| {
                    Box::new($guard {
                        id: id.to_owned(),
                        pool: self.pool.clone(),
                        tx,
                    }) as Box<dyn $crate::store::MailSendLock>
                }))
            }
        }
    };
}

pub(crate) use impl_mail_lock;

/// Locking one message for its delivery attempt (see the module documentation).
#[async_trait]
pub trait MailLocking: Send + Sync + 'static {
    /// Lock `id` for one attempt: `None` if it is sent, given up, or being sent right now by
    /// another worker (skip it).
    async fn lock_mail_for_send(&self, id: &str) -> StoreResult<Option<Box<dyn MailSendLock>>>;
}
