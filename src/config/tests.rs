//! Unit tests of loading and validation.

use std::path::Path;

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

#[test]
fn key_prepublication_must_outlast_a_cached_jwks() {
    let s = load(&[]).unwrap().settings;
    assert!(s.keys_prepublish_seconds >= s.jwks_max_age + KEY_RELOAD_SECS);
    let Err(e) = load(&[("PORTCULLIS_KEYS_PREPUBLISH_SECONDS", "300")]) else {
        panic!("shorter than max-age + reload interval is refused");
    };
    assert!(e.to_string().contains("keys_prepublish_seconds"), "{e}");
    // A shorter cache allows a shorter delay.
    let s = load(&[
        ("PORTCULLIS_JWKS_MAX_AGE", "60"),
        ("PORTCULLIS_KEYS_PREPUBLISH_SECONDS", "90"),
    ])
    .unwrap()
    .settings;
    assert_eq!(s.keys_prepublish_seconds, 90);
}

#[test]
fn trusted_proxies_as_a_list_or_comma_separated() {
    assert!(load(&[]).unwrap().settings.trusted_proxies.is_empty());
    let s = load(&[(
        "PORTCULLIS_TRUSTED_PROXIES",
        "127.0.0.1/32, 10.0.0.0/8,::1,2001:db8::/32",
    )])
    .unwrap()
    .settings;
    let shown: Vec<String> = s.trusted_proxies.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        shown,
        ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "2001:db8::/32"]
    );
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("p.toml");
    std::fs::write(&toml, "trusted_proxies = [\"192.168.0.0/16\"]\n").unwrap();
    let s = Settings::load_from(Some(&toml), Path::new("/nonexistent"), &[])
        .unwrap()
        .settings;
    assert_eq!(s.trusted_proxies[0].to_string(), "192.168.0.0/16");
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.0/8;1.2.3.4"] {
        let e = load(&[("PORTCULLIS_TRUSTED_PROXIES", bad)]).unwrap_err();
        assert_eq!(e.key, "trusted_proxies", "{bad}");
    }
}

#[test]
fn metrics_token_from_the_environment_or_a_file() {
    assert_eq!(load(&[]).unwrap().settings.metrics.token.expose(), "");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "scrape-me\n").unwrap();
    let s = load(&[("PORTCULLIS_METRICS__TOKEN_FILE", f.to_str().unwrap())])
        .unwrap()
        .settings;
    assert_eq!(s.metrics.token.expose(), "scrape-me");
    assert_eq!(format!("{:?}", s.metrics.token), "[redacted]");
    let s = load(&[("PORTCULLIS_METRICS__TOKEN", "t")])
        .unwrap()
        .settings;
    assert_eq!(s.metrics.token.expose(), "t");
}

#[test]
fn hsts_only_for_an_https_issuer_and_configurable() {
    let http = load(&[]).unwrap().settings;
    assert_eq!(http.hsts_max_age, 31_536_000);
    assert_eq!(http.hsts(), None, "no header over http");
    let https = load(&[("PORTCULLIS_ISSUER", "https://id.example.com")])
        .unwrap()
        .settings;
    assert_eq!(https.hsts().as_deref(), Some("max-age=31536000"));
    let sub = load(&[
        ("PORTCULLIS_ISSUER", "https://id.example.com"),
        ("PORTCULLIS_HSTS_MAX_AGE", "600"),
        ("PORTCULLIS_HSTS_INCLUDE_SUBDOMAINS", "true"),
    ])
    .unwrap()
    .settings;
    assert_eq!(
        sub.hsts().as_deref(),
        Some("max-age=600; includeSubDomains")
    );
    let off = load(&[
        ("PORTCULLIS_ISSUER", "https://id.example.com"),
        ("PORTCULLIS_HSTS_MAX_AGE", "0"),
    ])
    .unwrap()
    .settings;
    assert_eq!(off.hsts(), None);
    let e = load(&[("PORTCULLIS_HSTS_MAX_AGE", "-1")]).unwrap_err();
    assert_eq!(e.key, "hsts_max_age");
}

#[test]
fn key_encryption_key_is_32_bytes_of_base64_from_env_or_file() {
    assert_eq!(load(&[]).unwrap().settings.keys_encryption_key(), None);
    let bytes: Vec<u8> = (0u8..32).collect();
    // `openssl rand -base64 32` (standard, padded) and URL-safe without padding.
    for text in [
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
    ] {
        let s = load(&[("PORTCULLIS_KEYS_ENCRYPTION_KEY", text)])
            .unwrap()
            .settings;
        assert_eq!(s.keys_encryption_key().unwrap().to_vec(), bytes);
        assert_eq!(format!("{:?}", s.keys_encryption_key), "[redacted]");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kek");
    std::fs::write(&f, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
    let s = load(&[("PORTCULLIS_KEYS_ENCRYPTION_KEY_FILE", f.to_str().unwrap())])
        .unwrap()
        .settings;
    assert_eq!(s.keys_encryption_key().unwrap().to_vec(), bytes);
    // 16 bytes, and not base64 at all: refused, naming the key and how to make one.
    for bad in ["AAECAwQFBgcICQoLDA0ODw==", "not a key"] {
        let e = load(&[("PORTCULLIS_KEYS_ENCRYPTION_KEY", bad)]).unwrap_err();
        assert_eq!(e.key, "keys_encryption_key");
        assert!(e.to_string().contains("keys new-kek"), "{e}");
    }
}
