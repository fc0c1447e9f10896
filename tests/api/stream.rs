//! The domain-event stream: after a mixed run (holds, payments that succeed and fail,
//! cancellations with and without a refund, an expiry, a check-in, event changes) every outbox
//! row is a typed domain event that satisfies the schema served at `/api/asyncapi.json`, every
//! kind of event was written, and each booking's events come in the order they happened.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use boxoffice::domain::stream::{DomainEvent, EventType};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(what_the_engine_emits_matches_the_published_schema);

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
