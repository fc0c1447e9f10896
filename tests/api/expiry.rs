//! Holds run out: the booking becomes `expired` and its seats come back. The engine runs on a
//! manual clock: the test moves time past the holds' ten minutes instead of sleeping.

use std::time::Duration;

use boxoffice::clock::Clock;
use serde_json::json;

use crate::helpers::*;

both_backends!(holds_expire);

/// Waits until the booking expired and its event has all its seats back, and checks the store.
async fn expires(app: &TestApp, user: &str, booking: &serde_json::Value, event: &str, capacity: i64) {
    let bid = str_of(&booking["id"]).to_owned();
    eventually(Duration::from_secs(10), "the hold to expire", || async {
        let b = expect_json(app.booking(user, &bid).await, 200).await;
        (b["status"] == "expired").then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the seats to come back", || async {
        (app.available(event).await == capacity).then_some(())
    })
    .await;
    assert_eq!(app.counters(event).await, (capacity, 0, 0), "the database still counts the expired hold");
    // Expired is final.
    assert_problem(app.cancel(user, &bid).await, 409, "not_cancellable").await;
}

async fn holds_expire(backend: Backend) {
    let clock = Clock::manual(chrono::Utc::now());
    let app = TestApp::spawn_clocked(backend, clock.clone(), |c| c.hold_sweep_ms = 50).await;
    let user = app.user_token().await;
    let ga = app.create_ga_event(5).await;
    let ga_id = str_of(&ga["id"]).to_owned();
    let seated = app.create_seated_event(1, 4).await;
    let seated_id = str_of(&seated["id"]).to_owned();

    let first = app.hold_ok(&user, &ga_id, &json!({"quantity": 3})).await;
    let held_seats = app.hold_ok(&user, &seated_id, &json!({"seats": ["Stalls-A-1", "Stalls-A-2"]})).await;
    assert_eq!(first["status"], "held");
    let expires_at = chrono::DateTime::parse_from_rfc3339(str_of(&first["expires_at"])).unwrap();
    assert_eq!(expires_at.with_timezone(&chrono::Utc) - clock.now(), chrono::Duration::seconds(600));
    // Five minutes later a second hold of the same event.
    clock.advance(Duration::from_secs(300));
    let second = app.hold_ok(&user, &ga_id, &json!({"quantity": 2})).await;

    // Just past the first holds' ten minutes: they expire; the younger hold, seen by the same
    // sweep of its event, stands.
    clock.advance(Duration::from_secs(301));
    expires(&app, &user, &held_seats, &seated_id, 4).await;
    let bid = str_of(&first["id"]).to_owned();
    eventually(Duration::from_secs(10), "the first hold to expire", || async {
        let b = expect_json(app.booking(&user, &bid).await, 200).await;
        (b["status"] == "expired").then_some(())
    })
    .await;
    let b = expect_json(app.booking(&user, str_of(&second["id"])).await, 200).await;
    assert_eq!(b["status"], "held", "a hold expired five minutes early: {b}");
    assert_eq!(app.available(&ga_id).await, 3);

    clock.advance(Duration::from_secs(300));
    expires(&app, &user, &second, &ga_id, 5).await;

    // The seats are free in the map and can be held again.
    let map = expect_json(app.get(&format!("/events/{seated_id}/seats"), None).await, 200).await;
    for s in map["sections"][0]["rows"][0]["seats"].as_array().unwrap() {
        assert_eq!(s["status"], "free", "{s}");
    }
    app.hold_ok(&user, &seated_id, &json!({"seats": ["Stalls-A-1", "Stalls-A-2"]})).await;
    app.hold_ok(&user, &ga_id, &json!({"quantity": 5})).await;
}
