//! Storage: one `Store` trait, one implementation per SQL dialect (`sqlite`, `postgres`),
//! chosen from the URL scheme. SQL appears nowhere else in the code base.
//!
//! Secrets are stored only as SHA-256 hashes (`*_hash` columns); lookups go by hash.

mod accounts;
mod admin;
mod audit;
mod deny;
mod devices;
mod groups;
mod invitations;
mod keys;
mod limits;
mod listen;
mod logout;
mod mail_lock;
pub(crate) mod mfa;
mod outbox;
pub(crate) mod outbox_admin;
mod postgres;
mod profile;
mod rows;
mod sessions;
mod sql;
mod sqlite;
mod sqlite_rotations;
mod tokens;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Client, Email, NewUser, User};

pub use accounts::{AccountCode, AccountStore, CodeCheck, CodePurpose, NewAccountCode};
pub use admin::{AdminStore, AdminUser, Counts, LoginDay, UserFilter, UserProfile};
pub use audit::{AuditQuery, AuditRecord, AuditStore};
pub use devices::{DeviceStore, SeenDevice};
pub use groups::{Group, GroupStore};
pub use invitations::InvitationStore;
pub use keys::{KeyStore, StoredKey};
pub use limits::{LimiterStore, Reservation};
pub use listen::{CHANGE_LISTENER_UP, Change, ChangeSink};
pub use logout::{Delivery, LogoutStore, SessionRef};
pub use mail_lock::{MailLocking, MailSendLock};
pub use mfa::{MfaPending, MfaStore, TotpRecord};
pub use outbox::{Channel, MailStore, NewMail, OutboxMail};
pub use outbox_admin::{OutboxAdminStore, OutboxEntry};
pub use postgres::PgStore;
pub use profile::{AccountPageStore, ProfileUpdate};
pub use sessions::{NewSession, PasswordChange, Session, SessionInfo, SessionStore};
pub use sqlite::{ServerLock, SqliteStore, lock_for_serving};
pub use tokens::{RefreshToken, TokenStore};

/// Everything a backend implements: one capability trait per area, each in its own file with
/// its own `impl_*!` macro instantiated by `sqlite.rs` and `postgres.rs`. Bring the traits into
/// scope with `use crate::store::prelude::*`.
pub trait Store:
    CoreStore
    + SessionStore
    + AuditStore
    + TokenStore
    + LogoutStore
    + AdminStore
    + GroupStore
    + AccountStore
    + AccountPageStore
    + MailStore
    + MailLocking
    + OutboxAdminStore
    + InvitationStore
    + KeyStore
    + LimiterStore
    + DeviceStore
    + MfaStore
    + Send
    + Sync
    + 'static
{
}
impl<T> Store for T where
    T: CoreStore
        + SessionStore
        + AuditStore
        + TokenStore
        + LogoutStore
        + AdminStore
        + GroupStore
        + AccountStore
        + AccountPageStore
        + MailStore
        + MailLocking
        + OutboxAdminStore
        + InvitationStore
        + KeyStore
        + LimiterStore
        + DeviceStore
        + MfaStore
        + Send
        + Sync
        + 'static
{
}

/// The capability traits, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        AccountPageStore, AccountStore, AdminStore, AuditStore, CoreStore, DeviceStore, GroupStore,
        InvitationStore, KeyStore, LimiterStore, LogoutStore, MailLocking, MailStore, MfaStore,
        OutboxAdminStore, SessionStore, Store, TokenStore,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an e-mail already registered).
    #[error("already exists")]
    Conflict,
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// The database cannot be reached (refused, timed out, connection lost): answered 503 with
    /// `Retry-After`, never taken as "not found" or "revoked".
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database has migrations this binary does not know: a newer version migrated it.
    #[error(
        "the database schema is newer than this binary (it has migration {found}, this version \
         knows up to {known}): run a Portcullis version at least as new as the one that migrated it"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An account `CoreStore::backfill_email_canonical` could not give a canonical address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailBackfillIssue {
    /// Its address is, canonically, the address of the older account `holder`.
    Duplicate { user_id: String, holder: String },
    /// Its stored address is not a valid address any more (e.g. a domain IDNA refuses).
    Invalid { user_id: String },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            e => Self::Database(e),
        }
    }
}

impl StoreError {
    /// The database could not be reached: the caller answers 503, the work is not lost.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// An authorization code as stored: everything the token endpoint must check it against.
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    /// How the person signed in: RFC 8176 `amr` values, space-separated (from the session).
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when the code was redeemed, with the access token issued then (for revocation on replay).
    pub used_at: Option<i64>,
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
}

/// The outcome of trying to redeem a code once.
#[derive(Debug)]
pub enum Redemption {
    /// This call marked the code used.
    Redeemed,
    /// Someone else already redeemed it: the caller must treat this as a replay.
    AlreadyUsed {
        access_jti: Option<String>,
        access_exp: Option<i64>,
    },
    /// Not redeemed, and no longer redeemable: it expired, or the session it came from ended.
    Expired,
}

