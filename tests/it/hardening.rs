//! Hardening: each test is an abuse case, driven through the real server on both backends —
//! error descriptions that would repeat an attacker's text, forms posted from another site,
//! revoking another client's tokens, HSTS, and the protocol's smaller conformance points
//! (fragment-encoded errors, bare Bearer challenges, text that is not UTF-8, problem details
//! for a body too large).

use portcullis::domain::TokenEndpointAuthMethod;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "hana@example.com";
const EVIL: &str = "https://evil.example";

/// RFC 6749 §5.2: an `error_description` is printable ASCII without `"` and `\`; ours never
/// carries `crafted`, text the request made up.
fn assert_our_words(description: &str, crafted: &str) {
    assert!(
        !description.contains(crafted),
        "the description repeats the request: {description:?}"
    );
    assert!(
        description
            .bytes()
            .all(|b| (0x20..=0x7E).contains(&b) && b != b'"' && b != b'\\'),
        "not RFC 6749 §5.2 characters: {description:?}"
    );
}

/// An /authorize URL with one parameter set (replaced) to a value.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).expect("url");
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| k != name)
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    u.to_string()
}

/// POST a form with HTTP Basic client authentication.
async fn post_basic(
    app: &TestApp,
    path: &str,
    client: &TestClient,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn oauth_error(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON error");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The CSRF token of the form on the page at `path`.
async fn csrf_on(app: &TestApp, b: &reqwest::Client, path: &str) -> String {
    let resp = b.get(app.url(path)).send().await.expect("GET");
    assert_eq!(resp.status(), 200, "GET {path}");
    input_value(&resp.text().await.expect("html"), "csrf").expect("csrf field")
}

/// The three ways a cross-site post shows itself (OWASP: verify the source origin).
const FOREIGN: [(&str, &str); 4] = [
    ("origin", EVIL),
    ("origin", "null"),
    ("referer", "https://evil.example/phish"),
    ("referer", "https://evil.example/?https://127.0.0.1/"),
];

/// POST `form` to `path` with one extra header.
async fn post_with(
    app: &TestApp,
    b: &reqwest::Client,
    path: &str,
    header: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = b.post(app.url(path)).form(form);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    req.send().await.expect("POST")
}

/// Whether `b` holds a live session (`/login` without a request sends it home).
async fn signed_in(app: &TestApp, b: &reqwest::Client) -> bool {
    b.get(app.url("/login")).send().await.expect("GET").status() == 303
}

/// A browser signed in as `email`.
async fn signed_in_browser(app: &TestApp, email: &str) -> reqwest::Client {
    let b = browser();
    let (status, _) = app.submit_login(&b, "/login", email, PASSWORD).await;
    assert_eq!(status, 303);
    b
}

/// Status, content type and body.
async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, resp.text().await.unwrap())
}

