//! The registration rules for a client, in one place: the admin API, the management pages and
//! the CLI all go through [`apply`]. Pure: no I/O.
//!
//! - redirect and post-logout redirect URIs: absolute, no fragment (RFC 6749 §3.1.2), https or
//!   http on a loopback host (RFC 8252 §7.3) or a reverse-domain custom scheme (RFC 8252 §7.1);
//!   plain http elsewhere only with `allow_insecure_http` (test setups); at most 50 URIs of up
//!   to 2000 characters;
//! - the back-channel logout URI: the same, and http(s) only;
//! - web origins (CORS): `scheme://host[:port]` only, https or http on a loopback host (any http
//!   host with `allow_insecure_http`), at most 50;
//! - audiences: resource indicators, absolute URIs without a fragment (RFC 8707 §2), at most 20
//!   of up to 500 characters;
//! - lifetimes: access token 30–86400 s, refresh token idle and absolute 60–31536000 s (`0`: the
//!   server default), idle ≤ absolute;
//! - known grant types (at least one), known scopes, a redirect URI for `authorization_code`,
//!   no `client_credentials` for a public client.

use std::ops::RangeInclusive;

use super::ClientInput;
use crate::admin::{AdminError, AdminResult};
use crate::domain::{
    Client, GrantType, InvalidInput, RedirectUri, SUPPORTED_SCOPES, SigningAlgorithm,
    TokenEndpointAuthMethod,
};

/// Allowed per-client access-token lifetimes (seconds).
pub const ACCESS_TOKEN_TTL: RangeInclusive<i64> = 30..=86_400;
/// Allowed per-client refresh-token lifetimes, idle and absolute (seconds).
pub const REFRESH_TOKEN_TTL: RangeInclusive<i64> = 60..=31_536_000;

const MAX_NAME_CHARS: usize = 100;
const MAX_URIS: usize = 50;
const MAX_URI_LEN: usize = 2000;
const MAX_AUDIENCES: usize = 20;
const MAX_AUDIENCE_LEN: usize = 500;

fn uris(allow_insecure_http: bool, field: &str, list: &[String]) -> AdminResult<Vec<String>> {
    if list.len() > MAX_URIS {
        return Err(AdminError::invalid(
            field,
            format!("at most {MAX_URIS} URIs"),
        ));
    }
    list.iter()
        .map(|u| uri(allow_insecure_http, field, u))
        .collect()
}

fn uri(allow_insecure_http: bool, field: &str, u: &str) -> AdminResult<String> {
    if u.len() > MAX_URI_LEN {
        return Err(AdminError::invalid(field, "URI is too long"));
    }
    match RedirectUri::parse(u) {
        Ok(r) => Ok(r.as_str().to_owned()),
        // An http URI on a non-loopback host is acceptable only where the operator allowed
        // insecure http for the whole server (test setups).
        Err(e) if allow_insecure_http => {
            let parsed = url::Url::parse(u).map_err(|_| AdminError::invalid(field, e.0.clone()))?;
            if parsed.scheme() == "http" && parsed.fragment().is_none() && !u.contains('#') {
                Ok(u.to_owned())
            } else {
                Err(AdminError::invalid(field, e.0))
            }
        }
        Err(e) => Err(AdminError::invalid(field, e.0)),
    }
}

/// The back-channel logout receiver: a registrable URI that a server can POST to.
fn backchannel_uri(allow_insecure_http: bool, u: &str) -> AdminResult<String> {
    const FIELD: &str = "backchannel_logout_uri";
    let u = uri(allow_insecure_http, FIELD, u)?;
    let web = url::Url::parse(&u).is_ok_and(|p| matches!(p.scheme(), "https" | "http"));
    if !web {
        return Err(AdminError::invalid(
            FIELD,
            "must be an https:// (or loopback http://) URL",
        ));
    }
    Ok(u)
}

