//! Second factors: an authenticator app (TOTP, `totp`) and recovery codes (`recovery`).
//!
//! Signing in to an account that has a confirmed app takes two steps: the first method
//! (password or one-time code) proves its factor and, instead of a session, [`begin`] records a
//! waiting sign-in whose random id the browser keeps; [`complete`] then checks an app code or a
//! recovery code for it and returns the [`Authenticated`] with both methods (`amr` gets `otp` and
//! `mfa`, RFC 8176). Wrong codes count against the account's `Verify` limit; every success and
//! failure is audited. An app code is accepted for the current 30-second step and one either
//! side, and never twice: the store keeps the newest step used and refuses it and older ones.
//!
//! The app's key must be read back to compute codes, so it is stored as it is (base32), not
//! hashed; it is shown only while being set up ([`setup`]), never afterwards.

pub mod recovery;
pub mod totp;

use super::signin::{Authenticated, Method};
use super::{AccountError, AccountResult, Accounts, Bucket, Caller, Refusal};
use crate::audit::{Event, action};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::User;
use crate::store::MfaPending;

pub const WRONG_TOTP: &str =
    "That code is wrong. Enter the 6-digit code your authenticator app shows now.";
pub const REUSED_TOTP: &str =
    "That code was already used. Wait for your authenticator app to show the next one.";
pub const WRONG_RECOVERY: &str = "That recovery code is wrong or was already used.";

const EXPIRED: Refusal = Refusal {
    status: 400,
    title: "Sign-in expired",
    message: "This sign-in waited too long for its second step. Please sign in again.",
    link: Some(("/login", "Sign in")),
};

const NO_APP: Refusal = Refusal {
    status: 409,
    title: "No authenticator app",
    message: "Your account has no authenticator app set up.",
    link: Some(("/account", "Back to your account")),
};

/// The proof offered at the second step.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// A code from the authenticator app.
    Totp(&'a str),
    /// One of the recovery codes.
    Recovery(&'a str),
}

/// A sign-in waiting for its second step: the id for the browser (a secret, shown once).
pub struct Waiting {
    pub secret: String,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waiting([redacted])")
    }
}

/// The stored name of a sign-in method.
fn method_name(m: Method) -> &'static str {
    match m {
        Method::Password => "password",
        Method::EmailCode => "email_code",
        Method::SmsCode => "sms_code",
        Method::Totp => "totp",
        Method::RecoveryCode => "recovery_code",
    }
}

fn method_from(name: &str) -> Option<Method> {
    [
        Method::Password,
        Method::EmailCode,
        Method::SmsCode,
        Method::Totp,
        Method::RecoveryCode,
    ]
    .into_iter()
    .find(|m| method_name(*m) == name)
}

/// The methods a session's `amr` values stand for (the first factor of a step-up).
pub fn methods_of_amr(amr: &[String]) -> Vec<Method> {
    let has = |v: &str| amr.iter().any(|a| a == v);
    let mut methods = Vec::new();
    if has("pwd") {
        methods.push(Method::Password);
    }
    if has("sms") {
        methods.push(Method::SmsCode);
    } else if has("otp") {
        methods.push(Method::EmailCode);
    }
    methods
}

/// Step-up completed: the browser's session (cookie value `secret`) records `auth`'s methods
/// from now on, under a new id (returned with the session); its `sid` stays, so the clients it
/// signed into keep it. `None` when it is no longer live or belongs to someone else.
pub async fn upgrade_session(
    acc: &Accounts,
    secret: &str,
    auth: &Authenticated,
    now: i64,
) -> AccountResult<Option<super::sessions::Started>> {
    let new_secret = random_secret(32);
    let session = acc
        .store()
        .upgrade_session(
            &hash_secret(secret),
            &hash_secret(&new_secret),
            &auth.user.id,
            &auth.amr().join(" "),
            auth.at,
            now,
        )
        .await?;
    Ok(session.map(|session| super::sessions::Started {
        secret: new_secret,
        session,
    }))
}

/// Whether a method is a second factor (it cannot start a sign-in on its own).
fn is_second_factor(m: Method) -> bool {
    matches!(m, Method::Totp | Method::RecoveryCode)
}

/// The key the per-account limit counts second-step attempts by.
fn limit_key(user_id: &str) -> String {
    format!("mfa:{user_id}")
}

/// Whether `user` has a confirmed authenticator app.
pub async fn has_totp(acc: &Accounts, user: &User) -> AccountResult<bool> {
    Ok(acc
        .store()
        .find_totp(&user.id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some()))
}

/// Whether the sign-in `auth` must still pass a second step: the account has a confirmed app
/// and none of `auth`'s methods is a second factor.
pub async fn needs_second_factor(acc: &Accounts, auth: &Authenticated) -> AccountResult<bool> {
    if auth.methods.iter().any(|m| is_second_factor(*m)) {
        return Ok(false);
    }
    has_totp(acc, &auth.user).await
}

