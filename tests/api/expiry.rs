//! Holds run out: the booking becomes `expired` and its seats come back.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

both_backends!(holds_expire);

async fn holds_expire(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.hold_ttl_secs = 1;
        c.hold_sweep_ms = 100;
    })
    .await;
    let user = app.user_token().await;
    let ga = app.create_ga_event(5).await;
    let ga_id = str_of(&ga["id"]).to_owned();
    let seated = app.create_seated_event(1, 4).await;
    let seated_id = str_of(&seated["id"]).to_owned();

    let held = app.hold_ok(&user, &ga_id, &json!({"quantity": 5})).await;
    let held_seats = app.hold_ok(&user, &seated_id, &json!({"seats": ["Stalls-A-1", "Stalls-A-2"]})).await;
    assert_eq!(held["status"], "held");
    let expires_at = chrono::DateTime::parse_from_rfc3339(str_of(&held["expires_at"])).unwrap();
    let ttl = expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(ttl <= chrono::Duration::seconds(2), "HOLD_TTL_SECS=1 but the hold lasts {ttl}");

    for (booking, event, capacity) in [(&held, &ga_id, 5), (&held_seats, &seated_id, 4)] {
        let bid = str_of(&booking["id"]).to_owned();
        eventually(Duration::from_secs(10), "the hold to expire", || {
            let (app, user, bid) = (&app, &user, &bid);
            async move {
                let b = expect_json(app.booking(user, bid).await, 200).await;
                (b["status"] == "expired").then_some(())
            }
        })
        .await;
        eventually(Duration::from_secs(10), "the seats to come back", || {
            let (app, event) = (&app, event);
            async move { (app.available(event).await == capacity).then_some(()) }
        })
        .await;
        assert_eq!(app.counters(event).await, (capacity, 0, 0), "the database still counts the expired hold");
        // Expired is final.
        assert_problem(app.cancel(&user, &bid).await, 409, "not_cancellable").await;
    }

    // The seats are free in the map and can be held again.
    let map = expect_json(app.get(&format!("/events/{seated_id}/seats"), None).await, 200).await;
    for s in map["sections"][0]["rows"][0]["seats"].as_array().unwrap() {
        assert_eq!(s["status"], "free", "{s}");
    }
    app.hold_ok(&user, &seated_id, &json!({"seats": ["Stalls-A-1", "Stalls-A-2"]})).await;
    app.hold_ok(&user, &ga_id, &json!({"quantity": 5})).await;
}
