//! Issue 18: refresh rotations written together (SQLite writes every rotation queued at one
//! moment in one statement) keep each rotation's outcome its own, on both backends.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::*;

const EMAIL: &str = "batch@example.com";

/// Refresh `tokens` all at once; the status and body of each, in order.
async fn refresh_all(app: &TestApp, client: &TestClient, tokens: &[String]) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = tokens
        .iter()
        .map(|rt| {
            let (http, url) = (browser(), app.url("/token"));
            let (id, secret, rt) = (client.id.clone(), client.secret.clone(), rt.clone());
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .basic_auth(id, secret)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.as_str()),
                    ])
                    .send()
                    .await
                    .expect("refresh");
                (
                    resp.status().as_u16(),
                    resp.json::<Value>().await.expect("JSON"),
                )
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

backend_tests! {
    async fn concurrent_rotations_of_distinct_tokens_each_succeed_once(app: TestApp) {
        app.create_user(EMAIL, PASSWORD).await;
        let client = app.confidential_client().await;
        let mut tokens = Vec::new();
        for _ in 0..10 {
            let t = app.login_and_exchange(&client, EMAIL, "openid offline_access").await;
            tokens.push(t["refresh_token"].as_str().unwrap().to_owned());
        }
        // Ten grants at once, and one of them twice: that one is a reuse.
        let mut burst = tokens.clone();
        burst.push(tokens[0].clone());
        let answers = refresh_all(&app, &client, &burst).await;
        for (i, (status, body)) in answers.iter().enumerate().skip(1).take(9) {
            assert_eq!(*status, 200, "token {i}: {body}");
        }
        let zero: Vec<_> = [&answers[0], &answers[10]].into_iter().collect();
        assert_eq!(zero.iter().filter(|(s, _)| *s == 200).count(), 1, "{zero:?}");
        for (status, body) in &zero {
            if *status != 200 {
                assert_eq!((*status, body["error"].as_str()), (400, Some("invalid_grant")));
            }
        }

        // Every successor of the nine others rotates again; every spent token is refused.
        let next: Vec<String> = answers[1..10]
            .iter()
            .map(|(_, b)| b["refresh_token"].as_str().unwrap().to_owned())
            .collect();
        for (status, body) in refresh_all(&app, &client, &next).await {
            assert_eq!(status, 200, "{body}");
        }
        for (status, body) in refresh_all(&app, &client, &tokens[1..]).await {
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        }
        // Token 0's family was revoked by the reuse: its winner's successor is dead too.
        let winner = zero.iter().find(|(s, _)| *s == 200).unwrap();
        let successor = winner.1["refresh_token"].as_str().unwrap().to_owned();
        let last = refresh_all(&app, &client, &[successor]).await;
        assert_eq!((last[0].0, last[0].1["error"].as_str()), (400, Some("invalid_grant")));
    }
}
