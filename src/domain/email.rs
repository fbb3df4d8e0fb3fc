//! E-mail addresses: kept as the person typed them, compared by one canonical form (RFC 8265
//! PRECIS-style, ASVS 6.2), so width, case and IDNA variants of an address name one account.
//!
//! The canonical form is the local part in NFKC with Unicode default case folding (NFKC again
//! after folding, so it is stable), `@`, and the domain in its IDNA (UTS 46) ASCII form, lower
//! case: `ＡＬＩＣＥ@Example.com`, `alice@example.com` and `Alice@EXAMPLE.COM.` would differ,
//! but `ａｌｉｃｅ@bücher.example` and `alice@xn--bcher-kva.example` are one address. The
//! unique index of the store is on this form ([`Email::canonical`]); mail goes to
//! [`Email::as_str`].

use std::fmt;
use std::hash::{Hash, Hasher};

use super::InvalidInput;

use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};

/// A syntactically valid e-mail address: as typed (trimmed, Unicode NFC, case kept) and in its
/// canonical form. Two `Email`s are equal when their canonical forms are.
#[derive(Debug, Clone)]
pub struct Email {
    address: String,
    canonical: String,
}

const SPECIALS: [char; 12] = ['@', '(', ')', '<', '>', ',', ';', ':', '"', '[', ']', '\\'];

impl Email {
    /// Parse an address to look an account up (or to store one that already exists).
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new("Enter an e-mail address."));
        }
        if trimmed.len() > 254 {
            return Err(InvalidInput::new("That e-mail address is too long."));
        }
        let invalid = || InvalidInput::new(format!("`{trimmed}` is not a valid e-mail address."));
        let address: String = trimmed.nfc().collect();
        let (local, domain) = address.rsplit_once('@').ok_or_else(invalid)?;
        let local_canonical = canonical_local(local);
        let domain_canonical = canonical_domain(domain).ok_or_else(invalid)?;
        let bad_text = |s: &str| s.chars().any(|c| c.is_whitespace() || c.is_control());
        let valid = !local.is_empty()
            && local.len() <= 64
            && !local_canonical.is_empty()
            && !bad_text(&address)
            && !bad_text(&local_canonical)
            && !local.contains(SPECIALS)
            && !local_canonical.contains(SPECIALS)
            && !domain.contains(SPECIALS);
        if !valid {
            return Err(invalid());
        }
        let canonical = format!("{local_canonical}@{domain_canonical}");
        if canonical.len() > 254 {
            return Err(InvalidInput::new("That e-mail address is too long."));
        }
        Ok(Self { address, canonical })
    }

    /// Parse an address someone wants to register (sign-up, e-mail change, an administrator's
    /// create or edit): [`Email::parse`], and refuse a local part or domain label that mixes
    /// scripts in a confusable way — letters of more than one of Latin, Cyrillic and Greek, whose
    /// look-alikes (a Cyrillic `а` among Latin letters) UTS 39 §5.2 keeps out of even "moderately
    /// restrictive" identifiers — since it would pass for another person's address.
    pub fn parse_new(input: &str) -> Result<Self, InvalidInput> {
        let email = Self::parse(input)?;
        let Some((local, domain)) = email.address.rsplit_once('@') else {
            return Err(InvalidInput::new("Enter an e-mail address."));
        };
        let local: String = local.nfkc().collect();
        let (unicode_domain, _) = idna::domain_to_unicode(domain);
        let mixed = std::iter::once(local.as_str())
            .chain(unicode_domain.split('.'))
            .any(mixes_confusable_scripts);
        if mixed {
            return Err(InvalidInput::new(format!(
                "`{}` mixes letters of different scripts (e.g. Cyrillic and Latin) that look \
                 alike; type the address in one script.",
                email.address
            )));
        }
        Ok(email)
    }

    /// The address as typed (trimmed, NFC): what is stored, shown and mailed to.
    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The canonical form: what accounts are looked up and kept unique by.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The local part's folding (NFKC, default case folding, NFKC) applied to any text: for
    /// matching part of an address against canonical forms (the administrators' search).
    pub fn fold(text: &str) -> String {
        let nfkc: String = text.nfkc().collect();
        caseless::default_case_fold_str(&nfkc).nfkc().collect()
    }
}