/// A web origin (RFC 6454 §6.2 serialisation, as browsers send in `Origin`): scheme, host and
/// an optional port; no path, query, fragment or user info; stored lower-case, default port left
/// out.
fn web_origin(allow_insecure_http: bool, o: &str) -> AdminResult<String> {
    const FIELD: &str = "web_origins";
    let o = o.trim();
    let bad = |why: &str| AdminError::invalid(FIELD, format!("`{o}` {why}"));
    if o.len() > MAX_URI_LEN {
        return Err(bad("is too long"));
    }
    let url = url::Url::parse(o).map_err(|_| {
        bad("is not an origin; use scheme://host[:port], e.g. https://app.example.com")
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(bad("is not an origin; use https://host[:port]"));
    }
    let serialised = url.origin().ascii_serialization();
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || o.contains(['?', '#'])
        || url.path() != "/"
        || o.ends_with('/')
    {
        return Err(bad(&format!(
            "is not an origin: leave out the path, query and user info (use {serialised})"
        )));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback && !allow_insecure_http {
        return Err(bad("must use https (http only for loopback hosts)"));
    }
    Ok(serialised)
}

/// A resource indicator (RFC 8707 §2): an absolute URI without a fragment.
fn audience(a: &str) -> AdminResult<String> {
    const FIELD: &str = "audiences";
    let a = a.trim();
    if a.is_empty() || a.len() > MAX_AUDIENCE_LEN {
        return Err(AdminError::invalid(
            FIELD,
            format!("use non-empty values of up to {MAX_AUDIENCE_LEN} characters"),
        ));
    }
    let url = url::Url::parse(a)
        .map_err(|e| AdminError::invalid(FIELD, format!("`{a}` is not an absolute URI ({e})")))?;
    if url.fragment().is_some() || a.contains('#') {
        return Err(AdminError::invalid(
            FIELD,
            format!("`{a}` must not contain a fragment"),
        ));
    }
    Ok(a.to_owned())
}

/// `None`: keep `current`; `0`: the server default; otherwise within `range`.
fn ttl(
    field: &str,
    v: Option<i64>,
    current: Option<i64>,
    range: RangeInclusive<i64>,
) -> AdminResult<Option<i64>> {
    match v {
        None => Ok(current),
        Some(0) => Ok(None),
        Some(n) if range.contains(&n) => Ok(Some(n)),
        Some(_) => Err(AdminError::invalid(
            field,
            format!(
                "use 0 (server default) or {} to {} seconds",
                range.start(),
                range.end()
            ),
        )),
    }
}

/// Apply `input` over `c` (a fresh `Client::new` for create), validating every field given and
/// then the client as a whole. On error `c` may be partly changed: callers discard it.
pub(super) fn apply(
    allow_insecure_http: bool,
    c: &mut Client,
    input: &ClientInput,
) -> AdminResult<()> {
    if let Some(name) = &input.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(AdminError::invalid(
                "name",
                format!("use 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        c.name = name.to_owned();
    }
    if let Some(list) = &input.redirect_uris {
        c.redirect_uris = uris(allow_insecure_http, "redirect_uris", list)?;
    }
    if let Some(list) = &input.post_logout_redirect_uris {
        c.post_logout_redirect_uris = uris(allow_insecure_http, "post_logout_redirect_uris", list)?;
    }
    if let Some(u) = &input.backchannel_logout_uri {
        c.backchannel_logout_uri = if u.trim().is_empty() {
            None
        } else {
            Some(backchannel_uri(allow_insecure_http, u.trim())?)
        };
    }
    if let Some(list) = &input.grant_types {
        let mut out = Vec::new();
        for g in list {
            let g: GrantType = g
                .parse()
                .map_err(|e: InvalidInput| AdminError::invalid("grant_types", e.0))?;
            if !out.contains(&g.as_str().to_owned()) {
                out.push(g.as_str().to_owned());
            }
        }
        c.grant_types = out;
    }
    if let Some(list) = &input.scopes {
        let mut out: Vec<String> = Vec::new();
        for s in list {
            if !SUPPORTED_SCOPES.contains(&s.as_str()) {
                return Err(AdminError::invalid(
                    "scopes",
                    format!(
                        "unknown scope `{s}`; supported: {}",
                        SUPPORTED_SCOPES.join(", ")
                    ),
                ));
            }
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        c.scopes = out;
    }
    if let Some(list) = &input.audiences {
        if list.len() > MAX_AUDIENCES {
            return Err(AdminError::invalid(
                "audiences",
                format!("at most {MAX_AUDIENCES} values"),
            ));
        }
        c.audiences = list.iter().map(|a| audience(a)).collect::<Result<_, _>>()?;
    }
    if let Some(list) = &input.web_origins {
        if list.len() > MAX_URIS {
            return Err(AdminError::invalid(
                "web_origins",
                format!("at most {MAX_URIS} origins"),
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for o in list {
            let o = web_origin(allow_insecure_http, o)?;
            if !out.contains(&o) {
                out.push(o);
            }
        }
        c.web_origins = out;
    }
    if let Some(v) = input.require_consent {
        c.require_consent = v;
    }
    c.access_token_ttl = ttl(
        "access_token_ttl",
        input.access_token_ttl,
        c.access_token_ttl,
        ACCESS_TOKEN_TTL,
    )?;
    c.refresh_token_idle_ttl = ttl(
        "refresh_token_idle_ttl",
        input.refresh_token_idle_ttl,
        c.refresh_token_idle_ttl,
        REFRESH_TOKEN_TTL,
    )?;
    c.refresh_token_absolute_ttl = ttl(
        "refresh_token_absolute_ttl",
        input.refresh_token_absolute_ttl,
        c.refresh_token_absolute_ttl,
        REFRESH_TOKEN_TTL,
    )?;
    if let Some(alg) = &input.id_token_signed_response_alg {
        c.id_token_signed_response_alg = if alg.is_empty() {
            None
        } else {
            Some(
                alg.parse::<SigningAlgorithm>()
                    .map_err(|e| AdminError::invalid("id_token_signed_response_alg", e.0))?,
            )
        };
    }
    check(c)
}

/// Rules over the whole client, once every field is applied.
fn check(c: &Client) -> AdminResult<()> {
    if c.grant_types.is_empty() {
        return Err(AdminError::invalid(
            "grant_types",
            "at least one grant type",
        ));
    }
    if c.allows_grant(GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return Err(AdminError::invalid(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    if c.token_endpoint_auth_method == TokenEndpointAuthMethod::None
        && c.allows_grant(GrantType::ClientCredentials)
    {
        return Err(AdminError::invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    if let (Some(idle), Some(absolute)) = (c.refresh_token_idle_ttl, c.refresh_token_absolute_ttl)
        && idle > absolute
    {
        return Err(AdminError::invalid(
            "refresh_token_idle_ttl",
            "must not exceed refresh_token_absolute_ttl",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let mut c = Client::new(
            "c".into(),
            "n".into(),
            TokenEndpointAuthMethod::ClientSecretBasic,
            0,
        );
        c.redirect_uris = vec!["https://app.example.com/cb".into()];
        c
    }

    /// The field a refusal names.
    fn refused(input: ClientInput) -> String {
        match apply(false, &mut client(), &input) {
            Err(AdminError::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn rules_over_the_whole_client() {
        let public_cc = ClientInput {
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        };
        let mut public = client();
        public.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        assert!(apply(false, &mut public, &public_cc).is_err());
        let no_redirect = ClientInput {
            redirect_uris: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(refused(no_redirect), "redirect_uris");
        let no_grant = ClientInput {
            grant_types: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(refused(no_grant), "grant_types");
        let idle_over_abs = ClientInput {
            refresh_token_idle_ttl: Some(1000),
            refresh_token_absolute_ttl: Some(999),
            ..Default::default()
        };
        assert_eq!(refused(idle_over_abs), "refresh_token_idle_ttl");
        // Against a stored absolute lifetime too.
        let mut stored = client();
        stored.refresh_token_absolute_ttl = Some(600);
        let idle_only = ClientInput {
            refresh_token_idle_ttl: Some(601),
            ..Default::default()
        };
        assert!(apply(false, &mut stored, &idle_only).is_err());
    }

    #[test]
    fn the_stricter_rules_of_the_former_two_sets() {
        // Refresh lifetimes start at 60 s, access lifetimes at 30 s.
        for v in [45, 59] {
            let input = ClientInput {
                refresh_token_idle_ttl: Some(v),
                ..Default::default()
            };
            assert_eq!(refused(input), "refresh_token_idle_ttl");
            let input = ClientInput {
                refresh_token_absolute_ttl: Some(v),
                ..Default::default()
            };
            assert_eq!(refused(input), "refresh_token_absolute_ttl");
        }
        let mut c = client();
        let ok = ClientInput {
            access_token_ttl: Some(30),
            refresh_token_idle_ttl: Some(60),
            refresh_token_absolute_ttl: Some(60),
            ..Default::default()
        };
        apply(false, &mut c, &ok).unwrap();
        assert_eq!(c.refresh_token_idle_ttl, Some(60));
        // Audiences are resource indicators: absolute URIs without a fragment.
        for bad in ["not a uri", "/relative", "https://api.example.com/#x", " "] {
            let input = ClientInput {
                audiences: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert_eq!(refused(input), "audiences", "{bad}");
        }
        let input = ClientInput {
            audiences: Some(vec![
                " https://api.example.com ".into(),
                "urn:example:api".into(),
            ]),
            ..Default::default()
        };
        let mut c = client();
        apply(false, &mut c, &input).unwrap();
        assert_eq!(c.audiences, ["https://api.example.com", "urn:example:api"]);
        // The back-channel logout receiver is a web URL.
        for bad in [
            "ftp://x.example.com/",
            "com.example.app:/bc",
            "http://x.example.com/bc",
        ] {
            let input = ClientInput {
                backchannel_logout_uri: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(refused(input), "backchannel_logout_uri", "{bad}");
        }
        // Names of 1 to 100 characters.
        for bad in [" ", &"x".repeat(101)] {
            let input = ClientInput {
                name: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(refused(input), "name");
        }
    }

    #[test]
    fn web_origins_are_bare_origins() {
        for bad in [
            "https://app.example.com/",
            "https://app.example.com/cb",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "http://app.example.com",
            "ftp://app.example.com",
            "app.example.com",
            "*",
            "null",
            "com.example.app:/cb",
        ] {
            let input = ClientInput {
                web_origins: Some(vec![bad.into()]),
                ..Default::default()
            };
            assert_eq!(refused(input), "web_origins", "{bad}");
        }
        let input = ClientInput {
            web_origins: Some(vec![
                "https://App.Example.com:443".into(),
                " http://127.0.0.1:5173 ".into(),
                "http://localhost:3000".into(),
                "https://app.example.com".into(),
            ]),
            ..Default::default()
        };
        let mut c = client();
        apply(false, &mut c, &input).unwrap();
        assert_eq!(
            c.web_origins,
            [
                "https://app.example.com",
                "http://127.0.0.1:5173",
                "http://localhost:3000"
            ]
        );
        // A confidential client without web_origins allows none; a public one its redirect
        // URIs' origins.
        assert_eq!(client().allowed_origins(), Vec::<String>::new());
        let mut public = client();
        public.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        public.redirect_uris = vec![
            "https://spa.example.com/cb".into(),
            "https://spa.example.com/other".into(),
            "com.example.app:/cb".into(),
        ];
        assert_eq!(public.allowed_origins(), ["https://spa.example.com"]);
    }

    #[test]
    fn zero_returns_to_the_server_default() {
        let mut c = client();
        c.access_token_ttl = Some(60);
        c.refresh_token_idle_ttl = Some(600);
        let input = ClientInput {
            access_token_ttl: Some(0),
            refresh_token_idle_ttl: Some(0),
            ..Default::default()
        };
        apply(false, &mut c, &input).unwrap();
        assert_eq!(c.access_token_ttl, None);
        assert_eq!(c.refresh_token_idle_ttl, None);
    }

    #[test]
    fn insecure_http_only_where_allowed() {
        let input = ClientInput {
            redirect_uris: Some(vec!["http://app.example.com/cb".into()]),
            ..Default::default()
        };
        assert_eq!(refused(input.clone()), "redirect_uris");
        let mut c = client();
        apply(true, &mut c, &input).unwrap();
        assert_eq!(c.redirect_uris, ["http://app.example.com/cb"]);
        let fragment = ClientInput {
            redirect_uris: Some(vec!["http://app.example.com/cb#x".into()]),
            ..Default::default()
        };
        assert!(apply(true, &mut client(), &fragment).is_err());
    }
}
