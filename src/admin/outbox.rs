//! Mail and text messages given up after the retry budget (`mail.max_attempts`, about 5 hours by
//! default): the list, and re-queueing one, shared by the admin API, the pages and the CLI.
//!
//! Re-queueing never resurrects a secret. A given-up message goes back to the queue **as it is**
//! only while its body is still stored (bodies are blanked 10 minutes after a message ends), the
//! code or link it carries is still live (unused, unexpired, not replaced by a newer one) and its
//! account is active. Otherwise a message that announces an e-mail verification, a password reset
//! or an invitation is **re-issued**: a fresh message of the same purpose to the same account at
//! the same address, with a new code or link (issuing it voids the older ones), built by the one
//! composer every sender uses and stored through the same store calls as the person's own resend.
//! Sign-in codes, phone codes and e-mail-change links are asked for again by the person (they are
//! only useful while that person is waiting on the page); notices whose body is gone cannot be
//! rebuilt. A superseded message has a newer one: that is the one to re-queue.

use serde::Serialize;

use super::{Actor, AdminCtx, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::email::{Composer, Mailer, Recipient};
use crate::store::{AdminUser, CodePurpose, OutboxEntry};

/// What a re-queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequeueMode {
    /// The stored message went back to the queue unchanged.
    Requeued,
    /// A fresh message of the same purpose was queued; the given-up one stays given up
    /// (`last_error = "reissued"`).
    Reissued,
}

/// The outcome of a re-queue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Requeued {
    pub mode: RequeueMode,
    /// The message now waiting in the queue: the same id (`requeued`) or the new one.
    pub mail_id: String,
}

/// A page of given-up messages, newest first (no bodies).
pub async fn given_up(
    ctx: AdminCtx<'_>,
    before: Option<&str>,
    limit: i64,
) -> AdminResult<Vec<OutboxEntry>> {
    Ok(ctx.store.given_up_mail(before, limit).await?)
}

/// Put the given-up message `id` back in the queue, as it is or re-issued (see the module doc).
/// `NotFound` for an unknown id; `Conflict` for a message not given up, already re-issued,
/// superseded, or one that can neither be sent again nor re-issued. Audited as
/// `admin.mail.requeue` (the message id, the mode and the new message's id; never a body).
pub async fn requeue(
    ctx: AdminCtx<'_>,
    mailer: &Mailer,
    actor: &Actor,
    id: &str,
    now: i64,
) -> AdminResult<Requeued> {
    let entry = ctx
        .store
        .outbox_entry(id)
        .await?
        .ok_or(AdminError::NotFound("message"))?;
    if entry.sent_at.is_some() || entry.failed_at.is_none() {
        return Err(conflict(
            "the message is not given up (it is sent or still queued)",
        ));
    }
    match entry.last_error.as_deref() {
        Some("superseded") => {
            return Err(conflict(
                "a newer message of the same purpose replaced this one; re-queue that one",
            ));
        }
        Some("reissued") => {
            return Err(conflict(
                "this message was already re-issued as a fresh one",
            ));
        }
        _ => {}
    }
    let outcome = if ctx.store.requeue_mail(id, now).await? {
        Requeued {
            mode: RequeueMode::Requeued,
            mail_id: id.to_owned(),
        }
    } else {
        let mail_id = reissue(ctx, mailer, &entry, now).await?;
        Requeued {
            mode: RequeueMode::Reissued,
            mail_id,
        }
    };
    mailer.wake();
    let mode = match outcome.mode {
        RequeueMode::Requeued => "requeued",
        RequeueMode::Reissued => "reissued",
    };
    let mut event = actor
        .event(action::ADMIN_MAIL_REQUEUE)
        .detail("mail_id", id)
        .detail("mode", mode)
        .detail("new_mail_id", outcome.mail_id.as_str());
    if let Some(user) = &entry.user_id {
        event = event.target(user.as_str());
    }
    if let Some(purpose) = &entry.purpose {
        event = event.detail("purpose", purpose.as_str());
    }
    audit::record(ctx.store, event).await;
    Ok(outcome)
}

fn conflict(message: &str) -> AdminError {
    AdminError::Conflict(message.to_owned())
}

/// A fresh message of `entry`'s purpose to the same account at the same address; returns the
/// new message's id. Marks `entry` re-issued.
async fn reissue(
    ctx: AdminCtx<'_>,
    mailer: &Mailer,
    entry: &OutboxEntry,
    now: i64,
) -> AdminResult<String> {
    let cannot = |why: &str| conflict(&format!("the message cannot be sent again: {why}"));
    let (Some(user_id), Some(purpose)) = (&entry.user_id, &entry.purpose) else {
        return Err(cannot(
            "its body was already blanked and it carries no code that could be re-issued",
        ));
    };
    let user = ctx
        .store
        .admin_find_user(user_id)
        .await?
        .filter(|u| u.deleted_at.is_none() && u.disabled_at.is_none())
        .ok_or_else(|| cannot("the account is disabled or deleted"))?;
    if user.email != entry.recipient {
        return Err(cannot("the account's e-mail address changed since"));
    }
    let composer = Composer {
        mailer,
        settings: ctx.settings,
    };
    let r = recipient(&user);
    let built = |e: crate::email::MailError| {
        tracing::error!(error = %e, "cannot build the mail");
        AdminError::Mail
    };
    let out = if purpose == CodePurpose::EmailVerifyLink.as_str() {
        if user.email_verified {
            return Err(cannot("the address is verified already"));
        }
        composer.verification(&r, now).map_err(built)?
    } else if purpose == CodePurpose::PasswordReset.as_str() {
        composer.password_reset(&r, now).map_err(built)?
    } else if purpose == CodePurpose::Invitation.as_str() {
        if user.password_set {
            return Err(cannot(
                "the invitation was accepted (the user has a password)",
            ));
        }
        composer.invitation(&r, now).map_err(built)?
    } else {
        return Err(cannot(
            "sign-in codes, phone codes and e-mail-change links are requested again by the \
             person (they are useful only while the person waits for them)",
        ));
    };
    let code = out.codes.first().ok_or(AdminError::Mail)?;
    if code.purpose == CodePurpose::Invitation {
        if !ctx
            .store
            .reissue_invitation(user_id, code, &out.mail, now)
            .await?
        {
            return Err(cannot("the user changed meanwhile; reload and retry"));
        }
    } else {
        ctx.store
            .issue_codes(user_id, &out.codes, std::slice::from_ref(&out.mail), now)
            .await?;
    }
    ctx.store.mark_mail_reissued(&entry.id).await?;
    let newest = ctx
        .store
        .mail_for(&entry.recipient)
        .await?
        .into_iter()
        .rev()
        .find(|m| m.created_at == now && m.subject == out.mail.subject)
        .map(|m| m.id)
        .unwrap_or_default();
    Ok(newest)
}

fn recipient(user: &AdminUser) -> Recipient<'_> {
    Recipient {
        user_id: &user.id,
        to: &user.email,
        name: user.name.clone(),
        locale: user.locale.as_deref(),
    }
}
