//! Settings: layered loading, validation and redaction.
//!
//! Layers, later ones winning: the built-in defaults (`config/default.toml`, compiled in) →
//! `config/default.toml` in the working directory → an optional `--config FILE` → environment
//! variables `PORTCULLIS_<KEY>` (`__` for nesting). Secret keys also accept `PORTCULLIS_<KEY>_FILE`.
//! Any error names the key and the fix in one line.

mod error;
mod load;
mod secret;
mod sections;
#[cfg(test)]
mod tests;
mod validate;

pub use error::ConfigError;

/// Seconds within which a running server notices changed key files (SIGHUP: at once).
pub const KEY_RELOAD_SECS: i64 = 30;
pub use load::{DEFAULTS, Loaded};
pub use secret::Secret;
pub use sections::{
    AccountSettings, Argon2Settings, AuditSettings, LogFormat, LogoutSettings, MailSettings,
    MailTransport, MetricsSettings, RateLimitSettings, ServerSettings, SessionSettings, Settings,
    SignupSettings, SmsSettings, SmsTransport, TokenSettings,
};
