//! Passwords as typed by a person; never logged, never stored.

use std::fmt;

use std::collections::HashSet;
use std::sync::LazyLock;

use super::{Email, InvalidInput};

/// The 30,000 most common passwords, lower-cased (see `assets/README.md` for the source).
const COMMON_PASSWORDS: &str = include_str!("../../assets/common-passwords.txt");

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| COMMON_PASSWORDS.lines().map(str::trim).collect());

/// Whether `password` is on the shipped list of common passwords (case-insensitive).
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longer inputs are refused before hashing so nobody can make the hasher work for nothing.
pub const MAX_PASSWORD_BYTES: usize = 128;

/// A password that meets the length policy. `Debug` prints no secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MAX_BYTES: usize = MAX_PASSWORD_BYTES;

    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        if input.len() > MAX_PASSWORD_BYTES {
            return Err(InvalidInput::new(format!(
                "Use at most {MAX_PASSWORD_BYTES} characters."
            )));
        }
        if input.chars().count() < MIN_PASSWORD_CHARS {
            return Err(InvalidInput::new(format!(
                "Use at least {MIN_PASSWORD_CHARS} characters."
            )));
        }
        Ok(Self(input.to_owned()))
    }

    /// A password chosen for an account (sign-up, reset, change): the length policy, not on
    /// the list of common passwords, and not the account's e-mail address.
    pub fn parse_new(input: &str, email: &Email) -> Result<Self, InvalidInput> {
        let pw = Self::parse(input)?;
        if is_common(input) {
            return Err(InvalidInput::new(
                "This password is too common. Choose one that is harder to guess.",
            ));
        }
        if input.trim().to_lowercase() == email.as_str()
            || Email::parse(input).is_ok_and(|e| &e == email)
        {
            return Err(InvalidInput::new(
                "Your password must not be your e-mail address.",
            ));
        }
        Ok(pw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_refuse_common_and_email() {
        let email = Email::parse("ann@example.com").unwrap();
        assert!(COMMON.len() >= 10_000);
        assert!(Password::parse_new("password1", &email).is_err());
        assert!(Password::parse_new("PASSWORD1", &email).is_err());
        assert!(Password::parse_new("Ann@Example.com", &email).is_err());
        assert!(Password::parse_new("correct horse battery", &email).is_ok());
    }

    #[test]
    fn length_policy() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        let p = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{p:?}"), "Password([redacted])");
    }
}
