//! SQLite, the embedded default: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreResult;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    deny: super::deny::DenyMirror,
    writes: super::WriteGate,
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
            .max_connections(max_connections)
            .min_connections(1)
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            deny: super::deny::DenyMirror::new(true),
            writes: super::WriteGate::new(true),
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
}

super::sql::impl_sql_store!(SqliteStore);
super::audit::impl_audit_store!(SqliteStore);
super::tokens::impl_token_store!(SqliteStore);
super::logout::impl_logout_store!(SqliteStore);
super::admin::impl_admin_store!(SqliteStore);
super::groups::impl_group_store!(SqliteStore);
super::accounts::impl_account_store!(SqliteStore, sqlx::Sqlite);
super::outbox::impl_mail_store!(SqliteStore);
super::profile::impl_profile_store!(SqliteStore);
super::sessions::impl_session_store!(SqliteStore, sqlx::Sqlite);
super::invitations::impl_invitation_store!(SqliteStore);