// Item 1: error descriptions in our words only.
backend_tests! {
    async fn a_crafted_prompt_is_not_repeated_to_the_relying_party(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        let crafted = "Your account is locked, call +1 555 0100";
        let bad = with_param(&url, "prompt", &format!("none\r\n{crafted}"));
        let resp = browser().get(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        let to = location(&resp);
        assert!(to.starts_with(REDIRECT_URI), "{to}");
        let q = query_of(&to);
        assert_eq!(q["error"], "invalid_request");
        assert_eq!(q["state"], state);
        assert_our_words(q.get("error_description").map_or("", String::as_str), crafted);
        assert!(!to.contains("locked"), "{to}");
    }

    async fn a_crafted_parameter_name_is_not_repeated_at_the_token_endpoint(app: TestApp) {
        let client = app.confidential_client().await;
        let body = "grant_type=client_credentials&x%0D%0Ay=1&x%0D%0Ay=2";
        let (status, error, description) = oauth_error(post_basic(&app, "/token", &client, body).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"));
        assert_our_words(&description, "x\r\ny");
        assert!(!description.contains('x'), "{description}");
        // A parameter of ours is named.
        let body = "grant_type=client_credentials&scope=openid&scope=email";
        let (_, error, description) = oauth_error(post_basic(&app, "/token", &client, body).await).await;
        assert_eq!(error, "invalid_request");
        assert_eq!(description, "parameter `scope` is repeated");
        // The same at /revoke and /authorize.
        let body = "token=t&Call%20us%20now=1&Call%20us%20now=2";
        let (_, error, description) = oauth_error(post_basic(&app, "/revoke", &client, body).await).await;
        assert_eq!(error, "invalid_request");
        assert_our_words(&description, "Call us");
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser().get(format!("{url}&Call+us+now=1&Call+us+now=2")).send().await.unwrap();
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "invalid_request");
        assert_our_words(&q["error_description"], "Call us");
    }

    async fn a_crafted_scope_is_not_repeated_to_the_relying_party(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let resp = browser().get(with_param(&url, "scope", "openid Call_+1_555_0100_now")).send().await.unwrap();
        let q = query_of(&location(&resp));
        assert_eq!(q["error"], "invalid_scope");
        assert_our_words(&q["error_description"], "555");
        // At the token endpoint too (client credentials).
        let body = "grant_type=client_credentials&scope=Call_555_now";
        let (_, error, description) = oauth_error(post_basic(&app, "/token", &client, body).await).await;
        assert_eq!(error, "invalid_scope");
        assert_our_words(&description, "555");
        // A scope of ours is named.
        let narrow = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| c.scopes = vec!["openid".into()])
            .await;
        let (url, _, _, _) = app.authorize_url(&narrow, "openid email");
        let q = query_of(&location(&browser().get(&url).send().await.unwrap()));
        assert_eq!(q["error_description"], "scope `email` is not available to this client");
    }
}

