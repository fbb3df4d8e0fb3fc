//! The sign-in methods. Each checks one kind of proof and produces the same [`Authenticated`]:
//! who, by which methods, when. A session records it (`sessions::start`), and ID tokens state
//! it as `amr` (RFC 8176) and `auth_time`. New methods (TOTP, passkeys, upstream providers) add
//! a [`Method`] and a function here; the rest of the flow does not change.
//!
//! Password: one generic answer for any wrong identifier or password, with the same work done
//! either way (a dummy argon2 verification for unknown accounts). One-time code: a 6-digit code
//! sent to the account's e-mail address or verified phone number, single use, valid
//! `accounts.login_code_ttl` seconds, dead after `accounts.code_max_attempts` wrong guesses,
//! bound to where it was sent; the answers are the same for unknown identifiers. Both count
//! failures, not requests, through `throttle` (a known device passes failures others caused).

use super::{AccountError, AccountResult, Accounts, Bucket, Caller, equalise, signup, throttle};
use crate::audit::{Event, action};
use crate::domain::{Email, Password, Phone, User};
use crate::email::Recipient;
use crate::email::compose::CodeChannel;
use crate::store::{CodePurpose, NewAccountCode};

pub const BAD_CREDENTIALS: &str = "The e-mail address or password is incorrect.";
pub const CODE_SENT: &str =
    "If this is the address or confirmed number of an account, we have sent it a sign-in code.";
pub const BAD_CODE: &str = "That code is wrong or has expired. Go back to ask for a new one.";
const BAD_IDENTIFIER: &str =
    "Enter your e-mail address, or your phone number starting with + and the country code.";

/// A way of proving who one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The account's password.
    Password,
    /// A one-time code sent by e-mail.
    EmailCode,
    /// A one-time code sent by SMS to the verified number.
    SmsCode,
    /// A code from the account's authenticator app (TOTP, RFC 6238): a second step only.
    Totp,
    /// One of the account's recovery codes, instead of an authenticator-app code.
    RecoveryCode,
}

impl Method {
    /// The RFC 8176 `amr` values this method stands for.
    pub fn amr(self) -> &'static [&'static str] {
        match self {
            Self::Password => &["pwd"],
            Self::EmailCode => &["otp"],
            Self::SmsCode => &["otp", "sms"],
            Self::Totp | Self::RecoveryCode => &["otp"],
        }
    }

    /// The factor class (RFC 8176 §2 `mfa`: "multiple-factor authentication"): what one knows
    /// (password) or what one has (a mailbox, a phone).
    fn factor(self) -> Factor {
        match self {
            Self::Password => Factor::Knowledge,
            Self::EmailCode | Self::SmsCode | Self::Totp | Self::RecoveryCode => Factor::Possession,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    Knowledge,
    Possession,
}

/// A person who proved who they are: the result of every sign-in method.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub methods: Vec<Method>,
    /// When (the session's and ID tokens' `auth_time`).
    pub at: i64,
}

impl Authenticated {
    pub fn new(user: User, method: Method, at: i64) -> Self {
        Self {
            user,
            methods: vec![method],
            at,
        }
    }

    /// The `amr` values, in a stable order without repeats; `mfa` when the methods span more
    /// than one factor class.
    pub fn amr(&self) -> Vec<String> {
        let mut amr: Vec<String> = Vec::new();
        for m in &self.methods {
            for v in m.amr() {
                if !amr.iter().any(|a| a == v) {
                    amr.push((*v).to_owned());
                }
            }
        }
        let first = self.methods.first().map(|m| m.factor());
        if self.methods.iter().any(|m| Some(m.factor()) != first) {
            amr.push("mfa".to_owned());
        }
        amr
    }
}

/// What a sign-in attempt led to.
#[derive(Debug)]
pub enum SignIn {
    /// Proven: start a session.
    Done(Box<Authenticated>),
    /// The proof was right, but the address must be confirmed first: a link and code were sent
    /// (unless moments ago) to `email`.
    VerifyEmailFirst { email: String },
}

