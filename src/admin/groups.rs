//! Groups: create, rename, delete, add and remove members. Group names go into the `groups`
//! claim of tokens issued with the `groups` scope, so a change shows in the next token.

use serde_json::json;

use super::{Actor, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::oauth::Provider;
use crate::store::{Group, StoreError, UserFilter};

/// Group names: 1–64 printable characters, no leading/trailing space.
pub fn parse_name(name: &str) -> AdminResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "name",
            "use 1 to 64 printable characters",
        ));
    }
    Ok(name.to_owned())
}

pub async fn list(provider: &Provider) -> AdminResult<Vec<Group>> {
    Ok(provider.store.list_groups().await?)
}

pub async fn get(provider: &Provider, id: &str) -> AdminResult<Group> {
    provider
        .store
        .find_group(id)
        .await?
        .ok_or(AdminError::NotFound("group"))
}

fn duplicate(e: StoreError) -> AdminError {
    match e {
        StoreError::Conflict => {
            AdminError::Conflict("a group with this name already exists".into())
        }
        e => e.into(),
    }
}

pub async fn create(provider: &Provider, actor: &Actor, name: &str) -> AdminResult<Group> {
    let name = parse_name(name)?;
    let group = provider
        .store
        .create_group(&name, provider.clock.now())
        .await
        .map_err(duplicate)?;
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_GROUP_CREATE)
            .target(&group.id)
            .detail("name", name),
    )
    .await;
    Ok(group)
}

pub async fn rename(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    name: &str,
) -> AdminResult<Group> {
    let name = parse_name(name)?;
    let before = get(provider, id).await?;
    if before.name != name {
        if !provider
            .store
            .rename_group(id, &name, provider.clock.now())
            .await
            .map_err(duplicate)?
        {
            return Err(AdminError::NotFound("group"));
        }
        audit::record(
            provider.store.as_ref(),
            actor.event(action::ADMIN_GROUP_RENAME).target(id).detail(
                "changes",
                json!({ "name": { "before": before.name, "after": name } }),
            ),
        )
        .await;
    }
    get(provider, id).await
}

pub async fn delete(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<()> {
    let before = get(provider, id).await?;
    provider.store.delete_group(id).await?;
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_GROUP_DELETE)
            .target(id)
            .detail("name", before.name),
    )
    .await;
    Ok(())
}

/// Members of a group, sorted by e-mail, with keyset pagination like the user list.
pub async fn members(
    provider: &Provider,
    id: &str,
    after: Option<String>,
    limit: i64,
) -> AdminResult<Vec<super::users::AdminUserOut>> {
    get(provider, id).await?;
    super::users::list(
        provider,
        &UserFilter {
            group_id: Some(id.to_owned()),
            after,
            limit,
            ..UserFilter::default()
        },
    )
    .await
}

pub async fn add_member(
    provider: &Provider,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
) -> AdminResult<()> {
    let group = get(provider, group_id).await?;
    let user = provider
        .store
        .admin_find_user(user_id)
        .await?
        .filter(|u| u.deleted_at.is_none())
        .ok_or(AdminError::NotFound("user"))?;
    if provider
        .store
        .add_member(group_id, &user.id, provider.clock.now())
        .await?
    {
        audit::record(
            provider.store.as_ref(),
            actor
                .event(action::ADMIN_GROUP_MEMBER_ADD)
                .target(&user.id)
                .detail("group_id", group.id)
                .detail("group", group.name),
        )
        .await;
    }
    Ok(())
}

pub async fn remove_member(
    provider: &Provider,
    actor: &Actor,
    group_id: &str,
    user_id: &str,
) -> AdminResult<()> {
    let group = get(provider, group_id).await?;
    if !provider.store.remove_member(group_id, user_id).await? {
        return Err(AdminError::NotFound("membership"));
    }
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_GROUP_MEMBER_REMOVE)
            .target(user_id)
            .detail("group_id", group.id)
            .detail("group", group.name),
    )
    .await;
    Ok(())
}
