//! Self-service accounts: single-use link tokens and one-time codes (e-mail verification,
//! password reset), and the mail outbox they write to in the same transaction.
//!
//! Secrets are stored only as `hash_secret` (SHA-256 hex). Codes are short, so they are looked up
//! by user and purpose, never by hash, and every wrong guess is counted against the row.

use async_trait::async_trait;

use super::StoreResult;
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

/// Profile fields a person edits on the account page (OIDC standard claims).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub locale: Option<String>,
}

/// A live browser session, as listed on the account page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    pub sid: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
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

/// How an outbox row is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An e-mail (subject, plain text and HTML parts) to an address.
    Email,
    /// A text message (`body_text`) to an E.164 number, through the `SmsSender`.
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// A rendered e-mail (or text message) for the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub channel: Channel,
    /// Not delivered after this time (the code it carries has expired); `None`: no limit.
    pub expires_at: Option<i64>,
}

impl NewMail {
    /// A text message to `to` (E.164) carrying a code that expires at `expires_at`: queued like
    /// mail, in the same transaction as the code, and delivered by the same worker.
    pub fn sms(to: &str, text: String, expires_at: i64) -> Self {
        Self {
            recipient: to.to_owned(),
            subject: String::new(),
            body_text: text,
            body_html: String::new(),
            channel: Channel::Sms,
            expires_at: Some(expires_at),
        }
    }
}

impl std::fmt::Debug for NewMail {
    // Bodies hold links and codes: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// An outbox row as the delivery worker sees it.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
    /// `email` or `sms` (see `Channel`).
    pub channel: String,
    pub expires_at: Option<i64>,
}

impl OutboxMail {
    pub fn is_sms(&self) -> bool {
        self.channel == Channel::Sms.as_str()
    }
}

impl std::fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMail")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .field("attempts", &self.attempts)
            .field("sent_at", &self.sent_at)
            .field("failed_at", &self.failed_at)
            .finish_non_exhaustive()
    }
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, recipient, subject, body_text, body_html, created_at, attempts, next_attempt_at, sent_at, failed_at, last_error, channel, expires_at";
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

    /// Set a new password hash, void every reset and invitation link of the user, and queue
    /// `mails`.
    async fn reset_password(
        &self,
        user_id: &str,
        password_hash: &str,
        mails: &[NewMail],
        now: i64,
    ) -> StoreResult<()>;
}

/// The account page: profile, sessions, address change and deletion.
#[async_trait]
pub trait AccountPageStore: Send + Sync + 'static {
    async fn update_profile(
        &self,
        user_id: &str,
        profile: &ProfileUpdate,
        now: i64,
    ) -> StoreResult<()>;
    /// Live sessions of a user, newest first.
    async fn list_sessions(&self, user_id: &str, now: i64) -> StoreResult<Vec<SessionInfo>>;
    /// Replace the address with a verified new one (voiding codes bound to the old one).
    /// `StoreError::Conflict` when another account has it.
    /// Make `new_email` the account's (verified) address and queue `mails` (the notice to the
    /// old address) in the same transaction. `StoreError::Conflict` if another account holds it.
    async fn change_email(
        &self,
        user_id: &str,
        new_email: &str,
        mails: &[NewMail],
        now: i64,
    ) -> StoreResult<()>;
    /// Soft delete: disabled and hidden at once; personal data purged after the grace period.
    async fn soft_delete_user(&self, user_id: &str, now: i64) -> StoreResult<()>;
    /// Undo a soft delete within the grace period (for administrators). The account is enabled
    /// again unless it had been disabled before it was deleted. Whether anything changed.
    async fn restore_user(&self, user_id: &str, now: i64) -> StoreResult<bool>;
    /// Remove for good the accounts deleted before `before` (rows referencing them cascade).
    async fn purge_deleted_users(&self, before: i64) -> StoreResult<u64>;
    /// Set (or clear) the phone number, unverified.
    async fn set_phone(&self, user_id: &str, phone: Option<&str>, now: i64) -> StoreResult<()>;
    /// Mark the number verified if it is still the account's; `StoreError::Conflict` when
    /// another account has verified it.
    async fn mark_phone_verified(&self, user_id: &str, phone: &str, now: i64) -> StoreResult<bool>;
    /// The account whose verified phone number this is.
    async fn find_user_by_phone(&self, phone: &str) -> StoreResult<Option<User>>;
}

