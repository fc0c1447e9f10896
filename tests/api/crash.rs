//! The real binary killed with SIGKILL in the middle of a rush: after a restart on the same
//! database every acknowledged booking is there, the counters agree, retries with the same
//! Idempotency-Key are safe, and the event sells out to exactly its capacity.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boxoffice::domain::ids::EventId;
use boxoffice::persistence::Store;
use futures::StreamExt;
use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::process::{admin_token, create_event_on, start_binary_with, wait_healthy};

both_backends!(killed_mid_rush_loses_no_acknowledged_booking);

enum Outcome {
    Held(Uuid),
    Refused(u16, Value),
    /// No answer (the process died with the request in flight).
    Unknown,
    NotSent,
}

async fn hold(
    client: &Client,
    base: &str,
    token: &str,
    event: &str,
    quantity: u32,
    key: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let resp = client
        .post(format!("{base}/api/v1/events/{event}/bookings"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&json!({"quantity": quantity}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await?;
    Ok((status, body))
}

async fn killed_mid_rush_loses_no_acknowledged_booking(backend: Backend) {
    const CAPACITY: i64 = 300;
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();

    // One node restarted under its name takes its events back at once (a new name would wait
    // for their leases to run out).
    let mut first = start_binary_with(&db.url, dir.path(), "first", &[("NODE_ID", "crash-node")]);
    wait_healthy(&client, &mut first).await;

    // Users straight into the store (argon2 is slow in debug builds), tokens signed like the engine's.
    let store = Store::connect(&db.url, 2).await.expect("test store");
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(mint_user(&store, "crash").await.1);
    }
    let admin = admin_token(&client, &first.base).await;
    // A few accounts take the whole event here: no per-account limit gets in the way.
    let event =
        create_event_on(&client, &first.base, &admin, json!({"capacity": CAPACITY, "max_per_user": CAPACITY})).await;
    let event_id = str_of(&event["id"]).to_owned();

    // The rush: single-seat holds from four users, 16 in flight, each with its own key.
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rush = {
        let (client, base, tokens, event_id) = (client.clone(), first.base.clone(), tokens.clone(), event_id.clone());
        let (answered, stop) = (answered.clone(), stop.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..1000usize)
                .map(|i| {
                    let (client, base, token, event_id) =
                        (client.clone(), base.clone(), tokens[i % tokens.len()].clone(), event_id.clone());
                    let (answered, stop) = (answered.clone(), stop.clone());
                    async move {
                        let key = format!("crash-{i}");
                        if stop.load(Ordering::SeqCst) {
                            return (i, key, Outcome::NotSent);
                        }
                        let outcome = match hold(&client, &base, &token, &event_id, 1, &key).await {
                            Ok((201, body)) => Outcome::Held(uuid_of(&body["id"])),
                            Ok((status, body)) => Outcome::Refused(status, body),
                            Err(_) => Outcome::Unknown,
                        };
                        answered.fetch_add(1, Ordering::SeqCst);
                        (i, key, outcome)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        })
    };
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) < 150 {
        assert!(start.elapsed() < Duration::from_secs(60), "the rush did not reach 150 answers");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.child.id() as i32), nix::sys::signal::Signal::SIGKILL)
        .expect("SIGKILL");
    stop.store(true, Ordering::SeqCst);
    let _ = first.child.wait();
    let results = rush.await.unwrap();

    let mut acknowledged: Vec<(usize, String, Uuid)> = Vec::new();
    let mut unknown: Vec<(usize, String)> = Vec::new();
    for (i, key, outcome) in results {
        match outcome {
            Outcome::Held(id) => acknowledged.push((i, key, id)),
            Outcome::Refused(status, body) => panic!("before the kill, a hold answered {status}: {body}"),
            Outcome::Unknown => unknown.push((i, key)),
            Outcome::NotSent => {}
        }
    }
    assert!(acknowledged.len() >= 100, "only {} holds acknowledged before the kill", acknowledged.len());
    eprintln!("[{backend:?}] killed after {} acknowledged holds, {} in flight", acknowledged.len(), unknown.len());

    // Restart on the same database.
    let mut second = start_binary_with(&db.url, dir.path(), "second", &[("NODE_ID", "crash-node")]);
    wait_healthy(&client, &mut second).await;
    let base = second.base.clone();

    for (i, _, id) in &acknowledged {
        let resp = client
            .get(format!("{base}/api/v1/bookings/{id}"))
            .bearer_auth(&tokens[i % tokens.len()])
            .send()
            .await
            .unwrap();
        let b = expect_json(resp, 200).await;
        assert_eq!(b["status"], "held", "acknowledged booking {id} after the restart: {b}");
    }
    let eid = EventId(Uuid::parse_str(&event_id).unwrap());
    let (capacity, reserved, live) = store.event_counters(eid).await.unwrap();
    assert_eq!(reserved, live, "after the crash the counter and the bookings disagree");
    assert!(reserved <= capacity);
    assert!(live >= acknowledged.len() as i64);
    let live_ids: HashSet<Uuid> = store.live_bookings(eid).await.unwrap().into_iter().map(|b| b.id.0).collect();
    for (_, _, id) in &acknowledged {
        assert!(live_ids.contains(id), "acknowledged booking {id} lost");
    }
    // Anything else in the database came from a request whose answer was lost.
    assert!(live_ids.len() <= acknowledged.len() + unknown.len(), "bookings nobody asked for");

    // Retries with the same key are safe: acknowledged ones answer the same booking, the lost
    // answers are either replayed (if they were written) or made now.
    for (i, key, id) in acknowledged.iter().take(10) {
        let (status, body) = hold(&client, &base, &tokens[i % tokens.len()], &event_id, 1, key).await.unwrap();
        assert!(status == 200 || status == 201, "replay of {key}: {status} {body}");
        assert_eq!(uuid_of(&body["id"]), *id, "replay of {key} made a new booking");
    }
    let mut mine: HashSet<Uuid> = acknowledged.iter().map(|(_, _, id)| *id).collect();
    for (i, key) in &unknown {
        let (status, body) = hold(&client, &base, &tokens[i % tokens.len()], &event_id, 1, key).await.unwrap();
        assert!(status == 200 || status == 201, "retry of {key}: {status} {body}");
        assert!(mine.insert(uuid_of(&body["id"])), "retry of {key} answered another request's booking");
    }
    let (_, reserved, live) = store.event_counters(eid).await.unwrap();
    assert_eq!(reserved, live);
    assert_eq!(live, mine.len() as i64, "after the retries every live booking is one request's");

    // Sell out the rest: exactly the capacity, not one more.
    let mut n = 0;
    let mut quantity = 10;
    loop {
        n += 1;
        assert!(n < 200, "never sold out");
        let (status, body) =
            hold(&client, &base, &tokens[n % tokens.len()], &event_id, quantity, &format!("fill-{n}")).await.unwrap();
        match (status, quantity) {
            (201, _) => {}
            (409, 1) => {
                assert_eq!(body["code"], "sold_out");
                break;
            }
            (409, _) => {
                assert_eq!(body["code"], "sold_out");
                quantity = 1;
            }
            _ => panic!("filling up: {status} {body}"),
        }
    }
    assert_eq!(store.event_counters(eid).await.unwrap(), (CAPACITY, CAPACITY, CAPACITY));
    let ev = expect_json(client.get(format!("{base}/api/v1/events/{event_id}")).send().await.unwrap(), 200).await;
    assert_eq!(ev["available"], 0);
    store.close().await;
}