// Item 2: state-changing forms only from our own origin.
backend_tests! {
    async fn sign_in_posted_from_another_site_is_refused(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        for header in FOREIGN {
            let b = browser();
            let csrf = csrf_on(&app, &b, "/login").await;
            let form = [("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str()), ("rid", "")];
            let resp = post_with(&app, &b, "/login", Some(header), &form).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            assert!(resp.headers().get("location").is_none());
            assert!(!signed_in(&app, &b).await, "{header:?} signed the browser in");
            // The same form from our own page, or with neither header, works.
            let ours = app.issuer.as_str();
            let resp = post_with(&app, &b, "/login", Some(("origin", ours)), &form).await;
            assert_eq!(resp.status(), 303, "{header:?}");
            assert!(signed_in(&app, &b).await);
        }
        let b = browser();
        let csrf = csrf_on(&app, &b, "/login").await;
        let resp = post_with(&app, &b, "/login", Some(("referer", &app.url("/login"))), &[
            ("email", EMAIL), ("password", PASSWORD), ("csrf", csrf.as_str()), ("rid", ""),
        ]).await;
        assert_eq!(resp.status(), 303);
        let (status, _) = app.submit_login(&browser(), "/login", EMAIL, PASSWORD).await;
        assert_eq!(status, 303, "no Origin and no Referer: allowed");
        // The protocol endpoints are not forms: relying parties call them from anywhere.
        let client = app.confidential_client().await;
        let resp = app.http.post(app.url("/token")).basic_auth(&client.id, client.secret.as_deref())
            .header("origin", EVIL).form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app.http.post(app.url("/revoke")).basic_auth(&client.id, client.secret.as_deref())
            .header("origin", "null").form(&[("token", "unknown")]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        // A relying party's page may post the authorization request.
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let pairs: Vec<(String, String)> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
        let resp = browser().post(app.url("/authorize")).header("origin", EVIL).form(&pairs).send().await.unwrap();
        assert_eq!(resp.status(), 303);
        assert!(location(&resp).starts_with("/login?rid="));
        // And RP-initiated logout (nobody signed in here: the signed-out page).
        let resp = browser().post(app.url("/logout")).header("origin", EVIL)
            .form(&[("client_id", client.id.as_str())]).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn consent_posted_from_another_site_is_not_recorded(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app
            .register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| c.require_consent = true)
            .await;
        let b = browser();
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let to = app.authorize_with_login(&b, &url, EMAIL, PASSWORD).await;
        assert!(to.starts_with("/consent?rid="), "{to}");
        let page = b.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
        let csrf = input_value(&page, "csrf").unwrap();
        let rid = input_value(&page, "rid").unwrap();
        let form = [("csrf", csrf.as_str()), ("rid", rid.as_str()), ("decision", "allow")];
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(EMAIL).unwrap()).await.unwrap().unwrap();
        for header in FOREIGN {
            let resp = post_with(&app, &b, "/consent", Some(header), &form).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            assert!(resp.headers().get("location").is_none(), "{header:?}");
            let consent = app.provider.store.find_consent(&user.id, &client.id).await.unwrap();
            assert!(consent.is_none(), "{header:?} recorded consent");
        }
        // The request was left as it was: the genuine answer still completes it.
        let resp = post_with(&app, &b, "/consent", None, &form).await;
        assert_eq!(resp.status(), 303);
        assert!(query_of(&location(&resp)).contains_key("code"));
        assert!(app.provider.store.find_consent(&user.id, &client.id).await.unwrap().is_some());
    }

    async fn sign_up_posted_from_another_site_creates_no_account(app: TestApp) {
        for (i, header) in FOREIGN.into_iter().enumerate() {
            let b = browser();
            let csrf = csrf_on(&app, &b, "/signup").await;
            let email = format!("new{i}@example.com");
            let form = [
                ("name", "New Person"), ("email", email.as_str()), ("password", PASSWORD),
                ("password_confirm", PASSWORD), ("rid", ""), ("csrf", csrf.as_str()),
            ];
            let resp = post_with(&app, &b, "/signup", Some(header), &form).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(&email).unwrap()).await.unwrap().is_none(), "{header:?}");
            assert!(app.provider.store.mail_for(&email).await.unwrap().is_empty(), "{header:?}");
        }
        // From our own origin it works.
        let b = browser();
        let csrf = csrf_on(&app, &b, "/signup").await;
        let resp = post_with(&app, &b, "/signup", Some(("origin", &app.issuer)), &[
            ("name", "New Person"), ("email", "ok@example.com"), ("password", PASSWORD),
            ("password_confirm", PASSWORD), ("rid", ""), ("csrf", csrf.as_str()),
        ]).await;
        assert_eq!(resp.status(), 200);
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("ok@example.com").unwrap()).await.unwrap().is_some());
    }

    async fn account_changes_posted_from_another_site_are_refused(app: TestApp) {
        let user = app.create_user(EMAIL, PASSWORD).await;
        let b = signed_in_browser(&app, EMAIL).await;
        for header in FOREIGN {
            let csrf = csrf_on(&app, &b, "/account").await;
            let resp = post_with(&app, &b, "/account/profile", Some(header), &[
                ("name", "Mallory"), ("csrf", csrf.as_str()),
            ]).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            let resp = post_with(&app, &b, "/account/delete", Some(header), &[
                ("password", PASSWORD), ("csrf", csrf.as_str()),
            ]).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            let now = app.provider.store.find_user(&user.id).await.unwrap().unwrap();
            assert_eq!(now.name.as_deref(), Some("Test Person"), "{header:?}");
            assert!(now.is_active(), "{header:?}");
            assert!(signed_in(&app, &b).await);
        }
        let csrf = csrf_on(&app, &b, "/account").await;
        let resp = post_with(&app, &b, "/account/profile", Some(("origin", &app.issuer)), &[
            ("name", "Hana"), ("csrf", csrf.as_str()),
        ]).await;
        assert_eq!(resp.status(), 303);
        let now = app.provider.store.find_user(&user.id).await.unwrap().unwrap();
        assert_eq!(now.name.as_deref(), Some("Hana"));
    }

    async fn admin_forms_posted_from_another_site_are_refused(app: TestApp) {
        app.create_user_with(EMAIL, PASSWORD, true, &["admin"]).await;
        let b = signed_in_browser(&app, EMAIL).await;
        for header in FOREIGN {
            let csrf = csrf_on(&app, &b, "/admin/groups").await;
            let resp = post_with(&app, &b, "/admin/groups", Some(header), &[
                ("name", "Intruders"), ("csrf", csrf.as_str()),
            ]).await;
            assert_eq!(resp.status(), 403, "{header:?}");
            let csrf = csrf_on(&app, &b, "/admin/users").await;
            let resp = post_with(&app, &b, "/admin/users", Some(header), &[
                ("email", "planted@example.com"), ("csrf", csrf.as_str()),
            ]).await;
            assert_eq!(resp.status(), 403, "{header:?}");
        }
        assert!(app.provider.store.list_groups().await.unwrap().is_empty());
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("planted@example.com").unwrap()).await.unwrap().is_none());
        let csrf = csrf_on(&app, &b, "/admin/groups").await;
        let resp = post_with(&app, &b, "/admin/groups", Some(("origin", &app.issuer)), &[
            ("name", "Staff"), ("csrf", csrf.as_str()),
        ]).await;
        assert_eq!(resp.status(), 303);
        assert_eq!(app.provider.store.list_groups().await.unwrap().len(), 1);
    }
}

