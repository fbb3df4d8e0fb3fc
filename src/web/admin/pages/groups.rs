//! `/admin/groups`: create, rename, delete, and see the members of a group.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tera::Context;

use super::{AdminPage, failure, form_expired, render, value};
use crate::admin::{AdminError, groups, page_limit};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Debug, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    name: String,
}

pub async fn index(State(state): State<AppState>, page: AdminPage) -> Response {
    list_page(&state, page, StatusCode::OK, None).await
}

async fn list_page(
    state: &AppState,
    page: AdminPage,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let list = match groups::list(&state.provider).await {
        Ok(l) => l,
        Err(e) => return failure(state, e),
    };
    let mut ctx = Context::new();
    ctx.insert("title", "Groups");
    ctx.insert("section", "groups");
    ctx.insert("groups", &value(&list));
    ctx.insert("error", &error);
    render(state, page, status, "admin/groups.html", ctx)
}

pub async fn create(
    State(state): State<AppState>,
    page: AdminPage,
    Form(form): Form<GroupForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    match groups::create(&state.provider, &page.actor, &form.name).await {
        Ok(g) => Redirect::to(&format!("/admin/groups/{}", g.id)).into_response(),
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_))) => {
            list_page(
                &state,
                page,
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
    detail_page(&state, page, &id, StatusCode::OK, None, None).await
}

async fn detail_page(
    state: &AppState,
    page: AdminPage,
    id: &str,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let group = match groups::get(&state.provider, id).await {
        Ok(g) => g,
        Err(e) => return failure(state, e),
    };
    // The first page of members; the rest are a filtered (and paged) user list away.
    let shown = page_limit(None);
    let mut members = match groups::members(&state.provider, id, None, shown + 1).await {
        Ok(m) => m,
        Err(e) => return failure(state, e),
    };
    let more = members.len() as i64 > shown;
    members.truncate(shown as usize);
    let all_url = more.then(|| {
        let qs: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("group", id)
            .finish();
        format!("/admin/users?{qs}")
    });
    let mut ctx = Context::new();
    ctx.insert("title", &group.name);
    ctx.insert("section", "groups");
    ctx.insert("group", &value(&group));
    ctx.insert("members", &value(&members));
    ctx.insert("all_members_url", &all_url);
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    render(state, page, status, "admin/group.html", ctx)
}

pub async fn act(
    State(state): State<AppState>,
    page: AdminPage,
    Path(id): Path<String>,
    Form(form): Form<GroupForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let result = match form.action.as_str() {
        "rename" => groups::rename(&state.provider, &page.actor, &id, &form.name)
            .await
            .map(|_| ()),
        "delete" => match groups::delete(&state.provider, &page.actor, &id).await {
            Ok(()) => return Redirect::to("/admin/groups").into_response(),
            Err(e) => Err(e),
        },
        _ => Err(AdminError::invalid("action", "unknown action")),
    };
    match result {
        Ok(()) => {
            detail_page(
                &state,
                page,
                &id,
                StatusCode::OK,
                Some("Group renamed.".into()),
                None,
            )
            .await
        }
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_))) => {
            detail_page(
                &state,
                page,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => failure(&state, e),
    }
}
