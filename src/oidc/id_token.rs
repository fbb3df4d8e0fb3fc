//! ID tokens (OIDC Core §2, §3.1.3.6): signed with the client's chosen algorithm, carrying
//! `nonce`, `auth_time`, `amr`, `acr`, `sid` and `at_hash`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::crypto::KeyError;
use crate::domain::{Client, SigningAlgorithm};
use crate::oauth::Provider;
use crate::oauth::token::IdTokenContext;

use super::claims::user_claims;

/// What an ID token is minted from: the client it is for, what the grant says it must state,
/// and the access token issued with it (for `at_hash`).
pub struct IdTokenInput<'a> {
    pub client: &'a Client,
    pub context: &'a IdTokenContext,
    pub access_token: Option<&'a str>,
}

/// The algorithm a client's ID tokens are signed with.
pub fn signing_alg(provider: &Provider, client: &Client) -> SigningAlgorithm {
    client
        .id_token_signed_response_alg
        .unwrap_or(provider.settings.tokens.id_token_alg)
}

pub fn mint(provider: &Provider, input: &IdTokenInput<'_>, now: i64) -> Result<String, KeyError> {
    let alg = signing_alg(provider, input.client);
    let ctx = input.context;
    let mut claims = Map::new();
    claims.insert("iss".into(), provider.issuer().into());
    claims.insert("sub".into(), ctx.user.id.as_str().into());
    claims.insert("aud".into(), input.client.id.as_str().into());
    claims.insert("iat".into(), now.into());
    claims.insert(
        "exp".into(),
        (now + provider.settings.tokens.id_token_ttl).into(),
    );
    claims.insert("auth_time".into(), ctx.auth_time.into());
    if let Some(nonce) = &ctx.nonce {
        claims.insert("nonce".into(), nonce.as_str().into());
    }
    if let Some(sid) = &ctx.sid {
        claims.insert("sid".into(), sid.as_str().into());
    }
    // OIDC Core §2 `amr` (values from RFC 8176): how the person proved who they are.
    // `acr`: `urn:portcullis:acr:mfa` when `amr` holds `mfa`, else `urn:portcullis:acr:pwd`.
    if !ctx.amr.is_empty() {
        claims.insert("amr".into(), ctx.amr.clone().into());
        claims.insert("acr".into(), crate::domain::acr::acr_of(&ctx.amr).into());
    }
    if let Some(at) = input.access_token {
        claims.insert("at_hash".into(), Value::from(token_hash(alg, at)));
    }
    for (k, v) in user_claims(&ctx.user, &ctx.scope) {
        claims.insert(k, v);
    }
    provider.keys.sign(alg, "JWT", claims, now)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the hash of the token's ASCII, with the
/// hash of the signing algorithm (SHA-512 for Ed25519).
pub fn token_hash(alg: SigningAlgorithm, token: &str) -> String {
    match alg {
        SigningAlgorithm::RS256 | SigningAlgorithm::ES256 => {
            let d = Sha256::digest(token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..16])
        }
        SigningAlgorithm::EdDSA => {
            let d = Sha512::digest(token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..32])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_example_from_oidc_core_a3() {
        // OIDC Core Appendix A.3 pairs this access token with this at_hash (RS256).
        assert_eq!(
            token_hash(
                SigningAlgorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
