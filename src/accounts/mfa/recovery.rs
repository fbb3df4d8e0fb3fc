//! Recovery codes: ten single-use codes made when an authenticator app is set up, shown once,
//! stored only as SHA-256 (bound to the account), each usable once instead of an app code.
//! Ten characters of Crockford's base32 (50 random bits), shown as `xxxxx-xxxxx`; typed in any
//! case, with or without the dash or spaces, `o` read as `0` and `i`/`l` as `1`.

use rand::Rng;

use crate::crypto::hash_secret;

/// Codes made at a time.
pub const COUNT: usize = 10;
const LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// `COUNT` new codes, as shown to the person.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let raw: String = (0..LEN)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect();
            format!("{}-{}", &raw[..LEN / 2], &raw[LEN / 2..])
        })
        .collect()
}

/// The canonical form of a typed code, or `None` when it cannot be one.
pub fn normalise(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == LEN).then_some(out)
}

/// What is stored for the (normalised) code `code` of `user_id`.
pub fn hash(user_id: &str, code: &str) -> String {
    hash_secret(&format!("portcullis-recovery:{user_id}:{code}"))
}

/// The stored forms of `codes` (as `generate` shows them).
pub fn hashes(user_id: &str, codes: &[String]) -> Vec<String> {
    codes
        .iter()
        .filter_map(|c| normalise(c))
        .map(|c| hash(user_id, &c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_read_back_in_any_form() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut set = std::collections::HashSet::new();
        for c in &codes {
            assert_eq!(c.len(), LEN + 1);
            assert!(set.insert(c.clone()));
            let n = normalise(c).expect("normalises");
            assert_eq!(normalise(&c.to_uppercase()), Some(n.clone()));
            assert_eq!(normalise(&c.replace('-', " ")), Some(n));
        }
        assert_eq!(hashes("u", &codes).len(), COUNT);
        assert_eq!(normalise("ABCDE-FGHOI"), Some("abcdefgh01".into()));
        assert_eq!(normalise("abcde-fghu1"), None, "u is not in the alphabet");
        assert_eq!(normalise("abcde"), None);
        assert_eq!(normalise("abcde-fghjk-m"), None);
        assert_ne!(hash("u1", "abcdefgh01"), hash("u2", "abcdefgh01"));
    }
}
