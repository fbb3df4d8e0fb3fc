//! Pure domain types: parsed once at the edge ("parse, don't validate"), no I/O.

pub mod acr;
mod client;
mod email;
mod password;
mod phone;
mod redirect_uri;
mod scope;
mod user;

pub use client::{Client, ClientKind, GrantType, SigningAlgorithm, TokenEndpointAuthMethod};
pub use email::Email;
pub use password::Password;
pub use phone::Phone;
pub use redirect_uri::RedirectUri;
pub use scope::{ADMIN_SCOPE, SUPPORTED_SCOPES, Scope, scope_description};
pub use user::{NewUser, User};

/// Why an input was refused; the message is safe to show to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

impl InvalidInput {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}
