//! `portcullis keys rotate|prune|list`: signing-key rotation from the command line.
//!
//! Procedure (see docs/tokens.md): `keys rotate` adds a new key, which the running server loads
//! within `KEY_RELOAD_EVERY` (or at once on SIGHUP) and from then on signs with, while the old
//! key stays in the JWKS. `keys prune` (or the housekeeping job, `keys_auto_prune`) deletes a
//! retired key once every token it can have signed has expired.

use clap::Subcommand;

use super::Failure;
use crate::config::Settings;
use crate::crypto::KeySet;
use crate::domain::{InvalidInput, SigningAlgorithm};
use crate::startup::open_store;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key (for --alg, or for every algorithm); it becomes the active
    /// signer once the server reloads its keys (within 30 s, or at once on SIGHUP).
    Rotate {
        /// RS256, ES256 or EdDSA (default: all three).
        #[arg(long)]
        alg: Option<String>,
    },
    /// Delete keys retired longer ago than the longest token lifetime (plus a safety margin).
    Prune,
    /// List the keys: algorithm, kid, created, retired.
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
        KeysCommand::Rotate { alg } => {
            let algs = match alg.as_deref() {
                None => SigningAlgorithm::ALL.to_vec(),
                Some(a) => vec![a.parse::<SigningAlgorithm>()?],
            };
            // Make sure the folder exists with a full set before adding to it.
            KeySet::load_or_generate(dir).map_err(key_failure)?;
            for alg in algs {
                let kid = KeySet::rotate(dir, alg).map_err(key_failure)?;
                println!("{alg}: new signing key {kid}");
            }
            println!(
                "a running server switches to it within {} s (or at once on SIGHUP); old keys stay published until `keys prune`",
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
            if json {
                let list: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "alg": k.alg.as_str(),
                            "kid": k.kid,
                            "created": k.created,
                            "retired": k.retired,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::from(list));
            } else {
                for k in keys {
                    let state = match k.retired {
                        None => "active".to_owned(),
                        Some(t) => format!("retired at {t}"),
                    };
                    println!("{:<6} {}  created {}  {state}", k.alg, k.kid, k.created);
                }
            }
            Ok(())
        }
    }
}