// Item 4: a client revokes only its own tokens.
backend_tests! {
    async fn revoking_another_clients_tokens_is_refused_and_leaves_them_valid(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let a = app.confidential_client().await;
        let b = app.confidential_client().await;
        let tokens = app.login_and_exchange(&a, EMAIL, "openid offline_access").await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();
        for token in [refresh, access] {
            let resp = post_basic(&app, "/revoke", &b, format!("token={token}")).await;
            let (status, error, _) = oauth_error(resp).await;
            assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
        }
        // A public client naming itself is refused the same way.
        let public = app.public_client().await;
        let resp = app.http.post(app.url("/revoke"))
            .form(&[("token", refresh), ("client_id", public.id.as_str())]).send().await.unwrap();
        assert_eq!(oauth_error(resp).await.1, "unauthorized_client");
        // Both still work for A.
        let introspected: Value = post_basic(&app, "/introspect", &a, format!("token={access}"))
            .await.json().await.unwrap();
        assert_eq!(introspected["active"], true);
        let resp = app.http.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let resp = app.token_request(&a, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!(resp.status(), 200);
    }
}

// Item 6: HSTS with an https issuer.
backend_tests! {
    async fn an_https_issuer_pins_browsers_to_https_on_every_response(app: TestApp) {
        // The http issuer of the harness: browsers ignore HSTS over http, so none is sent.
        let resp = app.http.get(app.url("/")).send().await.unwrap();
        assert!(resp.headers().get("strict-transport-security").is_none());

        let https = TestApp::start_with(app.backend, &[("PORTCULLIS_ISSUER", "https://id.example.test")]).await;
        let client = https.confidential_client().await;
        for resp in [
            https.http.get(https.url("/")).send().await.unwrap(),
            https.http.get(https.url("/login")).send().await.unwrap(),
            https.http.get(https.url("/.well-known/openid-configuration")).send().await.unwrap(),
            https.http.get(https.url("/no-such-page")).send().await.unwrap(),
            https.http.get(https.url("/userinfo")).send().await.unwrap(),
            https.http.get(https.url("/admin/api/v1/users")).send().await.unwrap(),
            https.http.post(https.url("/token")).basic_auth(&client.id, Some("wrong"))
                .form(&[("grant_type", "client_credentials")]).send().await.unwrap(),
            https.http.post(https.url("/login")).header("origin", EVIL).form(&[("csrf", "x")]).send().await.unwrap(),
        ] {
            let status = resp.status();
            assert_eq!(
                resp.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()),
                Some("max-age=31536000"),
                "{} ({status})", resp.url()
            );
        }

        let sub = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_ISSUER", "https://id.example.test"),
            ("PORTCULLIS_HSTS_MAX_AGE", "600"),
            ("PORTCULLIS_HSTS_INCLUDE_SUBDOMAINS", "true"),
        ]).await;
        let resp = sub.http.get(sub.url("/")).send().await.unwrap();
        assert_eq!(resp.headers()["strict-transport-security"], "max-age=600; includeSubDomains");

        let off = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_ISSUER", "https://id.example.test"),
            ("PORTCULLIS_HSTS_MAX_AGE", "0"),
        ]).await;
        let resp = off.http.get(off.url("/")).send().await.unwrap();
        assert!(resp.headers().get("strict-transport-security").is_none());
    }
}

