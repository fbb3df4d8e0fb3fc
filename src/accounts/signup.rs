//! Sign-up and e-mail verification. A taken address gets exactly the same answer as a new one;
//! its owner gets a mail saying someone tried to register. The password is hashed in both cases,
//! so timing tells nothing either.
//!
//! Verification works both ways: the 6-digit code typed on the verification page, and the
//! single-use link (the page at the link posts the token back, so mail scanners that open links
//! do not use it up). Codes and links are bound to the address they were sent to, single use,
//! and codes die after `accounts.code_max_attempts` wrong guesses.

use super::{
    AccountError, AccountResult, Accounts, Bucket, Caller, FieldErrors, Refusal, equalise,
    is_language_tag,
};
use crate::audit::{Event, action};
use crate::crypto::hash_secret;
use crate::domain::{Email, NewUser, Password, Phone, User};
use crate::email::Recipient;
use crate::store::{AccountCode, CodePurpose, NewAccountCode, StoreError};

const MAX_NAME_CHARS: usize = 200;
pub const BAD_CODE: &str =
    "That code is wrong or has expired. Check the e-mail, or ask for a new code.";
pub const NOT_SAME: &str = "The two passwords are not the same.";

pub const SIGNUP_CLOSED: Refusal = Refusal {
    status: 404,
    title: "Sign-up is closed",
    message: "New accounts cannot be created here. Ask the administrator for an invitation.",
    link: None,
};

const BAD_LINK: Refusal = Refusal {
    status: 400,
    title: "Link not valid",
    message: "This confirmation link is wrong, expired or already used. Sign in to get a new one.",
    link: Some(("/login", "Sign in")),
};

/// The sign-up form, as typed.
#[derive(Clone, Default)]
pub struct SignUpInput {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub password: String,
    pub password_confirm: String,
}

