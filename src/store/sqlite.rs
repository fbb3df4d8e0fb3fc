//! SQLite, the embedded default: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreResult;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite takes one writer at a time, and in WAL mode a connection drops its whole page cache
/// whenever another one has written, so connections beyond two add threads, caches and
/// prepared statements (memory) without adding throughput: `database_max_connections` is capped
/// at this for SQLite.
pub const MAX_CONNECTIONS: u32 = 2;

pub struct SqliteStore {
    pool: SqlitePool,
    deny: super::deny::DenyMirror,
    /// Serialises refresh-token rotations inside the process: concurrent writers would meet
    /// the database lock and back off in SQLite's busy handler, which sleeps.
    writes: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Open (creating the file and its folder if needed) the database at `url`.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // A small page cache per connection keeps the idle footprint small.
            .pragma("cache_size", "-512");
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.min(MAX_CONNECTIONS))
            .min_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            deny: super::deny::DenyMirror::new(true),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front, waiting in the busy
    /// handler if another connection holds it. A deferred `BEGIN` would take it only at the
    /// first write, and if another connection committed after this transaction's first read,
    /// SQLite could not upgrade the stale snapshot: it fails at once with SQLITE_BUSY(_SNAPSHOT)
    /// instead of waiting.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A user's roles and groups, each a JSON array in name order (`FullUserRow`).
    const USER_ROLES_GROUPS: &'static str = "\
        (SELECT json_group_array(r.role ORDER BY r.role) FROM user_roles r WHERE r.user_id = users.id) AS roles_json, \
        (SELECT json_group_array(g.name ORDER BY g.name) FROM groups g JOIN group_members m ON m.group_id = g.id \
          WHERE m.user_id = users.id) AS groups_json";

    /// Refresh-token rotation: one INSERT into the `refresh_rotations` view, whose trigger marks
    /// the old token used and stores the new one in the same statement (migration 0015), or
    /// aborts, changing nothing, when the old token is used, revoked or expired or its session
    /// has ended. A statement is its own transaction, and SQLite has one writer at a time, so
    /// of concurrent rotations of one token exactly one succeeds, and a logout either precedes
    /// it (refused) or follows it (and revokes the new token with the rest of the session's).
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        now: i64,
        new: &super::RefreshToken,
    ) -> StoreResult<bool> {
        let _gate = self.writes.lock().await;
        let insert = super::tokens::bind_refresh!(
            sqlx::query(
                "INSERT INTO refresh_rotations (token_hash, family_id, client_id, user_id, sid, \
                 scope, auth_time, created_at, expires_at, family_expires_at, used_at, revoked_at, \
                 access_jti, access_exp, amr, old_hash, now) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            ),
            new
        )
        .bind(old_hash)
        .bind(now);
        match insert.execute(&self.pool).await {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.message().contains("refresh token not rotated") => {
                Ok(false)
            }
            Err(e) => Err(super::map_unique(e)),
        }
    }
}

super::sql::impl_sql_store!(SqliteStore);
super::audit::impl_audit_store!(SqliteStore);
super::tokens::impl_token_store!(SqliteStore);
super::logout::impl_logout_store!(SqliteStore);
super::admin::impl_admin_store!(SqliteStore);
super::groups::impl_group_store!(SqliteStore);
super::accounts::impl_account_store!(SqliteStore, sqlx::Sqlite);
super::outbox::impl_mail_store!(SqliteStore);
super::outbox_admin::impl_outbox_admin_store!(SqliteStore);
super::profile::impl_profile_store!(SqliteStore);
super::sessions::impl_session_store!(SqliteStore, sqlx::Sqlite);
super::invitations::impl_invitation_store!(SqliteStore);
