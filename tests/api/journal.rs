//! The journal's ordering of an event's batches, at the store: a batch that may depend on the
//! previous one (a claim of seats that one frees) commits only after it, and not at all if the
//! previous one failed.

use std::time::Duration;

use boxoffice::domain::booking::BookingStatus;
use boxoffice::domain::ids::{BookingId, EventId, UserId};
use boxoffice::persistence::{BookingRow, EventRow, JournalOp, StoreError};
use chrono::Utc;
use uuid::Uuid;

use crate::helpers::*;

// PostgreSQL only: on SQLite an event never has two batches in flight (one writer; the later
// batch would hold the write lock the earlier one needs), which `Store::pipeline_depth` enforces.
postgres_only!(a_batch_commits_after_the_one_before_it);

fn claim(event: &EventRow, user: UserId) -> (BookingId, JournalOp) {
    let now = boxoffice::domain::now();
    let booking = BookingRow::held(event, user, 1, now + chrono::Duration::minutes(10), now);
    (booking.id, JournalOp::Claim { booking, idempotency: None })
}

async fn a_batch_commits_after_the_one_before_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create_ga_event(1).await;
    let eid = EventId(Uuid::parse_str(str_of(&event["id"])).unwrap());
    let user = app.mint_users(1).await.remove(0);
    let uid = UserId(user.id);
    let store = app.store().clone();
    let row = store.take_ownership(eid, "journal-test", Utc::now()).await.unwrap().unwrap();
    let epoch = row.owner_epoch;

    // The one seat is held.
    let (first, op) = claim(&row, uid);
    store.commit_batch(eid, epoch, &[op], Utc::now(), None).await.unwrap();

    // The next batch claims the seat that the batch before it frees; it is started first.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (_, op) = claim(&row, uid);
    let later = {
        let store = store.clone();
        tokio::spawn(async move { store.commit_batch(eid, epoch, &[op], Utc::now(), Some(rx)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!later.is_finished(), "the later batch must wait for the earlier one");
    let release = JournalOp::Release {
        booking_id: first,
        quantity: 1,
        was: BookingStatus::Held,
        to: BookingStatus::Cancelled,
        reason: Some(boxoffice::domain::booking::CancelReason::User),
    };
    store.commit_batch(eid, epoch, &[release], Utc::now(), None).await.unwrap();
    tx.send(true).unwrap();
    later.await.unwrap().expect("the later batch commits once the earlier one has");
    assert_eq!(store.event_counters(eid).await.unwrap(), (1, 1, 1));

    // If the earlier batch failed, the later one writes nothing.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (abandoned, op) = claim(&row, uid);
    tx.send(false).unwrap();
    let err = store.commit_batch(eid, epoch, &[op], Utc::now(), Some(rx)).await.unwrap_err();
    assert!(matches!(err, StoreError::Abandoned), "{err:?}");
    assert!(store.booking(abandoned).await.unwrap().is_none());
    assert_eq!(store.event_counters(eid).await.unwrap(), (1, 1, 1));
}
