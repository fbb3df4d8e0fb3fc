//! OpenID Connect on top of the OAuth core: ID tokens, claims, userinfo, discovery,
//! hints, the ID token of a token response, and logout (RP-initiated and back-channel).

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod hints;
pub mod id_token;
pub mod logout;
pub mod token;
pub mod userinfo;
