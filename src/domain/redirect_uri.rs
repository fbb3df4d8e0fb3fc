//! Registered redirect URIs. Matching is exact string comparison (RFC 9700 §2.1), never partial.

use std::fmt;

use url::Url;

use super::InvalidInput;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Parse a URI for registration: absolute, no fragment (RFC 6749 §3.1.2), http only for
    /// loopback hosts (RFC 8252 §7.3), custom schemes only in reverse-domain form (RFC 8252 §7.1).
    pub fn parse(input: &str) -> Result<Self, InvalidInput> {
        let url = Url::parse(input).map_err(|e| {
            InvalidInput::new(format!(
                "redirect URI `{input}` is not an absolute URI ({e})"
            ))
        })?;
        if url.fragment().is_some() || input.contains('#') {
            return Err(InvalidInput::new(format!(
                "redirect URI `{input}` must not contain a fragment"
            )));
        }
        match url.scheme() {
            "https" => {}
            "http" => {
                let loopback = match url.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                if !loopback {
                    return Err(InvalidInput::new(format!(
                        "redirect URI `{input}` uses http on a non-loopback host; use https"
                    )));
                }
            }
            "javascript" | "data" | "file" | "vbscript" => {
                return Err(InvalidInput::new(format!(
                    "redirect URI `{input}` uses a forbidden scheme"
                )));
            }
            scheme if scheme.contains('.') => {}
            scheme => {
                return Err(InvalidInput::new(format!(
                    "redirect URI `{input}`: custom scheme `{scheme}` must be in reverse-domain form, e.g. com.example.app"
                )));
            }
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::RedirectUri;

    #[test]
    fn registration_rules() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:3000/cb",
            "http://localhost/cb",
            "http://[::1]:8000/cb",
            "com.example.app:/oauth",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "myapp:/cb",
            "not a uri",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }
}
