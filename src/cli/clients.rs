//! `portcullis client create|update`: a client's token settings from the command line.
//!
//! Both commands take the same setting flags. Everything is parsed and checked before the
//! database is touched: bad input is one line on stderr, exit status 2, nothing written.
//! For `update`, a flag that is not given keeps the stored value; a list flag that is given
//! replaces the whole list (one empty value, e.g. `--audience ''`, empties it); a lifetime of 0
//! and an empty `--backchannel-logout-uri ''` fall back to the server default / none.

use clap::Args;
use url::Url;

use super::Failure;
use crate::config::Settings;
use crate::crypto::{hash_secret, random_secret};
use crate::domain::{
    Client, ClientKind, GrantType, InvalidInput, RedirectUri, SUPPORTED_SCOPES, SigningAlgorithm,
    TokenEndpointAuthMethod,
};
use crate::startup::open_store;

/// The settings shared by `client create` and `client update`.
#[derive(Args, Debug, Default)]
pub struct ClientSettingsArgs {
    /// An allowed redirect URI (repeat for several); matched exactly.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// An allowed grant type (repeat): authorization_code (default), refresh_token,
    /// client_credentials.
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// An allowed scope (repeat for several; default: every supported scope).
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// A resource (RFC 8707) the client may ask tokens for, and that it may introspect tokens
    /// of (repeat for several): an absolute URI.
    #[arg(long = "audience", value_name = "URI")]
    audiences: Vec<String>,
    /// client_secret_basic (default) or client_secret_post; `none` makes a public client.
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// ID token signing algorithm: RS256 (server default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    id_token_alg: Option<String>,
    /// Access-token lifetime in seconds, 30–86400 (0: the server default).
    #[arg(long, value_name = "SECONDS")]
    access_token_ttl: Option<i64>,
    /// Refresh-token idle lifetime in seconds, 60–31536000 (0: the server default).
    #[arg(long, value_name = "SECONDS")]
    refresh_token_idle_ttl: Option<i64>,
    /// Refresh-token absolute lifetime in seconds, 60–31536000 (0: the server default).
    #[arg(long, value_name = "SECONDS")]
    refresh_token_absolute_ttl: Option<i64>,
    /// Where RP-initiated logout may return the browser (repeat); matched exactly.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// OIDC Back-Channel Logout receiver (https, or http on loopback; '' for none).
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// Ask the person's consent before the first authorization (true|false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    require_consent: Option<bool>,
}

