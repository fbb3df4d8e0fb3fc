//! Row types shared by the SQL implementations of both dialects, and their conversions to
//! domain types. `sql` re-exports them, so the macros name them `$crate::store::sql::…`.

use crate::domain::{Client, SigningAlgorithm, User};
use crate::store::{AuthorizationCode, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

impl UserRow {
    pub fn into_user(self, roles: Vec<String>, groups: Vec<String>) -> User {
        User {
            id: self.id,
            email: self.email,
            email_verified: self.email_verified,
            password_hash: self.password_hash,
            name: self.name,
            given_name: self.given_name,
            family_name: self.family_name,
            phone_number: self.phone_number,
            phone_number_verified: self.phone_number_verified,
            picture: self.picture,
            locale: self.locale,
            roles,
            groups,
            created_at: self.created_at,
            updated_at: self.updated_at,
            disabled_at: self.disabled_at,
        }
    }
}

pub(crate) const USER_COLUMNS: &str = "id, email, email_verified, password_hash, name, given_name, family_name, phone_number, phone_number_verified, picture, locale, created_at, updated_at, disabled_at";

/// A whole `User` in one row: the user's columns, and its roles and groups as JSON arrays
/// (each dialect's `USER_ROLES_GROUPS` aggregates them), so reading a user is one round trip.
#[derive(sqlx::FromRow)]
pub(crate) struct FullUserRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub roles_json: String,
    pub groups_json: String,
}

impl FullUserRow {
    pub fn into_user(self) -> Result<User, StoreError> {
        let roles = list(&self.roles_json)?;
        let groups = list(&self.groups_json)?;
        Ok(self.user.into_user(roles, groups))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub token_endpoint_auth_method: String,
    pub id_token_signed_response_alg: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub require_consent: bool,
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: Option<String>,
    pub audiences: String,
    pub web_origins: String,
    pub refresh_token_idle_ttl: Option<i64>,
    pub refresh_token_absolute_ttl: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

pub(crate) fn list(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        let corrupt = |e: crate::domain::InvalidInput| StoreError::Corrupt(e.0);
        Ok(Client {
            redirect_uris: list(&r.redirect_uris)?,
            grant_types: list(&r.grant_types)?,
            scopes: list(&r.scopes)?,
            token_endpoint_auth_method: r.token_endpoint_auth_method.parse().map_err(corrupt)?,
            id_token_signed_response_alg: r
                .id_token_signed_response_alg
                .as_deref()
                .map(str::parse::<SigningAlgorithm>)
                .transpose()
                .map_err(corrupt)?,
            id: r.id,
            name: r.name,
            secret_hash: r.secret_hash,
            access_token_ttl: r.access_token_ttl,
            require_consent: r.require_consent,
            post_logout_redirect_uris: list(&r.post_logout_redirect_uris)?,
            backchannel_logout_uri: r.backchannel_logout_uri,
            audiences: list(&r.audiences)?,
            web_origins: list(&r.web_origins)?,
            refresh_token_idle_ttl: r.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: r.refresh_token_absolute_ttl,
            created_at: r.created_at,
            updated_at: r.updated_at,
            disabled_at: r.disabled_at,
        })
    }
}

pub(crate) const CLIENT_COLUMNS: &str = "id, name, secret_hash, redirect_uris, grant_types, scopes, token_endpoint_auth_method, id_token_signed_response_alg, access_token_ttl, require_consent, post_logout_redirect_uris, backchannel_logout_uri, audiences, web_origins, refresh_token_idle_ttl, refresh_token_absolute_ttl, created_at, updated_at, disabled_at";

#[derive(sqlx::FromRow)]
pub(crate) struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
}

impl From<CodeRow> for AuthorizationCode {
    fn from(r: CodeRow) -> Self {
        AuthorizationCode {
            code_hash: r.code_hash,
            client_id: r.client_id,
            user_id: r.user_id,
            sid: r.sid,
            redirect_uri: r.redirect_uri,
            scope: r.scope,
            nonce: r.nonce,
            code_challenge: r.code_challenge,
            auth_time: r.auth_time,
            amr: r.amr,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            access_jti: r.access_jti,
            access_exp: r.access_exp,
        }
    }
}
