//! RabbitMQ transport for domain events, built on `lapin` 4: `amqp://`, or `amqps://` over rustls
//! (the webpki roots, or the CA of a `cacertfile=/path/ca.pem` query parameter, as in RabbitMQ's
//! own URI syntax).
//!
//! Publishers use publisher confirms: a publish is `Ok` only once the broker has acked it, so the
//! caller (an outbox relay) can mark exactly the confirmed rows as sent. Consumers use manual acks
//! with a prefetch limit; a failed delivery is either retried (re-published with `x-attempts`
//! bumped, then the original acked) or dead-lettered to [`DEAD_QUEUE`] via the queue's
//! dead-letter exchange.
//!
//! Nothing here reconnects by itself: lapin's auto-recovery is left off so that a lost connection
//! surfaces as [`BusError::Disconnected`] / `is_connected() == false` and the owner decides when to
//! build a new publisher or consumer. Every broker round trip is bounded by a timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind, ExchangeKind, PublisherConfirm,
};
use tokio::sync::Mutex;

use crate::domain::stream::{DomainEvent, EventType};

/// Topic exchange every domain event is published to.
pub const EXCHANGE: &str = "boxoffice.events";
/// Durable queue feeding the notification workers.
pub const QUEUE: &str = "boxoffice.notifications";
/// Fanout exchange that [`QUEUE`] dead-letters into.
pub const DEAD_EXCHANGE: &str = "boxoffice.dead";
/// Durable queue collecting dead-lettered notifications.
pub const DEAD_QUEUE: &str = "boxoffice.notifications.dead";

/// Routing keys binding [`QUEUE`] to [`EXCHANGE`]: the kinds of domain event that may send an
/// e-mail (the others are on the exchange for other consumers only).
pub fn queue_bindings() -> impl Iterator<Item = &'static str> {
    EventType::ALL.into_iter().filter(|t| t.may_notify()).map(EventType::as_str)
}
/// Header carrying the HTTP request id that caused the event.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header counting how often a message has been retried.
pub const ATTEMPTS_HEADER: &str = "x-attempts";
/// Bounds connecting plus declaring the topology.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds the wait for publisher confirms (per call, not per message).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds a single ack/reject: the broker sends no reply, so this only covers handing it to the socket.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "application/json";
const PERSISTENT: u8 = 2;

/// A message on the bus.
#[derive(Debug, Clone)]
pub struct BusMessage {
    /// Unique message id (AMQP `message_id` property); consumers deduplicate on it.
    pub id: String,
    /// Routing key, e.g. `booking.confirmed`.
    pub topic: String,
    /// JSON bytes (content type `application/json`).
    pub payload: Vec<u8>,
    /// Value of the `x-request-id` header, if any.
    pub request_id: Option<String>,
}

impl BusMessage {
    /// The message of a domain event: routed by its type, the event as its JSON body.
    pub fn of(id: String, event: &DomainEvent) -> Self {
        Self {
            id,
            topic: event.kind().as_str().to_owned(),
            payload: serde_json::to_vec(event).expect("domain events serialise"),
            request_id: event.request_id.clone(),
        }
    }

    /// The domain event it carries.
    pub fn event(&self) -> Result<DomainEvent, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }
}

/// Errors from the AMQP bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// No usable connection: connect failed or timed out, or the connection/channel was lost.
    #[error("not connected to the broker: {0}")]
    Disconnected(String),
    /// The broker explicitly refused (nacked) a published message.
    #[error("message nacked by the broker")]
    Nacked,
    /// The broker did not confirm in time; the message may or may not have been stored.
    #[error("no publisher confirm within {0:?}")]
    ConfirmTimeout(Duration),
    /// The broker rejected an operation (e.g. a topology mismatch or a missing queue).
    #[error("broker refused the operation: {0}")]
    Broker(String),
    /// The url or a message field cannot be expressed in AMQP.
    #[error("invalid input: {0}")]
    Invalid(String),
}

impl BusError {
    /// True when the cause is the connection itself, i.e. reconnecting may help.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Self::Disconnected(_) | Self::ConfirmTimeout(_))
    }
}

