//! OpenID Connect on top of the OAuth core: ID tokens, claims, userinfo, discovery,
//! hints, and logout (RP-initiated and back-channel).

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod hints;
pub mod id_token;
pub mod logout;
pub mod userinfo;
