//! Two nodes on one PostgreSQL database: a node forwards writes to the event's owner instead of
//! taking it; once the owner's lease ran out another node takes the event, and the owner epoch
//! fences the old owner's actor, so it writes nothing (answers 503) and nothing is oversold.

use std::collections::HashSet;

use boxoffice::domain::ids::EventId;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

postgres_only!(stale_owner_is_fenced);

struct Tally {
    acknowledged: HashSet<Uuid>,
}

impl Tally {
    /// Holds one seat on `app`; returns the status (201 or 503 only, or 409 sold_out if allowed).
    async fn hold(&mut self, app: &TestApp, token: &str, event: &str, allow_sold_out: bool) -> u16 {
        let resp = app.hold(token, event, &json!({"quantity": 1}), None).await;
        let status = resp.status().as_u16();
        match status {
            201 => {
                let b = expect_json(resp, 201).await;
                assert!(self.acknowledged.insert(uuid_of(&b["id"])), "booking id given twice");
            }
            503 => {
                assert!(resp.headers().get("retry-after").is_some(), "503 without Retry-After");
                assert_problem(resp, 503, "unavailable").await;
            }
            409 if allow_sold_out => {
                assert_problem(resp, 409, "sold_out").await;
            }
            other => panic!("expected 201 or 503, got {other}: {}", resp.text().await.unwrap_or_default()),
        }
        status
    }

    /// Retries until a 201 (each answer 201 or 503); a node that was fenced must recover.
    async fn hold_until_ok(&mut self, app: &TestApp, token: &str, event: &str) -> usize {
        for attempt in 1..=5 {
            if self.hold(app, token, event, false).await == 201 {
                return attempt;
            }
        }
        panic!("the node did not recover the event within 5 attempts");
    }

    async fn check(&self, app: &TestApp, event: &str) {
        let (capacity, reserved, live) = app.counters(event).await;
        assert_eq!(reserved, live, "reserved counter differs from the live bookings");
        assert!(reserved <= capacity, "oversold: {reserved} > {capacity}");
        let live_ids: HashSet<Uuid> = app
            .store()
            .live_bookings(EventId(Uuid::parse_str(event).unwrap()))
            .await
            .expect("live bookings")
            .into_iter()
            .map(|b| b.id.0)
            .collect();
        let lost: Vec<&Uuid> = self.acknowledged.difference(&live_ids).collect();
        assert!(lost.is_empty(), "acknowledged bookings missing from the database: {lost:?}");
    }
}

/// Two nodes that share a cluster secret and a long lease (no renewal during the test).
async fn pair(db: &std::sync::Arc<TestDb>) -> (TestApp, TestApp) {
    let node = |name: &'static str| {
        move |c: &mut boxoffice::config::Config| {
            c.node_id = Some(name.into());
            c.cluster_secret = Some("fencing-test-cluster-secret".into());
            c.event_lease_secs = 60;
        }
    };
    let a = TestApp::spawn_on(db.clone(), node("node-a")).await;
    let b = TestApp::spawn_on(db.clone(), node("node-b")).await;
    (a, b)
}

async fn stale_owner_is_fenced(backend: Backend) {
    let db = TestDb::create(backend).await;
    let (a, b) = pair(&db).await;
    let pool = db.pool().await;
    let users = a.mint_users(4).await;
    let t = |i: usize| users[i % users.len()].token.clone();
    let event = a.create_ga_event(30).await;
    let id = str_of(&event["id"]).to_owned();
    let mut tally = Tally { acknowledged: HashSet::new() };

    // A takes the event; B forwards its writes to A instead of taking it.
    assert_eq!(tally.hold(&a, &t(0), &id, false).await, 201, "first hold on A");
    let epoch = a.store().event(EventId(Uuid::parse_str(&id).unwrap())).await.unwrap().unwrap().owner_epoch;
    assert_eq!(tally.hold(&b, &t(1), &id, false).await, 201, "a hold on B is forwarded to A");
    let eid = EventId(Uuid::parse_str(&id).unwrap());
    assert_eq!(a.store().event(eid).await.unwrap().unwrap().owner_epoch, epoch, "B must not take the event");
    tally.check(&a, &id).await;

    // A's lease runs out (as if A had paused): B takes the event over at its next write.
    pool.execute(&format!(
        "UPDATE event_leases SET lease_until = lease_until - INTERVAL '1 hour' WHERE event_id = '{id}'"
    ))
    .await;
    // (B may route by the lease holder it read a moment ago: until then its holds still go to A.)
    let start = std::time::Instant::now();
    while a.store().event(eid).await.unwrap().unwrap().owner_epoch == epoch {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "B never took over the expired lease");
        assert_eq!(tally.hold(&b, &t(2), &id, false).await, 201, "a hold on B while A's lease ran out");
        // Paced: each hold here takes a seat, and a tight loop on a slow machine could use up
        // the account's max_per_user before B's memo of the holder expires.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(a.store().event(eid).await.unwrap().unwrap().owner_epoch, epoch + 1);

    // A's actor still believes it owns the event: its batch is fenced and nothing is written.
    let before = a.counters(&id).await.1;
    assert_eq!(tally.hold(&a, &t(3), &id, false).await, 503, "a stale owner must be fenced");
    assert_eq!(a.counters(&id).await.1, before);
    tally.check(&a, &id).await;

    // A's actor stopped; A now forwards to B, the owner.
    tally.hold_until_ok(&a, &t(3), &id).await;
    assert_eq!(a.store().event(eid).await.unwrap().unwrap().owner_epoch, epoch + 1, "A must not take it back");

    // Both nodes at once, until sold out: every answer is 201 or sold_out, and the database
    // never holds more than the capacity.
    for _round in 0..4 {
        let answers = futures::future::join_all((0..24).map(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            let token = t(i);
            let id = id.clone();
            async move {
                let resp = node.hold(&token, &id, &json!({"quantity": 1}), None).await;
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.expect("JSON body");
                (status, body)
            }
        }))
        .await;
        for (status, body) in answers {
            match status {
                201 => assert!(tally.acknowledged.insert(uuid_of(&body["id"])), "booking id given twice"),
                409 => assert_eq!(body["code"], "sold_out", "{body}"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        tally.check(&a, &id).await;
    }
    let (capacity, reserved, _) = a.counters(&id).await;
    assert_eq!(reserved, capacity, "sold out");
    assert_eq!(tally.acknowledged.len() as i64, reserved, "every seat is one acknowledged hold");
    pool.close().await;
}
