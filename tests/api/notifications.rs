//! Notification workers over the real RabbitMQ: a message that always fails ends in the
//! dead-letter queue after its tries while the rest keep flowing; a real SMTP server (the
//! aiosmtpd sink) receives the confirmation with its PDF; a redelivered message sends nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boxoffice::bus::amqp::{self, AmqpPublisher};
use boxoffice::bus::{BusMessage, Topology};
use boxoffice::domain::ids::{BookingId, EventId, UserId};
use boxoffice::domain::stream::{DomainEvent, EventData, EventType};
use serde_json::json;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(30);

postgres_only!(a_failing_message_is_dead_lettered_and_the_rest_flow, the_smtp_server_gets_the_receipt_once);

async fn paid_booking(app: &TestApp) -> (TestUser, String) {
    let admin = app.admin_token().await;
    let event = expect_json(app.create_event(&admin, &event_body(json!({"capacity": 10}))).await, 201).await;
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, str_of(&event["id"]), &json!({"quantity": 1})).await;
    let booking_id = str_of(&booking["id"]).to_owned();
    app.pay_ok(&user.token, &booking_id, "tok_ok").await;
    let b = app.booking_becomes(&user.token, &booking_id, "confirmed", WAIT).await;
    (user, b["ticket_code"].as_str().expect("ticket code").to_owned())
}

async fn a_failing_message_is_dead_lettered_and_the_rest_flow(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        use_broker(c);
        c.notification_max_attempts = 3;
    })
    .await;
    let topology = Topology::with_prefix(&app.config.amqp_prefix);
    // Make sure the app's topology exists before publishing into it.
    let publisher =
        eventually(WAIT, "the broker", || async { AmqpPublisher::connect_with(&amqp_url(), &topology).await.ok() })
            .await;
    // A booking that does not exist: retried, then given up. And a payload that is not JSON.
    let unknown = DomainEvent::new(
        boxoffice::domain::now(),
        EventId::new(),
        Some(BookingId::new()),
        EventData::BookingConfirmed {
            user_id: UserId::new(),
            payment_id: None,
            quantity: 1,
            amount_cents: 100,
            currency: "EUR".into(),
        },
    )
    .with_request_id(Some("req-poison".into()));
    let garbage = BusMessage { payload: b"{not json".to_vec(), ..BusMessage::of("poison-garbage".into(), &unknown) };
    for m in [BusMessage::of("poison-unknown".into(), &unknown), garbage] {
        publisher.publish(&m).await.expect("publish a poison message");
    }
    // Real confirmations still arrive meanwhile.
    let (_, code) = paid_booking(&app).await;
    app.email_containing(&code, WAIT).await;
    eventually(WAIT, "both poison messages in the dead-letter queue", || async {
        (amqp::queue_depth(&amqp_url(), &topology.dead_queue).await.ok()? == 2).then_some(())
    })
    .await;
    assert_eq!(app.emails().len(), 1, "no e-mail for the poison messages");
    publisher.close().await;
}

/// The aiosmtpd sink writing into a Maildir; stopped on drop.
struct SmtpSink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    async fn start(dir: &Path) -> SmtpSink {
        let maildir = dir.join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let port = crate::process::free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd; .ci/run installs it)");
        let sink = SmtpSink { child, port, maildir };
        eventually(Duration::from_secs(20), "the SMTP sink to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await;
        sink
    }

    fn messages(&self) -> Vec<String> {
        std::fs::read_dir(self.maildir.join("new"))
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }
}

async fn the_smtp_server_gets_the_receipt_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let app = TestApp::spawn_with(backend, |c| {
        use_broker(c);
        c.smtp_url = Some(format!("smtp://127.0.0.1:{}", sink.port));
    })
    .await;
    let (user, code) = paid_booking(&app).await;
    let mail = eventually(WAIT, "the confirmation at the SMTP server", || async {
        sink.messages().into_iter().find(|m| m.contains(&code))
    })
    .await;
    assert!(mail.contains(&user.email));
    assert!(mail.contains("Content-Type: application/pdf"), "{mail}");
    assert!(mail.contains("multipart/alternative"), "text and HTML parts");
    assert!(app.emails().is_empty(), "with SMTP_URL nothing goes to files");

    // The broker delivers the same message again (as after a lost ack): no second e-mail.
    let pool = app.db.pool().await;
    let topic = EventType::BookingConfirmed.as_str();
    const SQL: &str = "SELECT id, payload FROM outbox WHERE topic = $1";
    let (id, payload): (i64, String) = match &pool {
        DbPool::Pg(p) => sqlx::query_as(SQL).bind(topic).fetch_one(p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_as(SQL).bind(topic).fetch_one(p).await.unwrap(),
    };
    pool.close().await;
    let topology = Topology::with_prefix(&app.config.amqp_prefix);
    let publisher = AmqpPublisher::connect_with(&amqp_url(), &topology).await.expect("publisher");
    // The very message the relay published: same id, same payload.
    let event: DomainEvent = serde_json::from_str(&payload).expect("the outbox holds domain events");
    let again = boxoffice::bus::message_of(id, &event);
    publisher.publish(&again).await.expect("redeliver");
    publisher.close().await;
    eventually(WAIT, "the redelivered message to be consumed", || async {
        (amqp::queue_depth(&amqp_url(), &topology.queue).await.ok()? == 0).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "exactly one e-mail for the booking");
}
