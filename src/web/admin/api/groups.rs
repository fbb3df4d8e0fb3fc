//! `/admin/api/v1/groups`

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, Body, Page, Params, Problem, decode_cursor, encode_cursor};
use crate::admin::{groups, page_limit};
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    name: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/groups",
    tag = "groups",
    summary = "List groups",
    responses((status = 200, description = "Groups", body = Vec<crate::store::Group>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    Ok(Json(groups::list(&state.provider).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/groups",
    tag = "groups",
    summary = "Create a group",
    request_body = GroupInput,
    responses((status = 201, description = "Created", body = crate::store::Group), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(input): Body<GroupInput>,
) -> Result<Response, Problem> {
    let group = groups::create(&state.provider, &actor, &input.name).await?;
    Ok((StatusCode::CREATED, Json(group)).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    summary = "A group",
    params(("id" = String, Path, description = "group id")),
    responses((status = 200, description = "The group", body = crate::store::Group), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(groups::get(&state.provider, &id).await?).into_response())
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    summary = "Rename a group",
    params(("id" = String, Path, description = "group id")),
    request_body = GroupInput,
    responses((status = 200, description = "The group", body = crate::store::Group), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn rename(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(input): Body<GroupInput>,
) -> Result<Response, Problem> {
    Ok(Json(groups::rename(&state.provider, &actor, &id, &input.name).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/groups/{id}",
    tag = "groups",
    summary = "Delete a group",
    params(("id" = String, Path, description = "group id")),
    responses((status = 204, description = "Deleted"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    groups::delete(&state.provider, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/groups/{id}/members",
    tag = "groups",
    summary = "Members of a group",
    params(("id" = String, Path, description = "group id"), MembersQuery),
    responses((status = 200, description = "A page of members", body = super::Page<crate::admin::users::AdminUserOut>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn members(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
    Params(q): Params<MembersQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit);
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c, 1)?.remove(0)),
        None => None,
    };
    let items = groups::members(&state.provider, &id, after, limit + 1).await?;
    Ok(Json(Page::new(items, limit, |u| encode_cursor(&[&u.email]))).into_response())
}

#[utoipa::path(
    put,
    path = "/admin/api/v1/groups/{id}/members/{user_id}",
    tag = "groups",
    summary = "Add a member",
    params(("id" = String, Path, description = "group id"), ("user_id" = String, Path, description = "user id")),
    responses((status = 204, description = "Added"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn add_member(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    groups::add_member(&state.provider, &actor, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/groups/{id}/members/{user_id}",
    tag = "groups",
    summary = "Remove a member",
    params(("id" = String, Path, description = "group id"), ("user_id" = String, Path, description = "user id")),
    responses((status = 204, description = "Removed"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    groups::remove_member(&state.provider, &actor, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
