//! `/admin/audit`: filter by user, client, action, outcome and time range, page by cursor,
//! export as CSV or JSON. Read only: there is no way to change or delete entries here.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{AdminPage, failure, render, when};
use crate::admin::{AdminError, audit_log, clean, page_limit};
use crate::store::AuditQuery;
use crate::web::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    /// `YYYY-MM-DD` (UTC), inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    format: String,
}

fn day(field: &str, v: &str, end: bool) -> Result<Option<i64>, AdminError> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    let bad = || AdminError::invalid(field, "use a date like 2026-01-31");
    let mut parts = v.trim().splitn(3, '-').map(str::parse::<i32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date = u8::try_from(d)
        .ok()
        .and_then(|d| time::Date::from_calendar_date(y, month, d).ok())
        .ok_or_else(bad)?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Ok(Some(if end { start + 86_399 } else { start }))
}

impl Filters {
    fn query(&self, limit: i64) -> Result<AuditQuery, AdminError> {
        Ok(AuditQuery {
            user: clean(Some(&self.user)),
            client_id: clean(Some(&self.client_id)),
            action: clean(Some(&self.action)),
            outcome: clean(Some(&self.outcome)),
            from: day("from", &self.from, false)?,
            to: day("to", &self.to, true)?,
            before: clean(Some(&self.before)),
            limit,
        })
    }

    fn qs(&self, before: Option<&str>, format: Option<&str>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("user", &self.user),
            ("client_id", &self.client_id),
            ("action", &self.action),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if let Some(b) = before {
            s.append_pair("before", b);
        }
        if let Some(f) = format {
            s.append_pair("format", f);
        }
        s.finish()
    }
}

pub async fn index(
    State(state): State<AppState>,
    page: AdminPage,
    Query(f): Query<Filters>,
) -> Response {
    let limit = page_limit(None);
    let mut ctx = Context::new();
    ctx.insert("title", "Audit log");
    ctx.insert("section", "audit");
    ctx.insert(
        "filters",
        &json!({"user": f.user, "client_id": f.client_id, "action": f.action,
                "outcome": f.outcome, "from": f.from, "to": f.to}),
    );
    let result = match f.query(limit + 1) {
        Ok(q) => audit_log::page(&state.provider, &q).await,
        Err(e) => Err(e),
    };
    let (mut rows, status, error) = match result {
        Ok(r) => (r, StatusCode::OK, None),
        Err(e @ AdminError::Invalid { .. }) => (
            vec![],
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(e.to_string()),
        ),
        Err(e) => return failure(&state, e),
    };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_url = more
        .then(|| rows.last())
        .flatten()
        .map(|e| format!("/admin/audit?{}", f.qs(Some(&e.id), None)));
    let entries: Vec<_> = rows
        .iter()
        .map(|e| {
            json!({
                "at": when(e.at), "actor": e.actor, "action": e.action, "target": e.target,
                "client_id": e.client_id, "ip": e.ip, "outcome": e.outcome,
                "details": e.details.to_string(),
            })
        })
        .collect();
    ctx.insert("entries", &entries);
    ctx.insert("next_url", &next_url);
    ctx.insert(
        "csv_url",
        &format!("/admin/audit/export?{}", f.qs(None, Some("csv"))),
    );
    ctx.insert(
        "json_url",
        &format!("/admin/audit/export?{}", f.qs(None, Some("json"))),
    );
    ctx.insert("error", &error);
    render(&state, page, status, "admin/audit.html", ctx)
}

pub async fn export(
    State(state): State<AppState>,
    _page: AdminPage,
    Query(f): Query<Filters>,
) -> Response {
    let q = match f.query(1000) {
        Ok(mut q) => {
            q.before = None;
            q
        }
        Err(e) => return failure(&state, e),
    };
    let entries = match audit_log::export(&state.provider, &q).await {
        Ok(e) => e,
        Err(e) => return failure(&state, e),
    };
    if f.format == "csv" {
        (
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
            .into_response()
    } else {
        (
            [
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"portcullis-audit.json\"",
                ),
                (header::CACHE_CONTROL, "no-store"),
            ],
            Json(entries),
        )
            .into_response()
    }
}
