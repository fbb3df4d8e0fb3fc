//! Time as Portcullis reads it: seconds since the Unix epoch (UTC), from a clock that every part
//! of one server shares (request handlers, the outbox worker, housekeeping) and that tests can
//! move forward to let time pass — expiry, cool-downs, grace periods — without sleeping or
//! editing rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The system clock, plus an offset that only [`Clock::advance`] changes (zero in production).
/// Clones share the offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        crate::now() + self.offset.load(Ordering::Relaxed)
    }

    /// Milliseconds since the Unix epoch (the same offset, in milliseconds): for limits whose
    /// intervals are shorter than a second.
    pub fn now_millis(&self) -> i64 {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ms.saturating_add(self.offset.load(Ordering::Relaxed).saturating_mul(1000))
    }

    /// Move this clock (and every clone of it) `secs` seconds forward.
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn clones_share_the_advance() {
        let a = Clock::default();
        let b = a.clone();
        let before = b.now();
        a.advance(3600);
        assert!(b.now() >= before + 3600);
        assert!(b.now() < before + 3600 + 5);
    }
}
