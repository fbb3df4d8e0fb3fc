//! The SQL shared by both dialects. SQLite and PostgreSQL accept the same text for every query
//! here (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so the `Store` implementation is written
//! once as a macro and instantiated for each pool type; a query that must differ lives in the
//! dialect's own file. Row structs decode identically from both (BIGINT/INTEGER → i64,
//! BOOLEAN/INTEGER → bool, TEXT → String).

use crate::domain::{Client, SigningAlgorithm, User};
use crate::store::{AuthorizationCode, Session, StoreError};

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
            refresh_token_idle_ttl: r.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: r.refresh_token_absolute_ttl,
            created_at: r.created_at,
            updated_at: r.updated_at,
            disabled_at: r.disabled_at,
        })
    }
}

pub(crate) const CLIENT_COLUMNS: &str = "id, name, secret_hash, redirect_uris, grant_types, scopes, token_endpoint_auth_method, id_token_signed_response_alg, access_token_ttl, require_consent, post_logout_redirect_uris, backchannel_logout_uri, audiences, refresh_token_idle_ttl, refresh_token_absolute_ttl, created_at, updated_at, disabled_at";

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Session {
            sid: r.sid,
            user_id: r.user_id,
            auth_time: r.auth_time,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

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
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            access_jti: r.access_jti,
            access_exp: r.access_exp,
        }
    }
}

