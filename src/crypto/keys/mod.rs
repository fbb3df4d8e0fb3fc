//! Signing keys: generated on first start, kept as PKCS#8 PEM files in `keys_dir` (mode 0600) or,
//! through `crate::keyring`, in the database sealed with the key-encryption key ([`Kek`]);
//! identified by their RFC 7638 JWK thumbprint, published as a JWKS.
//!
//! File names are `<alg>-<created>.pem` (`rs256-1732390000.pem`), or
//! `<alg>-<created>-<activates>.pem` for a key published ahead of signing (OIDC Core §10.1.1:
//! a relying party that cached the JWKS must never meet an unknown `kid`). Every file is
//! published at once; for each algorithm the key with the latest activation time that has come
//! signs, chosen at each signature from the server's clock, so a pending key takes over without
//! a reload, and a rotated-out key keeps validating what it signed. A JWS header's `alg` must
//! match the key found by `kid`: the `none` algorithm and algorithm confusion are impossible by
//! construction.

mod error;
mod files;
mod kek;
#[cfg(test)]
mod tests;
mod verified;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use josekit::jws::JwsHeader;
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};

use crate::domain::SigningAlgorithm;

pub use error::{KeyError, VerifyError};
pub use files::KeyMaterial;
use files::{LoadedKey, generate_key_file, key_files, load_key_file, read_key_file};
pub use kek::{Kek, KekError};
use verified::VerifiedCache;

/// How often a running server looks for rotated or pruned key files (SIGHUP reloads at once).
pub const KEY_RELOAD_EVERY: std::time::Duration =
    std::time::Duration::from_secs(crate::config::KEY_RELOAD_SECS as u64);

/// One consistent snapshot of the key folder.
struct Loaded {
    /// Per algorithm, the keys by activation time, latest first.
    signers: HashMap<SigningAlgorithm, Vec<usize>>,
    keys: Vec<LoadedKey>,
    by_kid: HashMap<String, usize>,
    jwks: bytes::Bytes,
    /// The file names this snapshot was built from, to notice changes cheaply (none for keys
    /// from the database).
    files: Vec<PathBuf>,
    verified: VerifiedCache,
}

/// Every key Portcullis publishes, the active signer per algorithm, and the pre-serialised JWKS.
///
/// The set can be reloaded while the server runs (`reload`, on SIGHUP and from housekeeping):
/// readers take a cheap snapshot, so a reload never blocks signing for long. A set built from
/// [`KeyMaterial`] (`from_material`) has no folder; its owner replaces it (`replace`).
pub struct KeySet {
    dir: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field(
                "kids",
                &self.snapshot().by_kid.keys().cloned().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A key as listed by `portcullis keys list` and considered by `prune`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub alg: SigningAlgorithm,
    pub kid: String,
    pub created: i64,
    /// When it starts (or started) signing; published from `created` on.
    pub activates: i64,
    /// When its successor (the next key of the same algorithm to activate) takes over signing,
    /// possibly in the future; `None` for the newest key.
    pub retired: Option<i64>,
    /// Its file, for keys kept in `keys_dir`.
    pub path: Option<PathBuf>,
}

/// Where a key stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published, not signing before `until`.
    Pending { until: i64 },
    /// Signing (until `retires`, when a pending successor takes over).
    Active { retires: Option<i64> },
    /// Published for verification only, since `at`.
    Retired { at: i64 },
}

impl KeyInfo {
    pub fn status(&self, now: i64) -> KeyStatus {
        match self.retired {
            _ if self.activates > now => KeyStatus::Pending {
                until: self.activates,
            },
            Some(at) if at <= now => KeyStatus::Retired { at },
            retires => KeyStatus::Active { retires },
        }
    }

    /// Order `keys` latest activation first per algorithm and give each its retirement time:
    /// the activation time of its successor (the next key of the same algorithm to activate).
    pub fn chain(mut keys: Vec<KeyInfo>) -> Vec<KeyInfo> {
        keys.sort_by(|a, b| {
            (a.alg.as_str(), b.activates, b.created, &a.kid).cmp(&(
                b.alg.as_str(),
                a.activates,
                a.created,
                &b.kid,
            ))
        });
        let mut out: Vec<KeyInfo> = Vec::with_capacity(keys.len());
        for mut k in keys {
            k.retired = out
                .last()
                .filter(|newer| newer.alg == k.alg)
                .map(|newer| newer.activates);
            out.push(k);
        }
        out
    }

