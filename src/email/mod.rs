//! E-mail: typed messages rendered from `templates/email/<name>/{subject.txt, body.txt,
//! body.html}`, a transactional outbox (`MailStore`), and the background worker that delivers
//! it with retries and exponential back-off through SMTP (lettre) or into files.
//!
//! The same outbox and worker carry text messages (`NewMail::sms`, channel `sms`): they go out
//! through the configured `SmsSender`, are not sent after the code they carry expired, and their
//! text is blanked once delivered, abandoned or expired. A message queued with a one-time code
//! (SMS or e-mail) is not sent either once a newer code of the same purpose was issued to the
//! same user: `AccountStore::issue_codes` gives it up as `superseded`.
//!
//! How to send mail from a feature:
//! 1. `let mail = state.mailer.render(&to, &Message::PasswordReset { .. })?;` (a `NewMail`);
//! 2. hand it to the store method that makes the change (e.g. `AccountStore::reset_password`),
//!    so the mail is queued in the same transaction, or call `mailer.enqueue(store, mail)` when
//!    there is no change to tie it to;
//! 3. `state.mailer.wake()` after the commit, so the worker sends it now rather than at its next
//!    poll.
//!
//! Links in mails are built from `settings.issuer()` only, never from a request's `Host`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tera::Tera;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::{MailSettings, MailTransport};
use crate::sms::{SmsError, SmsSender};
use crate::store::{Channel, NewMail, OutboxMail, Store, StoreError};
use templates::TEMPLATES;

pub mod compose;
mod message;
mod templates;

pub use compose::{Composer, Outgoing, Recipient};
pub use message::Message;

