//! The admin JSON API under `/admin/api/v1`: conventional REST verbs and status codes, RFC 7807
//! problem details for every error, Bearer-token authentication (`auth`). Handlers are thin:
//! parse, call `crate::admin`, serialise.

pub mod auth;
pub mod problem;

mod audit;
mod clients;
mod dashboard;
mod groups;
mod mail;
mod users;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::state::AppState;
pub use auth::Admin;
pub use problem::Problem;

/// The routes and the OpenAPI document, both generated from the handlers' `#[utoipa::path]`
/// annotations (via `utoipa_axum::routes!`), so the document cannot drift from the code.
pub fn router() -> Router<AppState> {
    let (router, openapi) = api_router().split_for_parts();
    let doc = bytes::Bytes::from(openapi.to_json().unwrap_or_default());
    router
        .route(
            "/admin/api/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], doc) }
            }),
        )
        .route("/admin/api/v1", any(|| async { Problem::not_found() }))
        .route(
            "/admin/api/v1/{*rest}",
            any(|| async { Problem::not_found() }),
        )
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "this resource does not support that method",
            )
        })
}

/// The OpenAPI document alone (for tools and tests).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Portcullis admin API",
        description = "Manage users, clients, groups, re-queue given-up mail and read the audit log. Authenticate with a Bearer access token issued by Portcullis with scope `portcullis:admin`. Errors are RFC 7807 problem details."
    ),
    modifiers(&BearerScheme),
    components(schemas(Problem))
)]
struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::show, users::update, users::delete))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(users::restore))
        .routes(routes!(users::purge))
        .routes(routes!(users::end_sessions))
        .routes(routes!(users::password_reset))
        .routes(routes!(users::resend_invitation))
        .routes(routes!(users::groups))
        .routes(routes!(users::grant_role, users::revoke_role))
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::show, clients::update, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(clients::disable))
        .routes(routes!(clients::enable))
        .routes(routes!(groups::list, groups::create))
        .routes(routes!(groups::show, groups::rename, groups::delete))
        .routes(routes!(groups::members))
        .routes(routes!(groups::add_member, groups::remove_member))
        .routes(routes!(mail::given_up))
        .routes(routes!(mail::requeue))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(dashboard::show))
}

/// A page of results and the cursor of the next page (absent on the last page).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `items` were fetched with `limit + 1`: an extra row means there is a next page.
    pub fn new(mut items: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Self {
        let more = items.len() as i64 > limit;
        items.truncate(limit.max(0) as usize);
        let next_cursor = if more {
            items.last().map(cursor_of)
        } else {
            None
        };
        Self { items, next_cursor }
    }
}

pub fn encode_cursor(parts: &[&str]) -> String {
    URL_SAFE_NO_PAD.encode(parts.join("\n"))
}

pub fn decode_cursor(cursor: &str, n: usize) -> Result<Vec<String>, Problem> {
    let bad = || {
        Problem::from(crate::admin::AdminError::invalid(
            "cursor",
            "not a cursor returned by this API",
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let parts: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if parts.len() == n {
        Ok(parts)
    } else {
        Err(bad())
    }
}

/// `Json<T>` whose rejections are problem details.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                "send the body as application/json",
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unprocessable Entity",
                e.body_text(),
            )),
            Err(e) => Err(Problem::new(e.status(), "Bad Request", e.body_text())),
        }
    }
}

/// `Query<T>` whose rejections are problem details.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(Problem::bad_request(match e {
                QueryRejection::FailedToDeserializeQueryString(e) => e.body_text(),
                e => e.body_text(),
            })),
        }
    }
}
