//! Abuse limits on the account endpoints: one keyed limiter per client IP and one per account
//! (the normalised e-mail address), each with a quota per endpoint family (GCRA, so bursts and
//! refill are exact). Where the store says its state is shared by several processes
//! (PostgreSQL), every check is one statement on the `rate_limits` table, so all nodes see the
//! same counts; otherwise (SQLite, one process) the limiters are in memory (`governor`, with
//! memory bounded by `retain_recent`). Sign-in failures are counted separately
//! (`accounts::throttle`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitSettings;
use crate::store::{Store, StoreResult};

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
    /// A known device's own failure budget for one account.
    Device,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Account => "account",
            Self::Device => "device",
        }
    }
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
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }
}

/// One GCRA quota: a request every `interval_ms`, `burst` at once.
#[derive(Debug, Clone, Copy)]
struct Rate {
    interval_ms: i64,
    burst: i64,
}

impl Rate {
    fn new(per: Duration, n: u32, burst: u32) -> Self {
        let per_ms = i64::try_from(per.as_millis()).unwrap_or(i64::MAX);
        Self {
            interval_ms: (per_ms / i64::from(n.max(1))).max(1),
            burst: i64::from(burst.max(1)),
        }
    }
}

/// The in-process limiters (a single server).
struct Local {
    ip: DefaultKeyedRateLimiter<(Bucket, IpAddr)>,
    account: DefaultKeyedRateLimiter<(Bucket, String)>,
    clock: DefaultClock,
}

pub struct RateLimits {
    /// `None`: the state lives in the store (`LimiterStore::rate_limit_hit`).
    local: Option<Local>,
    store: Arc<dyn Store>,
    clock: crate::clock::Clock,
    ip: Rate,
    account: Rate,
}

/// Keys kept before stale ones are dropped.
const SWEEP_ABOVE: usize = 50_000;

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

/// The opaque key a limit is stored under: no address or IP in the database.
pub(crate) fn stored_key(family: &str, scope: Scope, value: &str) -> String {
    crate::crypto::hash_secret(&format!("{family}|{}|{value}", scope.as_str()))
}

impl RateLimits {
    pub fn new(s: &RateLimitSettings, store: Arc<dyn Store>, clock: crate::clock::Clock) -> Self {
        let local = (!store.shares_rate_limits()).then(|| {
            let ip = Quota::per_minute(nz(s.ip_per_minute)).allow_burst(nz(s.ip_burst));
            let account = Quota::per_hour(nz(s.account_per_hour)).allow_burst(nz(s.account_burst));
            Local {
                ip: RateLimiter::keyed(ip),
                account: RateLimiter::keyed(account),
                clock: DefaultClock::default(),
            }
        });
        Self {
            local,
            store,
            clock,
            ip: Rate::new(Duration::from_secs(60), s.ip_per_minute, s.ip_burst),
            account: Rate::new(
                Duration::from_secs(3600),
                s.account_per_hour,
                s.account_burst,
            ),
        }
    }

    /// Whether the counts are shared through the database (PostgreSQL) rather than in memory.
    pub fn shared(&self) -> bool {
        self.local.is_none()
    }

    /// Count one request from `ip`.
    pub async fn check_ip(&self, bucket: Bucket, ip: IpAddr) -> StoreResult<Result<(), Limited>> {
        if let Some(local) = &self.local {
            if local.ip.len() > SWEEP_ABOVE {
                local.ip.retain_recent();
            }
            return Ok(local
                .ip
                .check_key(&(bucket, ip))
                .map_err(|not_until| Limited {
                    scope: Scope::Ip,
                    retry_after: not_until.wait_time_from(local.clock.now()),
                }));
        }
        self.hit(bucket, Scope::Ip, &ip.to_string(), self.ip).await
    }

    /// Count one request about `account` (a normalised e-mail address or phone number).
    pub async fn check_account(
        &self,
        bucket: Bucket,
        account: &str,
    ) -> StoreResult<Result<(), Limited>> {
        if let Some(local) = &self.local {
            if local.account.len() > SWEEP_ABOVE {
                local.account.retain_recent();
            }
            return Ok(local
                .account
                .check_key(&(bucket, account.to_owned()))
                .map_err(|not_until| Limited {
                    scope: Scope::Account,
                    retry_after: not_until.wait_time_from(local.clock.now()),
                }));
        }
        self.hit(bucket, Scope::Account, account, self.account)
            .await
    }

    async fn hit(
        &self,
        bucket: Bucket,
        scope: Scope,
        value: &str,
        rate: Rate,
    ) -> StoreResult<Result<(), Limited>> {
        let key = stored_key(bucket.as_str(), scope, value);
        let wait = self
            .store
            .rate_limit_hit(&key, self.clock.now_millis(), rate.interval_ms, rate.burst)
            .await?;
        Ok(match wait {
            None => Ok(()),
            Some(ms) => Err(Limited {
                scope,
                retry_after: Duration::from_millis(u64::try_from(ms).unwrap_or(1)),
            }),
        })
    }
}
