//! CORS for browser apps: preflights and responses of the protocol endpoints for registered
//! origins only, `*` for discovery and JWKS, nothing at all on pages and the admin API, and never
//! `Access-Control-Allow-Credentials`.

use portcullis::domain::{GrantType, TokenEndpointAuthMethod};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::admin_api::{Api, admin_token};
use crate::backend_tests;
use crate::helpers::*;

const SPA: &str = "https://spa.example.com";
const OTHER: &str = "https://other.example.com";
const EVIL: &str = "https://evil.example.net";
/// The origin of `REDIRECT_URI`: a public client's default web origin.
const PUBLIC_DEFAULT: &str = "http://127.0.0.1:9";

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Response {
    app.http
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// No CORS header at all (and so nothing a browser would share).
fn no_cors(resp: &Response, case: &str) {
    for name in [
        "access-control-allow-origin",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-allow-credentials",
    ] {
        assert_eq!(header(resp, name), None, "{case}: {name}");
    }
}

/// A confidential client for client_credentials with `origins` registered.
async fn service(app: &TestApp, origins: &[&str]) -> TestClient {
    let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
    app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
        c.grant_types = vec![GrantType::ClientCredentials.as_str().into()];
        c.web_origins = origins;
    })
    .await
}

async fn post_as(
    app: &TestApp,
    client: &TestClient,
    path: &str,
    origin: &str,
    form: &[(&str, &str)],
) -> Response {
    app.http
        .post(app.url(path))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("origin", origin)
        .form(form)
        .send()
        .await
        .unwrap()
}

