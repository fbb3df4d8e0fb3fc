//! The form parameters of the token, revocation and introspection endpoints
//! (`application/x-www-form-urlencoded`, RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1), with the
//! RFC 6749 §3.2 rule applied once, at the edge: no parameter may appear twice. Each endpoint then
//! reads its typed request from these (`grants::request::TokenRequest`, ...), never a map.

use std::collections::HashMap;
use std::fmt;

use super::error::{OAuthError, known};

/// The parameters of the token, revocation and introspection endpoints (RFC 6749 §4.1.3, §4.4.2,
/// §6, §2.3.1, RFC 7636 §4.5, RFC 7009 §2.1, RFC 7662 §2.1, RFC 8707 §2, RFC 7521 §4.2): the only
/// names an error description may repeat back.
const KNOWN: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "resource",
    "audience",
    "token",
    "token_type_hint",
];

/// Parameters by name, none repeated. They can hold secrets (`client_secret`, codes, tokens), so
/// `Debug` shows the names only.
pub struct FormParams(HashMap<String, String>);

impl FormParams {
    /// Collect raw pairs; a repeated parameter is `invalid_request` (RFC 6749 §3.2), named in
    /// the description only when it is one of ours.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Result<Self, OAuthError> {
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if map.contains_key(&k) {
                return Err(OAuthError::invalid_request(match known(&k, KNOWN) {
                    Some(name) => format!("parameter `{name}` is repeated").into(),
                    None => std::borrow::Cow::Borrowed("a parameter is repeated"),
                }));
            }
            map.insert(k, v);
        }
        Ok(Self(map))
    }

    /// The value of `name`, if sent (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name`, which must be sent and not empty (`invalid_request` otherwise).
    pub fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

impl fmt::Debug for FormParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("FormParams")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let e = FormParams::from_pairs(pairs(&[("a", "1"), ("a", "1")])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(e.description.as_deref(), Some("a parameter is repeated"));
        let e = FormParams::from_pairs(pairs(&[("scope", "a"), ("scope", "b")])).unwrap_err();
        assert_eq!(
            e.description.as_deref(),
            Some("parameter `scope` is repeated")
        );
        let p = FormParams::from_pairs(pairs(&[("a", "1"), ("b", "")])).unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some(""));
        assert_eq!(p.required("a").unwrap(), "1");
        assert_eq!(p.required("b").unwrap_err().code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn debug_shows_names_not_values() {
        let p = FormParams::from_pairs(pairs(&[("client_secret", "s3cret-value")])).unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains("client_secret"), "{shown}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
    }
}
