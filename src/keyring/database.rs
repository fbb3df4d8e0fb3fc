//! Keys in the database: sealing, opening and the first start (import or generate, once).

use std::path::Path;

use super::KeyringError;
use crate::crypto::{Kek, KekError, KeyMaterial, KeySet};
use crate::domain::SigningAlgorithm;
use crate::store::{Store, StoredKey};

/// Name of the CSRF key in `server_secrets` (and its associated data when sealed).
const CSRF_SECRET: &str = "csrf";

/// Load the stored keys; on an empty table, import the key files of `dir` (an upgrade from
/// keys on disk) or generate a set, and store it unless another node stored one first.
pub(super) async fn open(store: &dyn Store, kek: &Kek, dir: &Path) -> Result<KeySet, KeyringError> {
    let rows = store.signing_keys().await?;
    if !rows.is_empty() {
        return Ok(KeySet::from_material(&decrypt_all(&rows, kek)?)?);
    }
    let first = first_set(dir).await?;
    let sealed = first
        .iter()
        .map(|k| seal(k, kek))
        .collect::<Result<Vec<_>, _>>()?;
    if store.insert_first_signing_keys(&sealed).await? {
        let imported = first
            .iter()
            .filter(|k| k.origin.starts_with("key file"))
            .count();
        if imported > 0 {
            tracing::info!(
                keys = imported,
                "signing key files imported into the database"
            );
        }
        return Ok(KeySet::from_material(&first)?);
    }
    // Another node stored its set first: use that one.
    let rows = store.signing_keys().await?;
    Ok(KeySet::from_material(&decrypt_all(&rows, kek)?)?)
}

/// The key files of `dir`, plus a new key for each algorithm without one.
async fn first_set(dir: &Path) -> Result<Vec<KeyMaterial>, KeyringError> {
    let dir = dir.to_owned();
    let made = tokio::task::spawn_blocking(move || {
        let mut keys = KeySet::read_files(&dir)?;
        let now = crate::now();
        for alg in SigningAlgorithm::ALL {
            if !keys.iter().any(|k| k.alg == alg) {
                keys.push(KeyMaterial::generate(alg, now, 0)?);
            }
        }
        Ok::<_, crate::crypto::KeyError>(keys)
    })
    .await
    .map_err(|e| crate::crypto::KeyError::Sign(e.to_string()))??;
    Ok(made)
}

/// `key` sealed for storage, under its `kid`.
pub(super) fn seal(key: &KeyMaterial, kek: &Kek) -> Result<StoredKey, KeyringError> {
    let kid = key.kid()?;
    let private_key = kek
        .seal(&kid, &key.pem)
        .map_err(|e| KeyringError::Corrupt {
            kid: kid.clone(),
            reason: e.to_string(),
        })?;
    Ok(StoredKey {
        kid,
        alg: key.alg.as_str().to_owned(),
        created_at: key.created,
        activates_at: key.activates,
        private_key,
    })
}

pub(super) fn alg_of(row: &StoredKey) -> Result<SigningAlgorithm, KeyringError> {
    row.alg.parse().map_err(|_| KeyringError::Corrupt {
        kid: row.kid.clone(),
        reason: format!("unknown algorithm `{}`", row.alg),
    })
}

/// Open every stored key. Any key the KEK does not open stops everything (`WrongKek`): a
/// partial set would sign with some keys and silently drop others.
pub(super) fn decrypt_all(rows: &[StoredKey], kek: &Kek) -> Result<Vec<KeyMaterial>, KeyringError> {
    rows.iter()
        .map(|row| {
            let pem = kek.open(&row.kid, &row.private_key).map_err(|e| match e {
                KekError::Undecryptable => KeyringError::WrongKek,
                e => KeyringError::Corrupt {
                    kid: row.kid.clone(),
                    reason: e.to_string(),
                },
            })?;
            let key = KeyMaterial::new(
                alg_of(row)?,
                row.created_at,
                row.activates_at,
                pem,
                format!("signing key {} in the database", row.kid),
            );
            // The sealed name is authenticated; the key must also be the one it names.
            if key.kid()? != row.kid {
                return Err(KeyringError::Corrupt {
                    kid: row.kid.clone(),
                    reason: "the key does not match its kid".into(),
                });
            }
            Ok(key)
        })
        .collect()
}

/// The CSRF key sealed in the database: the stored one, or (first start) the one in `file` when
/// it exists, else a new one; concurrent first starts agree on one.
pub(super) async fn csrf_key(
    store: &dyn Store,
    kek: &Kek,
    file: &Path,
) -> Result<[u8; 32], KeyringError> {
    let candidate: [u8; 32] = match std::fs::read(file) {
        Ok(bytes) => bytes.try_into().unwrap_or_else(|_| rand::random()),
        Err(_) => rand::random(),
    };
    let corrupt = |reason: String| KeyringError::Corrupt {
        kid: CSRF_SECRET.into(),
        reason,
    };
    let sealed = kek
        .seal(CSRF_SECRET, &candidate)
        .map_err(|e| corrupt(e.to_string()))?;
    let stored = store
        .server_secret(CSRF_SECRET, &sealed, crate::now())
        .await?;
    let bytes = kek
        .open(CSRF_SECRET, &stored)
        .map_err(|_| KeyringError::WrongKek)?;
    bytes.try_into().map_err(|_| corrupt("not 32 bytes".into()))
}
