//! Clients: list, create, edit, rotate the secret (shown once), disable/enable, delete. The
//! admin API, the management pages and the CLI (`portcullis client …`) call these same
//! functions; the registration rules they apply are in [`rules`].

mod rules;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Actor, AdminCtx, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::config::Settings;
use crate::crypto::{hash_secret, random_secret};
use crate::domain::{Client, InvalidInput, TokenEndpointAuthMethod};
use crate::store::StoreError;

pub use rules::{ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL};

/// A client as the admin sees it: never its secret or the secret's hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientOut {
    pub client_id: String,
    pub name: String,
    /// `confidential` or `public`.
    pub kind: &'static str,
    pub token_endpoint_auth_method: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audiences: Vec<String>,
    /// Browser origins registered for CORS (empty: the default, see `allowed_origins`).
    pub web_origins: Vec<String>,
    /// The origins CORS answers for: `web_origins`, or for a public client that lists none, the
    /// origins of its http(s) redirect URIs. Read-only.
    pub allowed_origins: Vec<String>,
    pub require_consent: bool,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    pub id_token_signed_response_alg: Option<&'static str>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

impl From<&Client> for ClientOut {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.id.clone(),
            name: c.name.clone(),
            kind: if c.token_endpoint_auth_method == TokenEndpointAuthMethod::None {
                "public"
            } else {
                "confidential"
            },
            token_endpoint_auth_method: c.token_endpoint_auth_method.as_str(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            audiences: c.audiences.clone(),
            web_origins: c.web_origins.clone(),
            allowed_origins: c.allowed_origins(),
            require_consent: c.require_consent,
            access_token_ttl: c.access_token_ttl,
            refresh_token_idle_ttl: c.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: c.refresh_token_absolute_ttl,
            id_token_signed_response_alg: c.id_token_signed_response_alg.map(|a| a.as_str()),
            created_at: c.created_at,
            updated_at: c.updated_at,
            disabled_at: c.disabled_at,
        }
    }
}

/// A client's settings, for create (all but `name` optional) and for edit (absent = unchanged).
/// Nullable numbers and URIs are cleared with `0` / `""`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    pub name: Option<String>,
    /// `client_secret_basic` (default), `client_secret_post`, or `none` (public client). Fixed
    /// after creation.
    pub token_endpoint_auth_method: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    /// Browser origins (`https://app.example.com`, no path) allowed to call the token,
    /// userinfo, revocation and introspection endpoints; `[]` returns to the default.
    pub web_origins: Option<Vec<String>>,
    pub require_consent: Option<bool>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    pub id_token_signed_response_alg: Option<String>,
}

/// A created client or a rotated secret: the secret appears here once and is stored only hashed.
/// `Debug` never shows it.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct WithSecret {
    #[serde(flatten)]
    pub client: ClientOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl fmt::Debug for WithSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithSecret")
            .field("client", &self.client)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

pub async fn list<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    q: Option<&str>,
    after: Option<(&str, &str)>,
    limit: i64,
) -> AdminResult<Vec<ClientOut>> {
    if q.is_some_and(|q| q.len() > 256) {
        return Err(AdminError::invalid("q", "search text is too long"));
    }
    Ok(ctx
        .into()
        .store
        .list_clients_page(q, after, limit)
        .await?
        .iter()
        .map(ClientOut::from)
        .collect())
}

async fn load(ctx: AdminCtx<'_>, id: &str) -> AdminResult<Client> {
    ctx.store
        .find_client(id)
        .await?
        .ok_or(AdminError::NotFound("client"))
}

pub async fn get<'a>(ctx: impl Into<AdminCtx<'a>>, id: &str) -> AdminResult<ClientOut> {
    Ok((&load(ctx.into(), id).await?).into())
}

/// A new client from `input`, validated by every registration rule, without a secret yet.
fn build(settings: &Settings, input: &ClientInput) -> AdminResult<Client> {
    if input.name.is_none() {
        return Err(AdminError::invalid("name", "is required"));
    }
    let method: TokenEndpointAuthMethod = input
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic")
        .parse()
        .map_err(|e: InvalidInput| AdminError::invalid("token_endpoint_auth_method", e.0))?;
    let mut client = Client::new(
        crate::crypto::new_client_id(),
        String::new(),
        method,
        crate::now(),
    );
    rules::apply(settings.allow_insecure_http, &mut client, input)?;
    Ok(client)
}

/// Check `input` as `create` would, without touching the store (the CLI refuses bad flags before
/// it opens the database).
pub fn validate_new(settings: &Settings, input: &ClientInput) -> AdminResult<()> {
    build(settings, input).map(drop)
}