/// How long a claimed message is reserved for one worker before another may retry it. The
/// worker renews its claims every `RENEW_EVERY` while it works through a batch (an SMTP attempt
/// may take up to 20 s), so a claim outlives its worker by at most this long: after a crash or a
/// `kill -9`, the next process (or another node) retries the message within `LEASE_SECS`. No
/// owner is recorded, so this holds with any number of nodes on one database.
pub const LEASE_SECS: i64 = 15;
/// How often a working worker pushes its claims `LEASE_SECS` ahead.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Messages claimed per round.
const BATCH: i64 = 20;
/// Longest wait between two attempts.
const MAX_BACKOFF_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("template: {0}")]
    Template(#[from] tera::Error),
    #[error("address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("file: {0}")]
    File(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("sms: {0}")]
    Sms(#[from] SmsError),
}

enum Transport {
    File(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Renders messages and delivers the outbox (mail and SMS). One per process, shared through
/// `AppState`.
pub struct Mailer {
    tera: Tera,
    from: Mailbox,
    transport: Transport,
    sms: Arc<dyn SmsSender>,
    wake: Notify,
    max_attempts: i64,
    retry_base: i64,
    poll_interval: Duration,
    /// The server's clock (the outbox's times are on it).
    clock: Clock,
}

impl Mailer {
    /// `sms` delivers the outbox rows of channel `sms`; `clock` is the server's.
    pub fn new(
        settings: &MailSettings,
        sms: Arc<dyn SmsSender>,
        clock: Clock,
    ) -> Result<Self, MailError> {
        let mut tera = Tera::new();
        // Names end in .txt (no escaping: plain text) or .html (escaped).
        tera.add_raw_templates(TEMPLATES.iter().copied())?;
        let transport = match settings.transport {
            MailTransport::File => Transport::File(settings.dir.clone()),
            MailTransport::Smtp => {
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())?
                        .timeout(Some(Duration::from_secs(20)));
                if !settings.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        settings.smtp_username.clone(),
                        settings.smtp_password.expose().to_owned(),
                    ));
                }
                Transport::Smtp(builder.build())
            }
        };
        Ok(Self {
            tera,
            from: settings.from.parse()?,
            transport,
            sms,
            wake: Notify::new(),
            max_attempts: settings.max_attempts,
            retry_base: settings.retry_base,
            poll_interval: Duration::from_secs(settings.poll_interval.unsigned_abs()),
            clock,
        })
    }

    /// Render `message` for `to` (subject, plain text and HTML parts) in the default language.
    pub fn render(&self, to: &str, message: &Message) -> Result<NewMail, MailError> {
        self.render_in(to, message, None)
    }

    /// Render in `locale` (a BCP 47 tag such as `ko-KR`) when a translation exists
    /// (`templates/email/<name>/<language>/`), else in the default language.
    pub fn render_in(
        &self,
        to: &str,
        message: &Message,
        locale: Option<&str>,
    ) -> Result<NewMail, MailError> {
        let base = message.template();
        let language = locale
            .and_then(|l| l.split(['-', '_']).next())
            .map(str::to_ascii_lowercase)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase()));
        let localized = language.map(|l| format!("{base}/{l}"));
        let name = match &localized {
            Some(n)
                if TEMPLATES
                    .iter()
                    .any(|(t, _)| *t == format!("{n}/subject.txt")) =>
            {
                n.as_str()
            }
            _ => base,
        };
        let ctx = message.context()?;
        let subject = self.tera.render(&format!("{name}/subject.txt"), &ctx)?;
        Ok(NewMail {
            recipient: to.to_owned(),
            subject: subject.lines().next().unwrap_or_default().trim().to_owned(),
            body_text: self.tera.render(&format!("{name}/body.txt"), &ctx)?,
            body_html: self.tera.render(&format!("{name}/body.html"), &ctx)?,
            channel: Channel::Email,
            expires_at: None,
        })
    }

    /// Queue one mail on its own and wake the worker.
    pub async fn enqueue(&self, store: &dyn Store, mail: &NewMail) -> Result<(), MailError> {
        store.enqueue_mail(mail, self.clock.now()).await?;
        self.wake();
        Ok(())
    }

    /// Tell the worker that new mail is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn deliver(&self, mail: &OutboxMail) -> Result<(), MailError> {
        if mail.is_sms() {
            self.sms.send(&mail.recipient, &mail.body_text).await?;
            return Ok(());
        }
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(mail.recipient.parse()?)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                mail.body_html.clone(),
            ))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message).await?;
            }
            Transport::File(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                // Write then rename, so a reader never sees half a message.
                let tmp = dir.join(format!(".{}.tmp", mail.id));
                tokio::fs::write(&tmp, message.formatted()).await?;
                tokio::fs::rename(&tmp, dir.join(format!("{}.eml", mail.id))).await?;
            }
        }
        Ok(())
    }

    /// Seconds to wait after the `attempts`-th failed attempt: base·2^(attempts-1), capped.
    fn backoff(&self, attempts: i64) -> i64 {
        let exp = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
        self.retry_base
            .saturating_mul(2_i64.saturating_pow(exp))
            .min(MAX_BACKOFF_SECS)
    }

    /// One round: deliver every due message. Returns how many were claimed.
    pub async fn deliver_due(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let batch = store.claim_due_mail(now, LEASE_SECS, BATCH).await?;
        let mut held_until = now + LEASE_SECS;
        for (i, mail) in batch.iter().enumerate() {
            // Locked for the attempt: on several nodes, a message whose lease ran out while
            // this worker was busy is sent by whoever locks it first, and only once.
            let Some(lock) = store.lock_mail_for_send(&mail.id).await? else {
                continue;
            };
            let outcome = {
                let send = self.deliver(mail);
                tokio::pin!(send);
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + RENEW_EVERY,
                    RENEW_EVERY,
                );
                loop {
                    tokio::select! {
                        r = &mut send => break r,
                        _ = tick.tick() => {
                            // The rest of the batch stays ours while we live (this message is
                            // held by its lock; renewing it would wait for that very lock).
                            let ids: Vec<&str> =
                                batch[i + 1..].iter().map(|m| m.id.as_str()).collect();
                            let until = self.clock.now() + LEASE_SECS;
                            match store.renew_mail_claims(&ids, held_until, until).await {
                                Ok(()) => held_until = until,
                                Err(e) => tracing::warn!(error = %e, "cannot renew mail claims"),
                            }
                        }
                    }
                }
            };
            match outcome {
                Ok(()) => {
                    tracing::info!(mail.id = %mail.id, channel = %mail.channel, "mail delivered");
                    lock.sent(self.clock.now()).await?;
                }
                Err(e) => {
                    crate::observability::delivery_failed(if mail.channel == "sms" {
                        "sms"
                    } else {
                        "email"
                    });
                    let attempts = mail.attempts + 1;
                    let give_up = attempts >= self.max_attempts;
                    let now = self.clock.now();
                    let error: String = e.to_string().chars().take(500).collect();
                    if give_up {
                        tracing::error!(mail.id = %mail.id, channel = %mail.channel, attempts, error = %error, "mail delivery failed; giving up");
                    } else {
                        tracing::warn!(mail.id = %mail.id, channel = %mail.channel, attempts, error = %error, "mail delivery failed; will retry");
                    }
                    lock.failed(&error, now + self.backoff(attempts), give_up, now)
                        .await?;
                }
            }
        }
        Ok(batch.len())
    }
}

