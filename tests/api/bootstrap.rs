//! The admin bootstrap against a squatter (the real binary): someone registers the address an
//! operator later puts in `ADMIN_EMAIL`. The next start is refused, naming the variable; with
//! `ADMIN_PROMOTE_EXISTING=true` the account is promoted, its password replaced, and the
//! squatter's sessions end. A restart with the same settings ends nobody's session.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::{Server, start_binary_with, wait_healthy};

both_backends!(a_squatted_admin_address_is_never_promoted_silently);

const OPERATOR_PASSWORD: &str = "the-operators-own-password";
const SQUATTER_PASSWORD: &str = "squatters-password";

/// Waits for the process to exit by itself and returns its log; panics if it serves instead.
async fn refused(client: &Client, mut server: Server) -> String {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            assert!(!status.success(), "the refused start exited with {status}:\n{log}");
            return log;
        }
        if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
            && r.status().is_success()
        {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            panic!("the engine started with ADMIN_EMAIL naming another user's account:\n{log}");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the engine neither served nor exited within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post(client: &Client, server: &Server, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut rb = client.post(format!("{}/api/v1{path}", server.base)).json(&body);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.expect("POST")
}

async fn login(client: &Client, server: &Server, email: &str, password: &str) -> reqwest::Response {
    post(client, server, "/auth/login", None, json!({"email": email, "password": password})).await
}

async fn refresh(client: &Client, server: &Server, token: &str) -> reqwest::Response {
    post(client, server, "/auth/refresh", None, json!({"refresh_token": token})).await
}

async fn a_squatted_admin_address_is_never_promoted_silently(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();
    let address = unique_email("ops");

    // Before the operator sets ADMIN_EMAIL, the squatter registers it and keeps a session.
    let mut first = start_binary_with(&db.url, dir.path(), "first", &[]);
    wait_healthy(&client, &mut first).await;
    let created =
        post(&client, &first, "/auth/register", None, json!({"email": address, "password": SQUATTER_PASSWORD}));
    expect_json(created.await, 201).await;
    let squatter = tokens_of(&expect_json(login(&client, &first, &address, SQUATTER_PASSWORD).await, 200).await);
    drop(first);

    // The operator's start with that address is refused, and says what to do.
    let env = [("ADMIN_EMAIL", address.as_str()), ("ADMIN_PASSWORD", OPERATOR_PASSWORD)];
    let log = refused(&client, start_binary_with(&db.url, dir.path(), "refused", &env)).await;
    assert!(log.contains("ADMIN_EMAIL") && log.contains("ADMIN_PROMOTE_EXISTING"), "the refusal's message:\n{log}");

    // Nothing changed meanwhile: the squatter is still a plain user.
    let mut again = start_binary_with(&db.url, dir.path(), "again", &[]);
    wait_healthy(&client, &mut again).await;
    let me = client.get(format!("{}/api/v1/auth/me", again.base)).bearer_auth(&squatter.access).send().await.unwrap();
    assert_eq!(expect_json(me, 200).await["role"], "user");
    drop(again);

    // With the explicit flag the account becomes the operator's.
    let promote = [env[0], env[1], ("ADMIN_PROMOTE_EXISTING", "true")];
    let mut promoted = start_binary_with(&db.url, dir.path(), "promoted", &promote);
    wait_healthy(&client, &mut promoted).await;
    // The squatter's refresh token is dead, and so is their password.
    let stale = refresh(&client, &promoted, &squatter.refresh).await;
    assert_problem(stale, 401, "unauthorized").await;
    assert_problem(login(&client, &promoted, &address, SQUATTER_PASSWORD).await, 401, "invalid_credentials").await;
    // Their access token still says `user`, so it creates no event.
    let event = event_body(json!({"capacity": 5}));
    assert_problem(post(&client, &promoted, "/events", Some(&squatter.access), event.clone()).await, 403, "forbidden")
        .await;
    let operator = tokens_of(&expect_json(login(&client, &promoted, &address, OPERATOR_PASSWORD).await, 200).await);
    expect_json(post(&client, &promoted, "/events", Some(&operator.access), event).await, 201).await;
    drop(promoted);

    // A restart with the same settings changes nothing: the operator's session lives on.
    let mut restarted = start_binary_with(&db.url, dir.path(), "restarted", &promote);
    wait_healthy(&client, &mut restarted).await;
    let renewed = expect_json(refresh(&client, &restarted, &operator.refresh).await, 200).await;
    let access = tokens_of(&renewed).access;
    let me = client.get(format!("{}/api/v1/auth/me", restarted.base)).bearer_auth(&access).send().await.unwrap();
    assert_eq!(expect_json(me, 200).await["role"], "admin");
}
