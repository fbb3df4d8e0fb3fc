//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validate the request, decide
//! whether the person must sign in, and issue a code.
//!
//! Order matters (RFC 6749 §4.1.2.1): until the client and its redirect URI are validated, errors
//! are shown on a page and never redirected; afterwards they go back to the client with `error`,
//! `state` and `iss` (RFC 9207).
//!
//! The `id_token_hint` (OIDC Core §3.1.2.1) is an ID token, which only `oidc` can verify: the
//! caller of [`validate`] passes the check in, so this core never imports `oidc`.

mod decision;
mod pending;
mod respond;
mod types;
mod validate;

pub use decision::{decide, decide_for_user, needs_consent, remember_consent};
pub use pending::{await_consent, peek_login_request, save_login_request, take_login_request};
pub use respond::{deny, error_callback, issue_code};
pub use types::{AuthorizationRequest, Callback, Decision, Rejection, ResponseMode};
pub use validate::validate;
