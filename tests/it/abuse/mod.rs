//! Issue 19 item 9: the regression suite of the 61 abuse cases. `docs/abuse-cases.md` lists every
//! case with the test that guards it; most are guarded where their feature is tested (flow,
//! tokens, sessions, accounts, hardening, ...). The cases no other suite covered live here, each
//! test named after its case, on both databases:
//!
//! - `redirect`: redirect-URI variants and the PKCE downgrade;
//! - `forged`: forged and confused access tokens at `/userinfo` and `/introspect`;
//! - `input`: oversized input, a logout confirmation posted from another site, anti-framing
//!   headers on every kind of response.

mod forged;
mod input;
mod redirect;