impl From<lapin::Error> for BusError {
    fn from(e: lapin::Error) -> Self {
        let msg = e.to_string();
        match e.kind() {
            // Channel-level (soft) errors: the broker is there but said no.
            ErrorKind::ProtocolError(_) if e.is_amqp_soft_error() => Self::Broker(msg),
            ErrorKind::ParsingError(_) | ErrorKind::SerialisationError(_) => Self::Broker(msg),
            _ => Self::Disconnected(msg),
        }
    }
}

/// Names of the exchanges and queues; [`Topology::default`] is the production set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Topic exchange events are published to.
    pub exchange: String,
    /// Work queue bound to `exchange` with [`queue_bindings`].
    pub queue: String,
    /// Fanout exchange `queue` dead-letters into.
    pub dead_exchange: String,
    /// Queue bound to `dead_exchange`.
    pub dead_queue: String,
}

impl Default for Topology {
    fn default() -> Self {
        Self {
            exchange: EXCHANGE.to_owned(),
            queue: QUEUE.to_owned(),
            dead_exchange: DEAD_EXCHANGE.to_owned(),
            dead_queue: DEAD_QUEUE.to_owned(),
        }
    }
}

impl Topology {
    /// The default names prefixed with `{prefix}.`, so parallel tests on one broker stay apart.
    pub fn with_prefix(prefix: &str) -> Self {
        let d = Self::default();
        let p = |name: String| format!("{prefix}.{name}");
        Self {
            exchange: p(d.exchange),
            queue: p(d.queue),
            dead_exchange: p(d.dead_exchange),
            dead_queue: p(d.dead_queue),
        }
    }

    /// Declares everything; idempotent as long as the existing objects have the same settings.
    async fn declare(&self, ch: &Channel) -> Result<(), BusError> {
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        ch.exchange_declare(short(&self.exchange)?, ExchangeKind::Topic, durable, FieldTable::default()).await?;
        ch.exchange_declare(short(&self.dead_exchange)?, ExchangeKind::Fanout, durable, FieldTable::default()).await?;

        ch.queue_declare(short(&self.dead_queue)?, QueueDeclareOptions::durable(), FieldTable::default()).await?;
        ch.queue_bind(
            short(&self.dead_queue)?,
            short(&self.dead_exchange)?,
            ShortString::default(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

        let mut args = FieldTable::default();
        args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(self.dead_exchange.as_str().into()));
        ch.queue_declare(short(&self.queue)?, QueueDeclareOptions::durable(), args).await?;
        for key in queue_bindings() {
            ch.queue_bind(
                short(&self.queue)?,
                short(&self.exchange)?,
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }
}

/// AMQP short strings (names, ids, routing keys) are capped at 255 bytes; lapin's `From` panics past that.
fn short(s: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(s)
        .map_err(|_| BusError::Invalid(format!("{} bytes is too long for an amqp short string", s.len())))
}

async fn open(url: &str, name: &str) -> Result<Connection, BusError> {
    // Parse first so a bad url is `Invalid`, not a connection error.
    let uri: lapin::uri::AMQPUri = url.parse().map_err(|e| BusError::Invalid(format!("amqp url: {e}")))?;
    let tls = tls_config(url)?;
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let runtime = lapin::runtime::default_runtime()?;
    Ok(Connection::connect_uri_with_config(uri, props, tls, runtime).await?)
}

/// The extra CA of `cacertfile=` (a private CA, or a test's); without it the webpki roots decide.
fn tls_config(url: &str) -> Result<lapin::tcp::OwnedTLSConfig, BusError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| BusError::Invalid(format!("amqp url: {e}")))?;
    let Some((_, path)) = parsed.query_pairs().find(|(k, _)| k == "cacertfile") else {
        return Ok(lapin::tcp::OwnedTLSConfig::default());
    };
    let pem = std::fs::read_to_string(path.as_ref())
        .map_err(|e| BusError::Invalid(format!("amqp url: cacertfile {path}: {e}")))?;
    Ok(lapin::tcp::OwnedTLSConfig { identity: None, cert_chain: Some(pem) })
}

/// Runs `fut` under the connect timeout, mapping expiry to `Disconnected`.
async fn within_connect_timeout<T>(fut: impl Future<Output = Result<T, BusError>>) -> Result<T, BusError> {
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| Err(BusError::Disconnected(format!("connect timed out after {CONNECT_TIMEOUT:?}"))))
}

