//! Signing keys: generated on first start, kept as PKCS#8 PEM files in `keys_dir`
//! (mode 0600), identified by their RFC 7638 JWK thumbprint, published as a JWKS.
//!
//! File names are `<alg>-<unix seconds>.pem` (`rs256-1732390000.pem`); for each algorithm the
//! newest file is the active signing key and every file is published, so a rotated-out key keeps
//! validating what it signed. A JWS header's `alg` must match the key found by `kid`: the `none`
//! algorithm and algorithm confusion are impossible by construction.

mod error;
mod files;
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
use files::{LoadedKey, generate_key_file, key_files, load_key_file};
use verified::VerifiedCache;

/// How often a running server looks for rotated or pruned key files (SIGHUP reloads at once).
pub const KEY_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// One consistent snapshot of the key folder.
struct Loaded {
    active: HashMap<SigningAlgorithm, usize>,
    keys: Vec<LoadedKey>,
    by_kid: HashMap<String, usize>,
    jwks: bytes::Bytes,
    /// The file names this snapshot was built from, to notice changes cheaply.
    files: Vec<PathBuf>,
    verified: VerifiedCache,
}

/// Every key Portcullis publishes, the active signer per algorithm, and the pre-serialised JWKS.
///
/// The set can be reloaded while the server runs (`reload`, on SIGHUP and from housekeeping):
/// readers take a cheap snapshot, so a reload never blocks signing for long.
pub struct KeySet {
    dir: PathBuf,
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
    /// When a newer key of the same algorithm took over signing; `None` for the active key.
    pub retired: Option<i64>,
    pub path: PathBuf,
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
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    fn load(dir: &Path, generate_missing: bool) -> Result<Loaded, KeyError> {
        let mut keys = Self::read_dir(dir)?;
        for alg in SigningAlgorithm::ALL {
            if !keys.iter().any(|k| k.alg == alg) {
                if !generate_missing {
                    return Err(KeyError::NoKey(alg));
                }
                let path = generate_key_file(dir, alg)?;
                keys.push(load_key_file(&path)?);
            }
        }
        Ok(Loaded::from_keys(keys))
    }

    /// Re-read the key folder if its files changed (a `keys rotate` or `keys prune` ran).
    /// Returns whether a new set was loaded. On error the current set stays in use.
    pub fn reload(&self) -> Result<bool, KeyError> {
        let files = key_files(&self.dir)?;
        if files == self.snapshot().files {
            return Ok(false);
        }
        // Never generate here: a folder emptied by mistake must not silently replace the keys.
        let loaded = Self::load(&self.dir, false)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(true)
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Create a new key for `alg` in `dir`; it becomes the active signer once the server
    /// reloads its keys (SIGHUP, the next housekeeping run, or a restart).
    pub fn rotate(dir: &Path, alg: SigningAlgorithm) -> Result<String, KeyError> {
        let path = generate_key_file(dir, alg)?;
        Ok(load_key_file(&path)?.kid)
    }

    /// Every key in `dir`, newest first per algorithm, with its retirement time: the creation
    /// time of its successor (the next newer key of the same algorithm).
    pub fn list(dir: &Path) -> Result<Vec<KeyInfo>, KeyError> {
        let mut keys = Self::read_dir(dir)?;
        keys.sort_by(|a, b| {
            (a.alg.as_str(), b.created, &a.kid).cmp(&(b.alg.as_str(), a.created, &b.kid))
        });
        let mut out: Vec<KeyInfo> = Vec::with_capacity(keys.len());
        for k in keys {
            let retired = out
                .last()
                .filter(|newer| newer.alg == k.alg)
                .map(|newer| newer.created);
            out.push(KeyInfo {
                alg: k.alg,
                kid: k.kid,
                created: k.created,
                retired,
                path: k.path,
            });
        }
        Ok(out)
    }

    /// Delete the keys retired more than `max_token_lifetime` seconds before `now`: every token
    /// they signed has expired, so no verifier needs them. The active key of each algorithm is
    /// never removed. Returns the keys removed.
    pub fn prune(dir: &Path, max_token_lifetime: i64, now: i64) -> Result<Vec<KeyInfo>, KeyError> {
        let mut removed = Vec::new();
        for key in Self::list(dir)? {
            if let Some(retired) = key.retired
                && retired + max_token_lifetime < now
            {
                fs::remove_file(&key.path).map_err(|source| KeyError::Io {
                    path: key.path.clone(),
                    source,
                })?;
                removed.push(key);
            }
        }
        Ok(removed)
    }

    fn read_dir(dir: &Path) -> Result<Vec<LoadedKey>, KeyError> {
        key_files(dir)?.iter().map(|p| load_key_file(p)).collect()
    }

    /// The JWKS document, serialised once per key set.
    pub fn jwks_json(&self) -> bytes::Bytes {
        self.snapshot().jwks.clone()
    }

    pub fn active_kid(&self, alg: SigningAlgorithm) -> Option<String> {
        let s = self.snapshot();
        s.active.get(&alg).map(|&i| s.keys[i].kid.clone())
    }

    /// Sign `claims` as a compact JWS with the active key for `alg`, header `typ` and `kid`.
    pub fn sign(
        &self,
        alg: SigningAlgorithm,
        typ: &str,
        claims: Map<String, Value>,
    ) -> Result<String, KeyError> {
        let s = self.snapshot();
        let key = s
            .active
            .get(&alg)
            .map(|&i| &s.keys[i])
            .ok_or(KeyError::NoKey(alg))?;
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
        let verified = (
            payload.claims_set().clone(),
            header.token_type().map(str::to_owned),
        );
        s.verified.put(token, &verified);
        Ok(verified)
    }
}

impl Loaded {
    fn from_keys(mut keys: Vec<LoadedKey>) -> Self {
        keys.sort_by(|a, b| b.created.cmp(&a.created).then(a.kid.cmp(&b.kid)));
        let mut active = HashMap::new();
        let mut by_kid = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            active.entry(k.alg).or_insert(i);
            by_kid.insert(k.kid.clone(), i);
        }
        let jwks = serde_json::json!({
            "keys": keys.iter().map(|k| Value::Object(k.public_jwk.as_ref().clone())).collect::<Vec<_>>()
        });
        let mut files: Vec<PathBuf> = keys.iter().map(|k| k.path.clone()).collect();
        files.sort();
        Self {
            active,
            keys,
            by_kid,
            jwks: bytes::Bytes::from(jwks.to_string()),
            files,
            verified: VerifiedCache::default(),
        }
    }
}
