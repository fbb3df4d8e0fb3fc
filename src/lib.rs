//! Portcullis: an OAuth 2.0 / OpenID Connect provider.
//!
//! Dependencies point one way: `web` → `oauth`/`oidc` → `store`/`crypto` → `domain`.
//! Nothing below `web` knows about HTTP frameworks; nothing outside `store` writes SQL.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod email;
pub mod keyring;
pub mod oauth;
pub mod observability;
pub mod oidc;
pub mod sms;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;

/// Seconds since the Unix epoch by the system clock: every timestamp in Portcullis is one of
/// these (UTC). Servers read time through their shared [`clock::Clock`].
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
