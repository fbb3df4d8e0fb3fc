//! `/admin/api/v1/audit`: read and export only; the API has no way to change or delete entries.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Admin, Page, Params, Problem};
use crate::admin::{audit_log, page_limit};
use crate::store::AuditQuery;
use crate::web::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// A user id: matches the actor or the target.
    user: Option<String>,
    client_id: Option<String>,
    action: Option<String>,
    /// `success` or `failure`.
    outcome: Option<Outcome>,
    /// Epoch seconds, inclusive.
    from: Option<i64>,
    to: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// A user id: matches the actor or the target.
    user: Option<String>,
    client_id: Option<String>,
    action: Option<String>,
    outcome: Option<Outcome>,
    /// Epoch seconds, inclusive.
    from: Option<i64>,
    to: Option<i64>,
    /// `json` (default) or `csv`.
    format: Option<Format>,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

#[expect(clippy::too_many_arguments, reason = "one argument per filter")]
fn query(
    user: &Option<String>,
    client_id: &Option<String>,
    action: &Option<String>,
    outcome: Option<Outcome>,
    from: Option<i64>,
    to: Option<i64>,
    cursor: &Option<String>,
    limit: i64,
) -> AuditQuery {
    let c = |v: &Option<String>| crate::admin::clean(v.as_deref());
    AuditQuery {
        user: c(user),
        client_id: c(client_id),
        action: c(action),
        outcome: outcome.map(|o| match o {
            Outcome::Success => "success".to_owned(),
            Outcome::Failure => "failure".to_owned(),
        }),
        from,
        to,
        before: c(cursor),
        limit,
    }
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/audit",
    tag = "audit",
    summary = "Audit entries, newest first (filters, cursor pagination)",
    params(AuditParams),
    responses((status = 200, description = "A page of entries", body = super::Page<crate::admin::audit_log::AuditEntry>), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    Params(p): Params<AuditParams>,
) -> Result<Response, Problem> {
    let limit = page_limit(p.limit);
    let q = query(
        &p.user,
        &p.client_id,
        &p.action,
        p.outcome,
        p.from,
        p.to,
        &p.cursor,
        limit + 1,
    );
    let items = audit_log::page(&state.provider, &q).await?;
    Ok(Json(Page::new(items, limit, |e| e.id.clone())).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/api/v1/audit/export",
    tag = "audit",
    summary = "Export matching entries as JSON or CSV",
    params(ExportParams),
    responses((status = 200, description = "Every matching entry", content((Vec<crate::admin::audit_log::AuditEntry> = "application/json"), (String = "text/csv"))), crate::web::admin::api::problem::Errors),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    _: Admin,
    Params(p): Params<ExportParams>,
) -> Result<Response, Problem> {
    let csv = matches!(p.format, Some(Format::Csv));
    let q = query(
        &p.user,
        &p.client_id,
        &p.action,
        p.outcome,
        p.from,
        p.to,
        &None,
        1000,
    );
    let entries = audit_log::export(&state.provider, &q).await?;
    if csv {
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"portcullis-audit.csv\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            audit_log::to_csv(&entries),
        )
            .into_response())
    } else {
        Ok((
            [
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"portcullis-audit.json\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Json(entries),
        )
            .into_response())
    }
}
