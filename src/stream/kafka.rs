//! The Kafka sink: publishes every domain event of the outbox to one topic, keyed by the
//! event (show) id, with its own cursor in the outbox (`kafka_sent_at`), so RabbitMQ and Kafka
//! progress independently and an outage of either delays only its own copies.
//!
//! Client: `rdkafka` (librdkafka) with the idempotent producer (`enable.idempotence`, acks =
//! all): the broker gives the producer an id, every batch carries it with a sequence number per
//! partition, and a batch librdkafka sends again because its answer was lost is dropped by the
//! broker instead of appended twice. Records never time out in librdkafka; the producer is kept
//! across an outage with what it holds and delivers it when the broker is back, while the sink
//! reports itself down after `ACK_WAIT` without an acknowledgement and reads nothing new until
//! every report came. A row is marked sent only after its delivery report, so nothing is lost.
//! What a producer id cannot cover: rows produced but not yet marked when the engine died, or
//! when a record failed for good and the sink replaced its producer, are sent again by a new
//! producer (new id); every record carries the domain event's `id` (header and payload) and
//! consumers drop such a copy by it (the analytics do; the AsyncAPI document says so).
//!
//! Order: an event's records all go to one partition (the key's hash), in outbox id order,
//! which for one event is its commit order (an event's journal batches commit in turn); the
//! idempotent producer keeps a partition's order across its own retries.
//!
//! Health: `up` only after the broker answered within the last `PROBE_EVERY` (an
//! acknowledgement, or with nothing to send a metadata lookup), so an idle sink notices a lost
//! broker too.
//!
//! Lag: after each attempt the sink exports how many outbox rows wait for Kafka
//! (`boxoffice_kafka_backlog`) and how old the oldest of them is by the engine's clock
//! (`boxoffice_kafka_oldest_unsent_seconds`); the `BoxofficeKafkaSinkBehind` alert reads it.
//! librdkafka's statistics give `boxoffice_kafka_producer_id` (-1 until the broker issued one).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::stream::DomainEvent;
use crate::persistence::Store;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::statistics::Statistics;

/// Where and how to publish.
#[derive(Clone)]
pub struct KafkaSettings {
    pub brokers: Vec<String>,
    pub topic: String,
    /// `(mechanism, user, password)`.
    pub sasl: Option<(String, String, String)>,
    /// Partitions of the topic when the sink has to create it.
    pub partitions: i32,
    /// How often the outbox is looked at when idle.
    pub poll: Duration,
}

impl KafkaSettings {
    /// `None` when `KAFKA_BOOTSTRAP_SERVERS` is unset (no sink).
    pub fn from_config(config: &Config) -> Option<Self> {
        let servers = config.kafka_bootstrap_servers.as_deref()?;
        let brokers: Vec<String> =
            servers.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        let sasl = match (&config.kafka_sasl_username, &config.kafka_sasl_password) {
            (Some(u), Some(p)) => Some((config.kafka_sasl_mechanism.clone(), u.clone(), p.clone())),
            _ => None,
        };
        Some(Self { brokers, topic: config.kafka_topic.clone(), sasl, partitions: 3, poll: Duration::from_millis(200) })
    }
}

/// What `/readyz` and the metrics say about the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KafkaStatus {
    Off,
    /// Connected; the last publish (or connection) worked.
    Up,
    /// The broker cannot be reached or refused; rows wait in the outbox.
    Down(String),
}

/// Shared view of the sink's state.
#[derive(Clone)]
pub struct KafkaHealth(Arc<Mutex<(KafkaStatus, i64)>>);

impl Default for KafkaHealth {
    fn default() -> Self {
        Self(Arc::new(Mutex::new((KafkaStatus::Off, 0))))
    }
}

/// How far the sink is behind the outbox: rows waiting, and the age of the oldest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkLag {
    pub backlog: i64,
    pub oldest_age: Duration,
}

