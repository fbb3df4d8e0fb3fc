//! The account page's security side: password change (current password required; every
//! session ends in the same transaction), the live sessions with sign-out per session, the
//! applications the person consented to, with revoke, and self-deletion (password required;
//! disabled at once, sessions ended, data purged after the grace period).

use super::signin::{Authenticated, Method, confirm_password};
use super::signup::NOT_SAME;
use super::{AccountError, AccountResult, Accounts, Caller};
use crate::audit::{Event, action};
use crate::domain::{Email, Password, User};
use crate::email::Recipient;
use crate::store::{Consent, PasswordChange, SessionInfo};

pub use super::profile::WRONG_PASSWORD;

/// What the account page lists.
#[derive(Debug, Clone)]
pub struct Overview {
    pub sessions: Vec<SessionInfo>,
    pub consents: Vec<Consent>,
}

pub async fn overview(acc: &Accounts, user: &User, now: i64) -> AccountResult<Overview> {
    let store = acc.store();
    Ok(Overview {
        sessions: store.list_sessions(&user.id, now).await?,
        consents: store.list_consents(&user.id).await?,
    })
}

/// Set a new password and end every session of the person with it, in one transaction (see
/// `SessionStore::change_password`); then wake the mail and Back-Channel Logout workers.
/// `None` when the change's link was no longer live (nothing changed).
pub(crate) async fn change_password_ending_sessions(
    acc: &Accounts,
    change: &PasswordChange<'_>,
    now: i64,
) -> AccountResult<Option<Vec<String>>> {
    let new_id = || uuid::Uuid::new_v4().simple().to_string();
    let sids = acc.store().change_password(change, now, &new_id).await?;
    if sids.is_some() {
        acc.mailer.wake();
        acc.provider.logout_wake.notify_one();
    }
    Ok(sids)
}

/// Change the password (the current one required). Every session of the person ends, this one
/// included; the returned proof lets the caller start a fresh session for this browser.
/// `Invalid` with field `password`.
pub async fn change_password(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    current: &str,
    password: &str,
    password_confirm: &str,
    now: i64,
) -> AccountResult<Authenticated> {
    let origin = caller.origin();
    let event = Event::new(action::PASSWORD_CHANGE)
        .actor(&user.id)
        .target(&user.id)
        .origin(&origin);
    if !confirm_password(acc, caller, user, current).await? {
        acc.audit(event.failure("bad_password")).await;
        return Err(AccountError::field("password", WRONG_PASSWORD));
    }
    let email = Email::parse(&user.email)
        .map_err(|e| AccountError::internal("stored address does not parse", e.0))?;
    let new =
        Password::parse_new(password, &email).map_err(|e| AccountError::field("password", e.0))?;
    if password != password_confirm {
        return Err(AccountError::field("password", NOT_SAME));
    }
    let hash = acc.provider.hasher.hash(&new).await?;
    let notice = acc.composer().password_changed(&Recipient::of(user))?;
    let change = PasswordChange {
        user_id: &user.id,
        password_hash: &hash,
        link: None,
        mails: std::slice::from_ref(&notice),
    };
    change_password_ending_sessions(acc, &change, now).await?;
    acc.audit(event).await;
    Ok(Authenticated::new(user.clone(), Method::Password, now))
}

/// Sign out one of the person's sessions by its `sid` (another user's `sid` ends nothing), with
/// Back-Channel Logout to its clients.
pub async fn end_session(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    sid: &str,
    now: i64,
) -> AccountResult<()> {
    if crate::oidc::logout::end_session_by_sid(&acc.provider, &user.id, sid, now).await? {
        acc.audit(
            Event::new(action::SESSION_END)
                .actor(&user.id)
                .target(&user.id)
                .origin(&caller.origin()),
        )
        .await;
    }
    Ok(())
}

/// Withdraw the consent given to `client_id`.
pub async fn revoke_consent(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    client_id: &str,
) -> AccountResult<()> {
    if acc.store().revoke_consent(&user.id, client_id).await? {
        acc.audit(
            Event::new(action::CONSENT_REVOKE)
                .actor(&user.id)
                .target(&user.id)
                .client(client_id)
                .origin(&caller.origin()),
        )
        .await;
    }
    Ok(())
}

/// Delete the account (the password required): disabled and hidden at once, every session
/// ended; the data is purged after `accounts.deletion_grace_period`. `Invalid` with field
/// `delete`.
pub async fn delete(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    password: &str,
    now: i64,
) -> AccountResult<()> {
    if !confirm_password(acc, caller, user, password).await? {
        return Err(AccountError::field("delete", WRONG_PASSWORD));
    }
    acc.store().soft_delete_user(&user.id, now).await?;
    crate::oidc::logout::end_user_sessions(&acc.provider, &user.id, now).await?;
    tracing::info!(user.id = %user.id, "account deleted by its owner");
    acc.audit(
        Event::new(action::ACCOUNT_DELETE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin()),
    )
    .await;
    Ok(())
}
