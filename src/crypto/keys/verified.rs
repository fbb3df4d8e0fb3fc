//! A cache of verified tokens, one per key-set snapshot.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Tokens whose signature already checked out, until their `exp`: a resource server introspecting
/// the same token on every request costs one signature verification, not one per request.
///
/// An entry is the SHA-256 of the whole token and its `exp` (48 bytes with the table's own
/// overhead), never the claims: a hit decodes the presented token's header and payload again,
/// which are the very bytes that were verified (a single changed byte is another digest, and
/// misses). Each key-set snapshot has its own cache: a reload (rotation, prune, a key deleted by
/// hand) starts from empty.
#[derive(Default)]
pub(super) struct VerifiedCache {
    entries: RwLock<HashMap<[u8; 32], i64>>,
}

/// Bound on cached tokens (about 3 MB when full). Beyond it, expired entries are dropped and,
/// if that frees nothing, half of the live ones (each is verified again when it comes back).
pub(super) const VERIFIED_CACHE_MAX: usize = 65_536;

/// A token's header and claims, as [`super::KeySet::verify`] returns them.
pub(super) type Verified = (Map<String, Value>, Option<String>);

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedCache {
    /// The claims and `typ` of `token` if it was verified before and has not expired.
    pub(super) fn get(&self, token: &str) -> Option<Verified> {
        let exp = *self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest(token))?;
        if exp <= crate::now() {
            return None;
        }
        decode_verified(token)
    }

    /// Remember that `token`, whose claims are `claims`, carries a valid signature.
    pub(super) fn put(&self, token: &str, claims: &Map<String, Value>) {
        // Only tokens that expire are cached, and only while they are valid.
        let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
            return;
        };
        let now = crate::now();
        if exp <= now {
            return;
        }
        let key = digest(token);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= VERIFIED_CACHE_MAX {
            entries.retain(|_, exp| *exp > now);
            if entries.len() >= VERIFIED_CACHE_MAX {
                let mut keep = false;
                entries.retain(|_, _| {
                    keep = !keep;
                    keep
                });
            }
        }
        entries.insert(key, exp);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The claims and `typ` of a compact JWS whose signature was already checked (the cache holds
/// its digest). `None` if it does not decode, which cannot happen for a token that verified.
fn decode_verified(token: &str) -> Option<Verified> {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let header: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let typ = header.get("typ").and_then(Value::as_str).map(str::to_owned);
    Some((claims, typ))
}
