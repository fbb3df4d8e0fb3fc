//! Hosted pages, each a GET + POST pair rendered from `templates/`. A handler parses its form,
//! calls one function of `crate::accounts` (or of the protocol layers) and renders the result;
//! failures travel as [`PageError`] with `?`.

pub mod account;
pub mod code_login;
pub mod consent;
pub mod email_change;
pub mod home;
pub mod login;
pub mod logout;
pub mod mfa;
pub mod mfa_account;
pub mod mfa_wait;
pub mod reset;
pub mod signup;
pub mod verify;

use std::net::IpAddr;

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::accounts::{AccountError, Caller, FieldErrors, Refusal};
use crate::domain::User;
use crate::store::Session;
use crate::web::client_addr::ClientIp;
use crate::web::state::AppState;

const STYLESHEET: &str = include_str!("../../../templates/portcullis.css");
const FORM_POST_SCRIPT: &str = include_str!("../../../templates/form_post.js");

/// What a CSRF failure says on forms that are shown again.
pub const FORM_EXPIRED: &str = "This form expired. Please try again.";

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The one script of the site: submits the form_post response form (served as a file, since
/// the CSP forbids inline script).
pub async fn form_post_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FORM_POST_SCRIPT,
    )
        .into_response()
}

/// A waiting authorization request that expired or was already completed.
pub fn request_expired(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::BAD_REQUEST,
        "Sign-in request expired",
        "This request expired or was already answered. Go back to the application and start again.",
    )
}

pub async fn not_found(State(state): State<AppState>) -> Response {
    state.templates.error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
}

/// The page for a failure that was already logged.
pub fn internal_error(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. Please try again in a moment.",
    )
}

/// The database cannot be reached: a 503 page (the router adds `Retry-After`).
pub fn unavailable(state: &AppState) -> Response {
    state.templates.error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The service is temporarily unavailable. Please try again in a moment.",
    )
}

/// A page that ends a handler early: rendered already (a form shown again with its messages),
/// or a page described here and rendered by [`render_error_pages`] (which has the templates).
#[derive(Debug)]
pub enum PageError {
    Rendered(Box<Response>),
    Page(ErrorPage),
}

/// An error page waiting to be rendered: carried from [`PageError`] to the middleware in the
/// response's extensions.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    status: StatusCode,
    title: &'static str,
    message: &'static str,
    link: Option<(&'static str, &'static str)>,
}

impl PageError {
    pub fn page(status: StatusCode, title: &'static str, message: &'static str) -> Self {
        Self::Page(ErrorPage {
            status,
            title,
            message,
            link: None,
        })
    }

    /// The generic page for a failure on our side (log it before).
    pub fn internal() -> Self {
        Self::page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Please try again in a moment.",
        )
    }

    /// A posted form whose CSRF token does not match this browser.
    pub fn form_expired() -> Self {
        Self::page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form expired. Go back, reload the page and try again.",
        )
    }

    /// The database cannot be reached: 503 (the middleware adds `Retry-After`).
    pub fn unavailable() -> Self {
        Self::page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service is temporarily unavailable. Please try again in a moment.",
        )
    }

    /// A store failure: logged once here, answered with the generic page.
    pub fn store(e: &crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::unavailable();
        }
        tracing::error!(error = %e, "database failure");
        Self::internal()
    }
}

impl From<Refusal> for PageError {
    fn from(r: Refusal) -> Self {
        Self::Page(ErrorPage {
            status: StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST),
            title: r.title,
            message: r.message,
            link: r.link,
        })
    }
}

impl From<AccountError> for PageError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Refused(r) => r.into(),
            AccountError::RateLimited { retry_after_secs } => {
                let mut resp = Self::page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts",
                    "Too many attempts. Please wait a little and try again.",
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                Self::Rendered(Box::new(resp))
            }
            // A form that was not meant to be shown again: its first message on a page.
            AccountError::Invalid(fields) => {
                tracing::warn!(?fields, "input refused without a form to show it");
                Self::page(
                    StatusCode::BAD_REQUEST,
                    "Check your input",
                    "Something in the form was not right. Go back and try again.",
                )
            }
            AccountError::Unavailable => {
                tracing::warn!("database unavailable");
                Self::unavailable()
            }
            AccountError::Internal { what, source } => {
                tracing::error!(error = %source, "{what}");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Rendered(resp) => *resp,
            Self::Page(page) => {
                let mut resp = page.status.into_response();
                resp.extensions_mut().insert(page);
                resp
            }
        }
    }
}

