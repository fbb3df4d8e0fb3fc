//! Storage for groups and their members, managed by administrators.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreResult;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    async fn find_group(&self, id: &str) -> StoreResult<Option<Group>>;
    async fn create_group(&self, name: &str, now: i64) -> StoreResult<Group>;
    async fn rename_group(&self, id: &str, name: &str, now: i64) -> StoreResult<bool>;
    async fn delete_group(&self, id: &str) -> StoreResult<bool>;
    /// Returns whether a membership was added (false: already a member).
    async fn add_member(&self, group_id: &str, user_id: &str, now: i64) -> StoreResult<bool>;
    async fn remove_member(&self, group_id: &str, user_id: &str) -> StoreResult<bool>;
    async fn groups_of_user(&self, user_id: &str) -> StoreResult<Vec<Group>>;
}

macro_rules! impl_group_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::GroupStore for $store {
            async fn list_groups(&self) -> $crate::store::StoreResult<Vec<$crate::store::Group>> {
                Ok(sqlx::query_as("SELECT id, name, created_at, updated_at FROM groups ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn find_group(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::Group>> {
                Ok(sqlx::query_as("SELECT id, name, created_at, updated_at FROM groups WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn create_group(
                &self,
                name: &str,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::Group> {
                let group = $crate::store::Group {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: name.to_owned(),
                    created_at: now,
                    updated_at: now,
                };
                sqlx::query("INSERT INTO groups (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)")
                    .bind(&group.id)
                    .bind(&group.name)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_unique)?;
                Ok(group)
            }

            async fn rename_group(&self, id: &str, name: &str, now: i64) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE groups SET name = $1, updated_at = $2 WHERE id = $3")
                    .bind(name)
                    .bind(now)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::store::map_unique)?;
                Ok(done.rows_affected() > 0)
            }

            async fn delete_group(&self, id: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM groups WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn add_member(
                &self,
                group_id: &str,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO group_members (group_id, user_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (group_id, user_id) DO NOTHING",
                )
                .bind(group_id)
                .bind(user_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn remove_member(&self, group_id: &str, user_id: &str) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                    .bind(group_id)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn groups_of_user(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Group>> {
                Ok(sqlx::query_as(
                    "SELECT g.id, g.name, g.created_at, g.updated_at FROM groups g \
                     JOIN group_members m ON m.group_id = g.id WHERE m.user_id = $1 ORDER BY g.name",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use impl_group_store;
