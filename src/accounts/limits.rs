//! Abuse limits on the account endpoints: one keyed limiter per client IP and one per account
//! (the normalised e-mail address), each with a quota per endpoint family. Built on `governor`
//! (GCRA), so bursts and refill are exact and memory is bounded by `retain_recent`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitSettings;

/// The endpoint families that are limited separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Signup,
    Login,
    CodeRequest,
    Verify,
    Reset,
}

impl Bucket {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Login => "login",
            Self::CodeRequest => "code_request",
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// Which key ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    Account,
}

/// A refused request: which limit, and when to come back.
#[derive(Debug, Clone, Copy)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

pub struct RateLimits {
    ip: DefaultKeyedRateLimiter<(Bucket, IpAddr)>,
    account: DefaultKeyedRateLimiter<(Bucket, String)>,
    clock: DefaultClock,
}

/// Keys kept before stale ones are dropped.
const SWEEP_ABOVE: usize = 50_000;

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings) -> Self {
        let ip = Quota::per_minute(nz(s.ip_per_minute)).allow_burst(nz(s.ip_burst));
        let account = Quota::per_hour(nz(s.account_per_hour)).allow_burst(nz(s.account_burst));
        Self {
            ip: RateLimiter::keyed(ip),
            account: RateLimiter::keyed(account),
            clock: DefaultClock::default(),
        }
    }

    /// Count one request from `ip`.
    pub fn check_ip(&self, bucket: Bucket, ip: IpAddr) -> Result<(), Limited> {
        if self.ip.len() > SWEEP_ABOVE {
            self.ip.retain_recent();
        }
        self.ip
            .check_key(&(bucket, ip))
            .map_err(|not_until| Limited {
                scope: Scope::Ip,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Count one request about `account` (a normalised e-mail address or phone number).
    pub fn check_account(&self, bucket: Bucket, account: &str) -> Result<(), Limited> {
        if self.account.len() > SWEEP_ABOVE {
            self.account.retain_recent();
        }
        self.account
            .check_key(&(bucket, account.to_owned()))
            .map_err(|not_until| Limited {
                scope: Scope::Account,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }
}
