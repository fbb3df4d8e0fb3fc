//! `/account/email/confirm?token=…`: the link sent to a new address. The GET shows a button;
//! the POST makes the address the account's (`accounts::profile::confirm_email_change`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;

use super::verify::{LinkForm, LinkQuery, check_link_form, link_page};
use super::{PageResult, Who};
use crate::accounts::profile;
use crate::web::pages::Form;
use crate::web::state::AppState;

/// GET /account/email/confirm?token=…: a button that posts the token.
pub async fn show_link(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<LinkQuery>,
) -> Response {
    link_page(
        &state,
        jar,
        "Confirm your new e-mail address",
        "/account/email/confirm",
        &q.token,
    )
}

pub async fn confirm(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<LinkForm>,
) -> PageResult {
    check_link_form(&state, &jar, &form)?;
    profile::confirm_email_change(&state.accounts, &caller, &form.token, state.now()).await?;
    Ok(state.templates.notice_page(
        StatusCode::OK,
        "E-mail address changed",
        "Your new e-mail address is confirmed and now used for your account.",
        Some(("/account", "Your account")),
    ))
}
