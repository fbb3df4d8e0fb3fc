//! The `portcullis` binary: bootstrap commands, configuration errors and `serve` with a graceful
//! shutdown. Each test runs the real executable in an empty working directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

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
