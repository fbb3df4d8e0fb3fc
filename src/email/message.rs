//! The messages Portcullis sends, each with its template folder and its fields.

use serde::Serialize;
use tera::Context;

/// The messages Portcullis sends. Each names its template folder and fills its context.
/// Serialised untagged: each variant becomes the map of its fields, which is the template
/// context.
#[derive(Clone, Serialize)]
#[serde(untagged)]
pub enum Message {
    /// Confirm an address: a single-use link and a 6-digit code.
    VerifyEmail {
        name: Option<String>,
        link: String,
        code: String,
        link_hours: i64,
        code_minutes: i64,
    },
    /// Someone tried to sign up with an address that already has an account.
    AlreadyRegistered {
        login_link: String,
        reset_link: String,
    },
    /// A single-use password-reset link.
    PasswordReset {
        name: Option<String>,
        link: String,
        minutes: i64,
    },
    /// Notice after the password changed.
    PasswordChanged {
        name: Option<String>,
        reset_link: String,
    },
    /// To a new address: confirm it before it replaces the old one.
    EmailChange {
        name: Option<String>,
        link: String,
        link_hours: i64,
    },
    /// To the old address after the change.
    EmailChanged {
        name: Option<String>,
        new_email: String,
    },
    /// A one-time sign-in code.
    LoginCode {
        name: Option<String>,
        code: String,
        minutes: i64,
    },
    /// An administrator created the account: a single-use link to choose the first password.
    Invitation {
        name: Option<String>,
        link: String,
        /// How long the link works: whole days, or `0` and then `valid_hours`. Numbers rather
        /// than words, so that each translation says it in its own language.
        valid_days: i64,
        valid_hours: i64,
    },
}

impl std::fmt::Debug for Message {
    // Links and codes are secrets: only the kind is printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.template())
    }
}

impl Message {
    pub(super) fn template(&self) -> &'static str {
        match self {
            Self::VerifyEmail { .. } => "verify_email",
            Self::AlreadyRegistered { .. } => "already_registered",
            Self::PasswordReset { .. } => "password_reset",
            Self::PasswordChanged { .. } => "password_changed",
            Self::EmailChange { .. } => "email_change",
            Self::EmailChanged { .. } => "email_changed",
            Self::LoginCode { .. } => "login_code",
            Self::Invitation { .. } => "invitation",
        }
    }

    /// The template context: the variant's fields by name (`Context::from_serialize`).
    pub(super) fn context(&self) -> Result<Context, tera::Error> {
        Context::from_serialize(self)
    }
}
