//! An in-memory mirror of the access-token deny-list.
//!
//! Every introspection and userinfo call asks whether a token's `jti` was revoked, or whether
//! the session its `sid` names was ended (table `revoked_session_tokens`, filled by a trigger on
//! `sessions.ended_at`). The mirror answers that from memory, by one of two rules:
//!
//! - **SQLite** (`Mode::InProcess`): the database belongs to one server process, and every write
//!   to either table goes through this process's store, which invalidates the mirror right after
//!   committing; the mirror therefore answers exactly what the tables would. As a guard against a
//!   second process writing the same file (not supported; the server warns at start), it is also
//!   reloaded at least every `IN_PROCESS_MAX_AGE`.
//! - **PostgreSQL** (`Mode::Listened`): other nodes write the tables too. A trigger (migration
//!   0017) sends `NOTIFY portcullis_deny` in the writing transaction, so the notification leaves
//!   PostgreSQL when that transaction commits; the store's listener (`listen.rs`) adds each key
//!   to the mirror as it arrives. **The rule:** the mirror answers only while the listener is
//!   connected and has been since the mirror was loaded (a load is taken after `LISTEN`, and
//!   notifications arriving during the load are replayed onto it). When the listener drops, the
//!   mirror is switched off at once and every check queries the tables, until the listener is
//!   back and a fresh load made after its `LISTEN` is installed. A stale mirror is therefore
//!   never consulted: a revoked token is never answered "active" for want of a notification —
//!   the only window is the delivery of a notification already committed (PostgreSQL hands it
//!   to the listening connection at commit; it is well under a millisecond on a LAN). As a
//!   safety net the listener also reloads everything every `REFRESH_EVERY`, and a mirror older
//!   than `LISTENED_MAX_AGE` (a stuck refresh) is not consulted either.
//!
//! Writes made through this store invalidate the mirror right after committing in both modes,
//! so a node always sees its own revocations on the next request.

use std::collections::{HashSet, VecDeque};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// SQLite: reload at least this often (a second process on the same file is not supported).
const IN_PROCESS_MAX_AGE: Duration = Duration::from_secs(5);
/// PostgreSQL: the listener reloads the whole deny-list this often, as a safety net.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// PostgreSQL: a mirror not refreshed for this long is not consulted.
const LISTENED_MAX_AGE: Duration = Duration::from_secs(90);
/// Notifications kept for replay onto loads in flight; a load older than these is dropped.
const LOG_MAX: usize = 4096;

/// How the mirror learns of writes made elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// SQLite: every write goes through this process.
    InProcess,
    /// PostgreSQL: writes from other nodes arrive by `LISTEN/NOTIFY`.
    Listened,
}

/// One deny-list key, as carried by a notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Jti(String),
    Sid(String),
}

impl Key {
    /// The payload of a `portcullis_deny` notification: `j:<jti>` or `s:<sid>`.
    pub(crate) fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':')? {
            ("j", jti) => Some(Self::Jti(jti.to_owned())),
            ("s", sid) => Some(Self::Sid(sid.to_owned())),
            _ => None,
        }
    }
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

    fn add(&mut self, key: Key) {
        match key {
            Key::Jti(j) => self.jtis.insert(j),
            Key::Sid(s) => self.sids.insert(s),
        };
    }
}

/// Taken before reading the tables; `fill` installs the result only if it is still valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
    seq: u64,
}

pub(crate) struct DenyMirror {
    mode: Mode,
    state: RwLock<State>,
}

struct State {
    /// Bumped by every local write and every listener (dis)connection: a load that started
    /// under an older generation is dropped.
    generation: u64,
    /// Notifications received so far.
    seq: u64,
    /// The last `LOG_MAX` notifications (with their `seq`), replayed onto loads in flight.
    log: VecDeque<(u64, Key)>,
    /// `Listened` only: whether the listener is connected (`InProcess`: always true).
    listening: bool,
    loaded: Option<(Instant, Denied)>,
}

