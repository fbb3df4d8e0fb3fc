//! Signing keys and server secrets kept in the database (`crate::keyring`), each sealed with the
//! key-encryption key before it gets here: this layer stores and returns opaque sealed text.
//!
//! The first key set is written once however many nodes start at the same moment:
//! `insert_first_signing_keys` takes a table lock (PostgreSQL) or the write lock (SQLite,
//! `BEGIN IMMEDIATE`) and inserts only into an empty table.

use async_trait::async_trait;

use super::StoreResult;

/// A signing key as stored: `private_key` is sealed (see `crypto::Kek`).
#[derive(Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub private_key: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored signing key.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
    /// The stored `kid`s, sorted: a cheap check for a change (a rotation or a prune).
    async fn signing_key_ids(&self) -> StoreResult<Vec<String>>;
    /// Insert `keys` only if no signing key is stored, atomically with respect to other
    /// processes doing the same. Returns whether they were inserted.
    async fn insert_first_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<bool>;
    async fn insert_signing_key(&self, key: &StoredKey) -> StoreResult<()>;
    /// Returns how many were deleted.
    async fn delete_signing_keys(&self, kids: &[String]) -> StoreResult<u64>;
    /// The sealed secret `name`; `sealed` is stored first when there is none (the first writer
    /// wins, so concurrent starts agree on one value).
    async fn server_secret(&self, name: &str, sealed: &str, now: i64) -> StoreResult<String>;
}

macro_rules! impl_key_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $store {
            async fn signing_keys(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::StoredKey>> {
                Ok(sqlx::query_as(
                    "SELECT kid, alg, created_at, activates_at, private_key FROM signing_keys \
                     ORDER BY kid",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn signing_key_ids(&self) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT kid FROM signing_keys ORDER BY kid")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|(k,)| k).collect())
            }

            async fn insert_first_signing_keys(
                &self,
                keys: &[$crate::store::StoredKey],
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query(Self::LOCK_SIGNING_KEYS)
                    .execute(&mut *tx)
                    .await?;
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys")
                    .fetch_one(&mut *tx)
                    .await?;
                if count > 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                for key in keys {
                    Self::insert_key(&mut tx, key).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_signing_key(
                &self,
                key: &$crate::store::StoredKey,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_key(&mut tx, key).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_signing_keys(
                &self,
                kids: &[String],
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let mut deleted = 0;
                for kid in kids {
                    deleted += sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                        .bind(kid)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(deleted)
            }

            async fn server_secret(
                &self,
                name: &str,
                sealed: &str,
                now: i64,
            ) -> $crate::store::StoreResult<String> {
                sqlx::query(
                    "INSERT INTO server_secrets (name, sealed, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(sealed)
                .bind(now)
                .execute(&self.pool)
                .await?;
                let (stored,): (String,) =
                    sqlx::query_as("SELECT sealed FROM server_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_one(&self.pool)
                        .await?;
                Ok(stored)
            }
        }

        impl $store {
            async fn insert_key(
                tx: &mut sqlx::Transaction<'_, $db>,
                key: &$crate::store::StoredKey,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, created_at, activates_at, private_key) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&key.kid)
                .bind(&key.alg)
                .bind(key.created_at)
                .bind(key.activates_at)
                .bind(&key.private_key)
                .execute(&mut **tx)
                .await
                .map_err($crate::store::map_unique)?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_key_store;
