//! Sign-in throttling that stops guessing without locking the owner out (ASVS 6.3, OWASP's
//! device-cookie pattern).
//!
//! Only failed sign-ins count (a wrong password, a wrong, expired or misdirected one-time code).
//! Each attempt first reserves one failure against its keys, in one statement per key, so that
//! concurrent attempts on any node cannot overshoot; a successful attempt gives it back. The keys
//! depend on the browser:
//!
//! - a **known device** for the account (its device cookie is stored and has signed in to that
//!   account before): only the device's own budget for that account,
//!   `rate_limit.login_failures_per_account` per window. Failures others caused, for the account
//!   or from the same address, do not hold it back.
//! - **any other browser**: the client IP (`login_failures_per_ip`) and the account named
//!   (`login_failures_per_account`, whether or not such an account exists, so that the answer
//!   never says which).
//!
//! A key that holds its maximum refuses every attempt through it with 429 and `Retry-After`
//! until its window (`login_failure_window` seconds from its first failure) ends; a refused
//! attempt checks no password and counts nothing. The device cookie is a random secret stored
//! only as its SHA-256; a forged or expired one is an unknown device.

use std::fmt;

use super::limits::{Limited, Scope, stored_key};
use super::{AccountResult, Accounts, Bucket, Caller};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::User;
use crate::store::{Reservation, SeenDevice};

/// The value of the known-device cookie: 32 random bytes, base64url. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCookie(String);

impl fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCookie(..)")
    }
}

/// Length of `random_secret(32)`.
const COOKIE_LEN: usize = 43;

impl DeviceCookie {
    /// A cookie as the browser sent it; `None` unless it has the shape of one we issue.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == COOKIE_LEN
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(raw.to_owned()))
    }

    fn generate() -> Self {
        Self(random_secret(32))
    }

    /// The value to set in the cookie.
    pub fn value(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

/// A sign-in attempt that was let through, holding one failure on each of its keys: dropped as
/// it is when the attempt fails; [`Attempt::succeeded`] gives the failures back.
#[must_use = "a successful attempt must give its failures back"]
pub struct Attempt {
    /// Key, window start, maximum.
    reserved: Vec<(String, i64, i64)>,
}

impl Attempt {
    /// The attempt proved who it is: its failures are given back (best effort: a failure to do
    /// so is logged and leaves them counted).
    pub async fn succeeded(self, acc: &Accounts) {
        for (key, window_start, max) in &self.reserved {
            if let Err(e) = acc.store().release_failure(key, *window_start, *max).await {
                tracing::warn!(error = %e, "could not give back a sign-in failure");
            }
        }
    }
}

/// Let a sign-in attempt for the account `account_key` (its normalised identifier, `None` when
/// it is not an address or number) through, or refuse it (`RateLimited`, audited). `user` is
/// the active account it names, looked up only when the caller sent a device cookie. See the
/// module documentation for the keys.
pub async fn begin(
    acc: &Accounts,
    caller: &Caller,
    account_key: Option<&str>,
    user: Option<&User>,
    now: i64,
) -> AccountResult<Attempt> {
    let limits = &acc.settings().rate_limit;
    let per_account = i64::from(limits.login_failures_per_account);
    let keys = match known_device(acc, caller, user, now).await? {
        Some((device, user_id)) => vec![(
            Scope::Device,
            stored_key("login", Scope::Device, &format!("{device}|{user_id}")),
            per_account,
        )],
        None => {
            let mut keys = vec![(
                Scope::Ip,
                stored_key("login", Scope::Ip, &caller.ip.to_string()),
                i64::from(limits.login_failures_per_ip),
            )];
            if let Some(key) = account_key {
                keys.push((
                    Scope::Account,
                    stored_key("login", Scope::Account, key),
                    per_account,
                ));
            }
            keys
        }
    };
    let window = limits.login_failure_window;
    let mut attempt = Attempt {
        reserved: Vec::with_capacity(keys.len()),
    };
    for (scope, key, max) in keys {
        match acc.store().reserve_failure(&key, now, window, max).await? {
            Reservation::Granted { window_start } => {
                attempt.reserved.push((key, window_start, max));
            }
            Reservation::Refused { until } => {
                // Nothing of this attempt stays counted.
                attempt.succeeded(acc).await;
                let wait = u64::try_from(until - now).unwrap_or(1).max(1);
                let limited = Limited {
                    scope,
                    retry_after: std::time::Duration::from_secs(wait),
                };
                return Err(acc.limited(Bucket::Login, limited, caller).await);
            }
        }
    }
    Ok(attempt)
}

/// The device (its cookie's hash) and account, when the caller's device cookie is live and has
/// signed in to `user`.
async fn known_device(
    acc: &Accounts,
    caller: &Caller,
    user: Option<&User>,
    now: i64,
) -> AccountResult<Option<(String, String)>> {
    let (Some(cookie), Some(user)) = (&caller.device, user) else {
        return Ok(None);
    };
    let hash = cookie.hash();
    let known = acc.store().device_knows(&hash, &user.id, now).await?;
    Ok(known.then(|| (hash, user.id.clone())))
}

/// After a successful sign-in of `user`: record this browser as a known device of the account
/// (a new device when its cookie is missing, forged or expired). Returns the cookie to set,
/// which lives `rate_limit.known_device_ttl` seconds from now.
pub async fn remember_device(
    acc: &Accounts,
    caller: &Caller,
    user: &User,
    now: i64,
) -> AccountResult<DeviceCookie> {
    let store = acc.store();
    let cookie = match &caller.device {
        Some(c) if store.device_exists(&c.hash(), now).await? => c.clone(),
        _ => DeviceCookie::generate(),
    };
    let ip = caller.ip.to_string();
    store
        .remember_device(&SeenDevice {
            new_id: &crate::crypto::new_client_id(),
            secret_hash: &cookie.hash(),
            user_id: &user.id,
            user_agent: caller.user_agent.as_deref(),
            ip: Some(&ip),
            now,
            expires_at: now + acc.settings().rate_limit.known_device_ttl,
        })
        .await?;
    Ok(cookie)
}

#[cfg(test)]
mod tests {
    use super::DeviceCookie;

    #[test]
    fn only_cookies_of_our_shape_are_read_and_none_is_printed() {
        let c = DeviceCookie::generate();
        assert_eq!(DeviceCookie::parse(c.value()), Some(c.clone()));
        assert_eq!(format!("{c:?}"), "DeviceCookie(..)");
        assert!(DeviceCookie::parse("short").is_none());
        assert!(DeviceCookie::parse(&"a".repeat(44)).is_none());
        assert!(DeviceCookie::parse(&format!("{}=", &"a".repeat(42))).is_none());
    }
}
