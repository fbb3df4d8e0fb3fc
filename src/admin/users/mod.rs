//! Users: list, view, create (optionally with an invitation e-mail) and edit here; the mail sent
//! on a user's behalf (invitation, password reset) in `mail`; disable/enable, end sessions, soft
//! delete, restore within the grace period and purge in `lifecycle`; roles in `roles`.

mod lifecycle;
mod mail;
mod roles;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Actor, AdminCtx, AdminError, AdminResult, clean};
use crate::audit::{self, action};
use crate::domain::{Email, NewUser, Password};
use crate::email::Mailer;
use crate::oauth::Provider;
use crate::store::{AdminUser, Group, StoreError, UserFilter, UserProfile};

pub use lifecycle::{delete, end_sessions, purge, restore, set_disabled};
pub use mail::{resend_invitation, send_password_reset};
pub use roles::{grant_role, id_by_email, parse_role, revoke_role};

/// A user with roles and groups, as the admin views it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    #[serde(flatten)]
    pub user: AdminUserOut,
    pub roles: Vec<String>,
    pub groups: Vec<Group>,
}

/// `AdminUser` with `attributes` as a JSON object rather than text.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminUserOut {
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
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// Whether the user has a password. Without one (an invited user who has not accepted yet,
    /// or a user created without one) an invitation can be (re)sent.
    pub password_set: bool,
}

impl From<AdminUser> for AdminUserOut {
    fn from(u: AdminUser) -> Self {
        Self {
            attributes: serde_json::from_str(&u.attributes).unwrap_or_else(|_| json!({})),
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            name: u.name,
            given_name: u.given_name,
            family_name: u.family_name,
            phone_number: u.phone_number,
            phone_number_verified: u.phone_number_verified,
            picture: u.picture,
            locale: u.locale,
            created_at: u.created_at,
            updated_at: u.updated_at,
            disabled_at: u.disabled_at,
            deleted_at: u.deleted_at,
            password_set: u.password_set,
        }
    }
}

/// A new user. Without a password the account cannot sign in with one until it is set. `Debug`
/// never shows the password.
#[derive(Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    /// Mail the person a single-use link (valid `accounts.invitation_ttl` seconds) to choose
    /// their password; accepting it marks the address verified (until then it is unverified,
    /// whatever `email_verified` says). Not with `password`.
    #[serde(default)]
    pub send_invitation: bool,
}

impl fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUser")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("email_verified", &self.email_verified)
            .field("send_invitation", &self.send_invitation)
            .finish()
    }
}

/// Profile changes: absent fields stay; an empty string clears a text field.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: Option<bool>,
    pub picture: Option<String>,
    pub locale: Option<String>,
    /// Replaces the custom attributes (a JSON object).
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
}

const MAX_FIELD: usize = 256;
const MAX_ATTRIBUTES: usize = 16 * 1024;

pub async fn list<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    filter: &UserFilter,
) -> AdminResult<Vec<AdminUserOut>> {
    if filter.q.as_ref().is_some_and(|q| q.len() > MAX_FIELD) {
        return Err(AdminError::invalid("q", "search text is too long"));
    }
    Ok(ctx
        .into()
        .store
        .list_users(filter)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

async fn load<'a>(ctx: impl Into<AdminCtx<'a>>, id: &str) -> AdminResult<AdminUser> {
    ctx.into()
        .store
        .admin_find_user(id)
        .await?
        .ok_or(AdminError::NotFound("user"))
}

/// A user that can be mailed a link: neither disabled nor deleted (409 otherwise).
async fn load_active(provider: &Provider, id: &str) -> AdminResult<AdminUser> {
    let user = load(provider, id).await?;
    if user.deleted_at.is_some() || user.disabled_at.is_some() {
        return Err(AdminError::Conflict(
            "the user is disabled or deleted; enable or restore it first".into(),
        ));
    }
    Ok(user)
}

pub async fn get<'a>(ctx: impl Into<AdminCtx<'a>>, id: &str) -> AdminResult<UserView> {
    let ctx = ctx.into();
    let user = load(ctx, id).await?;
    Ok(UserView {
        roles: ctx.store.user_roles(id).await?,
        groups: ctx.store.groups_of_user(id).await?,
        user: user.into(),
    })
}

/// Create a user; with `send_invitation`, the user, the invitation link and its mail are
/// written in one transaction (`invite`).
pub async fn create(
    provider: &Provider,
    mailer: &Mailer,
    actor: &Actor,
    input: CreateUser,
) -> AdminResult<UserView> {
    let email = Email::parse_new(&input.email).map_err(|e| AdminError::invalid("email", e.0))?;
    let name = clean(input.name.as_deref());
    if name.as_ref().is_some_and(|n| n.len() > MAX_FIELD) {
        return Err(AdminError::invalid("name", "is too long"));
    }
    if input.send_invitation {
        if input.password.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(AdminError::invalid(
                "password",
                "leave it empty when sending an invitation: the person chooses it",
            ));
        }
        return mail::invite(provider, mailer, actor, email, name).await;
    }
    let password_hash = match input.password.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => {
            let password =
                Password::parse(raw).map_err(|e| AdminError::invalid("password", e.0))?;
            Some(
                provider
                    .hasher
                    .hash(&password)
                    .await
                    .map_err(|_| AdminError::Hash)?,
            )
        }
    };
    let new = NewUser {
        email,
        email_verified: input.email_verified,
        password_hash,
        name,
        roles: vec![],
        phone_number: None,
        locale: None,
    };
    let user = match provider.store.create_user(&new, provider.clock.now()).await {
        Ok(u) => u,
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict(
                "a user with this e-mail address already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_CREATE)
            .target(&user.id)
            .detail("email", user.email.as_str())
            .detail("email_verified", user.email_verified)
            .detail("password_set", new.password_hash.is_some()),
    )
    .await;
    get(provider, &user.id).await
}

