//! Every message Portcullis sends, built in one place. A message that carries a single-use
//! secret (link token or code) is built together with the row that stores the secret's hash
//! (`NewAccountCode::link` / `NewAccountCode::code`), so that the caller stores both in the same
//! transaction. Links are built from the configured issuer only, never from a request.

use super::{MailError, Mailer, Message};
use crate::config::Settings;
use crate::domain::User;
use crate::store::{CodePurpose, NewAccountCode, NewMail};

/// Builds messages with the mailer's templates and the settings' lifetimes and issuer.
#[derive(Clone, Copy)]
pub struct Composer<'a> {
    pub mailer: &'a Mailer,
    pub settings: &'a Settings,
}

/// Who a message is for: the account it concerns and where it goes.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub user_id: &'a str,
    /// An e-mail address, or an E.164 number for text messages.
    pub to: &'a str,
    pub name: Option<String>,
    pub locale: Option<&'a str>,
}

impl<'a> Recipient<'a> {
    /// The account's own address.
    pub fn of(user: &'a User) -> Self {
        Self::at(user, &user.email)
    }

    /// The account, at another address or number (a new address, a phone number).
    pub fn at(user: &'a User, to: &'a str) -> Self {
        Self {
            user_id: &user.id,
            to,
            name: user.name.clone(),
            locale: user.locale.as_deref(),
        }
    }
}

/// A message and the secrets it carries, to be stored together.
#[derive(Debug)]
pub struct Outgoing {
    pub codes: Vec<NewAccountCode>,
    pub mail: NewMail,
}

/// How a one-time sign-in code travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChannel {
    Email,
    Sms,
}

