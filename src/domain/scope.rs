//! Scope values (RFC 6749 §3.3): space-delimited, case-sensitive, order kept, no duplicates.

use std::fmt;

use super::InvalidInput;

/// The scopes this provider understands.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "offline_access",
    "groups",
    ADMIN_SCOPE,
];

/// What a scope lets the application do, in plain words, for the consent page.
pub fn scope_description(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm your identity",
        "profile" => "See your name, picture and language",
        "email" => "See your e-mail address",
        "phone" => "See your phone number",
        "offline_access" => "Keep access while you are away",
        "groups" => "See the groups you belong to",
        ADMIN_SCOPE => "Administer Portcullis on your behalf",
        _ => "Other access",
    }
}

/// Grants the administration API (`/admin/api/v1`). Only clients whose allowed scopes list it
/// can request it; in the authorization code flow it is granted only to users with the `admin`
/// role (dropped from the granted scope otherwise, RFC 6749 §3.3).
pub const ADMIN_SCOPE: &str = "portcullis:admin";

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(Vec<String>);

impl Scope {
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let mut out: Vec<String> = Vec::new();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(InvalidInput::new("scope contains invalid characters"));
            }
            if !out.iter().any(|t| t == token) {
                out.push(token.to_owned());
            }
        }
        Ok(Self(out))
    }

    pub fn from_list<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        let mut out: Vec<String> = Vec::new();
        for s in items {
            let s = s.into();
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Self(out)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Every value of `self` is in `other`.
    pub fn is_subset_of(&self, other: &[String]) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl TryFrom<String> for Scope {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> Self {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn parses_dedupes_and_rejects_bad_chars() {
        let s = Scope::parse("openid  email openid").unwrap();
        assert_eq!(s.to_string(), "openid email");
        assert!(s.contains("email"));
        assert!(Scope::parse("open\"id").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
    }
}