impl std::fmt::Debug for SignUpInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignUpInput")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// Create an account and send its verification mail; returns the normalised address to confirm.
/// The same answer whether or not the address was free.
pub async fn sign_up(
    acc: &Accounts,
    caller: &Caller,
    input: &SignUpInput,
    now: i64,
) -> AccountResult<Email> {
    if !acc.settings().signup.enabled {
        return Err(AccountError::Refused(SIGNUP_CLOSED));
    }
    acc.limit(Bucket::Signup, caller, None).await?;

    // Validation: every field gets its own message.
    let mut errors = FieldErrors::default();
    let name = input.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        errors.add("name", format!("Use at most {MAX_NAME_CHARS} characters."));
    }
    let email = Email::parse_new(&input.email)
        .map_err(|e| errors.add("email", e.0))
        .ok();
    let phone = if input.phone.trim().is_empty() {
        None
    } else {
        Phone::parse(&input.phone)
            .map_err(|e| errors.add("phone", e.0))
            .ok()
    };
    let password = match &email {
        Some(email) => Password::parse_new(&input.password, email),
        None => Password::parse(&input.password),
    }
    .map_err(|e| errors.add("password", e.0))
    .ok();
    if input.password != input.password_confirm {
        errors.add("password_confirm", NOT_SAME);
    }
    let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
        return Err(AccountError::Invalid(errors));
    };
    acc.limit_account(Bucket::Signup, caller, email.canonical())
        .await?;

    // Hash first, whether or not the address is taken.
    let hash = acc.provider.hasher.hash(&password).await?;
    let new_user = NewUser {
        email: email.clone(),
        email_verified: false,
        password_hash: Some(hash),
        name: (!name.is_empty()).then(|| name.to_owned()),
        roles: vec![],
        phone_number: phone.as_ref().map(|p| p.as_str().to_owned()),
        // The browser's language becomes the account's `locale` (later mails follow it).
        locale: caller
            .language
            .as_deref()
            .filter(|l| is_language_tag(l))
            .map(str::to_owned),
    };
    // The account, its verification link and code and their mail, in one transaction.
    let id = uuid::Uuid::new_v4().to_string();
    let out = acc.composer().verification(
        &Recipient {
            user_id: &id,
            to: email.as_str(),
            name: new_user.name.clone(),
            locale: new_user.locale.as_deref(),
        },
        now,
    )?;
    let origin = caller.origin();
    match acc
        .store()
        .sign_up(&id, &new_user, &out.codes, &[out.mail], now)
        .await
    {
        Ok(created) => {
            acc.mailer.wake();
            tracing::info!(user.id = %created.id, "account created");
            acc.audit(
                Event::new(action::SIGNUP)
                    .actor(&created.id)
                    .target(&created.id)
                    .origin(&origin),
            )
            .await;
        }
        Err(StoreError::Conflict) => {
            // Taken: tell the owner (at the address the account has, which may be another
            // form of this one), and answer exactly as for a new account.
            let owner = acc.store().find_user_by_email(&email).await?;
            let to = owner.as_ref().map_or(email.as_str(), |u| u.email.as_str());
            let mail = acc.composer().already_registered(to)?;
            acc.mailer.enqueue(acc.store(), &mail).await?;
            acc.audit(
                Event::new(action::SIGNUP)
                    .origin(&origin)
                    .failure("email_taken"),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(email)
}

/// Send `user` a new verification link and code unless one was sent within the cool-down.
/// Returns whether a mail was queued.
pub async fn resend_verification(
    acc: &Accounts,
    user: &User,
    caller: &Caller,
    now: i64,
) -> AccountResult<bool> {
    let event = Event::new(action::CODE_REQUEST)
        .target(&user.id)
        .origin(&caller.origin());
    if acc
        .in_cooldown(user, CodePurpose::EmailVerifyCode, now)
        .await?
    {
        acc.audit(event.failure("cooldown").detail("purpose", "email_verify"))
            .await;
        return Ok(false);
    }
    let out = acc.composer().verification(&Recipient::of(user), now)?;
    acc.send(&user.id, out, now).await?;
    acc.audit(event.detail("purpose", "email_verify")).await;
    Ok(true)
}

/// A new link and code for `email` (when it names an unconfirmed account, subject to the
/// cool-down). The same answer, after the same least time, for every address.
pub async fn resend(acc: &Accounts, caller: &Caller, email: &str, now: i64) -> AccountResult<()> {
    let started = tokio::time::Instant::now();
    let email = Email::parse(email).ok();
    acc.limit(
        Bucket::CodeRequest,
        caller,
        email.as_ref().map(Email::canonical),
    )
    .await?;
    if let Some(email) = email {
        match pending_account(acc, &email).await? {
            Some(user) => {
                resend_verification(acc, &user, caller, now).await?;
            }
            None => {
                acc.audit(
                    Event::new(action::CODE_REQUEST)
                        .origin(&caller.origin())
                        .failure("no_pending_account")
                        .detail("purpose", "email_verify"),
                )
                .await;
            }
        }
    }
    equalise(started).await;
    Ok(())
}

/// The active account at `email` whose address is not confirmed yet.
async fn pending_account(acc: &Accounts, email: &Email) -> AccountResult<Option<User>> {
    Ok(acc
        .store()
        .find_user_by_email(email)
        .await?
        .filter(|u| u.is_active() && !u.email_verified))
}

/// Confirm `email` with the typed `code`. `Invalid` (field `code`) for anything wrong.
pub async fn verify_code(
    acc: &Accounts,
    caller: &Caller,
    email: &str,
    code: &str,
    now: i64,
) -> AccountResult<()> {
    let wrong = || AccountError::field("code", BAD_CODE);
    let email = Email::parse(email).ok();
    acc.limit(Bucket::Verify, caller, email.as_ref().map(Email::canonical))
        .await?;
    let Some(email) = email.filter(|_| NewAccountCode::is_code_shaped(code)) else {
        return Err(wrong());
    };
    let origin = caller.origin();
    let Some(user) = pending_account(acc, &email).await? else {
        acc.audit(
            Event::new(action::EMAIL_VERIFY)
                .origin(&origin)
                .failure("no_pending_account")
                .detail("method", "code"),
        )
        .await;
        return Err(wrong());
    };
    let store = acc.store();
    let accepted = match acc
        .check_code(&user.id, CodePurpose::EmailVerifyCode, code, now)
        .await?
    {
        Ok(c) => c,
        Err(reason) => {
            acc.audit(
                Event::new(action::EMAIL_VERIFY)
                    .target(&user.id)
                    .origin(&origin)
                    .failure(reason)
                    .detail("method", "code"),
            )
            .await;
            return Err(wrong());
        }
    };
    // The address changed since the code was sent: the code is void.
    if !store
        .mark_email_verified(&user.id, &accepted.target, now)
        .await?
    {
        return Err(wrong());
    }
    tracing::info!(user.id = %user.id, "e-mail address verified");
    acc.audit(
        Event::new(action::EMAIL_VERIFY)
            .actor(&user.id)
            .target(&user.id)
            .origin(&origin)
            .detail("method", "code"),
    )
    .await;
    Ok(())
}

/// Use up a posted single-use link token of `purpose`: the verification limits first, then the
/// token's shape, then the one atomic use. `None`: no live link with this token.
pub(crate) async fn take_link(
    acc: &Accounts,
    caller: &Caller,
    token: &str,
    purpose: CodePurpose,
    now: i64,
) -> AccountResult<Option<AccountCode>> {
    acc.limit(Bucket::Verify, caller, None).await?;
    let token = token.trim();
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    Ok(acc
        .store()
        .take_link(purpose, &hash_secret(token), now)
        .await?)
}

/// Confirm an address with the token of its verification link. `Refused` for a dead link.
pub async fn confirm_link(
    acc: &Accounts,
    caller: &Caller,
    token: &str,
    now: i64,
) -> AccountResult<()> {
    let origin = caller.origin();
    let taken = take_link(acc, caller, token, CodePurpose::EmailVerifyLink, now).await?;
    let verified = match &taken {
        Some(code) => {
            acc.store()
                .mark_email_verified(&code.user_id, &code.target, now)
                .await?
        }
        None => false,
    };
    let Some(code) = taken.filter(|_| verified) else {
        acc.audit(
            Event::new(action::EMAIL_VERIFY)
                .origin(&origin)
                .failure("bad_link")
                .detail("method", "link"),
        )
        .await;
        return Err(AccountError::Refused(BAD_LINK));
    };
    tracing::info!(user.id = %code.user_id, "e-mail address verified");
    acc.audit(
        Event::new(action::EMAIL_VERIFY)
            .actor(&code.user_id)
            .target(&code.user_id)
            .origin(&origin)
            .detail("method", "link"),
    )
    .await;
    Ok(())
}
