//! Where a form was posted from: defence in depth beside the CSRF token (OWASP ASVS 3.5, the
//! CSRF cheat sheet's "verifying origin with standard headers"). Every state-changing request to
//! a hosted page or an admin page passes here before its handler runs:
//!
//! - an `Origin` header must be the issuer's origin (`null`, sent by sandboxed frames, `data:`
//!   pages and privacy-stripped posts, is refused);
//! - without `Origin`, a `Referer` must be on the issuer's origin;
//! - with neither, the request passes (non-browser clients, privacy tools that strip both): the
//!   CSRF token still guards it.
//!
//! A refused request gets a 403 page and changes nothing. The protocol endpoints (`/authorize`,
//! `/token`, `/revoke`, `/introspect`, `/userinfo`, `/logout`) and the admin API are not forms
//! posted from our pages — relying parties and their servers call them from anywhere — and are
//! not routed through this check.
//!
//! Browsers send `Origin: null` on every form post from a page whose referrer policy is
//! `no-referrer` (Fetch §3.1, "append a request `Origin` header"), so the pages use
//! `same-origin` instead (see `web::router`): our own posts carry our origin, and no address of
//! ours reaches another site in a `Referer`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use url::Url;

use crate::web::state::AppState;

pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if safe || from_here(req.headers(), state.provider.issuer()) {
        return next.run(req).await;
    }
    tracing::info!("form post from another origin refused");
    state.templates.error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form was sent from another site, so nothing was changed. Go back to the page, \
         reload it and try again.",
    )
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is the issuer's origin, or
/// the request names neither.
fn from_here(headers: &HeaderMap, issuer: &str) -> bool {
    let Some(ours) = origin_of(issuer) else {
        return false;
    };
    let mut origins = headers.get_all(header::ORIGIN).iter();
    if let Some(first) = origins.next() {
        // One Origin header, exactly ours.
        return origins.next().is_none()
            && first
                .to_str()
                .is_ok_and(|o| o.trim().eq_ignore_ascii_case(&ours));
    }
    let mut referers = headers.get_all(header::REFERER).iter();
    match referers.next() {
        None => true,
        Some(first) => {
            referers.next().is_none()
                && first
                    .to_str()
                    .ok()
                    .and_then(|r| origin_of(r.trim()))
                    .is_some_and(|o| o.eq_ignore_ascii_case(&ours))
        }
    }
}

/// The ASCII serialisation of a URL's origin (`https://id.example.com`, the port only when it
/// is not the scheme's default), as browsers write it in `Origin`; `None` for an opaque origin.
fn origin_of(url: &str) -> Option<String> {
    let origin = Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(list: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in list {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn only_our_origin_passes() {
        let iss = "https://id.example.com/tenant";
        let ok = |l: &[(header::HeaderName, &str)]| from_here(&headers(l), iss);
        assert!(ok(&[]), "neither header: allowed");
        assert!(ok(&[(header::ORIGIN, "https://id.example.com")]));
        assert!(ok(&[(header::ORIGIN, "https://ID.example.com")]));
        assert!(ok(&[(
            header::REFERER,
            "https://id.example.com/login?rid=x"
        )]));
        assert!(ok(&[(header::REFERER, "https://id.example.com:443/login")]));
        for bad in [
            "https://evil.example",
            "null",
            "https://id.example.com.evil.example",
            "http://id.example.com",
            "https://id.example.com:8443",
            "",
        ] {
            assert!(!ok(&[(header::ORIGIN, bad)]), "Origin {bad:?}");
        }
        for bad in [
            "https://evil.example/https://id.example.com/",
            "https://id.example.com@evil.example/",
            "not a url",
            "data:text/html,x",
        ] {
            assert!(!ok(&[(header::REFERER, bad)]), "Referer {bad:?}");
        }
        // Origin decides when both are sent; two Origin headers are refused.
        assert!(!ok(&[
            (header::ORIGIN, "https://evil.example"),
            (header::REFERER, "https://id.example.com/")
        ]));
        assert!(!ok(&[
            (header::ORIGIN, "https://id.example.com"),
            (header::ORIGIN, "https://evil.example")
        ]));
    }
}
