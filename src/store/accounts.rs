//! Self-service accounts: single-use link tokens and one-time codes (e-mail verification,
//! password reset), and the mail outbox they write to in the same transaction.
//!
//! Secrets are stored only as `hash_secret` (SHA-256 hex). Codes are short, so they are looked up
//! by user and purpose, never by hash, and every wrong guess is counted against the row.

use async_trait::async_trait;

use super::StoreResult;
use super::outbox::NewMail;
use crate::domain::{NewUser, User};

/// What a link token or code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// The single-use link in the verification e-mail.
    EmailVerifyLink,
    /// The 6-digit code in the verification e-mail.
    EmailVerifyCode,
    /// The single-use link in the password-reset e-mail.
    PasswordReset,
    /// The single-use link sent to a new address before it replaces the old one.
    EmailChange,
    /// The 6-digit SMS code that verifies a phone number.
    PhoneVerify,
    /// A one-time sign-in code sent by e-mail or SMS.
    LoginCode,
    /// The single-use link in an administrator's invitation: choose a first password.
    Invitation,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerifyLink => "email_verify_link",
            Self::EmailVerifyCode => "email_verify_code",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::PhoneVerify => "phone_verify",
            Self::LoginCode => "login_code",
            Self::Invitation => "invitation",
        }
    }
}

/// A link token or code to store. `secret_hash` is `hash_secret(secret)`.
#[derive(Debug, Clone)]
pub struct NewAccountCode {
    pub purpose: CodePurpose,
    /// The address (or number) the secret was sent to; it must still be the account's.
    pub target: String,
    pub secret_hash: String,
    pub expires_at: i64,
}

impl NewAccountCode {
    /// A new single-use link token for `purpose`, sent to `target` and live until `expires_at`:
    /// the token to put in the link (256 random bits, shown once) and the row that stores only
    /// its hash.
    pub fn link(purpose: CodePurpose, target: &str, expires_at: i64) -> (String, Self) {
        let token = crate::crypto::random_secret(32);
        let code = Self {
            purpose,
            target: target.to_owned(),
            secret_hash: crate::crypto::hash_secret(&token),
            expires_at,
        };
        (token, code)
    }

    /// A new 6-digit code for `purpose`, sent to `target` and live until `expires_at`: the code
    /// to send (uniformly random, shown once) and the row that stores only its hash, bound to
    /// `user_id` so that equal codes of two users differ.
    pub fn code(
        user_id: &str,
        purpose: CodePurpose,
        target: &str,
        expires_at: i64,
    ) -> (String, Self) {
        use rand::Rng;
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        let row = Self {
            purpose,
            target: target.to_owned(),
            secret_hash: Self::code_hash(user_id, &code),
            expires_at,
        };
        (code, row)
    }

    /// How a typed code is stored and looked up: bound to its user.
    pub fn code_hash(user_id: &str, code: &str) -> String {
        crate::crypto::hash_secret(&format!("{user_id}:{}", code.trim()))
    }

    /// Whether `input` has the shape of a code (6 ASCII digits) at all.
    pub fn is_code_shaped(input: &str) -> bool {
        let input = input.trim();
        input.len() == 6 && input.bytes().all(|b| b.is_ascii_digit())
    }
}

/// A stored link token or code that was just redeemed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountCode {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    pub target: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The outcome of checking a typed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    /// It matched and is now used.
    Accepted(AccountCode),
    /// It did not match; the attempt was counted.
    Wrong,
    /// There is no live code (none issued, expired, used, or out of attempts).
    NoLiveCode,
}

pub(crate) const CODE_COLUMNS: &str = "id, user_id, purpose, target, created_at, expires_at";

/// Account changes that people make themselves; each write that sends mail takes the rendered
/// mails and stores them in the same transaction.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Create the user with id `id` (a new UUID chosen by the caller, so codes can be bound to
    /// it), their codes and their mails at once. `StoreError::Conflict` when the e-mail is taken
    /// (nothing is written then).
    async fn sign_up(
        &self,
        id: &str,
        user: &NewUser,
        codes: &[NewAccountCode],
        mails: &[NewMail],
        now: i64,
    ) -> StoreResult<User>;

    /// Issue new codes for `user_id`, voiding the unused ones of the same purposes, and queue
    /// the mails that carry them. Mail and SMS still waiting in the outbox with a code of one of
    /// these purposes for this user are given up (`last_error = 'superseded'`, SMS text
    /// blanked) in the same transaction: only the newest code's message goes out.
    async fn issue_codes(
        &self,
        user_id: &str,
        codes: &[NewAccountCode],
        mails: &[NewMail],
        now: i64,
    ) -> StoreResult<()>;

    /// When the newest code of this purpose was issued to this user (for resend cool-downs).
    async fn last_code_issued_at(
        &self,
        user_id: &str,
        purpose: CodePurpose,
    ) -> StoreResult<Option<i64>>;

    /// A live (unused, unexpired) link token, without using it.
    async fn find_link(
        &self,
        purpose: CodePurpose,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccountCode>>;

    /// Atomically use a live link token: at most one caller gets it.
    async fn take_link(
        &self,
        purpose: CodePurpose,
        secret_hash: &str,
        now: i64,
    ) -> StoreResult<Option<AccountCode>>;

    /// Check a typed code against this user's newest live code of `purpose`, counting a wrong
    /// guess; a code with `max_attempts` wrong guesses is dead.
    async fn check_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        secret_hash: &str,
        max_attempts: i64,
        now: i64,
    ) -> StoreResult<CodeCheck>;

    /// Mark the address verified, only if it is still the account's address. Voids the other
    /// verification codes. Returns whether it changed anything.
    async fn mark_email_verified(&self, user_id: &str, email: &str, now: i64) -> StoreResult<bool>;
}