/// Renders the [`ErrorPage`]s that handlers return, keeping the headers they set (cookies,
/// `Retry-After`).
pub async fn render_error_pages(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let Some(page) = resp.extensions().get::<ErrorPage>().cloned() else {
        return resp;
    };
    let (parts, _) = resp.into_parts();
    let mut rendered = match page.link {
        Some(link) => {
            state
                .templates
                .notice_page(page.status, page.title, page.message, Some(link))
        }
        None => state
            .templates
            .error_page(page.status, page.title, page.message),
    };
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().append(name, value.clone());
        }
    }
    rendered
}

/// A handler's answer.
pub type PageResult = Result<Response, PageError>;

/// `axum::Form` for the pages: a body that cannot be read as the form (no or another content
/// type, a missing field) is answered with a 400 error page, never axum's plain-text rejection.
/// (Text that is not UTF-8 never gets this far: `web::text` refuses it in the same format.)
pub struct Form<T>(pub T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(form)) => Ok(Self(form)),
            Err(e) => {
                tracing::info!(status = e.status().as_u16(), "unreadable form refused");
                Err(PageError::page(
                    StatusCode::BAD_REQUEST,
                    "Bad request",
                    "The form could not be read. Go back, reload the page and try again.",
                ))
            }
        }
    }
}

/// Show the form again with its messages when an account flow refused the input.
pub trait OrForm<T> {
    fn or_form(self, show: impl FnOnce(&FieldErrors) -> Response) -> Result<T, PageError>;
}

impl<T> OrForm<T> for Result<T, AccountError> {
    fn or_form(self, show: impl FnOnce(&FieldErrors) -> Response) -> Result<T, PageError> {
        match self {
            Ok(v) => Ok(v),
            Err(AccountError::Invalid(fields)) => Err(PageError::Rendered(Box::new(show(&fields)))),
            Err(e) => Err(e.into()),
        }
    }
}

/// The person's preferred language from `Accept-Language` (its first tag).
fn accept_language(headers: &HeaderMap) -> Option<String> {
    let first = headers
        .get(header::ACCEPT_LANGUAGE)?
        .to_str()
        .ok()?
        .split([',', ';'])
        .next()?
        .trim();
    (!first.is_empty() && first.len() <= 35).then(|| first.to_owned())
}

/// Who sent the request: the client address (`client_addr`), the browser, its language.
pub fn caller(ip: IpAddr, headers: &HeaderMap) -> Caller {
    Caller {
        ip,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
        language: accept_language(headers),
        device: None,
    }
}

/// `Caller` as an extractor (its address from [`ClientIp`], its known-device cookie under this
/// server's name for it).
pub struct Who(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for Who
where
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let mut who = caller(ip, &parts.headers);
        let name = AppState::from_ref(state).cookies.device;
        who.device = CookieJar::from_headers(&parts.headers)
            .get(name)
            .and_then(|c| crate::accounts::throttle::DeviceCookie::parse(c.value()));
        Ok(Self(who))
    }
}

/// The signed-in session and its user; a browser without one is sent to `/login`.
pub struct SignedIn {
    pub session: Session,
    pub user: User,
}

impl<S> FromRequestParts<S> for SignedIn
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let jar = CookieJar::from_headers(&parts.headers);
        match super::session::current(&state, &jar, state.now()).await {
            Ok(Some((session, user))) => Ok(Self { session, user }),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(PageError::store(&e).into_response()),
        }
    }
}

/// `/login`, continuing the authorization request `rid` when there is one.
pub fn login_path(rid: &str) -> String {
    if rid.is_empty() {
        "/login".to_owned()
    } else {
        let rid: String = url::form_urlencoded::byte_serialize(rid.as_bytes()).collect();
        format!("/login?rid={rid}")
    }
}

/// The template view of a form's messages: every field the template reads, present (`null`
/// when it has no message), so that templates never meet an undefined variable.
pub fn field_view<'a>(
    fields: &[&'static str],
    errors: &'a FieldErrors,
) -> std::collections::BTreeMap<&'static str, Option<&'a str>> {
    fields.iter().map(|f| (*f, errors.get(f))).collect()
}
