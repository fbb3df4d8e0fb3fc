//! CSRF protection for hosted forms: the signed double-submit cookie of the OWASP cheat sheet.
//! A random value lives in an HttpOnly, SameSite=Lax cookie (`__Host-` prefixed on https); each
//! form carries HMAC-SHA256(server key, value), checked in constant time on submit. A cross-site
//! page can neither read the cookie nor compute the token.
//!
//! Why not a crate: `axum_csrf` runs argon2 on every render and check (~20 ms and 19 MiB each),
//! and `axum-csrf-sync-pattern` targets axum 0.6 and header-borne tokens only. The primitives
//! here (random value, HMAC, constant-time compare) come from `rand`, `hmac` and `subtle`.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::crypto::random_secret;
use crate::web::state::AppState;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8; 32], value: &str) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"portcullis-csrf:");
    m.update(value.as_bytes());
    m
}

/// The token for this browser's CSRF cookie, creating the cookie when there is none.
pub fn token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    let name = state.cookies.csrf;
    let (jar, value) = match jar
        .get(name)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() >= 43)
    {
        Some(v) => (jar, v),
        None => {
            let v = random_secret(32);
            let cookie = Cookie::build((name, v.clone()))
                .path("/")
                .http_only(true)
                .secure(state.cookies.secure)
                .same_site(SameSite::Lax)
                .build();
            (jar.add(cookie), v)
        }
    };
    let tag = mac(&state.csrf_key, &value).finalize().into_bytes();
    (jar, URL_SAFE_NO_PAD.encode(tag))
}

/// Whether `submitted` is the token for this browser's CSRF cookie.
pub fn verify(state: &AppState, jar: &CookieJar, submitted: &str) -> bool {
    let Some(cookie) = jar.get(state.cookies.csrf) else {
        return false;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(submitted) else {
        return false;
    };
    mac(&state.csrf_key, cookie.value())
        .verify_slice(&tag)
        .is_ok()
}
