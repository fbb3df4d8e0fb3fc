//! Known devices: browsers that signed in, each holding a device cookie whose random secret is
//! stored only as its SHA-256. One device can carry several accounts (`device_users`). Sign-in
//! throttling lets a device an account has signed in on before past the failures others caused
//! (see `accounts::throttle`).

use async_trait::async_trait;

use super::StoreResult;

/// A device as a successful sign-in records it.
#[derive(Clone)]
pub struct SeenDevice<'a> {
    /// A new id, used only when the device is not stored yet.
    pub new_id: &'a str,
    pub secret_hash: &'a str,
    pub user_id: &'a str,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Whether the unexpired device with secret `secret_hash` has signed in to `user_id`.
    async fn device_knows(&self, secret_hash: &str, user_id: &str, now: i64) -> StoreResult<bool>;

    /// Whether an unexpired device has secret `secret_hash`.
    async fn device_exists(&self, secret_hash: &str, now: i64) -> StoreResult<bool>;

    /// Record a sign-in on the device (stored if new; last seen, expiry, user agent and address
    /// updated) and link it to the user, in one transaction. Returns the device's id.
    async fn remember_device(&self, seen: &SeenDevice<'_>) -> StoreResult<String>;

    /// Delete devices that expired at or before `now` (their links go with them).
    async fn purge_devices(&self, now: i64) -> StoreResult<u64>;
}

macro_rules! impl_device_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::DeviceStore for $store {
            async fn device_knows(
                &self,
                secret_hash: &str,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT d.id FROM devices d JOIN device_users u ON u.device_id = d.id \
                     WHERE d.secret_hash = $1 AND u.user_id = $2 AND d.expires_at > $3",
                )
                .bind(secret_hash)
                .bind(user_id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }

            async fn device_exists(
                &self,
                secret_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM devices WHERE secret_hash = $1 AND expires_at > $2",
                )
                .bind(secret_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }

            async fn remember_device(
                &self,
                seen: &$crate::store::SeenDevice<'_>,
            ) -> $crate::store::StoreResult<String> {
                let mut tx = self.begin_write().await?;
                let (id,): (String,) = sqlx::query_as(
                    "INSERT INTO devices (id, secret_hash, created_at, last_seen_at, expires_at, \
                     user_agent, last_ip) VALUES ($1, $2, $3, $3, $4, $5, $6) \
                     ON CONFLICT (secret_hash) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
                     expires_at = excluded.expires_at, user_agent = excluded.user_agent, \
                     last_ip = excluded.last_ip RETURNING id",
                )
                .bind(seen.new_id)
                .bind(seen.secret_hash)
                .bind(seen.now)
                .bind(seen.expires_at)
                .bind(seen.user_agent)
                .bind(seen.ip)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO device_users (device_id, user_id, first_seen_at, last_seen_at) \
                     VALUES ($1, $2, $3, $3) ON CONFLICT (device_id, user_id) \
                     DO UPDATE SET last_seen_at = excluded.last_seen_at",
                )
                .bind(&id)
                .bind(seen.user_id)
                .bind(seen.now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn purge_devices(&self, now: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM devices WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}
pub(crate) use impl_device_store;