backend_tests! {
    async fn preflights_are_answered_for_registered_origins_only(app: TestApp) {
        service(&app, &[SPA]).await;
        app.public_client().await;
        for (path, method) in [("/token", "POST"), ("/revoke", "POST"), ("/introspect", "POST"), ("/userinfo", "GET"), ("/userinfo", "POST")] {
            for origin in [SPA, PUBLIC_DEFAULT] {
                let resp = preflight(&app, path, origin, method).await;
                let case = format!("{path} {method} from {origin}");
                assert_eq!(resp.status(), 204, "{case}");
                assert_eq!(header(&resp, "access-control-allow-origin"), Some(origin), "{case}");
                assert!(header(&resp, "access-control-allow-methods").unwrap().contains(method), "{case}");
                let allowed = header(&resp, "access-control-allow-headers").unwrap().to_ascii_lowercase();
                assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{case}");
                assert_eq!(header(&resp, "access-control-max-age"), Some("600"), "{case}");
                assert!(header(&resp, "vary").unwrap().contains("Origin"), "{case}");
                assert_eq!(header(&resp, "access-control-allow-credentials"), None, "{case}");
            }
            // Refused: an unregistered origin, `null`, a method the endpoint does not take.
            for (origin, asked) in [(EVIL, method), ("null", method), (SPA, "DELETE")] {
                let resp = preflight(&app, path, origin, asked).await;
                let case = format!("{path} {asked} from {origin}");
                assert_eq!(resp.status(), 403, "{case}");
                no_cors(&resp, &case);
            }
        }

        // Discovery and JWKS are for anyone.
        for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"] {
            let resp = preflight(&app, path, EVIL, "GET").await;
            assert_eq!(resp.status(), 204, "{path}");
            assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"), "{path}");
            let resp = app.http.get(app.url(path)).header("origin", EVIL).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"), "{path}");
            assert_eq!(header(&resp, "access-control-allow-credentials"), None, "{path}");
        }

        // Pages and the admin API send no CORS headers, even to a registered origin.
        for path in ["/login", "/account", "/admin", "/admin/api/v1/clients", "/authorize"] {
            let resp = preflight(&app, path, SPA, "POST").await;
            no_cors(&resp, &format!("preflight {path}"));
            let resp = app.http.get(app.url(path)).header("origin", SPA).send().await.unwrap();
            no_cors(&resp, &format!("GET {path}"));
        }
    }

    async fn origins_registered_through_the_admin_api_take_effect_at_once(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        // The index is built before the client exists.
        assert_eq!(preflight(&app, "/token", OTHER, "POST").await.status(), 403);
        let (status, created) = api.post("/clients", json!({
            "name": "SPA", "redirect_uris": ["https://app.example.com/cb"], "web_origins": [OTHER],
        })).await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["web_origins"], json!([OTHER]));
        assert_eq!(created["allowed_origins"], json!([OTHER]));
        let id = created["client_id"].as_str().unwrap().to_owned();
        assert_eq!(preflight(&app, "/token", OTHER, "POST").await.status(), 204);
        // Disabled: its origin is refused again.
        let (status, _) = api.post(&format!("/clients/{id}/disable"), json!({})).await;
        assert!(status.is_success(), "{status}");
        assert_eq!(preflight(&app, "/token", OTHER, "POST").await.status(), 403);

        // A public client without web_origins defaults to its redirect URIs' origins.
        let (status, public) = api.post("/clients", json!({
            "name": "Public", "token_endpoint_auth_method": "none",
            "redirect_uris": ["https://pub.example.com/cb", "https://pub.example.com/other", "com.example.app:/cb"],
        })).await;
        assert_eq!(status, 201, "{public}");
        assert_eq!(public["web_origins"], json!([]));
        assert_eq!(public["allowed_origins"], json!(["https://pub.example.com"]));
        assert_eq!(preflight(&app, "/userinfo", "https://pub.example.com", "GET").await.status(), 204);

        // Bad origins are refused with the field named, and nothing changes.
        let pid = public["client_id"].as_str().unwrap();
        for bad in ["https://pub.example.com/cb", "http://pub.example.com", "*", "pub.example.com"] {
            let (status, problem) = api.patch(&format!("/clients/{pid}"), json!({"web_origins": [bad]})).await;
            assert_eq!(status, 422, "{bad}: {problem}");
            assert!(problem.to_string().contains("web_origins"), "{problem}");
        }
        let (_, now) = api.get(&format!("/clients/{pid}")).await;
        assert_eq!(now["web_origins"], json!([]));
    }

    async fn responses_are_shared_only_with_the_callers_own_origins(app: TestApp) {
        let a = service(&app, &[SPA]).await;
        service(&app, &[OTHER]).await;
        let cc = [("grant_type", "client_credentials")];

        let resp = post_as(&app, &a, "/token", SPA, &cc).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(SPA));
        assert!(header(&resp, "vary").unwrap().contains("Origin"));
        assert_eq!(header(&resp, "access-control-allow-credentials"), None);
        let token: Value = resp.json().await.unwrap();
        let access = token["access_token"].as_str().unwrap().to_owned();
        // An error answer is readable by the client's own origin too.
        let resp = post_as(&app, &a, "/token", SPA, &[("grant_type", "client_credentials"), ("scope", "no-such-scope")]).await;
        assert_eq!(resp.status(), 400);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(SPA));

        // Another client's origin, or an unknown one: answered, but not shared with that origin.
        for origin in [OTHER, EVIL] {
            let resp = post_as(&app, &a, "/token", origin, &cc).await;
            assert_eq!(resp.status(), 200, "{origin}");
            no_cors(&resp, origin);
        }
        // A failed client authentication names no client: nothing is shared.
        let wrong = TestClient { secret: Some("wrong".into()), ..a.clone() };
        let resp = post_as(&app, &wrong, "/token", SPA, &cc).await;
        assert_eq!(resp.status(), 401);
        no_cors(&resp, "invalid_client");

        let resp = post_as(&app, &a, "/introspect", SPA, &[("token", access.as_str())]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(SPA));
        let resp = post_as(&app, &a, "/introspect", OTHER, &[("token", access.as_str())]).await;
        no_cors(&resp, "introspect from another client's origin");
        let resp = post_as(&app, &a, "/revoke", SPA, &[("token", access.as_str())]).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "access-control-allow-origin"), Some(SPA));

        // userinfo: the origins of the client the access token was issued to.
        app.create_user("cy@example.com", PASSWORD).await;
        let public = app.public_client().await;
        let tokens = app.login_and_exchange(&public, "cy@example.com", "openid email").await;
        let at = tokens["access_token"].as_str().unwrap();
        for method in [Method::GET, Method::POST] {
            let resp = app.http.request(method.clone(), app.url("/userinfo")).bearer_auth(at)
                .header("origin", PUBLIC_DEFAULT).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{method}");
            assert_eq!(header(&resp, "access-control-allow-origin"), Some(PUBLIC_DEFAULT), "{method}");
            assert_eq!(header(&resp, "access-control-allow-credentials"), None);
            let resp = app.http.request(method.clone(), app.url("/userinfo")).bearer_auth(at)
                .header("origin", SPA).send().await.unwrap();
            assert_eq!(resp.status(), 200, "{method}");
            no_cors(&resp, "userinfo from another client's origin");
        }
        let resp = app.http.get(app.url("/userinfo")).bearer_auth("not-a-token")
            .header("origin", PUBLIC_DEFAULT).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        no_cors(&resp, "userinfo with an invalid token");
    }
}
