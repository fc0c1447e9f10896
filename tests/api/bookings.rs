//! Holds (by quantity and by seat), idempotency, listing, reading and cancelling bookings.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(
    hold_by_quantity,
    hold_refusals,
    seated_holds,
    idempotent_holds,
    idempotency_key_reused_concurrently,
    booking_lists_and_access,
    cancel_bookings,
    concurrent_cancels_release_once,
);

fn parse_ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(str_of(v)).unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}")).with_timezone(&Utc)
}

/// Every field of the OpenAPI document's Booking, with the right JSON types.
fn assert_booking_shape(b: &Value) {
    for f in ["id", "event_id", "user_id"] {
        uuid_of(&b[f]);
    }
    assert!(b["quantity"].is_i64(), "quantity in {b}");
    assert!(b["seats"].is_array(), "seats in {b}");
    assert!(b["status"].is_string(), "status in {b}");
    assert!(b["amount_cents"].is_i64(), "amount_cents in {b}");
    assert!(b["currency"].is_string(), "currency in {b}");
    parse_ts(&b["expires_at"]);
    parse_ts(&b["created_at"]);
    assert!(b.get("ticket_code").is_some(), "ticket_code missing in {b}");
}

fn seats_of(b: &Value) -> Vec<String> {
    b["seats"].as_array().unwrap().iter().map(|s| str_of(s).to_owned()).collect()
}

async fn hold_by_quantity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.new_user().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);

    let before = Utc::now();
    let b = expect_json(app.hold(&user.token, id, &json!({"quantity": 3}), Some("k-1")).await, 201).await;
    assert_booking_shape(&b);
    assert_eq!(b["status"], "held");
    assert_eq!(b["quantity"], 3);
    assert_eq!(b["seats"], json!([]), "general admission has no seat ids");
    assert_eq!(b["event_id"], id);
    assert_eq!(uuid_of(&b["user_id"]), user.id);
    assert_eq!(b["amount_cents"], 3 * event["price_cents"].as_i64().unwrap());
    assert_eq!(b["currency"], event["currency"]);
    assert!(b["ticket_code"].is_null(), "ticket_code before payment: {b}");
    let expires = parse_ts(&b["expires_at"]);
    assert!(
        expires > before + Duration::seconds(590) && expires < Utc::now() + Duration::seconds(610),
        "default hold is 10 minutes: {expires}"
    );

    assert_eq!(app.available(id).await, 7);
    let again = app.hold_ok(&user.token, id, &json!({"quantity": 7})).await;
    assert_eq!(again["amount_cents"], 7 * 2500);
    assert_eq!(app.available(id).await, 0);
    assert_eq!(app.counters(id).await, (10, 10, 10));

    // The booking reads back the same.
    let read = expect_json(app.booking(&user.token, str_of(&b["id"])).await, 200).await;
    for f in ["id", "event_id", "user_id", "quantity", "seats", "status", "amount_cents", "currency", "ticket_code"] {
        assert_eq!(read[f], b[f], "{f} differs on read");
    }
    assert_eq!(
        parse_ts(&read["expires_at"]),
        expires,
        "expires_at reads back differently from the 201 (stored at another precision?)"
    );
    assert_eq!(
        read["created_at"], b["created_at"],
        "created_at reads back differently from the 201 (stored at another precision?)"
    );
}

