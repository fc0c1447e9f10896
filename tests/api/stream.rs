//! The domain-event stream: after a mixed run (holds, payments that succeed and fail,
//! cancellations with and without a refund, an expiry, a check-in, event changes) every outbox
//! row is a typed domain event that satisfies the schema served at `/api/asyncapi.json`, every
//! kind of event was written, and each booking's events come in the order they happened.
//! Every event a request caused carries that request's `x-request-id`.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use boxoffice::clock::Clock;
use boxoffice::domain::stream::{DomainEvent, EventType};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(what_the_engine_emits_matches_the_published_schema, request_ids_reach_the_domain_events);

const WAIT: Duration = Duration::from_secs(30);

/// Every outbox payload, oldest first.
pub async fn outbox_payloads(app: &TestApp) -> Vec<(i64, String)> {
    const SQL: &str = "SELECT id, payload FROM outbox ORDER BY id";
    let pool = app.db.pool().await;
    let rows: Vec<(i64, String)> = match &pool {
        DbPool::Pg(p) => sqlx::query_as(SQL).fetch_all(p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_as(SQL).fetch_all(p).await.unwrap(),
    };
    pool.close().await;
    rows
}

/// A run that makes every kind of domain event at least once; returns the catalogue event
/// that kept its bookings.
pub async fn mixed_run(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    let event = expect_json(app.create_event(&admin, &event_body(json!({"capacity": 50}))).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    expect_json(app.patch(&format!("/events/{event_id}"), Some(&admin), &json!({"title": "Renamed"})).await, 200).await;
    let gone = expect_json(app.create_event(&admin, &event_body(json!({"capacity": 5}))).await, 201).await;
    let resp = app.delete(&format!("/events/{}", str_of(&gone["id"])), Some(&admin)).await;
    assert_eq!(resp.status(), 204, "delete an event without bookings");

    let users = app.mint_users(5).await;
    let hold = |i: usize, q: i64| {
        let (token, event_id) = (users[i].token.clone(), event_id.clone());
        async move { str_of(&app.hold_ok(&token, &event_id, &json!({"quantity": q})).await["id"]).to_owned() }
    };
    // Paid, then admitted at the door.
    let paid = hold(0, 2).await;
    app.pay_ok(&users[0].token, &paid, "tok_ok").await;
    let b = app.booking_becomes(&users[0].token, &paid, "confirmed", WAIT).await;
    expect_json(app.check_in(&admin, &event_id, str_of(&b["ticket_code"])).await, 200).await;
    // Declined: the hold is released.
    let declined = hold(1, 1).await;
    app.pay_ok(&users[1].token, &declined, "tok_declined").await;
    app.booking_becomes(&users[1].token, &declined, "cancelled", WAIT).await;
    // Cancelled while held.
    let dropped = hold(2, 3).await;
    expect_json(app.cancel(&users[2].token, &dropped).await, 200).await;
    // Paid, then cancelled: refunded.
    let refunded = hold(3, 1).await;
    let p = app.pay_ok(&users[3].token, &refunded, "tok_ok").await;
    app.booking_becomes(&users[3].token, &refunded, "confirmed", WAIT).await;
    expect_json(app.cancel(&users[3].token, &refunded).await, 200).await;
    app.payment_becomes(&users[3].token, str_of(&p["id"]), "refunded", WAIT).await;
    // Left to expire (the test's hold TTL is short).
    let expiring = hold(4, 1).await;
    app.booking_becomes(&users[4].token, &expiring, "expired", WAIT).await;
    event_id
}

/// The payload schema of the served AsyncAPI document.
pub async fn published_schema(app: &TestApp) -> jsonschema::Validator {
    let doc: Value = expect_json(app.client.get(app.url("/api/asyncapi.json")).send().await.unwrap(), 200).await;
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["components"]["messages"].as_object().unwrap().len(), EventType::ALL.len());
    let schema = boxoffice::stream::asyncapi::payload_schema(&doc);
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("a valid JSON Schema")
}

async fn what_the_engine_emits_matches_the_published_schema(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.hold_ttl_secs = 3).await;
    let validator = published_schema(&app).await;
    mixed_run(&app).await;
    let all: BTreeSet<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    let rows = eventually(WAIT, "every kind of domain event in the outbox", || async {
        let rows = outbox_payloads(&app).await;
        let seen: BTreeSet<String> = rows
            .iter()
            .filter_map(|(_, p)| serde_json::from_str::<Value>(p).ok()?["type"].as_str().map(str::to_owned))
            .collect();
        (seen.iter().map(String::as_str).collect::<BTreeSet<_>>() == all).then_some(rows)
    })
    .await;

    let mut ids = BTreeSet::new();
    let mut last_time: HashMap<String, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for (row, payload) in &rows {
        let value: Value = serde_json::from_str(payload).unwrap();
        if let Err(e) = validator.validate(&value) {
            panic!("outbox row {row} does not satisfy the published schema: {e}\n{value:#}");
        }
        let event: DomainEvent = serde_json::from_value(value).expect("the type reads what the schema allows");
        assert!(ids.insert(event.id), "domain event ids are unique");
        // Only an expiry has no request behind it (the engine names every request it serves).
        assert_eq!(
            event.request_id.is_some(),
            event.kind() != EventType::BookingExpired,
            "outbox row {row}: {} with request id {:?}",
            event.kind().as_str(),
            event.request_id
        );
        // A booking's changes are written in the order they happened.
        if let Some(b) = event.booking_id {
            let t = last_time.entry(b.to_string()).or_insert(event.time);
            assert!(*t <= event.time, "booking {b}: {} at {} after a later change", event.kind().as_str(), event.time);
            *t = event.time;
        }
    }
    // Not everything validates: the schema is not a blanket `true`.
    let mut broken: Value = serde_json::from_str(&rows[0].1).unwrap();
    broken["type"] = json!("booking.teleported");
    assert!(!validator.is_valid(&broken), "an unknown type is refused");
    let mut broken: Value = serde_json::from_str(&rows[0].1).unwrap();
    broken.as_object_mut().unwrap().remove("event_id");
    assert!(!validator.is_valid(&broken), "an event without its event_id is refused");
}

