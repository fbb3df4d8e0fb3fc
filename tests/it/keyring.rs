//! Signing keys in the database (`keys_encryption_key`): several `portcullis serve` processes on
//! one PostgreSQL schema publish the same JWKS and verify each other's tokens, follow a
//! `keys rotate` run from the CLI within seconds, and write one key set when they start
//! together; a wrong or missing key-encryption key, or a schema newer than the binary, stops the
//! start with one line and changes nothing; key files are imported on the first start.

use std::process::Stdio;
use std::time::Duration;

use portcullis::domain::{GrantType, TokenEndpointAuthMethod};
use serde_json::Value;
use sqlx::Connection;

use crate::backend_tests;
use crate::faults::ServerProcess;
use crate::helpers::*;
use crate::tokens::{cli, kid_of, verifies_with_jwks};

/// How long a rotation may take to reach every node: the reload interval (1 s) plus room for a
/// busy test machine. Polled, never slept.
const PUBLISHED_WITHIN: Duration = Duration::from_secs(5);

async fn jwks_at(base: &str) -> Vec<u8> {
    let resp = reqwest::get(format!("{base}/jwks.json")).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

fn kids(jwks: &[u8]) -> Vec<String> {
    let v: Value = serde_json::from_slice(jwks).unwrap();
    let mut kids: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn service_client(app: &TestApp) -> TestClient {
    app.register_client(TokenEndpointAuthMethod::ClientSecretBasic, |c| {
        c.grant_types = vec![GrantType::ClientCredentials.as_str().into()];
    })
    .await
}

/// A client-credentials access token (ES256) from the node at `base`.
async fn token_at(base: &str, client: &TestClient) -> String {
    let body: Value = browser()
        .post(format!("{base}/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn introspect_at(base: &str, client: &TestClient, token: &str) -> Value {
    browser()
        .post(format!("{base}/introspect"))
        .basic_auth(&client.id, client.secret.as_deref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Poll every node's JWKS until each publishes `kid` (bounded by `PUBLISHED_WITHIN`).
async fn wait_until_published(bases: &[&str], kid: &str) {
    let deadline = tokio::time::Instant::now() + PUBLISHED_WITHIN;
    for base in bases {
        while !kids(&jwks_at(base).await).iter().any(|k| k == kid) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{base} publishes {kid} within {PUBLISHED_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `keys list --json` of the test's configuration.
fn listed(app: &TestApp) -> Vec<Value> {
    let out = cli(app, &["keys", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The stored keys, sealed, as they are in the database.
async fn stored(app: &TestApp) -> Vec<(String, String, i64)> {
    app.provider
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.private_key, k.activates_at))
        .collect()
}

/// The one line a refused start printed.
fn one_line(err: &str) -> &str {
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line on stderr: {err}"
    );
    err.trim_end()
}

fn key_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn several_nodes_sign_with_the_same_keys_and_follow_a_rotation() {
    require_postgres();
    let app = TestApp::start(Backend::Postgres).await;
    // Each node has a keys_dir of its own: nothing is shared but the database.
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dir = |d: &tempfile::TempDir| d.path().join("keys").display().to_string();
    let (k1, k2) = (dir(&d1), dir(&d2));
    // One issuer for all nodes, as behind a load balancer.
    let issuer = app.issuer.as_str();
    let n1 = ServerProcess::start(
        &app,
        &[
            ("PORTCULLIS_KEYS_DIR", k1.as_str()),
            ("PORTCULLIS_ISSUER", issuer),
        ],
    )
    .await;
    let n2 = ServerProcess::start(
        &app,
        &[
            ("PORTCULLIS_KEYS_DIR", k2.as_str()),
            ("PORTCULLIS_ISSUER", issuer),
        ],
    )
    .await;
    let bases = [app.issuer.as_str(), n1.base.as_str(), n2.base.as_str()];
    let published = kids(&jwks_at(bases[0]).await);
    assert_eq!(published.len(), 3);
    for base in bases {
        assert_eq!(kids(&jwks_at(base).await), published, "{base}");
    }
    for d in [&d1, &d2] {
        assert_eq!(key_files(&d.path().join("keys")), 0, "no key on disk");
    }
    assert_eq!(
        key_files(&app.provider.settings.keys_dir),
        0,
        "no key on disk"
    );

    // Signed by node 1, verified with node 2's JWKS and introspected there.
    let svc = service_client(&app).await;
    let first = token_at(&n1.base, &svc).await;
    assert!(verifies_with_jwks(&jwks_at(&n2.base).await, &first));
    assert_eq!(introspect_at(&n2.base, &svc, &first).await["active"], true);
    let old_kid = kid_of(&first);

    // A rotation from the CLI: published by every node at once, signing only after the delay.
    let out = cli(&app, &["keys", "rotate", "--alg", "ES256"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = listed(&app);
    let pending = list
        .iter()
        .find(|k| k["status"] == "pending")
        .expect("the rotated key is listed from the database, pending");
    let pending_kid = pending["kid"].as_str().unwrap().to_owned();
    wait_until_published(&bases, &pending_kid).await;
    for base in bases {
        assert_eq!(
            kid_of(&token_at(base, &svc).await),
            old_kid,
            "{base} not before its time"
        );
    }

    // An emergency rotation (`--now`): every node signs with the new key once it publishes it.
    let out = cli(&app, &["keys", "rotate", "--alg", "ES256", "--now"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before: Vec<&str> = list.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    let list = listed(&app);
    let new_kid = list
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .find(|k| !before.contains(k))
        .expect("the new key is listed")
        .to_owned();
    wait_until_published(&bases, &new_kid).await;
    for base in bases {
        let token = token_at(base, &svc).await;
        assert_eq!(kid_of(&token), new_kid, "{base} signs with the new key");
        for other in bases {
            assert!(verifies_with_jwks(&jwks_at(other).await, &token), "{other}");
            assert!(
                verifies_with_jwks(&jwks_at(other).await, &first),
                "old tokens verify"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn a_wrong_or_missing_key_encryption_key_refuses_start_and_changes_nothing() {
    require_postgres();
    let app = TestApp::start(Backend::Postgres).await;
    let before = stored(&app).await;
    assert_eq!(before.len(), 3);

    let wrong = portcullis::crypto::Kek::generate_base64();
    let refused = |kek: &str| {
        ServerProcess::spawn(
            &app,
            &[("PORTCULLIS_KEYS_ENCRYPTION_KEY", kek)],
            Stdio::piped(),
        )
        .wait_exit_output()
    };
    let (status, err) = refused(&wrong).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        one_line(&err)
            .contains("keys_encryption_key does not decrypt the keys stored in the database"),
        "{err}"
    );
    // Nor does `keys rotate` with it add a key the others could not read.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["keys", "rotate", "--now"])
        .env(
            "PORTCULLIS_DATABASE_URL",
            app.provider.settings.database_url.expose(),
        )
        .env("PORTCULLIS_KEYS_DIR", &app.provider.settings.keys_dir)
        .env("PORTCULLIS_KEYS_ENCRYPTION_KEY", &wrong)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(one_line(&String::from_utf8_lossy(&out.stderr)).contains("does not decrypt"));

    let (status, err) = refused("").await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        one_line(&err).contains("keys_encryption_key is not set"),
        "{err}"
    );
    let (status, err) = refused("not a key").await;
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        one_line(&err).contains("invalid configuration: keys_encryption_key: is not 32 bytes"),
        "{err}"
    );
    assert_eq!(stored(&app).await, before, "the stored keys are untouched");
    assert_eq!(
        key_files(&app.provider.settings.keys_dir),
        0,
        "and none was made on disk"
    );

    // On a new database a missing key stops the start before anything is written.
    let (url, schema) = fresh_pg_schema().await;
    let (status, err) =
        ServerProcess::spawn_with(&[("PORTCULLIS_DATABASE_URL", url.as_str())], Stdio::piped())
            .wait_exit_output()
            .await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        one_line(&err).contains("keys_encryption_key is not set"),
        "{err}"
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (tables,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = $1")
            .bind(&schema)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    assert_eq!(tables, 0, "not even migrations ran");
    drop_pg_schema(schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(portcullis_pg_tests),
    ignore = "TEST_DATABASE_URL not set: PostgreSQL variant"
)]
async fn nodes_starting_together_store_one_key_set() {
    require_postgres();
    let (url, schema) = fresh_pg_schema().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<String> = dirs
        .iter()
        .map(|d| d.path().display().to_string())
        .collect();
    let nodes: Vec<ServerProcess> = paths
        .iter()
        .map(|keys| {
            ServerProcess::spawn_with(
                &[
                    ("PORTCULLIS_DATABASE_URL", url.as_str()),
                    ("PORTCULLIS_KEYS_DIR", keys.as_str()),
                    ("PORTCULLIS_KEYS_ENCRYPTION_KEY", TEST_KEK),
                ],
                Stdio::null(),
            )
        })
        .collect();
    for node in &nodes {
        node.wait_ready().await;
    }
    let published = kids(&jwks_at(&nodes[0].base).await);
    assert_eq!(published.len(), 3, "one key per algorithm");
    for node in &nodes {
        assert_eq!(kids(&jwks_at(&node.base).await), published);
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(count, 3, "one key set stored");
    drop(nodes);
    drop_pg_schema(schema);
}

/// Run SQL on the test's own database (setting up a state the server must refuse).
async fn execute(app: &TestApp, sql: &str) {
    let url = app.provider.settings.database_url.expose();
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
    }
}

async fn migration_versions(app: &TestApp) -> Vec<i64> {
    let url = app.provider.settings.database_url.expose();
    let sql = "SELECT version FROM _sqlx_migrations ORDER BY version";
    let rows: Vec<(i64,)> = match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
        }
    };
    rows.into_iter().map(|(v,)| v).collect()
}

backend_tests! {
    async fn a_database_migrated_by_a_newer_version_refuses_start_and_changes_nothing(app: TestApp) {
        let checksum = match app.backend {
            Backend::Sqlite => "X'00'",
            Backend::Postgres => "'\\x00'::bytea",
        };
        execute(&app, &format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'from a newer version', TRUE, {checksum}, 0)"
        )).await;
        let before = migration_versions(&app).await;
        let (status, err) = ServerProcess::spawn(&app, &[], Stdio::piped()).wait_exit_output().await;
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(
            one_line(&err).contains(
                "the database schema is newer than this binary (it has migration 9999"
            ),
            "{err}"
        );
        let out = cli(&app, &["migrate"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(one_line(&String::from_utf8_lossy(&out.stderr)).contains("is newer than this binary"));
        assert_eq!(migration_versions(&app).await, before, "nothing applied or removed");
    }

    async fn key_files_are_imported_on_the_first_start_with_the_keys_in_the_database(app: TestApp) {
        // Keys on disk, as a single SQLite node without a key-encryption key keeps them.
        let files = TestApp::start(Backend::Sqlite).await;
        let on_disk = kids(&jwks_at(&files.issuer).await);
        let keys_dir = files.provider.settings.keys_dir.display().to_string();
        let csrf = std::fs::read(files.provider.settings.keys_dir.join("csrf.key")).unwrap();

        let moved = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_KEYS_DIR", keys_dir.as_str()),
            ("PORTCULLIS_KEYS_ENCRYPTION_KEY", TEST_KEK),
        ]).await;
        assert!(moved.keyring.in_database());
        assert_eq!(kids(&jwks_at(&moved.issuer).await), on_disk, "the same keys, imported");
        let sealed = stored(&moved).await;
        assert_eq!(sealed.len(), 3);
        for (kid, private_key, _) in &sealed {
            assert!(!private_key.contains("PRIVATE KEY"), "{kid} is stored encrypted");
        }
        // The CSRF key came along: a form from the file-keyed server still checks out.
        assert_eq!(moved.keyring.csrf_key().await.unwrap().to_vec(), csrf);

        if app.backend == Backend::Sqlite {
            // Once in the database, a start without the key is refused (the files are not
            // silently used instead).
            let (status, err) = ServerProcess::spawn(&moved, &[("PORTCULLIS_KEYS_ENCRYPTION_KEY", "")], Stdio::piped())
                .wait_exit_output()
                .await;
            assert_eq!(status.code(), Some(1), "{err}");
            assert!(one_line(&err).contains("the database holds signing keys"), "{err}");
        }
        assert_eq!(stored(&moved).await, sealed);
    }
}
