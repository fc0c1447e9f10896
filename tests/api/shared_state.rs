//! Several engine processes sharing one PostgreSQL database and one Redis (`REDIS_URL`): the rate
//! limits hold across nodes, a logout (or a refresh-token reuse) on one node ends the access
//! token on the others at once, and Redis stopping mid-traffic degrades the engines (local
//! fallbacks, `/readyz` says so) without failing requests, until Redis returns; an event changed
//! on one node is seen changed on the others at once, and availability is never served stale;
//! the same for the event list (created, changed and deleted events).
//!
//! The normal tests use the shared Redis of `TEST_REDIS_URL` under a key prefix of their own; the
//! outage test starts its own `redis-server` on a free port and kills only that one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::process::{Server, admin_token, create_event_on, free_port, hold_on, start_binary_with, wait_healthy};

postgres_only!(
    rate_limit_holds_across_nodes,
    logout_on_one_node_ends_the_access_token_on_another,
    redis_stopped_mid_traffic_degrades_and_recovers,
    an_event_change_on_one_node_is_seen_at_once_on_another,
    the_event_list_on_another_node_is_never_stale_after_a_write,
);

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL must name a Redis for the shared-state tests")
}

/// A node on `db` sharing `redis` under `prefix`, with `extra` settings.
async fn node(db: &TestDb, dir: &Path, name: &str, redis: &str, prefix: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("REDIS_URL", redis), ("REDIS_PREFIX", prefix), ("AUTH_RATE_LIMIT_PER_MIN", "0")];
    env.extend_from_slice(extra);
    let mut s = start_binary_with(&db.url, dir, name, &env);
    wait_healthy(&http_client(), &mut s).await;
    s
}

/// Two nodes on one fresh database and the shared Redis under a key prefix of their own.
struct Pair {
    db: std::sync::Arc<TestDb>,
    dir: tempfile::TempDir,
    prefix: String,
    a: Server,
    b: Server,
    client: Client,
}

impl Pair {
    /// One more node beside the two, on the same database and Redis prefix.
    async fn another(&self, name: &str) -> Server {
        node(&self.db, self.dir.path(), name, &redis_url(), &self.prefix, &[]).await
    }
}

async fn pair(backend: Backend, extra: &[(&str, &str)]) -> Pair {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("bxtest-{}", Uuid::new_v4().simple());
    let redis = redis_url();
    let a = node(&db, dir.path(), "a", &redis, &prefix, extra).await;
    let b = node(&db, dir.path(), "b", &redis, &prefix, extra).await;
    Pair { db, dir, prefix, a, b, client: http_client() }
}

