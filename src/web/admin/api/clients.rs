//! `/admin/api/v1/clients`

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, Body, Page, Params, Problem, decode_cursor, encode_cursor};
use crate::admin::{clients, page_limit};
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/clients",
    tag = "clients",
    summary = "List clients (search, pagination)",
    params(ListQuery),
    responses((status = 200, description = "A page of clients", body = super::Page<crate::admin::clients::ClientOut>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<ListQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit);
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c, 2)?),
        None => None,
    };
    let items = clients::list(
        &state.provider,
        crate::admin::clean(q.q.as_deref()).as_deref(),
        after.as_ref().map(|a| (a[0].as_str(), a[1].as_str())),
        limit + 1,
    )
    .await?;
    Ok(Json(Page::new(items, limit, |c| {
        encode_cursor(&[&c.name, &c.client_id])
    }))
    .into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients",
    tag = "clients",
    summary = "Register a client; the secret is in this response only",
    request_body = crate::admin::clients::ClientInput,
    responses((status = 201, description = "Created", body = crate::admin::clients::WithSecret), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(input): Body<clients::ClientInput>,
) -> Result<Response, Problem> {
    let created = clients::create(&state.provider, &actor, input).await?;
    Ok((
        StatusCode::CREATED,
        crate::web::oauth::no_store(),
        Json(created),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    summary = "A client",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, description = "The client", body = crate::admin::clients::ClientOut), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(clients::get(&state.provider, &id).await?).into_response())
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    summary = "Edit a client (absent fields stay)",
    params(("id" = String, Path, description = "client id")),
    request_body = crate::admin::clients::ClientInput,
    responses((status = 200, description = "The client", body = crate::admin::clients::ClientOut), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(input): Body<clients::ClientInput>,
) -> Result<Response, Problem> {
    Ok(Json(clients::update(&state.provider, &actor, &id, input).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/clients/{id}",
    tag = "clients",
    summary = "Delete a client",
    params(("id" = String, Path, description = "client id")),
    responses((status = 204, description = "Deleted"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    clients::delete(&state.provider, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients/{id}/secret",
    tag = "clients",
    summary = "Rotate the secret; the new one is in this response only",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, description = "The new secret", body = crate::admin::clients::WithSecret), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let rotated = clients::rotate_secret(&state.provider, &actor, &id).await?;
    Ok((crate::web::oauth::no_store(), Json(rotated)).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients/{id}/disable",
    tag = "clients",
    summary = "Disable a client",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, description = "The client", body = crate::admin::clients::ClientOut), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn disable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(clients::set_disabled(&state.provider, &actor, &id, true).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/clients/{id}/enable",
    tag = "clients",
    summary = "Enable a client",
    params(("id" = String, Path, description = "client id")),
    responses((status = 200, description = "The client", body = crate::admin::clients::ClientOut), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn enable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(clients::set_disabled(&state.provider, &actor, &id, false).await?).into_response())
}
