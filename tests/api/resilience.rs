//! Degraded dependencies and shutdown: a database that goes away answers 503 and recovers by
//! itself; SIGTERM lets every accepted hold commit before the process exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boxoffice::persistence::Store;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::helpers::*;
use crate::process::{start_binary, wait_healthy};

postgres_only!(database_outage_answers_503_and_recovers);
both_backends!(sigterm_commits_in_flight_holds_then_exits);

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection dropped, new
/// ones refused) and restore.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, conns) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else { return };
                    if !up.load(Ordering::SeqCst) {
                        drop(client); // refused
                        continue;
                    }
                    let upstream = upstream.clone();
                    conns.lock().await.push(tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    }));
                }
            })
        };
        Proxy { port, up, conns, _accept: accept }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn database_outage_answers_503_and_recovers(backend: Backend) {
    let db = TestDb::create(backend).await;
    let real = reqwest::Url::parse(&db.url).unwrap();
    let proxy = Proxy::start(format!("{}:{}", real.host_str().unwrap(), real.port().unwrap_or(5432))).await;
    let mut via_proxy = real.clone();
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let app = TestApp::spawn_on(db.clone(), |c| {
        c.database_url = via_proxy.to_string();
        c.actor_call_timeout_ms = 3000;
    })
    .await;
    let event = app.create_ga_event(20).await;
    let id = str_of(&event["id"]).to_owned();
    let user = app.new_user().await;
    let mut held = 0;
    expect_json(app.hold(&user.token, &id, &json!({"quantity": 1}), None).await, 201).await;
    held += 1;

    proxy.cut().await;
    let started = Instant::now();
    let resp = app.hold(&user.token, &id, &json!({"quantity": 1}), Some("during-outage")).await;
    assert!(resp.headers().get("retry-after").is_some(), "503 without Retry-After");
    assert_problem(resp, 503, "unavailable").await;
    assert!(started.elapsed() < Duration::from_secs(15), "the 503 took {:?}", started.elapsed());
    // Without a key the claim reaches the event actor, whose batch write fails: it must undo
    // the reservation in memory and answer 503 too.
    let resp = app.hold(&user.token, &id, &json!({"quantity": 2}), None).await;
    assert_problem(resp, 503, "unavailable").await;
    assert_problem(app.client.get(app.url("/readyz")).send().await.unwrap(), 503, "unavailable").await;
    // Reads that need the store degrade the same way, with no 500 anywhere.
    let list = app.get("/events", None).await;
    assert_eq!(list.status().as_u16(), 503);

    proxy.restore();
    let booking: Value = eventually(Duration::from_secs(30), "holds to work again after the outage", || async {
        let resp = app.hold(&user.token, &id, &json!({"quantity": 1}), Some("during-outage")).await;
        match resp.status().as_u16() {
            201 | 200 => Some(resp.json::<Value>().await.unwrap()),
            503 => None,
            other => panic!("after the outage a hold answered {other}: {}", resp.text().await.unwrap_or_default()),
        }
    })
    .await;
    held += 1;
    assert_eq!(booking["status"], "held");
    // Readiness is re-checked at most once a second.
    eventually(Duration::from_secs(5), "readiness after the outage", || async {
        (app.client.get(app.url("/readyz")).send().await.unwrap().status() == 200).then_some(())
    })
    .await;
    let (capacity, reserved, live) = app.counters(&id).await;
    assert_eq!((capacity, reserved, live), (20, held, held), "the failed write left something behind");
    assert_eq!(app.available(&id).await, 20 - held);
}

async fn sigterm_commits_in_flight_holds_then_exits(backend: Backend) {
    const CAPACITY: i64 = 5000;
    let db = TestDb::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let client = http_client();
    let mut server = start_binary(&db.url, dir.path(), "graceful");
    wait_healthy(&client, &mut server).await;
    let base = server.base.clone();

    let store = Store::connect(&db.url, 2).await.expect("test store");
    let mut tokens = Vec::new();
    for _ in 0..8 {
        tokens.push(mint_user(&store, "term").await.1);
    }
    let admin = {
        let resp = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        tokens_of(&expect_json(resp, 200).await).access
    };
    let created = client
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&admin)
        // A few accounts take the whole event here: no per-account limit gets in the way.
        .json(&event_body(json!({"capacity": CAPACITY, "max_per_user": CAPACITY})))
        .send();
    let event = expect_json(created.await.unwrap(), 201).await;
    let event_id = str_of(&event["id"]).to_owned();

    let answered = Arc::new(AtomicUsize::new(0));
    let rush = {
        let (client, base, tokens, event_id, answered) =
            (client.clone(), base.clone(), tokens.clone(), event_id.clone(), answered.clone());
        tokio::spawn(async move {
            futures::stream::iter(0..2000usize)
                .map(|i| {
                    let (client, base, token, event_id, answered) = (
                        client.clone(),
                        base.clone(),
                        tokens[i % tokens.len()].clone(),
                        event_id.clone(),
                        answered.clone(),
                    );
                    async move {
                        let resp = client
                            .post(format!("{base}/api/v1/events/{event_id}/bookings"))
                            .bearer_auth(&token)
                            .header("Idempotency-Key", format!("term-{i}"))
                            .json(&json!({"quantity": 1}))
                            .send()
                            .await;
                        answered.fetch_add(1, Ordering::SeqCst);
                        match resp {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                (i, Some((status, r.json::<Value>().await.ok())))
                            }
                            Err(_) => (i, None), // refused or closed: the server had stopped accepting
                        }
                    }
                })
                .buffer_unordered(64)
                .collect::<Vec<_>>()
                .await
        })
    };
    let start = Instant::now();
    while answered.load(Ordering::SeqCst) < 200 {
        assert!(start.elapsed() < Duration::from_secs(60), "the rush did not reach 200 answers");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(server.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM");
    let exit = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return (status, server);
            }
            assert!(Instant::now() < deadline, "boxoffice did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let results = rush.await.unwrap();
    let (status, server) = exit.await.unwrap();
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );

    let mut acknowledged = Vec::new();
    for (i, outcome) in &results {
        match outcome {
            Some((201, Some(body))) => acknowledged.push((*i, uuid_of(&body["id"]))),
            Some((status, body)) => panic!("during shutdown a hold answered {status}: {body:?}"),
            None => {}
        }
    }
    assert!(acknowledged.len() >= 200, "only {} holds acknowledged", acknowledged.len());
    // Every acknowledged hold is durable, and nothing else is.
    let eid = boxoffice::domain::ids::EventId(Uuid::parse_str(&event_id).unwrap());
    let live: std::collections::HashSet<Uuid> =
        store.live_bookings(eid).await.unwrap().into_iter().map(|b| b.id.0).collect();
    for (_, id) in &acknowledged {
        assert!(live.contains(id), "acknowledged hold {id} is not in the database after a graceful stop");
    }
    assert_eq!(live.len(), acknowledged.len(), "a graceful stop committed holds nobody was told about");
    let (_, reserved, live_seats) = store.event_counters(eid).await.unwrap();
    assert_eq!((reserved, live_seats), (acknowledged.len() as i64, acknowledged.len() as i64));
    store.close().await;
}
