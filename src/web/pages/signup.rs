//! `/signup`: create an account (e-mail, password twice, optional name and phone), then confirm
//! the address. The rules are in `accounts::signup`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tera::Context;

use super::{FORM_EXPIRED, PageResult, Who, field_view};
use crate::accounts::signup::{self, SIGNUP_CLOSED, SignUpInput};
use crate::accounts::{AccountError, FieldErrors, VERIFICATION_SENT};
use crate::web::csrf;
use crate::web::pages::Form;
use crate::web::state::AppState;

const FIELDS: &[&str] = &["name", "email", "phone", "password", "password_confirm"];

#[derive(Deserialize)]
pub struct SignupQuery {
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    form: &SignupForm,
    errors: &FieldErrors,
    error: Option<&str>,
) -> Response {
    let client_name = super::login::client_name(state, &form.rid, state.now()).await;
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Create an account");
    ctx.insert("csrf", &token);
    ctx.insert("rid", &form.rid);
    ctx.insert("name", &form.name);
    ctx.insert("email", &form.email);
    ctx.insert("phone", &form.phone);
    ctx.insert("errors", &field_view(FIELDS, errors));
    ctx.insert("error", &error);
    ctx.insert("client_name", &client_name);
    (jar, state.templates.page(status, "signup.html", &ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<SignupQuery>,
) -> PageResult {
    if !state.provider.settings.signup.enabled {
        return Err(SIGNUP_CLOSED.into());
    }
    let form = SignupForm {
        name: String::new(),
        email: String::new(),
        phone: String::new(),
        password: String::new(),
        password_confirm: String::new(),
        csrf: String::new(),
        rid: q.rid,
    };
    Ok(render(
        &state,
        jar,
        StatusCode::OK,
        &form,
        &FieldErrors::default(),
        None,
    )
    .await)
}

pub async fn submit(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<SignupForm>,
) -> PageResult {
    if !state.provider.settings.signup.enabled {
        return Err(SIGNUP_CLOSED.into());
    }
    if !csrf::verify(&state, &jar, &form.csrf) {
        let none = FieldErrors::default();
        let page = render(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form,
            &none,
            Some(FORM_EXPIRED),
        );
        return Ok(page.await);
    }
    let input = SignUpInput {
        name: form.name.clone(),
        email: form.email.clone(),
        phone: form.phone.clone(),
        password: form.password.clone(),
        password_confirm: form.password_confirm.clone(),
    };
    let result = signup::sign_up(&state.accounts, &caller, &input, state.now()).await;
    let email = match result {
        Err(AccountError::Invalid(errors)) => {
            return Ok(render(&state, jar, StatusCode::BAD_REQUEST, &form, &errors, None).await);
        }
        other => other?,
    };
    Ok(super::verify::page(
        &state,
        jar,
        StatusCode::OK,
        email.as_str(),
        &form.rid,
        Some(VERIFICATION_SENT),
        None,
    ))
}
