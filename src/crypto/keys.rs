//! Signing keys: generated on first start, kept as PKCS#8 PEM files in `keys_dir`
//! (mode 0600), identified by their RFC 7638 JWK thumbprint, published as a JWKS.
//!
//! File names are `<alg>-<unix seconds>.pem` (`rs256-1732390000.pem`); for each algorithm the
//! newest file is the active signing key and every file is published, so a rotated-out key keeps
//! validating what it signed. A JWS header's `alg` must match the key found by `kid`: the `none`
//! algorithm and algorithm confusion are impossible by construction.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier, RS256};
use josekit::jwt::{self, JwtPayload};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::domain::SigningAlgorithm;

const RSA_BITS: u32 = 2048;

/// How often a running server looks for rotated or pruned key files (SIGHUP reloads at once).
pub const KEY_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("no signing key for {0}")]
    NoKey(SigningAlgorithm),
}

/// Why a presented JWT was not accepted. Deliberately coarse: callers answer `invalid_token`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}

struct LoadedKey {
    alg: SigningAlgorithm,
    created: i64,
    kid: String,
    path: PathBuf,
    signer: Box<dyn JwsSigner>,
    verifier: Box<dyn JwsVerifier>,
    public_jwk: Jwk,
}

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

/// Tokens whose signature already checked out, until their `exp`: a resource server introspecting
/// the same token on every request costs one signature verification, not one per request. The
/// key is the whole token, so a single changed byte misses. Each key-set snapshot has its own
/// cache: a reload (rotation, prune, a key deleted by hand) starts from empty.
#[derive(Default)]
struct VerifiedCache {
    entries: RwLock<HashMap<String, VerifiedEntry>>,
}

/// `exp`, claims and `typ` of a verified token.
type VerifiedEntry = (i64, Map<String, Value>, Option<String>);

/// Bound on cached tokens; beyond it, expired entries are dropped (and, if none are, all).
const VERIFIED_CACHE_MAX: usize = 10_000;

impl VerifiedCache {
    fn get(&self, token: &str) -> Option<(Map<String, Value>, Option<String>)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let (exp, claims, typ) = entries.get(token)?;
        (*exp > crate::now()).then(|| (claims.clone(), typ.clone()))
    }

    fn put(&self, token: &str, (claims, typ): &(Map<String, Value>, Option<String>)) {
        // Only tokens that expire are cached, and only while they are valid.
        let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
            return;
        };
        let now = crate::now();
        if exp <= now {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= VERIFIED_CACHE_MAX {
            entries.retain(|_, (exp, _, _)| *exp > now);
            if entries.len() >= VERIFIED_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(token.to_owned(), (exp, claims.clone(), typ.clone()));
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

/// The `*.pem` files of `dir`, sorted.
fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
    let io = |source| KeyError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "pem") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_prefix(alg: SigningAlgorithm) -> &'static str {
    match alg {
        SigningAlgorithm::RS256 => "rs256",
        SigningAlgorithm::ES256 => "es256",
        SigningAlgorithm::EdDSA => "eddsa",
    }
}

fn generate_key_file(dir: &Path, alg: SigningAlgorithm) -> Result<PathBuf, KeyError> {
    let pem = match alg {
        SigningAlgorithm::RS256 => RsaKeyPair::generate(RSA_BITS).map(|k| k.to_pem_private_key()),
        SigningAlgorithm::ES256 => {
            EcKeyPair::generate(EcCurve::P256).map(|k| k.to_pem_private_key())
        }
        SigningAlgorithm::EdDSA => {
            EdKeyPair::generate(EdCurve::Ed25519).map(|k| k.to_pem_private_key())
        }
    }
    .map_err(|e| KeyError::Invalid {
        path: dir.to_owned(),
        reason: format!("cannot generate {alg} key: {e}"),
    })?;
    // Never overwrite: a clash (two rotations in one second) takes the next free second.
    let mut created = crate::now();
    loop {
        let path = dir.join(format!("{}-{created}.pem", file_prefix(alg)));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(&pem)
                    .and_then(|()| f.sync_all())
                    .map_err(|source| KeyError::Io {
                        path: path.clone(),
                        source,
                    })?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => created += 1,
            Err(source) => return Err(KeyError::Io { path, source }),
        }
    }
}

