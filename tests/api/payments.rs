//! Payments end to end: every path of the saga (success, decline, silent provider, a late
//! success after the hold was released, a refund on cancellation), the webhook's signature
//! rules, idempotent payment requests, receipts with their QR code, and check-in. PostgreSQL
//! runs carry their messages over the real RabbitMQ; SQLite runs use the in-process bus.

use std::time::Duration;

use boxoffice::clock::Clock;
use serde_json::json;

use crate::helpers::*;
use crate::pdf::{pdf_qr_codes, pdf_text};

const SAGA: Duration = Duration::from_secs(30);

/// A test app with the broker for PostgreSQL (the CI configuration) and in process for SQLite.
async fn app_for(backend: Backend, tweak: impl FnOnce(&mut boxoffice::config::Config)) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        if backend == Backend::Postgres {
            use_broker(c);
        }
        tweak(c);
    })
    .await
}

/// A held booking of one seat of a new event of `capacity` seats at 12.50 EUR.
async fn held_booking(app: &TestApp, capacity: i64) -> (TestUser, String, String) {
    let admin = app.admin_token().await;
    let body = event_body(json!({"capacity": capacity, "price_cents": 1250, "currency": "EUR", "title": "Saga Night"}));
    let event = expect_json(app.create_event(&admin, &body).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, &event_id, &json!({"quantity": 1})).await;
    (user, event_id, str_of(&booking["id"]).to_owned())
}