/// Whether `part` has letters of more than one of the look-alike alphabets: Latin, Cyrillic,
/// Greek (by the Unicode Script property; digits and punctuation belong to none).
fn mixes_confusable_scripts(part: &str) -> bool {
    let mut seen = [false; 3];
    for c in part.chars() {
        match c.script() {
            Script::Latin => seen[0] = true,
            Script::Cyrillic => seen[1] = true,
            Script::Greek => seen[2] = true,
            _ => {}
        }
    }
    seen.iter().filter(|s| **s).count() > 1
}

/// NFKC, default case folding, NFKC: width and case variants of a local part become one.
fn canonical_local(local: &str) -> String {
    Email::fold(local)
}

/// The IDNA (UTS 46) ASCII form of a domain, lower case, without a trailing dot; `None` when
/// it is not a valid domain name.
fn canonical_domain(domain: &str) -> Option<String> {
    if domain.is_empty()
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return None;
    }
    let ascii = idna::domain_to_ascii(domain).ok()?;
    let ok = !ascii.is_empty()
        && !ascii.starts_with('.')
        && !ascii.ends_with('.')
        && !ascii.contains("..")
        && ascii
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    ok.then(|| ascii.to_ascii_lowercase())
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for Email {}

impl Hash for Email {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn unicode_variants_are_one_address() {
        let composed = Email::parse("Jos\u{00E9}@example.com").unwrap();
        let decomposed = Email::parse("JOSE\u{0301}@EXAMPLE.COM").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(
            composed.as_str(),
            "Jos\u{00e9}@example.com",
            "kept as typed"
        );
        assert_eq!(composed.canonical(), "jos\u{00e9}@example.com");
    }

    #[test]
    fn width_case_and_idna_variants_share_the_canonical_form() {
        let plain = Email::parse("alice@example.com").unwrap();
        for variant in [
            "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}@example.com",
            "ALICE@EXAMPLE.COM",
            "alice@\u{FF45}xample.com",
        ] {
            let v = Email::parse(variant).unwrap();
            assert_eq!(v.canonical(), "alice@example.com", "{variant}");
            assert_eq!(v, plain);
            assert_eq!(v.as_str(), variant, "kept as typed");
        }
        let unicode = Email::parse("anna@b\u{00FC}cher.example").unwrap();
        let puny = Email::parse("Anna@XN--BCHER-KVA.example").unwrap();
        assert_eq!(unicode.canonical(), "anna@xn--bcher-kva.example");
        assert_eq!(unicode, puny);
        // Case folding goes beyond lower-casing.
        assert_eq!(
            Email::parse("STRA\u{1E9E}E@example.com").unwrap(),
            Email::parse("strasse@example.com").unwrap()
        );
    }

    #[test]
    fn confusable_mixed_scripts_are_refused_for_new_addresses() {
        // A Cyrillic а (U+0430) among Latin letters, in the local part and in the domain.
        // The domain also in its punycode form: checked as the Unicode it stands for.
        let puny = format!(
            "alice@{}",
            idna::domain_to_ascii("ex\u{0430}mple.com").unwrap()
        );
        for bad in [
            "\u{0430}lice@example.com",
            "alice@ex\u{0430}mple.com",
            puny.as_str(),
            "p\u{03B1}ypal@example.com",
        ] {
            assert!(Email::parse(bad).is_ok(), "still found: {bad}");
            let err = Email::parse_new(bad).unwrap_err();
            assert!(err.0.contains("scripts"), "{bad}: {err}");
        }
        for good in [
            "alice@example.com",
            "\u{0438}\u{0432}\u{0430}\u{043D}@\u{043F}\u{0440}\u{0438}\u{043C}\u{0435}\u{0440}.example",
            "anna@b\u{00FC}cher.example",
            "\u{5C71}\u{7530}taro@example.jp",
            "alice+tag_1.x-y@sub.example.com",
            "\u{03B1}\u{03BB}\u{03AD}\u{03BE}\u{03B7}\u{03C2}@example.gr",
        ] {
            assert!(Email::parse_new(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().canonical(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a nn@example.com",
            "ann@@x.com",
            "ann@x..com",
            "ann@.x",
            "ann@x.",
            "a\u{3000}nn@example.com",
            "ann\u{FF1C}@example.com",
            "ann@exa mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
