//! High-entropy secrets (codes, session ids, client secrets): generated at random, stored only
//! as their SHA-256, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `bytes` of OS-seeded CSPRNG output, base64url without padding (32 bytes → 43 chars).
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A new client identifier: 128 random bits as 32 lowercase hex digits. Unlike base64url it can
/// never begin with `-`, so it is safe as a command-line argument (`client update <id>`), and it
/// needs no escaping in URLs, HTML or shells.
pub fn new_client_id() -> String {
    let mut buf = [0u8; 16];
    rand::rng().fill_bytes(&mut buf);
    to_hex(&buf)
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// The form in which a secret is stored and looked up: lowercase hex SHA-256.
/// A slow hash is unnecessary here: these values carry at least 128 bits of entropy.
pub fn hash_secret(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Read a 32-byte server secret from `path`, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(path) {
        Ok(bytes) => bytes.try_into().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "key file must hold 32 bytes",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hash_is_stable() {
        let a = random_secret(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret(32));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(constant_time_eq(b"x", b"x"));
        assert!(!constant_time_eq(b"x", b"y"));
    }

    #[test]
    fn client_ids_are_shell_safe_hex() {
        for _ in 0..256 {
            let id = new_client_id();
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
        }
        assert_ne!(new_client_id(), new_client_id());
    }
}