async fn hold_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;
    let event = app.create_ga_event(12).await;
    let id = str_of(&event["id"]);
    assert_eq!(event["max_per_booking"], 10);

    let zero = assert_problem(app.hold(&user, id, &json!({"quantity": 0}), None).await, 422, "validation_failed").await;
    assert!(zero["errors"]["quantity"].is_string(), "{zero}");
    // Over the event's own limit: a conflict with the event, not invalid input.
    let many =
        assert_problem(app.hold(&user, id, &json!({"quantity": 11}), None).await, 409, "over_booking_limit").await;
    assert_eq!(many["max_per_booking"], 10, "{many}");
    assert_problem(app.hold(&user, id, &json!({}), None).await, 422, "validation_failed").await;
    // Seat ids on a general-admission event.
    assert_problem(app.hold(&user, id, &json!({"seats": ["Stalls-A-1"]}), None).await, 409, "general_admission").await;
    assert_eq!(app.available(id).await, 12, "a refused hold took seats");

    let nobody = uuid::Uuid::new_v4().to_string();
    assert_problem(app.hold(&user, &nobody, &json!({"quantity": 1}), None).await, 404, "not_found").await;

    app.hold_ok(&user, id, &json!({"quantity": 10})).await;
    // 2 left: 3 is too many, 2 fits, then nothing.
    assert_problem(app.hold(&user, id, &json!({"quantity": 3}), None).await, 409, "sold_out").await;
    app.hold_ok(&user, id, &json!({"quantity": 2})).await;
    assert_problem(app.hold(&user, id, &json!({"quantity": 1}), None).await, 409, "sold_out").await;
    assert_eq!(app.available(id).await, 0);
    assert_eq!(app.counters(id).await, (12, 12, 12));
}

async fn seated_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let bob = app.user_token().await;
    let event = app.create_seated_event(3, 6).await;
    let id = str_of(&event["id"]);
    let price = event["price_cents"].as_i64().unwrap();

    let b = expect_json(app.hold(&ann, id, &json!({"seats": ["Stalls-A-3", "Stalls-A-4"]}), None).await, 201).await;
    assert_booking_shape(&b);
    assert_eq!(b["status"], "held");
    assert_eq!(b["quantity"], 2);
    assert_eq!(b["amount_cents"], 2 * price);
    let mut got = seats_of(&b);
    got.sort();
    assert_eq!(got, vec!["Stalls-A-3", "Stalls-A-4"]);
    assert_eq!(app.available(id).await, 16);

    // Overlap: refused, naming the taken seats; nothing of it is held.
    let overlap = app.hold(&bob, id, &json!({"seats": ["Stalls-A-4", "Stalls-A-5"]}), None).await;
    let problem = assert_problem(overlap, 409, "seats_unavailable").await;
    assert_eq!(problem["unavailable_seats"], json!(["Stalls-A-4"]), "{problem}");
    assert_eq!(app.available(id).await, 16);
    app.hold_ok(&bob, id, &json!({"seats": ["Stalls-A-5"]})).await;

    // Unknown seats.
    let unknown = app.hold(&bob, id, &json!({"seats": ["Stalls-Z-1"]}), None).await;
    assert_problem(unknown, 409, "unknown_seats").await;
    let unknown = app.hold(&bob, id, &json!({"seats": ["Stalls-A-1", "Stalls-A-99"]}), None).await;
    let unknown = assert_problem(unknown, 409, "unknown_seats").await;
    assert_eq!(unknown["unknown_seats"], json!(["Stalls-A-99"]));
    assert_problem(app.hold(&bob, id, &json!({"seats": []}), None).await, 422, "validation_failed").await;
    assert_eq!(app.available(id).await, 15);

    // By quantity: row A has no run of 4 left (1-2 free, 3-5 taken, 6 free), so the engine
    // picks 4 adjacent seats of one other row.
    let q = app.hold_ok(&bob, id, &json!({"quantity": 4})).await;
    assert_eq!(q["quantity"], 4);
    let seats = seats_of(&q);
    assert_eq!(seats.len(), 4, "{q}");
    let parsed: Vec<(String, u32)> = seats
        .iter()
        .map(|s| {
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(parts.len(), 3, "seat id {s}");
            assert_eq!(parts[0], "Stalls");
            (parts[1].to_owned(), parts[2].parse().unwrap())
        })
        .collect();
    let row = &parsed[0].0;
    assert!(parsed.iter().all(|(r, _)| r == row), "seats in several rows: {seats:?}");
    assert_ne!(row, "A", "row A has no four adjacent free seats: {seats:?}");
    let mut numbers: Vec<u32> = parsed.iter().map(|(_, n)| *n).collect();
    numbers.sort();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "seats not adjacent: {seats:?}");
    assert_eq!(app.available(id).await, 11);

    // The seat map agrees.
    let map = expect_json(app.get(&format!("/events/{id}/seats"), None).await, 200).await;
    let mut held = HashSet::new();
    for row in map["sections"][0]["rows"].as_array().unwrap() {
        for s in row["seats"].as_array().unwrap() {
            if s["status"] != "free" {
                held.insert(str_of(&s["id"]).to_owned());
            }
        }
    }
    let mut expected: HashSet<String> =
        ["Stalls-A-3", "Stalls-A-4", "Stalls-A-5"].iter().map(|s| s.to_string()).collect();
    expected.extend(seats);
    assert_eq!(held, expected);

    // Too many by quantity on a seated event: sold out.
    let small = app.create_seated_event(1, 3).await;
    let small_id = str_of(&small["id"]);
    app.hold_ok(&ann, small_id, &json!({"quantity": 2})).await;
    assert_problem(app.hold(&bob, small_id, &json!({"quantity": 2}), None).await, 409, "sold_out").await;
    app.hold_ok(&bob, small_id, &json!({"quantity": 1})).await;
    assert_eq!(app.counters(small_id).await, (3, 3, 3));
}