/// A confirm-mode channel shared by publishers and by consumers' retries.
struct Confirmer {
    channel: Channel,
    exchange: ShortString,
    /// lapin assigns the confirm sequence number and queues the frames in two steps; two publishers
    /// racing between them would put frames on the wire out of tag order and mismatch confirms.
    publish_lock: Mutex<()>,
    /// Set when a confirm timed out: the channel's confirm state is unknown, so stop trusting it.
    broken: AtomicBool,
    confirm_timeout: Duration,
}

impl Confirmer {
    async fn open(conn: &Connection, exchange: &str) -> Result<Self, BusError> {
        let channel = conn.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self {
            channel,
            exchange: short(exchange)?,
            publish_lock: Mutex::new(()),
            broken: AtomicBool::new(false),
            confirm_timeout: CONFIRM_TIMEOUT,
        })
    }

    fn is_usable(&self) -> bool {
        self.channel.status().connected() && !self.broken.load(Ordering::Relaxed)
    }

    /// Publishes all messages back to back, then waits for the confirms in order.
    /// Returns the number of leading acks, or the error that stopped the first message.
    async fn publish_all(&self, msgs: Vec<(ShortString, BasicProperties, &[u8])>) -> Result<usize, BusError> {
        if !self.is_usable() {
            return Err(BusError::Disconnected("publisher channel is closed".into()));
        }
        let total = msgs.len();
        let deadline = tokio::time::Instant::now() + self.confirm_timeout;
        let mut pending: Vec<PublisherConfirm> = Vec::with_capacity(total);
        let mut failure: Option<BusError> = None;
        {
            let _guard = self.publish_lock.lock().await;
            for (key, props, payload) in msgs {
                let opts = BasicPublishOptions { mandatory: false, immediate: false };
                let publish = self.channel.basic_publish(self.exchange.clone(), key, opts, payload, props);
                // Sending only waits for the socket, but a stalled socket must not hang us either.
                match tokio::time::timeout_at(deadline, publish).await {
                    Ok(Ok(confirm)) => pending.push(confirm),
                    Ok(Err(e)) => {
                        failure = Some(e.into());
                        break;
                    }
                    Err(_) => {
                        // A half-sent publish leaves the confirm sequence unknown.
                        self.broken.store(true, Ordering::Relaxed);
                        failure = Some(BusError::ConfirmTimeout(self.confirm_timeout));
                        break;
                    }
                }
            }
        }

        // Await every confirm (not just up to the first failure) so none are left dangling in lapin.
        let mut acked = 0usize;
        let mut in_order = true;
        for confirm in pending {
            let outcome = match tokio::time::timeout_at(deadline, confirm).await {
                Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => Ok(()),
                Ok(Ok(Confirmation::Nack(_))) => Err(BusError::Nacked),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => {
                    self.broken.store(true, Ordering::Relaxed);
                    Err(BusError::ConfirmTimeout(self.confirm_timeout))
                }
            };
            match outcome {
                Ok(()) if in_order => acked += 1,
                Ok(()) => {}
                Err(e) => {
                    in_order = false;
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            None => Ok(acked),
            Some(e) if acked == 0 => Err(e),
            Some(e) => {
                tracing::warn!(acked, total, error = %e, "batch only partly confirmed");
                Ok(acked)
            }
        }
    }
}

fn properties(m: &BusMessage) -> Result<BasicProperties, BusError> {
    let mut headers = FieldTable::default();
    if let Some(rid) = &m.request_id {
        headers.insert(REQUEST_ID_HEADER.into(), AMQPValue::LongString(rid.as_str().into()));
    }
    Ok(BasicProperties::default()
        .with_message_id(short(&m.id)?)
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(PERSISTENT)
        .with_headers(headers))
}

/// Publishes events with publisher confirms on its own connection.
pub struct AmqpPublisher {
    conn: Connection,
    confirmer: Confirmer,
}

impl AmqpPublisher {
    /// Connects (bounded by [`CONNECT_TIMEOUT`]), declares the default topology, opens a confirm-mode channel.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, &Topology::default()).await
    }

    /// Like [`AmqpPublisher::connect`] with explicit names.
    pub async fn connect_with(url: &str, topology: &Topology) -> Result<Self, BusError> {
        let started = Instant::now();
        let publisher = within_connect_timeout(async {
            let conn = open(url, "boxoffice-publisher").await?;
            topology.declare(&conn.create_channel().await?).await?;
            let confirmer = Confirmer::open(&conn, &topology.exchange).await?;
            Ok(Self { conn, confirmer })
        })
        .await
        .inspect_err(|e| tracing::warn!(error = %e, "amqp publisher not connected"))?;
        tracing::debug!(exchange = %topology.exchange, elapsed_ms = started.elapsed().as_millis() as u64, "amqp publisher connected");
        Ok(publisher)
    }

    /// Overrides [`CONFIRM_TIMEOUT`].
    pub fn with_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirmer.confirm_timeout = timeout;
        self
    }

    /// Publishes one persistent message and waits for the broker's confirm; `Ok` only on ack.
    pub async fn publish(&self, m: &BusMessage) -> Result<(), BusError> {
        self.publish_batch(std::slice::from_ref(m)).await.map(|_| ())
    }

    /// Publishes all messages pipelined and waits for their confirms (one deadline for the batch).
    ///
    /// Returns how many leading messages were acked, in order: `Ok(n)` with `n < ms.len()` means
    /// `ms[n..]` were nacked or are unconfirmed and must be sent again; `Err` means none was confirmed.
    pub async fn publish_batch(&self, ms: &[BusMessage]) -> Result<usize, BusError> {
        if !self.conn.status().connected() {
            return Err(BusError::Disconnected("connection is closed".into()));
        }
        // Validate everything up front so a bad message doesn't cut a batch in the middle.
        let msgs = ms.iter().map(|m| Ok((short(&m.topic)?, properties(m)?, m.payload.as_slice())));
        self.confirmer.publish_all(msgs.collect::<Result<_, BusError>>()?).await
    }

    /// False once the connection or channel is closed, or a confirm timed out; build a new publisher then.
    pub fn is_connected(&self) -> bool {
        self.conn.status().connected() && self.confirmer.is_usable()
    }

    /// Closes channel then connection politely. Merely dropping also closes, but lapin then races its
    /// channel close against the connection close and logs a spurious "connection error".
    pub async fn close(self) {
        shutdown(&self.conn, [&self.confirmer.channel]).await;
    }
}

