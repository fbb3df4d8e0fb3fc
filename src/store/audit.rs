//! The audit trail's storage: append and query, never update. Retention is the only delete.

use async_trait::async_trait;

use super::StoreResult;

/// One audit entry as stored. `details` is a JSON object that never holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct AuditRecord {
    /// UUIDv7: time-ordered, so it doubles as the pagination cursor.
    pub id: String,
    /// Seconds since the Unix epoch (UTC).
    pub at: i64,
    /// Who acted: a user id, `client:<id>` for a client, or `None` for an anonymous party.
    pub actor: Option<String>,
    pub action: String,
    /// What was acted on (a user id, a client id, a group id...).
    pub target: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    pub details: String,
}

/// Filters for listing the trail, newest first. `user` matches actor or target.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: Option<String>,
    pub client_id: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Return entries strictly older than this id (the previous page's last id).
    pub before: Option<String>,
    pub limit: i64,
}

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, record: &AuditRecord) -> StoreResult<()>;
    async fn query_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
    /// Retention: delete entries older than `before`; returns rows removed.
    async fn purge_audit_before(&self, before: i64) -> StoreResult<u64>;
}

pub(crate) const AUDIT_COLUMNS: &str =
    "id, at, actor, action, target, client_id, ip, user_agent, outcome, details";

macro_rules! impl_audit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(
                &self,
                r: &$crate::store::AuditRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_log (id, at, actor, action, target, client_id, ip, user_agent, outcome, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&r.id)
                .bind(r.at)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.target)
                .bind(&r.client_id)
                .bind(&r.ip)
                .bind(&r.user_agent)
                .bind(&r.outcome)
                .bind(&r.details)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn query_audit(
                &self,
                q: &$crate::store::AuditQuery,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AuditRecord>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM audit_log WHERE \
                     ($1 IS NULL OR actor = $1 OR target = $1) AND ($2 IS NULL OR client_id = $2) \
                     AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR outcome = $4) \
                     AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) \
                     AND ($7 IS NULL OR id < $7) ORDER BY id DESC LIMIT $8",
                    $crate::store::audit::AUDIT_COLUMNS
                ));
                Ok(sqlx::query_as(sql)
                    .bind(&q.user)
                    .bind(&q.client_id)
                    .bind(&q.action)
                    .bind(&q.outcome)
                    .bind(q.from)
                    .bind(q.to)
                    .bind(&q.before)
                    .bind(q.limit.clamp(1, 1000))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn purge_audit_before(&self, before: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }
    };
}

pub(crate) use impl_audit_store;
