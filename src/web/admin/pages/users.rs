//! `/admin/users`: search, filter and page through users; create; view and act on one user.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::{AdminPage, failure, form_expired, render, value, when, when_opt};
use crate::admin::{AdminError, clean, groups, page_limit, users};
use crate::store::UserFilter;
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    /// "", "yes" or "no" for each filter.
    #[serde(default)]
    verified: String,
    #[serde(default)]
    disabled: String,
    #[serde(default)]
    deleted: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    after: String,
}

fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

pub async fn index(
    State(state): State<AppState>,
    page: AdminPage,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(&state, page, &q, StatusCode::OK, None, None).await
}

async fn list_page(
    state: &AppState,
    page: AdminPage,
    q: &ListQuery,
    status: StatusCode,
    flash: Option<String>,
    error: Option<String>,
) -> Response {
    let limit = page_limit(None);
    let filter = UserFilter {
        q: clean(Some(&q.q)),
        verified: yes_no(&q.verified),
        disabled: yes_no(&q.disabled),
        deleted: yes_no(&q.deleted),
        group_id: clean(Some(&q.group)),
        after: clean(Some(&q.after)),
        limit: limit + 1,
    };
    let (mut rows, all_groups) = match (
        users::list(&state.provider, &filter).await,
        groups::list(&state.provider).await,
    ) {
        (Ok(r), Ok(g)) => (r, g),
        (Err(e), _) | (_, Err(e)) => return failure(state, e),
    };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = more.then(|| rows.last().map(|u| u.email.clone())).flatten();
    let list: Vec<_> = rows
        .iter()
        .map(|u| {
            json!({
                "id": u.id, "email": u.email, "name": u.name, "phone_number": u.phone_number,
                "email_verified": u.email_verified, "disabled": u.disabled_at.is_some(),
                "deleted": u.deleted_at.is_some(), "created": when(u.created_at),
            })
        })
        .collect();
    let mut ctx = Context::new();
    ctx.insert("title", "Users");
    ctx.insert("section", "users");
    ctx.insert("users", &list);
    ctx.insert("groups", &value(&all_groups));
    ctx.insert(
        "query",
        &json!({"q": q.q, "verified": q.verified, "disabled": q.disabled, "deleted": q.deleted, "group": q.group}),
    );
    let next_url = next.map(|after| {
        let qs: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &q.q)
            .append_pair("verified", &q.verified)
            .append_pair("disabled", &q.disabled)
            .append_pair("deleted", &q.deleted)
            .append_pair("group", &q.group)
            .append_pair("after", &after)
            .finish();
        format!("/admin/users?{qs}")
    });
    ctx.insert("next_url", &next_url);
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    render(state, page, status, "admin/users.html", ctx)
}