/// A remembered consent, as listed on the account page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub updated_at: i64,
}

/// Users, clients, sessions, codes, consents and group claims: what the sign-in flow needs.
#[async_trait]
pub trait CoreStore: Send + Sync + 'static {
    /// Apply pending migrations. Refuses (`SchemaTooNew`), changing nothing, when the database
    /// has a migration newer than any this binary knows.
    async fn migrate(&self) -> StoreResult<()>;
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    async fn close(&self);
    /// The connection pool now: (open connections, idle ones), for /metrics.
    fn pool_usage(&self) -> (u32, u32);
    /// Hear other nodes' writes until the task is aborted (PostgreSQL `LISTEN/NOTIFY`, see
    /// `listen.rs`): keeps the deny-list mirror current and passes client changes to `sink`.
    /// SQLite serves one process: returns at once.
    async fn watch_changes(&self, sink: ChangeSink);
    /// For one housekeeping pass across all nodes: `Some(guard)` if this node should run it
    /// (PostgreSQL: a transaction-scoped advisory lock, released when the guard drops, or when
    /// the node dies), `None` if another node is running one now. SQLite: always `Some`.
    async fn housekeeping_lock(&self) -> StoreResult<Option<Box<dyn Send>>>;
    /// Messages waiting for delivery, per outbox: `email`, `sms` (mail outbox rows neither sent
    /// nor given up) and `backchannel_logout` (queued logout tokens), for /metrics.
    async fn outbox_depths(&self) -> StoreResult<Vec<(&'static str, i64)>>;

    // Users
    async fn create_user(&self, user: &NewUser, now: i64) -> StoreResult<User>;
    async fn find_user(&self, id: &str) -> StoreResult<Option<User>>;
    /// The address of account `id` while it may use its tokens (neither deleted nor disabled):
    /// one indexed row, without the roles and groups `find_user` aggregates (introspection).
    async fn active_user_email(&self, id: &str) -> StoreResult<Option<String>>;
    /// The account whose address has `email`'s canonical form (deleted accounts excepted).
    async fn find_user_by_email(&self, email: &Email) -> StoreResult<Option<User>>;
    /// Fill `users.email_canonical` where it is missing (rows from before migration 0013), in
    /// `Email::canonical` form, oldest account first. Idempotent, and safe while other nodes do
    /// the same. A row whose canonical form another account already holds, or whose address no
    /// longer parses, is left without one (it cannot be found by address) and reported.
    async fn backfill_email_canonical(&self) -> StoreResult<Vec<EmailBackfillIssue>>;
    async fn set_password_hash(&self, user_id: &str, hash: &str, now: i64) -> StoreResult<()>;

    // Clients
    async fn create_client(&self, client: &Client) -> StoreResult<()>;
    async fn find_client(&self, id: &str) -> StoreResult<Option<Client>>;
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Replace every setting of an existing client; `false` when there is no such client.
    async fn update_client(&self, client: &Client) -> StoreResult<bool>;

    // Consent (OIDC Core §3.1.2.4), remembered per user and client
    /// The scopes this user has granted this client, if any.
    async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<Vec<String>>>;
    /// Record (or widen to) `scopes` for this user and client.
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<()>;
    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<Consent>>;
    /// Returns whether a consent was removed.
    async fn revoke_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool>;

    /// Names of the groups a user belongs to, sorted (for the `groups` claim).
    async fn user_groups(&self, user_id: &str) -> StoreResult<Vec<String>>;

    // Authorization requests waiting for the person to sign in
    async fn save_login_request(
        &self,
        id_hash: &str,
        request: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()>;
    async fn find_login_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<String>>;
    /// Remove and return it: a login request completes once.
    async fn take_login_request(&self, id_hash: &str, now: i64) -> StoreResult<Option<String>>;

    // Authorization codes
    async fn create_code(&self, code: &AuthorizationCode) -> StoreResult<()>;
    async fn find_code(&self, code_hash: &str) -> StoreResult<Option<AuthorizationCode>>;
    /// Atomically mark an unused code used, recording the access token about to be issued.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        access_jti: &str,
        access_exp: i64,
    ) -> StoreResult<Redemption>;

    // Access-token deny-list (JWTs cannot be recalled; they are refused until they expire)
    async fn revoke_access_token(&self, jti: &str, expires_at: i64, now: i64) -> StoreResult<()>;
    /// Whether the token `jti` was revoked, or the session `sid` it was issued for has ended.
    async fn is_access_token_revoked(&self, jti: &str, sid: Option<&str>) -> StoreResult<bool>;

    /// Delete what has expired; returns rows removed.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;
}

/// Open the store named by `url` (sqlite:… or postgres://…).
/// `acquire_timeout`: how long a query waits for a connection before failing as `Unavailable`.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::connect(url, max_connections, acquire_timeout).await?,
        ))
    } else {
        Ok(Arc::new(
            SqliteStore::connect(url, max_connections, acquire_timeout).await?,
        ))
    }
}

pub(crate) fn map_unique(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::from(e),
    }
}