/// Implements `Store` for a struct with a `pool: sqlx::Pool<DB>` field and an inherent
/// `fn migrator() -> &'static sqlx::migrate::Migrator`.
macro_rules! impl_sql_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::CoreStore for $store {
            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                Self::migrator().run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn create_user(
                &self,
                user: &$crate::domain::NewUser,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::domain::User> {
                // One INSERT for every way an account is made: a sign-up without codes or mail.
                let id = uuid::Uuid::new_v4().to_string();
                $crate::store::AccountStore::sign_up(self, &id, user, &[], &[], now).await
            }

            async fn find_user(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM users WHERE id = $1 AND deleted_at IS NULL",
                    $crate::store::sql::USER_COLUMNS
                ));
                let row: Option<$crate::store::sql::UserRow> =
                    sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?;
                self.with_roles(row).await
            }

            async fn find_user_by_email(
                &self,
                email: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM users WHERE email = $1 AND deleted_at IS NULL",
                    $crate::store::sql::USER_COLUMNS
                ));
                let row: Option<$crate::store::sql::UserRow> =
                    sqlx::query_as(sql).bind(email).fetch_optional(&self.pool).await?;
                self.with_roles(row).await
            }

            async fn set_password_hash(
                &self,
                user_id: &str,
                hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(now)
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn create_client(
                &self,
                c: &$crate::domain::Client,
            ) -> $crate::store::StoreResult<()> {
                use $crate::store::sql::to_json;
                sqlx::query(
                    "INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, \
                     token_endpoint_auth_method, id_token_signed_response_alg, access_token_ttl, \
                     require_consent, post_logout_redirect_uris, backchannel_logout_uri, audiences, \
                     refresh_token_idle_ttl, refresh_token_absolute_ttl, created_at, updated_at, disabled_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
                )
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.secret_hash)
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.grant_types))
                .bind(to_json(&c.scopes))
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(c.id_token_signed_response_alg.map(|a| a.as_str()))
                .bind(c.access_token_ttl)
                .bind(c.require_consent)
                .bind(to_json(&c.post_logout_redirect_uris))
                .bind(&c.backchannel_logout_uri)
                .bind(to_json(&c.audiences))
                .bind(c.refresh_token_idle_ttl)
                .bind(c.refresh_token_absolute_ttl)
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(c.disabled_at)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?;
                Ok(())
            }

            async fn find_client(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Client>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM clients WHERE id = $1",
                    $crate::store::sql::CLIENT_COLUMNS
                ));
                let row: Option<$crate::store::sql::ClientRow> =
                    sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?;
                row.map($crate::domain::Client::try_from).transpose()
            }

            async fn list_clients(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Client>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM clients ORDER BY created_at, id",
                    $crate::store::sql::CLIENT_COLUMNS
                ));
                let rows: Vec<$crate::store::sql::ClientRow> =
                    sqlx::query_as(sql).fetch_all(&self.pool).await?;
                rows.into_iter().map($crate::domain::Client::try_from).collect()
            }

            async fn update_client(
                &self,
                c: &$crate::domain::Client,
            ) -> $crate::store::StoreResult<bool> {
                use $crate::store::sql::to_json;
                let done = sqlx::query(
                    "UPDATE clients SET name = $2, secret_hash = $3, redirect_uris = $4, grant_types = $5, \
                     scopes = $6, token_endpoint_auth_method = $7, id_token_signed_response_alg = $8, \
                     access_token_ttl = $9, require_consent = $10, post_logout_redirect_uris = $11, \
                     backchannel_logout_uri = $12, audiences = $13, refresh_token_idle_ttl = $14, \
                     refresh_token_absolute_ttl = $15, updated_at = $16, disabled_at = $17 WHERE id = $1",
                )
                .bind(&c.id)
                .bind(&c.name)
                .bind(&c.secret_hash)
                .bind(to_json(&c.redirect_uris))
                .bind(to_json(&c.grant_types))
                .bind(to_json(&c.scopes))
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(c.id_token_signed_response_alg.map(|a| a.as_str()))
                .bind(c.access_token_ttl)
                .bind(c.require_consent)
                .bind(to_json(&c.post_logout_redirect_uris))
                .bind(&c.backchannel_logout_uri)
                .bind(to_json(&c.audiences))
                .bind(c.refresh_token_idle_ttl)
                .bind(c.refresh_token_absolute_ttl)
                .bind(c.updated_at)
                .bind(c.disabled_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(
                &self,
                s: &$crate::store::NewSession,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, sid, user_id, auth_time, created_at, expires_at, ip, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&s.id_hash)
                .bind(&s.sid)
                .bind(&s.user_id)
                .bind(s.auth_time)
                .bind(now)
                .bind(s.expires_at)
                .bind(&s.ip)
                .bind(&s.user_agent)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_session(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::Session>> {
                let row: Option<$crate::store::sql::SessionRow> = sqlx::query_as(
                    "SELECT sid, user_id, auth_time, created_at, expires_at FROM sessions \
                     WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn end_session(&self, id_hash: &str, now: i64) -> $crate::store::StoreResult<()> {
                // The trigger of migration 0010 deny-lists the session's access tokens.
                sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await?;
                self.deny.invalidate();
                Ok(())
            }

            async fn end_user_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let mut tx = self.begin_write().await?;
                // Every grant of the user dies: refresh tokens, and the access tokens issued with
                // them go on the deny-list until they expire. (Before the sessions are ended: the
                // session trigger of migration 0002 would otherwise revoke the session-bound
                // refresh tokens first, without their access tokens.)
                let issued: Vec<(Option<String>, Option<i64>)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
                     RETURNING access_jti, access_exp",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
                for (jti, exp) in issued {
                    if let (Some(jti), Some(exp)) = (jti, exp)
                        && exp > now
                    {
                        sqlx::query(
                            "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (jti) DO NOTHING",
                        )
                        .bind(jti)
                        .bind(exp)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let rows: Vec<(String,)> = sqlx::query_as(
                    "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL RETURNING sid",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                self.deny.invalidate();
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn find_consent(
                &self,
                user_id: &str,
                client_id: &str,
            ) -> $crate::store::StoreResult<Option<Vec<String>>> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                        .bind(user_id)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(|r| $crate::store::sql::list(&r.0)).transpose()
            }

            async fn save_consent(
                &self,
                user_id: &str,
                client_id: &str,
                scopes: &[String],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) \
                     ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = $3, updated_at = $4",
                )
                .bind(user_id)
                .bind(client_id)
                .bind($crate::store::sql::to_json(scopes))
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_consents(
                &self,
                user_id: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::Consent>> {
                let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                    "SELECT c.client_id, k.name, c.scopes, c.updated_at FROM consents c \
                     JOIN clients k ON k.id = c.client_id WHERE c.user_id = $1 ORDER BY k.name, c.client_id",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(client_id, client_name, scopes, updated_at)| {
                        Ok($crate::store::Consent {
                            client_id,
                            client_name,
                            scopes: $crate::store::sql::list(&scopes)?,
                            updated_at,
                        })
                    })
                    .collect()
            }

            async fn revoke_consent(
                &self,
                user_id: &str,
                client_id: &str,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn user_groups(&self, user_id: &str) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT g.name FROM groups g JOIN group_members m ON m.group_id = g.id \
                     WHERE m.user_id = $1 ORDER BY g.name",
                )
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn save_login_request(
                &self,
                id_hash: &str,
                request: &str,
                now: i64,
                expires_at: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO login_requests (id_hash, request, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(id_hash)
                .bind(request)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_login_request(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT request FROM login_requests WHERE id_hash = $1 AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| r.0))
            }

            async fn take_login_request(
                &self,
                id_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<String>> {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "DELETE FROM login_requests WHERE id_hash = $1 RETURNING request, expires_at",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.filter(|r| r.1 > now).map(|r| r.0))
            }

            async fn create_code(
                &self,
                c: &$crate::store::AuthorizationCode,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, client_id, user_id, sid, redirect_uri, scope, \
                     nonce, code_challenge, auth_time, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(&c.user_id)
                .bind(&c.sid)
                .bind(&c.redirect_uri)
                .bind(&c.scope)
                .bind(&c.nonce)
                .bind(&c.code_challenge)
                .bind(c.auth_time)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find_code(
                &self,
                code_hash: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::AuthorizationCode>> {
                let row: Option<$crate::store::sql::CodeRow> = sqlx::query_as(
                    "SELECT code_hash, client_id, user_id, sid, redirect_uri, scope, nonce, code_challenge, \
                     auth_time, created_at, expires_at, used_at, access_jti, access_exp \
                     FROM authorization_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Into::into))
            }

            async fn redeem_code(
                &self,
                code_hash: &str,
                now: i64,
                access_jti: &str,
                access_exp: i64,
            ) -> $crate::store::StoreResult<$crate::store::Redemption> {
                let done = sqlx::query(
                    "UPDATE authorization_codes SET used_at = $1, access_jti = $2, access_exp = $3 \
                     WHERE code_hash = $4 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .bind(access_jti)
                .bind(access_exp)
                .bind(code_hash)
                .execute(&self.pool)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok($crate::store::Redemption::Redeemed);
                }
                let row: Option<(Option<i64>, Option<String>, Option<i64>)> = sqlx::query_as(
                    "SELECT used_at, access_jti, access_exp FROM authorization_codes WHERE code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    // Unused yet not redeemable: it expired (or its session ended) meanwhile.
                    Some((None, _, _)) | None => Ok($crate::store::Redemption::Expired),
                    Some((Some(_), access_jti, access_exp)) => {
                        Ok($crate::store::Redemption::AlreadyUsed { access_jti, access_exp })
                    }
                }
            }

            async fn revoke_access_token(
                &self,
                jti: &str,
                expires_at: i64,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await?;
                self.deny.invalidate();
                Ok(())
            }

            async fn is_access_token_revoked(
                &self,
                jti: &str,
                sid: Option<&str>,
            ) -> $crate::store::StoreResult<bool> {
                if self.deny.enabled() {
                    match self.deny.lookup(jti, sid) {
                        Ok(revoked) => return Ok(revoked),
                        Err(generation) => {
                            let rows: Vec<(i32, String)> = sqlx::query_as(
                                "SELECT 0, jti FROM revoked_access_tokens \
                                 UNION ALL SELECT 1, sid FROM revoked_session_tokens",
                            )
                            .fetch_all(&self.pool)
                            .await?;
                            let mut denied = $crate::store::deny::Denied::default();
                            for (kind, key) in rows {
                                if kind == 0 {
                                    denied.jtis.insert(key);
                                } else {
                                    denied.sids.insert(key);
                                }
                            }
                            let revoked = denied.denies(jti, sid);
                            self.deny.fill(generation, denied);
                            return Ok(revoked);
                        }
                    }
                }
                // One round trip for both keys; a NULL sid matches nothing.
                let row: Option<(i32,)> = sqlx::query_as(
                    "SELECT 1 WHERE EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                     OR EXISTS (SELECT 1 FROM revoked_session_tokens WHERE sid = $2)",
                )
                .bind(jti)
                .bind(sid)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.is_some())
            }

            async fn purge_expired(&self, now: i64) -> $crate::store::StoreResult<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM login_requests WHERE expires_at <= $1",
                    "DELETE FROM authorization_codes WHERE expires_at <= $1 AND (access_exp IS NULL OR access_exp <= $1)",
                    "DELETE FROM sessions WHERE expires_at <= $1 OR ended_at IS NOT NULL",
                    "DELETE FROM revoked_access_tokens WHERE expires_at <= $1",
                    "DELETE FROM revoked_session_tokens WHERE expires_at <= $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }
        }

        impl $store {
            async fn with_roles(
                &self,
                row: Option<$crate::store::sql::UserRow>,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let Some(row) = row else { return Ok(None) };
                let roles: Vec<(String,)> =
                    sqlx::query_as("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
                        .bind(&row.id)
                        .fetch_all(&self.pool)
                        .await?;
                let groups = $crate::store::CoreStore::user_groups(self, &row.id).await?;
                Ok(Some(row.into_user(roles.into_iter().map(|r| r.0).collect(), groups)))
            }
        }
    };
}

pub(crate) use impl_sql_store;
