//! The mail an administrator has sent on a user's behalf: the invitation (on create, and resent
//! with a fresh link) and the password-reset link. Links are single-use (≥128 bits, stored as
//! SHA-256) and built from the configured issuer only, never from a request.

use super::{UserView, get, load_active};
use crate::admin::{Actor, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::domain::{Email, NewUser};
use crate::email::{Mailer, Message};
use crate::oauth::Provider;
use crate::store::{CodePurpose, NewAccountCode, NewMail, StoreError};

/// A user without a password, and the invitation mail with a single-use link (≥128 bits,
/// stored as SHA-256, built from the configured issuer only) to choose one.
pub(super) async fn invite(
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

#[cfg(test)]
mod tests {
    use super::lifetime;

    #[test]
    fn invitation_lifetimes_in_days_or_hours() {
        assert_eq!(lifetime(604_800), (7, 0));
        assert_eq!(lifetime(86_400), (1, 0));
        assert_eq!(lifetime(3600), (0, 1));
        assert_eq!(lifetime(90_000), (0, 25));
        assert_eq!(lifetime(60), (0, 1));
    }
}