impl SinkLag {
    /// Reads the lag from the outbox, ages by `clock`.
    pub async fn read(store: &Store, clock: &Clock) -> Result<Self, crate::persistence::StoreError> {
        let backlog = store.kafka_backlog().await?;
        let oldest = store.kafka_oldest_unsent().await?;
        // A row written by a node whose clock runs ahead is not "negative" old.
        let oldest_age = oldest.and_then(|t| (clock.now() - t).to_std().ok()).unwrap_or_default();
        Ok(Self { backlog, oldest_age })
    }
}

impl KafkaHealth {
    fn set(&self, status: KafkaStatus, lag: Option<SinkLag>) {
        let mut s = self.0.lock().expect("kafka health lock");
        metrics::gauge!("boxoffice_kafka_up").set(if status == KafkaStatus::Up { 1.0 } else { 0.0 });
        s.0 = status;
        if let Some(lag) = lag {
            s.1 = lag.backlog;
            metrics::gauge!("boxoffice_kafka_backlog").set(lag.backlog as f64);
            metrics::gauge!("boxoffice_kafka_oldest_unsent_seconds").set(lag.oldest_age.as_secs_f64());
        }
    }

    /// `off`, `up`, or `down (N events waiting): why`.
    pub fn describe(&self) -> String {
        let (status, backlog) = self.0.lock().expect("kafka health lock").clone();
        match status {
            KafkaStatus::Off => "off".into(),
            KafkaStatus::Up => format!("up ({backlog} events waiting)"),
            KafkaStatus::Down(why) => format!("down ({backlog} events waiting): {why}"),
        }
    }

    pub fn status(&self) -> KafkaStatus {
        self.0.lock().expect("kafka health lock").0.clone()
    }
}

/// Bounds looking up and creating the topic.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one round waits for the broker to acknowledge what is in flight before it reports
/// the sink down; the records stay with the producer, which goes on retrying them.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// With nothing to publish, how often the sink asks the broker for the topic's metadata, so an
/// idle sink that lost the broker says so.
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// Rows read from the outbox at once.
const BATCH: u32 = 500;
/// Pause after a failure before the broker is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The partition of an event's records: a stable function of the key.
pub fn partition_of(event: &DomainEvent, partitions: i32) -> i32 {
    (event.event_id.0.as_u128() % partitions.max(1) as u128) as i32
}

pub(crate) async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
    }
}

/// librdkafka's logs and statistics, into ours. Its connection errors repeat on every retry
/// while a broker is away; the sink reports the outage itself (`/readyz`, `boxoffice_kafka_up`),
/// so they are debug lines here.
struct SinkContext;

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::warn!(facility = fac, message = log_message, "librdkafka")
            }
            _ => tracing::debug!(facility = fac, message = log_message, "librdkafka"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(error = %error, reason, "librdkafka error");
    }

    fn stats(&self, statistics: Statistics) {
        let id = statistics.eos.map_or(-1, |e| e.producer_id);
        metrics::gauge!("boxoffice_kafka_producer_id").set(id as f64);
    }
}

/// The client settings both handles share: brokers, identity, SASL.
fn base_config(s: &KafkaSettings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", s.brokers.join(","))
        .set("client.id", "boxoffice")
        .set("socket.connection.setup.timeout.ms", CALL_TIMEOUT.as_millis().to_string());
    if let Some((mechanism, user, password)) = &s.sasl {
        c.set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password);
    }
    c
}

/// The producer's settings: idempotent (acks = all; retries keep a partition's order and the
/// broker drops a batch it already has). Records never time out in librdkafka: a timed-out
/// record leaves a gap its successors would be written past, and one written but reported
/// failed would come again under a new producer id; the sink bounds its own wait instead
/// (`ACK_WAIT`) and keeps the producer, with what it holds, across an outage.
fn producer_config(s: &KafkaSettings) -> ClientConfig {
    let mut c = base_config(s);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0")
        .set("linger.ms", "5")
        // A metadata lookup must not make the topic with the broker's defaults.
        .set("allow.auto.create.topics", "false")
        .set("statistics.interval.ms", "1000");
    c
}

