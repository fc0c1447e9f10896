//! The actor layer against a real (SQLite) store: supervision, restarts, idleness, and what a
//! failed journal write leaves behind.

use std::time::Duration;

use super::*;
use crate::domain::ids::{EventId, UserId};
use crate::domain::user::Role;
use crate::persistence::{EventRow, UserRow};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    registry: Registry,
    user: UserId,
    event: EventId,
}

async fn fixture(capacity: i64, settings: impl FnOnce(&mut EngineSettings)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/t.db", dir.path().display()), 4).await.unwrap();
    store.migrate().await.unwrap();
    let row = UserRow::new(&format!("{}@t.io", uuid::Uuid::new_v4()), "x".into(), Role::User);
    let user = row.id;
    store.insert_user(&row).await.unwrap();
    let event = EventId::new();
    store
        .insert_event(
            &EventRow {
                id: event,
                max_per_booking: capacity,
                max_per_user: capacity,
                // Ahead, so bookings may still be cancelled.
                starts_at: chrono::Utc::now() + chrono::Duration::days(1),
                ..EventRow::general_admission("t", "v", capacity, 100)
            },
            None,
        )
        .await
        .unwrap();
    let mut s = EngineSettings {
        hold_ttl: Duration::from_secs(600),
        tick: Duration::from_millis(50),
        idle_timeout: Duration::from_secs(3600),
        call_timeout: Duration::from_secs(5),
        node_id: "test".into(),
        lease: Duration::from_secs(10),
        pipeline_depth: 0,
        payment_grace: Duration::from_secs(30),
        clock: crate::clock::Clock::system(),
    };
    settings(&mut s);
    let registry = Registry::start(store.clone(), s, Duration::from_secs(1)).await.unwrap();
    Fixture { _dir: dir, store, registry, user, event }
}

fn claim(user: UserId, q: u32) -> ClaimCmd {
    ClaimCmd { user, request: ClaimRequest::Quantity(q), idempotency: None, request_id: None }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_failed_actor_is_restarted_and_rebuilds_its_inventory() {
    let f = fixture(10, |_| {}).await;
    let metrics = crate::telemetry::metrics_handle();
    f.registry.claim(f.event, claim(f.user, 3)).await.unwrap();
    let first = f.registry.actor_ref(f.event).unwrap();
    first.cast(EventMsg::Crash).unwrap();
    eventually("a new actor", || f.registry.actor_ref(f.event).is_some_and(|a| a.get_id() != first.get_id())).await;
    // The replacement loaded the durable hold: 7 left, not 10.
    assert_eq!(f.registry.snapshot(f.event).unwrap().counts.available(), 7);
    f.registry.claim(f.event, claim(f.user, 7)).await.unwrap();
    assert_eq!(f.registry.claim(f.event, claim(f.user, 1)).await.unwrap_err(), BookingError::SoldOut { available: 0 });
    assert_eq!(f.store.event_counters(f.event).await.unwrap(), (10, 10, 10));
    assert!(metrics.render().contains("boxoffice_actor_restarts_total"));
}

#[tokio::test]
async fn an_idle_actor_stops_and_starts_again_on_demand() {
    let f = fixture(5, |s| s.idle_timeout = Duration::from_millis(200)).await;
    f.registry.snapshot_started(f.event).await.unwrap();
    assert_eq!(f.registry.running_actors(), 1);
    eventually("the idle actor to stop", || f.registry.running_actors() == 0).await;
    f.registry.claim(f.event, claim(f.user, 2)).await.unwrap();
    // It holds seats now, so it stays up for their expiry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(f.registry.running_actors(), 1);
}

#[tokio::test]
async fn a_failed_write_answers_503_and_the_actor_rebuilds_from_the_store() {
    let f = fixture(5, |_| {}).await;
    f.registry.claim(f.event, claim(f.user, 1)).await.unwrap();
    // Make every booking write fail, as a broken database would.
    let other = Store::connect(&format!("sqlite://{}/t.db", f._dir.path().display()), 1).await.unwrap();
    other.execute_for_tests("ALTER TABLE bookings RENAME TO bookings_away").await;
    let err = f.registry.claim(f.event, claim(f.user, 2)).await.unwrap_err();
    assert!(matches!(err, BookingError::Unavailable(_)), "{err:?}");
    // Memory was ahead of the store, so the actor stops rather than carry on.
    eventually("the failed actor to stop", || f.registry.running_actors() == 0).await;
    other.execute_for_tests("ALTER TABLE bookings_away RENAME TO bookings").await;
    // A new actor starts from what is durable: only the first claim.
    f.registry.claim(f.event, claim(f.user, 2)).await.unwrap();
    assert_eq!(f.registry.snapshot(f.event).unwrap().counts.available(), 2);
    assert_eq!(f.store.event_counters(f.event).await.unwrap(), (5, 3, 3));
}

#[tokio::test]
async fn holds_expire_through_the_journal() {
    let f = fixture(4, |s| s.hold_ttl = Duration::from_millis(300)).await;
    f.registry.claim(f.event, claim(f.user, 4)).await.unwrap();
    assert_eq!(f.registry.snapshot(f.event).unwrap().counts.available(), 0);
    eventually("the hold to expire", || f.registry.snapshot(f.event).is_some_and(|s| s.counts.available() == 4)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while f.store.event_counters(f.event).await.unwrap() != (4, 0, 0) {
        assert!(tokio::time::Instant::now() < deadline, "expiry never reached the store");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_racing_another_on_the_same_booking_is_a_conflict_not_an_outage() {
    let f = fixture(5, |s| s.pipeline_depth = 2).await;
    let held = f.registry.claim(f.event, claim(f.user, 1)).await.unwrap();
    let until = chrono::Utc::now() + chrono::Duration::minutes(5);
    // The cancel is being written when the payment's hold arrives (both are in the mailbox).
    let (cancelled, paying) = tokio::join!(
        f.registry.cancel(held.clone(), crate::domain::booking::CancelReason::User, vec![], None),
        f.registry.hold_for_payment(f.event, held.id, until),
    );
    assert_eq!(cancelled.unwrap().status, crate::domain::booking::BookingStatus::Cancelled);
    assert_eq!(paying.unwrap_err(), BookingError::Changing);
    // Once the cancel is durable the answer is the booking's state, not the race.
    let again = f.registry.hold_for_payment(f.event, held.id, until).await.unwrap_err();
    assert_eq!(again, BookingError::NotPayable);
}

#[tokio::test]
async fn remote_availability_reaches_watchers_and_never_overrides_the_owner() {
    let f = fixture(10, |_| {}).await;
    let hub = f.registry.hub();
    let remote = crate::domain::inventory::Counts { capacity: 10, held: 3, sold: 1 };
    // Nobody watches here: nothing is kept.
    hub.receive_remote_availability(f.event, remote, None);
    assert!(hub.current(f.event).is_none());
    let row = f.store.event(f.event).await.unwrap().unwrap();
    let mut rx = hub.subscribe(&row).await.unwrap();
    assert_eq!(rx.borrow_and_update().counts.held, 0);
    hub.receive_remote_availability(f.event, remote, None);
    assert!(rx.has_changed().unwrap(), "the watcher was not woken");
    assert_eq!(rx.borrow_and_update().counts, remote);
    // Once this node owns the event, its actor is the truth.
    f.registry.claim(f.event, claim(f.user, 2)).await.unwrap();
    eventually("the owner's snapshot", || hub.current(f.event).is_some_and(|s| s.counts.held == 2)).await;
    hub.receive_remote_availability(f.event, remote, None);
    assert_eq!(hub.current(f.event).unwrap().counts.held, 2);
}
