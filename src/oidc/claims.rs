//! Standard claims released per scope (OIDC Core §5.4).

use serde_json::{Map, Value};

use crate::domain::{Scope, User};

/// The claims of `user` that `scope` releases, beside `sub`.
pub fn user_claims(user: &User, scope: &Scope) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            m.insert(k.to_owned(), Value::from(v.as_str()));
        }
    };
    if scope.contains("profile") {
        put("name", user.name.as_ref());
        put("given_name", user.given_name.as_ref());
        put("family_name", user.family_name.as_ref());
        put("picture", user.picture.as_ref());
        put("locale", user.locale.as_ref());
    }
    if scope.contains("email") {
        put("email", Some(&user.email));
    }
    if scope.contains("phone") {
        put("phone_number", user.phone_number.as_ref());
    }
    if scope.contains("profile") {
        m.insert("updated_at".into(), Value::from(user.updated_at));
    }
    if scope.contains("email") {
        m.insert("email_verified".into(), Value::from(user.email_verified));
    }
    if scope.contains("groups") {
        m.insert("groups".into(), Value::from(user.groups.clone()));
        m.insert("roles".into(), Value::from(user.roles.clone()));
    }
    if scope.contains("phone") && user.phone_number.is_some() {
        m.insert(
            "phone_number_verified".into(),
            Value::from(user.phone_number_verified),
        );
    }
    m
}

/// Every claim this provider can release, for discovery.
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "amr",
    "acr",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "given_name",
    "family_name",
    "picture",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "groups",
    "roles",
];
