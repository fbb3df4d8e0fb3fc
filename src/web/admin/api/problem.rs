//! RFC 7807 problem details (`application/problem+json`) for every admin API error.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::admin::AdminError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank` (RFC 7807 §4.2): the status and title say it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The OAuth error code for authentication failures (RFC 6750 §3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// The input field a validation error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub challenge: Option<&'static str>,
}

impl Problem {
    /// The database cannot be reached: 503 (the router adds `Retry-After`).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the database is temporarily unavailable; retry later",
        )
    }

    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: Some(detail.into()),
            error: None,
            field: None,
            challenge: None,
        }
    }

    /// 401: no usable token. The challenge names the error when a token was presented.
    pub fn unauthorized(invalid_token: bool) -> Self {
        let mut p = Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            if invalid_token {
                "the access token is invalid or expired"
            } else {
                "a Bearer access token with scope portcullis:admin is required"
            },
        );
        p.challenge = Some(if invalid_token {
            p.error = Some("invalid_token");
            "Bearer realm=\"portcullis\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"portcullis\", scope=\"portcullis:admin\""
        });
        p
    }

    /// 403: a valid token without administrative rights.
    pub fn insufficient_scope(detail: &str) -> Self {
        let mut p = Self::new(StatusCode::FORBIDDEN, "Forbidden", detail);
        p.error = Some("insufficient_scope");
        p.challenge = Some(
            "Bearer realm=\"portcullis\", error=\"insufficient_scope\", scope=\"portcullis:admin\"",
        );
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Bad Request", detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Not Found", "no such resource")
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "something went wrong on our side",
        )
    }
}

impl From<AdminError> for Problem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "Not Found",
                format!("{what} not found"),
            ),
            AdminError::Invalid { field, message } => {
                let mut p = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Unprocessable Entity",
                    format!("{field}: {message}"),
                );
                p.field = Some(field);
                p
            }
            AdminError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            e @ AdminError::LastAdmin => Self::new(StatusCode::CONFLICT, "Conflict", e.to_string()),
            AdminError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "admin API: database unavailable");
                Self::unavailable()
            }
            AdminError::Store(e) => {
                tracing::error!(error = %e, "admin API storage failure");
                Self::internal()
            }
            AdminError::Hash => {
                tracing::error!("admin API password hashing failed");
                Self::internal()
            }
            AdminError::Mail => {
                tracing::error!("admin API: cannot render an e-mail");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let challenge = self.challenge;
        let mut resp = (status, Json(self)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        resp
    }
}

impl From<AdminError> for Response {
    fn from(e: AdminError) -> Self {
        Problem::from(e).into_response()
    }
}

/// The error responses every admin endpoint may give, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum Errors {
    #[response(
        status = 400,
        description = "Malformed request",
        content_type = "application/problem+json"
    )]
    BadRequest(Problem),
    #[response(
        status = 401,
        description = "No valid Bearer token",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 403,
        description = "The token has no admin rights (insufficient_scope)",
        content_type = "application/problem+json"
    )]
    Forbidden(Problem),
    #[response(
        status = 404,
        description = "No such resource",
        content_type = "application/problem+json"
    )]
    NotFound(Problem),
    #[response(
        status = 405,
        description = "Method not allowed",
        content_type = "application/problem+json"
    )]
    MethodNotAllowed(Problem),
    #[response(
        status = 409,
        description = "Conflicts with the current state",
        content_type = "application/problem+json"
    )]
    Conflict(Problem),
    #[response(
        status = 413,
        description = "Body too large",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(
        status = 415,
        description = "Body is not JSON",
        content_type = "application/problem+json"
    )]
    UnsupportedMediaType(Problem),
    #[response(
        status = 422,
        description = "Invalid input",
        content_type = "application/problem+json"
    )]
    Unprocessable(Problem),
}
