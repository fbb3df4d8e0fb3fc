//! Issue 5: the admin API's OpenAPI document, served and checked against the live API by the
//! property-based tester `schemathesis` (installed by `tests/setup.d/admin.sh`).

use serde_json::Value;

use crate::admin_api::{ADMIN_EMAIL, mint};
use crate::backend_tests;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_lists_every_operation() {
    let app = TestApp::start(Backend::Sqlite).await;
    let resp = app
        .http
        .get(app.url("/admin/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/admin/api/v1/users", "get"),
        ("/admin/api/v1/users", "post"),
        ("/admin/api/v1/users/{id}", "patch"),
        ("/admin/api/v1/users/{id}/password-reset", "post"),
        ("/admin/api/v1/users/{id}/invitation", "post"),
        ("/admin/api/v1/users/{id}/roles/{role}", "delete"),
        ("/admin/api/v1/clients/{id}/secret", "post"),
        ("/admin/api/v1/groups/{id}/members/{user_id}", "put"),
        ("/admin/api/v1/audit", "get"),
        ("/admin/api/v1/audit/export", "get"),
        ("/admin/api/v1/dashboard", "get"),
        ("/admin/api/v1/mail/given-up", "get"),
        ("/admin/api/v1/mail/{id}/requeue", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

// Runs schemathesis against the live API, on each backend: every documented operation,
// generated inputs, and every check (server errors, status codes, content types, response
// schemas, ...).
backend_tests! {
async fn schemathesis_finds_no_deviation_from_the_openapi_document(app: TestApp) {
    let installed = std::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        installed,
        "schemathesis is not installed: run the suite with tests/run.sh, which installs it \
         (tests/setup.d/admin.sh)"
    );
    let admin = app
        .create_user_with(ADMIN_EMAIL, PASSWORD, true, &["admin"])
        .await;
    // The only admin: the last-admin rule keeps generated requests (which may find its id in
    // responses) from demoting, disabling or deleting the caller mid-run.
    let token = mint(&app, &admin.id, "schemathesis", "portcullis:admin");
    let schema = app.url("/admin/api/v1/openapi.json");
    let base = app.url("");
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let workdir = app.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("schemathesis")
            .args([
                "--config-file",
                config,
                "run",
                &schema,
                "--url",
                &base,
                "--checks",
                "all",
            ])
            .args([
                "--max-examples",
                "25",
                "--seed",
                "5",
                "--generation-deterministic",
            ])
            .args(["--request-timeout", "10", "--no-color"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .env("SCHEMATHESIS_HOOKS", "")
            .current_dir(&workdir)
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{stdout}\n{stderr}"
    );
    eprintln!(
        "{}",
        stdout
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
}
