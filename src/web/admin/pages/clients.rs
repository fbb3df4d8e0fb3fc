//! `/admin/clients`: list and search, register (the secret is shown once), edit, rotate the
//! secret, disable/enable, delete.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{AdminPage, failure, form_expired, render, value, when};
use crate::admin::clients::{self, ClientInput, ClientOut};
use crate::admin::{AdminError, clean, page_limit};
use crate::domain::SUPPORTED_SCOPES;
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after_name: String,
    #[serde(default)]
    after_id: String,
}

pub async fn index(
    State(state): State<AppState>,
    page: AdminPage,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(&state, page, &q, StatusCode::OK, None).await
}

async fn list_page(
    state: &AppState,
    page: AdminPage,
    q: &ListQuery,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let limit = page_limit(None);
    let after = (!q.after_id.is_empty()).then_some((q.after_name.as_str(), q.after_id.as_str()));
    let mut rows = match clients::list(
        &state.provider,
        clean(Some(&q.q)).as_deref(),
        after,
        limit + 1,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return failure(state, e),
    };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_url = more.then(|| rows.last()).flatten().map(|c| {
        let qs: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q.q)
            .append_pair("after_name", &c.name)
            .append_pair("after_id", &c.client_id)
            .finish();
        format!("/admin/clients?{qs}")
    });
    let mut ctx = Context::new();
    ctx.insert("title", "Clients");
    ctx.insert("section", "clients");
    ctx.insert("clients", &value(&rows));
    ctx.insert("q", &q.q);
    ctx.insert("next_url", &next_url);
    ctx.insert("scopes", SUPPORTED_SCOPES);
    ctx.insert("error", &error);
    render(state, page, status, "admin/clients.html", ctx)
}

/// The create and edit form. Lists are one entry per line.
#[derive(Debug, Default, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    redirect_uris: Option<String>,
    post_logout_redirect_uris: Option<String>,
    backchannel_logout_uri: Option<String>,
    /// Space- or line-separated.
    grant_types: Option<String>,
    scopes: Option<String>,
    audiences: Option<String>,
    web_origins: Option<String>,
    require_consent: Option<String>,
    access_token_ttl: Option<String>,
    id_token_signed_response_alg: Option<String>,
}

fn lines(v: &Option<String>) -> Option<Vec<String>> {
    v.as_ref().map(|t| {
        t.split(['\n', '\r', ' ', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

impl ClientForm {
    /// The service input; `edit` means the checkbox's absence turns consent off.
    fn input(&self, edit: bool) -> Result<ClientInput, AdminError> {
        let ttl = match self.access_token_ttl.as_deref().map(str::trim) {
            None | Some("") => Some(0).filter(|_| edit),
            Some(t) => Some(t.parse::<i64>().map_err(|_| {
                AdminError::invalid("access_token_ttl", "enter a number of seconds")
            })?),
        };
        Ok(ClientInput {
            name: self.name.clone(),
            token_endpoint_auth_method: clean(self.token_endpoint_auth_method.as_deref()),
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            grant_types: lines(&self.grant_types),
            scopes: lines(&self.scopes),
            audiences: lines(&self.audiences),
            web_origins: lines(&self.web_origins),
            require_consent: Some(self.require_consent.is_some()),
            access_token_ttl: ttl,
            refresh_token_idle_ttl: None,
            refresh_token_absolute_ttl: None,
            id_token_signed_response_alg: self.id_token_signed_response_alg.clone(),
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    page: AdminPage,
    Form(form): Form<ClientForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let result = match form.input(false) {
        Ok(input) => clients::create(&state.provider, &page.actor, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => detail_page(
            &state,
            page,
            created.client,
            created.client_secret,
            StatusCode::CREATED,
            Some("Client registered.".into()),
            None,
        ),
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_))) => {
            list_page(
                &state,
                page,
                &ListQuery::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => failure(&state, e),
    }
}

pub async fn show(
    State(state): State<AppState>,
    page: AdminPage,
    Path(id): Path<String>,
) -> Response {
    match clients::get(&state.provider, &id).await {
        Ok(c) => detail_page(&state, page, c, None, StatusCode::OK, None, None),
        Err(e) => failure(&state, e),
    }
}

fn detail_page(
    state: &AppState,
    page: AdminPage,
    client: ClientOut,
    secret: Option<String>,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let mut ctx = Context::new();
    ctx.insert("title", &client.name);
    ctx.insert("section", "clients");
    ctx.insert(
        "form",
        &json!({
            "redirect_uris": client.redirect_uris.join("\n"),
            "post_logout_redirect_uris": client.post_logout_redirect_uris.join("\n"),
            "grant_types": client.grant_types.join(" "),
            "scopes": client.scopes.join(" "),
            "audiences": client.audiences.join("\n"),
            "web_origins": client.web_origins.join("\n"),
            "allowed_origins": client.allowed_origins.join(" "),
        }),
    );
    ctx.insert("created", &when(client.created_at));
    ctx.insert("client", &value(&client));
    ctx.insert("secret", &secret);
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    render(state, page, status, "admin/client.html", ctx)
}

pub async fn act(
    State(state): State<AppState>,
    page: AdminPage,
    Path(id): Path<String>,
    Form(form): Form<ClientForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let p = &state.provider;
    let a = &page.actor;
    let result = match form.action.as_str() {
        "update" => match form.input(true) {
            Ok(input) => clients::update(p, a, &id, input)
                .await
                .map(|c| (c, None, "Client saved.")),
            Err(e) => Err(e),
        },
        "rotate_secret" => clients::rotate_secret(p, a, &id).await.map(|w| {
            (
                w.client,
                w.client_secret,
                "New secret issued; the old one no longer works.",
            )
        }),
        "disable" => clients::set_disabled(p, a, &id, true)
            .await
            .map(|c| (c, None, "Client disabled.")),
        "enable" => clients::set_disabled(p, a, &id, false)
            .await
            .map(|c| (c, None, "Client enabled.")),
        "delete" => match clients::delete(p, a, &id).await {
            Ok(()) => return Redirect::to("/admin/clients").into_response(),
            Err(e) => Err(e),
        },
        _ => Err(AdminError::invalid("action", "unknown action")),
    };
    match result {
        Ok((c, secret, msg)) => detail_page(
            &state,
            page,
            c,
            secret,
            StatusCode::OK,
            Some(msg.into()),
            None,
        ),
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_))) => {
            match clients::get(p, &id).await {
                Ok(c) => detail_page(
                    &state,
                    page,
                    c,
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    Some(e.to_string()),
                ),
                Err(e) => failure(&state, e),
            }
        }
        Err(e) => failure(&state, e),
    }
}
