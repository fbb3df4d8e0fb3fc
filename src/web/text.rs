//! Text is checked at the door. No parameter of OAuth, OpenID Connect, the pages or the admin API
//! may contain U+0000, and PostgreSQL cannot store or even compare it in `text` (it fails the
//! statement: a 500). Nor may any of them be anything but UTF-8: a byte that is not (raw, or
//! percent-encoded like `%FF`) would otherwise be replaced by U+FFFD and carried on — into a
//! `state` sent back to the client, a name stored, a token compared. One middleware looks at
//! every place a request carries text — the path, the query, a Basic `Authorization` header and
//! the body (raw, `%00` in form encoding, `\u0000` in JSON; form bodies percent-decoded for
//! UTF-8) — and refuses the request in the endpoint's own error format before any handler runs,
//! so nothing is read or written. A body over the size limit is refused the same way (413).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::oauth::OAuthError;
use crate::web::state::AppState;

/// What is wrong with a request's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Nul,
    NotUtf8,
    TooLarge,
}

impl Fault {
    /// For developers (protocol endpoints, admin API).
    fn message(self) -> &'static str {
        match self {
            Self::Nul => "the request contains a NUL character, which is never valid here",
            Self::NotUtf8 => "the request contains text that is not valid UTF-8",
            Self::TooLarge => "the request body is too large",
        }
    }

    /// For people (pages).
    fn page(self) -> (&'static str, &'static str) {
        match self {
            Self::Nul | Self::NotUtf8 => (
                "Bad request",
                "The request contains a character that is never valid here. Go back and check \
                 what you typed.",
            ),
            Self::TooLarge => (
                "Request too large",
                "The form sent more than this page accepts. Go back and shorten what you typed.",
            ),
        }
    }
}

pub async fn refuse_bad_text(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().as_bytes();
    if has_percent_nul(path.as_bytes())
        || has_percent_nul(query)
        || basic_credentials_have_nul(&req)
    {
        return refusal(&state, &path, Fault::Nul);
    }
    if !decodes_to_utf8(path.as_bytes()) || !decodes_to_utf8(query) {
        return refusal(&state, &path, Fault::NotUtf8);
    }
    if req
        .extensions()
        .get::<super::serve::BodyTooLarge>()
        .is_some()
    {
        return refusal(&state, &path, Fault::TooLarge);
    }
    if !carries_body(&req) {
        return next.run(req).await;
    }
    let form = super::oauth::is_form(req.headers());
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, super::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return refusal(&state, &path, Fault::TooLarge),
    };
    if bytes.contains(&0) || has_percent_nul(&bytes) || has_json_nul(&bytes) {
        return refusal(&state, &path, Fault::Nul);
    }
    // Form values are percent-decoded text; other bodies (JSON) are judged by their parsers.
    if form && !decodes_to_utf8(&bytes) {
        return refusal(&state, &path, Fault::NotUtf8);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Whether percent-decoding `s` (a path, a query or a form body) gives UTF-8. Separators (`&`,
/// `=`, `/`) are ASCII, so the whole string is valid exactly when every part is.
fn decodes_to_utf8(s: &[u8]) -> bool {
    if s.iter().all(|&b| b != b'%' && b.is_ascii()) {
        return true;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                // Two hex digits make one byte (at most 0xFF).
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(u8::MAX));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).is_ok()
}

/// GET, HEAD and bodies announced empty are passed through without buffering.
fn carries_body(req: &Request) -> bool {
    let empty = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "0");
    !(req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD || empty)
}

/// `%00` in a percent-encoded string (path, query, form body).
fn has_percent_nul(s: &[u8]) -> bool {
    s.windows(3).any(|w| w == b"%00")
}

/// A JSON `\u0000` escape: `u0000` after an odd run of backslashes (an even run is an escaped
/// backslash followed by the plain text `u0000`).
fn has_json_nul(s: &[u8]) -> bool {
    s.windows(5).enumerate().any(|(i, w)| {
        w == b"u0000" && s[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
    })
}

/// Client credentials in `Authorization: Basic` (RFC 6749 §2.3.1: form-encoded, then base64).
fn basic_credentials_have_nul(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let Some(encoded) = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return false;
    };
    STANDARD
        .decode(encoded.trim())
        .is_ok_and(|raw| raw.contains(&0) || has_percent_nul(&raw))
}

/// Refused in the format of the endpoint that was asked: RFC 6749 `invalid_request` (400; 413
/// for a body too large) at the protocol endpoints, RFC 7807 problem details in the admin API
/// (422, as for any other value the API does not accept; 413), an error page elsewhere.
fn refusal(state: &AppState, path: &str, problem: Fault) -> Response {
    let status = match problem {
        Fault::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Fault::Nul | Fault::NotUtf8 => StatusCode::BAD_REQUEST,
    };
    if path.starts_with("/admin/api/") {
        let (status, title) = match problem {
            Fault::TooLarge => (status, "Payload Too Large"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "Unprocessable Entity"),
        };
        return super::admin::api::problem::Problem::new(status, title, problem.message())
            .into_response();
    }
    if matches!(path, "/token" | "/introspect" | "/revoke" | "/userinfo") {
        let mut resp = super::oauth::json_error(&OAuthError::invalid_request(problem.message()));
        *resp.status_mut() = status;
        return resp;
    }
    let (title, message) = problem.page();
    state.templates.error_page(status, title, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_each_encoding() {
        assert!(has_percent_nul(b"a=%00"));
        assert!(!has_percent_nul(b"a=%2500&b=%0A"));
        assert!(has_json_nul(br#"{"a":"x\u0000"}"#));
        assert!(has_json_nul(br#"{"a":"x\\\u0000"}"#));
        assert!(!has_json_nul(br#"{"a":"x\\u0000"}"#));
        assert!(!has_json_nul(br#"{"a":"u0000"}"#));
    }

    #[test]
    fn finds_text_that_is_not_utf8() {
        for ok in [
            &b"a=1&b=caf%C3%A9"[..],
            b"state=%EF%BF%BD",
            "x=café".as_bytes(),
            b"100%",
            b"a=%zz%4",
            b"/admin/api/v1/users/abc",
        ] {
            assert!(decodes_to_utf8(ok), "{ok:?}");
        }
        for bad in [
            &b"state=%FF"[..],
            b"a=%C3",
            b"a=\xff",
            b"a=%C3&b=%A9",
            b"%c0%af",
        ] {
            assert!(!decodes_to_utf8(bad), "{bad:?}");
        }
    }
}
