//! Authentication context classes (`acr`, OIDC Core §2): how strong a sign-in was, derived from
//! its RFC 8176 `amr` values. Relying parties ask for one with `acr_values` (OIDC Core
//! §3.1.2.1); discovery lists them in `acr_values_supported`.

/// One factor (a password, or a one-time code).
pub const ACR_PWD: &str = "urn:portcullis:acr:pwd";
/// Two factors: `mfa` among the `amr` values.
pub const ACR_MFA: &str = "urn:portcullis:acr:mfa";
/// Every value, weakest first.
pub const ACR_VALUES: &[&str] = &[ACR_PWD, ACR_MFA];

/// The `acr` of a sign-in with these `amr` values.
pub fn acr_of(amr: &[String]) -> &'static str {
    if is_mfa(amr) { ACR_MFA } else { ACR_PWD }
}

/// Whether these `amr` values record a sign-in with two factors.
pub fn is_mfa(amr: &[String]) -> bool {
    amr.iter().any(|a| a == "mfa")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_from_amr() {
        let amr = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(acr_of(&amr(&["pwd"])), ACR_PWD);
        assert_eq!(acr_of(&amr(&["otp", "sms"])), ACR_PWD);
        assert_eq!(acr_of(&amr(&["pwd", "otp", "mfa"])), ACR_MFA);
    }
}
