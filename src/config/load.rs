//! Layered loading: defaults → local file → `--config` file → environment (`*_FILE` for secrets).

use std::collections::BTreeSet;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::error::ConfigError;
use super::sections::Settings;

/// The built-in defaults: the same file that documents every key.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "PORTCULLIS_";
/// Keys whose value may come from a file named by `PORTCULLIS_<KEY>_FILE`.
const SECRET_KEYS: &[&str] = &[
    "database_url",
    "mail.smtp_url",
    "mail.smtp_password",
    "sms.http_authorization",
    "metrics.token",
    "keys_encryption_key",
];

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
