//! The outbox relay and out-of-order commits (PostgreSQL): an outbox row whose transaction
//! commits after a row with a higher id was already relayed is still delivered, in process
//! and through RabbitMQ.

use std::time::Duration;

use boxoffice::domain::ids::{BookingId, EventId, PaymentId, UserId};
use boxoffice::domain::stream::{DomainEvent, EventData};
use serde_json::json;

use crate::helpers::*;

postgres_only!(
    a_late_commit_is_relayed_in_process,
    a_late_commit_is_relayed_through_the_broker,
    a_row_of_the_older_version_is_still_delivered
);

const WAIT: Duration = Duration::from_secs(20);

async fn a_late_commit_is_relayed_in_process(backend: Backend) {
    late_commit_is_relayed(TestApp::spawn(backend).await).await
}

async fn a_late_commit_is_relayed_through_the_broker(backend: Backend) {
    late_commit_is_relayed(TestApp::spawn_with(backend, use_broker).await).await
}

async fn late_commit_is_relayed(app: TestApp) {
    let event = app.create_ga_event(10).await;
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, str_of(&event["id"]), &json!({"quantity": 1})).await;
    let booking_id = str_of(&booking["id"]).to_owned();

    // A slow transaction: it takes an outbox id first and commits last.
    let DbPool::Pg(pool) = app.db.pool().await else { panic!("postgres only") };
    let mut slow = pool.begin().await.expect("begin");
    let failed = DomainEvent::new(
        boxoffice::domain::now(),
        EventId(uuid_of(&event["id"])),
        Some(BookingId(uuid_of(&booking["id"]))),
        EventData::PaymentFailed {
            payment_id: PaymentId::new(),
            user_id: UserId(user.id),
            reason: "held back by a slow transaction".into(),
        },
    );
    let (low,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (topic, payload, request_id, created_at) VALUES ($1, $2, NULL, now()) RETURNING id",
    )
    .bind(failed.kind().as_str())
    .bind(serde_json::to_string(&failed).unwrap())
    .fetch_one(&mut *slow)
    .await
    .expect("insert the slow outbox row");

    // Meanwhile a higher id commits and is relayed: its e-mail arrives.
    expect_json(app.cancel(&user.token, &booking_id).await, 200).await;
    let (high,): (i64,) = sqlx::query_as("SELECT MAX(id) FROM outbox").fetch_one(&pool).await.expect("max id");
    assert!(high > low, "the cancellation's row {high} should come after the held row {low}");
    let mail = app.mail_dir.path().to_owned();
    eventually(WAIT, &format!("the e-mail of outbox row {high}"), || async {
        mail.join(format!("outbox-{high}.eml")).exists().then_some(())
    })
    .await;

    // The slow transaction commits: its row is relayed too.
    slow.commit().await.expect("commit the slow transaction");
    let raw = eventually(WAIT, &format!("the e-mail of the late outbox row {low}"), || async {
        std::fs::read_to_string(mail.join(format!("outbox-{low}.eml"))).ok()
    })
    .await;
    assert!(raw.contains("held back by a slow transaction"), "the late row's e-mail: {raw}");
    pool.close().await;
}

/// A row written before the typed stream (topic + loose JSON) is upgraded when read: its
/// e-mail goes out, and the message carries a typed domain event with a stable id.
async fn a_row_of_the_older_version_is_still_delivered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create_ga_event(10).await;
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, str_of(&event["id"]), &json!({"quantity": 2})).await;
    let DbPool::Pg(pool) = app.db.pool().await else { panic!("postgres only") };
    // Exactly what the older producers wrote for an admin's cancellation.
    let payload = json!({"booking_id": booking["id"], "event_id": event["id"], "user_id": user.id,
        "reason": "admin", "refund": false})
    .to_string();
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (topic, payload, request_id, created_at) \
         VALUES ('booking.cancelled', $1, 'req-old', now()) RETURNING id",
    )
    .bind(&payload)
    .fetch_one(&pool)
    .await
    .expect("insert an old-format row");
    let mail = app.mail_dir.path().to_owned();
    let raw = eventually(WAIT, &format!("the e-mail of the old row {id}"), || async {
        std::fs::read_to_string(mail.join(format!("outbox-{id}.eml"))).ok()
    })
    .await;
    assert!(raw.contains("Reason: admin"), "the old row's reason: {raw}");
    let row = boxoffice::persistence::OutboxRow {
        id,
        topic: "booking.cancelled".into(),
        payload,
        request_id: Some("req-old".into()),
        created_at: boxoffice::domain::now(),
    };
    let upgraded = app.store().outbox_event(&row).await.unwrap().expect("readable");
    assert_eq!(upgraded.id, boxoffice::domain::stream::legacy::id_of_row(id));
    assert_eq!(upgraded.request_id.as_deref(), Some("req-old"));
    assert!(matches!(upgraded.data, EventData::BookingCancelled { quantity: 2, .. }), "{upgraded:?}");
    pool.close().await;
}