async fn successful_payment_confirms_sends_a_receipt_and_admits_once(backend: Backend) {
    let app = app_for(backend, |_| {}).await;
    let (user, event_id, booking_id) = held_booking(&app, 3).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_ok").await;
    assert_eq!(payment["amount_cents"], 1250);
    assert_eq!(payment["currency"], "EUR");
    assert_eq!(payment["method"], "card");
    let pid = str_of(&payment["id"]).to_owned();

    app.payment_becomes(&user.token, &pid, "succeeded", SAGA).await;
    let booking = app.booking_becomes(&user.token, &booking_id, "confirmed", SAGA).await;
    let code = booking["ticket_code"].as_str().expect("a confirmed booking has a ticket code").to_owned();
    assert_eq!(app.available(&event_id).await, 2);
    let (_, reserved, live) = app.counters(&event_id).await;
    assert_eq!((reserved, live), (1, 1));

    // The receipt: a real PDF with the title and amount, and a QR code of the ticket code.
    let resp = app.get(&format!("/bookings/{booking_id}/receipt.pdf"), Some(&user.token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let pdf = resp.bytes().await.expect("pdf bytes");
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    assert!(text.contains("Saga Night"), "{text}");
    assert!(text.contains("12.50 EUR"), "{text}");
    assert_eq!(pdf_qr_codes(&pdf), vec![code.clone()]);

    // The confirmation e-mail, with the receipt attached.
    let mail = app.email_containing("application/pdf", SAGA).await;
    assert!(mail.contains(&user.email), "addressed to the customer");
    assert!(mail.contains(&code), "carries the ticket code");
    eventually(SAGA, "the outbox to be marked sent and counted by the analytics", || async {
        let store = app.store();
        (store.outbox_backlog().await.ok()? == 0 && store.analytics_backlog().await.ok()? == 0).then_some(())
    })
    .await;
    // Sent rows and delivery records are kept for a while, then pruned.
    let now = boxoffice::domain::now();
    assert_eq!(app.store().prune_messages(now - chrono::Duration::days(1), false).await.unwrap(), (0, 0));
    let (outbox, deliveries) = app.store().prune_messages(now + chrono::Duration::days(8), false).await.unwrap();
    assert!(outbox >= 1 && deliveries >= 1, "pruned {outbox} outbox rows and {deliveries} deliveries");

    // Someone else cannot see the receipt; only admins check tickets in, once.
    let other = app.mint_users(1).await.remove(0);
    assert_problem(app.get(&format!("/bookings/{booking_id}/receipt.pdf"), Some(&other.token)).await, 404, "not_found")
        .await;
    let admin = app.admin_token().await;
    assert_problem(app.check_in(&user.token, &event_id, &code).await, 403, "forbidden").await;
    let admitted = expect_json(app.check_in(&admin, &event_id, &code).await, 200).await;
    assert_eq!(admitted["booking_id"], booking_id.as_str());
    assert_problem(app.check_in(&admin, &event_id, &code).await, 409, "already_checked_in").await;
    assert_problem(app.check_in(&admin, &event_id, "NOPE-NOPE").await, 409, "unknown_ticket").await;

    // Paid already: no second payment.
    let again = app.pay(&user.token, &booking_id, &json!({"method": "card", "card_token": "tok_ok"}), None).await;
    assert_problem(again, 409, "booking_not_payable").await;
}

async fn declined_payment_releases_the_hold_at_once(backend: Backend) {
    let app = app_for(backend, |_| {}).await;
    let (user, event_id, booking_id) = held_booking(&app, 2).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_declined").await;
    let failed = app.payment_becomes(&user.token, str_of(&payment["id"]), "failed", SAGA).await;
    assert_eq!(failed["failure_reason"], "card_declined");
    let booking = app.booking_becomes(&user.token, &booking_id, "cancelled", SAGA).await;
    assert_eq!(booking["cancel_reason"], "payment_failed");
    assert_eq!(app.available(&event_id).await, 2);
    assert_eq!(app.counters(&event_id).await.1, 0);
    app.email_containing("Subject: ", SAGA).await;

    // Mobile money: a number ending 0000 fails the same way.
    let (user, _, booking_id) = held_booking(&app, 1).await;
    let body = json!({"method": "mobile_money", "phone_number": "+254700000000"});
    let p = expect_json(app.pay(&user.token, &booking_id, &body, None).await, 202).await;
    assert_eq!(p["method"], "mobile_money");
    app.payment_becomes(&user.token, str_of(&p["id"]), "failed", SAGA).await;
    app.booking_becomes(&user.token, &booking_id, "cancelled", SAGA).await;
}

async fn a_silent_provider_fails_at_the_deadline_and_the_hold_waits_for_it(backend: Backend) {
    // Holds last 60 s, but a pending payment keeps its hold until the saga's 120 s deadline.
    // The engine runs on a manual clock: the test moves time instead of sleeping.
    let clock = Clock::manual(chrono::Utc::now());
    let app = TestApp::spawn_clocked(backend, clock.clone(), |c| {
        if backend == Backend::Postgres {
            use_broker(c);
        }
        c.hold_ttl_secs = 60;
        c.hold_sweep_ms = 50;
        c.payment_deadline_secs = 120;
    })
    .await;
    let event = str_of(&app.create_ga_event(2).await["id"]).to_owned();
    let user = app.mint_users(1).await.remove(0);
    let paid = str_of(&app.hold_ok(&user.token, &event, &json!({"quantity": 1})).await["id"]).to_owned();
    let unpaid = str_of(&app.hold_ok(&user.token, &event, &json!({"quantity": 1})).await["id"]).to_owned();
    let payment = app.pay_ok(&user.token, &paid, "tok_silent").await;
    let pid = str_of(&payment["id"]).to_owned();

    // Ninety seconds on: the unpaid hold expires (so the event's sweep saw the time), the one
    // being paid for waits for its payment.
    clock.advance(Duration::from_secs(90));
    app.booking_becomes(&user.token, &unpaid, "expired", SAGA).await;
    let b = expect_json(app.booking(&user.token, &paid).await, 200).await;
    assert_eq!(b["status"], "held", "a hold being paid for does not expire");
    assert_eq!(app.payment(&user.token, &pid).await["status"], "pending");

    // Past the deadline with no verdict: the payment fails and releases the hold.
    clock.advance(Duration::from_secs(40));
    let failed = app.payment_becomes(&user.token, &pid, "failed", SAGA).await;
    assert_eq!(failed["failure_reason"], "deadline_exceeded");
    let b = app.booking_becomes(&user.token, &paid, "cancelled", SAGA).await;
    assert_eq!(b["cancel_reason"], "payment_failed");
    assert_eq!(app.available(&event).await, 2);

    // Mobile money ending 9999 never calls back either.
    let booking = str_of(&app.hold_ok(&user.token, &event, &json!({"quantity": 1})).await["id"]).to_owned();
    let body = json!({"method": "mobile_money", "phone_number": "+254700009999"});
    let p = expect_json(app.pay(&user.token, &booking, &body, None).await, 202).await;
    clock.advance(Duration::from_secs(121));
    app.payment_becomes(&user.token, str_of(&p["id"]), "failed", SAGA).await;
}

/// The simulated provider approves only its documented test tokens: a made-up token is
/// declined (it used to be approved) and the hold is released.
async fn unknown_card_tokens_are_declined(backend: Backend) {
    let app = app_for(backend, |_| {}).await;
    let (user, event_id, booking_id) = held_booking(&app, 1).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_made_up_by_someone").await;
    let failed = app.payment_becomes(&user.token, str_of(&payment["id"]), "failed", SAGA).await;
    assert_eq!(failed["failure_reason"], "card_declined");
    app.booking_becomes(&user.token, &booking_id, "cancelled", SAGA).await;
    assert_eq!(app.available(&event_id).await, 1);
}

async fn a_success_after_the_seats_were_resold_is_refunded(backend: Backend) {
    let app = app_for(backend, |c| {
        c.payment_deadline_secs = 1;
        c.payment_provider_slow_ms = 3000;
    })
    .await;
    let (user, event_id, booking_id) = held_booking(&app, 1).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_slow").await;
    let pid = str_of(&payment["id"]).to_owned();
    // The deadline passes first: the hold is released and someone else takes the seat.
    app.payment_becomes(&user.token, &pid, "failed", SAGA).await;
    app.booking_becomes(&user.token, &booking_id, "cancelled", SAGA).await;
    let rival = app.mint_users(1).await.remove(0);
    let theirs = app.hold_ok(&rival.token, &event_id, &json!({"quantity": 1})).await;
    // Then the provider says the money was taken: it is given back.
    let refunded = app.payment_becomes(&user.token, &pid, "refunded", SAGA).await;
    assert_eq!(refunded["amount_cents"], 1250);
    let b = expect_json(app.booking(&user.token, &booking_id).await, 200).await;
    assert_eq!(b["status"], "cancelled");
    let t = expect_json(app.booking(&rival.token, str_of(&theirs["id"])).await, 200).await;
    assert_eq!(t["status"], "held", "the new holder keeps the seat");
    assert_eq!(app.counters(&event_id).await, (1, 1, 1));
}

async fn cancelling_a_confirmed_booking_refunds_it(backend: Backend) {
    let app = app_for(backend, |_| {}).await;
    let (user, event_id, booking_id) = held_booking(&app, 2).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_ok").await;
    let pid = str_of(&payment["id"]).to_owned();
    app.booking_becomes(&user.token, &booking_id, "confirmed", SAGA).await;
    let cancelled = expect_json(app.cancel(&user.token, &booking_id).await, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    app.payment_becomes(&user.token, &pid, "refunded", SAGA).await;
    assert_eq!(app.available(&event_id).await, 2);
    // The receipt goes with the confirmation.
    let resp = app.get(&format!("/bookings/{booking_id}/receipt.pdf"), Some(&user.token)).await;
    assert_problem(resp, 409, "not_confirmed").await;
}

fn signed(body: &str, secret: &[u8], t: i64) -> String {
    boxoffice::payments::signature::sign(secret, t, body.as_bytes())
}

async fn webhook_forgery_and_replay_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, _, booking_id) = held_booking(&app, 1).await;
    // A silent provider: the only verdict will be the one this test sends.
    let payment = app.pay_ok(&user.token, &booking_id, "tok_silent").await;
    let pid = str_of(&payment["id"]).to_owned();
    let provider_ref = eventually(SAGA, "the charge to be acknowledged", || async {
        app.store()
            .payment(boxoffice::domain::ids::PaymentId(uuid::Uuid::parse_str(&pid).unwrap()))
            .await
            .unwrap()?
            .provider_ref
    })
    .await;
    let body = json!({"payment_id": pid, "provider_ref": provider_ref, "status": "succeeded"}).to_string();
    let now = chrono::Utc::now().timestamp();
    let post = |sig: Option<String>, body: String| {
        let mut rb =
            app.client.post(app.api("/payments/webhook")).header("content-type", "application/json").body(body);
        if let Some(s) = sig {
            rb = rb.header("x-signature", s);
        }
        rb.send()
    };
    assert_problem(post(None, body.clone()).await.unwrap(), 401, "unauthorized").await;
    assert_problem(post(Some(signed(&body, b"not-the-secret", now)), body.clone()).await.unwrap(), 401, "unauthorized")
        .await;
    assert_problem(post(Some("t=1,v1=zz".into()), body.clone()).await.unwrap(), 401, "unauthorized").await;
    // A genuine signature, but from long ago: a replay.
    let old = signed(&body, WEBHOOK_SECRET.as_bytes(), now - 301);
    assert_problem(post(Some(old), body.clone()).await.unwrap(), 401, "unauthorized").await;
    // A genuine signature over another body.
    let tampered = body.replace("succeeded", "failed");
    let sig = signed(&body, WEBHOOK_SECRET.as_bytes(), now);
    assert_problem(post(Some(sig.clone()), tampered).await.unwrap(), 401, "unauthorized").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.payment(&user.token, &pid).await["status"], "pending", "nothing changed");

    let first = expect_json(post(Some(sig.clone()), body.clone()).await.unwrap(), 200).await;
    assert_eq!(first["recorded"], true);
    app.payment_becomes(&user.token, &pid, "succeeded", SAGA).await;
    let again = expect_json(post(Some(sig), body.clone()).await.unwrap(), 200).await;
    assert_eq!(again["recorded"], false, "a repeated callback changes nothing");
    // Valid signature, malformed body: 400; unknown payment: 404.
    let junk = "{\"payment_id\": 5}";
    let r = post(Some(signed(junk, WEBHOOK_SECRET.as_bytes(), now)), junk.into()).await.unwrap();
    assert_problem(r, 400, "bad_request").await;
    let unknown = json!({"payment_id": uuid::Uuid::new_v4(), "provider_ref": "x", "status": "failed"}).to_string();
    let r = post(Some(signed(&unknown, WEBHOOK_SECRET.as_bytes(), now)), unknown).await.unwrap();
    assert_problem(r, 404, "not_found").await;
}

