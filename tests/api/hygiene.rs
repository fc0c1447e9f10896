//! Request hygiene: malformed bodies, size limit, unknown routes and methods, path parameters,
//! request ids.

use serde_json::json;

use crate::helpers::*;

both_backends!(malformed_requests_are_problems, body_limit, request_ids);

async fn malformed_requests_are_problems(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);

    let raw = |path: String, body: &'static str| {
        let app = &app;
        let user = user.clone();
        async move {
            app.client
                .post(app.api(&path))
                .bearer_auth(user)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("POST")
        }
    };

    // Malformed JSON.
    assert_problem(raw("/auth/register".into(), "{\"email\": ").await, 400, "bad_request").await;
    assert_problem(raw(format!("/events/{id}/bookings"), "{quantity: 1}").await, 400, "bad_request").await;
    // Wrong types.
    assert_problem(raw(format!("/events/{id}/bookings"), r#"{"quantity": "two"}"#).await, 400, "bad_request").await;
    assert_problem(raw("/auth/register".into(), r#"{"email": 42, "password": ["x"]}"#).await, 400, "bad_request").await;
    // Nothing was booked by those.
    assert_eq!(app.available(id).await, 10);

    // Unknown routes.
    assert_problem(app.get("/no-such-thing", None).await, 404, "not_found").await;
    let resp = app.client.get(app.url("/definitely/not/here")).send().await.unwrap();
    assert_problem(resp, 404, "not_found").await;

    // Wrong method: a problem document too.
    let resp = app.client.delete(app.api("/auth/login")).send().await.unwrap();
    problem_of(resp, 405).await;
    let resp = app.client.put(app.api("/events")).json(&json!({})).send().await.unwrap();
    problem_of(resp, 405).await;

    // A path id that is not a UUID.
    assert_problem(app.get("/events/not-a-uuid", None).await, 400, "bad_request").await;
    assert_problem(app.get("/bookings/12345", Some(&user)).await, 400, "bad_request").await;
    assert_problem(app.get("/events/not-a-uuid/seats", None).await, 400, "bad_request").await;

    // Unknown but well-formed ids.
    let nobody = uuid::Uuid::new_v4();
    assert_problem(app.get(&format!("/events/{nobody}"), None).await, 404, "not_found").await;
    assert_problem(app.get(&format!("/bookings/{nobody}"), Some(&user)).await, 404, "not_found").await;
}

async fn body_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);

    // A 5 MB JSON document (valid JSON, so only its size is wrong).
    let big = format!(r#"{{"email": "big@example.com", "password": "{}"}}"#, "x".repeat(5 * 1024 * 1024));
    let resp = app
        .client
        .post(app.api("/auth/register"))
        .header("Content-Type", "application/json")
        .body(big.clone())
        .send()
        .await
        .expect("the server should answer 413, not drop the connection");
    assert_problem(resp, 413, "payload_too_large").await;

    let resp = app
        .client
        .post(app.api(&format!("/events/{id}/bookings")))
        .bearer_auth(&user)
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .expect("the server should answer 413, not drop the connection");
    assert_problem(resp, 413, "payload_too_large").await;

    // Just under 1 MiB is read (and refused for its content, not its size).
    let under = format!(r#"{{"email": "x", "password": "{}"}}"#, "y".repeat(1024 * 1024 - 100));
    let resp = app.client.post(app.api("/auth/register")).header("Content-Type", "application/json").body(under).send().await.unwrap();
    assert_problem(resp, 422, "validation_failed").await;

    assert_eq!(app.available(id).await, 10);
}

async fn request_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let responses = vec![
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        app.get("/events", None).await,
        app.get("/auth/me", None).await,
        app.get("/nowhere", None).await,
        app.post("/auth/register", None, &json!({})).await,
    ];
    let mut seen = std::collections::HashSet::new();
    for resp in responses {
        let rid = resp
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{} ({}) has no x-request-id", resp.url(), resp.status()))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!rid.is_empty());
        assert!(seen.insert(rid.clone()), "request id {rid} given twice");
    }

    let mine = "test-request-4f1c2a";
    for path in ["/healthz", "/api/v1/events", "/api/v1/auth/me", "/api/v1/nowhere"] {
        let resp = app.client.get(app.url(path)).header("x-request-id", mine).send().await.unwrap();
        let echoed = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(echoed.as_deref(), Some(mine), "{path} did not echo the supplied x-request-id");
    }
}
