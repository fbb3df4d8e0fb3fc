//! Back-Channel Logout 1.0 delivery: a background worker POSTs logout tokens to clients'
//! `backchannel_logout_uri`, never on the user's request path. Deliveries come from the queue
//! written with the logout (see `store::logout`); each attempt has a short timeout, failures are
//! retried with exponential back-off, and a delivery is dropped after the last attempt (logged,
//! and recorded in the audit trail as `backchannel_logout.failed`).

use std::time::Duration;

use serde_json::{Map, json};

use crate::audit::{self, Event, action};
use crate::crypto::KeyError;
use crate::domain::Client;
use crate::oauth::Provider;
use crate::store::Delivery;

/// The event a logout token carries (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How often the queue is looked at when nothing wakes the worker (deliveries that are due
/// again after a back-off, deliveries queued by another node).
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Deliveries claimed per round.
const BATCH: i64 = 32;
/// Logout tokens are short-lived (§2.4 recommends a few minutes at most).
const LOGOUT_TOKEN_TTL: i64 = 120;
const MAX_BACKOFF: i64 = 3600;

/// A logout token (§2.4) for `client`: iss, aud, iat, exp, jti, sub, sid and the event; never
/// a nonce. Signed with the client's ID-token algorithm, typed `logout+jwt`.
pub fn logout_token(
    provider: &Provider,
    client: &Client,
    delivery: &Delivery,
    now: i64,
) -> Result<String, KeyError> {
    let mut claims = Map::new();
    claims.insert("iss".into(), provider.issuer().into());
    claims.insert("aud".into(), client.id.as_str().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + LOGOUT_TOKEN_TTL).into());
    claims.insert("jti".into(), delivery.id.as_str().into());
    claims.insert("sub".into(), delivery.sub.as_str().into());
    claims.insert("sid".into(), delivery.sid.as_str().into());
    claims.insert("events".into(), json!({ LOGOUT_EVENT: {} }));
    let alg = super::id_token::signing_alg(provider, client);
    provider.keys.sign(alg, "logout+jwt", claims, now)
}

/// Seconds to wait after the `attempts`-th failure: base, 2×base, 4×base… capped at an hour.
pub fn backoff(base: i64, attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1_i64 << shift).min(MAX_BACKOFF)
}

/// Run forever: deliver what is due, then sleep until woken by a logout or the next poll.
pub async fn run(provider: Provider) {
    let settings = &provider.settings.logout;
    let timeout = Duration::from_secs(u64::try_from(settings.backchannel_timeout).unwrap_or(5));
    let http = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("portcullis-backchannel-logout")
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the back-channel logout HTTP client");
            return;
        }
    };
    loop {
        deliver_due(&provider, &http).await;
        tokio::select! {
            () = provider.logout_wake.notified() => {}
            () = tokio::time::sleep(POLL_EVERY) => {}
        }
    }
}

async fn deliver_due(provider: &Provider, http: &reqwest::Client) {
    let settings = &provider.settings.logout;
    let now = provider.clock.now();
    // A claim outlives one attempt; if this node dies mid-send, the delivery is due again.
    let lease = now + settings.backchannel_timeout * 2 + 5;
    let claimed = match provider.store.claim_deliveries(now, lease, BATCH).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the back-channel logout queue; will retry");
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for delivery in claimed {
        let provider = provider.clone();
        let http = http.clone();
        tasks.spawn(async move { deliver(&provider, &http, delivery).await });
    }
    while tasks.join_next().await.is_some() {}
}

async fn deliver(provider: &Provider, http: &reqwest::Client, delivery: Delivery) {
    let settings = &provider.settings.logout;
    let store = &provider.store;
    let client = match store.find_client(&delivery.client_id).await {
        Ok(c) => c.filter(Client::is_active),
        Err(e) => {
            tracing::warn!(error = %e, "client lookup failed for back-channel logout");
            return; // the lease expires and the delivery is retried
        }
    };
    let Some((client, uri)) = client.and_then(|c| {
        let uri = c.backchannel_logout_uri.clone()?;
        Some((c, uri))
    }) else {
        // The client was removed, disabled or stopped listening: nothing to deliver.
        let _ = store.finish_delivery(&delivery.id).await;
        return;
    };
    let now = provider.clock.now();
    let result = match logout_token(provider, &client, &delivery, now) {
        Ok(token) => http
            .post(&uri)
            .header(reqwest::header::CACHE_CONTROL, "no-store")
            .form(&[("logout_token", token.as_str())])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection failed".to_owned()
                }
            })
            .and_then(|r| {
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {}", r.status().as_u16()))
                }
            }),
        Err(e) => Err(format!("signing failed: {e}")),
    };
    if result.is_err() {
        crate::observability::delivery_failed("backchannel_logout");
    }
    let outcome = match result {
        Ok(()) => {
            tracing::info!(client.id = %client.id, "back-channel logout delivered");
            store.finish_delivery(&delivery.id).await
        }
        Err(reason) if delivery.attempts >= settings.backchannel_max_attempts => {
            tracing::warn!(client.id = %client.id, attempts = delivery.attempts, reason,
                "back-channel logout given up");
            let finished = store.finish_delivery(&delivery.id).await;
            if finished.is_ok() {
                // Recorded once: the row is gone, so no other node gives it up again.
                audit::record(store.as_ref(), given_up_event(&delivery, &reason)).await;
            }
            finished
        }
        Err(reason) => {
            let wait = backoff(settings.backchannel_retry_base, delivery.attempts);
            tracing::info!(client.id = %client.id, attempts = delivery.attempts, reason,
                retry_in = wait, "back-channel logout failed; will retry");
            store
                .retry_delivery(&delivery.id, now + wait, &reason)
                .await
        }
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "cannot update the back-channel logout queue");
    }
}

/// The audit entry for a delivery given up: who was not told (client), which session and
/// subject, how often it was tried and why the last attempt failed. Never the logout token.
fn given_up_event(delivery: &Delivery, reason: &str) -> Event {
    let reason: String = reason.chars().take(200).collect();
    Event::new(action::BACKCHANNEL_LOGOUT_FAILED)
        .target(&delivery.client_id)
        .client(&delivery.client_id)
        .failure(&reason)
        .detail("sid", delivery.sid.as_str())
        .detail("sub", delivery.sub.as_str())
        .detail("attempts", delivery.attempts)
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(2, 1), 2);
        assert_eq!(backoff(2, 2), 4);
        assert_eq!(backoff(2, 3), 8);
        assert_eq!(backoff(2, 60), 3600);
        assert_eq!(backoff(1, 0), 1);
    }
}
