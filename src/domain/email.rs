//! E-mail addresses in one normalised form, so case variants cannot make duplicate accounts.

use std::fmt;

use super::InvalidInput;

use unicode_normalization::UnicodeNormalization;

/// A syntactically valid e-mail address in its one stored form: trimmed, Unicode NFC, then
/// lower-cased, so `Ann@Example.com` and a decomposed `é` cannot make a second account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new("Enter an e-mail address."));
        }
        if trimmed.len() > 254 {
            return Err(InvalidInput::new("That e-mail address is too long."));
        }
        let normalised: String = trimmed.nfc().collect::<String>().to_lowercase();
        let valid = match normalised.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.is_empty()
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
                    && !normalised
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control())
                    && !domain
                        .contains(['@', '(', ')', '<', '>', ',', ';', ':', '"', '[', ']', '\\'])
                    && !local
                        .contains(['@', '(', ')', '<', '>', ',', ';', ':', '"', '[', ']', '\\'])
            }
            None => false,
        };
        if valid {
            Ok(Self(normalised))
        } else {
            Err(InvalidInput::new(format!(
                "`{trimmed}` is not a valid e-mail address."
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
        assert_eq!(composed.as_str(), "jos\u{00e9}@example.com");
    }

    #[test]
    fn normalises_and_validates() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
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
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
