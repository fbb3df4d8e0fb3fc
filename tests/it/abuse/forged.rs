//! Forged and confused access tokens (RFC 8725 §2.1, §3.1; RFC 9068 §4): each is answered
//! `401` with `WWW-Authenticate: Bearer … error="invalid_token"` at `/userinfo` and `active: false`
//! at `/introspect`, while the genuine token it was made from still works.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "jin@example.com";

struct Genuine {
    client: TestClient,
    token: String,
    header: Value,
    claims: Value,
}

async fn genuine(app: &TestApp) -> Genuine {
    app.create_user(EMAIL, PASSWORD).await;
    let client = app.confidential_client().await;
    let tokens = app.login_and_exchange(&client, EMAIL, "openid email").await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let part = |i: usize| -> Value {
        let b = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&b).unwrap()
    };
    let (header, claims) = (part(0), part(1));
    Genuine {
        client,
        token,
        header,
        claims,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// `/userinfo` refuses `token` with 401 `invalid_token`; `/introspect` calls it inactive; the
/// genuine token still works.
async fn refused(app: &TestApp, g: &Genuine, token: &str) {
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    let resp = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&g.client.id, g.client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"active": false}));
    let resp = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&g.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the genuine token still works");
}

/// The genuine claims under our `kid` and `typ`, signed by `signer` (not one of our keys).
fn signed_by(g: &Genuine, signer: &dyn josekit::jws::JwsSigner) -> String {
    let mut h = josekit::jws::JwsHeader::new();
    h.set_token_type("at+jwt");
    h.set_key_id(g.header["kid"].as_str().unwrap());
    let payload =
        josekit::jwt::JwtPayload::from_map(g.claims.as_object().unwrap().clone()).unwrap();
    josekit::jwt::encode_with_signer(&payload, &h, signer).unwrap()
}

/// Signed with one of our own keys (as `mint` would), with the claims changed by `edit`.
fn ours_with(app: &TestApp, g: &Genuine, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut claims = g.claims.as_object().unwrap().clone();
    edit(&mut claims);
    let alg = app.provider.settings.tokens.access_token_alg;
    app.provider
        .keys
        .sign(alg, "at+jwt", claims, portcullis::now())
        .unwrap()
}

backend_tests! {
    async fn access_token_with_alg_none_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let mut h = g.header.clone();
        h["alg"] = "none".into();
        let forged = format!("{}.{}.", b64(&h), b64(&g.claims));
        refused(&app, &g, &forged).await;
    }

    async fn access_token_signed_hs256_with_the_public_key_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let jwks: Value = app.http.get(app.url("/jwks.json")).send().await.unwrap().json().await.unwrap();
        let jwk = jwks["keys"].as_array().unwrap().iter()
            .find(|k| k["kid"] == g.header["kid"]).expect("our key").to_string();
        let signer = josekit::jws::HS256.signer_from_bytes(jwk.as_bytes()).unwrap();
        refused(&app, &g, &signed_by(&g, &signer)).await;
    }

    async fn access_token_with_an_unknown_kid_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let mut h = g.header.clone();
        h["kid"] = "not-one-of-ours".into();
        let sig = g.token.rsplit('.').next().unwrap();
        refused(&app, &g, &format!("{}.{}.{sig}", b64(&h), b64(&g.claims))).await;
        let mut h = g.header.clone();
        h.as_object_mut().unwrap().remove("kid");
        refused(&app, &g, &format!("{}.{}.{sig}", b64(&h), b64(&g.claims))).await;
    }

    async fn access_token_with_altered_claims_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let mut c = g.claims.clone();
        c["sub"] = "someone-else".into();
        let sig = g.token.rsplit('.').next().unwrap();
        refused(&app, &g, &format!("{}.{}.{sig}", b64(&g.header), b64(&c))).await;
    }

    async fn access_token_signed_by_a_foreign_key_under_our_kid_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let foreign = josekit::jws::RS256.generate_key_pair(2048).unwrap();
        let signer = josekit::jws::RS256.signer_from_der(foreign.to_der_private_key()).unwrap();
        refused(&app, &g, &signed_by(&g, &signer)).await;
    }

    async fn access_token_from_another_issuer_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let forged = ours_with(&app, &g, |c| {
            c.insert("iss".into(), "https://evil.example".into());
        });
        refused(&app, &g, &forged).await;
    }

    async fn access_token_for_another_audience_is_refused_at_userinfo(app: TestApp) {
        let g = genuine(&app).await;
        let other = ours_with(&app, &g, |c| {
            c.insert("aud".into(), "https://api.example".into());
        });
        let resp = app.http.get(app.url("/userinfo")).bearer_auth(&other).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    async fn an_expired_or_wrong_type_token_is_refused(app: TestApp) {
        let g = genuine(&app).await;
        let expired = ours_with(&app, &g, |c| {
            c.insert("exp".into(), (portcullis::now() - 1).into());
        });
        refused(&app, &g, &expired).await;
        // Signed by us, but not typed as an access token (an ID token's `typ: JWT`).
        let alg = app.provider.settings.tokens.access_token_alg;
        let untyped = app.provider.keys
            .sign(alg, "JWT", g.claims.as_object().unwrap().clone(), portcullis::now())
            .unwrap();
        refused(&app, &g, &untyped).await;
    }
}