async fn payment_requests_are_idempotent_and_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, _, booking_id) = held_booking(&app, 2).await;
    let card = json!({"method": "card", "card_token": "tok_silent"});
    let first = expect_json(app.pay(&user.token, &booking_id, &card, Some("pay-1")).await, 202).await;
    let second = expect_json(app.pay(&user.token, &booking_id, &card, Some("pay-1")).await, 202).await;
    assert_eq!(first["id"], second["id"], "one key, one payment");
    let other_body = json!({"method": "card", "card_token": "tok_ok"});
    assert_problem(app.pay(&user.token, &booking_id, &other_body, Some("pay-1")).await, 422, "idempotency_key_reused")
        .await;
    // A second payment of the same booking while one is pending.
    assert_problem(app.pay(&user.token, &booking_id, &card, Some("pay-2")).await, 409, "booking_not_payable").await;

    // Someone else's booking and payment do not exist for you.
    let stranger = app.mint_users(1).await.remove(0);
    assert_problem(app.pay(&stranger.token, &booking_id, &card, None).await, 404, "not_found").await;
    assert_problem(
        app.get(&format!("/payments/{}", str_of(&first["id"])), Some(&stranger.token)).await,
        404,
        "not_found",
    )
    .await;
    let admin = app.admin_token().await;
    expect_json(app.get(&format!("/payments/{}", str_of(&first["id"])), Some(&admin)).await, 200).await;
    let missing = uuid::Uuid::new_v4();
    assert_problem(app.pay(&user.token, &missing.to_string(), &card, None).await, 404, "not_found").await;
    assert_problem(app.get("/payments/not-a-uuid", Some(&user.token)).await, 400, "bad_request").await;
    assert_problem(app.pay("not-a-token", &booking_id, &card, None).await, 401, "unauthorized").await;

    // Bad input: each field named.
    for (body, field) in [
        (json!({"method": "cash"}), "method"),
        (json!({"method": "card"}), "card_token"),
        (json!({"method": "card", "card_token": "4111111111111111"}), "card_token"),
        (json!({"method": "mobile_money", "phone_number": "0700000001"}), "phone_number"),
        (json!({"method": "mobile_money"}), "phone_number"),
    ] {
        let problem =
            assert_problem(app.pay(&user.token, &booking_id, &body, None).await, 422, "validation_failed").await;
        assert!(problem["errors"][field].is_string(), "{body} → {problem}");
    }
    assert_problem(app.pay(&user.token, &booking_id, &json!({"method": 5}), None).await, 400, "bad_request").await;

    // A cancelled booking cannot be paid.
    let (user, _, booking_id) = held_booking(&app, 1).await;
    expect_json(app.cancel(&user.token, &booking_id).await, 200).await;
    let card = json!({"method": "card", "card_token": "tok_ok"});
    assert_problem(app.pay(&user.token, &booking_id, &card, None).await, 409, "booking_not_payable").await;
    // Receipts exist for confirmed bookings only.
    let resp = app.get(&format!("/bookings/{booking_id}/receipt.pdf"), Some(&user.token)).await;
    assert_problem(resp, 409, "not_confirmed").await;
}