impl DenyMirror {
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            state: RwLock::new(State {
                generation: 0,
                seq: 0,
                log: VecDeque::new(),
                listening: mode == Mode::InProcess,
                loaded: None,
            }),
        }
    }

    fn max_age(&self) -> Duration {
        match self.mode {
            Mode::InProcess => IN_PROCESS_MAX_AGE,
            Mode::Listened => LISTENED_MAX_AGE,
        }
    }

    /// `Ok(denied)` from memory; `Err(Some(ticket))`: load the tables and `fill`;
    /// `Err(None)`: the mirror cannot be trusted now (listener down): ask the tables.
    pub(crate) fn lookup(&self, jti: &str, sid: Option<&str>) -> Result<bool, Option<Ticket>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if !state.listening {
            return Err(None);
        }
        match &state.loaded {
            Some((at, denied)) if at.elapsed() < self.max_age() => Ok(denied.denies(jti, sid)),
            _ => Err(Some(Ticket {
                generation: state.generation,
                seq: state.seq,
            })),
        }
    }

    /// A ticket for a full reload (the listener's periodic refresh), if the mirror is in use.
    pub(crate) fn ticket(&self) -> Option<Ticket> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.listening.then_some(Ticket {
            generation: state.generation,
            seq: state.seq,
        })
    }

    /// Install freshly read tables, plus the notifications received since `ticket` was taken,
    /// unless a local write or a listener (dis)connection happened meanwhile.
    pub(crate) fn fill(&self, ticket: Ticket, mut denied: Denied) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.generation != ticket.generation || !state.listening {
            return;
        }
        // Every notification after the ticket must still be in the log.
        if state.seq > ticket.seq && state.log.front().is_none_or(|(s, _)| *s > ticket.seq + 1) {
            return;
        }
        for (_, key) in state.log.iter().filter(|(s, _)| *s > ticket.seq) {
            denied.add(key.clone());
        }
        state.loaded = Some((Instant::now(), denied));
    }

    /// Call after committing any write to the deny-list, including ending a session.
    pub(crate) fn invalidate(&self) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.loaded = None;
    }

    /// A notification from another node (or this one): the key is denied from now on.
    pub(crate) fn notified(&self, key: Key) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.seq += 1;
        let seq = state.seq;
        if let Some((_, denied)) = state.loaded.as_mut() {
            denied.add(key.clone());
        }
        if state.log.len() >= LOG_MAX {
            state.log.pop_front();
        }
        state.log.push_back((seq, key));
    }

    /// The listener connected (after its `LISTEN`) or dropped. Either way what was loaded is
    /// forgotten: notifications may have been missed.
    pub(crate) fn set_listening(&self, listening: bool) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.loaded = None;
        state.log.clear();
        state.listening = listening || self.mode == Mode::InProcess;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jtis(keys: &[&str]) -> Denied {
        Denied {
            jtis: keys.iter().map(|k| (*k).to_owned()).collect(),
            sids: HashSet::new(),
        }
    }

    #[test]
    fn stale_loads_are_dropped() {
        let m = DenyMirror::new(Mode::InProcess);
        let g = m.lookup("a", None).unwrap_err().expect("in use");
        // A revocation commits while the table is being read.
        m.invalidate();
        m.fill(g, Denied::default());
        let g2 = m
            .lookup("a", None)
            .expect_err("stale load was not installed")
            .expect("in use");
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

    #[test]
    fn listened_mirror_is_off_until_the_listener_is_up() {
        let m = DenyMirror::new(Mode::Listened);
        assert_eq!(m.lookup("a", None), Err(None));
        assert_eq!(m.ticket(), None);
        m.set_listening(true);
        let t = m.ticket().expect("in use");
        m.fill(t, jtis(&["a"]));
        assert_eq!(m.lookup("a", None), Ok(true));
        // The listener drops: never answered from memory until it is back and reloaded.
        m.set_listening(false);
        assert_eq!(m.lookup("a", None), Err(None));
        assert_eq!(m.lookup("b", None), Err(None));
        m.set_listening(true);
        assert!(matches!(m.lookup("a", None), Err(Some(_))));
    }

    #[test]
    fn notifications_reach_the_mirror_and_loads_in_flight() {
        let m = DenyMirror::new(Mode::Listened);
        m.set_listening(true);
        let t = m.ticket().expect("in use");
        // Committed after the load's snapshot: only the notification knows it.
        m.notified(Key::Jti("late".into()));
        m.notified(Key::Sid("s1".into()));
        m.fill(t, jtis(&["early"]));
        assert_eq!(m.lookup("early", None), Ok(true));
        assert_eq!(m.lookup("late", None), Ok(true));
        assert_eq!(m.lookup("x", Some("s1")), Ok(true));
        m.notified(Key::Jti("later".into()));
        assert_eq!(m.lookup("later", None), Ok(true));
        assert_eq!(m.lookup("other", None), Ok(false));
        // A load in flight across a reconnection is dropped.
        let t = m.ticket().expect("in use");
        m.set_listening(false);
        m.set_listening(true);
        m.fill(t, jtis(&[]));
        assert!(matches!(m.lookup("early", None), Err(Some(_))));
    }

    #[test]
    fn a_load_older_than_the_replay_log_is_dropped() {
        let m = DenyMirror::new(Mode::Listened);
        m.set_listening(true);
        let t = m.ticket().expect("in use");
        for i in 0..=LOG_MAX {
            m.notified(Key::Jti(format!("j{i}")));
        }
        m.fill(t, jtis(&[]));
        assert!(matches!(m.lookup("j0", None), Err(Some(_))));
    }

    #[test]
    fn payloads_parse() {
        assert_eq!(Key::parse("j:abc"), Some(Key::Jti("abc".into())));
        assert_eq!(Key::parse("s:x:y"), Some(Key::Sid("x:y".into())));
        assert_eq!(Key::parse("q:abc"), None);
        assert_eq!(Key::parse("abc"), None);
    }
}
