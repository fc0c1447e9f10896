//! Forged, expired and malformed access tokens are all 401 `unauthorized`; roles are enforced.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(forged_tokens_are_refused, only_admins_manage_events);

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn forged_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.new_user().await;
    let me = |auth: Option<String>| {
        let app = &app;
        async move {
            let mut rb = app.client.get(app.api("/auth/me"));
            if let Some(a) = auth {
                rb = rb.header("Authorization", a);
            }
            rb.send().await.expect("GET /auth/me")
        }
    };

    // Control: a token we sign with the test secret is accepted, so the refusals below are
    // about what was changed, not about the harness.
    let good = sign_token(&claims_for(user.id, "user", 300));
    let body = expect_json(me(Some(format!("Bearer {good}"))).await, 200).await;
    assert_eq!(uuid_of(&body["id"]), user.id);

    let mut cases: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty bearer", Some("Bearer ".into())),
        ("garbage", Some("Bearer garbage".into())),
        ("three garbage segments", Some("Bearer aaa.bbb.ccc".into())),
        ("wrong scheme", Some(format!("Basic {good}"))),
        ("no scheme", Some(good.clone())),
    ];

    let other_secret =
        sign_token_with(&claims_for(user.id, "user", 300), b"another-secret-of-sufficient-length-000000");
    cases.push(("other secret", Some(format!("Bearer {other_secret}"))));

    let escalated = sign_token_with(&claims_for(user.id, "admin", 300), b"another-secret-of-sufficient-length-000000");
    cases.push(("self-made admin", Some(format!("Bearer {escalated}"))));

    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims_for(user.id, "user", 300)));
    cases.push(("alg none", Some(format!("Bearer {none}"))));

    // The payload of a valid token changed (role) while the signature is kept.
    let parts: Vec<&str> = user.token.split('.').collect();
    assert_eq!(parts.len(), 3, "access token is not a JWS: {}", user.token);
    let mut payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&payload), parts[2]);
    cases.push(("tampered payload", Some(format!("Bearer {tampered}"))));

    // Expired well beyond any leeway.
    let mut expired = claims_for(user.id, "user", 0);
    expired["iat"] = json!(chrono::Utc::now().timestamp() - 3600);
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 600);
    cases.push(("expired", Some(format!("Bearer {}", sign_token(&expired)))));

    let mut aud = claims_for(user.id, "user", 300);
    aud["aud"] = json!("someone-else");
    cases.push(("wrong audience", Some(format!("Bearer {}", sign_token(&aud)))));

    let mut iss = claims_for(user.id, "user", 300);
    iss["iss"] = json!("evil-issuer");
    cases.push(("wrong issuer", Some(format!("Bearer {}", sign_token(&iss)))));

    let mut no_exp = claims_for(user.id, "user", 300);
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", Some(format!("Bearer {}", sign_token(&no_exp)))));

    let mut bad_role = claims_for(user.id, "user", 300);
    bad_role["role"] = json!("superuser");
    cases.push(("unknown role", Some(format!("Bearer {}", sign_token(&bad_role)))));

    for (what, auth) in cases {
        let resp = me(auth).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(status, 401, "{what}: expected 401, got {status}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
        assert_eq!(body["code"], "unauthorized", "{what}: {body}");
    }
    // One of them again through the full problem check (content type and members).
    assert_problem(me(Some(format!("Bearer {none}"))).await, 401, "unauthorized").await;
}

async fn only_admins_manage_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let user = app.user_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);
    let path = format!("/events/{id}");

    // A user: 403 for each admin route, and nothing changes.
    assert_problem(app.create_event(&user, &event_body(json!({"capacity": 5}))).await, 403, "forbidden").await;
    assert_problem(app.patch(&path, Some(&user), &json!({"title": "Hijacked"})).await, 403, "forbidden").await;
    assert_problem(app.delete(&path, Some(&user)).await, 403, "forbidden").await;

    // Nobody: 401.
    assert_problem(app.post("/events", None, &event_body(json!({"capacity": 5}))).await, 401, "unauthorized").await;
    assert_problem(app.patch(&path, None, &json!({"title": "Hijacked"})).await, 401, "unauthorized").await;
    assert_problem(app.delete(&path, None).await, 401, "unauthorized").await;

    let after = app.event(id).await;
    assert_eq!(after["title"], event["title"]);
    let list = expect_json(app.get("/events", None).await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "a refused create made an event: {list}");

    // Bookings need a user.
    assert_problem(
        app.post(&format!("/events/{id}/bookings"), None, &json!({"quantity": 1})).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(app.get("/bookings", None).await, 401, "unauthorized").await;

    // The admin can.
    expect_json(app.patch(&path, Some(&admin), &json!({"title": "Renamed"})).await, 200).await;
}
