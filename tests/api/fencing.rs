//! Two nodes on one PostgreSQL database: the owner epoch fences a stale event actor, so a node
//! that lost the event writes nothing (answers 503) and nothing is oversold.

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

async fn stale_owner_is_fenced(backend: Backend) {
    let db = TestDb::create(backend).await;
    let a = TestApp::spawn_on(db.clone(), |c| c.node_id = Some("node-a".into())).await;
    let b = TestApp::spawn_on(db.clone(), |c| c.node_id = Some("node-b".into())).await;
    let users = a.mint_users(4).await;
    let t = |i: usize| users[i % users.len()].token.clone();
    let event = a.create_ga_event(30).await;
    let id = str_of(&event["id"]).to_owned();
    let mut tally = Tally { acknowledged: HashSet::new() };

    // A's actor takes the event (epoch n); B's then takes it over (epoch n + 1).
    assert_eq!(tally.hold(&a, &t(0), &id, false).await, 201, "first hold on A");
    assert_eq!(tally.hold(&b, &t(1), &id, false).await, 201, "first hold on B");
    tally.check(&a, &id).await;

    // A still believes it owns the event: its batch is fenced and nothing is written.
    assert_eq!(tally.hold(&a, &t(2), &id, false).await, 503, "a stale owner must be fenced");
    tally.check(&a, &id).await;
    assert_eq!(a.counters(&id).await.1, 2);

    // A restarts its actor, takes the event back, and B is the stale one now.
    tally.hold_until_ok(&a, &t(3), &id).await;
    assert_eq!(tally.hold(&b, &t(0), &id, false).await, 503, "B lost the event to A");
    tally.hold_until_ok(&b, &t(1), &id).await;
    tally.check(&a, &id).await;

    // Both nodes at once, until sold out: every answer is 201, 503 or sold_out, and the
    // database never holds more than the capacity.
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
                503 => assert_eq!(body["code"], "unavailable"),
                409 => assert_eq!(body["code"], "sold_out", "{body}"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        tally.check(&a, &id).await;
    }
    let (capacity, reserved, _) = a.counters(&id).await;
    assert!(tally.acknowledged.len() as i64 <= reserved && reserved <= capacity);
}
