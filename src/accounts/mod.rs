//! Self-service accounts: every flow a person runs on their own account, as plain async
//! functions over the store that take typed input and return `AccountResult<T>`. The hosted
//! pages (`web::pages`) parse a form, call one function here and render its result; nothing here
//! knows about HTTP.
//!
//! - `signup`: create an account, confirm its address (code or link), resend;
//! - `signin`: the sign-in methods (password, one-time code by e-mail or SMS), each producing
//!   the same [`signin::Authenticated`] that a session records (RFC 8176 `amr`);
//! - `sessions`: the browser sessions those sign-ins start, look-up and sign-out;
//! - `reset`: forgotten password and administrator invitations;
//! - `profile`: the account page (profile, e-mail and phone changes, password change, sessions,
//!   consents, deletion);
//! - `mfa`: second factors (authenticator-app codes, recovery codes) and the second sign-in step;
//! - `limits`: per-IP and per-account abuse limits;
//! - `throttle`: sign-in throttling by failures, and the known devices that pass it.
//!
//! Every secret sent to a person is issued through `NewAccountCode::{link, code}` with the mail
//! that carries it (`email::Composer`), and both are stored in one transaction.

pub mod limits;
pub mod mfa;
pub mod profile;
pub mod reset;
pub mod security;
pub mod sessions;
pub mod signin;
pub mod signup;
pub mod throttle;

mod error;

use std::net::IpAddr;
use std::sync::Arc;

pub use error::{AccountError, AccountResult, FieldErrors, Refusal};
pub use limits::{Bucket, RateLimits};

use crate::audit::{self, Event, Origin, action};
use crate::config::Settings;
use crate::domain::User;
use crate::email::{Composer, Mailer, Outgoing};
use crate::oauth::Provider;
use crate::store::Store;

/// What the account flows work with: the provider (settings, store, hasher, logout worker), the
/// mailer and the abuse limits. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub provider: Provider,
    pub mailer: Arc<Mailer>,
    pub limits: Arc<RateLimits>,
}

/// Who is asking: the network address (for limits), the browser and its preferred language.
#[derive(Debug, Clone)]
pub struct Caller {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
    /// The first `Accept-Language` tag, for mail sent before the account has a `locale`.
    pub language: Option<String>,
    /// The known-device cookie the browser sent, if any (see `throttle`).
    pub device: Option<throttle::DeviceCookie>,
}

impl Caller {
    /// Where the request came from, for sessions and the audit log.
    pub fn origin(&self) -> Origin {
        Origin {
            ip: Some(self.ip.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }
}

/// The same words whatever happened, so the page never says whether an account exists.
pub const VERIFICATION_SENT: &str =
    "If this address needs confirming, we have sent it an e-mail with a link and a code.";

/// The least time the "we sent it if the account exists" answers take, whichever path ran, so
/// that response times do not tell known accounts (which cost a database write and a render)
/// from unknown ones. Above the usual cost of the known path.
const ANSWER_FLOOR: std::time::Duration = std::time::Duration::from_millis(150);

impl Accounts {
    pub fn store(&self) -> &dyn Store {
        self.provider.store.as_ref()
    }

    pub fn settings(&self) -> &Settings {
        &self.provider.settings
    }

    pub fn composer(&self) -> Composer<'_> {
        Composer {
            mailer: &self.mailer,
            settings: &self.provider.settings,
        }
    }

    pub(crate) async fn audit(&self, event: Event) {
        audit::record(self.store(), event).await;
    }

    /// Count this request against the per-IP limit of `bucket` and, when `account` is given,
    /// the per-account one. A refusal is logged, audited and answered `RateLimited`.
    pub async fn limit(
        &self,
        bucket: Bucket,
        caller: &Caller,
        account: Option<&str>,
    ) -> AccountResult<()> {
        let mut result = self.limits.check_ip(bucket, caller.ip).await?;
        if let (Ok(()), Some(a)) = (result, account) {
            result = self.limits.check_account(bucket, a).await?;
        }
        match result {
            Ok(()) => Ok(()),
            Err(limited) => Err(self.limited(bucket, limited, caller).await),
        }
    }

    /// Count this request against the per-account limit only (after `limit` counted the IP
    /// before the account was known).
    pub async fn limit_account(
        &self,
        bucket: Bucket,
        caller: &Caller,
        account: &str,
    ) -> AccountResult<()> {
        match self.limits.check_account(bucket, account).await? {
            Ok(()) => Ok(()),
            Err(limited) => Err(self.limited(bucket, limited, caller).await),
        }
    }

    pub(crate) async fn limited(
        &self,
        bucket: Bucket,
        limited: limits::Limited,
        caller: &Caller,
    ) -> AccountError {
        let scope = limited.scope.as_str();
        tracing::warn!(bucket = bucket.as_str(), scope, "rate limited");
        self.audit(
            Event::new(action::RATE_LIMITED)
                .origin(&caller.origin())
                .failure("rate_limited")
                .detail("endpoint", bucket.as_str())
                .detail("scope", scope),
        )
        .await;
        AccountError::RateLimited {
            retry_after_secs: limited.retry_after_secs(),
        }
    }

    /// Store the secrets of `out` for `user_id` (voiding older ones of the same purposes and
    /// giving up their queued messages) and queue its mail, in one transaction; then wake the
    /// outbox worker.
    pub(crate) async fn send(&self, user_id: &str, out: Outgoing, now: i64) -> AccountResult<()> {
        self.store()
            .issue_codes(user_id, &out.codes, &[out.mail], now)
            .await?;
        self.mailer.wake();
        Ok(())
    }

    /// Check a typed `code` against `user_id`'s newest live code of `purpose`, counting a wrong
    /// guess against it (a code dies after `accounts.code_max_attempts`). The used code, or why
    /// not for the audit trail: `wrong_code` or `no_live_code`. The one way every typed code is
    /// checked.
    pub(crate) async fn check_code(
        &self,
        user_id: &str,
        purpose: crate::store::CodePurpose,
        code: &str,
        now: i64,
    ) -> AccountResult<Result<crate::store::AccountCode, &'static str>> {
        use crate::store::{CodeCheck, NewAccountCode};
        if !NewAccountCode::is_code_shaped(code) {
            return Ok(Err("wrong_code"));
        }
        let check = self
            .store()
            .check_code(
                user_id,
                purpose,
                &NewAccountCode::code_hash(user_id, code),
                self.settings().accounts.code_max_attempts,
                now,
            )
            .await?;
        Ok(match check {
            CodeCheck::Accepted(c) => Ok(c),
            CodeCheck::Wrong => Err("wrong_code"),
            CodeCheck::NoLiveCode => Err("no_live_code"),
        })
    }

    /// Whether a code of `purpose` went to `user` less than the resend cool-down ago.
    pub(crate) async fn in_cooldown(
        &self,
        user: &User,
        purpose: crate::store::CodePurpose,
        now: i64,
    ) -> AccountResult<bool> {
        let last = self.store().last_code_issued_at(&user.id, purpose).await?;
        Ok(last.is_some_and(|t| now - t < self.settings().accounts.resend_cooldown))
    }
}

/// Wait until `ANSWER_FLOOR` has passed since `started`.
pub(crate) async fn equalise(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + ANSWER_FLOOR).await;
}

/// A plausible BCP 47 language tag (`en`, `ko-KR`, `zh-Hant-TW`).
pub fn is_language_tag(tag: &str) -> bool {
    tag.len() <= 35
        && tag.split('-').all(|part| {
            !part.is_empty() && part.len() <= 8 && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}
