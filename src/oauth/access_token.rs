//! JWT access tokens (RFC 9068): `typ: at+jwt`, verifiable by any resource server with the JWKS.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Provider;
use crate::crypto::{KeyError, random_secret};
use crate::domain::{SigningAlgorithm, User};

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// How the person signed in (RFC 9068 §2.2.1, RFC 8176), and the class it makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Group names and roles of the user, when the `groups` scope was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// A token as issued: the compact JWS and the claims it carries.
pub struct Minted {
    pub token: String,
    pub claims: AccessTokenClaims,
}

/// What an access token is for, before it gets an id and times.
pub struct Grant<'a> {
    pub sub: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub auth_time: Option<i64>,
    pub sid: Option<&'a str>,
    /// The resource (RFC 8707) the token is for; `None` means this provider's own APIs.
    pub aud: Option<&'a str>,
    pub ttl: i64,
    /// The user the token is for (`None` for client tokens): with the `groups` scope, its
    /// groups and roles as loaded now go into the token, so membership changes show in the next one.
    pub user: Option<&'a User>,
}

pub fn new_jti() -> String {
    random_secret(16)
}

/// Sign an access token with a given `jti` (chosen before a code is redeemed, so a replay can
/// revoke it).
pub fn mint(
    provider: &Provider,
    grant: &Grant<'_>,
    jti: String,
    now: i64,
) -> Result<Minted, KeyError> {
    mint_with_amr(provider, grant, "", jti, now)
}

/// `mint` for a person's sign-in: with its `amr` values as stored (space-separated) and the
/// `acr` they make (RFC 9068 §2.2.1); none when `amr` is empty.
pub fn mint_with_amr(
    provider: &Provider,
    grant: &Grant<'_>,
    amr: &str,
    jti: String,
    now: i64,
) -> Result<Minted, KeyError> {
    let claims = AccessTokenClaims {
        iss: provider.issuer().to_owned(),
        sub: grant.sub.to_owned(),
        // The default resource (RFC 9068 §3): this provider's own APIs, such as userinfo.
        // A resource indicator (RFC 8707), when the client asked for one it may use.
        aud: grant.aud.unwrap_or(provider.issuer()).to_owned(),
        client_id: grant.client_id.to_owned(),
        scope: grant.scope.to_owned(),
        iat: now,
        exp: now + grant.ttl,
        jti,
        auth_time: grant.auth_time,
        sid: grant.sid.map(str::to_owned),
        amr: None,
        acr: None,
        groups: None,
        roles: None,
    };
    let mut claims = claims;
    if !amr.is_empty() {
        let amr: Vec<String> = amr.split(' ').map(str::to_owned).collect();
        claims.acr = Some(crate::domain::acr::acr_of(&amr).to_owned());
        claims.amr = Some(amr);
    }
    if let Some(user) = grant.user
        && grant.scope.split(' ').any(|s| s == "groups")
    {
        claims.groups = Some(user.groups.clone());
        claims.roles = Some(user.roles.clone());
    }
    let map = match serde_json::to_value(&claims) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let alg: SigningAlgorithm = provider.settings.tokens.access_token_alg;
    let token = provider.keys.sign(alg, ACCESS_TOKEN_TYP, map, now)?;
    Ok(Minted { token, claims })
}

/// Why a presented access token is not usable. Callers answer `invalid_token` without detail.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidToken {
    #[error("signature or format")]
    Signature,
    #[error("not an access token")]
    WrongType,
    #[error("wrong issuer or audience")]
    WrongParty,
    #[error("expired")]
    Expired,
    #[error("revoked")]
    Revoked,
    /// The deny-list could not be read: the token is neither accepted nor called revoked (503).
    #[error("deny-list unavailable")]
    Unavailable,
}

/// Verify signature, `typ`, `iss`, `aud` (this provider's own APIs, e.g. userinfo) and `exp`,
/// then the deny-list (its `jti`, and its `sid`: the session it was issued for has ended).
pub async fn validate(
    provider: &Provider,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, InvalidToken> {
    let claims = verify_signed(provider, token)?;
    if claims.aud != provider.issuer() {
        return Err(InvalidToken::WrongParty);
    }
    check_live(provider, claims, now).await
}

/// Like [`validate`] but for any audience: introspection answers for every resource server.
pub async fn validate_any_audience(
    provider: &Provider,
    token: &str,
    now: i64,
) -> Result<AccessTokenClaims, InvalidToken> {
    let claims = verify_signed(provider, token)?;
    check_live(provider, claims, now).await
}

/// Signature by one of our keys, `typ: at+jwt`, our `iss`. Expiry and revocation not checked.
pub fn verify_signed(provider: &Provider, token: &str) -> Result<AccessTokenClaims, InvalidToken> {
    let (claims, typ) = provider
        .keys
        .verify(token)
        .map_err(|_| InvalidToken::Signature)?;
    if !typ.is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(InvalidToken::WrongType);
    }
    let claims: AccessTokenClaims =
        serde_json::from_value(Value::Object(claims)).map_err(|_| InvalidToken::Signature)?;
    if claims.iss != provider.issuer() {
        return Err(InvalidToken::WrongParty);
    }
    Ok(claims)
}

async fn check_live(
    provider: &Provider,
    claims: AccessTokenClaims,
    now: i64,
) -> Result<AccessTokenClaims, InvalidToken> {
    if claims.exp <= now {
        return Err(InvalidToken::Expired);
    }
    match provider
        .store
        .is_access_token_revoked(&claims.jti, claims.sid.as_deref())
        .await
    {
        Ok(false) => Ok(claims),
        Ok(true) => Err(InvalidToken::Revoked),
        Err(e) => {
            // Fail closed: a token we cannot check is not accepted, nor reported as revoked
            // (a resource server would throw it away): the caller answers 503.
            tracing::error!(error = %e, "deny-list lookup failed");
            Err(InvalidToken::Unavailable)
        }
    }
}