// Item 7: small protocol conformance points.
backend_tests! {
    async fn token_response_types_get_their_error_in_the_fragment(app: TestApp) {
        let client = app.confidential_client().await;
        let (url, _, state, _) = app.authorize_url(&client, "openid");
        for response_type in ["token", "id_token", "id_token token", "code id_token", "code token"] {
            for mode in [None, Some("query")] {
                let mut bad = with_param(&url, "response_type", response_type);
                if let Some(mode) = mode {
                    bad = with_param(&bad, "response_mode", mode);
                }
                let resp = browser().get(&bad).send().await.unwrap();
                assert_eq!(resp.status(), 303, "{response_type}");
                let to = url::Url::parse(&location(&resp)).unwrap();
                assert_eq!(to.path(), "/callback");
                assert!(to.query().is_none(), "{response_type} {mode:?}: error in the query: {to}");
                let f: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(to.fragment().unwrap_or_default().as_bytes()).into_owned().collect();
                assert_eq!(f.get("error").map(String::as_str), Some("unsupported_response_type"), "{to}");
                assert_eq!(f.get("state"), Some(&state));
                assert_eq!(f.get("iss"), Some(&app.issuer));
            }
        }
        // form_post, when asked for, is kept.
        let bad = with_param(&with_param(&url, "response_type", "id_token"), "response_mode", "form_post");
        let resp = browser().get(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let html = resp.text().await.unwrap();
        assert_eq!(input_value(&html, "error").as_deref(), Some("unsupported_response_type"));
        // And code errors stay in the query.
        let resp = browser().get(with_param(&url, "response_type", "bogus")).send().await.unwrap();
        let to = url::Url::parse(&location(&resp)).unwrap();
        assert!(to.fragment().is_none());
        assert_eq!(query_of(to.as_str())["error"], "unsupported_response_type");
    }

    async fn a_request_without_a_token_gets_a_challenge_without_an_error(app: TestApp) {
        for req in [
            app.http.get(app.url("/userinfo")),
            app.http.post(app.url("/userinfo")),
            app.http.get(app.url("/userinfo")).basic_auth("someone", Some("secret")),
            app.http.get(app.url("/userinfo")).header("authorization", "Bearer "),
        ] {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401);
            let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert_eq!(challenge, "Bearer realm=\"portcullis\"");
            let body = resp.text().await.unwrap();
            assert!(!body.contains("invalid_token"), "{body}");
        }
        // A token that does not check out is named as such.
        let resp = app.http.get(app.url("/userinfo")).bearer_auth("not-a-token").send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    async fn form_text_that_is_not_utf8_is_refused_in_the_endpoints_format(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        // Protocol endpoints: RFC 6749 invalid_request.
        for (path, body) in [
            ("/token", &b"grant_type=client_credentials&resource=%FF"[..]),
            ("/token", b"grant_type=client_credentials&resource=\xff"),
            ("/revoke", b"token=%C3"),
            ("/introspect", b"token=\xc3\x28"),
        ] {
            let (status, error, _) = oauth_error(post_basic(&app, path, &client, body.to_vec()).await).await;
            assert_eq!((status, error.as_str()), (400, "invalid_request"), "{path} {body:?}");
        }
        // Pages: an error page; the form changed nothing.
        let b = browser();
        let csrf = csrf_on(&app, &b, "/login").await;
        let form = format!("password={PASSWORD}&csrf={csrf}&rid=");
        for email in [&b"hana%FF@example.com"[..], b"hana\xff@example.com"] {
            let body = [&b"email="[..], email, b"&", form.as_bytes()].concat();
            let resp = b.post(app.url("/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body).send().await.unwrap();
            let (status, ctype, _) = answer(resp).await;
            assert_eq!(status, 400, "{email:?}");
            assert!(ctype.starts_with("text/html"), "{ctype}");
            assert!(!signed_in(&app, &b).await);
        }
        // A form whose Content-Type is not text, or missing, gets the page's answer too (it was
        // axum's 415 in text/plain, "must have Content-Type: application/x-www-form-urlencoded").
        let body = format!("email={EMAIL}&{form}");
        let odd = reqwest::header::HeaderValue::from_bytes(b"application/x-www-form-urlencoded; charset=\xff").unwrap();
        for resp in [
            b.post(app.url("/login")).header("content-type", odd).body(body.clone()).send().await.unwrap(),
            b.post(app.url("/login")).body(body.clone()).send().await.unwrap(),
        ] {
            let (status, ctype, _) = answer(resp).await;
            assert_eq!(status, 400);
            assert!(ctype.starts_with("text/html"), "{ctype}");
            assert!(!signed_in(&app, &b).await);
        }
        let csrf = csrf_on(&app, &b, "/signup").await;
        let resp = b.post(app.url("/signup"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("name=Mal%FF&email=mal@example.com&password={PASSWORD}&password_confirm={PASSWORD}&rid=&csrf={csrf}"))
            .send().await.unwrap();
        let (status, ctype, _) = answer(resp).await;
        assert_eq!(status, 400);
        assert!(ctype.starts_with("text/html"), "{ctype}");
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("mal@example.com").unwrap()).await.unwrap().is_none());
        // The admin API: problem details.
        let (_, token) = crate::admin_api::admin_token(&app).await;
        let resp = app.http.get(app.url("/admin/api/v1/users?q=%FF")).bearer_auth(&token).send().await.unwrap();
        let (status, ctype, body) = answer(resp).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(ctype, "application/problem+json");
    }

    async fn a_state_that_is_not_utf8_is_refused_not_replaced(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let (url, _, _, _) = app.authorize_url(&client, "openid");
        let mut without_state = url::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> =
            without_state.query_pairs().into_owned().filter(|(k, _)| k != "state").collect();
        without_state.query_pairs_mut().clear().extend_pairs(pairs);
        for state in ["%FF", "ok%C3", "%ED%A0%80"] {
            let bad = format!("{without_state}&state={state}");
            let b = browser();
            let resp = b.get(&bad).send().await.unwrap();
            assert!(resp.headers().get("location").is_none(), "{state}: redirected");
            let (status, ctype, _) = answer(resp).await;
            assert_eq!(status, 400, "{state}");
            assert!(ctype.starts_with("text/html"), "{ctype}");
            // And by POST.
            let body = url::Url::parse(&bad).unwrap().query().unwrap().to_owned();
            let resp = b.post(app.url("/authorize"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body).send().await.unwrap();
            assert!(resp.headers().get("location").is_none(), "{state}: redirected");
            assert_eq!(resp.status(), 400);
        }
        // A raw byte in a form body (in a URL, the HTTP layer already refuses it).
        let body = [without_state.query().unwrap().as_bytes(), b"&state=ok\xff"].concat();
        let resp = browser().post(app.url("/authorize"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body).send().await.unwrap();
        assert!(resp.headers().get("location").is_none(), "raw byte: redirected");
        assert_eq!(resp.status(), 400);
        // A state that is UTF-8 (U+FFFD itself included) goes through untouched.
        let ok = with_param(&url, "state", "caf\u{e9} \u{fffd}");
        let back = app.authorize_with_login(&browser(), &ok, EMAIL, PASSWORD).await;
        assert_eq!(query_of(&back)["state"], "caf\u{e9} \u{fffd}");
    }

    async fn an_oversized_admin_api_body_gets_a_problem_document(app: TestApp) {
        let (_, token) = crate::admin_api::admin_token(&app).await;
        let big = serde_json::json!({"email": "big@example.com", "name": "x".repeat(100 * 1024)});
        let resp = app.http.post(app.url("/admin/api/v1/users")).bearer_auth(&token).json(&big).send().await.unwrap();
        let (status, ctype, body) = answer(resp).await;
        assert_eq!(status, 413);
        assert_eq!(ctype, "application/problem+json");
        let problem: Value = serde_json::from_str(&body).expect("problem JSON");
        assert_eq!(problem["status"], 413);
        assert_eq!(problem["type"], "about:blank");
        assert!(app.provider.store.find_user_by_email(&portcullis::domain::Email::parse("big@example.com").unwrap()).await.unwrap().is_none());
    }
}
