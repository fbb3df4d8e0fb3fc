//! `portcullis client create|update|rotate-secret`: a client's settings from the command line.
//!
//! The flags become an `admin::clients::ClientInput` and go through the same service functions
//! as the admin API and pages (`admin::clients::{create, update, rotate_secret}`): the same
//! registration rules, the same messages, the same audit entries (actor `cli`). Bad input is one
//! line on stderr, exit status 2, nothing written; `create` checks its flags before it opens the
//! database. For `update`, a flag that is not given keeps the stored value; a list flag that is
//! given replaces the whole list (one empty value, e.g. `--audience ''`, empties it); a lifetime
//! of 0 and an empty `--backchannel-logout-uri ''` fall back to the server default / none.

use clap::Args;

use super::{Failure, with_admin};
use crate::admin::clients::{self, ClientInput, ClientOut};
use crate::admin::{Actor, AdminError};
use crate::config::Settings;
use crate::domain::{Client, InvalidInput};

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
    /// A browser origin allowed to call /token, /userinfo, /revoke and /introspect (CORS), e.g.
    /// https://app.example.com (repeat for several; '' returns to the default: none, or for a
    /// public client the origins of its redirect URIs).
    #[arg(long = "web-origin", value_name = "ORIGIN")]
    web_origins: Vec<String>,
    /// client_secret_basic (default) or client_secret_post. A client cannot change between
    /// public (`none`) and confidential: create a new one.
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

#[derive(Args)]
pub struct ClientRotateSecret {
    /// The (confidential) client.
    client_id: String,
    /// Print {"client_id": …, "client_secret": …} as JSON.
    #[arg(long)]
    json: bool,
}

/// A list flag: absent keeps the stored list; given, it replaces it, empty values dropped (so one
/// empty value empties the list).
fn list(values: Vec<String>) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.into_iter().filter(|v| !v.is_empty()).collect())
}

impl ClientSettingsArgs {
    /// The service input for these flags (all but the name and, on create, the method).
    fn into_input(self) -> ClientInput {
        ClientInput {
            name: None,
            token_endpoint_auth_method: self.auth_method,
            redirect_uris: list(self.redirect_uris),
            post_logout_redirect_uris: list(self.post_logout_redirect_uris),
            backchannel_logout_uri: self.backchannel_logout_uri,
            grant_types: list(self.grant_types),
            scopes: list(self.scopes),
            audiences: list(self.audiences),
            web_origins: list(self.web_origins),
            require_consent: self.require_consent,
            access_token_ttl: self.access_token_ttl,
            refresh_token_idle_ttl: self.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: self.refresh_token_absolute_ttl,
            id_token_signed_response_alg: self.id_token_alg,
        }
    }
}

/// The service's refusal as the command's: invalid input and an unknown client exit with 2,
/// anything else with 1.
fn failure(e: AdminError, client_id: Option<&str>) -> Failure {
    match (e, client_id) {
        (AdminError::NotFound(_), Some(id)) => Failure {
            message: format!("no client with id `{id}`"),
            code: 2,
        },
        (e, _) => e.into(),
    }
}

fn describe(c: &ClientOut) -> serde_json::Value {
    serde_json::json!({
        "client_id": c.client_id,
        "name": c.name,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "scopes": c.scopes,
        "audiences": c.audiences,
        "web_origins": c.web_origins,
        "id_token_signed_response_alg": c.id_token_signed_response_alg,
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
    describe(&ClientOut::from(c))
}

fn print_secret(client_id: &str, secret: Option<&str>, json: bool) {
    if json {
        let mut out = serde_json::json!({ "client_id": client_id });
        if let Some(s) = secret {
            out["client_secret"] = s.into();
        }
        println!("{out}");
    } else {
        println!("client_id:     {client_id}");
        if let Some(s) = secret {
            println!("client_secret: {s}");
            println!("(the secret is shown only now; store it safely)");
        }
    }
}

pub async fn create(settings: Settings, args: ClientCreate) -> Result<(), Failure> {
    let method = match (args.public, args.settings.auth_method.as_deref()) {
        (true, None | Some("none")) => "none".to_owned(),
        (true, Some(_)) => {
            return Err(InvalidInput::new(
                "a --public client authenticates with no secret; drop --auth-method",
            )
            .into());
        }
        (false, None) => "client_secret_basic".to_owned(),
        (false, Some("none")) => {
            return Err(InvalidInput::new("use --public for a client without a secret").into());
        }
        (false, Some(m)) => m.to_owned(),
    };
    let input = ClientInput {
        name: Some(args.name),
        token_endpoint_auth_method: Some(method),
        ..args.settings.into_input()
    };
    clients::validate_new(&settings, &input).map_err(|e| failure(e, None))?;
    let created = with_admin(&settings, async |ctx| {
        clients::create(ctx, &Actor::cli(), input).await
    })
    .await?
    .map_err(|e| failure(e, None))?;
    print_secret(
        &created.client.client_id,
        created.client_secret.as_deref(),
        args.json,
    );
    Ok(())
}

pub async fn update(settings: Settings, args: ClientUpdate) -> Result<(), Failure> {
    let id = args.client_id;
    let input = ClientInput {
        name: args.name,
        ..args.settings.into_input()
    };
    let client = with_admin(&settings, async |ctx| {
        clients::update(ctx, &Actor::cli(), &id, input).await
    })
    .await?
    .map_err(|e| failure(e, Some(&id)))?;
    if args.json {
        println!("{}", describe(&client));
    } else {
        println!("updated client {}", client.client_id);
    }
    Ok(())
}

pub async fn rotate_secret(settings: Settings, args: ClientRotateSecret) -> Result<(), Failure> {
    let id = args.client_id;
    let rotated = with_admin(&settings, async |ctx| {
        clients::rotate_secret(ctx, &Actor::cli(), &id).await
    })
    .await?
    .map_err(|e| failure(e, Some(&id)))?;
    print_secret(
        &rotated.client.client_id,
        rotated.client_secret.as_deref(),
        args.json,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_become_the_service_input() {
        let flags = ClientSettingsArgs {
            redirect_uris: vec!["https://app.example.com/cb".into()],
            audiences: vec![String::new()],
            access_token_ttl: Some(0),
            ..Default::default()
        };
        let input = flags.into_input();
        assert_eq!(
            input.redirect_uris.as_deref(),
            Some(&["https://app.example.com/cb".to_owned()][..])
        );
        assert_eq!(input.audiences.as_deref(), Some(&[][..]), "'' empties");
        assert_eq!(input.scopes, None, "absent keeps");
        assert_eq!(input.access_token_ttl, Some(0));
    }
}