/// An e-mail address or a phone number, normalised.
#[derive(Debug, Clone)]
pub enum Identifier {
    Email(Email),
    Phone(Phone),
}

impl Identifier {
    /// `@` decides: an address, else a number (E.164 after normalisation).
    pub fn parse(input: &str) -> Option<Self> {
        if input.contains('@') {
            Email::parse(input).ok().map(Self::Email)
        } else {
            Phone::parse(input).ok().map(Self::Phone)
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }

    /// What the per-account limits count by: every form of one address is one account.
    pub fn limit_key(&self) -> &str {
        match self {
            Self::Email(e) => e.canonical(),
            Self::Phone(p) => p.as_str(),
        }
    }

    /// The active account it names (phones: only verified ones).
    async fn user(&self, acc: &Accounts) -> AccountResult<Option<User>> {
        let store = acc.store();
        let found = match self {
            Self::Email(e) => store.find_user_by_email(e).await?,
            Self::Phone(p) => store.find_user_by_phone(p.as_str()).await?,
        };
        Ok(found.filter(User::is_active))
    }
}

/// Sign in with an identifier (e-mail address or verified phone number) and password.
/// `Invalid` with field `credentials` for any wrong pair.
pub async fn password(
    acc: &Accounts,
    caller: &Caller,
    identifier: &str,
    password: &str,
    now: i64,
) -> AccountResult<SignIn> {
    let result = with_password(acc, caller, identifier, password, now).await;
    count("password", &result);
    result
}

/// Count a sign-in attempt for /metrics (`observability::SIGNINS`).
fn count(method: &'static str, result: &AccountResult<SignIn>) {
    let outcome = match result {
        Ok(SignIn::Done(_)) => "success",
        Ok(SignIn::VerifyEmailFirst { .. }) => "unverified",
        Err(AccountError::Invalid(_) | AccountError::Refused(_)) => "failure",
        Err(AccountError::RateLimited { .. }) => "rate_limited",
        Err(AccountError::Internal { .. }) => "error",
        Err(AccountError::Unavailable) => "unavailable",
    };
    crate::observability::signin(method, outcome);
}

async fn with_password(
    acc: &Accounts,
    caller: &Caller,
    identifier: &str,
    password: &str,
    now: i64,
) -> AccountResult<SignIn> {
    let id = Identifier::parse(identifier);
    let attempt = throttled(acc, caller, id.as_ref(), now).await?;
    let Some(user) = check_credentials(acc, identifier, password, now).await? else {
        tracing::info!("sign-in failed: bad credentials");
        acc.audit(
            Event::new(action::LOGIN)
                .origin(&caller.origin())
                .failure("bad_credentials"),
        )
        .await;
        return Err(AccountError::field("credentials", BAD_CREDENTIALS));
    };
    attempt.succeeded(acc).await;
    held_for_verification(
        acc,
        caller,
        Authenticated::new(user, Method::Password, now),
        now,
    )
    .await
}

/// Let a sign-in attempt for `id` through `throttle` (the account is looked up only when the
/// browser sent a device cookie, to see whether it is known there).
async fn throttled(
    acc: &Accounts,
    caller: &Caller,
    id: Option<&Identifier>,
    now: i64,
) -> AccountResult<throttle::Attempt> {
    let user = match (&caller.device, id) {
        (Some(_), Some(id)) => id.user(acc).await?,
        _ => None,
    };
    let key = id.map(Identifier::limit_key);
    throttle::begin(acc, caller, key, user.as_ref(), now).await
}

/// The right proof of an account whose address is unconfirmed (when confirmation is required)
/// does not sign in: it sends a code (unless one was sent moments ago) instead.
async fn held_for_verification(
    acc: &Accounts,
    caller: &Caller,
    auth: Authenticated,
    now: i64,
) -> AccountResult<SignIn> {
    let user = &auth.user;
    if user.email_verified || !acc.settings().accounts.require_verified_email {
        return Ok(SignIn::Done(Box::new(auth)));
    }
    tracing::info!(user.id = %user.id, "sign-in held: e-mail address not verified");
    acc.audit(
        Event::new(action::LOGIN)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin())
            .failure("email_not_verified"),
    )
    .await;
    signup::resend_verification(acc, user, caller, now).await?;
    Ok(SignIn::VerifyEmailFirst {
        email: user.email.clone(),
    })
}