async fn idempotent_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let bob = app.user_token().await;
    let event = app.create_ga_event(50).await;
    let id = str_of(&event["id"]);
    let other = app.create_ga_event(50).await;
    let other_id = str_of(&other["id"]);

    // Sequential replay.
    let first = app.hold(&ann, id, &json!({"quantity": 2}), Some("key-seq")).await;
    assert_eq!(first.status().as_u16(), 201);
    let first = expect_json(first, 201).await;
    let replay = app.hold(&ann, id, &json!({"quantity": 2}), Some("key-seq")).await;
    let status = replay.status().as_u16();
    assert!(status == 200 || status == 201, "replay answered {status}");
    let replay = expect_json(replay, status).await;
    assert_eq!(replay["id"], first["id"], "a replay made a new booking");
    assert_eq!(replay["quantity"], 2);
    assert_eq!(app.available(id).await, 48);

    // Same key, different body (or another event): refused, nothing booked.
    let changed = app.hold(&ann, id, &json!({"quantity": 3}), Some("key-seq")).await;
    assert_problem(changed, 422, "idempotency_key_reused").await;
    let elsewhere = app.hold(&ann, other_id, &json!({"quantity": 2}), Some("key-seq")).await;
    assert_problem(elsewhere, 422, "idempotency_key_reused").await;
    assert_eq!(app.available(id).await, 48);
    assert_eq!(app.available(other_id).await, 50);

    // Keys are scoped to the user: Bob's "key-seq" is his own.
    let bobs = expect_json(app.hold(&bob, id, &json!({"quantity": 2}), Some("key-seq")).await, 201).await;
    assert_ne!(bobs["id"], first["id"]);
    assert_eq!(app.available(id).await, 46);

    // Concurrent duplicates of one request: one booking, every answer names it.
    let answers = futures::future::join_all(
        (0..8).map(|_| async { app.hold(&ann, id, &json!({"quantity": 3}), Some("key-burst")).await }),
    )
    .await;
    let mut ids = HashSet::new();
    for resp in answers {
        let status = resp.status().as_u16();
        assert!(
            status == 200 || status == 201,
            "duplicate answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        let body = expect_json(resp, status).await;
        ids.insert(str_of(&body["id"]).to_owned());
    }
    assert_eq!(ids.len(), 1, "concurrent duplicates made several bookings: {ids:?}");
    assert_eq!(app.available(id).await, 43);
    assert_eq!(app.counters(id).await, (50, 7, 7));

    // Ann holds exactly two bookings.
    let list = expect_json(app.get("/bookings", Some(&ann)).await, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");

    // The replay still answers after a cancellation: the same booking, now cancelled.
    let burst_id = ids.into_iter().next().unwrap();
    expect_json(app.cancel(&ann, &burst_id).await, 200).await;
    let late = app.hold(&ann, id, &json!({"quantity": 3}), Some("key-burst")).await;
    let status = late.status().as_u16();
    assert!(status == 200 || status == 201, "late replay answered {status}");
    let late = expect_json(late, status).await;
    assert_eq!(late["id"], burst_id.as_str());
    assert_eq!(app.available(id).await, 46, "a replay took seats again");
}

async fn booking_lists_and_access(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let bob = app.user_token().await;
    let admin = app.admin_token().await;
    let event = app.create_ga_event(20).await;
    let id = str_of(&event["id"]);

    let mut anns = Vec::new();
    for q in 1..=3 {
        let b = app.hold_ok(&ann, id, &json!({"quantity": q})).await;
        anns.push(str_of(&b["id"]).to_owned());
    }
    let bobs = app.hold_ok(&bob, id, &json!({"quantity": 1})).await;
    let bobs_id = str_of(&bobs["id"]);

    let list = expect_json(app.get("/bookings", Some(&ann)).await, 200).await;
    let listed: Vec<String> = list["items"].as_array().unwrap().iter().map(|b| str_of(&b["id"]).to_owned()).collect();
    let newest_first: Vec<String> = anns.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "own bookings, newest first");
    assert!(list["next_cursor"].is_null());
    for b in list["items"].as_array().unwrap() {
        assert_booking_shape(b);
    }

    // Paginated.
    let page1 = expect_json(
        app.client.get(app.api("/bookings")).bearer_auth(&ann).query(&[("limit", "2")]).send().await.unwrap(),
        200,
    )
    .await;
    let cursor = str_of(&page1["next_cursor"]).to_owned();
    let page2 = expect_json(
        app.client
            .get(app.api("/bookings"))
            .bearer_auth(&ann)
            .query(&[("limit", "2"), ("cursor", cursor.as_str())])
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let mut walked: Vec<String> =
        page1["items"].as_array().unwrap().iter().map(|b| str_of(&b["id"]).to_owned()).collect();
    walked.extend(page2["items"].as_array().unwrap().iter().map(|b| str_of(&b["id"]).to_owned()));
    assert_eq!(walked, newest_first);
    assert!(page2["next_cursor"].is_null(), "last page: {page2}");

    let bob_list = expect_json(app.get("/bookings", Some(&bob)).await, 200).await;
    assert_eq!(bob_list["items"].as_array().unwrap().len(), 1);
    assert_eq!(bob_list["items"][0]["id"], bobs_id);

    // Another user's booking is not found; the admin may read it.
    assert_problem(app.booking(&ann, bobs_id).await, 404, "not_found").await;
    assert_problem(app.booking(&bob, &anns[0]).await, 404, "not_found").await;
    let read = expect_json(app.booking(&admin, bobs_id).await, 200).await;
    assert_eq!(read["id"], bobs_id);
    expect_json(app.booking(&bob, bobs_id).await, 200).await;
    let nobody = uuid::Uuid::new_v4().to_string();
    assert_problem(app.booking(&ann, &nobody).await, 404, "not_found").await;
}

async fn cancel_bookings(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let bob = app.user_token().await;
    let admin = app.admin_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);

    let b = app.hold_ok(&ann, id, &json!({"quantity": 4})).await;
    let bid = str_of(&b["id"]);
    assert_eq!(app.available(id).await, 6);

    // Someone else: not found, nothing changes.
    assert_problem(app.cancel(&bob, bid).await, 404, "not_found").await;
    assert_eq!(app.available(id).await, 6);

    let cancelled = expect_json(app.cancel(&ann, bid).await, 200).await;
    assert_booking_shape(&cancelled);
    assert_eq!(cancelled["id"], bid);
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "user");
    assert_eq!(app.available(id).await, 10);
    assert_eq!(app.counters(id).await, (10, 0, 0));
    let read = expect_json(app.booking(&ann, bid).await, 200).await;
    assert_eq!(read["status"], "cancelled");

    assert_problem(app.cancel(&ann, bid).await, 409, "not_cancellable").await;

    // The admin may cancel anyone's booking.
    let other = app.hold_ok(&bob, id, &json!({"quantity": 10})).await;
    assert_problem(app.hold(&ann, id, &json!({"quantity": 1}), None).await, 409, "sold_out").await;
    let by_admin = expect_json(app.cancel(&admin, str_of(&other["id"])).await, 200).await;
    assert_eq!(by_admin["status"], "cancelled");
    assert_eq!(by_admin["cancel_reason"], "admin");
    assert_eq!(app.available(id).await, 10);
    // The freed seats can be held again.
    app.hold_ok(&ann, id, &json!({"quantity": 10})).await;
    assert_eq!(app.counters(id).await, (10, 10, 10));

    let nobody = uuid::Uuid::new_v4().to_string();
    assert_problem(app.cancel(&ann, &nobody).await, 404, "not_found").await;
}