/// A provider that is down: payments fail (and release their holds) until the breaker opens;
/// then new payments get 503 with Retry-After at once, while holds keep working.
async fn the_circuit_breaker_opens_when_the_provider_is_down(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.payment_provider_failure_rate = 1.0;
        c.payment_gateway_timeout_ms = 500;
        // Charges are retried until the deadline; keep it short.
        c.payment_deadline_secs = 2;
    })
    .await;
    let admin = app.admin_token().await;
    let event = expect_json(app.create_event(&admin, &event_body(json!({"capacity": 50}))).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let user = app.mint_users(1).await.remove(0);
    let card = json!({"method": "card", "card_token": "tok_ok"});
    let mut refused = None;
    for _ in 0..10 {
        let b = app.hold_ok(&user.token, &event_id, &json!({"quantity": 1})).await;
        let bid = str_of(&b["id"]).to_owned();
        let resp = app.pay(&user.token, &bid, &card, None).await;
        if resp.status() == 503 {
            assert_eq!(resp.headers()["retry-after"], "1");
            refused = Some(assert_problem(resp, 503, "unavailable").await);
            break;
        }
        let p = expect_json(resp, 202).await;
        let failed = app.payment_becomes(&user.token, str_of(&p["id"]), "failed", SAGA).await;
        assert_eq!(failed["failure_reason"], "payment_provider_unavailable");
        app.booking_becomes(&user.token, &bid, "cancelled", SAGA).await;
    }
    let refused = refused.expect("the breaker opened within ten payments");
    assert!(refused["detail"].as_str().unwrap().contains("payment provider"), "{refused}");
    // Bookings are unaffected.
    app.hold_ok(&user.token, &event_id, &json!({"quantity": 1})).await;
    // (Metrics are process-wide, and other tests' apps share this process: only its presence.)
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("boxoffice_payment_circuit_open"), "{metrics}");
}

