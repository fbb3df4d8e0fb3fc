//! The settings and their sections, one struct per `[table]` of `config/default.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use super::secret::Secret;
use crate::domain::SigningAlgorithm;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub issuer: String,
    pub bind: SocketAddr,
    pub database_url: Secret,
    pub database_max_connections: u32,
    /// Seconds a request waits for a database connection before it is answered 503.
    pub database_acquire_timeout_secs: i64,
    pub keys_dir: PathBuf,
    /// Delete retired signing keys automatically once every token they signed has expired.
    pub keys_auto_prune: bool,
    /// `Cache-Control: max-age` of the JWKS, in seconds.
    pub jwks_max_age: i64,
    /// Seconds between `keys rotate` (publication) and the new key's first signature.
    pub keys_prepublish_seconds: i64,
    /// Key-encryption key of the signing keys kept in the database (32 bytes, base64); required
    /// with PostgreSQL, optional with SQLite (set: the keys move into the database). See
    /// `Settings::keys_encryption_key`.
    pub keys_encryption_key: Secret,
    pub log_format: LogFormat,
    pub log_level: String,
    pub allow_insecure_http: bool,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` are believed (see
    /// `web::client_addr`). A list in TOML, or comma-separated in `PORTCULLIS_TRUSTED_PROXIES`.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// `Strict-Transport-Security: max-age` in seconds on every response when the issuer is
    /// https; 0 sends no header.
    pub hsts_max_age: i64,
    /// Add `includeSubDomains` to that header.
    pub hsts_include_subdomains: bool,
    pub server: ServerSettings,
    pub tokens: TokenSettings,
    pub session: SessionSettings,
    pub logout: LogoutSettings,
    pub argon2: Argon2Settings,
    pub audit: AuditSettings,
    pub signup: SignupSettings,
    pub accounts: AccountSettings,
    pub mail: MailSettings,
    pub sms: SmsSettings,
    pub rate_limit: RateLimitSettings,
    pub metrics: MetricsSettings,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Connection limits of the HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Seconds a connection may wait for a complete request head, counted from when the server
    /// starts waiting for it: on a new connection and between requests on a kept-alive one, so
    /// this is also the idle keep-alive limit.
    pub header_read_timeout_secs: i64,
    /// Seconds a request's body may take to arrive once its head has; then 408 and the
    /// connection is closed.
    pub body_read_timeout_secs: i64,
    /// Seconds the server waits after SIGTERM for in-flight requests before it closes the
    /// remaining connections and exits.
    pub shutdown_timeout_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub authorization_code_ttl: i64,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub access_token_alg: SigningAlgorithm,
    pub id_token_alg: SigningAlgorithm,
    /// A refresh token unused this long dies (per-client override: `refresh_token_idle_ttl`).
    pub refresh_token_idle_ttl: i64,
    /// A refresh-token family dies this long after its grant, however often it was rotated.
    pub refresh_token_absolute_ttl: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    pub ttl: i64,
    pub login_request_ttl: i64,
}

/// Back-Channel Logout delivery (OIDC Back-Channel Logout 1.0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutSettings {
    /// Seconds one POST to a client's backchannel_logout_uri may take.
    pub backchannel_timeout: i64,
    /// Seconds before the first retry; doubled after each failure (capped at an hour).
    pub backchannel_retry_base: i64,
    /// Attempts before a delivery is given up.
    pub backchannel_max_attempts: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Days an audit entry is kept; housekeeping deletes older ones. 0 keeps them forever.
    pub retention_days: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupSettings {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub require_verified_email: bool,
    pub verification_link_ttl: i64,
    pub verification_code_ttl: i64,
    pub reset_link_ttl: i64,
    pub invitation_ttl: i64,
    pub code_max_attempts: i64,
    pub resend_cooldown: i64,
    pub deletion_grace_period: i64,
    pub phone_code_ttl: i64,
    pub login_code_ttl: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmsTransport {
    File,
    Http,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    pub transport: SmsTransport,
    pub dir: PathBuf,
    pub http_url: String,
    pub http_method: String,
    pub http_authorization: Secret,
    pub http_content_type: String,
    pub http_body_template: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransport,
    pub dir: PathBuf,
    pub from: String,
    pub smtp_url: Secret,
    pub smtp_username: String,
    pub smtp_password: Secret,
    pub max_attempts: i64,
    pub retry_base: i64,
    pub poll_interval: i64,
}

/// `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// When not empty, scrapers must send `Authorization: Bearer <token>`.
    pub token: Secret,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub ip_per_minute: u32,
    pub ip_burst: u32,
    pub account_per_hour: u32,
    pub account_burst: u32,
    /// Failed sign-ins (password or one-time code) per account, from devices not known to it,
    /// in one `login_failure_window`; also the limit per known device and account.
    pub login_failures_per_account: u32,
    /// Failed sign-ins per client IP address, from devices not known to the account, in one
    /// `login_failure_window`.
    pub login_failures_per_ip: u32,
    /// Seconds: the fixed window the failure limits count in (from the first failure).
    pub login_failure_window: i64,
    /// Seconds a known-device cookie lives after the device's last sign-in.
    pub known_device_ttl: i64,
}

impl Settings {
    /// The issuer without a trailing slash: `iss` must match it byte for byte.
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// Whether the database is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        let url = self.database_url.expose();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }

    /// The key-encryption key's 32 bytes, when one is set (validated at load: 32 bytes in
    /// base64, standard or URL-safe alphabet, padding optional).
    pub fn keys_encryption_key(&self) -> Option<[u8; 32]> {
        decode_kek(self.keys_encryption_key.expose())
    }

    /// Whether cookies must carry `Secure` (and may use the `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The `Strict-Transport-Security` value (RFC 6797 §6.1), when one is to be sent: only for an
    /// https issuer (browsers ignore it over http) with a non-zero `hsts_max_age`.
    pub fn hsts(&self) -> Option<String> {
        if !self.is_https() || self.hsts_max_age == 0 {
            return None;
        }
        let mut value = format!("max-age={}", self.hsts_max_age);
        if self.hsts_include_subdomains {
            value.push_str("; includeSubDomains");
        }
        Some(value)
    }
}

/// CIDR blocks (`10.0.0.0/8`, `::1/128`; a bare address is one host), as a list or as one
/// comma-separated string (how they arrive from the environment).
fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        List(Vec<String>),
        Text(String),
    }
    let items = match Given::deserialize(d)? {
        Given::List(list) => list,
        Given::Text(text) => text.split(',').map(str::to_owned).collect(),
    };
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not an IP network; use CIDR notation such as 10.0.0.0/8"
                    ))
                })
        })
        .collect()
}

/// 32 bytes from base64 (`openssl rand -base64 32`, or URL-safe without padding); `None` for an
/// empty or malformed value.
pub(super) fn decode_kek(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let text = text.trim().trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()?;
    bytes.try_into().ok()
}

impl ServerSettings {
    /// A validated number of seconds (never negative) as a `Duration`.
    pub fn secs(value: i64) -> std::time::Duration {
        std::time::Duration::from_secs(value.max(0).unsigned_abs())
    }
}
