//! What an account flow answers when it does not succeed: input to correct (per field), a limit
//! reached, a refusal with the words to show, or an internal failure (logged once, by the web
//! layer, and shown as a generic page).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::crypto::password::HashError;
use crate::email::MailError;
use crate::store::StoreError;

/// Messages for a person, by form field. Serialised as a map from field name to message.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    /// One field's message.
    pub fn one(field: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    /// Add a message for `field` (the first one for a field is kept).
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// The first message, for forms that show one message at a time.
    pub fn first(&self) -> Option<&str> {
        self.0.values().next().map(String::as_str)
    }

    /// `Ok` when there is no message, else `AccountError::Invalid`.
    pub fn into_result(self) -> Result<(), AccountError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(AccountError::Invalid(self))
        }
    }
}

/// A request refused as a whole, with what to tell the person (an HTTP-free status code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub title: &'static str,
    pub message: &'static str,
    /// Where to go next: `(path, link text)`.
    pub link: Option<(&'static str, &'static str)>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Input to correct; the form is shown again with these messages.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// Too many attempts from this address or for this account (already audited).
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    /// Refused (a dead link, a closed sign-up …): a page with these words.
    #[error("refused: {}", .0.title)]
    Refused(Refusal),
    /// The database cannot be reached: 503 with `Retry-After`; nothing was changed.
    #[error("database unavailable")]
    Unavailable,
    /// Something failed on our side; the details are for the log only.
    #[error("{what}: {source}")]
    Internal {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

pub type AccountResult<T> = Result<T, AccountError>;

impl AccountError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::one(field, message))
    }

    pub fn internal(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            what,
            source: source.into(),
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return Self::Unavailable;
        }
        Self::internal("database", e)
    }
}

impl From<MailError> for AccountError {
    fn from(e: MailError) -> Self {
        Self::internal("cannot build mail", e)
    }
}

impl From<HashError> for AccountError {
    fn from(e: HashError) -> Self {
        Self::internal("password hashing", e)
    }
}
