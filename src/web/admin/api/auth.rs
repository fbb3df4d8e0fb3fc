//! Who may call the admin API: a Bearer access token issued by this provider (RFC 6750 §2.1)
//! carrying scope `portcullis:admin`, for either
//! - a user who holds the `admin` role *now* (checked on every request, not from the token, so a
//!   demoted or disabled admin loses access at once), or
//! - a client (a client-credentials token, `sub` = `client_id`) that is active and whose allowed
//!   scopes include `portcullis:admin`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::admin::{ADMIN_ROLE, Actor};
use crate::domain::ADMIN_SCOPE;
use crate::oauth::access_token;
use crate::web::client_addr::ClientIp;
use crate::web::state::AppState;

/// An authenticated administrator; handlers take it as an extractor.
pub struct Admin(pub Actor);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Problem::unauthorized(false))?;
        let provider = &state.provider;
        let claims = access_token::validate(provider, token, provider.clock.now())
            .await
            .map_err(|e| match e {
                access_token::InvalidToken::Unavailable => Problem::unavailable(),
                _ => Problem::unauthorized(true),
            })?;
        if !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(Problem::insufficient_scope(
                "the token does not carry scope portcullis:admin",
            ));
        }
        let origin = crate::audit::Origin {
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect()),
        };
        let store = &provider.store;
        let failed = |e: crate::store::StoreError| {
            if e.is_unavailable() {
                tracing::warn!(error = %e, "admin API: database unavailable");
                return Problem::unavailable();
            }
            tracing::error!(error = %e, "admin API: cannot load the caller");
            Problem::internal()
        };
        if claims.sub == claims.client_id {
            let client = store.find_client(&claims.sub).await.map_err(failed)?;
            match client {
                Some(c) if c.is_active() && c.scopes.iter().any(|s| s == ADMIN_SCOPE) => {
                    Ok(Admin(Actor::client(&c.id, origin)))
                }
                _ => Err(Problem::insufficient_scope(
                    "this client is not allowed the admin API",
                )),
            }
        } else {
            let user = store.find_user(&claims.sub).await.map_err(failed)?;
            match user {
                Some(u) if u.is_active() && u.has_role(ADMIN_ROLE) => {
                    Ok(Admin(Actor::user(&u.id, origin)))
                }
                _ => Err(Problem::insufficient_scope(
                    "the user is not an administrator",
                )),
            }
        }
    }
}
