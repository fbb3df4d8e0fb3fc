//! Abuse-limit state kept in the database: failed sign-ins per key in fixed windows (both
//! dialects), and the request limiter's GCRA state (used on PostgreSQL, where several nodes must
//! see the same counts; SQLite keeps its limiter in process). Each check is one statement, so
//! concurrent requests on any number of nodes count exactly. Keys are opaque (the caller hashes
//! them), so no address or IP is stored here.

use async_trait::async_trait;

use super::StoreResult;

/// The answer to [`LimiterStore::reserve_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Counted as a failure in the window that began at `window_start`; give it back with
    /// `release_failure` when the attempt succeeds.
    Granted { window_start: i64 },
    /// The window already holds the maximum: refused, nothing counted, until `until`.
    Refused { until: i64 },
}

#[async_trait]
pub trait LimiterStore: Send + Sync + 'static {
    /// Whether the request limiter should live here (`rate_limit_hit`): true where several
    /// processes share the database (PostgreSQL).
    fn shares_rate_limits(&self) -> bool;

    /// One request against the GCRA limit `key`: one request every `interval_ms`, at most
    /// `burst` at once. `None` when let through (and counted), else the milliseconds to wait.
    async fn rate_limit_hit(
        &self,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreResult<Option<i64>>;

    /// Count one failure against `key` in its fixed window of `window` seconds (a new window
    /// starts at the first failure after the old one ended), unless the window already holds
    /// `max`: then nothing is counted and the answer says when the window ends.
    async fn reserve_failure(
        &self,
        key: &str,
        now: i64,
        window: i64,
        max: i64,
    ) -> StoreResult<Reservation>;

    /// Give back a failure `reserve_failure(.., max)` counted (the attempt succeeded); nothing
    /// when its window has since ended.
    async fn release_failure(&self, key: &str, window_start: i64, max: i64) -> StoreResult<()>;

    /// Delete failure windows that began at or before `windows_before` and limiter rows whose
    /// state is past at `now_ms`.
    async fn purge_limits(&self, windows_before: i64, now_ms: i64) -> StoreResult<u64>;
}

/// `$greatest` is the dialect's two-argument maximum (`GREATEST` / `MAX`).
macro_rules! impl_limiter_store {
    ($store:ty, $shared:expr, $greatest:literal) => {
        #[async_trait::async_trait]
        impl $crate::store::LimiterStore for $store {
            fn shares_rate_limits(&self) -> bool {
                $shared
            }

            async fn rate_limit_hit(
                &self,
                key: &str,
                now_ms: i64,
                interval_ms: i64,
                burst: i64,
            ) -> $crate::store::StoreResult<Option<i64>> {
                // GCRA: a request arriving at `now` moves the theoretical arrival time to
                // max(tat, now) + interval; it is let through when that stays within
                // burst × interval of now. A refused request changes nothing.
                let tau = burst.saturating_mul(interval_ms);
                let (tat, ok): (i64, bool) = sqlx::query_as(concat!(
                    "INSERT INTO rate_limits (key, tat_ms, ok) VALUES ($1, $2 + $3, $3 <= $4) \
                     ON CONFLICT (key) DO UPDATE SET \
                     ok = ",
                    $greatest,
                    "(rate_limits.tat_ms, $2) + $3 - $2 <= $4, \
                     tat_ms = CASE WHEN ",
                    $greatest,
                    "(rate_limits.tat_ms, $2) + $3 - $2 <= $4 THEN ",
                    $greatest,
                    "(rate_limits.tat_ms, $2) + $3 ELSE rate_limits.tat_ms END \
                     RETURNING tat_ms, ok"
                ))
                .bind(key)
                .bind(now_ms)
                .bind(interval_ms)
                .bind(tau)
                .fetch_one(&self.pool)
                .await?;
                Ok((!ok).then(|| (tat + interval_ms - now_ms - tau).max(1)))
            }

            async fn reserve_failure(
                &self,
                key: &str,
                now: i64,
                window: i64,
                max: i64,
            ) -> $crate::store::StoreResult<$crate::store::Reservation> {
                // `failures` stops at max + 1: above `max` means refused (and not counted).
                let (start, failures): (i64, i64) = sqlx::query_as(
                    "INSERT INTO login_failures (key, window_start, failures) VALUES ($1, $2, 1) \
                     ON CONFLICT (key) DO UPDATE SET \
                     failures = CASE WHEN login_failures.window_start <= $2 - $3 THEN 1 \
                       WHEN login_failures.failures <= $4 THEN login_failures.failures + 1 \
                       ELSE login_failures.failures END, \
                     window_start = CASE WHEN login_failures.window_start <= $2 - $3 THEN $2 \
                       ELSE login_failures.window_start END \
                     RETURNING window_start, failures",
                )
                .bind(key)
                .bind(now)
                .bind(window)
                .bind(max)
                .fetch_one(&self.pool)
                .await?;
                Ok(if failures <= max {
                    $crate::store::Reservation::Granted {
                        window_start: start,
                    }
                } else {
                    $crate::store::Reservation::Refused {
                        until: start + window,
                    }
                })
            }

            async fn release_failure(
                &self,
                key: &str,
                window_start: i64,
                max: i64,
            ) -> $crate::store::StoreResult<()> {
                // A full window stores max + 1 (see `reserve_failure`): it holds max.
                sqlx::query(
                    "UPDATE login_failures SET failures = \
                     CASE WHEN failures > $3 THEN $3 - 1 ELSE failures - 1 END \
                     WHERE key = $1 AND window_start = $2 AND failures > 0",
                )
                .bind(key)
                .bind(window_start)
                .bind(max)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn purge_limits(
                &self,
                windows_before: i64,
                now_ms: i64,
            ) -> $crate::store::StoreResult<u64> {
                let a = sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
                    .bind(windows_before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                let b = sqlx::query("DELETE FROM rate_limits WHERE tat_ms < $1")
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(a + b)
            }
        }
    };
}
pub(crate) use impl_limiter_store;
