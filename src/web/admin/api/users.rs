//! `/admin/api/v1/users`

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, Body, Page, Params, Problem, decode_cursor, encode_cursor};
use crate::admin::{page_limit, users};
use crate::store::UserFilter;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    q: Option<String>,
    verified: Option<bool>,
    disabled: Option<bool>,
    deleted: Option<bool>,
    /// Group id.
    group: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionsEnded {
    pub sessions_ended: usize,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users",
    tag = "users",
    summary = "List users (search, filters, keyset pagination by e-mail)",
    params(ListQuery),
    responses((status = 200, description = "A page of users", body = super::Page<crate::admin::users::AdminUserOut>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<ListQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit);
    let after = match &q.cursor {
        Some(c) => Some(decode_cursor(c, 1)?.remove(0)),
        None => None,
    };
    let filter = UserFilter {
        q: crate::admin::clean(q.q.as_deref()),
        verified: q.verified,
        disabled: q.disabled,
        deleted: q.deleted,
        group_id: q.group,
        after,
        limit: limit + 1,
    };
    let items = users::list(&state.provider, &filter).await?;
    Ok(Json(Page::new(items, limit, |u| encode_cursor(&[&u.email]))).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users",
    tag = "users",
    summary = "Create a user (with `send_invitation`: no password, an invitation e-mail with a single-use link to choose one)",
    request_body = crate::admin::users::CreateUser,
    responses((status = 201, description = "Created", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Body(input): Body<users::CreateUser>,
) -> Result<Response, Problem> {
    let user = users::create(&state.provider, &state.mailer, &actor, input).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    summary = "A user with roles and groups",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(users::get(&state.provider, &id).await?).into_response())
}

#[utoipa::path(
    patch,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    summary = "Edit profile fields and attributes (absent fields stay; empty string clears)",
    params(("id" = String, Path, description = "user id")),
    request_body = crate::admin::users::UserPatch,
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(patch): Body<users::UserPatch>,
) -> Result<Response, Problem> {
    Ok(Json(users::update(&state.provider, &actor, &id, patch).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{id}",
    tag = "users",
    summary = "Soft delete (restorable within the grace period)",
    params(("id" = String, Path, description = "user id")),
    responses((status = 204, description = "Deleted"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    users::delete(&state.provider, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/disable",
    tag = "users",
    summary = "Disable: ends sessions and refresh grants",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn disable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(users::set_disabled(&state.provider, &actor, &id, true).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/enable",
    tag = "users",
    summary = "Enable a disabled user",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn enable(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(users::set_disabled(&state.provider, &actor, &id, false).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/restore",
    tag = "users",
    summary = "Restore a soft-deleted user within the grace period",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn restore(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(users::restore(&state.provider, &actor, &id).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/purge",
    tag = "users",
    summary = "Erase a soft-deleted user for good",
    params(("id" = String, Path, description = "user id")),
    responses((status = 204, description = "Purged"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn purge(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    users::purge(&state.provider, &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/password-reset",
    tag = "users",
    summary = "Send the user the password-reset e-mail (the same mail and link as their own \"forgot password\")",
    params(("id" = String, Path, description = "user id")),
    responses((status = 202, description = "The mail is queued for delivery"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn password_reset(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    users::send_password_reset(&state.provider, &state.mailer, &actor, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/users/{id}/invitation",
    tag = "users",
    summary = "Resend the invitation e-mail with a new single-use link (older invitation links stop working)",
    description = "For an active user without a password (`password_set: false`): an invited person who has not accepted yet, or a user created without a password. `409` when the user already has a password, or is disabled or deleted.",
    params(("id" = String, Path, description = "user id")),
    responses((status = 202, description = "The mail is queued for delivery"), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn resend_invitation(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    users::resend_invitation(&state.provider, &state.mailer, &actor, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{id}/sessions",
    tag = "users",
    summary = "End every session of the user",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "How many sessions ended", body = SessionsEnded), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn end_sessions(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let sessions_ended = users::end_sessions(&state.provider, &actor, &id).await?;
    Ok(Json(SessionsEnded { sessions_ended }).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/users/{id}/groups",
    tag = "users",
    summary = "The user's groups",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, description = "Groups", body = Vec<crate::store::Group>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn groups(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(Json(users::get(&state.provider, &id).await?.groups).into_response())
}

#[utoipa::path(
    put,
    path = "/admin/api/v1/users/{id}/roles/{role}",
    tag = "users",
    summary = "Grant a role",
    params(("id" = String, Path, description = "user id"), ("role" = String, Path, description = "role name")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn grant_role(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, role)): Path<(String, String)>,
) -> Result<Response, Problem> {
    Ok(Json(users::grant_role(&state.provider, &actor, &id, &role).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/api/v1/users/{id}/roles/{role}",
    tag = "users",
    summary = "Revoke a role (the last admin keeps `admin`)",
    params(("id" = String, Path, description = "user id"), ("role" = String, Path, description = "role name")),
    responses((status = 200, description = "The user", body = crate::admin::users::UserView), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn revoke_role(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path((id, role)): Path<(String, String)>,
) -> Result<Response, Problem> {
    Ok(Json(users::revoke_role(&state.provider, &actor, &id, &role).await?).into_response())
}
