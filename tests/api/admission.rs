//! Admission and refunds: a ticket admits only at its own event's door, once, and a booking
//! whose ticket was used (or whose event started) can no longer be cancelled and refunded,
//! even when the scan and the cancellation arrive at the same moment.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const SAGA: Duration = Duration::from_secs(30);

/// A confirmed booking of one seat of `event_id` for a new user: (user, booking id, ticket code,
/// payment id).
async fn bought(app: &TestApp, event_id: &str) -> (TestUser, String, String, String) {
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, event_id, &json!({"quantity": 1})).await;
    let booking_id = str_of(&booking["id"]).to_owned();
    let payment = app.pay_ok(&user.token, &booking_id, "tok_ok").await;
    let confirmed = app.booking_becomes(&user.token, &booking_id, "confirmed", SAGA).await;
    let code = str_of(&confirmed["ticket_code"]).to_owned();
    (user, booking_id, code, str_of(&payment["id"]).to_owned())
}

async fn a_ticket_admits_once_at_its_own_door_and_is_then_not_refundable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let concert = str_of(&app.create_ga_event(5).await["id"]).to_owned();
    let opera = str_of(&app.create_ga_event(5).await["id"]).to_owned();
    let (user, booking_id, code, payment_id) = bought(&app, &concert).await;

    // The concert's ticket at the opera's door: refused, and not used up.
    let wrong = assert_problem(app.check_in(&admin, &opera, &code).await, 409, "wrong_event").await;
    assert_eq!(wrong["ticket_event_id"], concert.as_str(), "{wrong}");
    let b = expect_json(app.booking(&user.token, &booking_id).await, 200).await;
    assert!(b["checked_in_at"].is_null(), "a refused scan used the ticket: {b}");

    // Only admins scan; an unknown code is refused at the door (409), an unknown door is 404;
    // the old door-less route is gone.
    assert_problem(app.check_in(&user.token, &concert, &code).await, 403, "forbidden").await;
    assert_problem(app.check_in(&admin, &concert, "NOPE-NOPE").await, 409, "unknown_ticket").await;
    assert_problem(app.check_in(&admin, &uuid::Uuid::new_v4().to_string(), &code).await, 404, "not_found").await;
    assert_problem(app.post("/tickets/check-in", Some(&admin), &json!({"code": code})).await, 404, "not_found").await;

    // At its own door it admits, once (the code as scanned: lower case and blanks are fine).
    let admitted =
        expect_json(app.check_in(&admin, &concert, &format!("  {}  ", code.to_lowercase())).await, 200).await;
    assert_eq!(admitted["booking_id"], booking_id.as_str());
    assert_eq!(admitted["event_id"], concert.as_str());
    let again = assert_problem(app.check_in(&admin, &concert, &code).await, 409, "already_checked_in").await;
    assert_eq!(again["checked_in_at"], admitted["checked_in_at"], "{again}");

    // Inside now: neither its owner nor an admin can cancel it for a refund.
    let refused = assert_problem(app.cancel(&user.token, &booking_id).await, 409, "already_checked_in").await;
    assert!(str_of(&refused["detail"]).contains("cannot be cancelled"), "{refused}");
    assert_problem(app.cancel(&admin, &booking_id).await, 409, "already_checked_in").await;
    let b = expect_json(app.booking(&user.token, &booking_id).await, 200).await;
    assert_eq!(b["status"], "confirmed", "{b}");
    assert_eq!(b["checked_in_at"], admitted["checked_in_at"], "{b}");
    assert_eq!(app.available(&concert).await, 4, "the seat did not go back on sale");
    assert_eq!(app.counters(&concert).await, (5, 1, 1));
    assert_eq!(app.payment(&user.token, &payment_id).await["status"], "succeeded", "no refund");
}

async fn nothing_is_cancelled_once_the_event_started(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let event = str_of(&app.create_ga_event(5).await["id"]).to_owned();
    let (user, booking_id, _, payment_id) = bought(&app, &event).await;
    let held = app.hold_ok(&user.token, &event, &json!({"quantity": 1})).await;
    let held_id = str_of(&held["id"]);

    // The doors opened a minute ago.
    let started = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    expect_json(app.patch(&format!("/events/{event}"), Some(&admin), &json!({"starts_at": started})).await, 200).await;
    for (token, id) in [(&user.token, booking_id.as_str()), (&admin, booking_id.as_str()), (&user.token, held_id)] {
        let p = assert_problem(app.cancel(token, id).await, 409, "event_started").await;
        assert!(p["starts_at"].is_string(), "{p}");
    }
    assert_eq!(expect_json(app.booking(&user.token, &booking_id).await, 200).await["status"], "confirmed");
    assert_eq!(app.payment(&user.token, &payment_id).await["status"], "succeeded", "no refund");
    assert_eq!(app.available(&event).await, 3);
}

/// A scan and a cancellation of the same ticket at the same moment: exactly one wins. Either
/// the holder is admitted and the booking stays bought, or it is cancelled (and refunded) and
/// the ticket no longer admits; never both.
async fn a_scan_and_a_cancellation_at_once_never_both_succeed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let event = str_of(&app.create_ga_event(10).await["id"]).to_owned();
    let tickets = futures::future::join_all((0..6).map(|_| bought(&app, &event))).await;

    let races = tickets.iter().map(|(user, booking_id, code, _)| {
        let (app, admin, event) = (&app, &admin, &event);
        async move {
            let (scan, cancel) = tokio::join!(app.check_in(admin, event, code), app.cancel(&user.token, booking_id));
            (scan.status().as_u16(), cancel.status().as_u16())
        }
    });
    let outcomes = futures::future::join_all(races).await;
    let mut admitted = 0;
    for ((user, booking_id, _, payment_id), (scan, cancel)) in tickets.iter().zip(&outcomes) {
        let b = expect_json(app.booking(&user.token, booking_id).await, 200).await;
        match (scan, cancel) {
            (200, 409) => {
                admitted += 1;
                assert_eq!(b["status"], "confirmed", "{b}");
                assert_eq!(app.payment(&user.token, payment_id).await["status"], "succeeded");
            }
            (409, 200) => {
                assert_eq!(b["status"], "cancelled", "{b}");
                assert!(b["checked_in_at"].is_null(), "{b}");
                app.payment_becomes(&user.token, payment_id, "refunded", SAGA).await;
            }
            other => panic!("scan and cancel of booking {booking_id} answered {other:?}: {b}"),
        }
    }
    let (capacity, reserved, live) = app.counters(&event).await;
    assert_eq!((capacity, reserved, live), (10, admitted, admitted), "seats of the admitted stay sold");
}

both_backends!(
    a_ticket_admits_once_at_its_own_door_and_is_then_not_refundable,
    nothing_is_cancelled_once_the_event_started,
    a_scan_and_a_cancellation_at_once_never_both_succeed,
);
