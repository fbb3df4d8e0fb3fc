//! Where the signing keys (and the CSRF key) live, and how they change while servers run.
//!
//! - **In the database** with PostgreSQL (always) and with SQLite when `keys_encryption_key` is
//!   set: every private key is sealed with the key-encryption key ([`Kek`]) and stored in
//!   `signing_keys`, so every node signs with the same keys. A missing or wrong KEK stops the
//!   start; keys are never generated over stored ones. On the first start (empty table) the key
//!   files of `keys_dir` are imported when there are any (an upgrade), else keys are generated;
//!   nodes starting together write one set (`KeyStore::insert_first_signing_keys`). A running
//!   server compares the stored `kid`s with its own every [`DB_RELOAD_EVERY`] and reloads on a
//!   change, so `keys rotate` on any node is used by all within about a second.
//! - **As files in `keys_dir`** with SQLite and no KEK (the single-node default), as before.
//!
//! Pre-publication is the same in both: a rotated key is published at once and signs from its
//! activation time on (`crypto::keys`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{Kek, KeyError, KeyInfo, KeyMaterial, KeySet, load_or_create_key};
use crate::domain::SigningAlgorithm;
use crate::store::{Store, StoreError, StoredKey};

mod database;

/// How often a server compares the keys in the database with its own.
pub const DB_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the key ring could not be opened or changed; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(
        "keys_encryption_key is not set: with PostgreSQL the signing keys are kept in the \
         database, encrypted with it; set PORTCULLIS_KEYS_ENCRYPTION_KEY (or _FILE) to the key \
         the other nodes use, or to a new one from `portcullis keys new-kek` on a first install"
    )]
    MissingKek,
    #[error(
        "keys_encryption_key does not decrypt the keys stored in the database (a different key, \
         or altered rows): start with the key they were encrypted with; nothing was changed"
    )]
    WrongKek,
    #[error(
        "the database holds signing keys encrypted with a keys_encryption_key, but none is \
         set: set it (keys are not read from keys_dir once they are in the database)"
    )]
    KeysInDatabase,
    #[error("signing key {kid} in the database: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("CSRF key {path}: {source}")]
    CsrfFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the keys are kept.
enum Location {
    Files(PathBuf),
    Database {
        store: Arc<dyn Store>,
        kek: Kek,
        /// Key files to import on the first start.
        dir: PathBuf,
    },
}

/// The signing keys of this process and where they come from.
pub struct Keyring {
    location: Location,
    keys: Arc<KeySet>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("in_database", &self.in_database())
            .field("keys", &self.keys)
            .finish()
    }
}

/// Whether the keys go into the database: with PostgreSQL (then a KEK is required) or when a KEK
/// is set. Checked before the database is opened, so a missing KEK changes nothing.
pub fn kek_for(settings: &Settings) -> Result<Option<Kek>, KeyringError> {
    match settings.keys_encryption_key() {
        Some(bytes) => Ok(Some(Kek::new(bytes))),
        None if settings.is_postgres() => Err(KeyringError::MissingKek),
        None => Ok(None),
    }
}

impl Keyring {
    /// Load the keys (generating or importing them on a first start) from where `settings` say.
    pub async fn open(settings: &Settings, store: Arc<dyn Store>) -> Result<Self, KeyringError> {
        let dir = settings.keys_dir.clone();
        match kek_for(settings)? {
            Some(kek) => {
                let keys = database::open(store.as_ref(), &kek, &dir).await?;
                Ok(Self {
                    location: Location::Database { store, kek, dir },
                    keys: Arc::new(keys),
                })
            }
            None => {
                // SQLite without a KEK: files, unless the keys already moved into the database.
                if !store.signing_key_ids().await?.is_empty() {
                    return Err(KeyringError::KeysInDatabase);
                }
                let d = dir.clone();
                let keys = tokio::task::spawn_blocking(move || KeySet::load_or_generate(&d))
                    .await
                    .map_err(|e| KeyError::Sign(e.to_string()))??;
                Ok(Self {
                    location: Location::Files(dir),
                    keys: Arc::new(keys),
                })
            }
        }
    }

