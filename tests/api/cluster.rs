//! Several engine processes on one PostgreSQL database behaving as one service: reads on any
//! node never take an event, writes reach the event's owner (forwarded once if sent elsewhere),
//! idempotent retries answer the same booking on any node, and when the owner dies (SIGKILL)
//! or pauses past its lease (SIGSTOP) another node serves the event within about a lease, the
//! paused owner's late writes are fenced, and nothing is oversold or lost. With Redis, a
//! stream on one node hears of a hold or a cancellation on another at once.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use boxoffice::domain::ids::EventId;
use boxoffice::persistence::Store;
use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::process::{Server, start_binary_with, wait_healthy};

postgres_only!(
    reads_on_another_node_never_take_the_event,
    writes_sent_to_another_node_are_forwarded_to_the_owner,
    killed_owner_is_replaced_within_a_lease,
    paused_owner_is_fenced_when_it_wakes,
    streams_on_another_node_hear_the_owner_at_once_over_redis,
);

const SECRET: &str = "cluster-test-secret-0123456789abcdef";
const LEASE_SECS: u64 = 2;

/// One node of the cluster, as a real process.
async fn node(client: &Client, db: &TestDb, dir: &Path, name: &str) -> Server {
    node_with(client, db, dir, name, &[]).await
}

/// A node with `extra` settings (these replace the defaults of the same name).
async fn node_with(client: &Client, db: &TestDb, dir: &Path, name: &str, extra: &[(&str, &str)]) -> Server {
    let lease = LEASE_SECS.to_string();
    let mut env: Vec<(&str, &str)> = [
        ("NODE_ID", name),
        ("CLUSTER_SECRET", SECRET),
        ("EVENT_LEASE_SECS", lease.as_str()),
        ("FORWARD_TIMEOUT_MS", "1000"),
        ("SNAPSHOT_REFRESH_MS", "200"),
        ("RUST_LOG", "warn,boxoffice=info"),
    ]
    .into_iter()
    .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
    .collect();
    env.extend_from_slice(extra);
    let mut server = start_binary_with(&db.url, dir, name, &env);
    wait_healthy(client, &mut server).await;
    server
}

struct Fixture {
    client: Client,
    store: Store,
    admin: String,
    tokens: Vec<String>,
}

impl Fixture {
    async fn new(db: &TestDb, users: usize) -> Self {
        let store = Store::connect(&db.url, 2).await.expect("test store");
        let mut tokens = Vec::new();
        for _ in 0..users {
            tokens.push(mint_user(&store, "cluster").await.1);
        }
        let admin = admin_token_of(&store).await;
        Self { client: http_client(), store, admin, tokens }
    }

    async fn create_event(&self, base: &str, extra: Value) -> String {
        let resp = self.client.post(format!("{base}{API}/events")).bearer_auth(&self.admin).json(&event_body(extra));
        let body = expect_json(resp.send().await.unwrap(), 201).await;
        str_of(&body["id"]).to_owned()
    }

    async fn hold(&self, base: &str, user: usize, event: &str, body: Value, key: Option<&str>) -> (u16, Value, bool) {
        let mut req = self
            .client
            .post(format!("{base}{API}/events/{event}/bookings"))
            .bearer_auth(&self.tokens[user % self.tokens.len()])
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry_after = resp.headers().contains_key("retry-after");
        (status, resp.json().await.unwrap_or(Value::Null), retry_after)
    }

    async fn epoch(&self, event: &str) -> i64 {
        self.store.event(event_id(event)).await.unwrap().expect("event").owner_epoch
    }

    async fn owner(&self, event: &str) -> Option<String> {
        self.store.lease_holder(event_id(event)).await.unwrap().map(|h| h.node)
    }

    /// Every acknowledged booking is live, the counter agrees with the bookings, nothing is
    /// oversold.
    async fn check(&self, event: &str, acknowledged: &HashSet<Uuid>) {
        let id = event_id(event);
        let (capacity, reserved, live) = self.store.event_counters(id).await.unwrap();
        assert_eq!(reserved, live, "reserved counter differs from the live bookings");
        assert!(reserved <= capacity, "oversold: {reserved} > {capacity}");
        let live: HashSet<Uuid> = self.store.live_bookings(id).await.unwrap().into_iter().map(|b| b.id.0).collect();
        let lost: Vec<&Uuid> = acknowledged.difference(&live).collect();
        assert!(lost.is_empty(), "acknowledged bookings missing: {lost:?}");
    }
}