/// Consumes [`Topology::queue`] with manual acks.
pub struct AmqpConsumer {
    conn: Connection,
    channel: Channel,
    consumer: lapin::Consumer,
    confirmer: Arc<Confirmer>,
}

/// One received message; settle it with [`ack`](Self::ack), [`retry`](Self::retry) or
/// [`dead_letter`](Self::dead_letter). Dropping it unsettled leaves it unacked until the channel closes.
pub struct AmqpDelivery {
    /// The message as published.
    pub message: BusMessage,
    /// Value of the `x-attempts` header; 0 for a first delivery.
    pub attempts: u32,
    /// Set by the broker when this was delivered before but not acked (e.g. a consumer crashed).
    pub redelivered: bool,
    acker: lapin::Acker,
    properties: BasicProperties,
    confirmer: Arc<Confirmer>,
}

impl AmqpConsumer {
    /// Own connection and channels, declares the default topology, sets `prefetch`, consumes with manual acks.
    pub async fn connect(url: &str, prefetch: u16, tag: &str) -> Result<Self, BusError> {
        Self::connect_with(url, &Topology::default(), prefetch, tag).await
    }

    /// Like [`AmqpConsumer::connect`] with explicit names.
    pub async fn connect_with(url: &str, topology: &Topology, prefetch: u16, tag: &str) -> Result<Self, BusError> {
        let consumer = within_connect_timeout(async {
            let conn = open(url, "boxoffice-consumer").await?;
            let channel = conn.create_channel().await?;
            topology.declare(&channel).await?;
            channel.basic_qos(prefetch, BasicQosOptions { global: false }).await?;
            let consumer = channel
                .basic_consume(
                    short(&topology.queue)?,
                    short(tag)?,
                    BasicConsumeOptions { no_ack: false, ..Default::default() },
                    FieldTable::default(),
                )
                .await?;
            // Retries publish on a separate channel so a publish failure can't close the consuming one.
            let confirmer = Arc::new(Confirmer::open(&conn, &topology.exchange).await?);
            Ok(Self { conn, channel, consumer, confirmer })
        })
        .await
        .inspect_err(|e| tracing::warn!(error = %e, queue = %topology.queue, "amqp consumer not connected"))?;
        tracing::debug!(queue = %topology.queue, prefetch, tag, "amqp consumer started");
        Ok(consumer)
    }

