//! Requests waiting for the person: kept (hashed handle) while they sign in or answer the consent
//! page, each completed at most once.

use super::types::AuthorizationRequest;
use crate::crypto::{hash_secret, random_secret};
use crate::oauth::Provider;
use crate::store::{Session, StoreError};

/// Keep a validated request while the person signs in; returns the handle for the login form.
pub async fn save_login_request(
    provider: &Provider,
    req: &AuthorizationRequest,
    now: i64,
) -> Result<String, StoreError> {
    let handle = random_secret(24);
    let json = serde_json::to_string(req).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    provider
        .store
        .save_login_request(
            &hash_secret(&handle),
            &json,
            now,
            now + provider.settings.session.login_request_ttl,
        )
        .await?;
    Ok(handle)
}

fn decode_request(json: Option<String>) -> Option<AuthorizationRequest> {
    json.and_then(|j| serde_json::from_str(&j).ok())
}

/// Move a request to the consent stage for `session`: the sign-in handle `rid` (if any) is
/// consumed and a new handle returned, so the consent form is bound to this request and this
/// session, and the old login form cannot complete it.
pub async fn await_consent(
    provider: &Provider,
    mut req: AuthorizationRequest,
    rid: Option<&str>,
    session: &Session,
    now: i64,
) -> Result<Option<String>, StoreError> {
    if let Some(rid) = rid
        && take_login_request(provider, rid, now).await?.is_none()
    {
        return Ok(None);
    }
    req.consent_sid = Some(session.sid.clone());
    save_login_request(provider, &req, now).await.map(Some)
}

/// Look at a waiting request without consuming it (to show the login page).
pub async fn peek_login_request(
    provider: &Provider,
    handle: &str,
    now: i64,
) -> Result<Option<AuthorizationRequest>, StoreError> {
    Ok(decode_request(
        provider
            .store
            .find_login_request(&hash_secret(handle), now)
            .await?,
    ))
}

/// Consume a waiting request: each completes at most once.
pub async fn take_login_request(
    provider: &Provider,
    handle: &str,
    now: i64,
) -> Result<Option<AuthorizationRequest>, StoreError> {
    Ok(decode_request(
        provider
            .store
            .take_login_request(&hash_secret(handle), now)
            .await?,
    ))
}
