//! Key files: `<alg>-<created>.pem`, or `<alg>-<created>-<activates>.pem` for a key published
//! before it signs (unix seconds; PKCS#8 PEM, mode 0600) in `keys_dir`, generated, listed and
//! loaded into signers and verifiers, each identified by its RFC 7638 thumbprint; and
//! [`KeyMaterial`], a key wherever it is kept, which the database-backed key ring also uses.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jwk::alg::rsa::RsaKeyPair;
use josekit::jwk::{Jwk, KeyPair};
use josekit::jws::{ES256, EdDSA, JwsSigner, JwsVerifier, RS256};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::KeyError;
use crate::domain::SigningAlgorithm;

const RSA_BITS: u32 = 2048;

/// A key ready to use: what signs, what verifies, and what is published.
pub(super) struct LoadedKey {
    pub(super) alg: SigningAlgorithm,
    pub(super) created: i64,
    /// When it may start signing (its creation time unless it was pre-published).
    pub(super) activates: i64,
    pub(super) kid: String,
    /// Its file, for keys kept in `keys_dir`.
    pub(super) path: Option<PathBuf>,
    pub(super) signer: Box<dyn JwsSigner>,
    pub(super) verifier: Box<dyn JwsVerifier>,
    pub(super) public_jwk: Jwk,
}

/// A private key with its algorithm and times, wherever it is kept (a file, or the database
/// after decryption): the input of a key set.
#[derive(Clone)]
pub struct KeyMaterial {
    pub alg: SigningAlgorithm,
    pub created: i64,
    pub activates: i64,
    /// PKCS#8 PEM.
    pub pem: Vec<u8>,
    /// Where it came from, for messages (`key file …`, `signing key … in the database`).
    pub origin: String,
    pub(super) path: Option<PathBuf>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("alg", &self.alg)
            .field("created", &self.created)
            .field("activates", &self.activates)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// A key kept somewhere other than `keys_dir` (the database).
    pub fn new(
        alg: SigningAlgorithm,
        created: i64,
        activates: i64,
        pem: Vec<u8>,
        origin: String,
    ) -> Self {
        Self {
            alg,
            created,
            activates,
            pem,
            origin,
            path: None,
        }
    }

    /// A new private key for `alg`, created at `now`, signing from `now + delay` on.
    pub fn generate(alg: SigningAlgorithm, now: i64, delay: i64) -> Result<Self, KeyError> {
        Ok(Self {
            alg,
            created: now,
            activates: now + delay.max(0),
            pem: generate_pem(alg)?,
            origin: format!("new {alg} key"),
            path: None,
        })
    }

    /// Its `kid` (RFC 7638 thumbprint of the public key); fails when the PEM is not a valid key
    /// of its algorithm.
    pub fn kid(&self) -> Result<String, KeyError> {
        LoadedKey::from_material(self).map(|k| k.kid)
    }
}

fn generate_pem(alg: SigningAlgorithm) -> Result<Vec<u8>, KeyError> {
    match alg {
        SigningAlgorithm::RS256 => RsaKeyPair::generate(RSA_BITS).map(|k| k.to_pem_private_key()),
        SigningAlgorithm::ES256 => {
            EcKeyPair::generate(EcCurve::P256).map(|k| k.to_pem_private_key())
        }
        SigningAlgorithm::EdDSA => {
            EdKeyPair::generate(EdCurve::Ed25519).map(|k| k.to_pem_private_key())
        }
    }
    .map_err(|e| KeyError::Invalid {
        origin: format!("new {alg} key"),
        reason: format!("cannot generate: {e}"),
    })
}