fn event_id(s: &str) -> EventId {
    EventId(Uuid::parse_str(s).unwrap())
}

fn signal(server: &Server, sig: Signal) {
    kill(Pid::from_raw(server.child.id() as i32), sig).expect("signal the node");
}

/// Reads the first server-sent event's data of an SSE body that satisfies `want`.
async fn stream_until(mut resp: reqwest::Response, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no matching server-sent event within {within:?}; got {buf}"))
            .expect("stream chunk")
            .expect("the stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                let v: Value = serde_json::from_str(data.trim()).expect("JSON data");
                if want(&v) {
                    return v;
                }
            }
        }
    }
}

async fn reads_on_another_node_never_take_the_event(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // The first node migrates the database and makes the admin.
    let a = node(&http_client(), &db, dir.path(), "node-a").await;
    let b = node(&http_client(), &db, dir.path(), "node-b").await;
    let f = Fixture::new(&db, 4).await;
    let event = f.create_event(&a.base, json!({"seat_map": seat_map(4, 10), "max_per_user": 40})).await;

    let (status, first, _) = f.hold(&a.base, 0, &event, json!({"seats": ["Stalls-A-1"]}), None).await;
    assert_eq!(status, 201, "{first}");
    let epoch = f.epoch(&event).await;
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-a"));

    // A stream on B, opened before the sale goes on.
    let stream = f.client.get(format!("{}{API}/events/{event}/stream", b.base)).send().await.unwrap();
    assert_eq!(stream.status(), 200);

    // Claims on A while B serves details, seat maps and streams of the same event.
    let reads = async {
        for _ in 0..30 {
            let detail = f.client.get(format!("{}{API}/events/{event}", b.base)).send().await.unwrap();
            assert_eq!(detail.status(), 200);
            let seats = f.client.get(format!("{}{API}/events/{event}/seats", b.base)).send().await.unwrap();
            assert_eq!(seats.status(), 200);
            let s = f.client.get(format!("{}{API}/events/{event}/stream", b.base)).send().await.unwrap();
            assert_eq!(s.status(), 200);
            drop(s);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let claims = async {
        let mut acknowledged = HashSet::from([uuid_of(&first["id"])]);
        for i in 0..20 {
            let seat = format!("Stalls-{}-{}", row_label(1 + i / 10), i % 10 + 1);
            let (status, body, _) = f.hold(&a.base, i as usize, &event, json!({"seats": [seat]}), None).await;
            assert_eq!(status, 201, "a claim on the owner failed while B was read: {body}");
            acknowledged.insert(uuid_of(&body["id"]));
        }
        acknowledged
    };
    let ((), acknowledged) = tokio::join!(reads, claims);
    assert_eq!(f.epoch(&event).await, epoch, "a read on B took the event");
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-a"));
    f.check(&event, &acknowledged).await;

    // B's readers see A's holds: the stream (refreshed from the store), the seat map, the detail.
    let seen = stream_until(stream, Duration::from_secs(10), |v| v["held"] == 21).await;
    assert_eq!(seen["available"], 19);
    let seats =
        expect_json(f.client.get(format!("{}{API}/events/{event}/seats", b.base)).send().await.unwrap(), 200).await;
    let held = seats["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap().iter())
        .filter(|s| s["status"] == "held")
        .count();
    assert_eq!(held, 21, "B's seat map shows A's holds");
    let detail = expect_json(f.client.get(format!("{}{API}/events/{event}", b.base)).send().await.unwrap(), 200).await;
    assert_eq!(detail["available"], 19);
    assert_eq!(f.epoch(&event).await, epoch);
    f.store.close().await;
}

async fn writes_sent_to_another_node_are_forwarded_to_the_owner(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // The first node migrates the database and makes the admin.
    let a = node(&http_client(), &db, dir.path(), "node-a").await;
    let b = node(&http_client(), &db, dir.path(), "node-b").await;
    let f = Fixture::new(&db, 2).await;
    let event = f.create_event(&a.base, json!({"capacity": 50})).await;

    let (status, _, _) = f.hold(&a.base, 0, &event, json!({"quantity": 1}), None).await;
    assert_eq!(status, 201);
    let epoch = f.epoch(&event).await;

    // Sent to B, served by A: B never takes the event.
    let (status, made, _) = f.hold(&b.base, 1, &event, json!({"quantity": 2}), Some("k-1")).await;
    assert_eq!(status, 201, "forwarded claim: {made}");
    assert_eq!(f.epoch(&event).await, epoch, "the forward took the event");
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-a"));

    // Retries with the same key answer the same booking on either node.
    for base in [&a.base, &b.base, &b.base] {
        let (status, again, _) = f.hold(base, 1, &event, json!({"quantity": 2}), Some("k-1")).await;
        assert_eq!(status, 200, "replay on {base}: {again}");
        assert_eq!(again["id"], made["id"]);
    }
    // The same key with another request is refused wherever it is sent.
    let (status, other, _) = f.hold(&b.base, 1, &event, json!({"quantity": 3}), Some("k-1")).await;
    assert_eq!(status, 422, "{other}");
    assert_eq!(other["code"], "idempotency_key_reused");

    // A write named by its booking (no event in the URL) is forwarded too.
    let cancelled = f
        .client
        .post(format!("{}{API}/bookings/{}/cancel", b.base, str_of(&made["id"])))
        .bearer_auth(&f.tokens[1])
        .send()
        .await
        .unwrap();
    let cancelled = expect_json(cancelled, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(f.epoch(&event).await, epoch);

    // A request that claims to be forwarded needs the cluster secret.
    let forged = f
        .client
        .post(format!("{}{API}/events/{event}/bookings", b.base))
        .bearer_auth(&f.tokens[0])
        .header("x-boxoffice-forwarded-by", "node-a")
        .header("x-boxoffice-cluster-key", "not-the-secret")
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(forged, 403, "forbidden").await;
    assert_eq!(f.epoch(&event).await, epoch, "a forged forward took the event");

    let (capacity, reserved, live) = f.store.event_counters(event_id(&event)).await.unwrap();
    assert_eq!((capacity, reserved, live), (50, 1, 1));
    f.store.close().await;
}

/// The outcome of one hold in a rush.
enum Outcome {
    /// Acknowledged, by the node asked, at that moment.
    Held(Uuid, String, Instant),
    Refused(u16, bool),
    /// No answer: the node died with the request in flight.
    Unknown,
}

async fn killed_owner_is_replaced_within_a_lease(backend: Backend) {
    const CAPACITY: i64 = 400;
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // The first node migrates the database and makes the admin.
    let a = node(&http_client(), &db, dir.path(), "node-a").await;
    let b = node(&http_client(), &db, dir.path(), "node-b").await;
    let f = Fixture::new(&db, 8).await;
    let event = f.create_event(&a.base, json!({"capacity": CAPACITY, "max_per_user": CAPACITY})).await;
    let (status, _, _) = f.hold(&a.base, 0, &event, json!({"quantity": 1}), Some("warm")).await;
    assert_eq!(status, 201);
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-a"));
    let mut acknowledged = HashSet::new();
    let mut outcomes = Vec::new();

    // Mid-sale: holds through both nodes, then A dies.
    let rush = |base: String, from: usize, n: usize| {
        let f = &f;
        let event = event.clone();
        futures::stream::iter(from..from + n)
            .map(move |i| {
                let (base, event) = (base.clone(), event.clone());
                async move {
                    let key = format!("rush-{i}");
                    let mut req = f
                        .client
                        .post(format!("{base}{API}/events/{event}/bookings"))
                        .bearer_auth(&f.tokens[i % f.tokens.len()])
                        .header("Idempotency-Key", &key)
                        .json(&json!({"quantity": 1}));
                    req = req.timeout(Duration::from_secs(10));
                    match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let retry = resp.headers().contains_key("retry-after");
                            let body: Value = resp.json().await.unwrap_or(Value::Null);
                            if status == 201 {
                                Outcome::Held(uuid_of(&body["id"]), base, Instant::now())
                            } else {
                                Outcome::Refused(status, retry)
                            }
                        }
                        Err(_) => Outcome::Unknown,
                    }
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
    };
    let killer = async {
        eventually(Duration::from_secs(30), "40 seats sold before the kill", || async {
            (f.store.event_counters(event_id(&event)).await.unwrap().1 >= 40).then_some(())
        })
        .await;
        signal(&a, Signal::SIGKILL);
        Instant::now()
    };
    let (on_a, on_b, killed) = tokio::join!(rush(a.base.clone(), 0, 150), rush(b.base.clone(), 1000, 150), killer);
    outcomes.extend(on_a.into_iter().chain(on_b));

    // B serves the event again within about a lease; meanwhile only 503 with Retry-After.
    let mut served_after = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Held(_, base, at) if *base == b.base && *at > killed => Some(at.duration_since(killed)),
            _ => None,
        })
        .min();
    let mut i = 2000;
    while killed.elapsed() < Duration::from_secs(LEASE_SECS * 4 + 5) {
        i += 1;
        let (status, body, retry) =
            f.hold(&b.base, i, &event, json!({"quantity": 1}), Some(&format!("after-{i}"))).await;
        match status {
            201 => {
                acknowledged.insert(uuid_of(&body["id"]));
                served_after.get_or_insert(killed.elapsed());
                if acknowledged.len() >= 10 {
                    break;
                }
            }
            503 => {
                assert!(retry, "a 503 during failover without Retry-After: {body}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("during failover: {other} {body}"),
        }
    }
    let served_after = served_after.expect("B never served the event after A died");
    eprintln!("killed owner: another node served the event after {served_after:?}");
    assert!(
        served_after <= Duration::from_secs(LEASE_SECS * 2),
        "the event moved after {served_after:?}, lease {LEASE_SECS} s"
    );
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-b"));

    for o in outcomes {
        match o {
            Outcome::Held(id, ..) => assert!(acknowledged.insert(id), "booking given twice"),
            Outcome::Refused(503, true) | Outcome::Unknown => {}
            Outcome::Refused(status, retry) => panic!("in the rush a hold answered {status} (Retry-After: {retry})"),
        }
    }
    f.check(&event, &acknowledged).await;
    let (_, reserved, _) = f.store.event_counters(event_id(&event)).await.unwrap();
    assert!(acknowledged.len() as i64 <= reserved);
    f.store.close().await;
}

async fn paused_owner_is_fenced_when_it_wakes(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // The first node migrates the database and makes the admin.
    let a = node(&http_client(), &db, dir.path(), "node-a").await;
    let b = node(&http_client(), &db, dir.path(), "node-b").await;
    let f = Fixture::new(&db, 8).await;
    let event = f.create_event(&a.base, json!({"capacity": 100, "max_per_user": 100})).await;
    let (status, first, _) = f.hold(&a.base, 0, &event, json!({"quantity": 1}), None).await;
    assert_eq!(status, 201);
    let mut acknowledged = HashSet::from([uuid_of(&first["id"])]);
    let epoch = f.epoch(&event).await;

    // A pauses with claims in flight, and more arrive while it sleeps.
    let late = {
        let (client, base, event) = (f.client.clone(), a.base.clone(), event.clone());
        let tokens = f.tokens.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..16usize)
                .map(|i| {
                    let req = client
                        .post(format!("{base}{API}/events/{event}/bookings"))
                        .bearer_auth(&tokens[i % tokens.len()])
                        .header("Idempotency-Key", format!("late-{i}"))
                        .json(&json!({"quantity": 1}))
                        .timeout(Duration::from_secs(60));
                    async move {
                        let resp = req.send().await.expect("the paused node answers once it wakes");
                        let status = resp.status().as_u16();
                        let body: Value = resp.json().await.unwrap_or(Value::Null);
                        (status, body)
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    signal(&a, Signal::SIGSTOP);
    let paused = Instant::now();

    // B: 503 with Retry-After while A's lease runs, then B takes the event over.
    let mut i = 100;
    loop {
        i += 1;
        assert!(paused.elapsed() < Duration::from_secs(LEASE_SECS * 4 + 10), "B never took over");
        let (status, body, retry) = f.hold(&b.base, i, &event, json!({"quantity": 1}), Some(&format!("b-{i}"))).await;
        match status {
            201 => {
                acknowledged.insert(uuid_of(&body["id"]));
                break;
            }
            503 => assert!(retry, "503 without Retry-After: {body}"),
            other => panic!("B answered {other}: {body}"),
        }
    }
    assert!(f.epoch(&event).await > epoch, "B took the event with a new epoch");
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-b"));
    let reserved_before_wake = f.store.event_counters(event_id(&event)).await.unwrap().1;

    // A wakes: its actor finds its lease gone, its late batch is refused by the fence.
    signal(&a, Signal::SIGCONT);
    let answers = late.await.unwrap();
    let mut fenced = 0;
    let mut held_late = Vec::new();
    for (status, body) in answers {
        match status {
            // Committed before B took over, or forwarded to B once A knew it lost the event.
            201 => held_late.push(uuid_of(&body["id"])),
            503 => {
                assert_eq!(body["code"], "unavailable");
                fenced += 1;
            }
            other => panic!("the paused node answered {other}: {body}"),
        }
    }
    eprintln!("paused owner: {fenced} late claims refused, {} served", held_late.len());
    // The paused node's actor saw that it lost the event (renewal refused or batch fenced).
    eventually(Duration::from_secs(10), "A to notice it lost the event", || async {
        let log = std::fs::read_to_string(&a.log).unwrap_or_default();
        (log.contains("lost its lease") || log.contains("fenced")).then_some(())
    })
    .await;
    // Every late 201 is a live booking (nothing A answered was lost), and A wrote nothing
    // under its old epoch: any seat added since B took over is a booking someone was told of.
    for id in &held_late {
        acknowledged.insert(*id);
    }
    f.check(&event, &acknowledged).await;
    let (_, reserved, live) = f.store.event_counters(event_id(&event)).await.unwrap();
    assert_eq!(reserved, live);
    assert!(reserved - reserved_before_wake <= held_late.len() as i64, "a write nobody was told of after the wake");
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-b"), "the woken node must not take the event back");
    // The event keeps selling through either node.
    let (status, body, _) = f.hold(&a.base, 7, &event, json!({"quantity": 1}), None).await;
    assert_eq!(status, 201, "after the wake, A forwards to B: {body}");
    f.store.close().await;
}

async fn streams_on_another_node_hear_the_owner_at_once_over_redis(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let redis = crate::shared_state::redis_url();
    let prefix = format!("bxtest-{}", Uuid::new_v4().simple());
    // A store refresh once a minute: whatever B's streams hear within seconds came over Redis.
    let env = [("REDIS_URL", redis.as_str()), ("REDIS_PREFIX", prefix.as_str()), ("SNAPSHOT_REFRESH_MS", "60000")];
    let a = node_with(&http_client(), &db, dir.path(), "node-a", &env).await;
    let b = node_with(&http_client(), &db, dir.path(), "node-b", &env).await;
    let f = Fixture::new(&db, 2).await;
    let event = f.create_event(&a.base, json!({"seat_map": seat_map(2, 10), "max_per_user": 20})).await;
    let (status, first, _) = f.hold(&a.base, 0, &event, json!({"seats": ["Stalls-A-1"]}), None).await;
    assert_eq!(status, 201, "{first}");
    let epoch = f.epoch(&event).await;

    // B watches the event's availability and the first booking's status.
    let availability = f.client.get(format!("{}{API}/events/{event}/stream", b.base)).send().await.unwrap();
    assert_eq!(availability.status(), 200);
    let booking = str_of(&first["id"]).to_owned();
    let status_stream =
        f.client.get(format!("{}{API}/bookings/{booking}/stream", b.base)).bearer_auth(&f.tokens[0]).send();
    let status_stream = status_stream.await.unwrap();
    assert_eq!(status_stream.status(), 200);

    // A hold on A reaches B's stream within a second or two, a minute before any refresh.
    let (status, second, _) = f.hold(&a.base, 1, &event, json!({"seats": ["Stalls-A-2"]}), None).await;
    assert_eq!(status, 201, "{second}");
    let seen = stream_until(availability, Duration::from_secs(3), |v| v["held"] == 2).await;
    assert_eq!(seen["available"], 18);
    // The small map's seats came along: B's seat map (served from the same channel) shows both.
    let seats =
        expect_json(f.client.get(format!("{}{API}/events/{event}/seats", b.base)).send().await.unwrap(), 200).await;
    let held: Vec<String> = seats["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["seats"].as_array().unwrap().iter())
        .filter(|s| s["status"] == "held")
        .map(|s| str_of(&s["id"]).to_owned())
        .collect();
    assert_eq!(held, ["Stalls-A-1", "Stalls-A-2"], "{seats}");

    // A cancellation on A reaches the booking's status stream on B.
    let cancelled = f
        .client
        .post(format!("{}{API}/bookings/{booking}/cancel", a.base))
        .bearer_auth(&f.tokens[0])
        .send()
        .await
        .unwrap();
    expect_json(cancelled, 200).await;
    let heard = stream_until(status_stream, Duration::from_secs(3), |v| v["status"] == "cancelled").await;
    assert_eq!(heard["id"], booking.as_str());
    assert_eq!(f.epoch(&event).await, epoch, "the streams on B took the event");
    assert_eq!(f.owner(&event).await.as_deref(), Some("node-a"));
    f.store.close().await;
}
