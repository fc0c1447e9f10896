//! Abuse limits, each attack reproduced over HTTP: hostile webhook signatures, floods of
//! password hashes, made-up HTTP methods as metric labels, live streams without limits, slow
//! request heads, readiness floods, and arrays sent where objects belong.

use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(a_booking_stream_ends_at_a_final_status);

/// The backend plays no part in these; SQLite keeps them quick.
macro_rules! sqlite_only {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
        }
    )*};
}

sqlite_only!(
    a_hostile_signature_header_costs_no_mac,
    a_few_signature_candidates_verify_with_one_mac,
    the_webhook_has_a_rate_limit_of_its_own,
    password_hashes_in_flight_are_bounded,
    login_and_registration_are_limited_per_address_and_per_account,
    made_up_methods_do_not_become_metric_labels,
    live_streams_are_capped_per_client_and_in_total,
    quiet_streams_end_after_the_idle_limit,
    a_slow_request_head_is_cut_off,
    readiness_checks_are_reused_for_a_moment,
    arrays_are_not_objects,
);

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

async fn webhook(app: &TestApp, signature: &str, body: Vec<u8>) -> Response {
    app.client
        .post(app.api("/payments/webhook"))
        .header("content-type", "application/json")
        .header("x-signature", signature)
        .body(body)
        .send()
        .await
        .expect("POST webhook")
}

/// 10,000 empty `v1=` parts and a 1 MiB body cost 10,000 MACs over the body before the fix
/// (6 s of CPU on an async thread in a release build): now a quick 401, unread.
async fn a_hostile_signature_header_costs_no_mac(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let now = chrono::Utc::now().timestamp();
    let header = format!("t={now}{}", ",v1=".repeat(10_000));
    let body = vec![b'a'; 1024 * 1024];
    let started = Instant::now();
    // Over a raw connection: the refusal comes before the body is read, and an ordinary client
    // still writing it would see a broken pipe instead of the answer.
    let headers = [("X-Signature", header.as_str())];
    let hostile = crate::hygiene::raw_post_with(port_of(&app), "/api/v1/payments/webhook", &headers, body);
    let (status, content_type, text) = tokio::time::timeout(Duration::from_secs(10), hostile)
        .await
        .expect("the hostile webhook was not answered within 10 s");
    assert_eq!(status, 401, "{text}");
    assert!(content_type.starts_with("application/problem+json"), "{content_type}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["code"], "unauthorized", "{text}");
    assert!(started.elapsed() < Duration::from_secs(3), "the refusal took {:?}", started.elapsed());
    // Five candidates of the right shape are more than a key rotation needs: refused too.
    let zero = "0".repeat(64);
    let five = format!("t={now}{}", format!(",v1={zero}").repeat(5));
    assert_problem(webhook(&app, &five, b"{}".to_vec()).await, 401, "unauthorized").await;
}

/// A rotated key still verifies: a valid MAC among a few candidates is found (the unknown
/// payment then answers 404, which a refused signature never reaches).
async fn a_few_signature_candidates_verify_with_one_mac(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"payment_id": uuid::Uuid::new_v4(), "provider_ref": "x", "status": "succeeded"}).to_string();
    let now = chrono::Utc::now().timestamp();
    let signed = boxoffice::payments::signature::sign(WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
    let mac = signed.split_once(",v1=").unwrap().1;
    let zero = "0".repeat(64);
    let header = format!("t={now},v1={zero},v1={mac},v1={zero}");
    assert_problem(webhook(&app, &header, body.clone().into_bytes()).await, 404, "not_found").await;
    let wrong = format!("t={now},v1={zero},v1={zero}");
    assert_problem(webhook(&app, &wrong, body.into_bytes()).await, 401, "unauthorized").await;
}

/// The webhook used to be exempt from every rate limit.
async fn the_webhook_has_a_rate_limit_of_its_own(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.webhook_rate_limit_per_sec = 1).await;
    let mut limited = None;
    for _ in 0..10 {
        let resp = webhook(&app, "t=1,v1=00", b"{}".to_vec()).await;
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
        assert_problem(resp, 401, "unauthorized").await;
    }
    let resp = limited.expect("ten webhook calls in a burst were never rate limited");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    assert_problem(resp, 429, "rate_limited").await;
    // Other routes keep their own budget.
    assert_eq!(app.get("/events", None).await.status(), 200);
}

