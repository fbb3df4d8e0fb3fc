//! Roles: grant and revoke (the last active administrator keeps `admin`), and finding a user by
//! e-mail for the CLI's `user grant-admin` / `revoke-admin`, which call these same functions.

use super::{UserView, get, load};
use crate::admin::{Actor, AdminCtx, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::domain::Email;

/// Role names: 1–64 of `a-z 0-9 _ - . :`.
pub fn parse_role(role: &str) -> AdminResult<String> {
    let ok = !role.is_empty()
        && role.len() <= 64
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.:".contains(&b));
    if ok {
        Ok(role.to_owned())
    } else {
        Err(AdminError::invalid(
            "role",
            "use 1 to 64 characters from a-z, 0-9, _ - . :",
        ))
    }
}

pub async fn grant_role<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    id: &str,
    role: &str,
) -> AdminResult<UserView> {
    let ctx = ctx.into();
    let role = parse_role(role)?;
    let before = load(ctx, id).await?;
    if before.deleted_at.is_some() {
        return Err(AdminError::Conflict(
            "the user is deleted; restore it first".into(),
        ));
    }
    let roles = ctx.store.user_roles(id).await?;
    if !roles.contains(&role) {
        ctx.store.add_role(id, &role).await?;
        audit::record(
            ctx.store,
            actor
                .event(action::ADMIN_ROLE_GRANT)
                .target(id)
                .detail("role", role.as_str()),
        )
        .await;
    }
    get(ctx, id).await
}

/// Remove a role; the last active admin keeps `admin` (checked in the same SQL statement).
pub async fn revoke_role<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    id: &str,
    role: &str,
) -> AdminResult<UserView> {
    let ctx = ctx.into();
    let role = parse_role(role)?;
    load(ctx, id).await?;
    let roles = ctx.store.user_roles(id).await?;
    if roles.contains(&role) {
        if !ctx.store.remove_role(id, &role).await? {
            return Err(AdminError::LastAdmin);
        }
        audit::record(
            ctx.store,
            actor
                .event(action::ADMIN_ROLE_REVOKE)
                .target(id)
                .detail("role", role.as_str()),
        )
        .await;
    }
    get(ctx, id).await
}

/// Find a (non-deleted) user by e-mail, for the CLI.
pub async fn id_by_email<'a>(ctx: impl Into<AdminCtx<'a>>, email: &str) -> AdminResult<String> {
    let email = Email::parse(email).map_err(|e| AdminError::invalid("email", e.0))?;
    ctx.into()
        .store
        .find_user_by_email(&email)
        .await?
        .map(|u| u.id)
        .ok_or(AdminError::NotFound("user"))
}

#[cfg(test)]
mod tests {
    use super::parse_role;

    #[test]
    fn role_names() {
        for ok in ["admin", "billing.read", "team:blue", "a_b-c"] {
            assert!(parse_role(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Admin", "a b", "<x>", &"x".repeat(65)] {
            assert!(parse_role(bad).is_err(), "{bad}");
        }
    }
}
