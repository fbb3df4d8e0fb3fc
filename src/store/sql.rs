//! The SQL shared by both dialects. SQLite and PostgreSQL accept the same text for every query
//! here (`$N` placeholders, `RETURNING`, `ON CONFLICT`), so the `Store` implementation is written
//! once as a macro and instantiated for each pool type; a query that must differ lives in the
//! dialect's own file. Row structs decode identically from both (BIGINT/INTEGER → i64,
//! BOOLEAN/INTEGER → bool, TEXT → String).

pub(crate) use super::rows::*;

/// Implements `Store` for a struct with a `pool: sqlx::Pool<DB>` field and an inherent
/// `fn migrator() -> &'static sqlx::migrate::Migrator`.
macro_rules! impl_sql_store {
    ($store:ty) => {
        impl $store {
            /// Both deny-list tables, for the mirror (`deny.rs`).
            pub(crate) async fn load_deny_list(
                &self,
            ) -> $crate::store::StoreResult<$crate::store::deny::Denied> {
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
                Ok(denied)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::CoreStore for $store {
            async fn migrate(&self) -> $crate::store::StoreResult<()> {
                let known = Self::migrator().iter().map(|m| m.version).max().unwrap_or(0);
                let (tables,): (i64,) = sqlx::query_as(Self::HAS_MIGRATIONS_TABLE)
                    .fetch_one(&self.pool)
                    .await?;
                if tables > 0 {
                    let (found,): (Option<i64>,) =
                        sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations")
                            .fetch_one(&self.pool)
                            .await?;
                    if let Some(found) = found.filter(|f| *f > known) {
                        return Err($crate::store::StoreError::SchemaTooNew { found, known });
                    }
                }
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

            async fn housekeeping_lock(
                &self,
            ) -> $crate::store::StoreResult<Option<Box<dyn Send>>> {
                self.exclusive_housekeeping().await
            }

            async fn watch_changes(&self, sink: $crate::store::ChangeSink) {
                self.listen_for_changes(sink).await;
            }

            fn pool_usage(&self) -> (u32, u32) {
                let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
                (self.pool.size(), idle)
            }

            async fn outbox_depths(&self) -> $crate::store::StoreResult<Vec<(&'static str, i64)>> {
                let waiting: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT channel, COUNT(*) FROM mail_outbox \
                     WHERE sent_at IS NULL AND failed_at IS NULL GROUP BY channel",
                )
                .fetch_all(&self.pool)
                .await?;
                let (logout,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM backchannel_deliveries")
                        .fetch_one(&self.pool)
                        .await?;
                let count = |c: &str| waiting.iter().find(|(ch, _)| ch == c).map_or(0, |(_, n)| *n);
                Ok(vec![
                    ("email", count("email")),
                    ("sms", count("sms")),
                    ("backchannel_logout", logout),
                ])
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
                    "SELECT {}, {} FROM users WHERE id = $1 AND deleted_at IS NULL",
                    $crate::store::sql::USER_COLUMNS,
                    Self::USER_ROLES_GROUPS,
                ));
                let row: Option<$crate::store::sql::FullUserRow> =
                    sqlx::query_as(sql).bind(id).fetch_optional(&self.pool).await?;
                row.map($crate::store::sql::FullUserRow::into_user).transpose()
            }

            async fn active_user_email(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<String>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT email FROM users \
                     WHERE id = $1 AND deleted_at IS NULL AND disabled_at IS NULL",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(email,)| email))
            }

            async fn find_user_by_email(
                &self,
                email: &$crate::domain::Email,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {}, {} FROM users WHERE email_canonical = $1 AND deleted_at IS NULL",
                    $crate::store::sql::USER_COLUMNS,
                    Self::USER_ROLES_GROUPS,
                ));
                let row: Option<$crate::store::sql::FullUserRow> = sqlx::query_as(sql)
                    .bind(email.canonical())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map($crate::store::sql::FullUserRow::into_user).transpose()
            }

            async fn backfill_email_canonical(
                &self,
            ) -> $crate::store::StoreResult<Vec<$crate::store::EmailBackfillIssue>> {
                use $crate::store::EmailBackfillIssue;
                let mut issues = Vec::new();
                let mut after: (i64, String) = (i64::MIN, String::new());
                loop {
                    // Oldest first, so of two old rows that are one address, the older keeps it.
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(
                        "SELECT id, email, created_at FROM users WHERE email_canonical IS NULL \
                         AND (created_at > $1 OR (created_at = $1 AND id > $2)) \
                         ORDER BY created_at, id LIMIT 500",
                    )
                    .bind(after.0)
                    .bind(&after.1)
                    .fetch_all(&self.pool)
                    .await?;
                    let Some(last) = rows.last() else { break };
                    after = (last.2, last.0.clone());
                    for (id, email, _) in rows {
                        let Ok(email) = $crate::domain::Email::parse(&email) else {
                            issues.push(EmailBackfillIssue::Invalid { user_id: id });
                            continue;
                        };
                        // `IS NULL` again: another node may have filled it meanwhile.
                        let filled = sqlx::query(
                            "UPDATE users SET email_canonical = $1 WHERE id = $2 AND email_canonical IS NULL",
                        )
                        .bind(email.canonical())
                        .bind(&id)
                        .execute(&self.pool)
                        .await
                        .map_err($crate::store::map_unique);
                        match filled {
                            Ok(_) => {}
                            Err($crate::store::StoreError::Conflict) => {
                                let holder: Option<(String,)> = sqlx::query_as(
                                    "SELECT id FROM users WHERE email_canonical = $1",
                                )
                                .bind(email.canonical())
                                .fetch_optional(&self.pool)
                                .await?;
                                issues.push(EmailBackfillIssue::Duplicate {
                                    user_id: id,
                                    holder: holder.map(|h| h.0).unwrap_or_default(),
                                });
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
                Ok(issues)
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
                     refresh_token_idle_ttl, refresh_token_absolute_ttl, created_at, updated_at, disabled_at, \
                     web_origins) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
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
                .bind(to_json(&c.web_origins))
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
                     refresh_token_absolute_ttl = $15, updated_at = $16, disabled_at = $17, \
                     web_origins = $18 WHERE id = $1",
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
                .bind(to_json(&c.web_origins))
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
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
                     nonce, code_challenge, auth_time, created_at, expires_at, amr) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
                .bind(&c.amr)
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
                     auth_time, created_at, expires_at, used_at, access_jti, access_exp, amr \
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
                match self.deny.lookup(jti, sid) {
                    Ok(revoked) => return Ok(revoked),
                    Err(Some(ticket)) => {
                        let denied = self.load_deny_list().await?;
                        let revoked = denied.denies(jti, sid);
                        self.deny.fill(ticket, denied);
                        return Ok(revoked);
                    }
                    // The mirror cannot be trusted now (PostgreSQL listener down): ask.
                    Err(None) => {}
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
                    "DELETE FROM mfa_pending WHERE expires_at <= $1",
                ] {
                    n += sqlx::query(sql).bind(now).execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }
        }

    };
}

pub(crate) use impl_sql_store;
