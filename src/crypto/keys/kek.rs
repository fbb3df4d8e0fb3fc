//! The key-encryption key (KEK): private keys kept in the database are sealed with it as a
//! compact JWE (RFC 7516) with `alg: dir` and `enc: A256GCM` — AES-256-GCM under the KEK itself.
//! The JWE protected header carries the key's name (`kid`) and is the AEAD's associated data
//! (RFC 7516 §5.1 step 14), so a sealed key moved to another row, or any byte changed, fails to
//! open; so does every key under a different KEK.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use josekit::jwe::{self, Dir, JweHeader};

/// Content encryption of sealed keys.
const ENC: &str = "A256GCM";

/// Why a sealed value did not open.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    /// Wrong KEK, tampered ciphertext or header, or sealed for another name: indistinguishable
    /// by design (the GCM tag fails the same way).
    #[error("cannot be decrypted with this keys_encryption_key (another key, or altered)")]
    Undecryptable,
    #[error("cannot encrypt: {0}")]
    Seal(String),
}

/// A 256-bit key-encryption key. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random KEK, as `keys_encryption_key` takes it (standard base64, like
    /// `openssl rand -base64 32`).
    pub fn generate_base64() -> String {
        let bytes: [u8; 32] = rand::random();
        STANDARD.encode(bytes)
    }

    /// Seal `plaintext` under this KEK for `name` (the key's `kid`): a compact JWE.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<String, KekError> {
        let mut header = JweHeader::new();
        header.set_content_encryption(ENC);
        header.set_key_id(name);
        let encrypter = Dir
            .encrypter_from_bytes(self.0)
            .map_err(|e| KekError::Seal(e.to_string()))?;
        jwe::serialize_compact(plaintext, &header, &encrypter)
            .map_err(|e| KekError::Seal(e.to_string()))
    }

    /// Open what `seal` made for `name`; fails for another KEK, another name, or any change.
    pub fn open(&self, name: &str, sealed: &str) -> Result<Vec<u8>, KekError> {
        let decrypter = Dir
            .decrypter_from_bytes(self.0)
            .map_err(|_| KekError::Undecryptable)?;
        let (plaintext, header) =
            jwe::deserialize_compact(sealed, &decrypter).map_err(|_| KekError::Undecryptable)?;
        // Authenticated (the header is the associated data), but it must also be what we seal.
        if header.algorithm() != Some("dir")
            || header.content_encryption() != Some(ENC)
            || header.key_id() != Some(name)
        {
            return Err(KekError::Undecryptable);
        }
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::new([byte; 32])
    }

    #[test]
    fn seals_and_opens_for_the_same_name_only() {
        let k = kek(7);
        let sealed = k.seal("kid-1", b"private key").unwrap();
        assert!(!sealed.contains("private"), "encrypted");
        assert_eq!(k.open("kid-1", &sealed).unwrap(), b"private key");
        // A fresh nonce per seal: the same key sealed twice looks different.
        assert_ne!(sealed, k.seal("kid-1", b"private key").unwrap());
        // Moved to another row (another kid): refused.
        assert!(matches!(
            k.open("kid-2", &sealed),
            Err(KekError::Undecryptable)
        ));
        // Another KEK: refused.
        assert!(matches!(
            kek(8).open("kid-1", &sealed),
            Err(KekError::Undecryptable)
        ));
    }

    #[test]
    fn any_change_is_detected() {
        let k = kek(1);
        let sealed = k.seal("kid-1", b"private key").unwrap();
        let parts: Vec<&str> = sealed.split('.').collect();
        assert_eq!(parts.len(), 5, "compact JWE");
        assert_eq!(parts[1], "", "dir: no encrypted key");
        // Flip one bit of the ciphertext, the tag and the IV in turn.
        for i in [2, 3, 4] {
            let mut bytes = URL_SAFE_NO_PAD.decode(parts[i]).unwrap();
            bytes[0] ^= 1;
            let mut forged = parts.clone();
            let changed = URL_SAFE_NO_PAD.encode(&bytes);
            forged[i] = &changed;
            assert!(k.open("kid-1", &forged.join(".")).is_err(), "part {i}");
        }
        // A header naming another kid (the associated data) fails the tag.
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "dir");
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], "kid-1");
        let mut other = header.clone();
        other["kid"] = "kid-2".into();
        let other = URL_SAFE_NO_PAD.encode(other.to_string());
        let mut forged = parts.clone();
        forged[0] = &other;
        assert!(k.open("kid-2", &forged.join(".")).is_err());
        assert!(k.open("kid-1", "not a jwe").is_err());
    }

    #[test]
    fn generated_keys_are_32_random_bytes_in_base64() {
        let a = Kek::generate_base64();
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, Kek::generate_base64());
        assert_eq!(format!("{:?}", kek(9)), "Kek([redacted])");
    }
}
