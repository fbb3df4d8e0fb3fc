//! Issue 4: a real browser (Debian's headless chromium, driven by playwright-core from
//! `tests/browser/signup.mjs`) signs up, confirms the address with the mailed code and signs in
//! through the real pages. Screenshots are kept in `target/artifacts/`.

use std::path::Path;
use std::time::Duration;

use crate::backend_tests;
use crate::helpers::*;

backend_tests! {
    async fn sign_up_verify_and_sign_in_in_chromium(app: TestApp) {
        let mail_dir = app.dir.path().join("mail");
        let m = mail_dir.display().to_string();
        let app = TestApp::start_with(app.backend, &[
            ("PORTCULLIS_MAIL__TRANSPORT", "file"),
            ("PORTCULLIS_MAIL__DIR", m.as_str()),
        ]).await;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let artifacts = root.join("target/artifacts");
        std::fs::create_dir_all(&artifacts).expect("target/artifacts");
        let backend = format!("{:?}", app.backend).to_lowercase();
        let shots = artifacts.join(format!("browser-{backend}"));
        let email = format!("browser-{backend}@example.com");
        let mut cmd = std::process::Command::new("node");
        cmd.arg(root.join("tests/browser/signup.mjs"))
            .arg(&app.issuer)
            .arg(&mail_dir)
            .arg(&shots)
            .arg(&email);
        let out = tokio::task::spawn_blocking(move || run_with_deadline(cmd, Duration::from_secs(120)))
            .await
            .expect("browser task");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "browser run failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("\"ok\":true"), "{stdout}");
        // What the browser did is what the server recorded.
        let user = app.provider.store.find_user_by_email(&portcullis::domain::Email::parse(&email).unwrap()).await.unwrap().expect("account");
        assert!(user.email_verified);
        assert_eq!(user.name.as_deref(), Some("Browser Person"));
        let screenshot = std::fs::metadata(format!("{}-3-signed-in.png", shots.display())).expect("screenshot");
        assert!(screenshot.len() > 1000);
    }
}

/// Run `cmd`, killing it if it outlives `limit`.
fn run_with_deadline(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (see tests/setup.d/accounts.sh)");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}
