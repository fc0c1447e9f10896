//! Request hygiene: malformed bodies, size limit, unknown routes and methods, path parameters,
//! request ids.

use serde_json::json;

use crate::helpers::*;

both_backends!(
    malformed_requests_are_problems,
    body_limit,
    request_ids,
    rate_limiting,
    unstorable_text_and_dates,
    payment_routes_refuse_bad_input
);

/// Malformed JSON, wrong types, missing tokens and unknown ids on the payment and ticket routes.
async fn payment_routes_refuse_bad_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;
    let admin = app.admin_token().await;
    let nobody = uuid::Uuid::new_v4();
    let raw = |path: String, token: Option<String>, body: &'static str| {
        let mut rb = app.client.post(app.api(&path)).header("content-type", "application/json").body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send()
    };
    let pay = format!("/bookings/{nobody}/payments");
    assert_problem(raw(pay.clone(), Some(user.clone()), "{\"method\": ").await.unwrap(), 400, "bad_request").await;
    // A body that is not a JSON object fails validation, whatever it holds.
    assert_problem(raw(pay.clone(), Some(user.clone()), "[1, 2]").await.unwrap(), 422, "validation_failed").await;
    assert_problem(raw(pay.clone(), None, "{}").await.unwrap(), 401, "unauthorized").await;
    assert_problem(
        raw(format!("/events/{nobody}/check-in"), Some(admin.clone()), "{\"code\": 7}").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_problem(
        raw(format!("/events/{nobody}/check-in"), Some(admin.clone()), "{\"code\": \"\"}").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_problem(
        raw(format!("/events/{nobody}/check-in"), None, "{\"code\": \"X\"}").await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    // The webhook checks the signature before it reads the body.
    assert_problem(raw("/payments/webhook".into(), None, "not json").await.unwrap(), 401, "unauthorized").await;
    assert_problem(app.get(&format!("/bookings/{nobody}/receipt.pdf"), Some(&user)).await, 404, "not_found").await;
    assert_problem(app.get(&format!("/payments/{nobody}"), Some(&user)).await, 404, "not_found").await;
    assert_problem(app.get("/payments/123", Some(&user)).await, 400, "bad_request").await;
    assert_problem(app.get(&format!("/payments/{nobody}"), None).await, 401, "unauthorized").await;
}

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

/// POSTs `body` over a raw HTTP/1.1 connection, writing it from another task while reading
/// the answer: a server may answer 413 and close before reading the whole body, which makes an
/// ordinary client fail with a broken pipe instead of showing the response. Returns the status,
/// the `content-type` and the body.
async fn raw_post(port: u16, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, String, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    raw_post_with(port, path, &headers, body).await
}

/// `raw_post` with any extra headers.
pub(crate) async fn raw_post_with(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The write half is handed back, not dropped, when done: dropping it would half-close the
    // connection, and hyper drops a request whose client half-closed.
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            for chunk in body.chunks(64 * 1024) {
                if wr.write_all(chunk).await.is_err() {
                    break;
                }
            }
        }
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let (status, content_type, text) = loop {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(parsed) = parse_response(&buf) {
                    break parsed;
                }
                continue;
            }
        }
        panic!("the connection ended before a complete response: {:?}", String::from_utf8_lossy(&buf));
    };
    drop(writer);
    (status, content_type, text)
}

/// A complete `Content-Length` response in `buf`, if there is one yet.
fn parse_response(buf: &[u8]) -> Option<(u16, String, String)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let mut content_type = String::new();
    for line in lines {
        let (k, v) = line.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "content-type" => content_type = v.trim().to_owned(),
            _ => {}
        }
    }
    let body = &buf[end + 4..];
    (body.len() >= length).then(|| (status, content_type, String::from_utf8_lossy(&body[..length]).to_string()))
}

fn assert_too_large(what: &str, (status, content_type, text): (u16, String, String)) {
    assert_eq!(status, 413, "{what}: {text}");
    assert!(content_type.starts_with("application/problem+json"), "{what}: content-type {content_type:?}");
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"));
    assert_eq!(body["code"], "payload_too_large", "{what}: {body}");
    assert_eq!(body["status"], 413, "{what}: {body}");
}

