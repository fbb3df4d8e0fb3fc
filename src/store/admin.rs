//! Storage for administration: the user list with search, filters and keyset pagination,
//! profile edits, disable / soft delete / restore / purge, roles, the client list, and the
//! dashboard's counts. Groups and their members are in `groups.rs`, the audit trail in
//! `audit.rs`.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreResult;
use crate::domain::{Client, NewUser};

/// A user as an administrator sees it: every stored field except the password hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct AdminUser {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub picture: Option<String>,
    pub locale: Option<String>,
    /// Custom attributes: a JSON object, as text.
    pub attributes: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// Whether a password is set (the hash itself never leaves the store this way). An invited
    /// user has none until they accept the invitation.
    pub password_set: bool,
}

pub(crate) const ADMIN_USER_COLUMNS: &str = "id, email, email_verified, name, given_name, family_name, phone_number, phone_number_verified, picture, locale, attributes, created_at, updated_at, disabled_at, deleted_at, password_hash IS NOT NULL AS password_set";

/// A `LIKE … ESCAPE '\'` pattern for "contains `q`", case-insensitive (compare it with
/// `LOWER(column)`). `%`, `_` and `\` in `q` are escaped, so they match only themselves. The same
/// SQL works on SQLite and PostgreSQL.
pub(crate) fn contains_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The editable profile of a user, written as a whole (the service merges a patch into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    pub email: crate::domain::Email,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub attributes: String,
}

/// Filters for the user list, sorted by e-mail. `None` means "any", except `deleted`, where
/// `None` means "not deleted".
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of e-mail, name or phone number.
    pub q: Option<String>,
    pub verified: Option<bool>,
    pub disabled: Option<bool>,
    pub deleted: Option<bool>,
    /// Only members of this group (id).
    pub group_id: Option<String>,
    /// Keyset cursor: users whose e-mail sorts after this one (the last e-mail of the previous page).
    pub after: Option<String>,
    pub limit: i64,
}

/// Counts for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub users: i64,
    pub active_sessions: i64,
    pub clients: i64,
}

/// Sign-ins of one UTC day (`day` = days since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoginDay {
    pub day: i64,
    pub success: i64,
    pub failure: i64,
}

