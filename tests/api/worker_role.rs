//! Notification workers in a process of their own (`ROLE=worker`) beside an API process
//! (`ROLE=api`) on one database and one broker: the API's relay publishes, the worker sends,
//! and the request id of the payment's HTTP request shows up in the worker's log lines.

use std::time::Duration;

use boxoffice::persistence::Store;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::{start_binary_with, wait_healthy};

postgres_only!(a_separate_worker_process_sends_the_confirmation);

async fn a_separate_worker_process_sends_the_confirmation(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let (api_mail, worker_mail) = (dir.path().join("api-mail"), dir.path().join("worker-mail"));
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let amqp = amqp_url();
    let (api_mail_s, worker_mail_s) = (api_mail.display().to_string(), worker_mail.display().to_string());
    let common = [("AMQP_URL", amqp.as_str()), ("AMQP_PREFIX", prefix.as_str()), ("PAYMENT_PROVIDER_DELAY_MS", "200")];
    let api_env: Vec<(&str, &str)> =
        common.iter().copied().chain([("ROLE", "api"), ("MAIL_OUTBOX_DIR", api_mail_s.as_str())]).collect();
    let worker_env: Vec<(&str, &str)> = common
        .iter()
        .copied()
        .chain([("ROLE", "worker"), ("MAIL_OUTBOX_DIR", worker_mail_s.as_str()), ("RUST_LOG", "info")])
        .collect();
    let client = http_client();
    let mut api = start_binary_with(&db.url, dir.path(), "api", &api_env);
    wait_healthy(&client, &mut api).await;
    let mut worker = start_binary_with(&db.url, dir.path(), "worker", &worker_env);
    wait_healthy(&client, &mut worker).await;

    let store = Store::connect(&db.url, 2).await.expect("test store");
    let (_, user) = mint_user(&store, "role").await;
    let admin = admin_token_of(&store).await;
    let base = api.base.clone();
    let post = |path: String, token: String, body: Value| {
        client.post(format!("{base}/api/v1{path}")).bearer_auth(token).json(&body).send()
    };
    let event =
        expect_json(post("/events".into(), admin, event_body(json!({"capacity": 5}))).await.unwrap(), 201).await;
    let booking = expect_json(
        post(format!("/events/{}/bookings", str_of(&event["id"])), user.clone(), json!({"quantity": 1})).await.unwrap(),
        201,
    )
    .await;
    let request_id = format!("req-{}", uuid::Uuid::new_v4().simple());
    let paid = client
        .post(format!("{base}/api/v1/bookings/{}/payments", str_of(&booking["id"])))
        .bearer_auth(&user)
        .header("x-request-id", &request_id)
        .json(&json!({"method": "card", "card_token": "tok_ok"}))
        .send()
        .await
        .unwrap();
    expect_json(paid, 202).await;

    eventually(Duration::from_secs(30), "the worker process's e-mail", || async {
        (eml_count(&worker_mail) == 1).then_some(())
    })
    .await;
    assert_eq!(eml_count(&api_mail), 0, "an API-only process sends no e-mail");
    let log = eventually(Duration::from_secs(10), "the worker's log line for the message", || async {
        let log = std::fs::read_to_string(&worker.log).ok()?;
        log.contains("notification handled").then_some(log)
    })
    .await;
    let handled = log.lines().find(|l| l.contains("notification handled")).unwrap();
    assert!(handled.contains(&request_id), "the worker logs the request id of the payment: {handled}");

    store.close().await;
    drop(worker);
    drop(api);
    let _ = boxoffice::bus::amqp::delete_topology(&amqp, &boxoffice::bus::Topology::with_prefix(&prefix)).await;
}
