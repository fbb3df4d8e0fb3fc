//! The OAuth 2.0 protocol core: authorization requests, PKCE, client authentication, grants and
//! access tokens. No HTTP framework here: `web::oauth` turns requests into these calls and their
//! results into responses.
//!
//! `oauth` never imports `oidc`: OpenID Connect builds on this core (ID tokens from a grant's
//! outcome, `id_token_hint` checked for `authorize::validate` by its caller), not the reverse.
//!
//! Why not oxide-auth's grant engine: it has no OpenID Connect at all (no ID token, nonce, prompt,
//! max_age, sid), replaces a grant's extensions at the token step (the nonce would be lost), turns
//! every framework error into HTTP 500, cannot revoke the tokens of a replayed code (RFC 6749
//! §4.1.2), and keeps codes for a fixed ten minutes. Adapting it would leave us re-implementing
//! most of the flow around it, so the flow is written here, directly against the RFCs, and each
//! step cites its section.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod client_cache;
pub mod error;
pub mod form;
pub mod grants;
pub mod introspection;
pub mod lookup;
pub mod pkce;
pub mod revocation;
pub mod token;

use std::sync::Arc;

use crate::config::Settings;
use crate::crypto::{KeySet, PasswordHasher};
use crate::store::Store;

pub use error::{ErrorCode, OAuthError};

/// Everything the protocol needs: settings, storage, keys and the password hasher.
#[derive(Clone)]
pub struct Provider {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeySet>,
    pub hasher: PasswordHasher,
    /// Wakes the Back-Channel Logout worker when a logout queued deliveries.
    pub logout_wake: Arc<tokio::sync::Notify>,
    /// Client records for authentication, reused for `client_cache::CLIENT_CACHE_TTL`.
    pub clients: Arc<client_cache::ClientCache>,
    /// The time, shared by every part of this server.
    pub clock: crate::clock::Clock,
}

/// Allowance for clocks of resource servers running a little behind ours.
const CLOCK_SKEW_SECS: i64 = 300;

/// How long a retired signing key must stay published after its successor was created: the
/// longest lifetime of anything signed (access and ID tokens, per-client overrides included),
/// plus the time a running server may go on signing with it before it loads the successor, plus
/// clock skew. Refresh tokens are opaque and signed by nothing, so they do not count.
pub fn key_retention(settings: &Settings, clients: &[crate::domain::Client]) -> i64 {
    let t = &settings.tokens;
    let longest = clients
        .iter()
        .filter_map(|c| c.access_token_ttl)
        .chain([t.access_token_ttl, t.id_token_ttl])
        .max()
        .unwrap_or(0);
    longest + crate::crypto::keys::KEY_RELOAD_EVERY.as_secs() as i64 + CLOCK_SKEW_SECS
}

impl Provider {
    pub fn issuer(&self) -> &str {
        self.settings.issuer()
    }
}
