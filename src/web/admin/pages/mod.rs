//! The management pages under `/admin`: the normal sign-in session, the `admin` role checked on
//! every request, a CSRF token in every form, no scripts. Each page is a GET + POST pair over the
//! same service layer as the API (`crate::admin`).
//!
//! Signing in and coming back: a visitor without a session is sent to `/login`; the page they
//! wanted is kept in a short-lived cookie that only this module writes, and only for paths under
//! `/admin/`, so it can never become an open redirect. `/` sends a signed-in person on to it.

pub mod audit;
pub mod clients;
pub mod dashboard;
pub mod groups;
pub mod mail;
pub mod users;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Serialize;
use tera::Context;

use crate::admin::{ADMIN_ROLE, Actor, AdminError};
use crate::domain::User;
use crate::web::client_addr::ClientIp;
use crate::web::state::AppState;
use crate::web::{csrf, session};

const ADMIN_CSS: &str = include_str!("../../../../templates/admin/admin.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/", get(dashboard::show))
        .route("/admin/users", get(users::index).post(users::create))
        .route("/admin/users/{id}", get(users::show).post(users::act))
        .route("/admin/clients", get(clients::index).post(clients::create))
        .route("/admin/clients/{id}", get(clients::show).post(clients::act))
        .route("/admin/groups", get(groups::index).post(groups::create))
        .route("/admin/groups/{id}", get(groups::show).post(groups::act))
        .route("/admin/mail", get(mail::index))
        .route(
            "/admin/mail/{id}/requeue",
            axum::routing::post(mail::requeue),
        )
        .route("/admin/audit", get(audit::index))
        .route("/admin/audit/export", get(audit::export))
        .route("/static/admin.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ADMIN_CSS,
    )
        .into_response()
}

fn next_cookie(state: &AppState) -> &'static str {
    if state.cookies.secure {
        "__Host-portcullis_admin_next"
    } else {
        "portcullis_admin_next"
    }
}

/// A path we will send a signed-in admin back to: under `/admin`, relative, plain ASCII.
fn safe_next(path: &str) -> bool {
    (path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?"))
        && path.len() <= 1024
        && !path.contains("//")
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// For `/`: where a person who was sent to sign in from an admin page goes back to.
pub fn take_next(state: &AppState, jar: CookieJar) -> (CookieJar, Option<String>) {
    let name = next_cookie(state);
    let next = jar
        .get(name)
        .map(|c| c.value().to_owned())
        .filter(|p| safe_next(p));
    if jar.get(name).is_some() {
        (jar.remove(Cookie::build(name).path("/")), next)
    } else {
        (jar, next)
    }
}

/// A signed-in administrator on a page request.
pub struct AdminPage {
    pub user: User,
    pub actor: Actor,
    pub jar: CookieJar,
}

impl FromRequestParts<AppState> for AdminPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        // The admin routes are not nested, so this is the path the browser asked for.
        let uri = parts.uri.clone();
        let found = session::current(state, &jar, state.now())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "admin page: session lookup failed");
                crate::web::pages::internal_error(state)
            })?;
        let Some((_, user)) = found else {
            let path = uri
                .path_and_query()
                .map_or("/admin", |p| p.as_str())
                .to_owned();
            let jar = if safe_next(&path) {
                jar.add(
                    Cookie::build((next_cookie(state), path))
                        .path("/")
                        .http_only(true)
                        .secure(state.cookies.secure)
                        .same_site(SameSite::Lax)
                        .max_age(time::Duration::minutes(15))
                        .build(),
                )
            } else {
                jar
            };
            return Err((jar, Redirect::to("/login")).into_response());
        };
        if !user.has_role(ADMIN_ROLE) {
            return Err(state.templates.error_page(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "This page is for administrators.",
            ));
        }
        let origin = crate::audit::Origin {
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0.to_string()),
            user_agent: user_agent(&parts.headers),
        };
        Ok(Self {
            actor: Actor::user(&user.id, origin),
            user,
            jar,
        })
    }
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect())
}

/// Render an admin page with the CSRF token, the signed-in admin and a flash message.
pub fn render(
    state: &AppState,
    page: AdminPage,
    status: StatusCode,
    name: &str,
    mut ctx: Context,
) -> Response {
    let (jar, token) = csrf::token(state, page.jar);
    ctx.insert("csrf", &token);
    ctx.insert("me", &page.user.email);
    if !ctx.contains_key("flash") {
        ctx.insert("flash", &Option::<String>::None);
    }
    if !ctx.contains_key("error") {
        ctx.insert("error", &Option::<String>::None);
    }
    (jar, state.templates.page(status, name, &ctx)).into_response()
}

/// The page for a failed action: not found, invalid input, conflict, or a logged failure.
pub fn failure(state: &AppState, e: AdminError) -> Response {
    let (status, title) = match &e {
        AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        AdminError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "Check the input"),
        AdminError::Conflict(_) | AdminError::LastAdmin => (StatusCode::CONFLICT, "Not possible"),
        AdminError::Store(err) => {
            tracing::error!(error = %err, "admin page: storage failure");
            return crate::web::pages::internal_error(state);
        }
        AdminError::Hash => {
            tracing::error!("admin page: password hashing failed");
            return crate::web::pages::internal_error(state);
        }
        AdminError::Mail => {
            tracing::error!("admin page: cannot render an e-mail");
            return crate::web::pages::internal_error(state);
        }
    };
    state.templates.error_page(status, title, &e.to_string())
}

/// The page for a form whose CSRF token did not verify.
pub fn form_expired(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form expired. Go back, reload the page and try again.",
    )
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn when(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

pub fn when_opt(t: Option<i64>) -> Option<String> {
    t.map(when)
}

/// Serialize for a template context, or null.
pub fn value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_admin_paths_are_return_paths() {
        for ok in ["/admin", "/admin/users?q=a%20b", "/admin?x=1"] {
            assert!(safe_next(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example/admin",
            "/administrator",
            "/admin//evil",
            "/admin/\\evil",
            "/admin/ spaced",
            "/login",
            "",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
    }
}
