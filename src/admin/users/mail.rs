//! The mail an administrator has sent on a user's behalf: the invitation (on create, and resent
//! with a fresh link) and the password-reset link. Links are single-use (≥128 bits, stored as
//! SHA-256) and built from the configured issuer only, never from a request.

use super::{UserView, get, load_active};
use crate::admin::{Actor, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::domain::{Email, NewUser};
use crate::email::{Composer, Mailer, Recipient};
use crate::oauth::Provider;
use crate::store::StoreError;

/// A user without a password, and the invitation mail with a single-use link (≥128 bits,
/// stored as SHA-256, built from the configured issuer only) to choose one.
pub(super) async fn invite(
    provider: &Provider,
    mailer: &Mailer,
    actor: &Actor,
    email: Email,
    name: Option<String>,
) -> AdminResult<UserView> {
    let now = provider.clock.now();
    let ttl = provider.settings.accounts.invitation_ttl;
    let id = uuid::Uuid::new_v4().to_string();
    let out = composer(provider, mailer)
        .invitation(
            &Recipient {
                user_id: &id,
                to: email.as_str(),
                name: name.clone(),
                locale: None,
            },
            now,
        )
        .map_err(mail_failed)?;
    let new = NewUser {
        email,
        email_verified: false,
        password_hash: None,
        name,
        roles: vec![],
        phone_number: None,
        locale: None,
    };
    let user = match provider
        .store
        .sign_up(&id, &new, &out.codes, &[out.mail], now)
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

/// Mail is built by the one composer every sender uses (`email::compose`).
fn composer<'a>(provider: &'a Provider, mailer: &'a Mailer) -> Composer<'a> {
    Composer {
        mailer,
        settings: &provider.settings,
    }
}

fn mail_failed(e: crate::email::MailError) -> AdminError {
    tracing::error!(error = %e, "cannot build the mail");
    AdminError::Mail
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
    let now = provider.clock.now();
    let ttl = provider.settings.accounts.invitation_ttl;
    let out = composer(provider, mailer)
        .invitation(&recipient(&user), now)
        .map_err(mail_failed)?;
    let code = out.codes.into_iter().next().ok_or(AdminError::Mail)?;
    if !provider
        .store
        .reissue_invitation(id, &code, &out.mail, now)
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

/// Where the admin's mail to this user goes.
fn recipient(user: &crate::store::AdminUser) -> Recipient<'_> {
    Recipient {
        user_id: &user.id,
        to: &user.email,
        name: user.name.clone(),
        locale: user.locale.as_deref(),
    }
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
    let now = provider.clock.now();
    let ttl = provider.settings.accounts.reset_link_ttl;
    let out = composer(provider, mailer)
        .password_reset(&recipient(&user), now)
        .map_err(mail_failed)?;
    provider
        .store
        .issue_codes(id, &out.codes, &[out.mail], now)
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
