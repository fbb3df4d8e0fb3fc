//! Password reset: a single-use link by mail (the same answer whether or not the account
//! exists), then a new password under the sign-up policy that, in one transaction, uses the
//! link, ends every session and grant of the person and queues a notice.
//!
//! The same page accepts an administrator's invitation link (`CodePurpose::Invitation`): an
//! invitation is a first password with different wording, which also confirms the address
//! (`InvitationStore::accept_invitation`, one transaction).

use super::signup::NOT_SAME;
use super::{AccountError, AccountResult, Accounts, Bucket, Caller, Refusal, equalise};
use crate::audit::{Event, action};
use crate::crypto::hash_secret;
use crate::domain::{Email, Password};
use crate::email::Recipient;
use crate::store::{AccountCode, CodePurpose, PasswordChange};

pub const LINK_SENT: &str = "If an account exists for this address, we have sent it a link to choose a new password. Check your inbox.";

const BAD_LINK: Refusal = Refusal {
    status: 400,
    title: "Link not valid",
    message: "This link is wrong, expired or already used. Ask for a new one.",
    link: Some(("/forgot-password", "Ask for a new link")),
};

/// Which kind of link a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Reset,
    Invitation,
}

/// What a completed link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new password; this many sessions were ended.
    PasswordReset { sessions_ended: usize },
    /// A first password through an invitation; the address is now confirmed.
    InvitationAccepted,
}

/// Mail a reset link to `email` when it names an active account. The same answer, after the
/// same least time, either way; `Invalid` (field `email`) for a malformed address.
pub async fn forgot(acc: &Accounts, caller: &Caller, email: &str, now: i64) -> AccountResult<()> {
    let started = tokio::time::Instant::now();
    acc.limit(Bucket::Reset, caller, None).await?;
    let email = Email::parse(email).map_err(|e| AccountError::field("email", e.0))?;
    acc.limit_account(Bucket::Reset, caller, email.canonical())
        .await?;
    let user = acc
        .store()
        .find_user_by_email(&email)
        .await?
        .filter(|u| u.is_active());
    let event = Event::new(action::CODE_REQUEST).origin(&caller.origin());
    match user {
        Some(user) => {
            let out = acc.composer().password_reset(&Recipient::of(&user), now)?;
            acc.send(&user.id, out, now).await?;
            acc.audit(event.target(&user.id).detail("purpose", "password_reset"))
                .await;
        }
        None => {
            acc.audit(
                event
                    .failure("unknown_account")
                    .detail("purpose", "password_reset"),
            )
            .await;
        }
    }
    equalise(started).await;
    Ok(())
}

/// The live reset or invitation link named by `token`, if any.
async fn live_link(acc: &Accounts, token: &str, now: i64) -> AccountResult<Option<AccountCode>> {
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let hash = hash_secret(token);
    for purpose in [CodePurpose::PasswordReset, CodePurpose::Invitation] {
        if let Some(code) = acc.store().find_link(purpose, &hash, now).await? {
            return Ok(Some(code));
        }
    }
    Ok(None)
}

fn kind(link: &AccountCode) -> LinkKind {
    if link.purpose == CodePurpose::Invitation.as_str() {
        LinkKind::Invitation
    } else {
        LinkKind::Reset
    }
}

/// What the link `token` is, without using it. `Refused` when it is not live.
pub async fn inspect(acc: &Accounts, token: &str, now: i64) -> AccountResult<LinkKind> {
    match live_link(acc, token, now).await? {
        Some(link) => Ok(kind(&link)),
        None => Err(AccountError::Refused(BAD_LINK)),
    }
}

/// Set a new password through the link `token`. `Invalid` (field `password`) for a password
/// the policy refuses or a confirmation that differs; `Refused` for a dead link.
pub async fn complete(
    acc: &Accounts,
    caller: &Caller,
    token: &str,
    password: &str,
    password_confirm: &str,
    now: i64,
) -> AccountResult<Outcome> {
    acc.limit(Bucket::Reset, caller, None).await?;
    let origin = caller.origin();
    let store = acc.store();
    let Some(link) = live_link(acc, token, now).await? else {
        acc.audit(
            Event::new(action::PASSWORD_RESET)
                .origin(&origin)
                .failure("bad_link"),
        )
        .await;
        return Err(AccountError::Refused(BAD_LINK));
    };
    // Bound to the address it was sent to.
    let user = store
        .find_user(&link.user_id)
        .await?
        .filter(|u| u.is_active() && u.email == link.target)
        .ok_or(AccountError::Refused(BAD_LINK))?;
    let email = Email::parse(&user.email).map_err(|_| AccountError::Refused(BAD_LINK))?;
    let new =
        Password::parse_new(password, &email).map_err(|e| AccountError::field("password", e.0))?;
    if password != password_confirm {
        return Err(AccountError::field("password", NOT_SAME));
    }
    let hash = acc.provider.hasher.hash(&new).await?;
    let secret_hash = hash_secret(token.trim());
    if kind(&link) == LinkKind::Invitation {
        // Link used, password set and address confirmed in one transaction. The invited
        // account has no session to end.
        let Some(code) = store.accept_invitation(&secret_hash, &hash, now).await? else {
            return Err(AccountError::Refused(BAD_LINK));
        };
        tracing::info!(user.id = %code.user_id, "invitation accepted");
        acc.audit(
            Event::new(action::INVITATION_ACCEPT)
                .actor(&code.user_id)
                .target(&code.user_id)
                .origin(&origin),
        )
        .await;
        return Ok(Outcome::InvitationAccepted);
    }
    let notice = acc.composer().password_changed(&Recipient::of(&user))?;
    // Of two parallel submissions only one uses the link; the other changes nothing.
    let change = PasswordChange {
        user_id: &user.id,
        password_hash: &hash,
        link: Some((CodePurpose::PasswordReset, &secret_hash)),
        mails: std::slice::from_ref(&notice),
    };
    let Some(sids) = super::security::change_password_ending_sessions(acc, &change, now).await?
    else {
        return Err(AccountError::Refused(BAD_LINK));
    };
    let ended = sids.len();
    tracing::info!(user.id = %user.id, sessions.ended = ended, "password reset");
    acc.audit(
        Event::new(action::PASSWORD_RESET)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin)
            .detail("sessions_ended", ended),
    )
    .await;
    Ok(Outcome::PasswordReset {
        sessions_ended: ended,
    })
}
