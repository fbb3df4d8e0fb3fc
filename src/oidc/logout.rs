//! RP-Initiated Logout 1.0 and the queueing half of Back-Channel Logout 1.0.
//!
//! A logout request is judged here, without HTTP: whether its `id_token_hint` is ours, which
//! client it comes from, whether `post_logout_redirect_uri` is registered for that client, and
//! whether it can be tied to the browser's current session (otherwise the person confirms).

use std::collections::HashMap;

use url::Url;

use super::hints::{IdTokenHint, verify_id_token_hint};
use crate::domain::Client;
use crate::oauth::Provider;
use crate::store::SessionRef;
use crate::store::{Delivery, Session, StoreError};

const MAX_STATE_LEN: usize = 2048;

/// A judged logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// A valid hint (ours, consistent with `client_id`); `None` when absent or refused.
    pub hint: Option<IdTokenHint>,
    /// The client the request comes from, when it could be established.
    pub client_id: Option<String>,
    /// Where to send the browser afterwards (registered for that client), `state` included.
    pub redirect: Option<Url>,
    /// The raw `post_logout_redirect_uri` and `state`, kept only when `redirect` is valid, for
    /// the confirmation form.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl LogoutRequest {
    /// Whether the request provably comes from a client this session signed into: the hint
    /// names this session (`sid`), or, for a hint without `sid`, this session's user.
    pub fn is_tied_to(&self, session: &Session) -> bool {
        self.hint.as_ref().is_some_and(|h| match &h.sid {
            Some(sid) => *sid == session.sid,
            None => h.sub == session.user_id,
        })
    }
}

/// Judge raw request parameters (query or form). Invalid parts are dropped, never fatal: the
/// person can always sign out; only the redirect back to the client needs proof.
pub async fn validate(
    provider: &Provider,
    pairs: &[(String, String)],
) -> Result<LogoutRequest, StoreError> {
    let params: HashMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let client_param = params.get("client_id").filter(|c| !c.is_empty()).copied();
    let (hint, client_id, trusted) = match params.get("id_token_hint").filter(|h| !h.is_empty()) {
        Some(token) => match verify_id_token_hint(provider, token) {
            // §2: client_id, when given, must be an audience of the hint.
            Some(h) => match client_param {
                Some(c) if h.audiences.iter().any(|a| a == c) => {
                    (Some(h), Some(c.to_owned()), true)
                }
                Some(_) => (None, None, false),
                None => {
                    let only = (h.audiences.len() == 1).then(|| h.audiences[0].clone());
                    (Some(h), only, true)
                }
            },
            None => {
                tracing::info!("logout with an invalid id_token_hint");
                (None, None, false)
            }
        },
        None => (None, client_param.map(str::to_owned), true),
    };
    let client = match &client_id {
        Some(id) if trusted => provider
            .store
            .find_client(id)
            .await?
            .filter(Client::is_active),
        _ => None,
    };
    let state = params
        .get("state")
        .filter(|s| s.len() <= MAX_STATE_LEN)
        .map(|s| (*s).to_owned());
    let uri = params.get("post_logout_redirect_uri").copied();
    let redirect = match (&client, uri) {
        (Some(c), Some(uri)) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            Url::parse(uri).ok().map(|mut url| {
                if let Some(s) = &state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                url
            })
        }
        _ => None,
    };
    let valid = redirect.is_some();
    Ok(LogoutRequest {
        hint,
        client_id: client.map(|c| c.id),
        redirect,
        post_logout_redirect_uri: uri.filter(|_| valid).map(str::to_owned),
        state: state.filter(|_| valid),
    })
}

/// End the session whose cookie hashes to `id_hash`, queueing a Back-Channel Logout delivery
/// for every client it signed into that registered a `backchannel_logout_uri`, in one
/// transaction. Returns whether a live session was ended. Wakes the delivery worker.
pub async fn end_session(
    provider: &Provider,
    id_hash: &str,
    session: &Session,
    now: i64,
) -> Result<bool, StoreError> {
    end_one(
        provider,
        SessionRef::Cookie { id_hash },
        &session.sid,
        &session.user_id,
        now,
    )
    .await
}

/// End one of `user_id`'s sessions by its `sid` (sign-out from the account page's session
/// list), with the same Back-Channel Logout as [`end_session`]. Another user's `sid` ends
/// nothing. Returns whether a live session was ended.
pub async fn end_session_by_sid(
    provider: &Provider,
    user_id: &str,
    sid: &str,
    now: i64,
) -> Result<bool, StoreError> {
    end_one(
        provider,
        SessionRef::Sid { user_id, sid },
        sid,
        user_id,
        now,
    )
    .await
}

async fn end_one(
    provider: &Provider,
    which: SessionRef<'_>,
    sid: &str,
    sub: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let mut deliveries = Vec::new();
    for client_id in provider.store.session_clients(sid).await? {
        let Some(client) = provider.store.find_client(&client_id).await? else {
            continue;
        };
        if client.is_active() && client.backchannel_logout_uri.is_some() {
            deliveries.push(Delivery {
                id: uuid::Uuid::new_v4().simple().to_string(),
                client_id,
                sid: sid.to_owned(),
                sub: sub.to_owned(),
                attempts: 0,
                created_at: now,
            });
        }
    }
    let ended = provider
        .store
        .end_session_and_queue(which, now, &deliveries)
        .await?;
    if ended && !deliveries.is_empty() {
        provider.logout_wake.notify_one();
    }
    Ok(ended)
}

/// End every live session of a user (logout everywhere, disable, delete...) and revoke every
/// grant, with Back-Channel Logout to each client those sessions signed into, in one
/// transaction. Returns the `sid`s ended.
pub async fn end_user_sessions(
    provider: &Provider,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let new_id = || uuid::Uuid::new_v4().simple().to_string();
    let sids = provider
        .store
        .end_user_sessions_and_queue(user_id, now, &new_id)
        .await?;
    provider.logout_wake.notify_one();
    Ok(sids)
}
