//! A short-lived cache of client records for client authentication (`client_auth`), and the
//! index of every active client's web origins (CORS preflights name no client), held by the
//! `Provider`. Imports nothing else of the protocol.
//!
//! On PostgreSQL the store hears every client change made by any node (`store::Change`, from
//! `LISTEN/NOTIFY`) and passes it to [`ClientCache::on_change`]: while that listener is up, an
//! entry lives until its client changes (at most `LISTENED_TTL`, a safety net); while it is
//! down, or on SQLite without a listener, the short TTLs below apply.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::domain::Client;
use crate::store::{Change, Store, StoreResult};

/// How long a client looked up for authentication is reused. This keeps the database off the hot
/// path of machine-to-machine endpoints (client credentials, introspection) while a disabled
/// client, a changed secret or changed settings still take effect within this time when other
/// nodes' changes are not heard (SQLite and the CLI, or the PostgreSQL listener down).
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);
/// Bound on cached clients; beyond it, stale entries are dropped (and, if none are, all).
const CLIENT_CACHE_MAX: usize = 10_000;

/// How long the origin index is trusted. A change made through this process (admin API, pages)
/// rebuilds it at the next look-up; one made by another process sharing the database (the CLI,
/// another node) is seen within this time.
pub const ORIGIN_INDEX_TTL: Duration = Duration::from_secs(10);

/// How long entries and the origin index live while other nodes' changes are heard.
pub const LISTENED_TTL: Duration = Duration::from_secs(60);

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
    /// Whether every change is heard (`Change::Listening`): longer lifetimes.
    listening: AtomicBool,
    /// Bumped by every invalidation: a record read before it is not cached.
    generation: AtomicU64,
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
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.origins_stale.store(true, Ordering::SeqCst);
    }

    /// A change heard from the store (another node's, or this one's own).
    pub fn on_change(&self, change: Change) {
        match change {
            Change::Client(id) => self.invalidate(&id),
            Change::Listening(on) => {
                // Changes may have been missed: forget everything, then trust entries longer
                // only if changes are heard from now on.
                self.listening.store(on, Ordering::SeqCst);
                self.entries
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                self.generation.fetch_add(1, Ordering::SeqCst);
                self.origins_stale.store(true, Ordering::SeqCst);
            }
        }
    }

    fn entry_ttl(&self) -> Duration {
        if self.listening.load(Ordering::SeqCst) {
            LISTENED_TTL
        } else {
            CLIENT_CACHE_TTL
        }
    }

    fn origin_ttl(&self) -> Duration {
        if self.listening.load(Ordering::SeqCst) {
            LISTENED_TTL
        } else {
            ORIGIN_INDEX_TTL
        }
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
            .is_some_and(|at| at.elapsed() < self.origin_ttl())
            .then(|| set.contains(origin))
    }

    pub async fn find(&self, store: &dyn Store, id: &str) -> StoreResult<Option<Client>> {
        if let Some((at, client)) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            && at.elapsed() < self.entry_ttl()
        {
            return Ok(Some(client.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let found = store.find_client(id).await?;
        let ttl = self.entry_ttl();
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match &found {
            // Changed while it was read: answer with what was read, cache nothing.
            Some(_) if self.generation.load(Ordering::SeqCst) != generation => {}
            Some(client) => {
                if entries.len() >= CLIENT_CACHE_MAX {
                    entries.retain(|_, (at, _)| at.elapsed() < ttl);
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