/// Each argon2 run takes 19 MiB; 100 parallel logins with unknown addresses took the process
/// from 75 MB to 1.95 GB. With one hash at a time and no queue, a burst gets 503s, and unknown
/// addresses go through the same bound as known ones.
async fn password_hashes_in_flight_are_bounded(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.password_hash_concurrency = 1;
        c.password_hash_wait_ms = 0;
    })
    .await;
    let emails: Vec<String> = (0..16).map(|_| unique_email("nobody")).collect();
    let logins = emails.iter().map(|e| app.login_response(e, PASSWORD));
    let answers = futures::future::join_all(logins).await;
    let mut busy = 0;
    for resp in answers {
        match resp.status().as_u16() {
            401 => assert_problem(resp, 401, "invalid_credentials").await,
            503 => {
                busy += 1;
                assert!(resp.headers().get("retry-after").is_some(), "503 without Retry-After");
                assert_problem(resp, 503, "unavailable").await
            }
            other => panic!("a login answered {other}: {}", resp.text().await.unwrap_or_default()),
        };
    }
    assert!(busy > 0, "16 parallel logins all hashed at once with one hashing slot");
    // Once the burst is over, logins work again.
    eventually(Duration::from_secs(10), "a login to be answered 401 again", || async {
        (app.login_response(&unique_email("nobody"), PASSWORD).await.status() == 401).then_some(())
    })
    .await;
}

async fn retry_after(resp: Response) -> u64 {
    let secs = resp.headers().get("retry-after").expect("429 without Retry-After").to_str().unwrap().parse().unwrap();
    assert_problem(resp, 429, "rate_limited").await;
    secs
}

/// Credential stuffing (many addresses from one client) and guessing one account's password
/// (one address, many tries) each run into a limit of their own, and so does mass sign-up.
async fn login_and_registration_are_limited_per_address_and_per_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.auth_rate_limit_per_min = 3;
        c.auth_account_rate_limit_per_min = 0;
    })
    .await;
    for _ in 0..3 {
        assert_problem(app.login_response(&unique_email("stuffed"), PASSWORD).await, 401, "invalid_credentials").await;
    }
    let wait = retry_after(app.login_response(&unique_email("stuffed"), PASSWORD).await).await;
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Registration counts against the same address.
    retry_after(app.register(&unique_email("mass"), PASSWORD).await).await;

    let app = TestApp::spawn_with(backend, |c| {
        c.auth_rate_limit_per_min = 0;
        c.auth_account_rate_limit_per_min = 2;
    })
    .await;
    let victim = unique_email("victim");
    expect_json(app.register(&victim, PASSWORD).await, 201).await;
    assert_problem(app.login_response(&victim, "guess-number-1").await, 401, "invalid_credentials").await;
    retry_after(app.login_response(&victim, "guess-number-2").await).await;
    // Letter case does not make another account.
    retry_after(app.login_response(&victim.to_uppercase(), "guess-number-3").await).await;
    // Other accounts are unaffected.
    assert_problem(app.login_response(&unique_email("other"), PASSWORD).await, 401, "invalid_credentials").await;
}

/// 2,000 requests with made-up methods grew /metrics from 30 KB to 3.3 MB, a label each.
async fn made_up_methods_do_not_become_metric_labels(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..200 {
        let method = Method::from_bytes(format!("ODDMETHOD{i}{}", "X".repeat(100)).as_bytes()).unwrap();
        let resp = app.client.request(method, app.url("/healthz")).send().await.unwrap();
        assert_eq!(resp.status(), 405);
    }
    let unknown = Method::from_bytes(b"PROPFIND").unwrap();
    app.client.request(unknown, app.url("/no/such/route/at/all")).send().await.unwrap();
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("ODDMETHOD"), "a made-up method became a label");
    assert!(!metrics.contains("PROPFIND"), "a made-up method became a label");
    assert!(!metrics.contains("/no/such/route"), "an unmatched path became a label");
    assert!(metrics.contains(r#"method="other",route="/healthz",status="405""#), "{metrics}");
}

/// Reads the next `data:` payload of a server-sent event stream; `None` when the stream ends.
async fn next_data(resp: &mut Response, buf: &mut String, within: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                return Some(data.trim().to_owned());
            }
            continue;
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) | Ok(Err(_)) => return None,
            Err(_) => panic!("the stream said nothing and did not end within {within:?}"),
        }
    }
}

async fn open_stream(app: &TestApp, path: &str, token: Option<&str>) -> Response {
    let mut rb = app.client.get(app.api(path)).header("accept", "text/event-stream");
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    rb.send().await.expect("GET stream")
}

/// Streams had no cap: with the file limit lowered, 320 of them made the server refuse every
/// connection. Now a client may hold a few and the process a bounded number; beyond, 503.
async fn live_streams_are_capped_per_client_and_in_total(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.stream_max_per_client = 2;
        c.stream_max_total = 3;
    })
    .await;
    let event = app.create_ga_event(10).await;
    let path = format!("/events/{}/stream", str_of(&event["id"]));
    let first = open_stream(&app, &path, None).await;
    assert_eq!(first.status(), 200);
    let second = open_stream(&app, &path, None).await;
    assert_eq!(second.status(), 200);
    let third = open_stream(&app, &path, None).await;
    assert!(third.headers().get("retry-after").is_some(), "503 without Retry-After");
    assert_problem(third, 503, "unavailable").await;
    // Another client gets one more, the last of the process's three.
    let users = app.mint_users(2).await;
    let theirs = open_stream(&app, &path, Some(&users[0].token)).await;
    assert_eq!(theirs.status(), 200);
    assert_problem(open_stream(&app, &path, Some(&users[1].token)).await, 503, "unavailable").await;
    // A stream that ends gives its place back.
    drop(first);
    let again = eventually(Duration::from_secs(10), "a closed stream's place to be free", || async {
        let r = open_stream(&app, &path, Some(&users[1].token)).await;
        (r.status() == 200).then_some(r)
    })
    .await;
    drop((second, theirs, again));
}