/// Record the sign-in `auth` as waiting for its second step (for `session.login_request_ttl`).
pub async fn begin(acc: &Accounts, auth: &Authenticated, now: i64) -> AccountResult<Waiting> {
    let secret = random_secret(32);
    let methods: Vec<&str> = auth.methods.iter().map(|m| method_name(*m)).collect();
    acc.store()
        .create_mfa_pending(
            &MfaPending {
                id_hash: hash_secret(&secret),
                user_id: auth.user.id.clone(),
                methods: methods.join(" "),
                auth_time: auth.at,
                expires_at: now + acc.settings().session.login_request_ttl,
            },
            now,
        )
        .await?;
    Ok(Waiting { secret })
}

/// Whether `secret` names a live waiting sign-in.
pub async fn is_waiting(acc: &Accounts, secret: &str, now: i64) -> AccountResult<bool> {
    Ok(acc
        .store()
        .find_mfa_pending(&hash_secret(secret), now)
        .await?
        .is_some())
}

/// The second step of the waiting sign-in `secret`. `Invalid` (field `code` or
/// `recovery_code`) for a wrong or reused code, `Refused` when the sign-in expired.
pub async fn complete(
    acc: &Accounts,
    caller: &Caller,
    secret: &str,
    proof: Proof<'_>,
    now: i64,
) -> AccountResult<Authenticated> {
    let result = second_step(acc, caller, secret, proof, now).await;
    let outcome = match &result {
        Ok(_) => "success",
        Err(AccountError::RateLimited { .. }) => "rate_limited",
        Err(AccountError::Invalid(_) | AccountError::Refused(_)) => "failure",
        Err(_) => "error",
    };
    let method = match proof {
        Proof::Totp(_) => "totp",
        Proof::Recovery(_) => "recovery_code",
    };
    crate::observability::signin(method, outcome);
    result
}

async fn second_step(
    acc: &Accounts,
    caller: &Caller,
    secret: &str,
    proof: Proof<'_>,
    now: i64,
) -> AccountResult<Authenticated> {
    let store = acc.store();
    let id_hash = hash_secret(secret);
    let Some(pending) = store.find_mfa_pending(&id_hash, now).await? else {
        return Err(AccountError::Refused(EXPIRED));
    };
    acc.limit(Bucket::Verify, caller, Some(&limit_key(&pending.user_id)))
        .await?;
    let user = store
        .find_user(&pending.user_id)
        .await?
        .filter(User::is_active);
    let (Some(user), Some(app)) = (user, store.find_totp(&pending.user_id).await?) else {
        return Err(AccountError::Refused(EXPIRED));
    };
    let fail = |reason: &'static str, method: &'static str| {
        Event::new(action::LOGIN)
            .target(&user.id)
            .origin(&caller.origin())
            .failure(reason)
            .detail("method", method)
    };
    let method = match proof {
        Proof::Totp(code) => {
            let step = app
                .confirmed_at
                .and_then(|_| totp::matching_step(&app.secret, code.trim(), now));
            let Some(step) = step else {
                acc.audit(fail("wrong_code", "totp")).await;
                return Err(AccountError::field("code", WRONG_TOTP));
            };
            if !store.use_totp_step(&user.id, step).await? {
                acc.audit(fail("reused_code", "totp")).await;
                return Err(AccountError::field("code", REUSED_TOTP));
            }
            Method::Totp
        }
        Proof::Recovery(code) => {
            let used = match recovery::normalise(code) {
                Some(c) => {
                    store
                        .use_recovery_code(&user.id, &recovery::hash(&user.id, &c), now)
                        .await?
                }
                None => false,
            };
            if !used || app.confirmed_at.is_none() {
                acc.audit(fail("wrong_recovery_code", "recovery_code"))
                    .await;
                return Err(AccountError::field("recovery_code", WRONG_RECOVERY));
            }
            let left = store.recovery_codes_left(&user.id).await?;
            acc.audit(
                Event::new(action::MFA_RECOVERY_USE)
                    .actor(&user.id)
                    .target(&user.id)
                    .origin(&caller.origin())
                    .detail("remaining", left),
            )
            .await;
            Method::RecoveryCode
        }
    };
    // Completes once: a second tab submitting at the same moment finds it gone.
    let Some(pending) = store.take_mfa_pending(&id_hash, now).await? else {
        return Err(AccountError::Refused(EXPIRED));
    };
    let mut methods: Vec<Method> = pending
        .methods
        .split_whitespace()
        .filter_map(method_from)
        .collect();
    methods.push(method);
    Ok(Authenticated {
        user,
        methods,
        at: now,
    })
}

