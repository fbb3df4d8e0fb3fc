//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token this provider
//! issued, presented back by a client to say who it believes is signed in.
//!
//! Only our own keys are consulted (`KeySet::verify`: the header's `alg` must match the key found
//! by `kid`, so `none` and foreign keys fail). Expired hints are accepted: a hint identifies, it
//! does not authorise.

use serde_json::Value;

use crate::domain::Client;
use crate::oauth::Provider;

/// What a valid hint tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    pub sub: String,
    pub sid: Option<String>,
    /// The `aud` claim: the client(s) the ID token was issued to.
    pub audiences: Vec<String>,
}

/// The hint's subject, session and audience, if `token` is an ID token signed by one of our keys
/// for our issuer; `None` for anything else (forged, foreign, tampered, not an ID token).
pub fn verify_id_token_hint(provider: &Provider, token: &str) -> Option<IdTokenHint> {
    if token.len() > 16 * 1024 {
        return None;
    }
    let (claims, typ) = provider.keys.verify(token).ok()?;
    // ID tokens are typed `JWT`; access tokens (`at+jwt`) and logout tokens are not hints.
    if typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
    {
        return None;
    }
    if claims.get("iss").and_then(Value::as_str) != Some(provider.issuer()) {
        return None;
    }
    let sub = claims.get("sub").and_then(Value::as_str)?.to_owned();
    let audiences = match claims.get("aud")? {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return None,
    };
    if audiences.is_empty() {
        return None;
    }
    let sid = claims.get("sid").and_then(Value::as_str).map(str::to_owned);
    Some(IdTokenHint {
        sub,
        sid,
        audiences,
    })
}

/// The subject of an `id_token_hint` sent to the authorization endpoint by `client` (OIDC Core
/// §3.1.2.1): the hint must be one of our ID tokens issued to that client. This is the check
/// `oauth::authorize::validate` is given by its caller.
pub fn authorization_hint_subject(
    provider: &Provider,
    token: &str,
    client: &Client,
) -> Option<String> {
    verify_id_token_hint(provider, token)
        .filter(|h| h.audiences.iter().any(|a| a == &client.id))
        .map(|h| h.sub)
}
