//! Validation of loaded settings: ranges, URLs and consistency, each failure naming its fix.

use url::Url;

use super::error::ConfigError;
use super::sections::{MailTransport, Settings, SmsTransport};

impl Settings {
    /// Check every value; the first problem found is returned.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
        // Up to two years (the preload list asks for at least one).
        range("hsts_max_age", self.hsts_max_age, 0, 63_072_000)?;
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
        range(
            "database_acquire_timeout_secs",
            self.database_acquire_timeout_secs,
            1,
            60,
        )?;
        let sv = &self.server;
        range(
            "server.header_read_timeout_secs",
            sv.header_read_timeout_secs,
            1,
            3600,
        )?;
        range(
            "server.body_read_timeout_secs",
            sv.body_read_timeout_secs,
            1,
            3600,
        )?;
        range(
            "server.shutdown_timeout_secs",
            sv.shutdown_timeout_secs,
            0,
            3600,
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
        range("jwks_max_age", self.jwks_max_age, 0, 86_400)?;
        range(
            "keys_prepublish_seconds",
            self.keys_prepublish_seconds,
            0,
            30 * 86_400,
        )?;
        let least = self.jwks_max_age + super::KEY_RELOAD_SECS;
        if self.keys_prepublish_seconds < least {
            return Err(ConfigError::new(
                "keys_prepublish_seconds",
                format!(
                    "is shorter than jwks_max_age + {} s (the key reload interval): a relying \
                     party could meet a new kid before its cached JWKS expires",
                    super::KEY_RELOAD_SECS
                ),
                format!("use at least {least}, or lower jwks_max_age"),
            ));
        }
        let kek = self.keys_encryption_key.expose();
        if !kek.is_empty() && super::sections::decode_kek(kek).is_none() {
            return Err(ConfigError::new(
                "keys_encryption_key",
                "is not 32 bytes in base64",
                "generate one with `portcullis keys new-kek` (or `openssl rand -base64 32`)",
            ));
        }
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
        range(
            "rate_limit.login_failures_per_account",
            r.login_failures_per_account.into(),
            1,
            100_000,
        )?;
        range(
            "rate_limit.login_failures_per_ip",
            r.login_failures_per_ip.into(),
            1,
            1_000_000,
        )?;
        range(
            "rate_limit.login_failure_window",
            r.login_failure_window,
            1,
            86_400,
        )?;
        range(
            "rate_limit.known_device_ttl",
            r.known_device_ttl,
            3600,
            5 * 365 * 86_400,
        )?;
        Ok(())
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