/// Sends `rb` as the request named `rid`; the engine echoes the name.
async fn as_request(rb: reqwest::RequestBuilder, rid: &str) -> reqwest::Response {
    let resp = rb.header("x-request-id", rid).send().await.unwrap();
    assert_eq!(resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(rid), "{}", resp.url());
    resp
}

/// Each kind of change a request causes carries that request's id into its domain event: the
/// catalogue changes, a hold, a payment (its saga's events: success, confirmation, or failure
/// and the cancellation it causes), a cancellation and an admission at the door.
async fn request_ids_reach_the_domain_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let rid = |what: &str| format!("req-{what}-{run}");
    let post = |path: &str, token: &str| app.client.post(app.api(path)).bearer_auth(token);

    let body = event_body(json!({"capacity": 10}));
    let event = expect_json(as_request(post("/events", &admin).json(&body), &rid("create")).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let renamed = app
        .client
        .patch(app.api(&format!("/events/{event_id}")))
        .bearer_auth(&admin)
        .json(&json!({"title": "Renamed"}));
    expect_json(as_request(renamed, &rid("update")).await, 200).await;
    let gone = str_of(&app.create_ga_event(5).await["id"]).to_owned();
    let resp =
        as_request(app.client.delete(app.api(&format!("/events/{gone}"))).bearer_auth(&admin), &rid("delete")).await;
    assert_eq!(resp.status(), 204);

    let users = app.mint_users(2).await;
    let hold = post(&format!("/events/{event_id}/bookings"), &users[0].token).json(&json!({"quantity": 2}));
    let paid = str_of(&expect_json(as_request(hold, &rid("hold")).await, 201).await["id"]).to_owned();
    let card = |card_token: &str| json!({"method": "card", "card_token": card_token});
    let pay = post(&format!("/bookings/{paid}/payments"), &users[0].token).json(&card("tok_ok"));
    expect_json(as_request(pay, &rid("pay")).await, 202).await;
    let b = app.booking_becomes(&users[0].token, &paid, "confirmed", WAIT).await;
    let scan = post(&format!("/events/{event_id}/check-in"), &admin).json(&json!({"code": str_of(&b["ticket_code"])}));
    expect_json(as_request(scan, &rid("check-in")).await, 200).await;

    let dropped = str_of(&app.hold_ok(&users[1].token, &event_id, &json!({"quantity": 1})).await["id"]).to_owned();
    let cancel = post(&format!("/bookings/{dropped}/cancel"), &users[1].token);
    expect_json(as_request(cancel, &rid("cancel")).await, 200).await;
    let declined = str_of(&app.hold_ok(&users[1].token, &event_id, &json!({"quantity": 1})).await["id"]).to_owned();
    let pay = post(&format!("/bookings/{declined}/payments"), &users[1].token).json(&card("tok_declined"));
    expect_json(as_request(pay, &rid("declined")).await, 202).await;
    app.booking_becomes(&users[1].token, &declined, "cancelled", WAIT).await;

    // (kind, the booking or, for catalogue changes, the event it is about) → the request.
    let expected: Vec<(EventType, &str, String)> = vec![
        (EventType::EventCreated, &event_id, rid("create")),
        (EventType::EventUpdated, &event_id, rid("update")),
        (EventType::EventDeleted, &gone, rid("delete")),
        (EventType::BookingHeld, &paid, rid("hold")),
        (EventType::PaymentSucceeded, &paid, rid("pay")),
        (EventType::BookingConfirmed, &paid, rid("pay")),
        (EventType::TicketCheckedIn, &paid, rid("check-in")),
        (EventType::BookingCancelled, &dropped, rid("cancel")),
        (EventType::PaymentFailed, &declined, rid("declined")),
        (EventType::BookingCancelled, &declined, rid("declined")),
    ];
    let subject = |e: &DomainEvent| match e.booking_id {
        Some(b) => b.to_string(),
        None => e.event_id.to_string(),
    };
    let events: Vec<DomainEvent> = eventually(WAIT, "the domain events of every request", || async {
        let events: Vec<DomainEvent> =
            outbox_payloads(&app).await.iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
        let all_there =
            expected.iter().all(|(kind, of, _)| events.iter().any(|e| e.kind() == *kind && subject(e) == *of));
        all_there.then_some(events)
    })
    .await;
    for (kind, of, request) in &expected {
        let e = events.iter().find(|e| e.kind() == *kind && subject(e) == *of).unwrap();
        assert_eq!(e.request_id.as_deref(), Some(request.as_str()), "{} of {of}", kind.as_str());
    }
}