/// The create-user form. No `Debug`: it holds a password.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    email_verified: Option<String>,
    #[serde(default)]
    send_invitation: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    page: AdminPage,
    Form(form): Form<CreateForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let input = users::CreateUser {
        email: form.email.clone(),
        name: clean(Some(&form.name)),
        password: clean(Some(&form.password)),
        email_verified: form.email_verified.is_some(),
        send_invitation: form.send_invitation.is_some(),
    };
    match users::create(&state.provider, &state.mailer, &page.actor, input).await {
        Ok(user) => Redirect::to(&format!("/admin/users/{}", user.user.id)).into_response(),
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_))) => {
            list_page(
                &state,
                page,
                &ListQuery::default(),
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
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
    let (view, all_groups) = match (
        users::get(&state.provider, id).await,
        groups::list(&state.provider).await,
    ) {
        (Ok(v), Ok(g)) => (v, g),
        (Err(e), _) | (_, Err(e)) => return failure(state, e),
    };
    let u = &view.user;
    let mut ctx = Context::new();
    ctx.insert("title", &u.email);
    ctx.insert("section", "users");
    ctx.insert("user", &value(u));
    ctx.insert(
        "attributes",
        &serde_json::to_string_pretty(&u.attributes).unwrap_or_default(),
    );
    ctx.insert("created", &when(u.created_at));
    ctx.insert("disabled", &when_opt(u.disabled_at));
    ctx.insert("deleted", &when_opt(u.deleted_at));
    ctx.insert("roles", &view.roles);
    ctx.insert("member_of", &value(&view.groups));
    let others: Vec<_> = all_groups
        .iter()
        .filter(|g| !view.groups.iter().any(|m| m.id == g.id))
        .collect();
    ctx.insert("other_groups", &value(&others));
    ctx.insert("flash", &flash);
    ctx.insert("error", &error);
    render(state, page, status, "admin/user.html", ctx)
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    role: String,
    // Profile fields (action=update)
    email: Option<String>,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    phone_number: Option<String>,
    locale: Option<String>,
    attributes: Option<String>,
}

pub async fn act(
    State(state): State<AppState>,
    page: AdminPage,
    Path(id): Path<String>,
    Form(form): Form<ActForm>,
) -> Response {
    if !csrf::verify(&state, &page.jar, &form.csrf) {
        return form_expired(&state);
    }
    let p = &state.provider;
    let a = &page.actor;
    let result: Result<&str, AdminError> = match form.action.as_str() {
        "update" => {
            let attributes = match form.attributes.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(text) => match serde_json::from_str(text) {
                    Ok(serde_json::Value::Object(m)) => Some(m),
                    _ => {
                        return detail_page(
                            &state,
                            page,
                            &id,
                            StatusCode::UNPROCESSABLE_ENTITY,
                            None,
                            Some(
                                "attributes: enter a JSON object, e.g. {\"team\": \"blue\"}".into(),
                            ),
                        )
                        .await;
                    }
                },
            };
            let patch = users::UserPatch {
                email: form.email.clone(),
                name: form.name.clone(),
                given_name: form.given_name.clone(),
                family_name: form.family_name.clone(),
                phone_number: form.phone_number.clone(),
                locale: form.locale.clone(),
                attributes,
                ..Default::default()
            };
            users::update(p, a, &id, patch)
                .await
                .map(|_| "Profile saved.")
        }
        "verify_email" => users::update(
            p,
            a,
            &id,
            users::UserPatch {
                email_verified: Some(true),
                ..Default::default()
            },
        )
        .await
        .map(|_| "E-mail address marked verified."),
        "disable" => users::set_disabled(p, a, &id, true)
            .await
            .map(|_| "User disabled; their sessions ended."),
        "enable" => users::set_disabled(p, a, &id, false)
            .await
            .map(|_| "User enabled."),
        "send_password_reset" => users::send_password_reset(p, &state.mailer, a, &id)
            .await
            .map(|()| "Password-reset e-mail sent."),
        "resend_invitation" => users::resend_invitation(p, &state.mailer, a, &id)
            .await
            .map(|()| "Invitation e-mail sent with a new link; the older links no longer work."),
        "end_sessions" => users::end_sessions(p, a, &id)
            .await
            .map(|_| "All sessions ended."),
        "delete" => users::delete(p, a, &id)
            .await
            .map(|()| "User deleted (restorable)."),
        "restore" => users::restore(p, a, &id).await.map(|_| "User restored."),
        "purge" => match users::purge(p, a, &id).await {
            Ok(()) => return Redirect::to("/admin/users").into_response(),
            Err(e) => Err(e),
        },
        "add_group" => groups::add_member(p, a, &form.group_id, &id)
            .await
            .map(|()| "Added to the group."),
        "remove_group" => groups::remove_member(p, a, &form.group_id, &id)
            .await
            .map(|()| "Removed from the group."),
        "grant_role" => users::grant_role(p, a, &id, form.role.trim())
            .await
            .map(|_| "Role granted."),
        "revoke_role" => users::revoke_role(p, a, &id, form.role.trim())
            .await
            .map(|_| "Role revoked."),
        _ => Err(AdminError::invalid("action", "unknown action")),
    };
    match result {
        Ok(msg) => detail_page(&state, page, &id, StatusCode::OK, Some(msg.into()), None).await,
        Err(e @ (AdminError::Invalid { .. } | AdminError::Conflict(_) | AdminError::LastAdmin)) => {
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