/// Hands a librdkafka handle to a blocking thread to be dropped: dropping one joins its
/// threads, and a producer's purges and briefly flushes what it holds.
fn drop_off_runtime<T: Send + 'static>(handle: T) {
    tokio::task::spawn_blocking(move || drop(handle));
}

/// The topic's partition count, `None` if the broker does not know the topic.
async fn topic_partitions(producer: &FutureProducer<SinkContext>, topic: &str) -> Result<Option<i32>, String> {
    let producer = producer.clone();
    let topic = topic.to_owned();
    // librdkafka's metadata call blocks its thread.
    let meta = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(Some(&topic), CALL_TIMEOUT).map(|m| {
            m.topics()
                .iter()
                .find(|t| t.name() == topic)
                .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                .map(|t| t.partitions().len() as i32)
        })
    })
    .await
    .map_err(|e| format!("metadata: {e}"))?;
    meta.map_err(|e| format!("metadata: {e}"))
}

async fn create_topic(s: &KafkaSettings) -> Result<(), String> {
    let admin: AdminClient<SinkContext> =
        base_config(s).create_with_context(SinkContext).map_err(|e| format!("admin client: {e}"))?;
    let topic = NewTopic::new(&s.topic, s.partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT)).request_timeout(Some(CALL_TIMEOUT));
    let results = bounded("create topic", admin.create_topics([&topic], &options)).await;
    drop_off_runtime(admin);
    for result in results? {
        match result {
            Ok(_) => tracing::info!(topic = %s.topic, partitions = s.partitions, "kafka topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::info!(topic = %s.topic, "kafka topic exists"),
            Err((name, code)) => return Err(format!("create topic {name}: {code}")),
        }
    }
    Ok(())
}

/// The record of one outbox row: keyed by the event (show) id, headers `id`, `type`, `outbox_id`.
struct Outgoing {
    partition: i32,
    key: String,
    value: Vec<u8>,
    id: String,
    kind: &'static str,
    timestamp: i64,
}

impl Outgoing {
    fn of(event: &DomainEvent, partitions: i32) -> Self {
        Self {
            partition: partition_of(event, partitions),
            key: event.event_id.to_string(),
            value: serde_json::to_vec(event).expect("domain events serialise"),
            id: event.id.to_string(),
            kind: event.kind().as_str(),
            timestamp: event.time.timestamp_millis(),
        }
    }

    fn record<'a>(&'a self, topic: &'a str, outbox_id: &'a str) -> FutureRecord<'a, String, Vec<u8>> {
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header { key: "id", value: Some(self.id.as_bytes()) })
            .insert(Header { key: "type", value: Some(self.kind.as_bytes()) })
            .insert(Header { key: "outbox_id", value: Some(outbox_id.as_bytes()) });
        FutureRecord::to(topic)
            .partition(self.partition)
            .key(&self.key)
            .payload(&self.value)
            .timestamp(self.timestamp)
            .headers(headers)
    }
}

pub enum SinkMsg {
    /// Publish what waits; answered when done (the ticker waits, so ticks never pile up).
    Drain(RpcReplyPort<()>),
}

pub struct KafkaSink;

