//! Clients: list, create, edit, rotate the secret (shown once), disable/enable, delete.
//! Validation follows registration rules: redirect URIs absolute, no fragment, http only on
//! loopback (RFC 8252 §7.3) unless `allow_insecure_http` is set; known grant types and scopes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Actor, AdminError, AdminResult};
use crate::audit::{self, action};
use crate::crypto::{hash_secret, random_secret};
use crate::domain::{
    Client, GrantType, RedirectUri, SUPPORTED_SCOPES, SigningAlgorithm, TokenEndpointAuthMethod,
};
use crate::oauth::Provider;
use crate::store::StoreError;

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
    pub require_consent: Option<bool>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    pub id_token_signed_response_alg: Option<String>,
}

/// A created client or a rotated secret: the secret appears here once and is stored only hashed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WithSecret {
    #[serde(flatten)]
    pub client: ClientOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

pub async fn list(
    provider: &Provider,
    q: Option<&str>,
    after: Option<(&str, &str)>,
    limit: i64,
) -> AdminResult<Vec<ClientOut>> {
    if q.is_some_and(|q| q.len() > 256) {
        return Err(AdminError::invalid("q", "search text is too long"));
    }
    Ok(provider
        .store
        .list_clients_page(q, after, limit)
        .await?
        .iter()
        .map(ClientOut::from)
        .collect())
}

async fn load(provider: &Provider, id: &str) -> AdminResult<Client> {
    provider
        .store
        .find_client(id)
        .await?
        .ok_or(AdminError::NotFound("client"))
}

pub async fn get(provider: &Provider, id: &str) -> AdminResult<ClientOut> {
    Ok((&load(provider, id).await?).into())
}

fn uris(provider: &Provider, field: &str, list: &[String]) -> AdminResult<Vec<String>> {
    if list.len() > 50 {
        return Err(AdminError::invalid(field, "at most 50 URIs"));
    }
    let mut out = Vec::with_capacity(list.len());
    for u in list {
        out.push(uri(provider, field, u)?);
    }
    Ok(out)
}

fn uri(provider: &Provider, field: &str, u: &str) -> AdminResult<String> {
    if u.len() > 2000 {
        return Err(AdminError::invalid(field, "URI is too long"));
    }
    match RedirectUri::parse(u) {
        Ok(r) => Ok(r.as_str().to_owned()),
        // An http URI on a non-loopback host is acceptable only where the operator allowed
        // insecure http for the whole server (test setups).
        Err(e) if provider.settings.allow_insecure_http => {
            let parsed = url::Url::parse(u).map_err(|_| AdminError::invalid(field, e.0.clone()))?;
            if parsed.scheme() == "http" && parsed.fragment().is_none() && !u.contains('#') {
                Ok(u.to_owned())
            } else {
                Err(AdminError::invalid(field, e.0))
            }
        }
        Err(e) => Err(AdminError::invalid(field, e.0)),
    }
}

fn ttl(field: &str, v: Option<i64>, current: Option<i64>, max: i64) -> AdminResult<Option<i64>> {
    match v {
        None => Ok(current),
        Some(0) => Ok(None),
        Some(n) if (30..=max).contains(&n) => Ok(Some(n)),
        Some(_) => Err(AdminError::invalid(
            field,
            format!("use 0 (server default) or 30 to {max} seconds"),
        )),
    }
}

