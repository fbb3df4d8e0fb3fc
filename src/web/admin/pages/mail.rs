//! `/admin/mail`: messages given up after the retry budget, each with a re-queue button
//! (`crate::admin::outbox`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use tera::Context;

use super::{AdminPage, failure, form_expired, render, when_opt};
use crate::admin::{AdminCtx, AdminError, outbox, page_limit};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// The id of the last message of the previous page.
    before: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RequeueForm {
    #[serde(default)]
    csrf: String,
}

pub async fn index(
    State(state): State<AppState>,
    page: AdminPage,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(
        &state,
        page,
        q.before.as_deref(),
        StatusCode::OK,
        None,
        None,
    )
    .await
}

async fn list_page(
    state: &AppState,
    page: AdminPage,
    before: Option<&str>,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let limit = page_limit(None);
    let ctx = AdminCtx::from(&state.provider);
    let mut items = match outbox::given_up(ctx, before, limit + 1).await {
        Ok(l) => l,
        Err(e) => return failure(state, e),
    };
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|m| m.id.clone())
    });
    let mails: Vec<serde_json::Value> = items
        .iter()
        .map(|m| {
            let reason = m.last_error.as_deref().unwrap_or("");
            let mut v = super::value(m);
            v["failed"] = when_opt(m.failed_at).into();
            v["purpose"] = m.purpose.as_deref().unwrap_or("—").into();
            v["reason"] = reason.into();
            // Superseded and re-issued messages have a newer one: no button (409 anyway).
            v["requeueable"] = (!matches!(reason, "superseded" | "reissued")).into();
            v
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("title", "Mail");
    ctx.insert("section", "mail");
    ctx.insert("mails", &mails);
    ctx.insert("next", &next.flatten());
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    render(state, page, status, "admin/mail.html", ctx)
}

/// The re-queue button: CSRF token here, `Origin`/`Referer` by `web::origin` before it.
pub async fn requeue(
    State(state): State<AppState>,
    page: AdminPage,
    Path(id): Path<String>,
    Form(form): Form<RequeueForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let ctx = AdminCtx::from(&state.provider);
    let now = state.provider.clock.now();
    match outbox::requeue(ctx, &state.mailer, &page.actor, &id, now).await {
        Ok(done) => {
            let msg = match done.mode {
                outbox::RequeueMode::Requeued => "The message is queued again.",
                outbox::RequeueMode::Reissued => {
                    "A fresh message was queued; the old link or code no longer works."
                }
            };
            list_page(&state, page, None, StatusCode::OK, Some(msg.into()), None).await
        }
        Err(e @ AdminError::Conflict(_)) => {
            list_page(
                &state,
                page,
                None,
                StatusCode::CONFLICT,
                None,
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => failure(&state, e),
    }
}
