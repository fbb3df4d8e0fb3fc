//! Look-ups the hosted pages make about a waiting authorization request's client.

use super::Provider;
use super::authorize::AuthorizationRequest;
use crate::domain::Client;
use crate::store::StoreError;

/// The display name of the request's client, if it is registered.
pub async fn client_name(provider: &Provider, req: &AuthorizationRequest) -> Option<String> {
    provider
        .store
        .find_client(&req.client_id)
        .await
        .ok()
        .flatten()
        .map(|c| c.name)
}

/// The request's client if it is still active and still has the request's redirect URI (it may
/// have changed while the person was signing in).
pub async fn active_client(
    provider: &Provider,
    req: &AuthorizationRequest,
) -> Result<Option<Client>, StoreError> {
    Ok(provider
        .store
        .find_client(&req.client_id)
        .await?
        .filter(|c| c.is_active() && c.has_redirect_uri(&req.redirect_uri)))
}