    /// The key set that signs and verifies (shared with the protocol code).
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.clone()
    }

    /// Whether the keys are kept in the database.
    pub fn in_database(&self) -> bool {
        matches!(self.location, Location::Database { .. })
    }

    /// How often `reload` should run: often for the database (a query of a few rows), every
    /// `KEY_RELOAD_EVERY` for files (SIGHUP reloads at once).
    pub fn reload_every(&self) -> std::time::Duration {
        match self.location {
            Location::Database { .. } => DB_RELOAD_EVERY,
            Location::Files(_) => crate::crypto::keys::KEY_RELOAD_EVERY,
        }
    }

    /// Load the keys again if they changed (a `keys rotate` or `keys prune`, from any node).
    /// Returns whether a new set was loaded; on error the current set stays in use.
    pub async fn reload(&self) -> Result<bool, KeyringError> {
        match &self.location {
            Location::Files(_) => {
                let keys = self.keys.clone();
                Ok(tokio::task::spawn_blocking(move || keys.reload())
                    .await
                    .map_err(|e| KeyError::Sign(e.to_string()))??)
            }
            Location::Database { store, kek, .. } => {
                if store.signing_key_ids().await? == self.keys.kids() {
                    return Ok(false);
                }
                let material = database::decrypt_all(&store.signing_keys().await?, kek)?;
                self.keys.replace(&material)?;
                Ok(true)
            }
        }
    }

    /// Add a new key for `alg`, signing `delay` seconds from now (at once for 0); published at
    /// once by every server once it reloads.
    pub async fn rotate(&self, alg: SigningAlgorithm, delay: i64) -> Result<KeyInfo, KeyringError> {
        match &self.location {
            Location::Files(dir) => Ok(KeySet::rotate(dir, alg, delay)?),
            Location::Database { store, kek, .. } => {
                let now = crate::now();
                let mut key = KeyMaterial::generate(alg, now, delay)?;
                // Of two keys of one algorithm activating in the same second the later created
                // signs: a key rotated `--now` in the same second as the newest one takes the
                // next second as its creation time (like a key file's name; the activation time
                // stays what was asked for).
                let tied = store
                    .signing_keys()
                    .await?
                    .iter()
                    .filter(|k| k.alg == alg.as_str() && k.activates_at == key.activates)
                    .map(|k| k.created_at)
                    .max();
                if let Some(tied) = tied.filter(|t| *t >= key.created) {
                    key.created = tied + 1;
                }
                let stored = database::seal(&key, kek)?;
                store.insert_signing_key(&stored).await?;
                Ok(info(&stored, alg))
            }
        }
    }

    /// Every key, latest activation first per algorithm, with retirement times.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyringError> {
        match &self.location {
            Location::Files(dir) => Ok(KeySet::list(dir)?),
            Location::Database { store, .. } => {
                let rows = store.signing_keys().await?;
                let infos = rows
                    .iter()
                    .map(|r| database::alg_of(r).map(|alg| info(r, alg)))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(KeyInfo::chain(infos))
            }
        }
    }

    /// Remove the keys retired longer than `max_token_lifetime` before `now`
    /// (`KeyInfo::prunable`). Returns the keys removed.
    pub async fn prune(
        &self,
        max_token_lifetime: i64,
        now: i64,
    ) -> Result<Vec<KeyInfo>, KeyringError> {
        match &self.location {
            Location::Files(dir) => Ok(KeySet::prune(dir, max_token_lifetime, now)?),
            Location::Database { store, .. } => {
                let due = KeyInfo::prunable(self.list().await?, max_token_lifetime, now);
                let kids: Vec<String> = due.iter().map(|k| k.kid.clone()).collect();
                store.delete_signing_keys(&kids).await?;
                Ok(due)
            }
        }
    }

    /// The CSRF key: `keys_dir/csrf.key`, or sealed in the database (imported from that file on
    /// the first start when it exists), the same on every node.
    pub async fn csrf_key(&self) -> Result<[u8; 32], KeyringError> {
        match &self.location {
            Location::Files(dir) => {
                let path = dir.join("csrf.key");
                load_or_create_key(&path).map_err(|source| KeyringError::CsrfFile { path, source })
            }
            Location::Database { store, kek, dir } => {
                database::csrf_key(store.as_ref(), kek, &dir.join("csrf.key")).await
            }
        }
    }
}

/// A stored key as listed (its file: none).
fn info(row: &StoredKey, alg: SigningAlgorithm) -> KeyInfo {
    KeyInfo {
        alg,
        kid: row.kid.clone(),
        created: row.created_at,
        activates: row.activates_at,
        retired: None,
        path: None,
    }
}