/// Apply `input` over `c` (a fresh default for create), validating every field given.
fn apply(provider: &Provider, c: &mut Client, input: &ClientInput) -> AdminResult<()> {
    if let Some(name) = &input.name {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AdminError::invalid("name", "use 1 to 100 characters"));
        }
        c.name = name.to_owned();
    }
    if let Some(list) = &input.redirect_uris {
        c.redirect_uris = uris(provider, "redirect_uris", list)?;
    }
    if let Some(list) = &input.post_logout_redirect_uris {
        c.post_logout_redirect_uris = uris(provider, "post_logout_redirect_uris", list)?;
    }
    if let Some(u) = &input.backchannel_logout_uri {
        c.backchannel_logout_uri = if u.trim().is_empty() {
            None
        } else {
            Some(uri(provider, "backchannel_logout_uri", u.trim())?)
        };
    }
    if let Some(list) = &input.grant_types {
        let mut out = Vec::new();
        for g in list {
            let g: GrantType = g.parse().map_err(|e: crate::domain::InvalidInput| {
                AdminError::invalid("grant_types", e.0)
            })?;
            if !out.contains(&g.as_str().to_owned()) {
                out.push(g.as_str().to_owned());
            }
        }
        if out.is_empty() {
            return Err(AdminError::invalid(
                "grant_types",
                "at least one grant type",
            ));
        }
        c.grant_types = out;
    }
    if let Some(list) = &input.scopes {
        let mut out: Vec<String> = Vec::new();
        for s in list {
            if !SUPPORTED_SCOPES.contains(&s.as_str()) {
                return Err(AdminError::invalid(
                    "scopes",
                    format!(
                        "unknown scope `{s}`; supported: {}",
                        SUPPORTED_SCOPES.join(", ")
                    ),
                ));
            }
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        c.scopes = out;
    }
    if let Some(list) = &input.audiences {
        if list.len() > 20 || list.iter().any(|a| a.trim().is_empty() || a.len() > 500) {
            return Err(AdminError::invalid(
                "audiences",
                "at most 20 non-empty values of up to 500 characters",
            ));
        }
        c.audiences = list.iter().map(|a| a.trim().to_owned()).collect();
    }
    if let Some(v) = input.require_consent {
        c.require_consent = v;
    }
    c.access_token_ttl = ttl(
        "access_token_ttl",
        input.access_token_ttl,
        c.access_token_ttl,
        86_400,
    )?;
    c.refresh_token_idle_ttl = ttl(
        "refresh_token_idle_ttl",
        input.refresh_token_idle_ttl,
        c.refresh_token_idle_ttl,
        31_536_000,
    )?;
    c.refresh_token_absolute_ttl = ttl(
        "refresh_token_absolute_ttl",
        input.refresh_token_absolute_ttl,
        c.refresh_token_absolute_ttl,
        31_536_000,
    )?;
    if let Some(alg) = &input.id_token_signed_response_alg {
        c.id_token_signed_response_alg = if alg.is_empty() {
            None
        } else {
            Some(
                alg.parse::<SigningAlgorithm>()
                    .map_err(|e| AdminError::invalid("id_token_signed_response_alg", e.0))?,
            )
        };
    }
    if c.allows_grant(GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return Err(AdminError::invalid(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    if c.token_endpoint_auth_method == TokenEndpointAuthMethod::None
        && c.allows_grant(GrantType::ClientCredentials)
    {
        return Err(AdminError::invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    Ok(())
}

pub async fn create(
    provider: &Provider,
    actor: &Actor,
    input: ClientInput,
) -> AdminResult<WithSecret> {
    if input.name.is_none() {
        return Err(AdminError::invalid("name", "is required"));
    }
    let method: TokenEndpointAuthMethod = input
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic")
        .parse()
        .map_err(|e: crate::domain::InvalidInput| {
            AdminError::invalid("token_endpoint_auth_method", e.0)
        })?;
    let now = crate::now();
    let mut client = Client::new(crate::crypto::new_client_id(), String::new(), method, now);
    apply(provider, &mut client, &input)?;
    let secret = (method != TokenEndpointAuthMethod::None).then(|| random_secret(32));
    client.secret_hash = secret.as_deref().map(hash_secret);
    match provider.store.create_client(&client).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(AdminError::Conflict("client id already taken".into()));
        }
        Err(e) => return Err(e.into()),
    }
    let out = ClientOut::from(&client);
    audit::record(
        provider.store.as_ref(),
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

pub async fn update(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    input: ClientInput,
) -> AdminResult<ClientOut> {
    let mut client = load(provider, id).await?;
    if let Some(m) = &input.token_endpoint_auth_method
        && m != client.token_endpoint_auth_method.as_str()
    {
        let new: TokenEndpointAuthMethod =
            m.parse().map_err(|e: crate::domain::InvalidInput| {
                AdminError::invalid("token_endpoint_auth_method", e.0)
            })?;
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
    apply(provider, &mut client, &input)?;
    client.updated_at = crate::now();
    let updated = provider.store.update_client(&client).await?;
    provider.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    let after = ClientOut::from(&client);
    record_changes(
        provider,
        actor,
        action::ADMIN_CLIENT_UPDATE,
        &before,
        &after,
    )
    .await;
    Ok(after)
}

async fn record_changes(
    provider: &Provider,
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
        provider.store.as_ref(),
        actor
            .event(act)
            .target(&after.client_id)
            .client(&after.client_id)
            .detail("changes", Value::Object(changes)),
    )
    .await;
}

/// A new secret for a confidential client; the old one stops working at once.
pub async fn rotate_secret(
    provider: &Provider,
    actor: &Actor,
    id: &str,
) -> AdminResult<WithSecret> {
    let mut client = load(provider, id).await?;
    if client.token_endpoint_auth_method == TokenEndpointAuthMethod::None {
        return Err(AdminError::Conflict("a public client has no secret".into()));
    }
    let secret = random_secret(32);
    client.secret_hash = Some(hash_secret(&secret));
    client.updated_at = crate::now();
    let updated = provider.store.update_client(&client).await?;
    provider.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    audit::record(
        provider.store.as_ref(),
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

pub async fn set_disabled(
    provider: &Provider,
    actor: &Actor,
    id: &str,
    disabled: bool,
) -> AdminResult<ClientOut> {
    let mut client = load(provider, id).await?;
    let before = ClientOut::from(&client);
    let now = crate::now();
    client.disabled_at = match (disabled, client.disabled_at) {
        (true, None) => Some(now),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    };
    client.updated_at = now;
    let updated = provider.store.update_client(&client).await?;
    provider.clients.invalidate(&client.id);
    if !updated {
        return Err(AdminError::NotFound("client"));
    }
    let after = ClientOut::from(&client);
    record_changes(
        provider,
        actor,
        action::ADMIN_CLIENT_UPDATE,
        &before,
        &after,
    )
    .await;
    Ok(after)
}

pub async fn delete(provider: &Provider, actor: &Actor, id: &str) -> AdminResult<()> {
    let client = load(provider, id).await?;
    provider.store.delete_client(id).await?;
    provider.clients.invalidate(id);
    audit::record(
        provider.store.as_ref(),
        actor
            .event(action::ADMIN_CLIENT_DELETE)
            .target(&client.id)
            .client(&client.id)
            .detail("name", client.name),
    )
    .await;
    Ok(())
}
