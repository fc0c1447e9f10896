//! Hot on-sales: thousands of concurrent claims on one event never oversell and never give one
//! seat to two bookings.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

both_backends!(general_admission_rush, seated_rush, seats_freed_and_claimed_back_to_back);

const USERS: usize = 100;

/// Fires every request at once (up to `concurrency` in flight) and returns
/// (request body, status, response body).
async fn fire(
    app: &TestApp,
    requests: Vec<(String, Value)>,
    event_id: &str,
    concurrency: usize,
) -> Vec<(Value, u16, Value)> {
    futures::stream::iter(requests)
        .map(|(token, body)| async move {
            let resp = app.hold(&token, event_id, &body, None).await;
            let status = resp.status().as_u16();
            let text = resp.text().await.expect("body");
            let json: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("status {status}, body not JSON: {text}"));
            (body, status, json)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

async fn general_admission_rush(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let users = app.mint_users(USERS).await;
    let event = app.create_ga_event(500).await;
    let id = str_of(&event["id"]).to_owned();

    let requests: Vec<(String, Value)> =
        (0..2000).map(|i| (users[i % USERS].token.clone(), json!({"quantity": 1}))).collect();
    let started = std::time::Instant::now();
    let answers = fire(&app, requests, &id, 2000).await;
    eprintln!("[{backend:?}] 2000 concurrent GA holds answered in {:?}", started.elapsed());

    let mut ids = HashSet::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for (_, status, body) in &answers {
        *statuses.entry(*status).or_default() += 1;
        match status {
            201 => {
                assert_eq!(body["status"], "held", "{body}");
                assert_eq!(body["quantity"], 1, "{body}");
                assert!(ids.insert(str_of(&body["id"]).to_owned()), "booking id given twice: {body}");
            }
            409 => assert_eq!(body["code"], "sold_out", "{body}"),
            _ => {}
        }
    }
    assert_eq!(statuses.get(&201).copied().unwrap_or(0), 500, "statuses: {statuses:?}");
    assert_eq!(statuses.get(&409).copied().unwrap_or(0), 1500, "statuses: {statuses:?}");
    assert_eq!(statuses.len(), 2, "only 201 and 409 expected: {statuses:?}");
    assert_eq!(ids.len(), 500);

    assert_eq!(app.counters(&id).await, (500, 500, 500));
    assert_eq!(app.available(&id).await, 0);
    let pool = app.db.pool().await;
    let rows = pool.bookings_of_event(Uuid::parse_str(&id).unwrap()).await;
    let live: HashSet<String> = rows.iter().filter(|(_, s, _)| s == "held").map(|(b, _, _)| b.to_string()).collect();
    assert_eq!(rows.len(), 500, "bookings in the database besides the 201s");
    assert_eq!(live, ids, "the live bookings are exactly the acknowledged ones");
    pool.close().await;
}

async fn seated_rush(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let users = app.mint_users(USERS).await;
    let (rows, per_row) = (10u32, 20u32);
    let event = app.create_seated_event(rows, per_row).await;
    let id = str_of(&event["id"]).to_owned();
    assert_eq!(event["capacity"], 200);

    let all_seats: Vec<String> =
        (0..rows).flat_map(|r| (1..=per_row).map(move |n| format!("Stalls-{}-{n}", row_label(r)))).collect();
    let mut rng = rand::rng();
    let requests: Vec<(String, Value)> = (0..1000)
        .map(|i| {
            let pair: Vec<&String> = all_seats.choose_multiple(&mut rng, 2).collect();
            (users[i % USERS].token.clone(), json!({"seats": pair}))
        })
        .collect();
    let started = std::time::Instant::now();
    let answers = fire(&app, requests, &id, 1000).await;
    eprintln!("[{backend:?}] 1000 concurrent seated holds answered in {:?}", started.elapsed());

    let mut seat_owner: HashMap<String, String> = HashMap::new();
    let mut quantity_sum = 0;
    let mut ok = 0;
    for (asked, status, body) in &answers {
        match status {
            201 => {
                ok += 1;
                assert_eq!(body["status"], "held");
                let seats: Vec<String> =
                    body["seats"].as_array().unwrap().iter().map(|s| str_of(s).to_owned()).collect();
                assert_eq!(seats.len(), 2, "{body}");
                let mut wanted: Vec<String> =
                    asked["seats"].as_array().unwrap().iter().map(|s| str_of(s).to_owned()).collect();
                let mut got = seats.clone();
                wanted.sort();
                got.sort();
                assert_eq!(got, wanted, "the booking holds other seats than asked");
                assert_eq!(body["quantity"], 2);
                quantity_sum += 2;
                for s in seats {
                    if let Some(prev) = seat_owner.insert(s.clone(), str_of(&body["id"]).to_owned()) {
                        panic!("seat {s} given to bookings {prev} and {}", body["id"]);
                    }
                }
            }
            409 => {
                assert_eq!(body["code"], "seats_unavailable", "{body}");
                let taken =
                    body["unavailable_seats"].as_array().unwrap_or_else(|| panic!("no unavailable_seats: {body}"));
                assert!(!taken.is_empty(), "{body}");
                for t in taken {
                    assert!(
                        asked["seats"].as_array().unwrap().contains(t),
                        "unavailable seat {t} was not asked for: {body}"
                    );
                }
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(ok > 0, "no hold succeeded");
    assert_eq!(seat_owner.len() as i64, quantity_sum, "distinct seats across the 201s");

    let (capacity, reserved, live) = app.counters(&id).await;
    assert_eq!(capacity, 200);
    assert_eq!(reserved, quantity_sum, "reserved differs from the acknowledged seats");
    assert_eq!(live, quantity_sum, "live bookings differ from the acknowledged seats");

    // The database's seat rows are exactly the acknowledged seats, each in its booking.
    let pool = app.db.pool().await;
    let seat_rows = pool.booking_seats(Uuid::parse_str(&id).unwrap()).await;
    assert_eq!(seat_rows.len(), seat_owner.len());
    let distinct: HashSet<&String> = seat_rows.iter().map(|(s, _)| s).collect();
    assert_eq!(distinct.len(), seat_rows.len(), "a seat is in two booking_seats rows");
    for (seat, booking) in &seat_rows {
        assert_eq!(
            seat_owner.get(seat),
            Some(&booking.to_string()),
            "seat {seat} belongs to an unacknowledged booking"
        );
    }
    pool.close().await;

    // And the public seat map shows the same seats as held.
    let map = expect_json(app.get(&format!("/events/{id}/seats"), None).await, 200).await;
    let mut held = HashSet::new();
    for row in map["sections"][0]["rows"].as_array().unwrap() {
        for s in row["seats"].as_array().unwrap() {
            if s["status"] == "held" {
                held.insert(str_of(&s["id"]).to_owned());
            }
        }
    }
    assert_eq!(held, seat_owner.keys().cloned().collect::<HashSet<_>>());
    assert_eq!(app.available(&id).await, 200 - quantity_sum);
}

/// A sold-out event where seats come back and are taken again at once: the release and the
/// claim go to the journal in consecutive batches, which on PostgreSQL are written concurrently.
/// The claim's batch must commit after the release's, never be refused by the counter, and
/// nothing may answer 503.
async fn seats_freed_and_claimed_back_to_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create_ga_event(5).await;
    let id = str_of(&event["id"]).to_owned();
    let users = app.mint_users(2).await;
    // Two users take turns: each round frees the other's oldest seat and claims one at once.
    let tokens = [users[0].token.clone(), users[1].token.clone()];
    let mut held: std::collections::VecDeque<(usize, String)> = std::collections::VecDeque::new();
    for _ in 0..5 {
        held.push_back((0, str_of(&app.hold_ok(&tokens[0], &id, &json!({"quantity": 1})).await["id"]).to_owned()));
    }
    for round in 0..40 {
        let (holder, victim) = held.pop_front().unwrap();
        let claimer = 1 - holder;
        let one = json!({"quantity": 1});
        let (cancel, hold) =
            tokio::join!(app.cancel(&tokens[holder], &victim), app.hold(&tokens[claimer], &id, &one, None));
        assert_eq!(cancel.status().as_u16(), 200, "round {round}: cancel");
        match hold.status().as_u16() {
            201 => held.push_back((claimer, str_of(&hold.json::<Value>().await.unwrap()["id"]).to_owned())),
            409 => {
                assert_problem(hold, 409, "sold_out").await;
                // The seat came back after the claim was refused: take it now.
                let b = app.hold_ok(&tokens[claimer], &id, &json!({"quantity": 1})).await;
                held.push_back((claimer, str_of(&b["id"]).to_owned()));
            }
            other => panic!("round {round}: hold answered {other}: {}", hold.text().await.unwrap_or_default()),
        }
    }
    assert_eq!(app.counters(&id).await, (5, 5, 5));
    assert_eq!(app.available(&id).await, 0);
}