/// A stream with nothing to say ends after the idle limit (the client reconnects) instead of
/// holding its socket forever.
async fn quiet_streams_end_after_the_idle_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.stream_idle_secs = 1).await;
    let event = app.create_ga_event(10).await;
    let mut stream = open_stream(&app, &format!("/events/{}/stream", str_of(&event["id"])), None).await;
    assert_eq!(stream.status(), 200);
    let mut buf = String::new();
    let first = next_data(&mut stream, &mut buf, Duration::from_secs(5)).await.expect("the current availability");
    assert_eq!(serde_json::from_str::<Value>(&first).unwrap()["available"], 10);
    assert_eq!(next_data(&mut stream, &mut buf, Duration::from_secs(10)).await, None, "the idle stream went on");
}

/// A booking stream stayed open after its booking ended, for as long as the client liked.
async fn a_booking_stream_ends_at_a_final_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.mint_users(1).await.remove(0);
    let event = app.create_ga_event(10).await;
    let booking = app.hold_ok(&user.token, str_of(&event["id"]), &json!({"quantity": 1})).await;
    let id = str_of(&booking["id"]);
    let mut stream = open_stream(&app, &format!("/bookings/{id}/stream"), Some(&user.token)).await;
    assert_eq!(stream.status(), 200);
    let mut buf = String::new();
    let first = next_data(&mut stream, &mut buf, Duration::from_secs(5)).await.expect("the current status");
    assert_eq!(serde_json::from_str::<Value>(&first).unwrap()["status"], "held");
    assert_eq!(app.cancel(&user.token, id).await.status(), 200);
    let last = next_data(&mut stream, &mut buf, Duration::from_secs(10)).await.expect("the cancellation");
    assert_eq!(serde_json::from_str::<Value>(&last).unwrap()["status"], "cancelled");
    assert_eq!(
        next_data(&mut stream, &mut buf, Duration::from_secs(10)).await,
        None,
        "the stream outlived its booking"
    );
}

/// A client that sends a request head slowly (or never finishes it) held a connection forever.
async fn a_slow_request_head_is_cut_off(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(backend, |c| c.http_header_read_timeout_secs = 1).await;
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port_of(&app))).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.unwrap();
    let started = Instant::now();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the half-sent request head still held its connection after 10 s");
    assert!(started.elapsed() >= Duration::from_millis(500), "closed before the timeout: {:?}", started.elapsed());
    // Whole requests are unaffected.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

fn readiness_checks(metrics: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("boxoffice_readiness_checks_total "))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Every /readyz call was a database round trip (and a broker one).
async fn readiness_checks_are_reused_for_a_moment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let metrics = || async { app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let before = readiness_checks(&metrics().await);
    let started = Instant::now();
    for _ in 0..50 {
        expect_json(app.client.get(app.url("/readyz")).send().await.unwrap(), 200).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = metrics().await;
    assert!(after.contains("boxoffice_readiness_checks_total"), "readiness checks are not counted");
    let checks = readiness_checks(&after) - before;
    // One check a second, and a margin for other tests' probes (the recorder is per process).
    assert!(checks <= seconds.ceil() + 5.0, "{checks} checks for 50 calls in {seconds:.1} s");
}

/// `["a@b.c", "pw"]` was read as login credentials: serde accepts a struct's fields in order.
async fn arrays_are_not_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let raw = |path: &str, body: &'static str| {
        app.client.post(app.api(path)).header("content-type", "application/json").body(body).send()
    };
    let login = assert_problem(raw("/auth/login", r#"["a@b.c", "pw"]"#).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(login["errors"]["body"], "must be a JSON object", "{login}");
    let email = unique_email("array");
    let register = format!(r#"["{email}", "{PASSWORD}"]"#).leak();
    assert_problem(raw("/auth/register", register).await.unwrap(), 422, "validation_failed").await;
    assert_problem(raw("/auth/refresh", r#"["token"]"#).await.unwrap(), 422, "validation_failed").await;
    assert_problem(raw("/auth/login", r#""a@b.c""#).await.unwrap(), 422, "validation_failed").await;
    // Deeper down too: a seat map's rows as arrays.
    let admin = app.admin_token().await;
    let body = event_body(json!({"seat_map": {"sections": [["Stalls", [["A", 10]]]]}}));
    assert_problem(app.create_event(&admin, &body).await, 400, "bad_request").await;
    // And objects still work.
    expect_json(app.register(&email, PASSWORD).await, 201).await;
}