/// The active user these credentials belong to, or `None` (for any reason: the answer must not
/// say which). Unknown or malformed identifiers still cost one argon2 verification.
async fn check_credentials(
    acc: &Accounts,
    identifier: &str,
    password: &str,
    now: i64,
) -> AccountResult<Option<User>> {
    let provider = &acc.provider;
    // An e-mail address, or a verified phone number (E.164 after normalisation).
    let user = match (Email::parse(identifier), Phone::parse(identifier)) {
        (Ok(email), _) => provider.store.find_user_by_email(&email).await?,
        (Err(_), Ok(phone)) => provider.store.find_user_by_phone(phone.as_str()).await?,
        (Err(_), Err(_)) => None,
    };
    // Over-long passwords are refused without hashing, for known and unknown users alike.
    let too_long = password.len() > Password::MAX_BYTES;
    let hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    let ok = !too_long && provider.hasher.verify(password, hash).await?;
    let Some(user) = user.filter(|u| ok && u.is_active()) else {
        return Ok(None);
    };
    // Upgrade hashes made with older parameters, now that we hold the password.
    if let Some(h) = user.password_hash.as_deref()
        && provider.hasher.needs_rehash(h)
        && let Ok(pw) = Password::parse(password)
        && let Ok(new_hash) = provider.hasher.hash(&pw).await
    {
        let _ = provider
            .store
            .set_password_hash(&user.id, &new_hash, now)
            .await;
    }
    Ok(Some(user))
}

/// Check `password` against `user`'s (rate limited like a sign-in): for the account page's
/// changes that need the current password.
pub async fn confirm_password(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    password: &str,
) -> AccountResult<bool> {
    let key =
        Email::parse(&user.email).map_or_else(|_| user.email.clone(), |e| e.canonical().to_owned());
    acc.limit(Bucket::Login, caller, Some(&key)).await?;
    if password.len() > Password::MAX_BYTES {
        return Ok(false);
    }
    Ok(acc
        .provider
        .hasher
        .verify(password, user.password_hash.as_deref())
        .await?)
}

/// Send a sign-in code to `identifier` when it names an account and the cool-down has passed.
/// Answers the same either way (after the same least time); returns the normalised identifier
/// to show on the code form. `Invalid` (field `identifier`) when it is neither an address nor a
/// number.
pub async fn request_code(
    acc: &Accounts,
    caller: &Caller,
    identifier: &str,
    now: i64,
) -> AccountResult<String> {
    let started = tokio::time::Instant::now();
    let id = Identifier::parse(identifier);
    acc.limit(
        Bucket::CodeRequest,
        caller,
        id.as_ref().map(Identifier::limit_key),
    )
    .await?;
    let Some(id) = id else {
        return Err(AccountError::field("identifier", BAD_IDENTIFIER));
    };
    match id.user(acc).await? {
        Some(user) => {
            let channel = match id {
                Identifier::Email(_) => CodeChannel::Email,
                Identifier::Phone(_) => CodeChannel::Sms,
            };
            if !acc.in_cooldown(&user, CodePurpose::LoginCode, now).await? {
                // To the account's address as stored, whichever form of it was typed.
                let to = match &id {
                    Identifier::Email(_) => user.email.as_str(),
                    Identifier::Phone(p) => p.as_str(),
                };
                let out = acc
                    .composer()
                    .login_code(&Recipient::at(&user, to), channel, now)?;
                acc.send(&user.id, out, now).await?;
            }
            acc.audit(
                Event::new(action::CODE_REQUEST)
                    .target(&user.id)
                    .origin(&caller.origin())
                    .detail("purpose", "login")
                    .detail(
                        "channel",
                        if channel == CodeChannel::Sms {
                            "sms"
                        } else {
                            "email"
                        },
                    ),
            )
            .await;
        }
        None => {
            acc.audit(
                Event::new(action::CODE_REQUEST)
                    .origin(&caller.origin())
                    .failure("unknown_account")
                    .detail("purpose", "login"),
            )
            .await;
        }
    }
    equalise(started).await;
    Ok(id.as_str().to_owned())
}

