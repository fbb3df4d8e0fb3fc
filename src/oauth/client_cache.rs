//! A short-lived cache of client records for client authentication (`client_auth`), held by
//! the `Provider`. Imports nothing else of the protocol.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::domain::Client;
use crate::store::{Store, StoreResult};

/// How long a client looked up for authentication is reused. This keeps the database off the hot
/// path of machine-to-machine endpoints (client credentials, introspection) while a disabled
/// client, a changed secret or changed settings still take effect within this time.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);
/// Bound on cached clients; beyond it, stale entries are dropped (and, if none are, all).
const CLIENT_CACHE_MAX: usize = 10_000;

/// A short-lived cache of client records by id. Only clients that exist are cached, so a
/// client created a moment ago is never refused because of an earlier miss.
#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, (Instant, Client)>>,
}

impl ClientCache {
    /// Forget `id` at once: an admin change (secret rotation, disable, delete, new settings) made
    /// through this process must not wait for the entry to age out. Other processes sharing the
    /// database see the change within `CLIENT_CACHE_TTL`.
    pub fn invalidate(&self, id: &str) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    pub async fn find(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Client>> {
        if let Some((at, client)) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            && at.elapsed() < CLIENT_CACHE_TTL
        {
            return Ok(Some(client.clone()));
        }
        let found = store.find_client(id).await?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match &found {
            Some(client) => {
                if entries.len() >= CLIENT_CACHE_MAX {
                    entries.retain(|_, (at, _)| at.elapsed() < CLIENT_CACHE_TTL);
                    if entries.len() >= CLIENT_CACHE_MAX {
                        entries.clear();
                    }
                }
                entries.insert(id.to_owned(), (Instant::now(), client.clone()));
            }
            None => {
                entries.remove(id);
            }
        }
        Ok(found)
    }
}
