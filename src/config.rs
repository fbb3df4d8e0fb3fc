//! Settings: layered loading, validation and redaction.
//!
//! Layers, later ones winning: the built-in defaults (`config/default.toml`, compiled in) →
//! `config/default.toml` in the working directory → an optional `--config FILE` → environment
//! variables `PORTCULLIS_<KEY>` (`__` for nesting). Secret keys also accept `PORTCULLIS_<KEY>_FILE`.
//! Any error names the key and the fix in one line.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::SigningAlgorithm;

/// The built-in defaults: the same file that documents every key.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "PORTCULLIS_";
/// Keys whose value may come from a file named by `PORTCULLIS_<KEY>_FILE`.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "mail.smtp_url",
    "mail.smtp_password",
    "sms.http_authorization",
];

/// A value that must never appear in logs or `Debug` output.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub issuer: String,
    pub bind: SocketAddr,
    pub database_url: Secret,
    pub database_max_connections: u32,
    pub keys_dir: PathBuf,
    /// Delete retired signing keys automatically once every token they signed has expired.
    pub keys_auto_prune: bool,
    pub log_format: LogFormat,
    pub log_level: String,
    pub allow_insecure_http: bool,
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
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    pub ip_per_minute: u32,
    pub ip_burst: u32,
    pub account_per_hour: u32,
    pub account_burst: u32,
}

/// A configuration problem, displayed as one line: the key, what is wrong, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}; fix: {fix}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Loaded settings plus the warnings found on the way (logged once telemetry is up).
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

