//! People who sign in.

use super::Email;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable, opaque subject identifier (`sub`).
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    /// argon2id PHC string; `None` for accounts without a password.
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub picture: Option<String>,
    pub locale: Option<String>,
    pub roles: Vec<String>,
    /// Names of the groups the user belongs to, sorted.
    pub groups: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub disabled_at: Option<i64>,
}

impl User {
    /// Whether the account may sign in and use its tokens.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What is needed to create a user; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
    /// An E.164 number given at sign-up, stored unverified.
    pub phone_number: Option<String>,
    /// A BCP 47 language tag (the browser's language at sign-up).
    pub locale: Option<String>,
}
