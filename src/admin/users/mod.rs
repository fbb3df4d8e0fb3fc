//! Users: list, view, create (optionally with an invitation e-mail), resend the invitation,
//! edit, verify, disable/enable, send a password-reset e-mail, end sessions, roles, soft delete,
//! restore within the grace period, purge.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Actor, AdminError, AdminResult, clean};
use crate::audit::{self, action};
use crate::domain::{Email, NewUser, Password};
use crate::email::{Mailer, Message};
use crate::oauth::Provider;
use crate::store::{
    AdminUser, CodePurpose, Group, NewAccountCode, NewMail, StoreError, UserFilter, UserProfile,
};

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

/// A new user. Without a password the account cannot sign in with one until it is set.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
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

pub async fn list(provider: &Provider, filter: &UserFilter) -> AdminResult<Vec<AdminUserOut>> {
    if filter.q.as_ref().is_some_and(|q| q.len() > MAX_FIELD) {
        return Err(AdminError::invalid("q", "search text is too long"));
    }
    Ok(provider
        .store
        .list_users(filter)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

async fn load(provider: &Provider, id: &str) -> AdminResult<AdminUser> {
    provider
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

pub async fn get(provider: &Provider, id: &str) -> AdminResult<UserView> {
    let user = load(provider, id).await?;
    Ok(UserView {
        roles: provider.store.user_roles(id).await?,
        groups: provider.store.groups_of_user(id).await?,
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
    let email = Email::parse(&input.email).map_err(|e| AdminError::invalid("email", e.0))?;
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
        return invite(provider, mailer, actor, email, name).await;
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
    let user = match provider.store.create_user(&new, crate::now()).await {
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

/// A user without a password, and the invitation mail with a single-use link (≥128 bits,
/// stored as SHA-256, built from the configured issuer only) to choose one.
async fn invite(
    provider: &Provider,
    mailer: &Mailer,
    actor: &Actor,
    email: Email,
    name: Option<String>,
) -> AdminResult<UserView> {
    let now = crate::now();
    let ttl = provider.settings.accounts.invitation_ttl;
    let (token, code) = NewAccountCode::link(CodePurpose::Invitation, email.as_str(), now + ttl);
    let mail = invitation_mail(provider, mailer, email.as_str(), name.clone(), &token, None)?;
    let new = NewUser {
        email,
        email_verified: false,
        password_hash: None,
        name,
        roles: vec![],
        phone_number: None,
        locale: None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let user = match provider
        .store
        .sign_up(&id, &new, &[code], &[mail], now)
        .await
    {
        Ok(u) => u,
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict(
                "a user with this e-mail address already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    mailer.wake();
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_INVITE)
            .target(&user.id)
            .detail("email", user.email.as_str())
            .detail("expires_at", now + ttl),
    )
    .await;
    get(provider, &user.id).await
}

/// The invitation mail carrying `token`, in `locale` when there is a translation.
fn invitation_mail(
    provider: &Provider,
    mailer: &Mailer,
    to: &str,
    name: Option<String>,
    token: &str,
    locale: Option<&str>,
) -> AdminResult<NewMail> {
    let (valid_days, valid_hours) = lifetime(provider.settings.accounts.invitation_ttl);
    mailer
        .render_in(
            to,
            &Message::Invitation {
                name,
                link: link(provider, token),
                valid_days,
                valid_hours,
            },
            locale,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot render the invitation mail");
            AdminError::Mail
        })
}

/// `(days, 0)` when `secs` is whole days, else `(0, hours)` (at least one hour): the templates
/// put it in words in their own language.
fn lifetime(secs: i64) -> (i64, i64) {
    if secs >= 86_400 && secs % 86_400 == 0 {
        (secs / 86_400, 0)
    } else {
        (0, (secs / 3600).max(1))
    }
}

/// Send a user who has no password yet (invited and not accepted, or created without one) a new
/// invitation: a fresh single-use link (≥128 bits, stored as SHA-256, new expiry) in the mail,
/// in the user's locale. The older invitation links stop working; voiding them, storing the new
/// one and queueing the mail is one transaction, which also re-checks that the user still has no
/// password (so a resend racing an acceptance changes nothing).
pub async fn resend_invitation(
    provider: &Provider,
    mailer: &Mailer,
    actor: &Actor,
    id: &str,
) -> AdminResult<()> {
    let user = load_active(provider, id).await?;
    if user.password_set {
        return Err(AdminError::Conflict(
            "the user already has a password, so there is no invitation to resend; send a \
             password-reset e-mail instead"
                .into(),
        ));
    }
    let now = crate::now();
    let ttl = provider.settings.accounts.invitation_ttl;
    let (token, code) = NewAccountCode::link(CodePurpose::Invitation, &user.email, now + ttl);
    let mail = invitation_mail(
        provider,
        mailer,
        &user.email,
        user.name.clone(),
        &token,
        user.locale.as_deref(),
    )?;
    if !provider
        .store
        .reissue_invitation(id, &code, &mail, now)
        .await?
    {
        // The user changed since it was read: a password was set, or it was disabled, deleted
        // or given another address.
        return Err(AdminError::Conflict(
            "the user changed meanwhile and no longer takes an invitation; reload and retry".into(),
        ));
    }
    mailer.wake();
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_INVITATION_RESEND)
            .target(id)
            .detail("email", user.email.as_str())
            .detail("expires_at", now + ttl),
    )
    .await;
    Ok(())
}

/// The password-reset page link for `token`, from the configured issuer (never a request).
fn link(provider: &Provider, token: &str) -> String {
    format!(
        "{}/reset-password?token={token}",
        provider.settings.issuer()
    )
}

/// Send the user the same password-reset mail as their own "forgot password" (a single-use link
/// valid `accounts.reset_link_ttl` seconds); the link and the mail are stored in one transaction.
pub async fn send_password_reset(
    provider: &Provider,
    mailer: &Mailer,
    actor: &Actor,
    id: &str,
) -> AdminResult<()> {
    let user = load_active(provider, id).await?;
    let now = crate::now();
    let ttl = provider.settings.accounts.reset_link_ttl;
    let (token, code) = NewAccountCode::link(CodePurpose::PasswordReset, &user.email, now + ttl);
    let mail = mailer
        .render_in(
            &user.email,
            &Message::PasswordReset {
                name: user.name.clone(),
                link: link(provider, &token),
                minutes: ttl / 60,
            },
            user.locale.as_deref(),
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot render the password-reset mail");
            AdminError::Mail
        })?;
    provider
        .store
        .issue_codes(id, &[code], &[mail], now)
        .await?;
    mailer.wake();
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_USER_PASSWORD_RESET)
            .target(id)
            .detail("expires_at", now + ttl),
    )
    .await;
    Ok(())
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
    let email = match &patch.email {
        None => before.email.clone(),
        Some(e) => Email::parse(e)
            .map_err(|e| AdminError::invalid("email", e.0))?
            .as_str()
            .to_owned(),
    };
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
        email_verified: match (&patch.email_verified, email != before.email) {
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
        .update_user_profile(id, &profile, crate::now())
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
    put("email", json!(before.email), json!(after.email));
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
    let now = crate::now();
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
    let ended = crate::oidc::logout::end_user_sessions(provider, id, crate::now()).await?;
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
    let now = crate::now();
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
    let now = crate::now();
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

pub async fn grant_role(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    role: &str,
) -> AdminResult<UserView> {
    let role = parse_role(role)?;
    let before = load(provider, id).await?;
    if before.deleted_at.is_some() {
        return Err(AdminError::Conflict(
            "the user is deleted; restore it first".into(),
        ));
    }
    let roles = provider.store.user_roles(id).await?;
    if !roles.contains(&role) {
        provider.store.add_role(id, &role).await?;
        audit::record(
            provider.store.as_ref(),
            actor
                .event(action::ADMIN_ROLE_GRANT)
                .target(id)
                .detail("role", role.as_str()),
        )
        .await;
    }
    get(provider, id).await
}

/// Remove a role; the last active admin keeps `admin` (checked in the same SQL statement).
pub async fn revoke_role(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    role: &str,
) -> AdminResult<UserView> {
    let role = parse_role(role)?;
    load(provider, id).await?;
    let roles = provider.store.user_roles(id).await?;
    if roles.contains(&role) {
        if !provider.store.remove_role(id, &role).await? {
            return Err(AdminError::LastAdmin);
        }
        audit::record(
            provider.store.as_ref(),
            actor
                .event(action::ADMIN_ROLE_REVOKE)
                .target(id)
                .detail("role", role.as_str()),
        )
        .await;
    }
    get(provider, id).await
}

/// Find a (non-deleted) user by e-mail, for the CLI.
pub async fn id_by_email(provider: &Provider, email: &str) -> AdminResult<String> {
    let email = Email::parse(email).map_err(|e| AdminError::invalid("email", e.0))?;
    provider
        .store
        .find_user_by_email(email.as_str())
        .await?
        .map(|u| u.id)
        .ok_or(AdminError::NotFound("user"))
}

#[cfg(test)]
mod tests {
    use super::{lifetime, parse_role};

    #[test]
    fn invitation_lifetimes_in_days_or_hours() {
        assert_eq!(lifetime(604_800), (7, 0));
        assert_eq!(lifetime(86_400), (1, 0));
        assert_eq!(lifetime(3600), (0, 1));
        assert_eq!(lifetime(90_000), (0, 25));
        assert_eq!(lifetime(60), (0, 1));
    }

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