    /// The keys of a `chain` retired more than `max_token_lifetime` seconds before `now`: every
    /// token they signed has expired, so no verifier needs them. The active key of each
    /// algorithm and pending keys are never among them.
    pub fn prunable(chain: Vec<KeyInfo>, max_token_lifetime: i64, now: i64) -> Vec<KeyInfo> {
        chain
            .into_iter()
            .filter(|k| k.retired.is_some_and(|r| r + max_token_lifetime < now))
            .collect()
    }
}

impl KeySet {
    /// Load every key in `dir`; generate an RS256, ES256 and EdDSA key where none exists.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: dir.to_owned(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
        let loaded = Self::load(dir, true)?;
        Ok(Self {
            dir: Some(dir.to_owned()),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// A set of the given keys (e.g. decrypted from the database); every algorithm must have one.
    pub fn from_material(keys: &[KeyMaterial]) -> Result<Self, KeyError> {
        Ok(Self {
            dir: None,
            current: RwLock::new(Arc::new(Self::build(keys)?)),
        })
    }

    /// Replace the keys with `keys` (every algorithm must have one); on error the current set
    /// stays in use.
    pub fn replace(&self, keys: &[KeyMaterial]) -> Result<(), KeyError> {
        let loaded = Self::build(keys)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    fn build(keys: &[KeyMaterial]) -> Result<Loaded, KeyError> {
        let keys = keys
            .iter()
            .map(LoadedKey::from_material)
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(alg) = SigningAlgorithm::ALL
            .into_iter()
            .find(|alg| !keys.iter().any(|k| k.alg == *alg))
        {
            return Err(KeyError::NoKey(alg));
        }
        Ok(Loaded::from_keys(keys))
    }

    /// The `kid`s of the set, sorted: what a reload compares to notice a change.
    pub fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.snapshot().by_kid.keys().cloned().collect();
        kids.sort();
        kids
    }

    /// Every key file in `dir` (none when the folder does not exist).
    pub fn read_files(dir: &Path) -> Result<Vec<KeyMaterial>, KeyError> {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        key_files(dir)?.iter().map(|p| read_key_file(p)).collect()
    }

    fn load(dir: &Path, generate_missing: bool) -> Result<Loaded, KeyError> {
        let mut keys = Self::read_dir(dir)?;
        for alg in SigningAlgorithm::ALL {
            if !keys.iter().any(|k| k.alg == alg) {
                if !generate_missing {
                    return Err(KeyError::NoKey(alg));
                }
                let path = generate_key_file(dir, alg, 0)?;
                keys.push(load_key_file(&path)?);
            }
        }
        Ok(Loaded::from_keys(keys))
    }

    /// Re-read the key folder if its files changed (a `keys rotate` or `keys prune` ran).
    /// Returns whether a new set was loaded. On error the current set stays in use.
    /// A set without a folder (`from_material`) is reloaded by its owner: `Ok(false)`.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let Some(dir) = &self.dir else {
            return Ok(false);
        };
        let files = key_files(dir)?;
        if files == self.snapshot().files {
            return Ok(false);
        }
        // Never generate here: a folder emptied by mistake must not silently replace the keys.
        let loaded = Self::load(dir, false)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(true)
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Create a new key for `alg` in `dir`, signing from `delay` seconds on (at once for 0).
    /// A running server publishes it when it reloads its keys (SIGHUP, within
    /// `KEY_RELOAD_EVERY`, or a restart) and signs with it once its time has come.
    pub fn rotate(dir: &Path, alg: SigningAlgorithm, delay: i64) -> Result<KeyInfo, KeyError> {
        let path = generate_key_file(dir, alg, delay.max(0))?;
        let key = load_key_file(&path)?;
        Ok(KeyInfo {
            alg: key.alg,
            kid: key.kid,
            created: key.created,
            activates: key.activates,
            retired: None,
            path: Some(path),
        })
    }

    /// Every key in `dir`, latest activation first per algorithm, with its retirement time
    /// (`KeyInfo::chain`).
    pub fn list(dir: &Path) -> Result<Vec<KeyInfo>, KeyError> {
        let keys = Self::read_dir(dir)?
            .into_iter()
            .map(|k| KeyInfo {
                alg: k.alg,
                kid: k.kid,
                created: k.created,
                activates: k.activates,
                retired: None,
                path: k.path,
            })
            .collect();
        Ok(KeyInfo::chain(keys))
    }

    /// Delete the files of the keys `KeyInfo::prunable` names. Returns the keys removed.
    pub fn prune(dir: &Path, max_token_lifetime: i64, now: i64) -> Result<Vec<KeyInfo>, KeyError> {
        let due = KeyInfo::prunable(Self::list(dir)?, max_token_lifetime, now);
        for key in &due {
            if let Some(path) = &key.path {
                fs::remove_file(path).map_err(|source| KeyError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
        }
        Ok(due)
    }

    fn read_dir(dir: &Path) -> Result<Vec<LoadedKey>, KeyError> {
        key_files(dir)?.iter().map(|p| load_key_file(p)).collect()
    }

    /// The JWKS document, serialised once per key set.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.snapshot().jwks.clone()
    }

    /// The `kid` of the key that signs for `alg` at `now`.
    pub fn active_kid(&self, alg: SigningAlgorithm, now: i64) -> Option<String> {
        let s = self.snapshot();
        s.signer(alg, now).map(|k| k.kid.clone())
    }

    /// Sign `claims` as a compact JWS with the key active for `alg` at `now` (the server's
    /// clock), header `typ` and `kid`.
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        typ: &str,
        claims: Map<String, Value>,
        now: i64,
    ) -> Result<String, KeyError> {
        let s = self.snapshot();
        let key = s.signer(alg, now).ok_or(KeyError::NoKey(alg))?;
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(key.kid.clone());
        let payload = JwtPayload::from_map(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        jwt::encode_with_signer(&payload, &header, key.signer.as_ref())
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// Check a compact JWS against our own keys only. Returns its claims and `typ`; the caller
    /// checks `exp`, `iss`, `aud` and friends.
    pub fn verify(&self, token: &str) -> Result<(Map<String, Value>, Option<String>), VerifyError> {
        let s = self.snapshot();
        if let Some(hit) = s.verified.get(token) {
            return Ok(hit);
        }
        let header = jwt::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let kid = header
            .claim("kid")
            .and_then(Value::as_str)
            .ok_or(VerifyError::UnknownKey)?;
        let key = s
            .by_kid
            .get(kid)
            .map(|&i| &s.keys[i])
            .ok_or(VerifyError::UnknownKey)?;
        if header.claim("alg").and_then(Value::as_str) != Some(key.alg.as_str()) {
            return Err(VerifyError::BadSignature);
        }
        let (payload, header) = jwt::decode_with_verifier(token, key.verifier.as_ref())
            .map_err(|_| VerifyError::BadSignature)?;
        s.verified.put(token, payload.claims_set());
        Ok((
            payload.claims_set().clone(),
            header.token_type().map(str::to_owned),
        ))
    }
}

impl Loaded {
    fn from_keys(mut keys: Vec<LoadedKey>) -> Self {
        keys.sort_by(|a, b| {
            (b.activates, b.created)
                .cmp(&(a.activates, a.created))
                .then(a.kid.cmp(&b.kid))
        });
        let mut signers: HashMap<SigningAlgorithm, Vec<usize>> = HashMap::new();
        let mut by_kid = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            signers.entry(k.alg).or_default().push(i);
            by_kid.insert(k.kid.clone(), i);
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| Value::Object(k.public_jwk.as_ref().clone())).collect::<Vec<_>>()
        });
        let mut files: Vec<PathBuf> = keys.iter().filter_map(|k| k.path.clone()).collect();
        files.sort();
        Self {
            signers,
            keys,
            by_kid,
            jwks: bytes::Bytes::from(jwks.to_string()),
            files,
            verified: VerifiedCache::default(),
        }
    }
}

impl Loaded {
    /// The key of `alg` with the latest activation time not after `now`; when none has come yet
    /// (only pending keys left, e.g. after a hand edit), the first to activate, rather than none.
    fn signer(&self, alg: SigningAlgorithm, now: i64) -> Option<&LoadedKey> {
        let list = self.signers.get(&alg)?;
        list.iter()
            .map(|&i| &self.keys[i])
            .find(|k| k.activates <= now)
            .or_else(|| list.last().map(|&i| &self.keys[i]))
    }
}