fn text(field: &str, v: Option<&String>, current: Option<String>) -> AdminResult<Option<String>> {
    match v {
        None => Ok(current),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) if s.len() > MAX_FIELD => Err(AdminError::invalid(field, "is too long")),
        Some(s) => Ok(Some(s.trim().to_owned())),
    }
}

pub async fn update(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    patch: UserPatch,
) -> AdminResult<UserView> {
    let before = load(provider, id).await?;
    if before.deleted_at.is_some() {
        return Err(AdminError::Conflict(
            "the user is deleted; restore it first".into(),
        ));
    }
    // The stored address compared canonically: a new form of the same address (another case
    // or width) is no new address; a new address is checked for confusable scripts.
    let current = Email::parse(&before.email);
    let email = match &patch.email {
        None => current
            .clone()
            .map_err(|e| AdminError::invalid("email", e.0))?,
        Some(e) => match Email::parse(e) {
            Ok(same) if current.as_ref().is_ok_and(|c| *c == same) => same,
            _ => Email::parse_new(e).map_err(|e| AdminError::invalid("email", e.0))?,
        },
    };
    let new_address = !current.is_ok_and(|c| c == email);
    let attributes = match &patch.attributes {
        None => before.attributes.clone(),
        Some(map) => {
            let text = Value::Object(map.clone()).to_string();
            if text.len() > MAX_ATTRIBUTES {
                return Err(AdminError::invalid("attributes", "are larger than 16 KiB"));
            }
            text
        }
    };
    if let Some(p) = &patch.picture
        && !p.trim().is_empty()
        && url::Url::parse(p.trim()).map_or(true, |u| !matches!(u.scheme(), "https" | "http"))
    {
        return Err(AdminError::invalid("picture", "must be an http(s) URL"));
    }
    let profile = UserProfile {
        email_verified: match (&patch.email_verified, new_address) {
            (Some(v), _) => *v,
            // A new address is unverified unless the admin says otherwise.
            (None, true) => false,
            (None, false) => before.email_verified,
        },
        email,
        name: text("name", patch.name.as_ref(), before.name.clone())?,
        given_name: text(
            "given_name",
            patch.given_name.as_ref(),
            before.given_name.clone(),
        )?,
        family_name: text(
            "family_name",
            patch.family_name.as_ref(),
            before.family_name.clone(),
        )?,
        phone_number: text(
            "phone_number",
            patch.phone_number.as_ref(),
            before.phone_number.clone(),
        )?,
        phone_number_verified: patch
            .phone_number_verified
            .unwrap_or(before.phone_number_verified),
        picture: text("picture", patch.picture.as_ref(), before.picture.clone())?,
        locale: text("locale", patch.locale.as_ref(), before.locale.clone())?,
        attributes,
    };
    match provider
        .store
        .update_user_profile(id, &profile, provider.clock.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(AdminError::NotFound("user")),
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict(
                "another user has this e-mail address".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let changes = diff(&before, &profile);
    if !changes.is_empty() {
        audit::record(
            provider.store.as_ref(),
            actor
                .event(action::ADMIN_USER_UPDATE)
                .target(id)
                .detail("changes", Value::Object(changes)),
        )
        .await;
    }
    get(provider, id).await
}

/// `{field: {"before": .., "after": ..}}` for every changed profile field (none are secret).
fn diff(before: &AdminUser, after: &UserProfile) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, b: Value, a: Value| {
        if b != a {
            m.insert(k.to_owned(), json!({ "before": b, "after": a }));
        }
    };
    put("email", json!(before.email), json!(after.email.as_str()));
    put(
        "email_verified",
        json!(before.email_verified),
        json!(after.email_verified),
    );
    put("name", json!(before.name), json!(after.name));
    put(
        "given_name",
        json!(before.given_name),
        json!(after.given_name),
    );
    put(
        "family_name",
        json!(before.family_name),
        json!(after.family_name),
    );
    put(
        "phone_number",
        json!(before.phone_number),
        json!(after.phone_number),
    );
    put(
        "phone_number_verified",
        json!(before.phone_number_verified),
        json!(after.phone_number_verified),
    );
    put("picture", json!(before.picture), json!(after.picture));
    put("locale", json!(before.locale), json!(after.locale));
    let attrs = |t: &str| serde_json::from_str::<Value>(t).unwrap_or(Value::Null);
    put(
        "attributes",
        attrs(&before.attributes),
        attrs(&after.attributes),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::CreateUser;

    #[test]
    fn debug_never_shows_the_password() {
        let input = CreateUser {
            email: "ann@example.com".into(),
            password: Some("hunter2 but longer".into()),
            ..Default::default()
        };
        let text = format!("{input:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("[redacted]") && text.contains("ann@example.com"),
            "{text}"
        );
    }
}