/// The outbox, for the delivery worker and for any feature that sends mail.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    /// Queue one mail on its own (account changes queue theirs inside their own transaction).
    async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> StoreResult<String>;
    /// Claim up to `limit` due mails: each returned row's next attempt is pushed `lease` seconds
    /// ahead so another worker does not send it at the same time.
    async fn claim_due_mail(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMail>>;
    /// The transport accepted it (even if it was superseded or expired while in flight).
    async fn mark_mail_sent(&self, id: &str, now: i64) -> StoreResult<()>;
    /// Record a failed attempt: retry at `next_attempt_at`, or give up when `give_up`. A row
    /// given up while the attempt was under way (superseded, expired) stays given up.
    async fn mark_mail_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        give_up: bool,
        now: i64,
    ) -> StoreResult<()>;
    /// Every outbox row for `recipient`, oldest first (tests, support).
    async fn mail_for(&self, recipient: &str) -> StoreResult<Vec<OutboxMail>>;
    /// Delete delivered or abandoned mail older than `before`.
    async fn purge_mail_before(&self, before: i64) -> StoreResult<u64>;
    /// Blank the bodies of mail delivered or abandoned before `before`: they carry one-time
    /// codes and links in the clear, which must not outlive their delivery. Returns rows changed.
    async fn scrub_mail_bodies(&self, before: i64) -> StoreResult<u64>;
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
                mails: &[$crate::store::accounts::NewMail],
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
                m: &$crate::store::accounts::NewMail,
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
                mails: &[$crate::store::accounts::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<$crate::domain::User> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "INSERT INTO users (id, email, email_verified, password_hash, name, \
                     phone_number, phone_number_verified, locale, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $8)",
                )
                .bind(id)
                .bind(user.email.as_str())
                .bind(user.email_verified)
                .bind(&user.password_hash)
                .bind(&user.name)
                .bind(&user.phone_number)
                .bind(&user.locale)
                .bind(now)
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
                mails: &[$crate::store::accounts::NewMail],
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

            async fn reset_password(
                &self,
                user_id: &str,
                password_hash: &str,
                mails: &[$crate::store::accounts::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(now)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                // A password set any way voids the outstanding invitation too.
                {
                    use $crate::store::accounts::CodePurpose::{Invitation, PasswordReset};
                    Self::void_codes(&mut tx, user_id, Some(&[PasswordReset, Invitation]), now)
                        .await?;
                }
                for m in mails {
                    Self::insert_mail(&mut *tx, m, None, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::AccountPageStore for $store {
            async fn update_profile(
                &self,
                user_id: &str,
                p: &$crate::store::accounts::ProfileUpdate,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET name = $1, given_name = $2, family_name = $3, picture = $4, \
                     locale = $5, updated_at = $6 WHERE id = $7",
                )
                .bind(&p.name)
                .bind(&p.given_name)
                .bind(&p.family_name)
                .bind(&p.picture)
                .bind(&p.locale)
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_sessions(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::accounts::SessionInfo>> {
                Ok(sqlx::query_as(
                    "SELECT sid, created_at, expires_at, ip, user_agent FROM sessions \
                     WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
                     ORDER BY created_at DESC, sid",
                )
                .bind(user_id)
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn change_email(
                &self,
                user_id: &str,
                new_email: &str,
                mails: &[$crate::store::accounts::NewMail],
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET email = $1, email_verified = TRUE, updated_at = $2 WHERE id = $3",
                )
                .bind(new_email)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err($crate::store::map_unique)?;
                Self::void_codes(&mut tx, user_id, None, now).await?;
                for m in mails {
                    Self::insert_mail(&mut *tx, m, None, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn soft_delete_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET deleted_at = $1, disabled_at = COALESCE(disabled_at, $1), \
                     updated_at = $1 WHERE id = $2",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                Self::void_codes(&mut tx, user_id, None, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn set_phone(
                &self,
                user_id: &str,
                phone: Option<&str>,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET phone_number = $1, phone_number_verified = FALSE, \
                     updated_at = $2 WHERE id = $3",
                )
                .bind(phone)
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                // The number changed: a confirmation SMS still queued for the old one is not sent.
                let purposes = [$crate::store::accounts::CodePurpose::PhoneVerify];
                Self::void_codes(&mut tx, user_id, Some(&purposes), now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn mark_phone_verified(
                &self,
                user_id: &str,
                phone: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE users SET phone_number_verified = TRUE, updated_at = $1 \
                     WHERE id = $2 AND phone_number = $3 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(user_id)
                .bind(phone)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?
                .rows_affected()
                    > 0)
            }

            async fn find_user_by_phone(
                &self,
                phone: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::User>> {
                let row: Option<(String,)> = sqlx::query_as(
                    "SELECT id FROM users WHERE phone_number = $1 AND phone_number_verified \
                     AND deleted_at IS NULL",
                )
                .bind(phone)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some((id,)) => $crate::store::CoreStore::find_user(self, &id).await,
                    None => Ok(None),
                }
            }

            async fn restore_user(
                &self,
                user_id: &str,
                now: i64,
            ) -> $crate::store::StoreResult<bool> {
                Ok(sqlx::query(
                    "UPDATE users SET disabled_at = CASE WHEN disabled_at = deleted_at THEN NULL \
                     ELSE disabled_at END, deleted_at = NULL, updated_at = $1 \
                     WHERE id = $2 AND deleted_at IS NOT NULL",
                )
                .bind(now)
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err($crate::store::map_unique)?
                .rows_affected()
                    > 0)
            }

            async fn purge_deleted_users(&self, before: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query("DELETE FROM users WHERE deleted_at IS NOT NULL AND deleted_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::MailStore for $store {
            async fn enqueue_mail(
                &self,
                mail: &$crate::store::accounts::NewMail,
                now: i64,
            ) -> $crate::store::StoreResult<String> {
                Self::insert_mail(&self.pool, mail, None, now).await
            }

            async fn claim_due_mail(
                &self,
                now: i64,
                lease: i64,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::accounts::OutboxMail>> {
                // Rows whose code has expired are given up, and an SMS text is blanked: it
                // must not outlive its use.
                sqlx::query(
                    "UPDATE mail_outbox SET failed_at = $1, last_error = 'expired', \
                     body_text = CASE WHEN channel = 'sms' THEN '' ELSE body_text END \
                     WHERE sent_at IS NULL AND failed_at IS NULL AND expires_at <= $1",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $1) \
                     AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
                    $crate::store::accounts::OUTBOX_COLUMNS
                ));
                let due: Vec<$crate::store::accounts::OutboxMail> = sqlx::query_as(sql)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut claimed = Vec::with_capacity(due.len());
                for m in due {
                    let n = sqlx::query(
                        "UPDATE mail_outbox SET next_attempt_at = $1 \
                         WHERE id = $2 AND next_attempt_at = $3 AND sent_at IS NULL",
                    )
                    .bind(now + lease)
                    .bind(&m.id)
                    .bind(m.next_attempt_at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    if n == 1 {
                        claimed.push(m);
                    }
                }
                Ok(claimed)
            }

            async fn mark_mail_sent(&self, id: &str, now: i64) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET sent_at = $1, attempts = attempts + 1, last_error = NULL, \
                     failed_at = NULL, body_text = CASE WHEN channel = 'sms' THEN '' ELSE body_text END \
                     WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mark_mail_failed(
                &self,
                id: &str,
                error: &str,
                next_attempt_at: i64,
                give_up: bool,
                now: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, \
                     next_attempt_at = $2, failed_at = $3, \
                     body_text = CASE WHEN channel = 'sms' AND $5 THEN '' ELSE body_text END \
                     WHERE id = $4 AND failed_at IS NULL",
                )
                .bind(error)
                .bind(next_attempt_at)
                .bind(give_up.then_some(now))
                .bind(id)
                .bind(give_up)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mail_for(
                &self,
                recipient: &str,
            ) -> $crate::store::StoreResult<Vec<$crate::store::accounts::OutboxMail>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM mail_outbox WHERE recipient = $1 ORDER BY id",
                    $crate::store::accounts::OUTBOX_COLUMNS
                ));
                Ok(sqlx::query_as(sql).bind(recipient).fetch_all(&self.pool).await?)
            }

            async fn scrub_mail_bodies(&self, before: i64) -> $crate::store::StoreResult<u64> {
                Ok(sqlx::query(
                    "UPDATE mail_outbox SET body_text = '', body_html = '' \
                     WHERE ((sent_at IS NOT NULL AND sent_at < $1) \
                     OR (failed_at IS NOT NULL AND failed_at < $1)) \
                     AND (body_text <> '' OR body_html <> '')",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            async fn purge_mail_before(&self, before: i64) -> $crate::store::StoreResult<u64> {
                let mut n = sqlx::query(
                    "DELETE FROM mail_outbox WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL) \
                     AND created_at < $1",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
                n += sqlx::query("DELETE FROM account_codes WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n)
            }
        }
    };
}

pub(crate) use impl_account_store;