async fn readyz(client: &Client, node: &Server) -> (u16, Value) {
    let r = client.get(format!("{}/readyz", node.base)).send().await.expect("readyz answers");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `/readyz` until its `redis` field says `want` (the other fields' verdict aside).
async fn wait_redis_state(client: &Client, node: &Server, want: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = readyz(client, node).await;
        if body["redis"] == want {
            return status;
        }
        assert!(Instant::now() < deadline, "{}: /readyz never said redis {want}: {status} {body}", node.base);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login_attempt(client: &Client, node: &Server, email: &str) -> u16 {
    client
        .post(format!("{}/api/v1/auth/login", node.base))
        .json(&json!({"email": email, "password": "not-the-password-1"}))
        .send()
        .await
        .expect("login answers")
        .status()
        .as_u16()
}

async fn rate_limit_holds_across_nodes(backend: Backend) {
    // Three attempts a minute per account: the allowance is spent long before any comes back.
    let Pair { a, b, client, .. } = &pair(backend, &[("AUTH_ACCOUNT_RATE_LIMIT_PER_MIN", "3")]).await;
    assert_eq!(readyz(client, a).await.1["redis"], "up");

    // One client spread over two nodes, and the same client on one node.
    let (spread, single) = (unique_email("spread"), unique_email("single"));
    let mut spread_429 = 0;
    let mut single_429 = 0;
    for i in 0..8 {
        let on = if i % 2 == 0 { &a } else { &b };
        let s = login_attempt(client, on, &spread).await;
        assert!(s == 401 || s == 429, "unexpected {s}");
        spread_429 += usize::from(s == 429);
        let s = login_attempt(client, a, &single).await;
        assert!(s == 401 || s == 429, "unexpected {s}");
        single_429 += usize::from(s == 429);
    }
    assert_eq!(single_429, 5, "one node: 3 of 8 allowed");
    assert_eq!(spread_429, single_429, "two nodes gave the client more than one node does");
}

async fn logout_on_one_node_ends_the_access_token_on_another(backend: Backend) {
    let nodes = pair(backend, &[]).await;
    let Pair { a, b, client, .. } = &nodes;
    let me = |n: &Server, token: &str| client.get(format!("{}/api/v1/auth/me", n.base)).bearer_auth(token).send();
    let login = || {
        client
            .post(format!("{}/api/v1/auth/login", a.base))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
    };

    let session = tokens_of(&expect_json(login().await.unwrap(), 200).await);
    let other = tokens_of(&expect_json(login().await.unwrap(), 200).await);
    assert_eq!(me(b, &session.access).await.unwrap().status(), 200);
    let out = client
        .post(format!("{}/api/v1/auth/logout", a.base))
        .json(&json!({"refresh_token": session.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    // As soon as pub/sub carries it: checking a token does no I/O, so the other node knows of
    // the revocation once its subscriber has heard A (milliseconds; a loaded machine can make
    // the very next request win that race). Bounded well below any token's lifetime.
    let started = Instant::now();
    let refused = eventually(Duration::from_secs(2), "node B to refuse the revoked session", || async {
        let r = me(b, &session.access).await.unwrap();
        (r.status() == 401).then_some(r)
    })
    .await;
    eprintln!("revocation reached node B after {:?}", started.elapsed());
    let problem: Value = refused.json().await.unwrap();
    assert!(str_of(&problem["detail"]).contains("revoked"), "{problem}");
    assert_eq!(me(a, &session.access).await.unwrap().status(), 401);
    // The same user's other session is untouched.
    assert_eq!(me(b, &other.access).await.unwrap().status(), 200);

    // A node started after the logout learns it from Redis.
    let c = nodes.another("c").await;
    assert_eq!(me(&c, &session.access).await.unwrap().status(), 401);

    // A refresh token used twice (the second time on another node) ends its session: the
    // access token the first use handed out stops working on every node.
    let refreshed = client
        .post(format!("{}/api/v1/auth/refresh", a.base))
        .json(&json!({"refresh_token": other.refresh}))
        .send()
        .await
        .unwrap();
    let rotated = tokens_of(&expect_json(refreshed, 200).await);
    assert_eq!(me(&c, &rotated.access).await.unwrap().status(), 200);
    let reuse = client
        .post(format!("{}/api/v1/auth/refresh", b.base))
        .json(&json!({"refresh_token": other.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 401);
    for n in [a, b, &c] {
        assert_eq!(me(n, &rotated.access).await.unwrap().status(), 401, "{} still takes the token", n.base);
        assert_eq!(me(n, &other.access).await.unwrap().status(), 401);
    }
}

/// A `redis-server` of this test's own, on `port`.
struct OwnRedis(Child);

impl OwnRedis {
    async fn start(port: u16, dir: &Path) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package) must be installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in the metrics"))
}

async fn redis_stopped_mid_traffic_degrades_and_recovers(backend: Backend) {
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut redis = OwnRedis::start(port, dir.path()).await;
    let url = format!("redis://127.0.0.1:{port}");
    // The general limit on (generous), so every request asks Redis and falls back without it.
    let limits = [("RATE_LIMIT_PER_SEC", "10000")];
    let a = node(&db, dir.path(), "a", &url, "bx", &limits).await;
    let b = node(&db, dir.path(), "b", &url, "bx", &limits).await;
    let client = http_client();
    assert_eq!(wait_redis_state(&client, &a, "up").await, 200);
    // The gauge follows the monitor's pings; a command timing out on a loaded machine may flip
    // it for one ping, so it is awaited rather than read once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let text = client.get(format!("{}/metrics", a.base)).send().await.unwrap().text().await.unwrap();
        if metric(&text, "boxoffice_redis_up ") == 1.0 {
            break text;
        }
        assert!(Instant::now() < deadline, "boxoffice_redis_up never became 1 while /readyz said up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(metric(&metrics, "boxoffice_redis_fallbacks_total{part=\"rate_limit\"}"), 0.0);

    // Traffic on both nodes for the whole outage: every request must be served.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (client, stop) = (client.clone(), stop.clone());
        let bases = [a.base.clone(), b.base.clone()];
        tokio::spawn(async move {
            let mut served = 0u32;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(format!("{}/api/v1/events", bases[i % 2])).send().await.expect("served");
                assert_eq!(r.status(), 200, "a request failed while Redis was away");
                served += 1;
                i += 1;
            }
            served
        })
    };
    let session = tokens_of(
        &expect_json(
            client
                .post(format!("{}/api/v1/auth/login", a.base))
                .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap(),
            200,
        )
        .await,
    );

    redis.kill();
    for n in [&a, &b] {
        assert_eq!(wait_redis_state(&client, n, "down").await, 200, "Redis down must not unready {}", n.base);
    }
    // A logout while Redis is away holds on its own node at once...
    let out = client
        .post(format!("{}/api/v1/auth/logout", a.base))
        .json(&json!({"refresh_token": session.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let me = |n: &Server| client.get(format!("{}/api/v1/auth/me", n.base)).bearer_auth(&session.access).send();
    assert_eq!(me(&a).await.unwrap().status(), 401);
    let metrics = client.get(format!("{}/metrics", a.base)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric(&metrics, "boxoffice_redis_up "), 0.0);
    assert!(metric(&metrics, "boxoffice_redis_fallbacks_total{part=\"rate_limit\"}") > 0.0);

    // ...and reaches the other node once Redis is back.
    let _redis = OwnRedis::start(port, dir.path()).await;
    for n in [&a, &b] {
        assert_eq!(wait_redis_state(&client, n, "up").await, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while me(&b).await.unwrap().status() != 401 {
        assert!(Instant::now() < deadline, "the logout made during the outage never reached node b");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let served = traffic.await.expect("traffic task");
    assert!(served > 0);
}

async fn an_event_change_on_one_node_is_seen_at_once_on_another(backend: Backend) {
    let Pair { a, b, client, .. } = &pair(backend, &[]).await;
    let admin = admin_token(client, &a.base).await;
    let id = str_of(&create_event_on(client, &a.base, &admin, json!({"capacity": 10})).await["id"]).to_owned();
    let detail = |n: &Server| client.get(format!("{}/api/v1/events/{id}", n.base)).send();

    // Node b caches the event (the second read is a hit).
    let first = expect_json(detail(b).await.unwrap(), 200).await;
    let again = expect_json(detail(b).await.unwrap(), 200).await;
    assert_eq!(first["title"], again["title"]);
    let metrics = client.get(format!("{}/metrics", b.base)).send().await.unwrap().text().await.unwrap();
    assert!(metric(&metrics, "boxoffice_event_cache_total{result=\"hit\"}") >= 1.0, "no cache hit on b");

    // Changed on a: b's very next read shows it.
    let patched = client
        .patch(format!("{}/api/v1/events/{id}", a.base))
        .bearer_auth(&admin)
        .json(&json!({"title": "Renamed on node a", "price_cents": 4200}))
        .send()
        .await
        .unwrap();
    expect_json(patched, 200).await;
    let seen = expect_json(detail(b).await.unwrap(), 200).await;
    assert_eq!(seen["title"], "Renamed on node a", "{seen}");
    assert_eq!(seen["price_cents"], 4200);

    // Availability is live on b although b's cache holds the event: a hold on a shows at once.
    hold_on(client, &a.base, &admin, &id, 3).await;
    let after = expect_json(detail(b).await.unwrap(), 200).await;
    assert_eq!(after["available"], 7, "{after}");
    assert_eq!(after["title"], "Renamed on node a");
}

async fn the_event_list_on_another_node_is_never_stale_after_a_write(backend: Backend) {
    // Cached lists would live ten minutes: what b shows fresh within a second came over Redis.
    let Pair { a, b, client, .. } = &pair(backend, &[("EVENT_CACHE_TTL_SECS", "600")]).await;
    let admin = admin_token(client, &a.base).await;
    let venue = format!("Hall-{}", Uuid::new_v4().simple());
    let on_a = |fields: Value| create_event_on(client, &a.base, &admin, fields);
    let first = str_of(&on_a(json!({"capacity": 10, "venue": venue})).await["id"]).to_owned();
    let list = |n: &Server| client.get(format!("{}/api/v1/events?venue={venue}", n.base)).send();
    let hits = || async {
        let text = client.get(format!("{}/metrics", b.base)).send().await.unwrap().text().await.unwrap();
        metric(&text, "boxoffice_event_list_cache_total{result=\"hit\"}")
    };
    let until = |want: fn(&Value) -> bool| list_until(client, b, &venue, want);

    // b caches the list (later reads are hits).
    let page = expect_json(list(b).await.unwrap(), 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    for _ in 0..2 {
        expect_json(list(b).await.unwrap(), 200).await;
    }
    let hit = hits().await;
    assert!(hit >= 1.0, "no list cache hit on b");

    // Changed on a: b lists the new title.
    let patched = client
        .patch(format!("{}/api/v1/events/{first}", a.base))
        .bearer_auth(&admin)
        .json(&json!({"title": "Renamed for the list"}))
        .send()
        .await
        .unwrap();
    expect_json(patched, 200).await;
    until(|p| p["items"][0]["title"] == "Renamed for the list").await;

    // Created on a: b lists it; deleted on a: b no longer does.
    let second = str_of(&on_a(json!({"capacity": 5, "venue": venue})).await["id"]).to_owned();
    let page = until(|p| p["items"].as_array().unwrap().len() == 2).await;
    assert!(page["items"].as_array().unwrap().iter().any(|e| e["id"] == second.as_str()), "{page}");
    let deleted = client.delete(format!("{}/api/v1/events/{second}", a.base)).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    until(|p| p["items"].as_array().unwrap().len() == 1).await;

    // A hold on a shows in b's cached list at its very next read: availability is never cached.
    expect_json(list(b).await.unwrap(), 200).await;
    let before = hits().await;
    hold_on(client, &a.base, &admin, &first, 3).await;
    let page = expect_json(list(b).await.unwrap(), 200).await;
    assert_eq!(page["items"][0]["available"], 7, "{page}");
    assert!(hits().await > before, "the list after the hold was not served from the cache");
}

/// Polls `node`'s list of `venue` (for a second at most: far below the cache's lifetime in the
/// test) until `want` holds.
async fn list_until(client: &Client, node: &Server, venue: &str, want: fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let page =
            expect_json(client.get(format!("{}/api/v1/events?venue={venue}", node.base)).send().await.unwrap(), 200)
                .await;
        if want(&page) {
            return page;
        }
        assert!(Instant::now() < deadline, "{} still lists {page}", node.base);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