pub struct SinkState {
    store: Store,
    clock: Clock,
    settings: KafkaSettings,
    health: KafkaHealth,
    /// Made once and kept across outages (it reconnects by itself); replaced only after a
    /// record failed for good.
    producer: Option<FutureProducer<SinkContext>>,
    /// The topic's partition count, looked up by the current producer.
    partitions: Option<i32>,
    /// Records handed to the producer, in outbox order, whose reports have not come yet.
    /// While any is here no row is read again: an unmarked row read twice would be sent twice.
    in_flight: VecDeque<(i64, DeliveryFuture)>,
    /// Rows the broker acknowledged that the outbox has not been told of yet.
    acknowledged: Vec<i64>,
    /// When the broker last answered (an acknowledgement or a metadata lookup).
    last_contact: Option<Instant>,
    /// No attempt before this (after a failure).
    quiet_until: Option<Instant>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl SinkState {
    /// Publishes one batch; `Ok(true)` if there may be more.
    async fn publish_some(&mut self) -> Result<bool, String> {
        // What an earlier round left with the producer is settled first.
        self.settle().await?;
        let rows = self.store.kafka_unsent(BATCH).await.map_err(|e| format!("outbox not read: {e}"))?;
        if rows.is_empty() {
            self.probe().await?;
            return Ok(false);
        }
        let (events, unreadable) = crate::bus::read_events(&self.store, &rows).await.map_err(|e| e.to_string())?;
        let now = self.clock.now();
        self.store.mark_kafka_sent(&unreadable, now).await.map_err(|e| e.to_string())?;
        let (producer, partitions) = self.connect().await?;
        let topic = self.settings.topic.as_str();
        // Everything is queued at once, in outbox order: librdkafka batches each partition's
        // records and keeps their order; the reports come back as the broker acknowledges.
        let mut refused = None;
        for (row, event) in &events {
            let o = Outgoing::of(event, partitions);
            let outbox_id = row.to_string();
            match producer.send_result(o.record(topic, &outbox_id)) {
                Ok(delivery) => self.in_flight.push_back((*row, delivery)),
                Err((e, _)) => {
                    // Not for want of room (the queue is empty when a round starts and holds
                    // far more than a batch): the producer is in a fatal state. The rest waits.
                    refused = Some(format!("produce: {e}"));
                    break;
                }
            }
        }
        self.settle().await?;
        match refused {
            Some(why) => {
                self.replace_producer();
                Err(why)
            }
            None => Ok(rows.len() as u32 == BATCH),
        }
    }

    /// The producer and the topic's partition count, made or looked up when missing.
    async fn connect(&mut self) -> Result<(FutureProducer<SinkContext>, i32), String> {
        let producer = match &self.producer {
            Some(p) => p.clone(),
            None => {
                let p: FutureProducer<SinkContext> = producer_config(&self.settings)
                    .create_with_context(SinkContext)
                    .map_err(|e| format!("producer: {e}"))?;
                self.producer = Some(p.clone());
                p
            }
        };
        let partitions = match self.partitions {
            Some(n) => n,
            None => {
                let s = &self.settings;
                let n = match topic_partitions(&producer, &s.topic).await? {
                    Some(n) => n,
                    None => {
                        // A new cluster (or a broker that lost its topics): the sink makes its topic.
                        create_topic(s).await?;
                        topic_partitions(&producer, &s.topic)
                            .await?
                            .ok_or_else(|| format!("topic {} not there after it was created", s.topic))?
                    }
                };
                tracing::info!(topic = %s.topic, partitions = n, "kafka sink connected");
                self.partitions = Some(n);
                self.last_contact = Some(Instant::now());
                n
            }
        };
        Ok((producer, partitions))
    }

    /// With nothing to send, asks the broker for the topic now and then: `Up` is only said of a
    /// broker that answered within the last `PROBE_EVERY`.
    async fn probe(&mut self) -> Result<(), String> {
        if self.last_contact.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return Ok(());
        }
        let (producer, _) = self.connect().await?;
        if self.last_contact.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
            return Ok(()); // `connect` just looked the topic up
        }
        if topic_partitions(&producer, &self.settings.topic).await?.is_none() {
            // The topic went away: the next round makes it again.
            self.partitions = None;
        }
        self.last_contact = Some(Instant::now());
        Ok(())
    }

    /// Waits up to `ACK_WAIT` for the reports of what is in flight, in order, then tells the
    /// outbox which rows the broker has. `Err` if reports are still missing (they stay in
    /// flight) or a record failed for good (the producer is then replaced).
    async fn settle(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        let mut failure = None;
        let mut waiting = false;
        while let Some((row, delivery)) = self.in_flight.front_mut() {
            let row = *row;
            match tokio::time::timeout_at(deadline, delivery).await {
                Err(_) => {
                    waiting = true;
                    break;
                }
                Ok(Ok(Ok(_))) => {
                    self.acknowledged.push(row);
                    self.last_contact = Some(Instant::now());
                }
                Ok(Ok(Err((e, _)))) => {
                    failure.get_or_insert_with(|| format!("produce: {e}"));
                }
                Ok(Err(_)) => {
                    failure.get_or_insert_with(|| "produce: the producer went away".to_owned());
                }
            }
            self.in_flight.pop_front();
        }
        // What the broker acknowledged is marked even when other records failed: it is on the
        // topic, and sending it again would only make a copy. Kept until the outbox took it.
        if !self.acknowledged.is_empty() {
            self.store.mark_kafka_sent(&self.acknowledged, self.clock.now()).await.map_err(|e| e.to_string())?;
            metrics::counter!("boxoffice_kafka_published_total").increment(self.acknowledged.len() as u64);
            self.acknowledged.clear();
        }
        if let Some(why) = failure {
            // Only a fatal error (a broken idempotence sequence, say) or a refusal of the
            // record itself ends a record that never times out: the next attempt starts with a
            // new producer, and whatever it still held comes back from the outbox.
            self.replace_producer();
            return Err(why);
        }
        if waiting {
            return Err(format!(
                "no acknowledgement within {ACK_WAIT:?}; {} records wait with the producer",
                self.in_flight.len()
            ));
        }
        Ok(())
    }

    fn replace_producer(&mut self) {
        // Reports of the old producer's records come back as errors when it is dropped.
        self.in_flight.clear();
        self.partitions = None;
        self.last_contact = None;
        if let Some(p) = self.producer.take() {
            drop_off_runtime(p);
        }
    }

    async fn drain(&mut self) {
        if self.quiet_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        loop {
            match self.publish_some().await {
                Ok(true) => continue,
                Ok(false) => {
                    if self.quiet_until.take().is_some() {
                        tracing::info!("kafka reachable again; outbox published");
                    }
                    let lag = SinkLag::read(&self.store, &self.clock).await.ok();
                    self.health.set(KafkaStatus::Up, lag);
                    return;
                }
                Err(why) => {
                    if self.quiet_until.is_none() {
                        tracing::warn!(error = %why, "kafka unreachable; events wait in the outbox");
                    }
                    self.quiet_until = Some(Instant::now() + RETRY_AFTER);
                    let lag = SinkLag::read(&self.store, &self.clock).await.ok();
                    self.health.set(KafkaStatus::Down(why), lag);
                    return;
                }
            }
        }
    }
}

