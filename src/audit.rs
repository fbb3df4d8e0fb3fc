//! The audit trail: every authentication event and every admin change is appended here, with
//! UTC time, actor, action, target, client, IP, user agent and outcome. Details never carry
//! secrets (no passwords, codes or tokens): callers put reasons and changed field names in them.
//!
//! Recording never fails the request that caused it: a storage failure is logged once, here.

use serde_json::{Map, Value};

use crate::store::{AuditRecord, Store};

/// Action names, dotted by area. Filters in the admin API and pages use these strings.
pub mod action {
    pub const LOGIN: &str = "login";
    pub const LOGOUT: &str = "logout";
    pub const SIGNUP: &str = "signup";
    pub const EMAIL_VERIFY: &str = "email.verify";
    pub const PHONE_VERIFY: &str = "phone.verify";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const PASSWORD_CHANGE: &str = "password.change";
    pub const CODE_REQUEST: &str = "code.request";
    pub const TOKEN_ISSUE: &str = "token.issue";
    pub const TOKEN_REVOKE: &str = "token.revoke";
    pub const CODE_REPLAY: &str = "code.replay";
    pub const REFRESH_REUSE: &str = "refresh.reuse";
    pub const CONSENT_GIVE: &str = "consent.give";
    pub const CONSENT_REVOKE: &str = "consent.revoke";
    pub const RATE_LIMITED: &str = "rate_limited";
    /// A Back-Channel Logout delivery given up after its last attempt (outcome `failure`;
    /// target and client: the client; details: `sid`, `sub`, `attempts`, `reason`).
    pub const BACKCHANNEL_LOGOUT_FAILED: &str = "backchannel_logout.failed";
    // Administration (actor = the admin user id, `client:<id>`, or `cli`)
    pub const ADMIN_USER_CREATE: &str = "admin.user.create";
    pub const ADMIN_USER_UPDATE: &str = "admin.user.update";
    pub const ADMIN_USER_DISABLE: &str = "admin.user.disable";
    pub const ADMIN_USER_ENABLE: &str = "admin.user.enable";
    pub const ADMIN_USER_SESSIONS_END: &str = "admin.user.sessions_end";
    pub const ADMIN_USER_DELETE: &str = "admin.user.delete";
    pub const ADMIN_USER_RESTORE: &str = "admin.user.restore";
    pub const ADMIN_USER_PURGE: &str = "admin.user.purge";
    /// A user created by an admin with an invitation e-mail (no password yet).
    pub const ADMIN_USER_INVITE: &str = "admin.user.invite";
    /// An admin sent a user the password-reset e-mail.
    pub const ADMIN_USER_PASSWORD_RESET: &str = "admin.user.password_reset";
    /// An admin sent a user who has not chosen a password yet a new invitation link (the older
    /// links stop working).
    pub const ADMIN_USER_INVITATION_RESEND: &str = "admin.user.invitation_resend";
    /// An admin put a given-up message back in the queue, as it was or re-issued as a fresh one
    /// (details: the message id, `mode`, the queued message's id; never a body).
    pub const ADMIN_MAIL_REQUEUE: &str = "admin.mail.requeue";
    /// An invited person chose a password through the invitation link.
    pub const INVITATION_ACCEPT: &str = "invitation.accept";
    pub const ADMIN_ROLE_GRANT: &str = "admin.role.grant";
    pub const ADMIN_ROLE_REVOKE: &str = "admin.role.revoke";
    pub const ADMIN_CLIENT_CREATE: &str = "admin.client.create";
    pub const ADMIN_CLIENT_UPDATE: &str = "admin.client.update";
    pub const ADMIN_CLIENT_SECRET_ROTATE: &str = "admin.client.secret_rotate";
    pub const ADMIN_CLIENT_DELETE: &str = "admin.client.delete";
    pub const ADMIN_GROUP_CREATE: &str = "admin.group.create";
    pub const ADMIN_GROUP_RENAME: &str = "admin.group.rename";
    pub const ADMIN_GROUP_DELETE: &str = "admin.group.delete";
    pub const ADMIN_GROUP_MEMBER_ADD: &str = "admin.group.member_add";
    pub const ADMIN_GROUP_MEMBER_REMOVE: &str = "admin.group.member_remove";
    pub const PROFILE_UPDATE: &str = "profile.update";
    pub const EMAIL_CHANGE: &str = "email.change";
    pub const SESSION_END: &str = "session.end";
    pub const ACCOUNT_DELETE: &str = "account.delete";
    pub const MFA_TOTP_ENABLE: &str = "mfa.totp.enable";
    pub const MFA_TOTP_REMOVE: &str = "mfa.totp.remove";
    pub const MFA_RECOVERY_USE: &str = "mfa.recovery.use";
    pub const MFA_RECOVERY_REGENERATE: &str = "mfa.recovery.regenerate";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Where a request came from, as the web layer saw it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// An event being built: `Event::new(action::LOGIN).actor(&user.id).failure("bad_password")`.
#[derive(Debug, Clone)]
pub struct Event {
    action: &'static str,
    actor: Option<String>,
    target: Option<String>,
    client_id: Option<String>,
    origin: Origin,
    outcome: Outcome,
    details: Map<String, Value>,
}

impl Event {
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            actor: None,
            target: None,
            client_id: None,
            origin: Origin::default(),
            outcome: Outcome::Success,
            details: Map::new(),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn origin(mut self, origin: &Origin) -> Self {
        self.origin = origin.clone();
        self
    }

    /// A failed attempt, with a short machine-readable reason (`bad_password`, `unknown_user`).
    pub fn failure(mut self, reason: &str) -> Self {
        self.outcome = Outcome::Failure;
        self.details.insert("reason".into(), reason.into());
        self
    }

    /// Extra non-secret context (changed field names, before/after of non-secret values).
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    pub fn into_record(self, now: i64) -> AuditRecord {
        AuditRecord {
            id: uuid::Uuid::now_v7().to_string(),
            at: now,
            actor: self.actor,
            action: self.action.to_owned(),
            target: self.target,
            client_id: self.client_id,
            ip: self.origin.ip,
            user_agent: self.origin.user_agent,
            outcome: self.outcome.as_str().to_owned(),
            details: Value::Object(self.details).to_string(),
        }
    }
}

/// Append `event`; a failure is logged and swallowed (the caller's action already happened).
pub async fn record(store: &dyn Store, event: Event) {
    let action = event.action;
    if let Err(e) = store.append_audit(&event.into_record(crate::now())).await {
        tracing::error!(error = %e, action, "cannot write audit entry");
    }
}
