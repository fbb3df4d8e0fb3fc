//! The second sign-in step (`/login/mfa`): after the first method succeeded for an account with
//! an authenticator app, the browser holds the id of the waiting sign-in in a cookie and is
//! asked for a code from the app (field `code`) or one of its recovery codes (field
//! `recovery_code`). The rules are in `accounts::mfa`; a success ends in `login::finish_login`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use tera::Context;

use super::login::{finish_login, resume_authorization, session_cookie};
use super::mfa_wait::{cookie_name, require_second_factor};
use super::{FORM_EXPIRED, PageError, PageResult, Who, login_path};
use crate::accounts::Caller;
use crate::accounts::mfa::{self, Proof};
use crate::accounts::signin::Authenticated;
use crate::accounts::{AccountError, FieldErrors};
use crate::domain::{Client, User};
use crate::oauth::authorize::{self, AuthorizationRequest};
use crate::store::Session;
use crate::web::csrf;
use crate::web::oauth::authorize as authorize_page;
use crate::web::pages::Form;
use crate::web::state::AppState;

/// `/authorize` asked for two factors (`acr_values`) of a session with one. When the account has
/// a second factor: keep the request and ask for it; the session is then upgraded, not
/// replaced. Otherwise on with the session as it is: `acr_values` is voluntary (OIDC Core
/// §5.5.1.1) and the ID token's `acr` tells the client what was done.
pub async fn step_up(
    state: &AppState,
    jar: &CookieJar,
    req: AuthorizationRequest,
    client: &Client,
    sess: &Session,
    user: &User,
    now: i64,
) -> Response {
    let auth = Authenticated {
        user: user.clone(),
        methods: mfa::methods_of_amr(&sess.amr),
        at: sess.auth_time,
    };
    let needs = match mfa::needs_second_factor(&state.accounts, &auth).await {
        Ok(needs) => needs,
        Err(e) => return PageError::from(e).into_response(),
    };
    if !needs {
        return authorize_page::proceed(state, req, client, sess, None, now).await;
    }
    let rid = match authorize::save_login_request(&state.provider, &req, now).await {
        Ok(rid) => rid,
        Err(e) => return PageError::store(&e).into_response(),
    };
    match require_second_factor(state, jar, &auth, &rid, now).await {
        Ok(Some(resp)) => resp,
        Ok(None) => authorize_page::proceed(state, req, client, sess, Some(&rid), now).await,
        Err(e) => PageError::from(e).into_response(),
    }
}

/// After the second factor: a browser already signed in as this person (a step-up) keeps its
/// session, upgraded; `None` when there is none to upgrade.
async fn upgrade(
    state: &AppState,
    jar: &CookieJar,
    auth: &Authenticated,
    caller: &Caller,
    rid: &str,
    now: i64,
) -> Result<Option<Response>, AccountError> {
    let Some(secret) = jar.get(state.cookies.session).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let Some(started) = mfa::upgrade_session(&state.accounts, &secret, auth, now).await? else {
        return Ok(None);
    };
    state
        .audit(
            crate::audit::Event::new(crate::audit::action::LOGIN)
                .actor(&auth.user.id)
                .target(&auth.user.id)
                .origin(&caller.origin())
                .detail("amr", auth.amr().join(" "))
                .detail("step_up", true),
        )
        .await;
    let jar = jar.clone().add(session_cookie(state, started.secret));
    if rid.is_empty() {
        return Ok(Some((jar, Redirect::to("/")).into_response()));
    }
    let resp = resume_authorization(state, rid, &started.session, now).await;
    Ok(Some((jar, resp).into_response()))
}

#[derive(Deserialize)]
pub struct StepQuery {
    #[serde(default)]
    rid: String,
}

#[derive(Deserialize)]
pub struct StepForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    rid: String,
}

fn render(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    rid: &str,
    errors: &FieldErrors,
) -> Response {
    let (jar, token) = csrf::token(state, jar);
    let mut ctx = Context::new();
    ctx.insert("title", "Two-step sign-in");
    ctx.insert("csrf", &token);
    ctx.insert("rid", rid);
    ctx.insert(
        "errors",
        &super::field_view(&["code", "recovery_code", "form"], errors),
    );
    (jar, state.templates.page(status, "mfa_login.html", &ctx)).into_response()
}

/// GET /login/mfa: the code form, while a sign-in is waiting; otherwise back to `/login`.
pub async fn show(
    State(state): State<AppState>,
    jar: CookieJar,
    Query(q): Query<StepQuery>,
) -> PageResult {
    let now = state.now();
    let waiting = match jar.get(cookie_name(&state)) {
        Some(c) => mfa::is_waiting(&state.accounts, c.value(), now).await?,
        None => false,
    };
    if !waiting {
        return Ok(Redirect::to(&login_path(&q.rid)).into_response());
    }
    Ok(render(
        &state,
        jar,
        StatusCode::OK,
        &q.rid,
        &FieldErrors::default(),
    ))
}

/// POST /login/mfa: a right code completes the sign-in.
pub async fn submit(
    State(state): State<AppState>,
    Who(caller): Who,
    jar: CookieJar,
    Form(form): Form<StepForm>,
) -> PageResult {
    if !csrf::verify(&state, &jar, &form.csrf) {
        let errors = FieldErrors::one("form", FORM_EXPIRED);
        return Ok(render(
            &state,
            jar,
            StatusCode::FORBIDDEN,
            &form.rid,
            &errors,
        ));
    }
    let now = state.now();
    let Some(secret) = jar.get(cookie_name(&state)).map(|c| c.value().to_owned()) else {
        return Ok(Redirect::to(&login_path(&form.rid)).into_response());
    };
    let proof = if form.recovery_code.trim().is_empty() {
        Proof::Totp(&form.code)
    } else {
        Proof::Recovery(&form.recovery_code)
    };
    let auth = match mfa::complete(&state.accounts, &caller, &secret, proof, now).await {
        Ok(auth) => auth,
        Err(AccountError::Invalid(errors)) => {
            return Ok(render(
                &state,
                jar,
                StatusCode::BAD_REQUEST,
                &form.rid,
                &errors,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let jar = jar.remove(Cookie::build(cookie_name(&state)).path("/").build());
    if let Some(resp) = upgrade(&state, &jar, &auth, &caller, &form.rid, now).await? {
        return Ok(resp);
    }
    finish_login(&state, jar, &auth, &caller, &form.rid, now).await
}