pub async fn create<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    input: ClientInput,
) -> AdminResult<WithSecret> {
    let ctx = ctx.into();
    let mut client = build(ctx.settings, &input)?;
    let secret = (client.token_endpoint_auth_method != TokenEndpointAuthMethod::None)
        .then(|| random_secret(32));
    client.secret_hash = secret.as_deref().map(hash_secret);
    match ctx.store.create_client(&client).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict("client id already taken".into()));
        }
        Err(e) => return Err(e.into()),
    }
    ctx.clients.invalidate(&client.id);
    let out = ClientOut::from(&client);
    audit::record(
        ctx.store,
        actor
            .event(action::ADMIN_CLIENT_CREATE)
            .target(&client.id)
            .client(&client.id)
            .detail(
                "settings",
                serde_json::to_value(&out).unwrap_or(Value::Null),
            ),
    )
    .await;
    Ok(WithSecret {
        client: out,
        client_secret: secret,
    })
}

pub async fn update<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    id: &str,
    input: ClientInput,
) -> AdminResult<ClientOut> {
    let ctx = ctx.into();
    let mut client = load(ctx, id).await?;
    if let Some(m) = &input.token_endpoint_auth_method
        && m != client.token_endpoint_auth_method.as_str()
    {
        let new: TokenEndpointAuthMethod = m
            .parse()
            .map_err(|e: InvalidInput| AdminError::invalid("token_endpoint_auth_method", e.0))?;
        // Switching between the two secret methods is harmless; public ⇄ confidential is not.
        if (new == TokenEndpointAuthMethod::None)
            != (client.token_endpoint_auth_method == TokenEndpointAuthMethod::None)
        {
            return Err(AdminError::invalid(
                "token_endpoint_auth_method",
                "a client cannot change between public and confidential; create a new one",
            ));
        }
        client.token_endpoint_auth_method = new;
    }
    let before = ClientOut::from(&client);
    rules::apply(ctx.settings.allow_insecure_http, &mut client, &input)?;
    client.updated_at = crate::now();
    let updated = ctx.store.update_client(&client).await?;
    ctx.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    let after = ClientOut::from(&client);
    record_changes(ctx, actor, action::ADMIN_CLIENT_UPDATE, &before, &after).await;
    Ok(after)
}

async fn record_changes(
    ctx: AdminCtx<'_>,
    actor: &Actor,
    act: &'static str,
    before: &ClientOut,
    after: &ClientOut,
) {
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return;
    };
    let mut changes = Map::new();
    for (k, av) in &a {
        if k == "updated_at" {
            continue;
        }
        let bv = b.get(k).cloned().unwrap_or(Value::Null);
        if &bv != av {
            changes.insert(k.clone(), json!({ "before": bv, "after": av }));
        }
    }
    if changes.is_empty() {
        return;
    }
    audit::record(
        ctx.store,
        actor
            .event(act)
            .target(&after.client_id)
            .client(&after.client_id)
            .detail("changes", Value::Object(changes)),
    )
    .await;
}

/// A new secret for a confidential client; the old one stops working at once.
pub async fn rotate_secret<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    id: &str,
) -> AdminResult<WithSecret> {
    let ctx = ctx.into();
    let mut client = load(ctx, id).await?;
    if client.token_endpoint_auth_method == TokenEndpointAuthMethod::None {
        return Err(AdminError::Conflict("a public client has no secret".into()));
    }
    let secret = random_secret(32);
    client.secret_hash = Some(hash_secret(&secret));
    client.updated_at = crate::now();
    let updated = ctx.store.update_client(&client).await?;
    ctx.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    audit::record(
        ctx.store,
        actor
            .event(action::ADMIN_CLIENT_SECRET_ROTATE)
            .target(&client.id)
            .client(&client.id),
    )
    .await;
    Ok(WithSecret {
        client: (&client).into(),
        client_secret: Some(secret),
    })
}

pub async fn set_disabled<'a>(
    ctx: impl Into<AdminCtx<'a>>,
    actor: &Actor,
    id: &str,
    disabled: bool,
) -> AdminResult<ClientOut> {
    let ctx = ctx.into();
    let mut client = load(ctx, id).await?;
    let before = ClientOut::from(&client);
    let now = crate::now();
    client.disabled_at = match (disabled, client.disabled_at) {
        (true, None) => Some(now),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    };
    client.updated_at = now;
    let updated = ctx.store.update_client(&client).await?;
    ctx.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    let after = ClientOut::from(&client);
    record_changes(ctx, actor, action::ADMIN_CLIENT_UPDATE, &before, &after).await;
    Ok(after)
}

pub async fn delete<'a>(ctx: impl Into<AdminCtx<'a>>, actor: &Actor, id: &str) -> AdminResult<()> {
    let ctx = ctx.into();
    let client = load(ctx, id).await?;
    ctx.store.delete_client(id).await?;
    ctx.clients.invalidate(id);
    audit::record(
        ctx.store,
        actor
            .event(action::ADMIN_CLIENT_DELETE)
            .target(&client.id)
            .client(&client.id)
            .detail("name", client.name),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let client = Client::new(
            "c".into(),
            "n".into(),
            TokenEndpointAuthMethod::ClientSecretBasic,
            0,
        );
        let shown = WithSecret {
            client: ClientOut::from(&client),
            client_secret: Some("s3cr3t-value-shown-once".into()),
        };
        let text = format!("{shown:?}");
        assert!(!text.contains("s3cr3t-value-shown-once"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
