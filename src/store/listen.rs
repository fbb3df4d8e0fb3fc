//! Cross-node invalidation on PostgreSQL: one `LISTEN` connection per node receives the
//! notifications that the triggers of migration 0017 send when a write commits, and applies
//! them to the deny-list mirror (`deny.rs`) and, through a [`ChangeSink`], to the caches above
//! the store (the client cache).
//!
//! The connection is checked, not trusted: every `HEARTBEAT_EVERY` the node notifies itself on
//! `portcullis_ping` through the pool and must hear it back on the listening connection within
//! `HEARTBEAT_DEADLINE` (notifications arrive in commit order, so hearing it also proves that
//! every earlier one arrived). A lost, silent or failing connection switches the mirror off and
//! clears the caches (every check then asks the database) until a new connection has run
//! `LISTEN` and the mirror is reloaded. The deny-list is also reloaded every `REFRESH_EVERY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgNotification};

use super::PgStore;
use super::deny::{Key, REFRESH_EVERY};

/// Notifications of deny-listed keys (`j:<jti>`, `s:<sid>`).
const DENY_CHANNEL: &str = "portcullis_deny";
/// Notifications of changed clients (the client id).
const CLIENTS_CHANNEL: &str = "portcullis_clients";
/// Each node's heartbeat to itself (`<node nonce>:<n>`).
const PING_CHANNEL: &str = "portcullis_ping";
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(3);
/// Longest wait between two connection attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Gauge (`/metrics`): 1 while other nodes' changes are heard, 0 while not (PostgreSQL only).
pub const CHANGE_LISTENER_UP: &str = "portcullis_change_listener_up";

/// What another node (or this one) changed, for the caches above the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The client with this id was created, changed or deleted.
    Client(String),
    /// Changes are heard from now on (`true`), or no longer (`false`). Either way, everything
    /// cached may have missed a change: forget it. While `false`, cache only briefly.
    Listening(bool),
}

/// Receives every [`Change`]; called on the listener's task, so it must not block.
pub type ChangeSink = Arc<dyn Fn(Change) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
enum Lost {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("connection closed")]
    Closed,
    #[error("heartbeat not heard back within {0:?}")]
    Silent(Duration),
}

impl PgStore {
    /// Listen until the task is aborted, reconnecting with a growing delay.
    pub(crate) async fn listen_for_changes(&self, sink: ChangeSink) {
        let nonce = crate::crypto::random_secret(9);
        let mut delay = Duration::from_secs(1);
        loop {
            let started = Instant::now();
            let err = self.listen_session(&sink, &nonce).await;
            self.deny.set_listening(false);
            sink(Change::Listening(false));
            metrics::gauge!(CHANGE_LISTENER_UP).set(0.0);
            tracing::warn!(
                error = %err,
                "not hearing other nodes' changes; checking the database on every request until \
                 the listener is back"
            );
            if started.elapsed() > MAX_RETRY * 2 {
                delay = Duration::from_secs(1);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY);
        }
    }

    /// One listening connection, from `LISTEN` until it fails.
    async fn listen_session(&self, sink: &ChangeSink, nonce: &str) -> Lost {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        if let Err(e) = listener
            .listen_all([DENY_CHANNEL, CLIENTS_CHANNEL, PING_CHANNEL])
            .await
        {
            return e.into();
        }
        // Only now is every later commit sure to be heard: caches start afresh from here.
        self.deny.set_listening(true);
        sink(Change::Listening(true));
        metrics::gauge!(CHANGE_LISTENER_UP).set(1.0);
        tracing::info!("listening for other nodes' changes");
        let (heard, mut heard_rx) = tokio::sync::watch::channel(0_u64);
        let receive = async {
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => self.apply(&n, sink, nonce, &heard),
                    Ok(None) => return Lost::Closed,
                    Err(e) => return e.into(),
                }
            }
        };
        let upkeep = async {
            self.reload_deny_list().await;
            let mut last_reload = Instant::now();
            let mut n = 0_u64;
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                n += 1;
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(PING_CHANNEL)
                    .bind(format!("{nonce}:{n}"))
                    .execute(&self.pool)
                    .await
                {
                    return Lost::from(e);
                }
                let back = heard_rx.wait_for(|&h| h >= n);
                if !matches!(
                    tokio::time::timeout(HEARTBEAT_DEADLINE, back).await,
                    Ok(Ok(_))
                ) {
                    return Lost::Silent(HEARTBEAT_DEADLINE);
                }
                if last_reload.elapsed() >= REFRESH_EVERY {
                    self.reload_deny_list().await;
                    last_reload = Instant::now();
                }
            }
        };
        tokio::select! {
            lost = receive => lost,
            lost = upkeep => lost,
        }
    }

    fn apply(
        &self,
        n: &PgNotification,
        sink: &ChangeSink,
        nonce: &str,
        heard: &tokio::sync::watch::Sender<u64>,
    ) {
        match n.channel() {
            DENY_CHANNEL => match Key::parse(n.payload()) {
                Some(key) => self.deny.notified(key),
                // Unknown shape: assume the worst and reload.
                None => self.deny.invalidate(),
            },
            CLIENTS_CHANNEL => sink(Change::Client(n.payload().to_owned())),
            PING_CHANNEL => {
                if let Some(count) = n
                    .payload()
                    .strip_prefix(nonce)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .and_then(|c| c.parse().ok())
                {
                    heard.send_replace(count);
                }
            }
            _ => {}
        }
    }

    /// The safety net: read the whole deny-list again (notifications since are replayed).
    async fn reload_deny_list(&self) {
        let Some(ticket) = self.deny.ticket() else {
            return;
        };
        match self.load_deny_list().await {
            Ok(denied) => self.deny.fill(ticket, denied),
            Err(e) => tracing::warn!(error = %e, "cannot reload the deny-list; will retry"),
        }
    }
}
