//! Authenticator-app codes (TOTP, RFC 6238 over HOTP, RFC 4226): HMAC-SHA-1, 6 digits, 30-second
//! steps from the Unix epoch — what authenticator apps expect. Codes come from `totp-rs`; this
//! module decides which steps are accepted (the current one and one either side, RFC 6238 §5.2)
//! and says which step matched, so the store can refuse that step and every older one afterwards.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::crypto::constant_time_eq;

/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per time step (RFC 6238 §4.1 `X`).
pub const STEP: i64 = 30;
/// Steps accepted either side of the current one (clock skew).
pub const SKEW: i64 = 1;
/// Bytes of a new key: 160 bits, the length RFC 4226 §4 recommends.
const KEY_BYTES: usize = 20;

/// A new random key, base32 (RFC 4648, no padding) as authenticator apps take it.
pub fn new_secret() -> String {
    let mut key = [0u8; KEY_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    Secret::Raw(key.to_vec()).to_encoded().to_string()
}

/// The time step `now` falls in.
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(STEP)
}

fn generator(secret: &str, digits: usize) -> Option<TOTP> {
    let key = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    Some(TOTP::new_unchecked(
        Algorithm::SHA1,
        digits,
        0,
        STEP as u64,
        key,
        None,
        String::new(),
    ))
}

/// The code of time step `step` for the base32 `secret`.
pub fn code_at_step(secret: &str, step: i64) -> Option<String> {
    let t = u64::try_from(step.checked_mul(STEP)?).ok()?;
    Some(generator(secret, DIGITS)?.generate(t))
}

/// The time step whose code `code` is, among the current one ± `SKEW`; `None` when it is none
/// of them (or not six digits). Every candidate is compared, in constant time.
pub fn matching_step(secret: &str, code: &str, now: i64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    for step in (current - SKEW)..=(current + SKEW) {
        if let Some(expected) = code_at_step(secret, step)
            && constant_time_eq(expected.as_bytes(), code.as_bytes())
        {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://totp/…` URI authenticator apps read from a QR code (Key Uri Format), labelled
/// `issuer:account` (a `:` inside either becomes a space).
pub fn otpauth_uri(secret: &str, issuer: &str, account: &str) -> Option<String> {
    let clean = |s: &str| s.replace(':', " ");
    let mut totp = generator(secret, DIGITS)?;
    totp.issuer = Some(clean(issuer));
    totp.account_name = clean(account);
    Some(totp.get_url())
}

/// The QR code of `uri` as an SVG document, rendered here (no outside service sees the secret).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1: the key is the ASCII "12345678901234567890", 8 digits.
    #[test]
    fn rfc6238_test_vectors() {
        let secret = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        let totp = generator(&secret, 8).expect("generator");
        for (t, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(t), code, "T = {t}");
        }
        // Six digits are the last six of the eight (RFC 4226 §5.3: modulo 10^Digit).
        assert_eq!(code_at_step(&secret, 59 / STEP).as_deref(), Some("287082"));
    }

    #[test]
    fn one_step_of_skew_each_way_and_no_more() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let step = step_of(now);
        for d in -1..=1 {
            let code = code_at_step(&secret, step + d).expect("code");
            assert_eq!(matching_step(&secret, &code, now), Some(step + d));
        }
        for d in [-2, 2] {
            let code = code_at_step(&secret, step + d).expect("code");
            assert_eq!(matching_step(&secret, &code, now), None, "step {d}");
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "12345a", now), None);
    }

    #[test]
    fn uri_and_qr() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let uri = otpauth_uri(&secret, "auth.example.com", "ann@example.com").expect("uri");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={secret}")), "{uri}");
        let svg = qr_svg(&uri).expect("svg");
        assert!(svg.contains("<svg"));
    }
}
