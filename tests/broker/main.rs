//! RabbitMQ restarted while a thousand confirmations are being published: nothing is lost and
//! nothing is sent twice. The outbox keeps what the broker could not take, the relay resumes
//! when it returns, workers reconnect, and exactly one e-mail per booking exists at the end.
//!
//! Its own test binary: it stops the shared broker for a few seconds, which other tests must
//! not see (cargo runs test binaries one after another). Needs `rabbitmqctl` (run as root).

#[path = "../api/helpers.rs"]
#[macro_use]
#[allow(dead_code, unused_macros)]
mod helpers;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use boxoffice::bus::{Topology, amqp};
use futures::StreamExt;
use serde_json::json;

use helpers::*;

const BOOKINGS: usize = 1000;

/// Starts the broker's application again however the test ends.
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rabbitmqctl").arg("start_app").output();
    }
}

async fn rabbitmqctl(arg: &str) {
    let out = tokio::process::Command::new("rabbitmqctl").arg(arg).output().await.expect("run rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {arg}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Booking ids of the confirmation e-mails, from their attachment names (`receipt-<id>.pdf`).
fn confirmed_mails(app: &TestApp) -> Vec<String> {
    app.emails().iter().filter_map(|(_, raw)| raw.find("receipt-").map(|i| raw[i + 8..i + 8 + 36].to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_while_publishing_loses_and_duplicates_nothing() {
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        use_broker(c);
        c.rate_limit_per_sec = 0;
        c.payment_provider_delay_ms = 300;
        c.database_max_connections = 20;
    })
    .await;
    let admin = app.admin_token().await;
    let event = expect_json(app.create_event(&admin, &event_body(json!({"capacity": BOOKINGS}))).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let users = app.mint_users(50).await;

    let holds: Vec<(String, String)> = futures::stream::iter(0..BOOKINGS)
        .map(|i| {
            let (app, user, event_id) = (&app, &users[i % users.len()], &event_id);
            async move {
                let b = app.hold_ok(&user.token, event_id, &json!({"quantity": 1})).await;
                (user.token.clone(), str_of(&b["id"]).to_owned())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    let _guard = RestartGuard;
    let started = Instant::now();
    let paid = Arc::new(AtomicUsize::new(0));
    // Stop the broker once confirmations are flowing through it, mid-stream.
    let stop_at = 20;
    let payments = futures::stream::iter(holds.iter())
        .map(|(token, booking)| {
            let (app, paid) = (&app, paid.clone());
            async move {
                app.pay_ok(token, booking, "tok_ok").await;
                paid.fetch_add(1, Ordering::SeqCst);
            }
        })
        // Paced like a real crowd paying over several seconds, so the outage lands mid-stream.
        .buffer_unordered(4)
        .collect::<Vec<()>>();
    let outage = async {
        eventually(Duration::from_secs(120), "the first confirmation e-mails", || async {
            (confirmed_mails(&app).len() >= stop_at).then_some(())
        })
        .await;
        let paid_before = paid.load(Ordering::SeqCst);
        assert!(paid_before < BOOKINGS, "payments still under way when the broker stops");
        let mails_before = confirmed_mails(&app).len();
        rabbitmqctl("stop_app").await;
        let stopped_at = started.elapsed();
        eprintln!("stop_app after {paid_before} of {BOOKINGS} payments were accepted");
        (mails_before, stopped_at)
    };
    let (_, (mails_before, stopped_at)) = tokio::join!(payments, outage);

    // Every booking is confirmed in the database, broker or not; their messages wait.
    let confirmed = eventually(Duration::from_secs(120), "every booking confirmed", || async {
        let n = app.counters(&event_id).await;
        let pool = app.db.pool().await;
        let DbPool::Pg(p) = &pool else { unreachable!() };
        let (c,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'").fetch_one(p).await.unwrap();
        pool.close().await;
        (c as usize == BOOKINGS && n.1 == BOOKINGS as i64).then_some(c)
    })
    .await;
    let backlog = app.store().outbox_backlog().await.unwrap();
    let mails_during = confirmed_mails(&app).len();
    assert!(backlog > 0, "the outage left messages waiting in the outbox");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readiness names the broker while it is down");
    tokio::time::sleep(Duration::from_secs(2)).await;
    rabbitmqctl("start_app").await;
    let restarted_at = started.elapsed();

    let done = eventually(Duration::from_secs(180), "one e-mail per booking", || async {
        (confirmed_mails(&app).len() >= BOOKINGS).then(|| started.elapsed())
    })
    .await;
    // Let any duplicate that was going to happen happen.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = confirmed_mails(&app);
    let distinct: HashSet<&String> = mails.iter().collect();
    let booked: HashSet<&String> = holds.iter().map(|(_, b)| b).collect();
    eprintln!(
        "broker restart: {confirmed} confirmed; {mails_before} e-mails before stop_app at {stopped_at:?}, \
         {mails_during} during the outage with {backlog} outbox rows waiting; start_app at {restarted_at:?}; \
         all {BOOKINGS} e-mails by {done:?}"
    );
    assert_eq!(mails.len(), BOOKINGS, "exactly one e-mail per booking");
    assert_eq!(distinct.len(), BOOKINGS);
    assert!(distinct.iter().all(|b| booked.contains(b)), "e-mails are for these bookings");
    assert_eq!(app.store().outbox_backlog().await.unwrap(), 0);
    let topology = Topology::with_prefix(&app.config.amqp_prefix);
    assert_eq!(amqp::queue_depth(&amqp_url(), &topology.dead_queue).await.unwrap(), 0, "nothing dead-lettered");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready again once the broker is back");
}
