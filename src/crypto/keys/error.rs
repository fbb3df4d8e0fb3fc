//! Errors of the key set: loading and signing ([`KeyError`]), and verification ([`VerifyError`]).

use std::path::PathBuf;

use crate::domain::SigningAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `origin`: `key file PATH`, or `signing key KID in the database`.
    #[error("{origin}: {reason}")]
    Invalid { origin: String, reason: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("no signing key for {0}")]
    NoKey(SigningAlgorithm),
}

/// Why a presented JWT was not accepted. Deliberately coarse: callers answer `invalid_token`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown key")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
}
