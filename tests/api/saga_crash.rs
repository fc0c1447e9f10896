//! A payment saga interrupted by SIGKILL: the restarted process finds the unfinished saga in
//! the store, takes it over once the dead process's lease ran out, asks the provider (whose callback died with the process) and finishes it: the
//! booking is confirmed exactly once and the confirmation e-mail is written.

use std::time::Duration;

use boxoffice::persistence::Store;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::{start_binary_with, wait_healthy};

both_backends!(a_saga_killed_mid_flight_finishes_after_restart);

async fn a_saga_killed_mid_flight_finishes_after_restart(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("outbox");
    let mail_dir = mail.display().to_string();
    let env = [
        ("PAYMENT_PROVIDER_SLOW_MS", "1500"),
        ("PAYMENT_POLL_SECS", "1"),
        // The restarted process has a new node id: it takes the saga over once this lease ran out.
        ("PAYMENT_SAGA_LEASE_SECS", "3"),
        ("MAIL_OUTBOX_DIR", mail_dir.as_str()),
    ];
    let client = http_client();
    let mut first = start_binary_with(&db.url, dir.path(), "first", &env);
    wait_healthy(&client, &mut first).await;

    let store = Store::connect(&db.url, 2).await.expect("test store");
    let (_, user) = mint_user(&store, "saga").await;
    let admin = admin_token_of(&store).await;
    let base = first.base.clone();
    let post = |path: String, token: String, body: Value| {
        client.post(format!("{base}/api/v1{path}")).bearer_auth(token).json(&body).send()
    };
    let event =
        expect_json(post("/events".into(), admin.clone(), event_body(json!({"capacity": 5}))).await.unwrap(), 201)
            .await;
    let event_id = str_of(&event["id"]).to_owned();
    let booking = expect_json(
        post(format!("/events/{event_id}/bookings"), user.clone(), json!({"quantity": 2})).await.unwrap(),
        201,
    )
    .await;
    let booking_id = str_of(&booking["id"]).to_owned();
    let body = json!({"method": "card", "card_token": "tok_slow"});
    let payment =
        expect_json(post(format!("/bookings/{booking_id}/payments"), user.clone(), body).await.unwrap(), 202).await;
    let payment_id = str_of(&payment["id"]).to_owned();
    // Kill once the provider has the charge (its verdict is 1.5 s away).
    let pid = boxoffice::domain::ids::PaymentId(uuid::Uuid::parse_str(&payment_id).unwrap());
    eventually(Duration::from_secs(10), "the charge to be acknowledged", || async {
        store.payment(pid).await.unwrap().and_then(|p| p.provider_ref)
    })
    .await;
    first.child.kill().expect("SIGKILL");
    first.child.wait().unwrap();

    let mut second = start_binary_with(&db.url, dir.path(), "second", &env);
    wait_healthy(&client, &mut second).await;
    let get = |path: String| client.get(format!("{}/api/v1{path}", second.base)).bearer_auth(&user).send();
    eventually(Duration::from_secs(30), "the resumed saga to confirm the booking", || async {
        let b = get(format!("/bookings/{booking_id}")).await.ok()?.json::<Value>().await.ok()?;
        (b["status"] == "confirmed").then_some(())
    })
    .await;
    let p = expect_json(get(format!("/payments/{payment_id}")).await.unwrap(), 200).await;
    assert_eq!(p["status"], "succeeded");
    let (_, reserved, live) =
        store.event_counters(boxoffice::domain::ids::EventId(uuid_of(&event["id"]))).await.unwrap();
    assert_eq!((reserved, live), (2, 2));
    eventually(Duration::from_secs(30), "the confirmation e-mail", || async { (eml_count(&mail) == 1).then_some(()) })
        .await;
    store.close().await;
}
