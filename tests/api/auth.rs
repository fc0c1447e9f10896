//! Registration, login, the current user, refresh-token rotation and reuse detection, logout.

use serde_json::json;

use crate::helpers::*;

both_backends!(register_login_me, register_validation, refresh_rotation_and_reuse, logout_spends_the_refresh_token);

async fn register_login_me(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("ann");

    let created = expect_json(app.register(&email, PASSWORD).await, 201).await;
    let id = uuid_of(&created["id"]);
    assert_eq!(created["email"], email.as_str());
    assert_eq!(created["role"], "user");
    assert!(created.get("password").is_none() && created.get("password_hash").is_none(), "secret leaked: {created}");

    // The same address again, also with different case (addresses are normalised).
    assert_problem(app.register(&email, PASSWORD).await, 409, "email_taken").await;
    assert_problem(app.register(&email.to_uppercase(), "another-password").await, 409, "email_taken").await;

    let body = expect_json(app.login_response(&email, PASSWORD).await, 200).await;
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().unwrap_or_else(|| panic!("expires_in is not an integer: {body}"));
    assert_eq!(expires_in, 900, "expires_in should be the access-token TTL in seconds");
    let tokens = tokens_of(&body);
    assert_ne!(tokens.access, tokens.refresh);

    // Addresses are case-insensitive at login too.
    expect_json(app.login_response(&email.to_uppercase(), PASSWORD).await, 200).await;

    let wrong = app.login_response(&email, "not-the-password").await;
    assert_problem(wrong, 401, "invalid_credentials").await;
    let unknown = app.login_response(&unique_email("nobody"), PASSWORD).await;
    assert_problem(unknown, 401, "invalid_credentials").await;

    let me = expect_json(app.get("/auth/me", Some(&tokens.access)).await, 200).await;
    assert_eq!(uuid_of(&me["id"]), id);
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["role"], "user");

    // The bootstrapped admin logs in and is an admin; their token may create events.
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let me = expect_json(app.get("/auth/me", Some(&admin.access)).await, 200).await;
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["role"], "admin");
    expect_json(app.create_event(&admin.access, &event_body(json!({"capacity": 3}))).await, 201).await;
}

async fn register_validation(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let bad_email = problem_of(app.register("not-an-email", PASSWORD).await, 422).await;
    assert_eq!(bad_email["code"], "validation_failed");
    assert!(bad_email["errors"]["email"].is_string(), "errors.email missing: {bad_email}");

    let short = assert_problem(app.register(&unique_email("short"), "seven77").await, 422, "validation_failed").await;
    assert!(short["errors"]["password"].is_string(), "errors.password missing: {short}");
    assert!(short["errors"].get("email").is_none(), "a valid email reported as invalid: {short}");

    let both = assert_problem(app.register("x@", "short").await, 422, "validation_failed").await;
    assert!(both["errors"]["email"].is_string() && both["errors"]["password"].is_string(), "{both}");

    let empty = assert_problem(app.post("/auth/register", None, &json!({})).await, 422, "validation_failed").await;
    assert!(empty["errors"]["email"].is_string() && empty["errors"]["password"].is_string(), "{empty}");

    let no_password = assert_problem(
        app.post("/auth/register", None, &json!({"email": unique_email("np")})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(no_password["errors"]["password"].is_string(), "{no_password}");

    // Nothing was created by the refused requests: a valid registration still works.
    expect_json(app.register(&unique_email("ok"), PASSWORD).await, 201).await;
}

async fn refresh_rotation_and_reuse(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("rot");
    expect_json(app.register(&email, PASSWORD).await, 201).await;
    let first = app.login(&email, PASSWORD).await;

    let refresh = |token: String| {
        let app = &app;
        async move { app.post("/auth/refresh", None, &json!({"refresh_token": token})).await }
    };

    let body = expect_json(refresh(first.refresh.clone()).await, 200).await;
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0), "{body}");
    let second = tokens_of(&body);
    assert_ne!(second.refresh, first.refresh, "the refresh token must rotate");
    expect_json(app.get("/auth/me", Some(&second.access)).await, 200).await;

    // The old refresh token is spent...
    assert_problem(refresh(first.refresh.clone()).await, 401, "unauthorized").await;
    // ...and reusing it revoked its whole family, including the successor never used.
    assert_problem(refresh(second.refresh.clone()).await, 401, "unauthorized").await;

    // A new login starts a new family, unaffected.
    let third = app.login(&email, PASSWORD).await;
    let fourth = tokens_of(&expect_json(refresh(third.refresh.clone()).await, 200).await);
    expect_json(app.get("/auth/me", Some(&fourth.access)).await, 200).await;

    assert_problem(refresh("garbage".into()).await, 401, "unauthorized").await;
}

async fn logout_spends_the_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("out");
    expect_json(app.register(&email, PASSWORD).await, 201).await;
    let tokens = app.login(&email, PASSWORD).await;

    // Logout needs only the refresh token.
    let resp = app.post("/auth/logout", None, &json!({"refresh_token": tokens.refresh})).await;
    assert_eq!(resp.status().as_u16(), 204, "logout: {}", resp.text().await.unwrap_or_default());

    let again = app.post("/auth/refresh", None, &json!({"refresh_token": tokens.refresh})).await;
    assert_problem(again, 401, "unauthorized").await;
    let twice = app.post("/auth/logout", None, &json!({"refresh_token": tokens.refresh})).await;
    assert_problem(twice, 401, "unauthorized").await;
    let garbage = app.post("/auth/logout", None, &json!({"refresh_token": "not-a-token"})).await;
    assert_problem(garbage, 401, "unauthorized").await;
}
