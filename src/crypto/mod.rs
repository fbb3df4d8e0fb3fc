//! Cryptography: signing keys, password hashing, random secrets stored as SHA-256.

pub mod keys;
pub mod password;
pub mod secret;

pub use keys::{Kek, KekError, KeyError, KeyInfo, KeyMaterial, KeySet, KeyStatus};
pub use password::PasswordHasher;
pub use secret::{constant_time_eq, hash_secret, load_or_create_key, new_client_id, random_secret};
