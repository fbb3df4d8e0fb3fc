//! SQLite, the embedded default: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreResult;

/// Held by a serving process while it runs (an exclusive lock on `<database>.server-lock`,
/// released by the kernel when the process ends, however it ends).
pub struct ServerLock {
    _file: std::fs::File,
}

/// SQLite serves one node. Lock the file beside the database named by `url`; if another
/// server process holds it, log one warning (the CLI does not take it). `None` for an in-memory
/// database, or when the lock file cannot be made.
pub fn lock_for_serving(url: &str) -> Option<ServerLock> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let db = options.get_filename();
    if db.as_os_str().is_empty() || db.as_os_str() == ":memory:" {
        return None;
    }
    let mut name = db.as_os_str().to_owned();
    name.push(".server-lock");
    let path = std::path::PathBuf::from(name);
    let file = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot create the SQLite server lock file");
            return None;
        }
    };
    match file.try_lock() {
        Ok(()) => Some(ServerLock { _file: file }),
        Err(_) => {
            tracing::warn!(
                database = %db.display(),
                "another server process has this SQLite database open: SQLite serves one node \
                 (revocations, caches and workers are per process); use PostgreSQL for several"
            );
            None
        }
    }
}

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite takes one writer at a time, and in WAL mode a connection drops its whole page cache
/// whenever another one has written, so connections beyond two add threads, caches and
/// prepared statements (memory) without adding throughput: `database_max_connections` is capped
/// at this for SQLite. Refresh-token rotation has one more connection of its own (`rotations`).
pub const MAX_CONNECTIONS: u32 = 2;

pub struct SqliteStore {
    pool: SqlitePool,
    deny: super::deny::DenyMirror,
    /// Refresh-token rotations, written by one task on a connection of its own, a batch per
    /// statement (`sqlite_rotations`): concurrent writers would meet the database lock and back
    /// off in SQLite's busy handler, which sleeps, and a rotation waiting for a pooled
    /// connection behind every other request's reads would hold up the rotations behind it.
    rotations: super::sqlite_rotations::RotationWriter,
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
            .connect_with(options.clone())
            .await?;
        let writer = options.connect().await?;
        Ok(Self {
            pool,
            deny: super::deny::DenyMirror::new(super::deny::Mode::InProcess),
            rotations: super::sqlite_rotations::RotationWriter::start(writer),
        })
    }

    /// One process owns the file, and its own writes invalidate the mirror: nothing to hear.
    async fn listen_for_changes(&self, _sink: super::ChangeSink) {}

    /// One process owns the file: nothing to exclude.
    async fn exclusive_housekeeping(&self) -> StoreResult<Option<Box<dyn Send>>> {
        Ok(Some(Box::new(())))
    }

    /// One writer at a time: a claim is one statement, nothing to skip.
    const SKIP_LOCKED: &'static str = "";

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// `begin_write` (`BEGIN IMMEDIATE`) already holds the only write lock.
    const LOCK_SIGNING_KEYS: &'static str = "SELECT 1";

    /// Whether sqlx's migration table exists.
    const HAS_MIGRATIONS_TABLE: &'static str =
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'";

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

    /// Refresh-token rotation: a row inserted into the `refresh_rotations` view, whose trigger
    /// marks the old token used and stores the new one in the same statement, or changes
    /// nothing when the old token is used, revoked or expired or its session has ended
    /// (migrations 0015, 0021). SQLite has one writer at a time and the rotations are written one after the
    /// other (a batch per statement, `sqlite_rotations`), so of concurrent rotations of one token
    /// exactly one succeeds, and a logout either precedes it (refused) or follows it (and
    /// revokes the new token with the rest of the session's).
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        now: i64,
        new: &super::RefreshToken,
    ) -> StoreResult<bool> {
        self.rotations.rotate(old_hash, now, new).await
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
super::mail_lock::impl_mail_lock!(SqliteStore, SqliteMailLock, sqlx::Sqlite, "", false);
super::outbox_admin::impl_outbox_admin_store!(SqliteStore);
super::profile::impl_profile_store!(SqliteStore);
super::sessions::impl_session_store!(SqliteStore, sqlx::Sqlite);
super::invitations::impl_invitation_store!(SqliteStore);
super::keys::impl_key_store!(SqliteStore, sqlx::Sqlite);
super::limits::impl_limiter_store!(SqliteStore, false, "MAX");
super::devices::impl_device_store!(SqliteStore);
super::mfa::impl_mfa_store!(SqliteStore, sqlx::Sqlite);
