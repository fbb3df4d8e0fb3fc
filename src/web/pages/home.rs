//! `/`: where a person lands after signing in directly (not through an application).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use tera::Context;

use crate::web::session;
use crate::web::state::AppState;

pub async fn show(State(state): State<AppState>, jar: CookieJar) -> Response {
    match session::current(&state, &jar, state.now()).await {
        Ok(Some((_, user))) => {
            // Back to the admin page that sent this person to sign in, if any.
            let (jar, next) = crate::web::admin::pages::take_next(&state, jar);
            if let Some(next) = next {
                return (jar, Redirect::to(&next)).into_response();
            }
            let mut ctx = Context::new();
            ctx.insert("title", "Signed in");
            ctx.insert("email", &user.email);
            ctx.insert("name", &user.name);
            (jar, state.templates.page(StatusCode::OK, "home.html", &ctx)).into_response()
        }
        Ok(None) => Redirect::to("/login").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "session lookup failed");
            super::internal_error(&state)
        }
    }
}
