//! `/admin`: counts and a server-side SVG chart of sign-ins per day (30 days).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use tera::Context;

use super::{AdminPage, failure, render, value};
use crate::admin::dashboard;
use crate::web::state::AppState;

pub async fn show(State(state): State<AppState>, page: AdminPage) -> Response {
    let data = match dashboard::load(&state.provider, state.now()).await {
        Ok(d) => d,
        Err(e) => return failure(&state, e),
    };
    let mut ctx = Context::new();
    ctx.insert("title", "Dashboard");
    ctx.insert("section", "dashboard");
    ctx.insert("counts", &value(&data.counts));
    ctx.insert("chart", &value(&dashboard::chart(&data.days)));
    ctx.insert("days", &value(&data.days));
    let total: (i64, i64) = data
        .days
        .iter()
        .fold((0, 0), |(s, f), d| (s + d.success, f + d.failure));
    ctx.insert("total_success", &total.0);
    ctx.insert("total_failure", &total.1);
    render(&state, page, StatusCode::OK, "admin/dashboard.html", ctx)
}
