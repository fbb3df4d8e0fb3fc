//! Phone numbers in E.164 form (`+` and 8 to 15 digits, no leading zero), the one stored form.

use std::fmt;

use super::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Accepts international notation with the usual separators: `+66 81-234 5678`,
    /// `(+82) 10.1234.5678`, or a `00` international prefix.
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let bad = || {
            InvalidInput::new(
                "Enter the number in international form, starting with + and the country code.",
            )
        };
        let trimmed = input.trim();
        let mut rest = trimmed
            .strip_prefix('+')
            .map(|r| (true, r))
            .or_else(|| trimmed.strip_prefix("(+").map(|r| (true, r)))
            .or_else(|| trimmed.strip_prefix("00").map(|r| (true, r)))
            .ok_or_else(bad)?
            .1
            .to_owned();
        rest.retain(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'));
        let digits = rest.len();
        if !(8..=15).contains(&digits)
            || !rest.bytes().all(|b| b.is_ascii_digit())
            || rest.starts_with('0')
        {
            return Err(bad());
        }
        Ok(Self(format!("+{rest}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Phone;

    #[test]
    fn normalises_to_e164() {
        for (input, want) in [
            ("+66 81-234 5678", "+66812345678"),
            (" (+82) 10.1234.5678 ", "+821012345678"),
            ("0044 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(Phone::parse(input).unwrap().as_str(), want, "{input}");
        }
        for bad in [
            "",
            "0812345678",
            "+0812345678",
            "+1234",
            "+1234567890123456",
            "+66 8x",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }
}