/// Several nodes: a saga runs on one node at a time; another takes it only after the lease.
async fn a_saga_belongs_to_one_node_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (user, _, booking_id) = held_booking(&app, 1).await;
    let payment = app.pay_ok(&user.token, &booking_id, "tok_silent").await;
    let pid = boxoffice::domain::ids::PaymentId(uuid_of(&payment["id"]));
    let store = app.store();
    eventually(SAGA, "the saga to take its lease", || async {
        store.payment(pid).await.unwrap()?.provider_ref.map(|_| ())
    })
    .await;
    let now = boxoffice::domain::now();
    let lease = Duration::from_secs(30);
    assert!(!store.lease_payment(pid, "another-node", now, lease).await.unwrap(), "the running node holds it");
    assert!(!store.unfinished_payments("another-node", now).await.unwrap().contains(&pid));
    let later = now + chrono::Duration::seconds(60);
    assert!(store.unfinished_payments("another-node", later).await.unwrap().contains(&pid));
    assert!(store.lease_payment(pid, "another-node", later, lease).await.unwrap(), "free once the lease ran out");
}

both_backends!(
    a_saga_belongs_to_one_node_at_a_time,
    successful_payment_confirms_sends_a_receipt_and_admits_once,
    declined_payment_releases_the_hold_at_once,
    a_silent_provider_fails_at_the_deadline_and_the_hold_waits_for_it,
    unknown_card_tokens_are_declined,
    a_success_after_the_seats_were_resold_is_refunded,
    cancelling_a_confirmed_booking_refunds_it,
    webhook_forgery_and_replay_are_refused,
    payment_requests_are_idempotent_and_checked,
);

mod the_circuit_breaker_opens_when_the_provider_is_down {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        super::the_circuit_breaker_opens_when_the_provider_is_down(crate::helpers::Backend::Sqlite).await
    }
}

/// Production never sells through the simulator by accident: the binary refuses to start with
/// it, naming the variable that allows it (a staging system), and starts once it is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_the_simulated_provider_unless_allowed() {
    use crate::process::{start_binary_with, wait_healthy};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/prod.db", dir.path().display());
    let production = [("BOXOFFICE_ENV", "production")];
    let mut refused = start_binary_with(&db, dir.path(), "refused", &production);
    let status = eventually(Duration::from_secs(60), "the binary to refuse to start", || {
        let exited = refused.child.try_wait().expect("child status");
        async move { exited }
    })
    .await;
    let log = std::fs::read_to_string(&refused.log).unwrap_or_default();
    assert!(!status.success(), "it started in production with the simulated provider:\n{log}");
    assert!(log.contains("ALLOW_SIMULATED_PAYMENTS"), "the refusal does not say how to allow it:\n{log}");

    let allowed = [("BOXOFFICE_ENV", "production"), ("ALLOW_SIMULATED_PAYMENTS", "true")];
    let mut staging = start_binary_with(&db, dir.path(), "staging", &allowed);
    wait_healthy(&http_client(), &mut staging).await;
}
