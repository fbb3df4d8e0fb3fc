//! The client's address, decided once per request by [`resolve`] and read by everything that
//! needs it (rate limits through `accounts::Caller`, the audit log, sessions and the account page)
//! through the [`ClientIp`] extension.
//!
//! The TCP peer is the client unless it is one of `trusted_proxies`. Only then are the forwarding
//! headers believed: `Forwarded` (RFC 7239 §4, `for=`) or `X-Forwarded-For`, walked from the
//! right (the hop our proxy added) to the left, skipping hops that are trusted proxies too; the
//! first other hop is the client. If every hop is trusted, the left-most one is. A header that
//! cannot be parsed, a hop that is `unknown` or obfuscated (RFC 7239 §6.3), or both headers present
//! and naming different clients: the peer is used, so a forged header never picks an address.
//! Scheme and host never come from these headers (the issuer is configured).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::web::state::AppState;

/// The client's address for this request (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Middleware: put the request's [`ClientIp`] in its extensions (needs `ConnectInfo`).
pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
    {
        let ip = client_ip(
            peer.ip(),
            req.headers(),
            &state.provider.settings.trusted_proxies,
        );
        req.extensions_mut().insert(ClientIp(ip));
    }
    next.run(req).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<ClientIp>().copied().ok_or_else(|| {
            tracing::error!("no client address: the server runs without ConnectInfo");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}

/// The client address of a request from `peer` carrying `headers`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = joined(headers, &axum::http::header::FORWARDED).map(|v| forwarded_for(&v));
    let xff = joined(headers, &X_FORWARDED_FOR).map(|v| x_forwarded_for(&v));
    let pick = |hops: Option<Vec<Hop>>| hops.and_then(|h| walk(&h, &is_trusted));
    match (forwarded, xff) {
        (None, None) => peer,
        (Some(f), None) => pick(f).unwrap_or(peer),
        (None, Some(x)) => pick(x).unwrap_or(peer),
        (Some(f), Some(x)) => match (pick(f), pick(x)) {
            (Some(a), Some(b)) if a == b => a,
            _ => peer,
        },
    }
}

/// Every field of `name`, joined with commas (a list split over several header lines); `None`
/// when absent, `Some("")` (malformed) when a value is not visible ASCII.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    let mut out = Vec::new();
    for v in values {
        match v.to_str() {
            Ok(s) => out.push(s),
            Err(_) => return Some(String::new()),
        }
    }
    Some(out.join(","))
}

/// One hop of a forwarding chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Ip(IpAddr),
    /// `unknown`, an obfuscated name, or an element without `for=`: nothing can be believed
    /// beyond it.
    Opaque,
}

/// Right to left: the first hop that is not a trusted proxy; the left-most if all are. `None`
/// when the chain is empty or reaches a hop that cannot be read.
fn walk(hops: &[Hop], is_trusted: &impl Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    for hop in hops.iter().rev() {
        match hop {
            Hop::Ip(ip) if is_trusted(ip) => continue,
            Hop::Ip(ip) => return Some(*ip),
            Hop::Opaque => return None,
        }
    }
    match hops.first()? {
        Hop::Ip(ip) => Some(*ip),
        Hop::Opaque => None,
    }
}

/// `X-Forwarded-For: client, proxy1, proxy2`; `None` when any entry is not an address.
fn x_forwarded_for(value: &str) -> Option<Vec<Hop>> {
    value
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            if entry.eq_ignore_ascii_case("unknown") {
                Some(Hop::Opaque)
            } else {
                node_ip(entry).map(Hop::Ip)
            }
        })
        .collect()
}

/// RFC 7239 §4: `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"`; `None`
/// when the syntax is broken.
fn forwarded_for(value: &str) -> Option<Vec<Hop>> {
    split_outside_quotes(value, ',')?
        .into_iter()
        .map(|element| {
            let mut found = Hop::Opaque;
            for pair in split_outside_quotes(element, ';')? {
                let pair = pair.trim();
                if pair.is_empty() {
                    continue;
                }
                let (name, raw) = pair.split_once('=')?;
                let value = unquote(raw.trim())?;
                if name.trim().eq_ignore_ascii_case("for") {
                    found = node(&value)?;
                }
            }
            Some(found)
        })
        .collect()
}