/// The `*.pem` files of `dir`, sorted.
pub(super) fn key_files(dir: &Path) -> Result<Vec<PathBuf>, KeyError> {
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

/// A new key file for `alg`, signing from `delay` seconds after its creation (at once for 0).
pub(super) fn generate_key_file(
    dir: &Path,
    alg: SigningAlgorithm,
    delay: i64,
) -> Result<PathBuf, KeyError> {
    let pem = generate_pem(alg)?;
    // Never overwrite: a clash (two rotations in one second) takes the next free second for the
    // creation time; the activation time stays what was asked for.
    let activates = crate::now() + delay;
    let mut created = crate::now();
    loop {
        let name = if activates != created {
            format!("{}-{created}-{activates}.pem", file_prefix(alg))
        } else {
            format!("{}-{created}.pem", file_prefix(alg))
        };
        let path = dir.join(name);
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

/// The key in `path`: its algorithm and times from the file name, its PEM from the content.
pub(super) fn read_key_file(path: &Path) -> Result<KeyMaterial, KeyError> {
    let origin = format!("key file {}", path.display());
    let invalid = |reason: String| KeyError::Invalid {
        origin: origin.clone(),
        reason,
    };
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| invalid("file name is not UTF-8".into()))?;
    let bad_name =
        || invalid("name must be <alg>-<created>[-<activates>].pem (unix seconds)".into());
    let (prefix, times) = name.split_once('-').ok_or_else(bad_name)?;
    let (created, activates) = match times.split_once('-') {
        None => (times, times),
        Some((c, a)) => (c, a),
    };
    let created: i64 = created.parse().map_err(|_| bad_name())?;
    let activates: i64 = activates.parse().map_err(|_| bad_name())?;
    let alg = SigningAlgorithm::ALL
        .into_iter()
        .find(|a| file_prefix(*a) == prefix)
        .ok_or_else(|| invalid(format!("unknown algorithm prefix `{prefix}`")))?;
    let pem = fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(KeyMaterial {
        alg,
        created,
        activates,
        pem,
        origin,
        path: Some(path.to_owned()),
    })
}

pub(super) fn load_key_file(path: &Path) -> Result<LoadedKey, KeyError> {
    LoadedKey::from_material(&read_key_file(path)?)
}

impl LoadedKey {
    /// Parse the PEM into a signer, a verifier and the public JWK, identified by its thumbprint.
    pub(super) fn from_material(m: &KeyMaterial) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            origin: m.origin.clone(),
            reason,
        };
        let (alg, pem) = (m.alg, m.pem.as_slice());
        let err = |e: josekit::JoseError| invalid(e.to_string());
        let mut public_jwk = match alg {
            SigningAlgorithm::RS256 => {
                let kp = RsaKeyPair::from_pem(pem).map_err(err)?;
                if kp.key_len() * 8 < RSA_BITS {
                    return Err(invalid(format!(
                        "RSA key has {} bits; at least {RSA_BITS} are required",
                        kp.key_len() * 8
                    )));
                }
                kp.to_jwk_public_key()
            }
            SigningAlgorithm::ES256 => EcKeyPair::from_pem(pem, Some(EcCurve::P256))
                .map_err(err)?
                .to_jwk_public_key(),
            SigningAlgorithm::EdDSA => EdKeyPair::from_pem(pem).map_err(err)?.to_jwk_public_key(),
        };
        let kid = thumbprint(&public_jwk).ok_or_else(|| invalid("incomplete public key".into()))?;
        public_jwk.set_key_id(kid.clone());
        public_jwk.set_algorithm(alg.as_str());
        public_jwk.set_key_use("sig");
        let (signer, verifier): (Box<dyn JwsSigner>, Box<dyn JwsVerifier>) = match alg {
            SigningAlgorithm::RS256 => (
                Box::new(RS256.signer_from_pem(pem).map_err(err)?),
                Box::new(RS256.verifier_from_jwk(&public_jwk).map_err(err)?),
            ),
            SigningAlgorithm::ES256 => (
                Box::new(ES256.signer_from_pem(pem).map_err(err)?),
                Box::new(ES256.verifier_from_jwk(&public_jwk).map_err(err)?),
            ),
            SigningAlgorithm::EdDSA => (
                Box::new(EdDSA.signer_from_pem(pem).map_err(err)?),
                Box::new(EdDSA.verifier_from_jwk(&public_jwk).map_err(err)?),
            ),
        };
        Ok(Self {
            alg,
            created: m.created,
            activates: m.activates,
            kid,
            path: m.path.clone(),
            signer,
            verifier,
            public_jwk,
        })
    }
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic order.
pub(super) fn thumbprint(jwk: &Jwk) -> Option<String> {
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
