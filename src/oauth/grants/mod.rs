//! The grants of the token endpoint, one file per grant type (RFC 6749 §4.1.3, §4.4, §6).
//!
//! Dependencies point one way: each grant reads its typed request from [`request`] and returns a
//! [`common::GrantOutcome`]; no grant imports another, and neither shared module imports a grant.
//! The dispatch lives in `oauth::token`. A grant never builds an ID token: its outcome says whether
//! one is due and what it must state, and the token endpoint has `oidc` compose it.

pub mod authorization_code;
pub mod client_credentials;
pub mod common;
pub mod refresh_token;
pub mod request;
