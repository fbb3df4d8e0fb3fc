//! An in-memory mirror of the access-token deny-list, for SQLite.
//!
//! Every introspection and userinfo call asks whether a token's `jti` was revoked, or whether
//! the session its `sid` names was ended (table `revoked_session_tokens`, filled by a trigger on
//! `sessions.ended_at`). With SQLite the database belongs to one server process, and every write
//! to either table goes through this process's store (revocations, and every statement that ends
//! a session), which invalidates the mirror right after committing; so the mirror answers exactly
//! what the tables would, without a query per request. As a guard against a second process
//! writing the same file (not a supported deployment), the mirror is also reloaded at least every
//! `MAX_AGE`. PostgreSQL deployments may run several servers, so there the tables are always
//! asked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(5);

pub(crate) struct DenyMirror {
    enabled: bool,
    state: Mutex<State>,
}

/// The deny-list as read from the database.
#[derive(Default)]
pub(crate) struct Denied {
    /// Revoked access tokens, by `jti`.
    pub(crate) jtis: HashSet<String>,
    /// Ended sessions whose access tokens may still be unexpired, by `sid`.
    pub(crate) sids: HashSet<String>,
}

impl Denied {
    pub(crate) fn denies(&self, jti: &str, sid: Option<&str>) -> bool {
        self.jtis.contains(jti) || sid.is_some_and(|s| self.sids.contains(s))
    }
}

#[derive(Default)]
struct State {
    /// Bumped by every invalidation; a load that started under an older generation is dropped.
    generation: u64,
    loaded: Option<(Instant, Arc<Denied>)>,
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

    /// `Ok(denied)` from memory, or `Err(generation)`: load the tables and call `fill`.
    pub(crate) fn lookup(&self, jti: &str, sid: Option<&str>) -> Result<bool, u64> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &state.loaded {
            Some((at, denied)) if at.elapsed() < MAX_AGE => Ok(denied.denies(jti, sid)),
            _ => Err(state.generation),
        }
    }

    /// Install freshly read tables, unless the deny-list changed since `generation`.
    pub(crate) fn fill(&self, generation: u64, denied: Denied) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.generation == generation {
            state.loaded = Some((Instant::now(), Arc::new(denied)));
        }
    }

    /// Call after committing any write to the deny-list, including ending a session.
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
        let g = m.lookup("a", None).unwrap_err();
        // A revocation commits while the table is being read.
        m.invalidate();
        m.fill(g, Denied::default());
        let g2 = m
            .lookup("a", None)
            .expect_err("stale load was not installed");
        m.fill(
            g2,
            Denied {
                jtis: HashSet::from(["a".to_owned()]),
                sids: HashSet::from(["s".to_owned()]),
            },
        );
        assert_eq!(m.lookup("a", None), Ok(true));
        assert_eq!(m.lookup("b", None), Ok(false));
        assert_eq!(m.lookup("b", Some("s")), Ok(true));
        assert_eq!(m.lookup("b", Some("t")), Ok(false));
        // A sid never matches a jti, nor the other way round.
        assert_eq!(m.lookup("s", Some("a")), Ok(false));
        m.invalidate();
        assert!(m.lookup("a", None).is_err());
    }
}