/// The same key sent at once for two different requests (here: two events) must not make two
/// bookings: one is held, the other is `idempotency_key_reused`, as it would be one after the other.
async fn idempotency_key_reused_concurrently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let first = app.create_ga_event(100).await;
    let second = app.create_ga_event(100).await;
    let (a, b) = (str_of(&first["id"]).to_owned(), str_of(&second["id"]).to_owned());

    for round in 0..10 {
        let key = format!("race-{round}");
        let one = json!({"quantity": 1});
        let (ra, rb) = tokio::join!(app.hold(&ann, &a, &one, Some(&key)), app.hold(&ann, &b, &one, Some(&key)));
        let (sa, sb) = (ra.status().as_u16(), rb.status().as_u16());
        let (ba, bb): (Value, Value) = (ra.json().await.unwrap(), rb.json().await.unwrap());
        let mut statuses = [sa, sb];
        statuses.sort();
        assert_eq!(
            statuses,
            [201, 422],
            "round {round}: one Idempotency-Key, two different requests at once: {sa} {ba} / {sb} {bb}"
        );
        let refused = if sa == 422 { &ba } else { &bb };
        assert_eq!(refused["code"], "idempotency_key_reused", "round {round}: {refused}");
    }
    let (_, reserved_a, _) = app.counters(&a).await;
    let (_, reserved_b, _) = app.counters(&b).await;
    assert_eq!(reserved_a + reserved_b, 10, "one booking per key");
}