macro_rules! impl_account_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Void the user's unused codes of `purposes` (of every purpose when `None`) and
            /// give up the queued messages that carry them: such a message would deliver a
            /// dead code, and could arrive after a newer one. An SMS text is blanked at once,
            /// as for an expired code. Untagged mail (notices) is never touched.
            async fn void_codes(
                tx: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                purposes: Option<&[$crate::store::accounts::CodePurpose]>,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let (purposes, filter) = match purposes {
                    None => (&[][..], String::new()),
                    Some([]) => return Ok(()),
                    Some(ps) => {
                        let marks: Vec<String> =
                            (0..ps.len()).map(|i| format!("${}", i + 3)).collect();
                        (ps, format!(" AND purpose IN ({})", marks.join(", ")))
                    }
                };
                let statements = [
                    format!(
                        "UPDATE account_codes SET used_at = $1 \
                         WHERE user_id = $2 AND used_at IS NULL{filter}"
                    ),
                    format!(
                        "UPDATE mail_outbox SET failed_at = $1, last_error = 'superseded', \
                         body_text = CASE WHEN channel = 'sms' THEN '' ELSE body_text END \
                         WHERE user_id = $2 AND purpose IS NOT NULL \
                         AND sent_at IS NULL AND failed_at IS NULL{filter}"
                    ),
                ];
                for sql in statements {
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(user_id);
                    for p in purposes {
                        query = query.bind(p.as_str());
                    }
                    query.execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn insert_codes_and_mail(
                tx: &mut sqlx::Transaction<'_, $db>,
                user_id: &str,
                codes: &[$crate::store::accounts::NewAccountCode],
                mails: &[$crate::store::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                for c in codes {
                    // A new code voids the unused ones of the same purpose.
                    Self::void_codes(tx, user_id, Some(&[c.purpose]), now).await?;
                    sqlx::query(
                        "INSERT INTO account_codes (id, user_id, purpose, target, secret_hash, attempts, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
                    )
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(user_id)
                    .bind(c.purpose.as_str())
                    .bind(&c.target)
                    .bind(&c.secret_hash)
                    .bind(now)
                    .bind(c.expires_at)
                    .execute(&mut **tx)
                    .await?;
                }
                // Each mail is tagged with the user and the purpose of the (first) code it
                // carries, so a later code of that purpose supersedes it while it waits.
                let tag = codes.first().map(|c| (user_id, c.purpose.as_str()));
                for m in mails {
                    Self::insert_mail(&mut **tx, m, tag, now).await?;
                }
                Ok(())
            }

            async fn insert_mail<'e, E>(
                exec: E,
                m: &$crate::store::NewMail,
                tag: Option<(&str, &str)>,
                now: i64,
            ) -> $crate::store::StoreResult<String>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO mail_outbox (id, recipient, subject, body_text, body_html, created_at, attempts, next_attempt_at, channel, expires_at, user_id, purpose) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $6, $7, $8, $9, $10)",
                )
                .bind(&id)
                .bind(&m.recipient)
                .bind(&m.subject)
                .bind(&m.body_text)
                .bind(&m.body_html)
                .bind(now)
                .bind(m.channel.as_str())
                .bind(m.expires_at)
                .bind(tag.map(|t| t.0))
                .bind(tag.map(|t| t.1))
                .execute(exec)
                .await?;
                Ok(id)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
            async fn sign_up(
                &self,
                id: &str,
                user: &$crate::domain::NewUser,
                codes: &[$crate::store::accounts::NewAccountCode],
                mails: &[$crate::store::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<$crate::domain::User> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO users (id, email, email_verified, password_hash, name, \
                     phone_number, phone_number_verified, locale, created_at, updated_at, email_canonical) \
                     VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $8, $9)",
                )
                .bind(id)
                .bind(user.email.as_str())
                .bind(user.email_verified)
                .bind(&user.password_hash)
                .bind(&user.name)
                .bind(&user.phone_number)
                .bind(&user.locale)
                .bind(now)
                .bind(user.email.canonical())
                .execute(&mut *tx)
                .await
                .map_err($crate::store::map_unique)?;
                for role in &user.roles {
                    sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
                        .bind(id)
                        .bind(role)
                        .execute(&mut *tx)
                        .await?;
                }
                Self::insert_codes_and_mail(&mut tx, id, codes, mails, now).await?;
                tx.commit().await?;
                $crate::store::CoreStore::find_user(self, id)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::Corrupt("user vanished".into()))
            }

            async fn issue_codes(
                &self,
                user_id: &str,
                codes: &[$crate::store::accounts::NewAccountCode],
                mails: &[$crate::store::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                Self::insert_codes_and_mail(&mut tx, user_id, codes, mails, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn last_code_issued_at(
                &self,
                user_id: &str,
                purpose: $crate::store::accounts::CodePurpose,
            ) -> $crate::store::StoreResult<Option<i64>> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT created_at FROM account_codes WHERE user_id = $1 AND purpose = $2 \
                     ORDER BY created_at DESC LIMIT 1",
                )
                .bind(user_id)
                .bind(purpose.as_str())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|r| r.0))
            }

            async fn find_link(
                &self,
                purpose: $crate::store::accounts::CodePurpose,
                secret_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::accounts::AccountCode>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM account_codes WHERE secret_hash = $1 AND purpose = $2 \
                     AND used_at IS NULL AND expires_at > $3",
                    $crate::store::accounts::CODE_COLUMNS
                ));
                Ok(sqlx::query_as(sql)
                    .bind(secret_hash)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn take_link(
                &self,
                purpose: $crate::store::accounts::CodePurpose,
                secret_hash: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Option<$crate::store::accounts::AccountCode>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE account_codes SET used_at = $3 WHERE secret_hash = $1 AND purpose = $2 \
                     AND used_at IS NULL AND expires_at > $3 RETURNING {}",
                    $crate::store::accounts::CODE_COLUMNS
                ));
                Ok(sqlx::query_as(sql)
                    .bind(secret_hash)
                    .bind(purpose.as_str())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn check_code(
                &self,
                user_id: &str,
                purpose: $crate::store::accounts::CodePurpose,
                secret_hash: &str,
                max_attempts: i64,
                now: i64,
            ) -> $crate::store::StoreResult<$crate::store::accounts::CodeCheck> {
                use $crate::store::accounts::CodeCheck;
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT id, secret_hash FROM account_codes WHERE user_id = $1 AND purpose = $2 \
                     AND used_at IS NULL AND expires_at > $3 AND attempts < $4 \
                     ORDER BY created_at DESC LIMIT 1",
                )
                .bind(user_id)
                .bind(purpose.as_str())
                .bind(now)
                .bind(max_attempts)
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, stored)) = row else {
                    return Ok(CodeCheck::NoLiveCode);
                };
                if !$crate::crypto::constant_time_eq(stored.as_bytes(), secret_hash.as_bytes()) {
                    // Counted atomically, so parallel guesses cannot exceed the limit.
                    sqlx::query(
                        "UPDATE account_codes SET attempts = attempts + 1 WHERE id = $1",
                    )
                    .bind(&id)
                    .execute(&self.pool)
                    .await?;
                    return Ok(CodeCheck::Wrong);
                }
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE account_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL \
                     AND attempts < $3 AND expires_at > $2 RETURNING {}",
                    $crate::store::accounts::CODE_COLUMNS
                ));
                let used: Option<$crate::store::accounts::AccountCode> = sqlx::query_as(sql)
                    .bind(&id)
                    .bind(now)
                    .bind(max_attempts)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(used.map_or(CodeCheck::NoLiveCode, CodeCheck::Accepted))
            }

            async fn mark_email_verified(
                &self,
                user_id: &str,
                email: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.begin_write().await?;
                let n = sqlx::query(
                    "UPDATE users SET email_verified = TRUE, updated_at = $1 \
                     WHERE id = $2 AND email = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(user_id)
                .bind(email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                {
                    use $crate::store::accounts::CodePurpose::{EmailVerifyCode, EmailVerifyLink};
                    let purposes = [EmailVerifyLink, EmailVerifyCode];
                    Self::void_codes(&mut tx, user_id, Some(&purposes), now).await?;
                }
                tx.commit().await?;
                Ok(n > 0)
            }

        }

    };
}

pub(crate) use impl_account_store;
