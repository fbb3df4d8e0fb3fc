//! Logout storage: which clients each session signed into, and the queue of Back-Channel Logout
//! deliveries (OIDC Back-Channel Logout 1.0). A logout ends the session and queues its
//! deliveries in one transaction, so a delivery can never be lost between the two; a worker
//! claims due deliveries with a lease, so two nodes never send the same one at once.

use async_trait::async_trait;

use super::StoreResult;

/// A logout token waiting to be delivered to one client. No token is stored: the worker signs
/// a fresh one from these claims at each attempt (`id` is its `jti`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub id: String,
    pub client_id: String,
    pub sid: String,
    pub sub: String,
    /// Attempts made so far, this one included once claimed.
    pub attempts: i64,
    pub created_at: i64,
}

/// Which session to end: the one a browser's cookie names, or one of a user's sessions by `sid`
/// (the account page's per-session sign-out).
#[derive(Debug, Clone, Copy)]
pub enum SessionRef<'a> {
    Cookie { id_hash: &'a str },
    Sid { user_id: &'a str, sid: &'a str },
}

#[async_trait]
pub trait LogoutStore: Send + Sync + 'static {
    /// Remember that the session `sid` signed into `client_id` (idempotent).
    async fn record_session_client(&self, sid: &str, client_id: &str, now: i64) -> StoreResult<()>;
    /// Clients the session `sid` signed into, sorted.
    async fn session_clients(&self, sid: &str) -> StoreResult<Vec<String>>;
    /// End the live session `which` names and queue `deliveries` in one transaction. Returns
    /// `false` (and queues nothing) when the session was not live.
    async fn end_session_and_queue(
        &self,
        which: SessionRef<'_>,
        now: i64,
        deliveries: &[Delivery],
    ) -> StoreResult<bool>;
    /// Revoke every grant of `user_id` (refresh tokens, and the access tokens issued with them),
    /// end every live session and, in the same transaction, queue a delivery for each client with
    /// a `backchannel_logout_uri` that one of them signed into. `new_id` makes
    /// each delivery's id (the logout token's `jti`). Returns the `sid`s ended.
    async fn end_user_sessions_and_queue(
        &self,
        user_id: &str,
        now: i64,
        new_id: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<Vec<String>>;
    /// Claim up to `limit` deliveries due at `now`: each gets one more attempt and is hidden
    /// until `lease_until` (a crashed sender's claim expires and the delivery is retried).
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>>;
    /// Delivered, or given up: forget it.
    async fn finish_delivery(&self, id: &str) -> StoreResult<()>;
    /// Try again at `next_attempt_at`.
    async fn retry_delivery(&self, id: &str, next_attempt_at: i64, error: &str) -> StoreResult<()>;
    /// Deliveries still queued (for operators and tests).
    async fn pending_deliveries(&self) -> StoreResult<i64>;
}

macro_rules! impl_logout_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::LogoutStore for $store {
            async fn record_session_client(
                &self,
                sid: &str,
                client_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO session_clients (sid, client_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (sid, client_id) DO NOTHING",
                )
                .bind(sid)
                .bind(client_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_clients(
                &self,
                sid: &str,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT client_id FROM session_clients WHERE sid = $1 ORDER BY client_id",
                )
                .bind(sid)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn end_session_and_queue(
                &self,
                which: $crate::store::SessionRef<'_>,
                now: i64,
                deliveries: &[$crate::store::Delivery],
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::SessionRef;
                let mut tx = self.begin_write().await?;
                let update = match which {
                    SessionRef::Cookie { id_hash } => sqlx::query(
                        "UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
                    )
                    .bind(now)
                    .bind(id_hash),
                    SessionRef::Sid { user_id, sid } => sqlx::query(
                        "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND sid = $3 \
                         AND ended_at IS NULL",
                    )
                    .bind(now)
                    .bind(user_id)
                    .bind(sid),
                };
                let ended = update.execute(&mut *tx).await?.rows_affected() > 0;
                if !ended {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for d in deliveries {
                    sqlx::query(
                        "INSERT INTO backchannel_deliveries \
                         (id, client_id, sid, sub, attempts, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, 0, $5, $5)",
                    )
                    .bind(&d.id)
                    .bind(&d.client_id)
                    .bind(&d.sid)
                    .bind(&d.sub)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                // The session's sid was deny-listed by the trigger of migration 0010.
                self.deny.invalidate();
                Ok(true)
            }

            async fn end_user_sessions_and_queue(
                &self,
                user_id: &str,
                now: i64,
                new_id: &(dyn Fn() -> String + Send + Sync),
            ) -> $crate::store::StoreResult<Vec<String>> {
                // The same steps as a password change (`SessionStore::change_password`): every
                // grant revoked, every session ended, a delivery queued per client.
                let mut tx = self.begin_write().await?;
                let sids = Self::end_all_sessions_in(&mut tx, user_id, now, Some(new_id)).await?;
                tx.commit().await?;
                self.deny.invalidate();
                Ok(sids)
            }

            async fn claim_deliveries(
                &self,
                now: i64,
                lease_until: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Delivery>> {
                // One statement: a row is claimed by one node only, and rows another node is
                // claiming (`SKIP_LOCKED`, PostgreSQL) are skipped rather than waited for.
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE backchannel_deliveries SET next_attempt_at = $1, attempts = attempts + 1 \
                     WHERE id IN (SELECT id FROM backchannel_deliveries WHERE next_attempt_at <= $2 \
                     ORDER BY next_attempt_at, id LIMIT $3{}) AND next_attempt_at <= $2 \
                     RETURNING id, client_id, sid, sub, attempts, created_at",
                    Self::SKIP_LOCKED
                ));
                let claimed: Vec<$crate::store::Delivery> = sqlx::query_as(sql)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(claimed)
            }

            async fn finish_delivery(&self, id: &str) -> $crate::store::StoreResult<()> {
                sqlx::query("DELETE FROM backchannel_deliveries WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn retry_delivery(
                &self,
                id: &str,
                next_attempt_at: i64,
                error: &str,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE backchannel_deliveries SET next_attempt_at = $1, last_error = $2 WHERE id = $3",
                )
                .bind(next_attempt_at)
                .bind(error)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn pending_deliveries(&self) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM backchannel_deliveries")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_logout_store;