/// RFC 7239 §6: `node = nodename [ ":" node-port ]`; `unknown` and `_obfuscated` names are opaque.
fn node(value: &str) -> Option<Hop> {
    if value.eq_ignore_ascii_case("unknown") || value.starts_with('_') {
        return Some(Hop::Opaque);
    }
    node_ip(value).map(Hop::Ip)
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
/// `[2001:db8::1]:80`, or a bare IPv6 address.
fn node_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            .then(|| inside.parse::<std::net::Ipv6Addr>().ok())
            .flatten()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    let (host, port) = s.rsplit_once(':')?;
    let ip = host.parse::<std::net::Ipv4Addr>().ok()?;
    is_port(port).then_some(IpAddr::V4(ip))
}

/// A port number, or an obfuscated port (RFC 7239 §6.3: `_` and letters, digits, `.`, `_`, `-`).
fn is_port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
        || (p.starts_with('_')
            && p[1..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
}

/// Split on `sep` where it is not inside a quoted string; `None` for an unterminated quote.
fn split_outside_quotes(s: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// A token, or a quoted string with its quoted pairs resolved.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else {
        let token = !v.is_empty() && !v.contains(['"', ' ', '\t', ',', ';', '=']);
        return token.then(|| v.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn resolved(peer: &str, trusted: &[&str], pairs: &[(&str, &str)]) -> IpAddr {
        client_ip(ip(peer), &headers(pairs), &nets(trusted))
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let spoof = [
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7"),
        ];
        assert_eq!(resolved("198.51.100.1", &[], &spoof), ip("198.51.100.1"));
        assert_eq!(
            resolved("198.51.100.1", &["10.0.0.0/8"], &spoof),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_behind_trusted_proxies() {
        let trusted = ["10.0.0.0/8", "127.0.0.1/32"];
        // The client prepended a forged hop; our proxy appended the real one.
        let h = [("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2")];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("203.0.113.7"));
        // Split over two header lines.
        let h = [
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.7"),
        ];
        assert_eq!(resolved("127.0.0.1", &trusted, &h), ip("203.0.113.7"));
        // Every hop trusted: the left-most.
        let h = [("x-forwarded-for", "10.1.1.1, 10.0.0.2")];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("10.1.1.1"));
        // Ports and brackets as some proxies write them; IPv4-mapped peers.
        let h = [("x-forwarded-for", "[2001:db8::1]:443, 203.0.113.9:5000")];
        assert_eq!(resolved("::ffff:10.0.0.1", &trusted, &h), ip("203.0.113.9"));
        // No header: the peer.
        assert_eq!(resolved("10.0.0.1", &trusted, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_with_quoted_ipv6_and_other_parameters() {
        let trusted = ["10.0.0.0/8"];
        let h = [(
            "forwarded",
            r#"for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]:4711";by="10.0.0.9";host="a,b""#,
        )];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("2001:db8:cafe::17"));
        let h = [("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43")];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("192.0.2.60"));
        // The same client in both headers is fine.
        let h = [
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "192.0.2.60"),
        ];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("192.0.2.60"));
    }

    #[test]
    fn anything_unreadable_falls_back_to_the_peer() {
        let trusted = ["10.0.0.0/8"];
        for h in [
            [("x-forwarded-for", "not-an-ip")],
            [("x-forwarded-for", "203.0.113.7, ")],
            [("x-forwarded-for", "203.0.113.7:99999")],
            [("forwarded", "for=\"[2001:db8::1]:80")],
            [("forwarded", "for")],
            [("forwarded", "for=unknown")],
            [("forwarded", "for=_hidden, for=10.0.0.3")],
            [("forwarded", "for=\"[::1\"")],
            [("forwarded", "proto=https")],
        ] {
            assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("10.0.0.1"), "{h:?}");
        }
        // Two headers naming different clients (one forged, passed through by the proxy).
        let h = [
            ("forwarded", "for=198.51.100.5"),
            ("x-forwarded-for", "203.0.113.7"),
        ];
        assert_eq!(resolved("10.0.0.1", &trusted, &h), ip("10.0.0.1"));
    }
}
