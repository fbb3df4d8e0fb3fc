//! An in-memory mirror of the access-token deny-list, for SQLite.
//!
//! Every introspection and userinfo call asks whether a token's `jti` was revoked. With SQLite
//! the database belongs to one server process, and every write to the deny-list goes through this
//! process's store, which invalidates the mirror right after committing; so the mirror answers
//! exactly what the table would, without a query per request. As a guard against a second process
//! writing the same file (not a supported deployment), the mirror is also reloaded at least every
//! `MAX_AGE`. PostgreSQL deployments may run several servers, so there the table is always asked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(5);

pub(crate) struct DenyMirror {
    enabled: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation; a load that started under an older generation is dropped.
    generation: u64,
    loaded: Option<(Instant, Arc<HashSet<String>>)>,
}

impl DenyMirror {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// `Ok(revoked)` from memory, or `Err(generation)`: load the table and call `fill`.
    pub(crate) fn lookup(&self, jti: &str) -> Result<bool, u64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &state.loaded {
            Some((at, set)) if at.elapsed() < MAX_AGE => Ok(set.contains(jti)),
            _ => Err(state.generation),
        }
    }

    /// Install a freshly read table, unless the deny-list changed since `generation`.
    pub(crate) fn fill(&self, generation: u64, jtis: HashSet<String>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.generation == generation {
            state.loaded = Some((Instant::now(), Arc::new(jtis)));
        }
    }

    /// Call after committing any write to the deny-list.
    pub(crate) fn invalidate(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.loaded = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_loads_are_dropped() {
        let m = DenyMirror::new(true);
        let g = m.lookup("a").unwrap_err();
        // A revocation commits while the table is being read.
        m.invalidate();
        m.fill(g, HashSet::new());
        let g2 = m.lookup("a").expect_err("stale load was not installed");
        m.fill(g2, HashSet::from(["a".to_owned()]));
        assert_eq!(m.lookup("a"), Ok(true));
        assert_eq!(m.lookup("b"), Ok(false));
        m.invalidate();
        assert!(m.lookup("a").is_err());
    }
}