/// Many cancellations of one booking at once: exactly one succeeds and the seats are freed once.
async fn concurrent_cancels_release_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app.user_token().await;
    let admin = app.admin_token().await;
    let event = app.create_ga_event(10).await;
    let id = str_of(&event["id"]);
    let keep = app.hold_ok(&ann, id, &json!({"quantity": 3})).await;
    let b = app.hold_ok(&ann, id, &json!({"quantity": 4})).await;
    let bid = str_of(&b["id"]);

    let answers = futures::future::join_all((0..12).map(|i| {
        let token = if i % 3 == 0 { admin.clone() } else { ann.clone() };
        let app = &app;
        async move { app.cancel(&token, bid).await }
    }))
    .await;
    let mut ok = 0;
    for resp in answers {
        match resp.status().as_u16() {
            200 => ok += 1,
            409 => {
                assert_problem(resp, 409, "not_cancellable").await;
            }
            other => panic!("cancel answered {other}: {}", resp.text().await.unwrap_or_default()),
        }
    }
    assert_eq!(ok, 1, "one cancellation succeeds");
    assert_eq!(app.available(id).await, 7);
    assert_eq!(app.counters(id).await, (10, 3, 3));
    assert_eq!(expect_json(app.booking(&ann, str_of(&keep["id"])).await, 200).await["status"], "held");
}
