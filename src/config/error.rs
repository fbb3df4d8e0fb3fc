//! Configuration errors: one line naming the key, the problem and the fix.

/// A configuration problem, displayed as one line: the key, what is wrong, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {problem}; fix: {fix}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub(super) fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
