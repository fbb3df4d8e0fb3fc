//! A user's life cycle: disable / enable, end sessions, soft delete, restore within the grace
//! period, purge. The last active administrator is never disabled or deleted (checked in the
//! same SQL statement as the write).

use serde_json::json;

use super::{UserView, get, load};
use crate::admin::{Actor, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::oauth::Provider;

/// Disable (ending every session and refresh grant) or enable a user.
pub async fn set_disabled(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    disabled: bool,
) -> AdminResult<UserView> {
    let before = load(provider, id).await?;
    if before.deleted_at.is_some() {
        return Err(AdminError::Conflict(
            "the user is deleted; restore it first".into(),
        ));
    }
    let now = provider.clock.now();
    if disabled {
        if !provider.store.deactivate_user(id, false, now).await? {
            return Err(AdminError::LastAdmin);
        }
        crate::oidc::logout::end_user_sessions(provider, id, now).await?;
    } else if before.disabled_at.is_some() {
        provider.store.set_user_disabled(id, None, now).await?;
    }
    if before.disabled_at.is_some() != disabled {
        let act = if disabled {
            action::ADMIN_USER_DISABLE
        } else {
            action::ADMIN_USER_ENABLE
        };
        audit::record(
            provider.store.as_ref(),
            actor.event(act).target(id).detail(
                "changes",
                json!({ "disabled": { "before": !disabled, "after": disabled } }),
            ),
        )
        .await;
    }
    get(provider, id).await
}

/// End every session (and refresh grant) of a user; returns how many sessions ended.
pub async fn end_sessions(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<usize> {
    load(provider, id).await?;
    let ended = crate::oidc::logout::end_user_sessions(provider, id, provider.clock.now()).await?;
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_SESSIONS_END)
            .target(id)
            .detail("sessions", ended.len()),
    )
    .await;
    Ok(ended.len())
}

/// Soft delete: the account stops working at once and can be restored within the grace period.
pub async fn delete(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<()> {
    let before = load(provider, id).await?;
    if before.deleted_at.is_some() {
        return Ok(());
    }
    let now = provider.clock.now();
    if !provider.store.deactivate_user(id, true, now).await? {
        return Err(AdminError::LastAdmin);
    }
    crate::oidc::logout::end_user_sessions(provider, id, now).await?;
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_DELETE)
            .target(id)
            .detail("email", before.email),
    )
    .await;
    Ok(())
}

pub async fn restore(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<UserView> {
    let before = load(provider, id).await?;
    let Some(deleted_at) = before.deleted_at else {
        return Err(AdminError::Conflict("the user is not deleted".into()));
    };
    let now = provider.clock.now();
    let grace = provider.settings.accounts.deletion_grace_period;
    if now - deleted_at > grace {
        return Err(AdminError::Conflict(
            "the grace period for restoring this user is over".into(),
        ));
    }
    provider.store.set_user_deleted(id, None, now).await?;
    audit::record(
        provider.store.as_ref(),
        actor.event(action::ADMIN_USER_RESTORE).target(id),
    )
    .await;
    get(provider, id).await
}

/// Erase a soft-deleted user for good (the audit trail keeps its id).
pub async fn purge(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<()> {
    let before = load(provider, id).await?;
    if before.deleted_at.is_none() {
        return Err(AdminError::Conflict(
            "only a deleted user can be purged; delete it first".into(),
        ));
    }
    provider.store.purge_user(id).await?;
    audit::record(
        provider.store.as_ref(),
        actor.event(action::ADMIN_USER_PURGE).target(id),
    )
    .await;
    Ok(())
}