/// The delivery worker: runs until the task is aborted (at shutdown). A message is marked sent
/// only after the transport accepted it, so a crash means a retry, never a loss.
pub async fn run_worker(store: Arc<dyn Store>, mailer: Arc<Mailer>) {
    loop {
        match mailer.deliver_due(store.as_ref()).await {
            // A full batch: there may be more due right away.
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mail outbox unavailable; will retry"),
        }
        tokio::select! {
            () = mailer.wake.notified() => {}
            () = tokio::time::sleep(mailer.poll_interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        let settings =
            crate::config::Settings::load_from(None, std::path::Path::new("/nonexistent"), &[])
                .unwrap()
                .settings;
        let sms = crate::sms::from_settings(&settings.sms).unwrap();
        Mailer::new(&settings.mail, sms, crate::clock::Clock::default()).unwrap()
    }

    #[test]
    fn renders_all_three_parts_and_escapes_html() {
        let m = mailer()
            .render(
                "ann@example.com",
                &Message::VerifyEmail {
                    name: Some("<Ann>".into()),
                    link: "http://127.0.0.1:8080/verify-email/confirm?token=abc".into(),
                    code: "123456".into(),
                    link_hours: 24,
                    code_minutes: 15,
                },
            )
            .unwrap();
        assert_eq!(m.subject, "Confirm your e-mail address");
        assert!(m.body_text.contains("Hello <Ann>,"));
        assert!(m.body_text.contains("123456"));
        assert!(m.body_html.contains("&lt;Ann&gt;"));
        assert!(!format!("{m:?}").contains("123456"));
    }

    #[test]
    fn localised_when_a_translation_exists() {
        let m = mailer();
        let msg = Message::LoginCode {
            name: None,
            code: "123456".into(),
            minutes: 10,
        };
        let ko = m.render_in("a@example.com", &msg, Some("ko-KR")).unwrap();
        assert_eq!(ko.subject, "로그인 코드");
        assert!(ko.body_text.contains("123456"));
        let fallback = m.render_in("a@example.com", &msg, Some("xx")).unwrap();
        assert_eq!(fallback.subject, "Your sign-in code");
        let none = m
            .render_in("a@example.com", &msg, Some("../../etc"))
            .unwrap();
        assert_eq!(none.subject, "Your sign-in code");
    }

    #[test]
    fn invitation_lifetime_in_each_language() {
        let m = mailer();
        let msg = |valid_days, valid_hours| Message::Invitation {
            name: Some("Ivy".into()),
            link: "http://127.0.0.1:8080/reset-password?token=abc".into(),
            valid_days,
            valid_hours,
        };
        for (days, hours, en, ko) in [
            (7, 0, "valid for 7 days,", "(7일 동안 유효"),
            (1, 0, "valid for 1 day,", "(1일 동안 유효"),
            (0, 1, "valid for 1 hour,", "(1시간 동안 유효"),
            (0, 25, "valid for 25 hours,", "(25시간 동안 유효"),
        ] {
            let mail = m.render("a@example.com", &msg(days, hours)).unwrap();
            assert_eq!(mail.subject, "You are invited: choose your password");
            assert!(mail.body_text.contains(en), "{}", mail.body_text);
            assert!(mail.body_html.contains(en), "{}", mail.body_html);
            let mail = m
                .render_in("a@example.com", &msg(days, hours), Some("ko"))
                .unwrap();
            assert_eq!(mail.subject, "초대: 비밀번호를 정하세요");
            assert!(mail.body_text.contains("Ivy님"));
            assert!(mail.body_text.contains(ko), "{}", mail.body_text);
            assert!(mail.body_html.contains(ko), "{}", mail.body_html);
            assert!(mail.body_text.contains("token=abc"));
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let m = mailer();
        assert_eq!(m.backoff(1), 30);
        assert_eq!(m.backoff(2), 60);
        assert_eq!(m.backoff(3), 120);
        assert_eq!(m.backoff(40), MAX_BACKOFF_SECS);
    }
}