impl Actor for KafkaSink {
    type Msg = SinkMsg;
    type State = SinkState;
    /// The store, where to publish, the shared health, and the clock rows are aged by.
    type Arguments = (Store, KafkaSettings, KafkaHealth, Clock);

    async fn pre_start(
        &self,
        myself: ActorRef<SinkMsg>,
        (store, settings, health, clock): Self::Arguments,
    ) -> Result<SinkState, ActorProcessingErr> {
        // Down until the first publish or empty round proves otherwise.
        health.set(KafkaStatus::Down("not connected yet".into()), None);
        let me = myself.clone();
        let every = settings.poll;
        // One tick at a time: a drain that takes long (an outage) does not pile ticks up.
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if me.call(SinkMsg::Drain, None).await.is_err() {
                    return;
                }
            }
        });
        tracing::info!(brokers = ?settings.brokers, topic = %settings.topic, "kafka sink starting");
        Ok(SinkState {
            store,
            clock,
            settings,
            health,
            producer: None,
            partitions: None,
            in_flight: VecDeque::new(),
            acknowledged: Vec::new(),
            last_contact: None,
            quiet_until: None,
            ticker: Some(ticker),
        })
    }

    async fn post_stop(&self, _: ActorRef<SinkMsg>, state: &mut SinkState) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        state.replace_producer();
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        msg: SinkMsg,
        state: &mut SinkState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SinkMsg::Drain(reply) => {
                state.drain().await;
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}
