//! Shared application state: one `Arc` per part, no globals.

use std::sync::Arc;

use bytes::Bytes;

use crate::accounts::Accounts;
use crate::audit::Event;
use crate::email::Mailer;
use crate::oauth::Provider;
use crate::web::render::Templates;

#[derive(Clone)]
pub struct AppState {
    pub provider: Provider,
    pub templates: Arc<Templates>,
    /// Discovery document, serialised once at start.
    pub discovery: Bytes,
    /// Key for CSRF tokens (HMAC-SHA256), from `keys_dir/csrf.key`.
    pub csrf_key: Arc<[u8; 32]>,
    pub cookies: CookieNames,
    /// Renders mail and delivers the outbox (see `crate::email`).
    pub mailer: Arc<Mailer>,
    /// The self-service account flows (with the abuse limits).
    pub accounts: Accounts,
}

impl AppState {
    /// The server's time (see `crate::clock`).
    pub fn now(&self) -> i64 {
        self.provider.clock.now()
    }

    /// Append `event` to the audit trail (a failure to write it is logged, never shown).
    pub async fn audit(&self, event: Event) {
        crate::audit::record(self.provider.store.as_ref(), event).await;
    }
}

/// Cookie names: `__Host-` prefixed (no Domain, Path=/, Secure) when the issuer is https.
#[derive(Clone, Debug)]
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    /// The authorization request waiting while this browser confirms its e-mail address, so
    /// the confirmation link (opened in the same browser) can return to it.
    pub pending_rid: &'static str,
    /// The known-device cookie (`accounts::throttle`).
    pub device: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn for_issuer(https: bool) -> Self {
        if https {
            Self {
                session: "__Host-portcullis_session",
                csrf: "__Host-portcullis_csrf",
                pending_rid: "__Secure-portcullis_rid",
                device: "__Host-portcullis_device",
                secure: true,
            }
        } else {
            Self {
                session: "portcullis_session",
                csrf: "portcullis_csrf",
                pending_rid: "portcullis_rid",
                device: "portcullis_device",
                secure: false,
            }
        }
    }
}
