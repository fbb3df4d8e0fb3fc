//! A cache of verified tokens, one per key-set snapshot.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use serde_json::{Map, Value};

/// Tokens whose signature already checked out, until their `exp`: a resource server introspecting
/// the same token on every request costs one signature verification, not one per request. The
/// key is the whole token, so a single changed byte misses. Each key-set snapshot has its own
/// cache: a reload (rotation, prune, a key deleted by hand) starts from empty.
#[derive(Default)]
pub(super) struct VerifiedCache {
    entries: RwLock<HashMap<String, VerifiedEntry>>,
}

/// `exp`, claims and `typ` of a verified token.
type VerifiedEntry = (i64, Map<String, Value>, Option<String>);

/// Bound on cached tokens; beyond it, expired entries are dropped (and, if none are, all).
const VERIFIED_CACHE_MAX: usize = 10_000;

impl VerifiedCache {
    pub(super) fn get(&self, token: &str) -> Option<(Map<String, Value>, Option<String>)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let (exp, claims, typ) = entries.get(token)?;
        (*exp > crate::now()).then(|| (claims.clone(), typ.clone()))
    }

    pub(super) fn put(&self, token: &str, (claims, typ): &(Map<String, Value>, Option<String>)) {
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