    /// Next delivery; `None` or `Err` once the connection or consumer has ended (reconnect then).
    pub async fn next(&mut self) -> Option<Result<AmqpDelivery, BusError>> {
        loop {
            match self.consumer.next().await? {
                // lapin still hands out prefetched deliveries after the connection died; they can't be
                // settled and the broker redelivers them, so skip to the error/end that follows.
                Ok(d) if d.acker.poisoned() => {
                    tracing::debug!(delivery_tag = d.delivery_tag, "dropping delivery from a dead channel");
                }
                Ok(d) => return Some(Ok(self.delivery(d))),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// False once the connection is closed.
    pub fn is_connected(&self) -> bool {
        self.conn.status().connected()
    }

    /// Closes channels then connection politely; unsettled deliveries go back to the queue.
    pub async fn close(self) {
        shutdown(&self.conn, [&self.channel, &self.confirmer.channel]).await;
    }

    fn delivery(&self, d: lapin::message::Delivery) -> AmqpDelivery {
        let headers = d.properties.headers().as_ref();
        let header = |name: &str| headers.and_then(|h| h.inner().get(name));
        let request_id = header(REQUEST_ID_HEADER).and_then(|v| match v {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
            _ => None,
        });
        let attempts = header(ATTEMPTS_HEADER).and_then(as_u32).unwrap_or(0);
        let id = d.properties.message_id().as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if id.is_empty() {
            tracing::warn!(topic = %d.routing_key, "amqp delivery without message id");
        }
        AmqpDelivery {
            message: BusMessage { id, topic: d.routing_key.as_str().to_owned(), payload: d.data, request_id },
            attempts,
            redelivered: d.redelivered,
            acker: d.acker,
            properties: d.properties,
            confirmer: self.confirmer.clone(),
        }
    }
}

/// Header integers may arrive as any AMQP integer type depending on the publisher.
fn as_u32(v: &AMQPValue) -> Option<u32> {
    match *v {
        AMQPValue::ShortShortUInt(n) => Some(n.into()),
        AMQPValue::ShortUInt(n) => Some(n.into()),
        AMQPValue::LongUInt(n) => Some(n),
        AMQPValue::ShortShortInt(n) => u32::try_from(n).ok(),
        AMQPValue::ShortInt(n) => u32::try_from(n).ok(),
        AMQPValue::LongInt(n) => u32::try_from(n).ok(),
        AMQPValue::LongLongInt(n) => u32::try_from(n).ok(),
        _ => None,
    }
}

impl AmqpDelivery {
    /// Acknowledges the message: it is done.
    pub async fn ack(self) -> Result<(), BusError> {
        settle(self.acker.ack(BasicAckOptions::default())).await
    }

    /// Re-publishes the message (same routing key, `x-attempts` + 1) and, once confirmed, acks the original,
    /// so the retry goes to the back of the queue. If the re-publish fails the original is requeued instead.
    pub async fn retry(self) -> Result<(), BusError> {
        let mut headers = self.properties.headers().clone().unwrap_or_default();
        // i64 ('l'): the one integer field type every client reads; readers accept any integer anyway.
        headers.insert(ATTEMPTS_HEADER.into(), AMQPValue::LongLongInt(i64::from(self.attempts) + 1));
        let props = self.properties.clone().with_headers(headers);
        let republished = match short(&self.message.topic) {
            Ok(key) => self.confirmer.publish_all(vec![(key, props, self.message.payload.as_slice())]).await,
            Err(e) => Err(e),
        };
        match republished {
            Ok(_) => settle(self.acker.ack(BasicAckOptions::default())).await,
            Err(e) => {
                tracing::warn!(message_id = %self.message.id, error = %e, "retry not published; requeueing");
                let requeue = BasicNackOptions { multiple: false, requeue: true };
                if let Err(nack_err) = settle(self.acker.nack(requeue)).await {
                    tracing::warn!(message_id = %self.message.id, error = %nack_err, "requeue failed");
                }
                Err(e)
            }
        }
    }

    /// Rejects without requeue; the queue's dead-letter exchange moves it to the dead queue.
    pub async fn dead_letter(self) -> Result<(), BusError> {
        settle(self.acker.reject(BasicRejectOptions { requeue: false })).await
    }
}

async fn settle(fut: impl Future<Output = lapin::Result<bool>>) -> Result<(), BusError> {
    match tokio::time::timeout(ACK_TIMEOUT, fut).await {
        Ok(Ok(true)) => Ok(()),
        // lapin reports a poisoned acker (channel gone) as Ok(false); the broker will redeliver.
        Ok(Ok(false)) => Err(BusError::Disconnected("channel closed before the delivery was settled".into())),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(BusError::Disconnected(format!("ack not sent within {ACK_TIMEOUT:?}"))),
    }
}

/// Test/ops helper: messages ready in `queue` (passive declare); `Err` if unreachable or missing.
pub async fn queue_depth(url: &str, queue: &str) -> Result<u32, BusError> {
    with_channel(url, async |ch: &Channel| {
        let opts = QueueDeclareOptions { passive: true, ..Default::default() };
        Ok(ch.queue_declare(short(queue)?, opts, FieldTable::default()).await?.message_count())
    })
    .await
}

/// Test helper: purges `queue` and returns how many messages were dropped.
pub async fn purge(url: &str, queue: &str) -> Result<u32, BusError> {
    with_channel(url, async |ch: &Channel| Ok(ch.queue_purge(short(queue)?, QueuePurgeOptions::default()).await?)).await
}

/// Test helper: deletes the queues and exchanges of `topology` (e.g. a prefixed test topology).
pub async fn delete_topology(url: &str, topology: &Topology) -> Result<(), BusError> {
    with_channel(url, async |ch: &Channel| {
        for q in [&topology.queue, &topology.dead_queue] {
            ch.queue_delete(short(q)?, QueueDeleteOptions::default()).await?;
        }
        for x in [&topology.exchange, &topology.dead_exchange] {
            ch.exchange_delete(short(x)?, Default::default()).await?;
        }
        Ok(())
    })
    .await
}

/// Runs `f` on a short-lived connection, closing it politely afterwards.
async fn with_channel<T>(url: &str, f: impl AsyncFnOnce(&Channel) -> Result<T, BusError>) -> Result<T, BusError> {
    within_connect_timeout(async {
        let conn = open(url, "boxoffice-admin").await?;
        let channel = conn.create_channel().await?;
        let result = f(&channel).await;
        shutdown(&conn, [&channel]).await;
        result
    })
    .await
}

/// Best-effort polite close, bounded so shutdown never hangs on a dead broker.
async fn shutdown<const N: usize>(conn: &Connection, channels: [&Channel; N]) {
    let close = async {
        for ch in channels {
            if ch.status().connected() {
                let _ = ch.close(200, "bye".into()).await;
            }
        }
        if conn.status().connected() {
            let _ = conn.close(200, "bye".into()).await;
        }
    };
    let _ = tokio::time::timeout(ACK_TIMEOUT, close).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_topology_keeps_default_names_as_suffix() {
        let t = Topology::with_prefix("t1");
        assert_eq!(t.exchange, "t1.boxoffice.events");
        assert_eq!(t.dead_queue, "t1.boxoffice.notifications.dead");
        assert_eq!(Topology::default().queue, QUEUE);
    }

    #[test]
    fn attempts_header_accepts_any_integer_type() {
        assert_eq!(as_u32(&AMQPValue::LongLongInt(3)), Some(3));
        assert_eq!(as_u32(&AMQPValue::LongInt(-1)), None);
        assert_eq!(as_u32(&AMQPValue::ShortShortUInt(7)), Some(7));
        assert_eq!(as_u32(&AMQPValue::LongString("3".into())), None);
    }

    #[test]
    fn overlong_ids_are_rejected_not_panicked_on() {
        let m = BusMessage {
            id: "x".repeat(300),
            topic: EventType::BookingConfirmed.as_str().into(),
            payload: vec![],
            request_id: None,
        };
        assert!(matches!(properties(&m), Err(BusError::Invalid(_))));
    }

    #[test]
    fn error_messages_are_lowercase() {
        for e in [BusError::Nacked, BusError::ConfirmTimeout(CONFIRM_TIMEOUT), BusError::Disconnected("x".into())] {
            let s = e.to_string();
            assert!(s.starts_with(|c: char| c.is_lowercase()), "{s}");
        }
    }
}
