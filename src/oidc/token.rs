//! The token endpoint's OpenID Connect half (OIDC Core §3.1.3.3, §12.2): a grant's outcome says
//! whether an ID token is due and what it must state; this signs it and builds the response.

use super::id_token::{self, IdTokenInput};
use crate::domain::Client;
use crate::oauth::token::{GrantOutcome, TokenResponse};
use crate::oauth::{OAuthError, Provider};

/// The successful token response for `outcome`, with its ID token when one is due.
pub fn respond(
    provider: &Provider,
    client: &Client,
    outcome: GrantOutcome,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let id_token = match &outcome.id_token {
        None => None,
        Some(context) => Some(id_token::mint(
            provider,
            &IdTokenInput {
                client,
                context,
                access_token: Some(&outcome.access_token),
            },
            now,
        )?),
    };
    Ok(TokenResponse::new(outcome, id_token))
}
