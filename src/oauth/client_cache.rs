//! A short-lived cache of client records for client authentication (`client_auth`), and the
//! index of every active client's web origins (CORS preflights name no client), held by the
//! `Provider`. Imports nothing else of the protocol.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// How long the origin index is trusted. A change made through this process (admin API, pages)
/// rebuilds it at the next look-up; one made by another process sharing the database (the CLI,
/// another node) is seen within this time.
pub const ORIGIN_INDEX_TTL: Duration = Duration::from_secs(10);

/// A short-lived cache of client records by id. Only clients that exist are cached, so a
/// client created a moment ago is never refused because of an earlier miss.
#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, (Instant, Client)>>,
    /// Every active client's allowed origins, and when they were loaded (`None`: never).
    origins: RwLock<(HashSet<String>, Option<Instant>)>,
    /// Set by [`ClientCache::invalidate`]: rebuild the origin index before the next answer.
    origins_stale: AtomicBool,
    /// One rebuild at a time; the others wait for it rather than query too.
    origins_reload: tokio::sync::Mutex<()>,
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
        self.origins_stale.store(true, Ordering::SeqCst);
    }

    /// Whether some active client allows `origin` (`Client::allowed_origins`). Answered from
    /// memory; the index is rebuilt with one query when a client changed or it aged out.
    pub async fn origin_registered(&self, store: &dyn Store, origin: &str) -> StoreResult<bool> {
        if let Some(found) = self.fresh_origin(origin) {
            return Ok(found);
        }
        let _one = self.origins_reload.lock().await;
        if let Some(found) = self.fresh_origin(origin) {
            return Ok(found);
        }
        // Cleared before reading, so a change made during the query marks the result stale.
        self.origins_stale.store(false, Ordering::SeqCst);
        let set: HashSet<String> = store
            .list_clients()
            .await?
            .iter()
            .filter(|c| c.is_active())
            .flat_map(Client::allowed_origins)
            .collect();
        let found = set.contains(origin);
        *self.origins.write().unwrap_or_else(PoisonError::into_inner) = (set, Some(Instant::now()));
        Ok(found)
    }

    fn fresh_origin(&self, origin: &str) -> Option<bool> {
        if self.origins_stale.load(Ordering::SeqCst) {
            return None;
        }
        let index = self.origins.read().unwrap_or_else(PoisonError::into_inner);
        let (set, loaded) = &*index;
        loaded
            .is_some_and(|at| at.elapsed() < ORIGIN_INDEX_TTL)
            .then(|| set.contains(origin))
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
