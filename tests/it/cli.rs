//! The `portcullis` binary: bootstrap commands, configuration errors and `serve` with a graceful
//! shutdown. Each test runs the real executable in an empty working directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use portcullis::domain::Client;

use crate::admin_api::{Api, admin_token};
use crate::backend_tests;
use crate::helpers::*;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORTCULLIS_ARGON2__MEMORY_KIB", "8192")
            .env("PORTCULLIS_ARGON2__ITERATIONS", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn db(&self) -> &Path {
        self.dir.path()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn clients(cli: &Cli) -> Vec<Value> {
    let out = cli.run(&["client", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn user_create_validates_before_writing() {
    let cli = Cli::new();
    let ok = cli.run(&[
        "user",
        "create",
        "--email",
        "Ann@Example.com",
        "--password",
        "long enough pw",
        "--verified",
        "--admin",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("created user"));
    // Defaults: the database and keys are created in the working directory.
    assert!(cli.db().join("data/portcullis.db").exists());

    for (args, needle) in [
        (
            vec!["--email", "not-an-address", "--password", "long enough pw"],
            "e-mail",
        ),
        (
            vec!["--email", "b@example.com", "--password", "short"],
            "password",
        ),
        // The sign-up policy, through the same domain code: a common password…
        (
            vec!["--email", "b@example.com", "--password", "Password123"],
            "too common",
        ),
        // …and the account's own e-mail address (compared in its normalised form).
        (
            vec![
                "--email",
                "Long.Address@Example.com",
                "--password",
                " long.address@example.COM",
            ],
            "e-mail address",
        ),
    ] {
        let mut full = vec!["user", "create"];
        full.extend(args);
        let out = cli.run(&full);
        assert_eq!(out.status.code(), Some(2), "{full:?}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.to_lowercase().contains(needle), "{err}");
    }
    // Nothing was written by the refused commands.
    let retry = cli.run(&[
        "user",
        "create",
        "--email",
        "b@example.com",
        "--password",
        "long enough pw",
    ]);
    assert!(retry.status.success(), "{}", stderr(&retry));
    let dup = cli.run(&[
        "user",
        "create",
        "--email",
        "ann@example.com",
        "--password",
        "long enough pw",
    ]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("already exists"), "{}", stderr(&dup));
}

#[test]
fn client_create_prints_secret_once_and_validates() {
    let cli = Cli::new();
    let out = cli.run(&[
        "client",
        "create",
        "--name",
        "Web",
        "--redirect-uri",
        "https://app.example/cb",
        "--redirect-uri",
        "http://127.0.0.1:3000/cb",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 43);
    let public = cli.run(&[
        "client",
        "create",
        "--name",
        "SPA",
        "--redirect-uri",
        "https://spa.example/cb",
        "--public",
        "--json",
    ]);
    let public: Value = serde_json::from_slice(&public.stdout).unwrap();
    assert!(public.get("client_secret").is_none());

    let list = clients(&cli);
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|c| c["client_id"] == id));
    assert!(
        !list.iter().any(|c| c.to_string().contains(secret)),
        "the secret is never shown again"
    );
    let text = stdout(&cli.run(&["client", "list"]));
    assert!(text.contains(id) && !text.contains(secret));

    for bad in [
        vec!["--name", "X", "--redirect-uri", "/relative/cb"],
        vec![
            "--name",
            "X",
            "--redirect-uri",
            "https://app.example/cb#frag",
        ],
        vec!["--name", "X", "--redirect-uri", "http://app.example/cb"],
        vec!["--name", " ", "--redirect-uri", "https://app.example/cb"],
        vec![
            "--name",
            "X",
            "--redirect-uri",
            "https://app.example/cb",
            "--id-token-alg",
            "none",
        ],
        vec![
            "--name",
            "X",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "admin",
        ],
    ] {
        let mut full = vec!["client", "create"];
        full.extend(bad);
        let out = cli.run(&full);
        assert_eq!(out.status.code(), Some(2), "{full:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim_end().lines().count(),
            1,
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        clients(&cli).len(),
        2,
        "nothing written by refused commands"
    );
}

#[test]
fn invalid_configuration_names_the_key_and_exits_2() {
    let cli = Cli::new();
    for (var, value, key) in [
        (
            "PORTCULLIS_TOKENS__ACCESS_TOKEN_TTL",
            "soon",
            "tokens.access_token_ttl",
        ),
        ("PORTCULLIS_ISSUER", "http://id.example.com", "issuer"),
        ("PORTCULLIS_BIND", "everywhere", "bind"),
        ("PORTCULLIS_DATABASE_URL", "mysql://x", "database_url"),
    ] {
        let out = cli
            .cmd()
            .env(var, value)
            .args(["client", "list"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(key) && err.contains("fix:"), "{err}");
    }
    let out = cli
        .cmd()
        .args(["--config", "missing.toml", "client", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A config file layered over the defaults; an unknown variable is only a warning.
    std::fs::write(
        cli.dir.path().join("custom.toml"),
        "database_url = \"sqlite://other/p.db\"\n",
    )
    .unwrap();
    let out = cli
        .cmd()
        .env("PORTCULLIS_NO_SUCH_KEY", "1")
        .args(["--config", "custom.toml", "migrate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("PORTCULLIS_NO_SUCH_KEY"));
    assert!(cli.dir.path().join("other/p.db").exists());
    // Secrets can come from files.
    std::fs::write(cli.dir.path().join("dburl"), "sqlite://fromfile/p.db\n").unwrap();
    let out = cli
        .cmd()
        .env("PORTCULLIS_DATABASE_URL_FILE", "dburl")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(cli.dir.path().join("fromfile/p.db").exists());
}

#[test]
fn serve_answers_logs_json_and_stops_on_sigterm() {
    let cli = Cli::new();
    let mut child = cli
        .cmd()
        .env("PORTCULLIS_BIND", "127.0.0.1:0")
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("JSON log line: {line}"));
        if v["message"] == "portcullis listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    // Keys were generated privately in keys/.
    let pems: Vec<_> = std::fs::read_dir(cli.dir.path().join("keys"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .collect();
    assert_eq!(pems.len(), 3);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("portcullis stopped")),
        "{rest:?}"
    );
}

/// `portcullis ARGS` on the database of a running test app (same settings as its server).
pub(crate) fn cli_on(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(app.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "PORTCULLIS_DATABASE_URL",
            app.provider.settings.database_url.expose(),
        )
        .env("PORTCULLIS_ISSUER", &app.issuer)
        .env("PORTCULLIS_KEYS_DIR", &app.provider.settings.keys_dir)
        .env("PORTCULLIS_LOG_LEVEL", "error")
        .output()
        .unwrap()
}

/// The CLI refused with exactly the admin API's message (its problem `detail`), on one line.
fn same_refusal(out: &Output, code: i32, status: reqwest::StatusCode, body: &Value, case: &str) {
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: {body}"));
    assert_eq!(out.status.code(), Some(code), "{case}: {}", stderr(out));
    assert_eq!(
        stderr(out).trim_end(),
        format!("portcullis: {detail}"),
        "{case}: CLI and API say the same (API {status})"
    );
}

backend_tests! {
    async fn cli_and_admin_api_refuse_bad_clients_alike(app: TestApp) {
        let (_, token) = admin_token(&app).await;
        let api = Api { app: &app, token };
        let good = "https://app.example/cb";
        // (case, API fields, CLI flags): each refused by the one rule set in `admin::clients`.
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("refresh TTL under 60", json!({"refresh_token_idle_ttl": 45}), vec!["--refresh-token-idle-ttl", "45"]),
            ("absolute TTL under 60", json!({"refresh_token_absolute_ttl": 45}), vec!["--refresh-token-absolute-ttl", "45"]),
            ("access TTL under 30", json!({"access_token_ttl": 5}), vec!["--access-token-ttl", "5"]),
            ("audience not a URI", json!({"audiences": ["not a uri"]}), vec!["--audience", "not a uri"]),
            ("audience with a fragment", json!({"audiences": ["https://api.example/#x"]}), vec!["--audience", "https://api.example/#x"]),
            ("idle over absolute", json!({"refresh_token_idle_ttl": 1000, "refresh_token_absolute_ttl": 999}),
                vec!["--refresh-token-idle-ttl", "1000", "--refresh-token-absolute-ttl", "999"]),
            ("relative redirect URI", json!({"redirect_uris": [good, "/relative/cb"]}), vec!["--redirect-uri", "/relative/cb"]),
            ("redirect URI with a fragment", json!({"redirect_uris": [good, "https://app.example/cb#frag"]}), vec!["--redirect-uri", "https://app.example/cb#frag"]),
            ("http redirect URI", json!({"redirect_uris": [good, "http://app.example/cb"]}), vec!["--redirect-uri", "http://app.example/cb"]),
            ("non-web back-channel URI", json!({"backchannel_logout_uri": "ftp://x.example/"}), vec!["--backchannel-logout-uri", "ftp://x.example/"]),
            ("unknown scope", json!({"scopes": ["openid", "bogus"]}), vec!["--scope", "openid", "--scope", "bogus"]),
            ("unknown grant", json!({"grant_types": ["password"]}), vec!["--grant-type", "password"]),
            ("public client_credentials", json!({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
                vec!["--public", "--grant-type", "client_credentials"]),
            ("blank name", json!({"name": " "}), vec!["--name", " "]),
            ("web origin with a path", json!({"web_origins": ["https://app.example/cb"]}), vec!["--web-origin", "https://app.example/cb"]),
            ("http web origin", json!({"web_origins": ["http://app.example"]}), vec!["--web-origin", "http://app.example"]),
        ];
        let before = app.provider.store.list_clients().await.unwrap().len();
        for (case, fields, flags) in &cases {
            let mut body = json!({"name": "X", "redirect_uris": [good]});
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            let (status, problem) = api.post("/clients", body).await;
            assert_eq!(status, 422, "{case}: {problem}");
            let mut args = vec!["client", "create", "--redirect-uri", good];
            if !flags.contains(&"--name") {
                args.extend(["--name", "X"]);
            }
            args.extend(flags.iter().copied());
            same_refusal(&cli_on(&app, &args), 2, status, &problem, case);
        }
        assert_eq!(app.provider.store.list_clients().await.unwrap().len(), before, "nothing written");

        // The same on update, against a stored client; it stays as it was.
        let (status, created) = api.post("/clients", json!({"name": "Shop", "redirect_uris": [good]})).await;
        assert_eq!(status, 201, "{created}");
        let id = created["client_id"].as_str().unwrap().to_owned();
        let original: Client = app.provider.store.find_client(&id).await.unwrap().unwrap();
        let (status, public) = api.post("/clients", json!({"name": "SPA", "redirect_uris": [good], "token_endpoint_auth_method": "none"})).await;
        assert_eq!(status, 201, "{public}");
        let public_id = public["client_id"].as_str().unwrap().to_owned();
        for (case, fields, flags) in cases.iter().filter(|(_, _, f)| !f.contains(&"--public")) {
            let (status, problem) = api.patch(&format!("/clients/{id}"), fields.clone()).await;
            assert_eq!(status, 422, "{case}: {problem}");
            let mut args = vec!["client", "update", id.as_str()];
            if fields.get("redirect_uris").is_some() {
                args.extend(["--redirect-uri", good]);
            }
            args.extend(flags.iter().copied());
            same_refusal(&cli_on(&app, &args), 2, status, &problem, case);
        }
        assert_eq!(app.provider.store.find_client(&id).await.unwrap().unwrap(), original, "nothing written");
        // Idle over a stored absolute lifetime, and public ⇄ confidential (the stricter rule).
        let (status, _) = api.patch(&format!("/clients/{id}"), json!({"refresh_token_absolute_ttl": 600})).await;
        assert_eq!(status, 200);
        let stored = app.provider.store.find_client(&id).await.unwrap().unwrap();
        for (target, fields, flags) in [
            (&id, json!({"refresh_token_idle_ttl": 601}), vec!["--refresh-token-idle-ttl", "601"]),
            (&id, json!({"token_endpoint_auth_method": "none"}), vec!["--auth-method", "none"]),
            (&public_id, json!({"token_endpoint_auth_method": "client_secret_post"}), vec!["--auth-method", "client_secret_post"]),
        ] {
            let (status, problem) = api.patch(&format!("/clients/{target}"), fields.clone()).await;
            assert_eq!(status, 422, "{fields}: {problem}");
            let mut args = vec!["client", "update", target.as_str()];
            args.extend(flags);
            same_refusal(&cli_on(&app, &args), 2, status, &problem, &fields.to_string());
        }
        assert_eq!(app.provider.store.find_client(&id).await.unwrap().unwrap(), stored, "nothing written");
        assert!(app.provider.store.find_client(&public_id).await.unwrap().unwrap().secret_hash.is_none());

        // An unknown client, and a secret for a public client.
        let out = cli_on(&app, &["client", "update", "no-such-client", "--require-consent"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no client"), "{}", stderr(&out));
        let (status, problem) = api.post(&format!("/clients/{public_id}/secret"), json!({})).await;
        same_refusal(&cli_on(&app, &["client", "rotate-secret", &public_id]), 1, status, &problem, "public secret");
    }

    async fn cli_client_commands_go_through_the_admin_service(app: TestApp) {
        let out = cli_on(&app, &[
            "client", "create", "--name", "Billing", "--json", "--grant-type", "client_credentials",
            "--audience", "https://api.example.com", "--refresh-token-idle-ttl", "60",
            "--web-origin", "https://Billing.example.com", "--web-origin", "http://127.0.0.1:5173",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        let id = created["client_id"].as_str().unwrap().to_owned();
        let stored = app.provider.store.find_client(&id).await.unwrap().unwrap();
        assert_eq!(stored.web_origins, ["https://billing.example.com", "http://127.0.0.1:5173"]);
        let secret = created["client_secret"].as_str().unwrap().to_owned();

        // A new secret, shown once; the old one stops working.
        let out = cli_on(&app, &["client", "rotate-secret", &id, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(rotated["client_id"], id.as_str());
        let new_secret = rotated["client_secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let c = app.provider.store.find_client(&id).await.unwrap().unwrap();
        assert_eq!(c.secret_hash.as_deref(), Some(portcullis::crypto::hash_secret(new_secret).as_str()));
        let out = cli_on(&app, &["client", "rotate-secret", &id]);
        let text = stdout(&out);
        assert!(text.contains("client_secret: ") && text.contains("shown only now"), "{text}");
        let out = cli_on(&app, &["client", "rotate-secret", "no-such-client"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains("no client"), "{}", stderr(&out));

        let out = cli_on(&app, &["client", "update", &id, "--name", "Billing 2"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim_end(), format!("updated client {id}"));

        // The same audit entries as the admin API, with the CLI as the actor; never a secret.
        let entries = app.provider.store.query_audit(&portcullis::store::AuditQuery {
            client_id: Some(id.clone()), limit: 10, ..Default::default()
        }).await.unwrap();
        let actions: Vec<_> = entries.iter().map(|e| (e.action.as_str(), e.actor.as_deref())).collect();
        assert_eq!(actions, [
            ("admin.client.update", Some("cli")),
            ("admin.client.secret_rotate", Some("cli")),
            ("admin.client.secret_rotate", Some("cli")),
            ("admin.client.create", Some("cli")),
        ]);
        assert!(entries.iter().all(|e| !e.details.contains(&secret) && !e.details.contains(new_secret)));
        assert!(entries[0].details.contains("Billing 2"), "{}", entries[0].details);
    }
}