#[derive(Args)]
pub struct ClientCreate {
    #[arg(long)]
    name: String,
    /// A public client (native or browser app): no secret, PKCE required.
    #[arg(long)]
    public: bool,
    #[command(flatten)]
    settings: ClientSettingsArgs,
    /// Print {"client_id": …, "client_secret": …} as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ClientUpdate {
    /// The client to change.
    client_id: String,
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    settings: ClientSettingsArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn nonempty(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().map(String::as_str).filter(|v| !v.is_empty())
}

fn ttl(flag: &str, value: i64, min: i64, max: i64) -> Result<Option<i64>, InvalidInput> {
    match value {
        0 => Ok(None),
        v if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(InvalidInput::new(format!(
            "--{flag} must be from {min} to {max} seconds (or 0 for the server default)"
        ))),
    }
}

fn resource(value: &str) -> Result<String, InvalidInput> {
    let url = Url::parse(value).map_err(|e| {
        InvalidInput::new(format!("--audience `{value}` is not an absolute URI ({e})"))
    })?;
    // RFC 8707 §2: an absolute URI without a fragment.
    if url.fragment().is_some() || value.contains('#') {
        return Err(InvalidInput::new(format!(
            "--audience `{value}` must not contain a fragment"
        )));
    }
    Ok(value.to_owned())
}

impl ClientSettingsArgs {
    /// Apply the given flags to `client`. Returns a new secret when the change needs one.
    fn apply(&self, client: &mut Client) -> Result<Option<String>, InvalidInput> {
        let mut new_secret = None;
        if let Some(m) = &self.auth_method {
            let method: TokenEndpointAuthMethod = m.parse()?;
            let had_secret = client.secret_hash.is_some();
            client.token_endpoint_auth_method = method;
            if method == TokenEndpointAuthMethod::None {
                client.secret_hash = None;
            } else if !had_secret {
                let secret = random_secret(32);
                client.secret_hash = Some(hash_secret(&secret));
                new_secret = Some(secret);
            }
        }
        if !self.redirect_uris.is_empty() {
            client.redirect_uris = nonempty(&self.redirect_uris)
                .map(|u| RedirectUri::parse(u).map(|r| r.as_str().to_owned()))
                .collect::<Result<_, _>>()?;
        }
        if !self.grant_types.is_empty() {
            let mut grants: Vec<String> = Vec::new();
            for g in nonempty(&self.grant_types) {
                let g = g.parse::<GrantType>()?.as_str().to_owned();
                if !grants.contains(&g) {
                    grants.push(g);
                }
            }
            client.grant_types = grants;
        }
        if !self.scopes.is_empty() {
            let mut scopes: Vec<String> = Vec::new();
            for s in nonempty(&self.scopes) {
                if !SUPPORTED_SCOPES.contains(&s) {
                    return Err(InvalidInput::new(format!(
                        "unknown scope `{s}`; supported: {}",
                        SUPPORTED_SCOPES.join(", ")
                    )));
                }
                if !scopes.iter().any(|x| x == s) {
                    scopes.push(s.to_owned());
                }
            }
            client.scopes = scopes;
        }
        if !self.audiences.is_empty() {
            client.audiences = nonempty(&self.audiences)
                .map(resource)
                .collect::<Result<_, _>>()?;
        }
        if let Some(a) = &self.id_token_alg {
            client.id_token_signed_response_alg = Some(a.parse::<SigningAlgorithm>()?);
        }
        if let Some(v) = self.access_token_ttl {
            client.access_token_ttl = ttl("access-token-ttl", v, 30, 86_400)?;
        }
        if let Some(v) = self.refresh_token_idle_ttl {
            client.refresh_token_idle_ttl = ttl("refresh-token-idle-ttl", v, 60, 31_536_000)?;
        }
        if let Some(v) = self.refresh_token_absolute_ttl {
            client.refresh_token_absolute_ttl =
                ttl("refresh-token-absolute-ttl", v, 60, 31_536_000)?;
        }
        if !self.post_logout_redirect_uris.is_empty() {
            client.post_logout_redirect_uris = nonempty(&self.post_logout_redirect_uris)
                .map(|u| {
                    RedirectUri::parse(u)
                        .map(|r| r.as_str().to_owned())
                        .map_err(|e| InvalidInput::new(format!("--post-logout-redirect-uri: {e}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(u) = &self.backchannel_logout_uri {
            client.backchannel_logout_uri = if u.is_empty() {
                None
            } else {
                let parsed = RedirectUri::parse(u)
                    .map_err(|e| InvalidInput::new(format!("--backchannel-logout-uri: {e}")))?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(InvalidInput::new(
                        "--backchannel-logout-uri must be an https:// (or loopback http://) URL",
                    ));
                }
                Some(parsed.as_str().to_owned())
            };
        }
        if let Some(b) = self.require_consent {
            client.require_consent = b;
        }
        check(client)?;
        Ok(new_secret)
    }
}

/// Rules over the whole client, after every flag is applied.
fn check(c: &Client) -> Result<(), InvalidInput> {
    if c.grant_types.is_empty() {
        return Err(InvalidInput::new("at least one --grant-type is required"));
    }
    if c.allows_grant(GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return Err(InvalidInput::new(
            "the authorization_code grant needs at least one --redirect-uri",
        ));
    }
    if c.kind() == ClientKind::Public && c.allows_grant(GrantType::ClientCredentials) {
        return Err(InvalidInput::new(
            "client_credentials needs a confidential client (one with a secret)",
        ));
    }
    if let (Some(idle), Some(abs)) = (c.refresh_token_idle_ttl, c.refresh_token_absolute_ttl)
        && idle > abs
    {
        return Err(InvalidInput::new(
            "--refresh-token-idle-ttl must not exceed --refresh-token-absolute-ttl",
        ));
    }
    Ok(())
}

fn describe(c: &Client) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.id,
        "name": c.name,
        "token_endpoint_auth_method": c.token_endpoint_auth_method.as_str(),
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "scopes": c.scopes,
        "audiences": c.audiences,
        "id_token_signed_response_alg": c.id_token_signed_response_alg.map(|a| a.as_str()),
        "access_token_ttl": c.access_token_ttl,
        "refresh_token_idle_ttl": c.refresh_token_idle_ttl,
        "refresh_token_absolute_ttl": c.refresh_token_absolute_ttl,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "require_consent": c.require_consent,
        "disabled": c.disabled_at.is_some(),
    })
}

/// The JSON shape of `client list --json`, with every token setting.
pub fn list_entry(c: &Client) -> serde_json::Value {
    describe(c)
}

pub async fn create(settings: Settings, args: ClientCreate) -> Result<(), Failure> {
    let name = args.name.trim().to_owned();
    if name.is_empty() {
        return Err(InvalidInput::new("--name must not be empty").into());
    }
    let method = match (args.public, args.settings.auth_method.as_deref()) {
        (true, None | Some("none")) => TokenEndpointAuthMethod::None,
        (true, Some(_)) => {
            return Err(InvalidInput::new(
                "a --public client authenticates with no secret; drop --auth-method",
            )
            .into());
        }
        (false, None) => TokenEndpointAuthMethod::ClientSecretBasic,
        (false, Some(m)) => match m.parse()? {
            TokenEndpointAuthMethod::None => {
                return Err(InvalidInput::new("use --public for a client without a secret").into());
            }
            other => other,
        },
    };
    let secret = (method != TokenEndpointAuthMethod::None).then(|| random_secret(32));
    let now = crate::now();
    let mut client = Client::new(crate::crypto::new_client_id(), name, method, now);
    client.secret_hash = secret.as_deref().map(hash_secret);
    // The method is settled above; the flag must not mint a second secret.
    let flags = ClientSettingsArgs {
        auth_method: None,
        ..args.settings
    };
    flags.apply(&mut client)?;
    let store = open_store(&settings).await?;
    let result = store.create_client(&client).await;
    store.close().await;
    result?;
    if args.json {
        let mut out = serde_json::json!({ "client_id": client.id });
        if let Some(s) = &secret {
            out["client_secret"] = s.as_str().into();
        }
        println!("{out}");
    } else {
        println!("client_id:     {}", client.id);
        if let Some(s) = &secret {
            println!("client_secret: {s}");
            println!("(the secret is shown only now; store it safely)");
        }
    }
    Ok(())
}

pub async fn update(settings: Settings, args: ClientUpdate) -> Result<(), Failure> {
    let name = match &args.name {
        Some(n) if n.trim().is_empty() => {
            return Err(InvalidInput::new("--name must not be empty").into());
        }
        Some(n) => Some(n.trim().to_owned()),
        None => None,
    };
    let store = open_store(&settings).await?;
    let found = store.find_client(&args.client_id).await;
    let result = async {
        let Some(mut client) = found? else {
            return Err(Failure {
                message: format!("no client with id `{}`", args.client_id),
                code: 2,
            });
        };
        if let Some(n) = name {
            client.name = n;
        }
        let secret = args.settings.apply(&mut client)?;
        client.updated_at = crate::now();
        if !store.update_client(&client).await? {
            return Err(Failure {
                message: format!("no client with id `{}`", args.client_id),
                code: 2,
            });
        }
        Ok((client, secret))
    }
    .await;
    store.close().await;
    let (client, secret) = result?;
    if args.json {
        let mut out = describe(&client);
        if let Some(s) = &secret {
            out["client_secret"] = s.as_str().into();
        }
        println!("{out}");
    } else {
        println!("updated client {}", client.id);
        if let Some(s) = &secret {
            println!("client_secret: {s}");
            println!("(the secret is shown only now; store it safely)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            id: "c".into(),
            name: "n".into(),
            secret_hash: Some("h".into()),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            grant_types: vec!["authorization_code".into()],
            scopes: vec!["openid".into()],
            token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
            id_token_signed_response_alg: None,
            access_token_ttl: None,
            require_consent: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            audiences: vec![],
            refresh_token_idle_ttl: None,
            refresh_token_absolute_ttl: None,
            created_at: 0,
            updated_at: 0,
            disabled_at: None,
        }
    }

    #[test]
    fn rules_over_the_whole_client() {
        let public_cc = ClientSettingsArgs {
            auth_method: Some("none".into()),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        };
        assert!(public_cc.apply(&mut client()).is_err());
        let no_redirect = ClientSettingsArgs {
            redirect_uris: vec![String::new()],
            ..Default::default()
        };
        assert!(no_redirect.apply(&mut client()).is_err());
        let idle_over_abs = ClientSettingsArgs {
            refresh_token_idle_ttl: Some(1000),
            refresh_token_absolute_ttl: Some(999),
            ..Default::default()
        };
        assert!(idle_over_abs.apply(&mut client()).is_err());
        let fragment = ClientSettingsArgs {
            audiences: vec!["https://api.example.com/#x".into()],
            ..Default::default()
        };
        assert!(fragment.apply(&mut client()).is_err());
    }

    #[test]
    fn public_to_confidential_mints_a_secret() {
        let mut c = client();
        c.secret_hash = None;
        c.token_endpoint_auth_method = TokenEndpointAuthMethod::None;
        let to_post = ClientSettingsArgs {
            auth_method: Some("client_secret_post".into()),
            ..Default::default()
        };
        let secret = to_post.apply(&mut c).unwrap().expect("new secret");
        assert_eq!(
            c.secret_hash.as_deref(),
            Some(hash_secret(&secret).as_str())
        );
        let ttl_default = ClientSettingsArgs {
            access_token_ttl: Some(0),
            ..Default::default()
        };
        c.access_token_ttl = Some(60);
        assert!(ttl_default.apply(&mut c).unwrap().is_none());
        assert_eq!(c.access_token_ttl, None);
    }
}
