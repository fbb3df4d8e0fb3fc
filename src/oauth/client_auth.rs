//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients. Exactly one method per request, and it
//! must be the one the client registered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Provider;
use super::error::OAuthError;
use crate::crypto::{constant_time_eq, hash_secret};
use crate::domain::{Client, TokenEndpointAuthMethod};

pub use super::client_cache::{CLIENT_CACHE_TTL, ClientCache};

/// Credentials as presented, before checking them.
#[derive(PartialEq, Eq)]
pub enum Presented {
    Basic {
        id: String,
        secret: String,
    },
    Post {
        id: String,
        secret: String,
    },
    /// Only a `client_id` in the body: a public client.
    IdOnly {
        id: String,
    },
    Nothing,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { id, .. } => write!(f, "Basic({id})"),
            Self::Post { id, .. } => write!(f, "Post({id})"),
            Self::IdOnly { id } => write!(f, "IdOnly({id})"),
            Self::Nothing => f.write_str("Nothing"),
        }
    }
}

/// Decode an `Authorization: Basic` value. RFC 6749 §2.3.1: id and secret are
/// form-urlencoded before base64.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Combine the Authorization header and body parameters into one presented method.
pub fn presented(
    basic: Option<(String, String)>,
    body_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<Presented, OAuthError> {
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        )),
        (Some((id, secret)), body_id, None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the credentials",
                ));
            }
            Ok(Presented::Basic { id, secret })
        }
        (None, Some(id), Some(secret)) => Ok(Presented::Post {
            id: id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(id), None) => Ok(Presented::IdOnly { id: id.to_owned() }),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret without client_id",
        )),
        (None, None, None) => Ok(Presented::Nothing),
    }
}

/// Check presented credentials; every failure is the same `invalid_client`.
pub async fn authenticate(provider: &Provider, presented: Presented) -> Result<Client, OAuthError> {
    let (id, secret, method) = match presented {
        Presented::Basic { id, secret } => {
            (id, Some(secret), TokenEndpointAuthMethod::ClientSecretBasic)
        }
        Presented::Post { id, secret } => {
            (id, Some(secret), TokenEndpointAuthMethod::ClientSecretPost)
        }
        Presented::IdOnly { id } => (id, None, TokenEndpointAuthMethod::None),
        Presented::Nothing => return Err(OAuthError::invalid_client()),
    };
    let client = provider
        .clients
        .find(provider.store.as_ref(), &id)
        .await?
        .filter(Client::is_active);
    // Hash even when the client is unknown, so timing does not tell which ids exist.
    let presented_hash = secret.as_deref().map(hash_secret);
    let Some(client) = client else {
        return Err(OAuthError::invalid_client());
    };
    if client.token_endpoint_auth_method != method {
        return Err(OAuthError::invalid_client());
    }
    match (client.secret_hash.as_deref(), presented_hash.as_deref()) {
        (None, None) => Ok(client),
        (Some(stored), Some(given)) if constant_time_eq(stored.as_bytes(), given.as_bytes()) => {
            Ok(client)
        }
        _ => Err(OAuthError::invalid_client()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret+x"));
        assert_eq!(parse_basic(&h), Some(("my id".into(), "s:cret x".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn one_method_only() {
        assert!(presented(Some(("a".into(), "b".into())), None, Some("b")).is_err());
        assert!(presented(Some(("a".into(), "b".into())), Some("other"), None).is_err());
        assert_eq!(
            presented(None, Some("a"), None).unwrap(),
            Presented::IdOnly { id: "a".into() }
        );
    }
}