impl Settings {
    /// Load from the process environment and the working directory.
    pub fn load(config_file: Option<&Path>) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(config_file, Path::new("config/default.toml"), &env)
    }

    /// Load with an explicit environment (testable without touching the process environment).
    pub fn load_from(
        config_file: Option<&Path>,
        local_defaults: &Path,
        env: &[(String, String)],
    ) -> Result<Loaded, ConfigError> {
        let known = known_keys();
        let mut warnings = Vec::new();
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if local_defaults.is_file() {
            figment = figment.merge(Toml::file(local_defaults));
        }
        if let Some(file) = config_file {
            if !file.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("file {} does not exist", file.display()),
                    "pass the path of a readable TOML file",
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Environment: only known keys reach figment; the rest get a warning.
        let mut env_values = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if let Some(base) = key.strip_suffix("_file")
                && SECRET_KEYS.contains(&base)
            {
                let content = std::fs::read_to_string(value).map_err(|e| {
                    ConfigError::new(
                        base,
                        format!("cannot read {name}={value}: {e}"),
                        format!("point {name} at a readable file holding the value"),
                    )
                })?;
                figment = figment.merge(Serialized::default(base, content.trim_end()));
                continue;
            }
            if known.contains(&key) {
                // Parsed like figment's `Env` provider: numbers and booleans become typed values.
                let parsed = value
                    .parse::<figment::value::Value>()
                    .unwrap_or_else(|_| figment::value::Value::from(value.clone()));
                env_values.push((key, parsed));
            } else if name != "PORTCULLIS_CONFIG" {
                warnings.push(format!(
                    "unknown environment variable {name} ignored (no configuration key `{key}`)"
                ));
            }
        }
        for (key, value) in env_values {
            figment = figment.merge(Serialized::default(&key, value));
        }
        let settings: Settings = figment.extract().map_err(from_figment)?;
        settings.validate()?;
        Ok(Loaded { settings, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let issuer = Url::parse(&self.issuer).map_err(|e| {
            ConfigError::new(
                "issuer",
                format!("`{}` is not an absolute URL ({e})", self.issuer),
                "set it to the public base URL, e.g. https://id.example.com",
            )
        })?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(ConfigError::new(
                "issuer",
                "must not have a query or fragment",
                "remove everything from `?` or `#` on",
            ));
        }
        match issuer.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http || is_loopback(&issuer) => {}
            "http" => {
                return Err(ConfigError::new(
                    "issuer",
                    "http:// is only allowed for loopback hosts",
                    "use https://, or set allow_insecure_http = true for a test setup",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "issuer",
                    format!("scheme `{other}` is not http or https"),
                    "use an https:// URL",
                ));
            }
        }
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url",
                "unsupported scheme",
                "use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB",
            ));
        }
        range(
            "database_max_connections",
            self.database_max_connections.into(),
            1,
            1000,
        )?;
        let t = &self.tokens;
        range(
            "tokens.authorization_code_ttl",
            t.authorization_code_ttl,
            1,
            600,
        )?;
        range("tokens.access_token_ttl", t.access_token_ttl, 30, 86_400)?;
        range("tokens.id_token_ttl", t.id_token_ttl, 30, 86_400)?;
        range(
            "tokens.refresh_token_idle_ttl",
            t.refresh_token_idle_ttl,
            60,
            31_536_000,
        )?;
        range(
            "tokens.refresh_token_absolute_ttl",
            t.refresh_token_absolute_ttl,
            60,
            31_536_000,
        )?;
        if t.refresh_token_idle_ttl > t.refresh_token_absolute_ttl {
            return Err(ConfigError::new(
                "tokens.refresh_token_idle_ttl",
                "is longer than tokens.refresh_token_absolute_ttl",
                "make the idle lifetime at most the absolute lifetime",
            ));
        }
        range("session.ttl", self.session.ttl, 60, 31_536_000)?;
        range(
            "session.login_request_ttl",
            self.session.login_request_ttl,
            60,
            86_400,
        )?;
        let l = &self.logout;
        range("logout.backchannel_timeout", l.backchannel_timeout, 1, 60)?;
        range(
            "logout.backchannel_retry_base",
            l.backchannel_retry_base,
            1,
            3600,
        )?;
        range(
            "logout.backchannel_max_attempts",
            l.backchannel_max_attempts,
            1,
            100,
        )?;
        let a = &self.argon2;
        range(
            "argon2.memory_kib",
            a.memory_kib.into(),
            8 * 1024,
            1024 * 1024,
        )?;
        range("argon2.iterations", a.iterations.into(), 1, 100)?;
        range("argon2.parallelism", a.parallelism.into(), 1, 64)?;
        range("argon2.max_concurrent", a.max_concurrent as i64, 1, 1024)?;
        range("audit.retention_days", self.audit.retention_days, 0, 36_500)?;
        self.validate_accounts()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(ConfigError::new(
                "log_level",
                format!("`{}` is not a log filter", self.log_level),
                "use error, warn, info, debug or trace",
            ));
        }
        Ok(())
    }

    fn validate_accounts(&self) -> Result<(), ConfigError> {
        let a = &self.accounts;
        range(
            "accounts.verification_link_ttl",
            a.verification_link_ttl,
            60,
            2_592_000,
        )?;
        range(
            "accounts.verification_code_ttl",
            a.verification_code_ttl,
            60,
            86_400,
        )?;
        range("accounts.reset_link_ttl", a.reset_link_ttl, 60, 86_400)?;
        range("accounts.invitation_ttl", a.invitation_ttl, 3600, 2_592_000)?;
        range("accounts.code_max_attempts", a.code_max_attempts, 1, 20)?;
        range("accounts.resend_cooldown", a.resend_cooldown, 0, 3600)?;
        range(
            "accounts.deletion_grace_period",
            a.deletion_grace_period,
            0,
            31_536_000,
        )?;
        let m = &self.mail;
        if m.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "mail.from",
                format!("`{}` is not a mail address", m.from),
                "use an address like \"Portcullis <no-reply@example.com>\"",
            ));
        }
        if m.transport == MailTransport::Smtp {
            let url = m.smtp_url.expose();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://"))
                || Url::parse(url).is_err()
            {
                return Err(ConfigError::new(
                    "mail.smtp_url",
                    "not an smtp:// or smtps:// URL",
                    "use smtp://HOST:PORT?tls=required or smtps://HOST:PORT",
                ));
            }
        }
        if m.transport == MailTransport::File && m.dir.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "mail.dir",
                "is empty",
                "name a folder for the message files, e.g. data/mail",
            ));
        }
        range("accounts.phone_code_ttl", a.phone_code_ttl, 60, 3600)?;
        range("accounts.login_code_ttl", a.login_code_ttl, 60, 3600)?;
        let s = &self.sms;
        if s.transport == SmsTransport::Http {
            let ok = Url::parse(&s.http_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(ConfigError::new(
                    "sms.http_url",
                    "not an http(s) URL",
                    "set the gateway's URL, e.g. https://sms.example.com/send",
                ));
            }
            if !matches!(s.http_method.as_str(), "POST" | "PUT" | "GET") {
                return Err(ConfigError::new(
                    "sms.http_method",
                    format!("`{}` is not supported", s.http_method),
                    "use POST, PUT or GET",
                ));
            }
        }
        range("mail.max_attempts", m.max_attempts, 1, 100)?;
        range("mail.retry_base", m.retry_base, 1, 3600)?;
        range("mail.poll_interval", m.poll_interval, 1, 3600)?;
        let r = &self.rate_limit;
        range(
            "rate_limit.ip_per_minute",
            r.ip_per_minute.into(),
            1,
            100_000,
        )?;
        range("rate_limit.ip_burst", r.ip_burst.into(), 1, 100_000)?;
        range(
            "rate_limit.account_per_hour",
            r.account_per_hour.into(),
            1,
            100_000,
        )?;
        range(
            "rate_limit.account_burst",
            r.account_burst.into(),
            1,
            100_000,
        )?;
        Ok(())
    }

    /// The issuer without a trailing slash: `iss` must match it byte for byte.
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// Whether cookies must carry `Secure` (and may use the `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn range(key: &str, value: i64, min: i64, max: i64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("{value} is out of range"),
            format!("use a value from {min} to {max}"),
        ))
    }
}