fn load_key_file(path: &Path) -> Result<LoadedKey, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| invalid("file name is not UTF-8".into()))?;
    let (prefix, created) = name
        .split_once('-')
        .ok_or_else(|| invalid("name must be <alg>-<unix seconds>.pem".into()))?;
    let created: i64 = created
        .parse()
        .map_err(|_| invalid("name must be <alg>-<unix seconds>.pem".into()))?;
    let alg = SigningAlgorithm::ALL
        .into_iter()
        .find(|a| file_prefix(*a) == prefix)
        .ok_or_else(|| invalid(format!("unknown algorithm prefix `{prefix}`")))?;
    let pem = fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let err = |e: josekit::JoseError| invalid(e.to_string());
    let mut public_jwk = match alg {
        SigningAlgorithm::RS256 => {
            let kp = RsaKeyPair::from_pem(&pem).map_err(err)?;
            if kp.key_len() * 8 < RSA_BITS {
                return Err(invalid(format!(
                    "RSA key has {} bits; at least {RSA_BITS} are required",
                    kp.key_len() * 8
                )));
            }
            kp.to_jwk_public_key()
        }
        SigningAlgorithm::ES256 => EcKeyPair::from_pem(&pem, Some(EcCurve::P256))
            .map_err(err)?
            .to_jwk_public_key(),
        SigningAlgorithm::EdDSA => EdKeyPair::from_pem(&pem).map_err(err)?.to_jwk_public_key(),
    };
    let kid = thumbprint(&public_jwk).ok_or_else(|| invalid("incomplete public key".into()))?;
    public_jwk.set_key_id(kid.clone());
    public_jwk.set_algorithm(alg.as_str());
    public_jwk.set_key_use("sig");
    let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) = match alg {
        SigningAlgorithm::RS256 => (
            Box::new(RS256.signer_from_pem(&pem).map_err(err)?),
            Box::new(RS256.verifier_from_jwk(&public_jwk).map_err(err)?),
        ),
        SigningAlgorithm::ES256 => (
            Box::new(ES256.signer_from_pem(&pem).map_err(err)?),
            Box::new(ES256.verifier_from_jwk(&public_jwk).map_err(err)?),
        ),
        SigningAlgorithm::EdDSA => (
            Box::new(EdDSA.signer_from_pem(&pem).map_err(err)?),
            Box::new(EdDSA.verifier_from_jwk(&public_jwk).map_err(err)?),
        ),
    };
    Ok(LoadedKey {
        alg,
        created,
        kid,
        path: path.to_owned(),
        signer,
        verifier,
        public_jwk,
    })
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic order.
fn thumbprint(jwk: &Jwk) -> Option<String> {
    let p = |name: &str| jwk.parameter(name).and_then(Value::as_str);
    let canonical = match jwk.key_type() {
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, p("e")?, p("n")?),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            p("crv")?,
            p("x")?,
            p("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, p("crv")?, p("x")?),
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The example key of RFC 7638 §3.1 and its published thumbprint.
        let jwk = Jwk::from_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generates_reuses_signs_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let a = KeySet::load_or_generate(dir.path()).unwrap();
        let b = KeySet::load_or_generate(dir.path()).unwrap();
        for alg in SigningAlgorithm::ALL {
            assert_eq!(
                a.active_kid(alg),
                b.active_kid(alg),
                "keys reused across restarts"
            );
        }
        for entry in fs::read_dir(dir.path()).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let jwks: Value = serde_json::from_slice(&a.jwks_json()).unwrap();
        let text = jwks.to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\""] {
            assert!(!text.contains(private), "JWKS leaks {private}");
        }
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
        for alg in SigningAlgorithm::ALL {
            let mut claims = Map::new();
            claims.insert("sub".into(), "u1".into());
            let token = a.sign(alg, "JWT", claims).unwrap();
            let (claims, typ) = b.verify(&token).unwrap();
            assert_eq!(claims["sub"], "u1");
            assert_eq!(typ.as_deref(), Some("JWT"));
            // Tampered payload fails.
            let mut parts: Vec<&str> = token.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
            parts[1] = &forged;
            assert!(b.verify(&parts.join(".")).is_err());
        }
        // alg=none with a known kid is refused.
        let kid = a.active_kid(SigningAlgorithm::RS256).unwrap();
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
        let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"u1"}"#);
        assert!(a.verify(&format!("{header}.{body}.")).is_err());
    }

    #[test]
    fn rotate_reload_list_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let set = KeySet::load_or_generate(dir.path()).unwrap();
        let old = set.active_kid(SigningAlgorithm::ES256).unwrap();
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        let before = set
            .sign(SigningAlgorithm::ES256, "JWT", claims.clone())
            .unwrap();
        assert!(!set.reload().unwrap(), "nothing changed");

        let new = KeySet::rotate(dir.path(), SigningAlgorithm::ES256).unwrap();
        assert_ne!(new, old);
        assert_eq!(
            set.active_kid(SigningAlgorithm::ES256).unwrap(),
            old,
            "not before reload"
        );
        assert!(set.reload().unwrap());
        assert_eq!(set.active_kid(SigningAlgorithm::ES256).unwrap(), new);
        assert!(set.verify(&before).is_ok(), "old tokens still verify");
        let jwks: Value = serde_json::from_slice(&set.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);

        let list = KeySet::list(dir.path()).unwrap();
        let old_info = list.iter().find(|k| k.kid == old).unwrap();
        let new_info = list.iter().find(|k| k.kid == new).unwrap();
        assert_eq!(old_info.retired, Some(new_info.created));
        assert_eq!(new_info.retired, None);
        assert!(list.iter().filter(|k| k.retired.is_none()).count() == 3);

        // Not yet: the old key's tokens may still be alive.
        let retired = new_info.created;
        assert!(
            KeySet::prune(dir.path(), 600, retired + 600)
                .unwrap()
                .is_empty()
        );
        // Once every token it signed has expired, it goes; active keys never do.
        let removed = KeySet::prune(dir.path(), 600, retired + 601).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].kid, old);
        assert!(
            KeySet::prune(dir.path(), 0, i64::MAX / 2)
                .unwrap()
                .is_empty()
        );
        assert!(set.reload().unwrap());
        assert!(set.verify(&before).is_err());
        assert_eq!(set.active_kid(SigningAlgorithm::ES256).unwrap(), new);
    }

    #[test]
    fn reload_never_generates() {
        let dir = tempfile::tempdir().unwrap();
        let set = KeySet::load_or_generate(dir.path()).unwrap();
        let kid = set.active_kid(SigningAlgorithm::RS256).unwrap();
        for f in fs::read_dir(dir.path()).unwrap() {
            let p = f.unwrap().path();
            if p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("rs256")
            {
                fs::remove_file(p).unwrap();
            }
        }
        assert!(set.reload().is_err());
        assert_eq!(
            set.active_kid(SigningAlgorithm::RS256).unwrap(),
            kid,
            "kept"
        );
    }

    use std::os::unix::fs::PermissionsExt;
}