/// Sign in with a code sent by `request_code`. `Invalid` (field `code`) for any wrong,
/// expired, used or misdirected code, or an unknown identifier.
pub async fn verify_code(
    acc: &Accounts,
    caller: &Caller,
    identifier: &str,
    code: &str,
    now: i64,
) -> AccountResult<SignIn> {
    let result = with_code(acc, caller, identifier, code, now).await;
    let method = match Identifier::parse(identifier) {
        Some(Identifier::Email(_)) => "email_code",
        Some(Identifier::Phone(_)) => "sms_code",
        None => "code",
    };
    count(method, &result);
    result
}

async fn with_code(
    acc: &Accounts,
    caller: &Caller,
    identifier: &str,
    code: &str,
    now: i64,
) -> AccountResult<SignIn> {
    let wrong = || AccountError::field("code", BAD_CODE);
    let id = Identifier::parse(identifier);
    let attempt = throttled(acc, caller, id.as_ref(), now).await?;
    let Some(id) = id.filter(|_| NewAccountCode::is_code_shaped(code)) else {
        return Err(wrong());
    };
    let Some(mut user) = id.user(acc).await? else {
        return Err(wrong());
    };
    let store = acc.store();
    let accepted = match acc
        .check_code(&user.id, CodePurpose::LoginCode, code, now)
        .await?
    {
        Ok(c) => c,
        Err(reason) => {
            acc.audit(
                Event::new(action::LOGIN)
                    .target(&user.id)
                    .origin(&caller.origin())
                    .failure(reason)
                    .detail("method", "code"),
            )
            .await;
            return Err(wrong());
        }
    };
    // Bound to where it was sent: it must still be this account's address or verified number.
    let still_bound = match &id {
        Identifier::Email(e) => {
            Email::parse(&accepted.target).is_ok_and(|sent_to| &sent_to == e)
                && user.email == accepted.target
        }
        Identifier::Phone(p) => {
            accepted.target == p.as_str()
                && user.phone_number.as_deref() == Some(accepted.target.as_str())
                && user.phone_number_verified
        }
    };
    if !still_bound {
        return Err(wrong());
    }
    let method = match &id {
        Identifier::Email(_) => {
            if !user.email_verified {
                // The code proves the person reads this mailbox.
                if !store
                    .mark_email_verified(&user.id, &accepted.target, now)
                    .await?
                {
                    return Err(wrong());
                }
                user.email_verified = true;
            }
            Method::EmailCode
        }
        Identifier::Phone(_) => Method::SmsCode,
    };
    attempt.succeeded(acc).await;
    held_for_verification(acc, caller, Authenticated::new(user, method, now), now).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: "u".into(),
            email: "a@example.com".into(),
            email_verified: true,
            password_hash: None,
            name: None,
            given_name: None,
            family_name: None,
            phone_number: None,
            phone_number_verified: false,
            picture: None,
            locale: None,
            roles: vec![],
            groups: vec![],
            created_at: 0,
            updated_at: 0,
            disabled_at: None,
        }
    }

    #[test]
    fn amr_per_method_and_mfa_across_factors() {
        let pwd = Authenticated::new(user(), Method::Password, 1);
        assert_eq!(pwd.amr(), ["pwd"]);
        let sms = Authenticated::new(user(), Method::SmsCode, 1);
        assert_eq!(sms.amr(), ["otp", "sms"]);
        let both = Authenticated {
            methods: vec![Method::Password, Method::EmailCode],
            ..pwd
        };
        assert_eq!(both.amr(), ["pwd", "otp", "mfa"]);
        let two_codes = Authenticated {
            methods: vec![Method::EmailCode, Method::SmsCode],
            ..sms
        };
        assert_eq!(two_codes.amr(), ["otp", "sms"]);
    }
}