/// Every key of the defaults, dotted (`tokens.access_token_ttl`).
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, dict: &figment::value::Dict, out: &mut BTreeSet<String>) {
        for (k, v) in dict {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v.as_dict() {
                Some(inner) => walk(&key, inner, out),
                None => {
                    out.insert(key);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    if let Ok(dict) = Figment::from(Toml::string(DEFAULTS)).extract::<figment::value::Dict>() {
        walk("", &dict, &mut out);
    }
    out
}

fn from_figment(e: figment::Error) -> ConfigError {
    let key = if e.path.is_empty() {
        "(file)".to_owned()
    } else {
        e.path.join(".")
    };
    let source = e
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    let fix = match &e.kind {
        figment::error::Kind::UnknownField(..) => {
            "remove it; see config/default.toml for the valid keys".to_owned()
        }
        _ => format!(
            "set `{key}` (env PORTCULLIS_{}) to a valid value; see config/default.toml",
            key.to_ascii_uppercase().replace('.', "__")
        ),
    };
    ConfigError {
        key,
        problem: format!("{}{source}", e.kind),
        fix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load_from(None, Path::new("/nonexistent"), &env)
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]).unwrap().settings;
        assert_eq!(s.issuer(), "http://127.0.0.1:8080");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url.expose(), "sqlite://data/portcullis.db");
        assert_eq!(s.tokens.authorization_code_ttl, 60);
        assert_eq!(format!("{:?}", s.database_url), "[redacted]");
    }

    #[test]
    fn env_overrides_nested_and_warns_on_unknown() {
        let l = load(&[
            ("PORTCULLIS_TOKENS__ACCESS_TOKEN_TTL", "300"),
            ("PORTCULLIS_NOPE", "1"),
            ("OTHER", "x"),
        ])
        .unwrap();
        assert_eq!(l.settings.tokens.access_token_ttl, 300);
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("PORTCULLIS_NOPE"));
    }

    #[test]
    fn secret_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("db");
        std::fs::write(&f, "postgres://u:p@127.0.0.1/x\n").unwrap();
        let s = load(&[("PORTCULLIS_DATABASE_URL_FILE", f.to_str().unwrap())])
            .unwrap()
            .settings;
        assert_eq!(s.database_url.expose(), "postgres://u:p@127.0.0.1/x");
    }

    #[test]
    fn nested_secrets_from_files_and_account_keys_validated() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("smtp");
        std::fs::write(&f, "s3cret\n").unwrap();
        let s = load(&[
            ("PORTCULLIS_MAIL__SMTP_PASSWORD_FILE", f.to_str().unwrap()),
            (
                "PORTCULLIS_SMS__HTTP_AUTHORIZATION_FILE",
                f.to_str().unwrap(),
            ),
        ])
        .unwrap()
        .settings;
        assert_eq!(s.mail.smtp_password.expose(), "s3cret");
        assert_eq!(s.sms.http_authorization.expose(), "s3cret");
        assert!(s.signup.enabled && s.accounts.require_verified_email);
        assert_eq!(s.accounts.reset_link_ttl, 1800);
        let e = load(&[("PORTCULLIS_MAIL__FROM", "not an address")]).unwrap_err();
        assert_eq!(e.key, "mail.from");
        let e = load(&[
            ("PORTCULLIS_MAIL__TRANSPORT", "smtp"),
            ("PORTCULLIS_MAIL__SMTP_URL", "http://x"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "mail.smtp_url");
        let e = load(&[
            ("PORTCULLIS_SMS__TRANSPORT", "http"),
            ("PORTCULLIS_SMS__HTTP_METHOD", "DELETE"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "sms.http_method");
        let e = load(&[("PORTCULLIS_ACCOUNTS__CODE_MAX_ATTEMPTS", "0")]).unwrap_err();
        assert_eq!(e.key, "accounts.code_max_attempts");
        let e = load(&[("PORTCULLIS_RATE_LIMIT__IP_BURST", "0")]).unwrap_err();
        assert_eq!(e.key, "rate_limit.ip_burst");
    }

    #[test]
    fn errors_name_the_key_and_fix() {
        let e = load(&[("PORTCULLIS_BIND", "nonsense")]).unwrap_err();
        assert_eq!(e.key, "bind");
        assert!(e.to_string().contains("fix:"), "{e}");
        let e = load(&[("PORTCULLIS_ISSUER", "http://id.example.com")]).unwrap_err();
        assert_eq!(e.key, "issuer");
        let e = load(&[("PORTCULLIS_TOKENS__AUTHORIZATION_CODE_TTL", "0")]).unwrap_err();
        assert_eq!(e.key, "tokens.authorization_code_ttl");
        let e = load(&[("PORTCULLIS_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(e.key, "database_url");
        let e = load(&[
            ("PORTCULLIS_TOKENS__REFRESH_TOKEN_IDLE_TTL", "7200"),
            ("PORTCULLIS_TOKENS__REFRESH_TOKEN_ABSOLUTE_TTL", "3600"),
        ])
        .unwrap_err();
        assert_eq!(e.key, "tokens.refresh_token_idle_ttl");
        let e = load(&[("PORTCULLIS_TOKENS__REFRESH_TOKEN_ABSOLUTE_TTL", "10")]).unwrap_err();
        assert_eq!(e.key, "tokens.refresh_token_absolute_ttl");
        let e = load(&[("PORTCULLIS_KEYS_AUTO_PRUNE", "sometimes")]).unwrap_err();
        assert_eq!(e.key, "keys_auto_prune");
        let e = load(&[("PORTCULLIS_TOKENS__ID_TOKEN_ALG", "none")]).unwrap_err();
        assert_eq!(e.key, "tokens.id_token_alg");
        assert!(!e.to_string().contains('\n'));
    }
}
