//! `portcullis keys rotate|prune|list`: signing-key rotation from the command line.
//!
//! Procedure (see docs/tokens.md): `keys rotate` adds a new key, which the running server loads
//! (publishes in the JWKS) within `KEY_RELOAD_EVERY` (or at once on SIGHUP) and signs with from
//! `keys_prepublish_seconds` after the rotation on (`--now`: at once, for an emergency), while
//! the old key stays in the JWKS. `keys prune` (or the housekeeping job, `keys_auto_prune`)
//! deletes a retired key once every token it can have signed has expired.

use clap::Subcommand;

use super::Failure;
use crate::config::Settings;
use crate::crypto::{KeySet, KeyStatus};
use crate::domain::{InvalidInput, SigningAlgorithm};
use crate::startup::open_store;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key (for --alg, or for every algorithm): published at once (once the
    /// server reloads its keys, within 30 s or at once on SIGHUP), signing only after
    /// keys_prepublish_seconds, so relying parties that cached the JWKS know it by then.
    Rotate {
        /// RS256, ES256 or EdDSA (default: all three).
        #[arg(long)]
        alg: Option<String>,
        /// Sign with the new key at once (after a key compromise): relying parties holding a
        /// cached JWKS will meet an unknown kid and must fetch it again.
        #[arg(long)]
        now: bool,
    },
    /// Delete keys retired longer ago than the longest token lifetime (plus a safety margin).
    Prune,
    /// List the keys: algorithm, kid, created, status (active, pending until T, retired at T).
    List {
        #[arg(long)]
        json: bool,
    },
}

fn key_failure(e: crate::crypto::KeyError) -> Failure {
    Failure {
        message: e.to_string(),
        code: 1,
    }
}

pub async fn run(settings: Settings, command: KeysCommand) -> Result<(), Failure> {
    let dir = settings.keys_dir.as_path();
    match command {
        KeysCommand::Rotate { alg, now } => {
            let algs = match alg.as_deref() {
                None => SigningAlgorithm::ALL.to_vec(),
                Some(a) => vec![a.parse::<SigningAlgorithm>()?],
            };
            // Make sure the folder exists with a full set before adding to it.
            KeySet::load_or_generate(dir).map_err(key_failure)?;
            let delay = if now {
                0
            } else {
                settings.keys_prepublish_seconds
            };
            for alg in algs {
                let key = KeySet::rotate(dir, alg, delay).map_err(key_failure)?;
                if now {
                    println!("{alg}: new signing key {}, active now", key.kid);
                } else {
                    println!(
                        "{alg}: new signing key {}, published now, signing from {} (in {delay} s)",
                        key.kid, key.activates
                    );
                }
            }
            println!(
                "a running server publishes it within {} s (or at once on SIGHUP); old keys stay published until `keys prune`",
                crate::crypto::keys::KEY_RELOAD_EVERY.as_secs()
            );
            Ok(())
        }
        KeysCommand::Prune => {
            if !dir.is_dir() {
                return Err(InvalidInput::new(format!(
                    "keys_dir {} does not exist",
                    dir.display()
                ))
                .into());
            }
            let store = open_store(&settings).await?;
            let clients = store.list_clients().await;
            store.close().await;
            let retention = crate::oauth::key_retention(&settings, &clients?);
            let removed = KeySet::prune(dir, retention, crate::now()).map_err(key_failure)?;
            if removed.is_empty() {
                println!("no key is due for removal (retention {retention} s after retirement)");
            }
            for k in removed {
                println!("{}: removed {} ({})", k.alg, k.kid, k.path.display());
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let keys = KeySet::list(dir).map_err(key_failure)?;
            let now = crate::now();
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        let status = match k.status(now) {
                            KeyStatus::Pending { .. } => "pending",
                            KeyStatus::Active { .. } => "active",
                            KeyStatus::Retired { .. } => "retired",
                        };
                        serde_json::json!({
                            "alg": k.alg.as_str(),
                            "kid": k.kid,
                            "created": k.created,
                            "activates": k.activates,
                            "retired": k.retired,
                            "status": status,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for k in keys {
                    let state = match k.status(now) {
                        KeyStatus::Pending { until } => format!("pending until {until}"),
                        KeyStatus::Active { retires: None } => "active".to_owned(),
                        KeyStatus::Active { retires: Some(t) } => format!("active until {t}"),
                        KeyStatus::Retired { at } => format!("retired at {at}"),
                    };
                    println!("{:<6} {}  created {}  {state}", k.alg, k.kid, k.created);
                }
            }
            Ok(())
        }
    }
}