/// A gauge of `/metrics` (no labels).
async fn gauge(app: &TestApp, name: &str) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is not exported"))
}

/// With the broker unreachable the domain events wait in the outbox, and `/metrics` says how
/// many and how old the oldest is, by the engine's clock. The only test with a Kafka sink (its
/// gauges are the process's), so one backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kafka_sink_lag_is_exported_while_the_broker_is_away() {
    // A port nothing listens on once the listener is dropped.
    let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let clock = Clock::manual(chrono::Utc::now());
    let app = TestApp::spawn_clocked(Backend::Sqlite, clock.clone(), |c| {
        c.kafka_bootstrap_servers = Some(away.to_string());
    })
    .await;
    let admin = app.admin_token().await;
    let event = expect_json(app.create_event(&admin, &event_body(json!({"capacity": 5}))).await, 201).await;
    let path = format!("/events/{}", str_of(&event["id"]));
    expect_json(app.patch(&path, Some(&admin), &json!({"title": "Renamed"})).await, 200).await;
    eventually(WAIT, "the sink to report both events waiting", || async {
        (gauge(&app, "boxoffice_kafka_backlog").await == 2.0).then_some(())
    })
    .await;
    assert_eq!(app.store().kafka_backlog().await.unwrap(), 2);
    assert_eq!(gauge(&app, "boxoffice_kafka_up").await, 0.0);
    let age = gauge(&app, "boxoffice_kafka_oldest_unsent_seconds").await;
    assert!(age < 600.0, "the clock has not moved yet: {age}");
    clock.advance(Duration::from_secs(600));
    eventually(WAIT, "the oldest waiting event to age with the clock", || async {
        (gauge(&app, "boxoffice_kafka_oldest_unsent_seconds").await >= 600.0).then_some(())
    })
    .await;
}
