//! `portcullis keys rotate|prune|list|new-kek`: signing-key rotation from the command line, on
//! the keys wherever they live (`crate::keyring`: the database, or `keys_dir`).
//!
//! Procedure (see docs/tokens.md): `keys rotate` adds a new key, which every running server loads
//! (publishes in the JWKS) within a second from the database, or within `KEY_RELOAD_EVERY` from
//! files (or at once on SIGHUP), and signs with from
//! `keys_prepublish_seconds` after the rotation on (`--now`: at once, for an emergency), while
//! the old key stays in the JWKS. `keys prune` (or the housekeeping job, `keys_auto_prune`)
//! deletes a retired key once every token it can have signed has expired.

use clap::Subcommand;

use super::Failure;
use crate::config::Settings;
use crate::crypto::{Kek, KeyStatus};
use crate::domain::SigningAlgorithm;
use crate::keyring::{Keyring, KeyringError};
use crate::startup::open_store;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key (for --alg, or for every algorithm): published at once (once the
    /// servers reload their keys: within a second from the database, within 30 s or at once on
    /// SIGHUP from keys_dir), signing only after
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
    /// Print a new random key-encryption key (32 bytes, base64) for keys_encryption_key.
    NewKek,
}

fn key_failure(e: KeyringError) -> Failure {
    Failure {
        message: e.to_string(),
        code: 1,
    }
}

/// The key ring of this configuration, and its store (closed by the caller).
async fn open(
    settings: &Settings,
) -> Result<(Keyring, std::sync::Arc<dyn crate::store::Store>), Failure> {
    // Before the database is touched: a missing key-encryption key changes nothing.
    crate::keyring::kek_for(settings).map_err(key_failure)?;
    let store = open_store(settings).await?;
    match Keyring::open(settings, store.clone()).await {
        Ok(keyring) => Ok((keyring, store)),
        Err(e) => {
            store.close().await;
            Err(key_failure(e))
        }
    }
}

pub async fn run(settings: Settings, command: KeysCommand) -> Result<(), Failure> {
    if let KeysCommand::NewKek = command {
        println!("{}", Kek::generate_base64());
        return Ok(());
    }
    let (keyring, store) = open(&settings).await?;
    let result = run_on(&settings, &keyring, store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_on(
    settings: &Settings,
    keyring: &Keyring,
    store: &dyn crate::store::Store,
    command: KeysCommand,
) -> Result<(), Failure> {
    match command {
        KeysCommand::NewKek => Ok(()),
        KeysCommand::Rotate { alg, now } => {
            let algs = match alg.as_deref() {
                None => SigningAlgorithm::ALL.to_vec(),
                Some(a) => vec![a.parse::<SigningAlgorithm>()?],
            };
            let delay = if now {
                0
            } else {
                settings.keys_prepublish_seconds
            };
            for alg in algs {
                let key = keyring.rotate(alg, delay).await.map_err(key_failure)?;
                if now {
                    println!("{alg}: new signing key {}, active now", key.kid);
                } else {
                    println!(
                        "{alg}: new signing key {}, published now, signing from {} (in {delay} s)",
                        key.kid, key.activates
                    );
                }
            }
            if keyring.in_database() {
                println!(
                    "running servers publish it within {} s; old keys stay published until `keys prune`",
                    crate::keyring::DB_RELOAD_EVERY.as_secs() + 1
                );
            } else {
                println!(
                    "a running server publishes it within {} s (or at once on SIGHUP); old keys stay published until `keys prune`",
                    crate::crypto::keys::KEY_RELOAD_EVERY.as_secs()
                );
            }
            Ok(())
        }
        KeysCommand::Prune => {
            let clients = store.list_clients().await?;
            let retention = crate::oauth::key_retention(settings, &clients);
            let removed = keyring
                .prune(retention, crate::now())
                .await
                .map_err(key_failure)?;
            if removed.is_empty() {
                println!("no key is due for removal (retention {retention} s after retirement)");
            }
            for k in removed {
                match &k.path {
                    Some(path) => println!("{}: removed {} ({})", k.alg, k.kid, path.display()),
                    None => println!("{}: removed {}", k.alg, k.kid),
                }
            }
            Ok(())
        }
        KeysCommand::List { json } => {
            let keys = keyring.list().await.map_err(key_failure)?;
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