async fn body_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();

    // A 5 MB JSON document (valid JSON, so only its size is wrong).
    let big = format!(r#"{{"email": "big@example.com", "password": "{}"}}"#, "x".repeat(5 * 1024 * 1024)).into_bytes();
    assert_too_large("register", raw_post(port, "/api/v1/auth/register", None, big.clone()).await);
    let hold = format!(r#"{{"quantity": 1, "pad": "{}"}}"#, "x".repeat(5 * 1024 * 1024)).into_bytes();
    assert_too_large("hold", raw_post(port, &format!("/api/v1/events/{id}/bookings"), Some(&user), hold).await);
    let pay = format!(r#"{{"method": "card", "card_token": "{}"}}"#, "x".repeat(5 * 1024 * 1024)).into_bytes();
    let some_booking = uuid::Uuid::new_v4();
    assert_too_large(
        "payment",
        raw_post(port, &format!("/api/v1/bookings/{some_booking}/payments"), Some(&user), pay).await,
    );
    let callback = format!(r#"{{"payment_id": "{}"}}"#, "x".repeat(5 * 1024 * 1024)).into_bytes();
    assert_too_large("webhook", raw_post(port, "/api/v1/payments/webhook", None, callback).await);
    // Just over the limit.
    let over = format!(r#"{{"email": "x", "password": "{}"}}"#, "y".repeat(1024 * 1024)).into_bytes();
    assert_too_large("1 MiB + 30 bytes", raw_post(port, "/api/v1/auth/register", None, over).await);

    // Just under 1 MiB is read (and refused for its content, not its size).
    let under = format!(r#"{{"email": "x", "password": "{}"}}"#, "y".repeat(1024 * 1024 - 100));
    let resp = app
        .client
        .post(app.api("/auth/register"))
        .header("Content-Type", "application/json")
        .body(under)
        .send()
        .await
        .unwrap();
    assert_problem(resp, 422, "validation_failed").await;

    assert_eq!(app.available(id).await, 10);
    assert!(expect_json(app.get("/events", None).await, 200).await["items"].as_array().unwrap().len() == 1);
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

async fn rate_limiting(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.rate_limit_per_sec = 5).await;
    // Bursts of 10 are allowed; 30 at once from one address are not.
    let answers = futures::future::join_all((0..30).map(|_| app.get("/events", None))).await;
    let mut limited = 0;
    for resp in answers {
        match resp.status().as_u16() {
            200 => {}
            429 => {
                let retry =
                    resp.headers().get("retry-after").expect("429 without Retry-After").to_str().unwrap().to_owned();
                assert!(retry.parse::<u64>().unwrap() >= 1);
                assert_problem(resp, 429, "rate_limited").await;
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((15..=20).contains(&limited), "{limited} of 30 limited");
    // A signed-in user has a bucket of their own, and health checks are never limited.
    let token = sign_token(&claims_for(uuid::Uuid::new_v4(), "user", 60));
    assert_eq!(app.get("/events", Some(&token)).await.status().as_u16(), 200);
    for _ in 0..30 {
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status().as_u16(), 200);
    }
}

/// Input the stores cannot keep (a NUL byte, a year outside 1..=9999) is a 422, not a 500.
async fn unstorable_text_and_dates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let nul = app.create_event(&admin, &event_body(json!({"capacity": 5, "title": "a\u{0}b"}))).await;
    let body = assert_problem(nul, 422, "validation_failed").await;
    assert!(body["errors"]["title"].is_string(), "{body}");
    let year0 =
        app.create_event(&admin, &event_body(json!({"capacity": 5, "starts_at": "0000-06-01T00:00:00Z"}))).await;
    let body = assert_problem(year0, 422, "validation_failed").await;
    assert!(body["errors"]["starts_at"].is_string(), "{body}");
    assert_problem(app.get("/events?q=%00", None).await, 422, "validation_failed").await;
    assert_problem(app.get("/events?venue=a%00b", None).await, 422, "validation_failed").await;
    assert_problem(app.get("/events?from=0000-01-01T00:00:00Z", None).await, 422, "validation_failed").await;
    let event = app.create_ga_event(5).await;
    let patch =
        app.patch(&format!("/events/{}", str_of(&event["id"])), Some(&admin), &json!({"venue": "x\u{1}"})).await;
    assert_problem(patch, 422, "validation_failed").await;
}