impl Composer<'_> {
    /// An absolute link on this provider: `path`, with `?token=` when a token is given.
    pub fn link(&self, path: &str, token: Option<&str>) -> String {
        let mut url = format!("{}{path}", self.settings.issuer());
        if let Some(token) = token {
            url.push_str("?token=");
            url.push_str(token);
        }
        url
    }

    fn render(&self, r: &Recipient<'_>, message: &Message) -> Result<NewMail, MailError> {
        self.mailer.render_in(r.to, message, r.locale)
    }

    /// Confirm an address: a single-use link and a 6-digit code, both bound to `r.to`.
    pub fn verification(&self, r: &Recipient<'_>, now: i64) -> Result<Outgoing, MailError> {
        let a = &self.settings.accounts;
        let (token, link_row) = NewAccountCode::link(
            CodePurpose::EmailVerifyLink,
            r.to,
            now + a.verification_link_ttl,
        );
        let (code, code_row) = NewAccountCode::code(
            r.user_id,
            CodePurpose::EmailVerifyCode,
            r.to,
            now + a.verification_code_ttl,
        );
        let mail = self.render(
            r,
            &Message::VerifyEmail {
                name: r.name.clone(),
                link: self.link("/verify-email/confirm", Some(&token)),
                code,
                link_hours: a.verification_link_ttl / 3600,
                code_minutes: a.verification_code_ttl / 60,
            },
        )?;
        Ok(Outgoing {
            codes: vec![link_row, code_row],
            mail,
        })
    }

    /// A single-use password-reset link (the person's own request, or an administrator's).
    pub fn password_reset(&self, r: &Recipient<'_>, now: i64) -> Result<Outgoing, MailError> {
        let ttl = self.settings.accounts.reset_link_ttl;
        let (token, row) = NewAccountCode::link(CodePurpose::PasswordReset, r.to, now + ttl);
        let mail = self.render(
            r,
            &Message::PasswordReset {
                name: r.name.clone(),
                link: self.link("/reset-password", Some(&token)),
                minutes: ttl / 60,
            },
        )?;
        Ok(Outgoing {
            codes: vec![row],
            mail,
        })
    }

    /// An administrator's invitation: a single-use link to choose the first password.
    pub fn invitation(&self, r: &Recipient<'_>, now: i64) -> Result<Outgoing, MailError> {
        let ttl = self.settings.accounts.invitation_ttl;
        let (token, row) = NewAccountCode::link(CodePurpose::Invitation, r.to, now + ttl);
        let (valid_days, valid_hours) = lifetime(ttl);
        let mail = self.render(
            r,
            &Message::Invitation {
                name: r.name.clone(),
                link: self.link("/reset-password", Some(&token)),
                valid_days,
                valid_hours,
            },
        )?;
        Ok(Outgoing {
            codes: vec![row],
            mail,
        })
    }

    /// To a new address (`r.to`): confirm it before it replaces the old one.
    pub fn email_change(&self, r: &Recipient<'_>, now: i64) -> Result<Outgoing, MailError> {
        let ttl = self.settings.accounts.verification_link_ttl;
        let (token, row) = NewAccountCode::link(CodePurpose::EmailChange, r.to, now + ttl);
        let mail = self.render(
            r,
            &Message::EmailChange {
                name: r.name.clone(),
                link: self.link("/account/email/confirm", Some(&token)),
                link_hours: ttl / 3600,
            },
        )?;
        Ok(Outgoing {
            codes: vec![row],
            mail,
        })
    }

    /// A one-time sign-in code, by e-mail or by SMS to `r.to`.
    pub fn login_code(
        &self,
        r: &Recipient<'_>,
        channel: CodeChannel,
        now: i64,
    ) -> Result<Outgoing, MailError> {
        let ttl = self.settings.accounts.login_code_ttl;
        let (code, row) = NewAccountCode::code(r.user_id, CodePurpose::LoginCode, r.to, now + ttl);
        let minutes = ttl / 60;
        let mail = match channel {
            CodeChannel::Email => self.render(
                r,
                &Message::LoginCode {
                    name: r.name.clone(),
                    code,
                    minutes,
                },
            )?,
            // Queued with the code and sent by the outbox worker (retried while the gateway is
            // down, never after the code expired).
            CodeChannel::Sms => NewMail::sms(
                r.to,
                format!("Your sign-in code is {code}. It expires in {minutes} minutes."),
                row.expires_at,
            ),
        };
        Ok(Outgoing {
            codes: vec![row],
            mail,
        })
    }

    /// The SMS code that confirms a phone number (`r.to`).
    pub fn phone_code(&self, r: &Recipient<'_>, now: i64) -> Result<Outgoing, MailError> {
        let ttl = self.settings.accounts.phone_code_ttl;
        let (code, row) =
            NewAccountCode::code(r.user_id, CodePurpose::PhoneVerify, r.to, now + ttl);
        let text = format!(
            "Your confirmation code is {code}. It expires in {} minutes.",
            ttl / 60
        );
        let mail = NewMail::sms(r.to, text, row.expires_at);
        Ok(Outgoing {
            codes: vec![row],
            mail,
        })
    }

    /// Notice after the password changed.
    pub fn password_changed(&self, r: &Recipient<'_>) -> Result<NewMail, MailError> {
        self.render(
            r,
            &Message::PasswordChanged {
                name: r.name.clone(),
                reset_link: self.link("/forgot-password", None),
            },
        )
    }

    /// To the old address (`r.to`) after the change to `new_email`.
    pub fn email_changed(&self, r: &Recipient<'_>, new_email: &str) -> Result<NewMail, MailError> {
        self.render(
            r,
            &Message::EmailChanged {
                name: r.name.clone(),
                new_email: new_email.to_owned(),
            },
        )
    }

    /// Someone tried to sign up with `to`, which already has an account.
    pub fn already_registered(&self, to: &str) -> Result<NewMail, MailError> {
        self.mailer.render(
            to,
            &Message::AlreadyRegistered {
                login_link: self.link("/login", None),
                reset_link: self.link("/forgot-password", None),
            },
        )
    }
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

#[cfg(test)]
mod tests {
    use super::lifetime;

    #[test]
    fn lifetime_in_days_or_hours() {
        assert_eq!(lifetime(7 * 86_400), (7, 0));
        assert_eq!(lifetime(36 * 3600), (0, 36));
        assert_eq!(lifetime(600), (0, 1));
        assert_eq!(lifetime(86_400), (1, 0));
        assert_eq!(lifetime(90_000), (0, 25));
        assert_eq!(lifetime(60), (0, 1));
    }
}
