//! Administration: the service layer shared by the JSON API (`web::admin::api`), the management
//! pages (`web::admin::pages`) and the CLI. No HTTP here: each operation validates its input,
//! enforces the rules (last admin, grace period, secrets shown once), writes through the store,
//! and records an audit entry with who did what and the before/after of changed fields.
//!
//! The operations the CLI shares (clients, roles) take an [`AdminCtx`]: the server passes its
//! `&Provider`, the CLI builds one over its own store, as it has no signing keys to load.

pub mod audit_log;
pub mod clients;
pub mod dashboard;
pub mod groups;
pub mod outbox;
pub mod users;

use crate::audit::{Event, Origin};
use crate::config::Settings;
use crate::oauth::Provider;
use crate::oauth::client_auth::ClientCache;
use crate::store::{Store, StoreError};

/// The role that makes a user an administrator.
pub const ADMIN_ROLE: &str = "admin";

/// What the shared operations work with: the store, the settings, and this process's cache of
/// client records (told of every client change, so the token endpoint sees it at once).
#[derive(Clone, Copy)]
pub struct AdminCtx<'a> {
    pub store: &'a dyn Store,
    pub settings: &'a Settings,
    pub clients: &'a ClientCache,
}

impl<'a> From<&'a Provider> for AdminCtx<'a> {
    fn from(p: &'a Provider) -> Self {
        Self {
            store: p.store.as_ref(),
            settings: &p.settings,
            clients: &p.clients,
        }
    }
}

/// Who is acting, as written to the audit trail's `actor`.
#[derive(Debug, Clone)]
pub struct Actor {
    /// A user id, `client:<id>`, or `cli`.
    pub id: String,
    pub origin: Origin,
}

impl Actor {
    pub fn user(id: &str, origin: Origin) -> Self {
        Self {
            id: id.to_owned(),
            origin,
        }
    }

    pub fn client(id: &str, origin: Origin) -> Self {
        Self {
            id: format!("client:{id}"),
            origin,
        }
    }

    pub fn cli() -> Self {
        Self {
            id: "cli".to_owned(),
            origin: Origin::default(),
        }
    }

    pub(crate) fn event(&self, action: &'static str) -> Event {
        Event::new(action).actor(&self.id).origin(&self.origin)
    }
}

/// Why an administrative operation did not happen. Messages are safe to show to the admin.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Bad input: the field and what is wrong with it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The request conflicts with the current state (duplicate name, not deleted, ...).
    #[error("{0}")]
    Conflict(String),
    #[error("the last administrator cannot be demoted, disabled or deleted")]
    LastAdmin,
    #[error("storage failure")]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hash,
    /// An e-mail could not be rendered (nothing was written).
    #[error("the e-mail could not be prepared")]
    Mail,
}

impl AdminError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;

/// Page size bounds shared by every list.
pub fn page_limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(50).clamp(1, 200)
}

/// Trimmed, `None` when empty.
pub(crate) fn clean(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
