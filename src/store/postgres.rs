//! PostgreSQL, for production and multi-node deployments.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::StoreResult;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    deny: super::deny::DenyMirror,
    writes: super::WriteGate,
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
            deny: super::deny::DenyMirror::new(false),
            writes: super::WriteGate::new(false),
        })
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// A write transaction (PostgreSQL locks rows; a plain `BEGIN` is enough).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
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
super::profile::impl_profile_store!(PgStore);
super::sessions::impl_session_store!(PgStore, sqlx::Postgres);
super::invitations::impl_invitation_store!(PgStore);