#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    // Users
    async fn list_users(&self, filter: &UserFilter) -> StoreResult<Vec<AdminUser>>;
    /// A user by id, deleted or not.
    async fn admin_find_user(&self, id: &str) -> StoreResult<Option<AdminUser>>;
    async fn user_roles(&self, user_id: &str) -> StoreResult<Vec<String>>;
    /// Write the profile; `Conflict` when the e-mail belongs to another account.
    async fn update_user_profile(
        &self,
        id: &str,
        profile: &UserProfile,
        now: i64,
    ) -> StoreResult<bool>;
    /// Set or clear `disabled_at`; returns whether the user exists.
    async fn set_user_disabled(
        &self,
        id: &str,
        disabled_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Set or clear `deleted_at`; returns whether the user exists.
    async fn set_user_deleted(
        &self,
        id: &str,
        deleted_at: Option<i64>,
        now: i64,
    ) -> StoreResult<bool>;
    /// Remove the user row and everything that cascades from it.
    async fn purge_user(&self, id: &str) -> StoreResult<bool>;
    async fn add_role(&self, user_id: &str, role: &str) -> StoreResult<()>;
    /// Remove a role. For `admin` the removal happens only if another active admin remains, in
    /// the same statement; `Ok(false)` then means "refused: last admin" or "did not have it".
    async fn remove_role(&self, user_id: &str, role: &str) -> StoreResult<bool>;
    /// Disable (`delete` false) or soft-delete (`delete` true) a user, unless that would leave no
    /// active admin: the check and the write happen under the same lock as `remove_role`.
    /// Returns false when refused. The timestamp already set, if any, is kept.
    async fn deactivate_user(&self, id: &str, delete: bool, now: i64) -> StoreResult<bool>;
    /// Active (not disabled, not deleted) admins other than `except`.
    async fn count_other_admins(&self, except: &str) -> StoreResult<i64>;
    /// Insert many users at once (tests and imports); e-mails must be new.
    async fn bulk_create_users(&self, users: &[NewUser], now: i64) -> StoreResult<u64>;

    // Clients
    /// Clients sorted by name then id; `q` matches id or name; `after` is `(name, id)`.
    async fn list_clients_page(
        &self,
        q: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> StoreResult<Vec<Client>>;
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;

    // Dashboard
    async fn counts(&self, now: i64) -> StoreResult<Counts>;
    /// Login audit entries per UTC day since `since`, oldest first (days without any absent).
    async fn login_days(&self, since: i64) -> StoreResult<Vec<LoginDay>>;
}

macro_rules! impl_admin_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AdminStore for $store {
            async fn list_users(
                &self,
                f: &$crate::store::UserFilter,
            ) -> $crate::store::StoreResult<Vec<$crate::store::AdminUser>> {
                // Only the filters in use go into the SQL, so each query shape gets a plan that
                // can walk the e-mail index in order (keyset pagination) instead of a generic one.
                let mut sql = format!(
                    "SELECT {} FROM users u WHERE u.deleted_at IS {}",
                    $crate::store::admin::ADMIN_USER_COLUMNS,
                    if f.deleted.unwrap_or(false) { "NOT NULL" } else { "NULL" }
                );
                let mut n = 0;
                let mut next = || {
                    n += 1;
                    n
                };
                let q = f.q.as_deref().map($crate::store::admin::contains_pattern);
                // The canonical form too, so a width or case variant of an address finds it.
                let folded = f.q.as_deref().map(|q| {
                    $crate::store::admin::contains_pattern(&$crate::domain::Email::fold(q))
                });
                if q.is_some() {
                    let i = next();
                    let j = next();
                    sql.push_str(&format!(
                        " AND (LOWER(u.email) LIKE ${i} ESCAPE '\\' OR LOWER(u.name) LIKE ${i} ESCAPE '\\' \
                         OR u.phone_number LIKE ${i} ESCAPE '\\' OR u.email_canonical LIKE ${j} ESCAPE '\\')"
                    ));
                }
                if f.verified.is_some() {
                    sql.push_str(&format!(" AND u.email_verified = ${}", next()));
                }
                match f.disabled {
                    Some(true) => sql.push_str(" AND u.disabled_at IS NOT NULL"),
                    Some(false) => sql.push_str(" AND u.disabled_at IS NULL"),
                    None => {}
                }
                if f.group_id.is_some() {
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM group_members m WHERE m.group_id = ${} AND m.user_id = u.id)",
                        next()
                    ));
                }
                if f.after.is_some() {
                    sql.push_str(&format!(" AND u.email > ${}", next()));
                }
                sql.push_str(&format!(" ORDER BY u.email LIMIT ${}", next()));
                let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
                if let (Some(q), Some(folded)) = (q, folded) {
                    query = query.bind(q).bind(folded);
                }
                if let Some(v) = f.verified {
                    query = query.bind(v);
                }
                if let Some(g) = &f.group_id {
                    query = query.bind(g.clone());
                }
                if let Some(a) = &f.after {
                    query = query.bind(a.clone());
                }
                Ok(query
                    .bind(f.limit.clamp(1, 500))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn admin_find_user(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::AdminUser>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM users WHERE id = $1",
                    $crate::store::admin::ADMIN_USER_COLUMNS
                ));
                Ok(sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?)
            }

            async fn user_roles(&self, user_id: &str) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String,)> =
                    sqlx::query_as("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                        .bind(user_id)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn update_user_profile(
                &self,
                id: &str,
                p: &$crate::store::UserProfile,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET email = $1, email_verified = $2, name = $3, given_name = $4, \
                     family_name = $5, phone_number = $6, phone_number_verified = $7, picture = $8, \
                     locale = $9, attributes = $10, updated_at = $11, email_canonical = $13 WHERE id = $12",
                )
                .bind(p.email.as_str())
                .bind(p.email_verified)
                .bind(&p.name)
                .bind(&p.given_name)
                .bind(&p.family_name)
                .bind(&p.phone_number)
                .bind(p.phone_number_verified)
                .bind(&p.picture)
                .bind(&p.locale)
                .bind(&p.attributes)
                .bind(now)
                .bind(id)
                .bind(p.email.canonical())
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_disabled(
                &self,
                id: &str,
                disabled_at: Option<i64>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET disabled_at = $1, updated_at = $2 WHERE id = $3")
                    .bind(disabled_at)
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_deleted(
                &self,
                id: &str,
                deleted_at: Option<i64>,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET deleted_at = $1, updated_at = $2 WHERE id = $3")
                    .bind(deleted_at)
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge_user(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn add_role(&self, user_id: &str, role: &str) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT (user_id, role) DO NOTHING",
                )
                .bind(user_id)
                .bind(role)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn remove_role(&self, user_id: &str, role: &str) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                if role == "admin" {
                    // Lock every admin grant first (a row lock on PostgreSQL, the write lock on
                    // SQLite): two admins demoting each other at once are serialised, and the
                    // second sees the first's removal, so one admin always remains.
                    sqlx::query("UPDATE user_roles SET role = role WHERE role = 'admin'")
                        .execute(&mut *tx)
                        .await?;
                }
                let done = sqlx::query(
                    "DELETE FROM user_roles WHERE user_id = $1 AND role = $2 AND ($2 <> 'admin' OR EXISTS ( \
                     SELECT 1 FROM user_roles r JOIN users u ON u.id = r.user_id \
                     WHERE r.role = 'admin' AND r.user_id <> $1 AND u.disabled_at IS NULL AND u.deleted_at IS NULL))",
                )
                .bind(user_id)
                .bind(role)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn deactivate_user(
                &self,
                id: &str,
                delete: bool,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE user_roles SET role = role WHERE role = 'admin'")
                    .execute(&mut *tx)
                    .await?;
                let sql = if delete {
                    "UPDATE users SET deleted_at = COALESCE(deleted_at, $1), updated_at = $1 WHERE id = $2 AND ( \
                     NOT EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = $2 AND r.role = 'admin') OR EXISTS ( \
                     SELECT 1 FROM user_roles r JOIN users o ON o.id = r.user_id WHERE r.role = 'admin' \
                     AND r.user_id <> $2 AND o.disabled_at IS NULL AND o.deleted_at IS NULL))"
                } else {
                    "UPDATE users SET disabled_at = COALESCE(disabled_at, $1), updated_at = $1 WHERE id = $2 AND ( \
                     NOT EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = $2 AND r.role = 'admin') OR EXISTS ( \
                     SELECT 1 FROM user_roles r JOIN users o ON o.id = r.user_id WHERE r.role = 'admin' \
                     AND r.user_id <> $2 AND o.disabled_at IS NULL AND o.deleted_at IS NULL))"
                };
                let done = sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(done.rows_affected() > 0)
            }

            async fn count_other_admins(&self, except: &str) -> $crate::store::StoreResult<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM user_roles r JOIN users u ON u.id = r.user_id \
                     WHERE r.role = 'admin' AND r.user_id <> $1 AND u.disabled_at IS NULL AND u.deleted_at IS NULL",
                )
                .bind(except)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            async fn bulk_create_users(
                &self,
                users: &[$crate::domain::NewUser],
                now: i64,
            ) -> $crate::store::StoreResult<u64> {
                let mut tx = self.begin_write().await?;
                let mut n = 0;
                for chunk in users.chunks(500) {
                    let mut sql = String::from(
                        "INSERT INTO users (id, email, email_verified, password_hash, name, created_at, updated_at, email_canonical) VALUES ",
                    );
                    for i in 0..chunk.len() {
                        let b = i * 7;
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!(
                            "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 6, b + 7
                        ));
                    }
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for u in chunk {
                        query = query
                            .bind(uuid::Uuid::new_v4().to_string())
                            .bind(u.email.as_str().to_owned())
                            .bind(u.email_verified)
                            .bind(u.password_hash.clone())
                            .bind(u.name.clone())
                            .bind(now)
                            .bind(u.email.canonical().to_owned());
                    }
                    n += query
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::store::map_unique)?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn list_clients_page(
                &self,
                q: Option<&str>,
                after: Option<(&str, &str)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Client>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM clients WHERE ($1 IS NULL OR LOWER(id) LIKE $1 ESCAPE '\\' \
                     OR LOWER(name) LIKE $1 ESCAPE '\\') \
                     AND ($2 IS NULL OR name > $2 OR (name = $2 AND id > $3)) ORDER BY name, id LIMIT $4",
                    $crate::store::sql::CLIENT_COLUMNS
                ));
                let q = q.map($crate::store::admin::contains_pattern);
                let rows: Vec<$crate::store::sql::ClientRow> = sqlx::query_as(sql)
                    .bind(q)
                    .bind(after.map(|a| a.0))
                    .bind(after.map(|a| a.1))
                    .bind(limit.clamp(1, 500))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map($crate::domain::Client::try_from).collect()
            }

            async fn delete_client(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM clients WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn counts(&self, now: i64) -> $crate::store::StoreResult<$crate::store::Counts> {
                let (users,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL")
                        .fetch_one(&self.pool)
                        .await?;
                let (active_sessions,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                let (clients,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM clients")
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::store::Counts { users, active_sessions, clients })
            }

            async fn login_days(
                &self,
                since: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::LoginDay>> {
                let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT at / 86400 AS day, \
                     SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END) AS ok, \
                     SUM(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END) AS failed \
                     FROM audit_log WHERE action = 'login' AND at >= $1 GROUP BY at / 86400 ORDER BY day",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(day, success, failure)| $crate::store::LoginDay { day, success, failure })
                    .collect())
            }
        }
    };
}

pub(crate) use impl_admin_store;

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_are_literals() {
        assert_eq!(contains_pattern("John_Doe"), "%john\\_doe%");
        assert_eq!(contains_pattern("%"), "%\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
