//! Per-account limits: one account cannot hold (or buy) a whole event, however fast it sends
//! its holds; the organiser sets the limit, and everyone else can still buy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

const SAGA: Duration = Duration::from_secs(30);

/// The attack as it was reproduced: one token, twenty holds of ten seats at once, on an event of
/// 200 seats. With the default limit (20 seats per account) it gets two of them, no more.
async fn one_account_cannot_hold_a_whole_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create_ga_event(200).await;
    assert_eq!(event["max_per_user"], 20, "the default limit is shown: {event}");
    let id = str_of(&event["id"]).to_owned();
    let greedy = app.mint_users(1).await.remove(0);

    let ten = json!({"quantity": 10});
    let answers = futures::future::join_all((0..20).map(|_| app.hold(&greedy.token, &id, &ten, None))).await;
    let mut held = Vec::new();
    for resp in answers {
        match resp.status().as_u16() {
            201 => held.push(resp.json::<Value>().await.unwrap()),
            409 => {
                let p = assert_problem(resp, 409, "per_user_limit").await;
                assert_eq!(p["limit"], 20, "{p}");
                assert!(str_of(&p["detail"]).contains("20 seats per account"), "{p}");
            }
            other => panic!("hold answered {other}: {}", resp.text().await.unwrap_or_default()),
        }
    }
    assert_eq!(held.len(), 2, "one account got {} holds of 10 seats", held.len());
    assert_eq!(app.counters(&id).await, (200, 20, 20));
    // Even one more seat is refused; someone else still buys.
    assert_problem(app.hold(&greedy.token, &id, &json!({"quantity": 1}), None).await, 409, "per_user_limit").await;
    let other = app.mint_users(1).await.remove(0);
    app.hold_ok(&other.token, &id, &json!({"quantity": 10})).await;
    assert_eq!(app.available(&id).await, 170);
    // Seats given back no longer count.
    expect_json(app.cancel(&greedy.token, str_of(&held[0]["id"])).await, 200).await;
    app.hold_ok(&greedy.token, &id, &json!({"quantity": 10})).await;

    // Seated events count named seats the same way.
    let seated = app.create_seated_event(10, 10).await;
    let seated_id = str_of(&seated["id"]).to_owned();
    let rows: Vec<Value> = (0..3)
        .map(|r| json!({"seats": (1..=10).map(|n| format!("Stalls-{}-{n}", row_label(r))).collect::<Vec<_>>()}))
        .collect();
    let answers = futures::future::join_all(rows.iter().map(|b| app.hold(&greedy.token, &seated_id, b, None))).await;
    let ok = answers.iter().filter(|r| r.status() == 201).count();
    assert_eq!(ok, 2, "three rows of ten seats asked at once");
    assert_eq!(app.counters(&seated_id).await.1, 20);
}

/// Bought seats count as much as held ones, and the organiser sets the limit.
async fn the_organiser_sets_the_limit_and_bought_seats_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    for (limit, field) in [(0, "max_per_user"), (11, "max_per_user")] {
        let body = event_body(json!({"capacity": 10, "max_per_user": limit}));
        let p = assert_problem(app.create_event(&admin, &body).await, 422, "validation_failed").await;
        assert!(p["errors"][field].is_string(), "{p}");
    }
    let body = event_body(json!({"capacity": 10, "max_per_user": 2}));
    let event = expect_json(app.create_event(&admin, &body).await, 201).await;
    assert_eq!(event["max_per_user"], 2);
    let id = str_of(&event["id"]).to_owned();

    let user = app.mint_users(1).await.remove(0);
    let b = app.hold_ok(&user.token, &id, &json!({"quantity": 2})).await;
    let bid = str_of(&b["id"]).to_owned();
    app.pay_ok(&user.token, &bid, "tok_ok").await;
    app.booking_becomes(&user.token, &bid, "confirmed", SAGA).await;
    assert_problem(app.hold(&user.token, &id, &json!({"quantity": 1}), None).await, 409, "per_user_limit").await;

    // Raised: one more fits; lowered below what someone has: nothing is taken away.
    let path = format!("/events/{id}");
    let patch = |v: Value| {
        let (app, admin, path) = (&app, &admin, &path);
        async move { app.patch(path, Some(admin), &v).await }
    };
    assert_problem(patch(json!({"max_per_user": 0})).await, 422, "validation_failed").await;
    assert_problem(patch(json!({"max_per_user": 11})).await, 409, "exceeds_capacity").await;
    assert_eq!(expect_json(patch(json!({"max_per_user": 3})).await, 200).await["max_per_user"], 3);
    app.hold_ok(&user.token, &id, &json!({"quantity": 1})).await;
    assert_eq!(expect_json(patch(json!({"max_per_user": 1})).await, 200).await["max_per_user"], 1);
    assert_eq!(expect_json(app.booking(&user.token, &bid).await, 200).await["status"], "confirmed");
    assert_problem(app.hold(&user.token, &id, &json!({"quantity": 1}), None).await, 409, "per_user_limit").await;
    // The limit follows a capacity that drops below it.
    expect_json(patch(json!({"max_per_user": 10})).await, 200).await;
    let shrunk = expect_json(patch(json!({"capacity": 3})).await, 200).await;
    assert_eq!((shrunk["capacity"].as_i64(), shrunk["max_per_user"].as_i64()), (Some(3), Some(3)));
}

both_backends!(one_account_cannot_hold_a_whole_event, the_organiser_sets_the_limit_and_bought_seats_count);