/// What the set-up page shows: the key (base32), the `otpauth://` URI and its QR code (SVG).
pub struct Setup {
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Setup([redacted])")
    }
}

/// How long an unconfirmed key is offered again (a reload shows the key already scanned).
const SETUP_REUSE_SECS: i64 = 3600;

/// Start (or continue) setting up an authenticator app for `user`. `None` when the account
/// already has a confirmed one: its key is never shown again.
pub async fn setup(acc: &Accounts, user: &User, now: i64) -> AccountResult<Option<Setup>> {
    let store = acc.store();
    let secret = match store.find_totp(&user.id).await? {
        Some(t) if t.confirmed_at.is_some() => return Ok(None),
        Some(t) if now - t.created_at < SETUP_REUSE_SECS => t.secret,
        _ => {
            let secret = totp::new_secret();
            if !store.begin_totp(&user.id, &secret, now).await? {
                return Ok(None);
            }
            secret
        }
    };
    let issuer = url::Url::parse(acc.settings().issuer())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Portcullis".to_owned());
    let uri = totp::otpauth_uri(&secret, &issuer, &user.email)
        .ok_or_else(|| AccountError::internal("totp", "cannot build the otpauth URI"))?;
    let qr_svg = totp::qr_svg(&uri)
        .ok_or_else(|| AccountError::internal("totp", "cannot render the QR code"))?;
    Ok(Some(Setup {
        secret,
        uri,
        qr_svg,
    }))
}

/// Confirm the app being set up with a code from it: it becomes a second factor, and the
/// recovery codes returned (shown once) replace any earlier ones. `Invalid` (field `code`) for
/// a wrong code; `Refused` when there is nothing being set up.
pub async fn confirm(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    code: &str,
    now: i64,
) -> AccountResult<Vec<String>> {
    acc.limit(Bucket::Verify, caller, Some(&limit_key(&user.id)))
        .await?;
    let store = acc.store();
    let app = store
        .find_totp(&user.id)
        .await?
        .filter(|t| t.confirmed_at.is_none());
    let Some(app) = app else {
        return Err(AccountError::Refused(NO_APP));
    };
    let event = || {
        Event::new(action::MFA_TOTP_ENABLE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin())
    };
    let Some(step) = totp::matching_step(&app.secret, code.trim(), now) else {
        acc.audit(event().failure("wrong_code")).await;
        return Err(AccountError::field("code", WRONG_TOTP));
    };
    let codes = recovery::generate();
    let hashes = recovery::hashes(&user.id, &codes);
    if !store
        .confirm_totp(&user.id, &app.secret, step, &hashes, now)
        .await?
    {
        // Set up again in another tab meanwhile: this page's key is no longer the one.
        acc.audit(event().failure("key_replaced")).await;
        return Err(AccountError::field("code", WRONG_TOTP));
    }
    acc.audit(event()).await;
    Ok(codes)
}

/// New recovery codes (shown once) in place of the old ones.
pub async fn regenerate_recovery(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    now: i64,
) -> AccountResult<Vec<String>> {
    let codes = recovery::generate();
    let hashes = recovery::hashes(&user.id, &codes);
    if !acc
        .store()
        .replace_recovery_codes(&user.id, &hashes, now)
        .await?
    {
        return Err(AccountError::Refused(NO_APP));
    }
    acc.audit(
        Event::new(action::MFA_RECOVERY_REGENERATE)
            .actor(&user.id)
            .target(&user.id)
            .origin(&caller.origin()),
    )
    .await;
    Ok(codes)
}

/// The second factors of `user` for the account page.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Factors {
    pub totp: bool,
    pub totp_since: Option<i64>,
    pub recovery_codes_left: i64,
}

pub async fn factors(acc: &Accounts, user: &User) -> AccountResult<Factors> {
    let store = acc.store();
    let since = store
        .find_totp(&user.id)
        .await?
        .and_then(|t| t.confirmed_at);
    let left = match since {
        Some(_) => store.recovery_codes_left(&user.id).await?,
        None => 0,
    };
    Ok(Factors {
        totp: since.is_some(),
        totp_since: since,
        recovery_codes_left: left,
    })
}

/// Remove `user`'s authenticator app and recovery codes; `actor` is who did it (the person, or
/// an administrator). Whether there was one.
pub async fn remove(
    acc: &Accounts,
    origin: &crate::audit::Origin,
    actor: &str,
    user: &User,
) -> AccountResult<bool> {
    let removed = acc.store().remove_totp(&user.id).await?;
    if removed {
        acc.audit(
            Event::new(action::MFA_TOTP_REMOVE)
                .actor(actor)
                .target(&user.id)
                .origin(origin),
        )
        .await;
    }
    Ok(removed)
}
