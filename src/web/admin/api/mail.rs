//! `/admin/api/v1/mail`: messages given up after the retry budget, and re-queueing one
//! (`crate::admin::outbox`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, Page, Params, Problem, decode_cursor, encode_cursor};
use crate::admin::{AdminCtx, outbox, page_limit};
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GivenUpQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/mail/given-up",
    tag = "mail",
    summary = "Mail and text messages given up and never sent, newest first (no bodies)",
    params(GivenUpQuery),
    responses((status = 200, description = "A page of given-up messages", body = super::Page<crate::store::OutboxEntry>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn given_up(
    State(state): State<AppState>,
    _: Admin,
    Params(q): Params<GivenUpQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit);
    let before = match q.cursor.as_deref() {
        Some(c) => decode_cursor(c, 1)?.pop(),
        None => None,
    };
    let ctx = AdminCtx::from(&state.provider);
    let items = outbox::given_up(ctx, before.as_deref(), limit + 1).await?;
    Ok(Json(Page::new(items, limit, |m| encode_cursor(&[&m.id]))).into_response())
}

#[utoipa::path(
    post,
    path = "/admin/api/v1/mail/{id}/requeue",
    tag = "mail",
    summary = "Re-queue a given-up message: as it is while its body and code are live, else re-issued as a fresh message of the same purpose (409 when neither is possible)",
    params(("id" = String, Path, description = "outbox message id")),
    responses((status = 202, description = "Queued", body = crate::admin::outbox::Requeued), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn requeue(
    State(state): State<AppState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let ctx = AdminCtx::from(&state.provider);
    let now = state.provider.clock.now();
    let done = outbox::requeue(ctx, &state.mailer, &actor, &id, now).await?;
    Ok((StatusCode::ACCEPTED, Json(done)).into_response())
}
