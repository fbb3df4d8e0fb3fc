//! PostgreSQL, for production and multi-node deployments.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::StoreResult;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pub(super) pool: PgPool,
    pub(super) deny: super::deny::DenyMirror,
}

impl PgStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self {
            pool,
            deny: super::deny::DenyMirror::new(super::deny::Mode::Listened),
        })
    }

    /// One housekeeping pass at a time across the nodes: an advisory lock held by a
    /// transaction that the guard keeps open (dropped: rolled back, lock released).
    async fn exclusive_housekeeping(&self) -> StoreResult<Option<Box<dyn Send>>> {
        /// The advisory lock's key: "portcull" in ASCII.
        const HOUSEKEEPING_LOCK: i64 = 0x706f_7274_6375_6c6c;
        let mut tx = self.pool.begin().await?;
        let (won,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1)")
            .bind(HOUSEKEEPING_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        Ok(won.then(|| Box::new(tx) as Box<dyn Send>))
    }

    /// Claims skip rows another worker holds rather than wait for them.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// Serialises the first key set of concurrently starting nodes (`KeyStore`): the mode
    /// conflicts with itself and lets readers go on.
    const LOCK_SIGNING_KEYS: &'static str = "LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE";

    /// Whether sqlx's migration table exists in the schema of the search path.
    const HAS_MIGRATIONS_TABLE: &'static str = "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = '_sqlx_migrations' \
         AND schemaname = current_schema()";

    /// A write transaction (PostgreSQL locks rows; a plain `BEGIN` is enough).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// A user's roles and groups, each a JSON array in name order (`FullUserRow`).
    const USER_ROLES_GROUPS: &'static str = "\
        (SELECT coalesce(json_agg(r.role ORDER BY r.role), '[]')::text FROM user_roles r \
          WHERE r.user_id = users.id) AS roles_json, \
        (SELECT coalesce(json_agg(g.name ORDER BY g.name), '[]')::text FROM groups g \
          JOIN group_members m ON m.group_id = g.id WHERE m.user_id = users.id) AS groups_json";

    /// Refresh-token rotation in one statement, so one round trip and one commit. It first
    /// locks the session's row (`s`), in the order a logout takes its locks (session, then
    /// refresh tokens by trigger): a logout committing meanwhile is waited for and its
    /// `ended_at` seen, so the rotation is refused; a logout that comes after waits for this
    /// statement and then revokes the new token with the session's others. A session purged
    /// after expiry (offline access) does not stop the rotation. The old token is marked used
    /// only if still unused, unrevoked and unexpired (`old`; row locks make one of concurrent
    /// rotations win) and the new one is inserted only then.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        now: i64,
        new: &super::RefreshToken,
    ) -> StoreResult<bool> {
        let done = super::tokens::bind_refresh!(
            sqlx::query(
                "WITH s AS (UPDATE sessions SET sid = sid WHERE sid = $5 RETURNING ended_at), \
                 old AS (UPDATE refresh_tokens SET used_at = $17 WHERE token_hash = $16 \
                   AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $17 \
                   AND family_expires_at > $17 \
                   AND NOT EXISTS (SELECT 1 FROM s WHERE s.ended_at IS NOT NULL) RETURNING 1) \
                 INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, sid, scope, \
                 auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, \
                 access_jti, access_exp, amr) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 FROM old",
            ),
            new
        )
        .bind(old_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(super::map_unique)?;
        Ok(done.rows_affected() == 1)
    }
}

super::sql::impl_sql_store!(PgStore);
super::audit::impl_audit_store!(PgStore);
super::tokens::impl_token_store!(PgStore);
super::logout::impl_logout_store!(PgStore);
super::admin::impl_admin_store!(PgStore);
super::groups::impl_group_store!(PgStore);
super::accounts::impl_account_store!(PgStore, sqlx::Postgres);
super::outbox::impl_mail_store!(PgStore);
super::mail_lock::impl_mail_lock!(
    PgStore,
    PgMailLock,
    sqlx::Postgres,
    "FOR UPDATE SKIP LOCKED",
    true
);
super::outbox_admin::impl_outbox_admin_store!(PgStore);
super::profile::impl_profile_store!(PgStore);
super::sessions::impl_session_store!(PgStore, sqlx::Postgres);
super::invitations::impl_invitation_store!(PgStore);
super::keys::impl_key_store!(PgStore, sqlx::Postgres);
super::limits::impl_limiter_store!(PgStore, true, "GREATEST");
super::devices::impl_device_store!(PgStore);
super::mfa::impl_mfa_store!(PgStore, sqlx::Postgres);
