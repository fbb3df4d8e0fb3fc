//! `/signup`: create an account (e-mail, password twice, optional name), then confirm the
//! address. A taken address gets exactly the same page as a new one; its owner gets a mail
//! saying someone tried to register. The password is hashed in both cases, so timing tells
//! nothing either.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tera::Context;

use super::accounts::{self, CODE_SENT};
use super::login::origin;
use crate::audit::{self, Event, action};
use crate::domain::{Email, NewUser, Password, Phone};
use crate::email::Message;
use crate::oauth::authorize;
use crate::state::AppState;
use crate::store::StoreError;
use crate::web::csrf;
use crate::web::limits::Bucket;

const MAX_NAME_CHARS: usize = 200;

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

/// Messages shown beside each field.
#[derive(Default, Serialize)]
struct FieldErrors {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.name.is_some()
            || self.email.is_some()
            || self.phone.is_some()
            || self.password.is_some()
            || self.password_confirm.is_some()
    }
}

fn disabled(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::NOT_FOUND,
        "Sign-up is closed",
        "New accounts cannot be created here. Ask the administrator for an invitation.",
    )
}

async fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    form: &SignupForm,
    errors: &FieldErrors,
    error: Option<&str>,
) -> Response {
    let now = crate::now();
    let client_name = match authorize::peek_login_request(&state.provider, &form.rid, now).await {
        Ok(Some(req)) => state
            .provider
            .store
            .find_client(&req.client_id)
            .await
            .ok()
            .flatten()
            .map(|c| c.name),
        _ => None,
    };
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Create an account");
    ctx.insert("csrf", &token);
    ctx.insert("rid", &form.rid);
    ctx.insert("name", &form.name);
    ctx.insert("email", &form.email);
    ctx.insert("phone", &form.phone);
    ctx.insert("errors", errors);
    ctx.insert("error", &error);
    ctx.insert("client_name", &client_name);
    (jar, state.templates.page(status, "signup.html", &ctx)).into_response()
}

pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<SignupQuery>,
) -> Response {
    if !state.provider.settings.signup.enabled {
        return disabled(&state);
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
    render(
        &state,
        jar,
        StatusCode::OK,
        &form,
        &FieldErrors::default(),
        None,
    )
    .await
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SignupForm>,
) -> Response {
    if !state.provider.settings.signup.enabled {
        return disabled(&state);
    }
    let now = crate::now();
    let origin = origin(peer, &headers);
    let none = FieldErrors::default();
    if !csrf::verify(&state, &jar, &form.csrf) {
        let msg = "This form expired. Please try again.";
        return render(&state, jar, StatusCode::FORBIDDEN, &form, &none, Some(msg)).await;
    }
    if let Err(resp) = accounts::check_limits(&state, Bucket::Signup, peer, &origin, None).await {
        return resp;
    }

    // Validation: every field gets its own message.
    let mut errors = FieldErrors::default();
    let name = form.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        errors.name = Some(format!("Use at most {MAX_NAME_CHARS} characters."));
    }
    let email = match Email::parse(&form.email) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.email = Some(e.0);
            None
        }
    };
    let phone = if form.phone.trim().is_empty() {
        None
    } else {
        match Phone::parse(&form.phone) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.phone = Some(e.0);
                None
            }
        }
    };
    let password = match &email {
        Some(email) => Password::parse_new(&form.password, email),
        None => Password::parse(&form.password),
    };
    let password = match password {
        Ok(p) => Some(p),
        Err(e) => {
            errors.password = Some(e.0);
            None
        }
    };
    if form.password != form.password_confirm {
        errors.password_confirm = Some("The two passwords are not the same.".into());
    }
    let (Some(email), Some(password), false) = (email, password, errors.any()) else {
        return render(&state, jar, StatusCode::BAD_REQUEST, &form, &errors, None).await;
    };

    if let Err(resp) =
        accounts::check_account_limit(&state, Bucket::Signup, &origin, email.as_str()).await
    {
        return resp;
    }

    // Hash first, whether or not the address is taken.
    let hash = match state.provider.hasher.hash(&password).await {
        Ok(h) => h,
        Err(e) => return accounts::store_failed(&state, &e, "password hashing failed"),
    };
    // The browser's language becomes the account's `locale` (later mails follow it).
    let language = accounts::accept_language(&headers);
    let new_user = NewUser {
        email: email.clone(),
        email_verified: false,
        password_hash: Some(hash),
        name: (!name.is_empty()).then(|| name.to_owned()),
        roles: vec![],
        phone_number: phone.as_ref().map(|p| p.as_str().to_owned()),
        locale: language
            .as_deref()
            .filter(|l| accounts::is_language_tag(l))
            .map(str::to_owned),
    };
    let store = &state.provider.store;
    match sign_up(&state, &new_user, now).await {
        Ok(Some(user_id)) => {
            tracing::info!(user.id = %user_id, "account created");
            audit::record(
                store.as_ref(),
                Event::new(action::SIGNUP)
                    .actor(&user_id)
                    .target(&user_id)
                    .origin(&origin),
            )
            .await;
        }
        Ok(None) => {
            // Taken: tell the owner, and answer exactly as for a new account.
            let mail = state.mailer.render(
                email.as_str(),
                &Message::AlreadyRegistered {
                    login_link: accounts::link(&state, "/login", ""),
                    reset_link: accounts::link(&state, "/forgot-password", ""),
                },
            );
            match mail {
                Ok(mail) => {
                    if let Err(e) = state.mailer.enqueue(store.as_ref(), &mail).await {
                        return accounts::store_failed(&state, &e, "cannot queue mail");
                    }
                }
                Err(e) => return accounts::store_failed(&state, &e, "cannot render mail"),
            }
            audit::record(
                store.as_ref(),
                Event::new(action::SIGNUP)
                    .origin(&origin)
                    .failure("email_taken"),
            )
            .await;
        }
        Err(resp) => return resp,
    }
    accounts::verify_page(
        &state,
        jar,
        StatusCode::OK,
        email.as_str(),
        &form.rid,
        Some(CODE_SENT),
        None,
    )
}

/// Create the account with its verification link, code and mail in one transaction. `None` when
/// the address is taken (nothing was written).
async fn sign_up(state: &AppState, user: &NewUser, now: i64) -> Result<Option<String>, Response> {
    let id = uuid::Uuid::new_v4().to_string();
    let (codes, mail) = accounts::verification(
        state,
        &id,
        user.email.as_str(),
        user.name.clone(),
        user.locale.as_deref(),
        now,
    )?;
    match state
        .provider
        .store
        .sign_up(&id, user, &codes, &[mail], now)
        .await
    {
        Ok(created) => {
            state.mailer.wake();
            Ok(Some(created.id))
        }
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(accounts::store_failed(state, &e, "cannot create account")),
    }
}
