//! Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2): built once from the settings and
//! listing only what this build actually does. The test suite parses it with the `openidconnect`
//! crate's `CoreProviderMetadata`, so the shape stays what relying parties expect; the server keeps
//! its own serde type to avoid linking that client library (and its `rsa` dependency) into the
//! provider binary.

use serde::Serialize;

use super::claims::CLAIMS_SUPPORTED;
use crate::config::Settings;
use crate::domain::{SUPPORTED_SCOPES, SigningAlgorithm};

#[derive(Debug, Serialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub end_session_endpoint: String,
    pub scopes_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<&'static str>,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: Vec<&'static str>,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    pub frontchannel_logout_supported: bool,
}

pub fn metadata(settings: &Settings) -> ProviderMetadata {
    let iss = settings.issuer();
    ProviderMetadata {
        issuer: iss.to_owned(),
        authorization_endpoint: format!("{iss}/authorize"),
        token_endpoint: format!("{iss}/token"),
        userinfo_endpoint: format!("{iss}/userinfo"),
        jwks_uri: format!("{iss}/jwks.json"),
        revocation_endpoint: format!("{iss}/revoke"),
        // Public clients may revoke their own tokens with their client_id (RFC 7009 §2.1).
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint: format!("{iss}/introspect"),
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        scopes_supported: SUPPORTED_SCOPES.to_vec(),
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query", "form_post"],
        grant_types_supported: vec!["authorization_code", "refresh_token", "client_credentials"],
        end_session_endpoint: format!("{iss}/logout"),
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: SigningAlgorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .collect(),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        code_challenge_methods_supported: vec!["S256"],
        claims_supported: CLAIMS_SUPPORTED.to_vec(),
        acr_values_supported: crate::domain::acr::ACR_VALUES.to_vec(),
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        authorization_response_iss_parameter_supported: true,
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        // Back-Channel Logout 1.0 §2.1: logout tokens carry `sid`.
        backchannel_logout_supported: true,
        backchannel_logout_session_supported: true,
        frontchannel_logout_supported: false,
    }
}
