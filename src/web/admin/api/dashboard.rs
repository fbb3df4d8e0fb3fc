//! `/admin/api/v1/dashboard`: the counts and daily sign-in figures of the dashboard page.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Admin, Problem};
use crate::admin::dashboard;
use crate::web::state::AppState;

#[utoipa::path(
    get,
    path = "/admin/api/v1/dashboard",
    tag = "dashboard",
    summary = "Counts and daily sign-ins for 30 days",
    responses((status = 200, description = "Dashboard figures", body = crate::admin::dashboard::Dashboard), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn show(State(state): State<AppState>, _: Admin) -> Result<Response, Problem> {
    Ok(Json(dashboard::load(&state.provider, state.now()).await?).into_response())
}
