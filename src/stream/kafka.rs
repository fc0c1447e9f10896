//! The Kafka sink: publishes every domain event of the outbox to one topic, keyed by the
//! event (show) id, with its own cursor in the outbox (`kafka_sent_at`), so RabbitMQ and Kafka
//! progress independently and an outage of either delays only its own copies.
//!
//! Client: `rskafka` (pure Rust, tokio, no C library). A row is marked sent only after the
//! broker acknowledged its record (acks = all), so nothing is lost; it has no idempotent
//! producer (no `InitProducerId`), so a produce whose answer was lost is sent again and the
//! topic may hold a second copy: every record carries the domain event's `id` (header and
//! payload) and consumers drop duplicates by it (the analytics do; the AsyncAPI document says so).
//!
//! Order: an event's records all go to one partition (the key's hash), in outbox id order,
//! which for one event is its commit order (an event's journal batches commit in turn).
//!
//! Lag: after each attempt the sink exports how many outbox rows wait for Kafka
//! (`boxoffice_kafka_backlog`) and how old the oldest of them is by the engine's clock
//! (`boxoffice_kafka_oldest_unsent_seconds`); the `BoxofficeKafkaSinkBehind` alert reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};
use rskafka::record::Record;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::stream::DomainEvent;
use crate::persistence::Store;

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

/// Bounds connecting, looking up the topic, and one produce.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows read from the outbox at once.
const BATCH: u32 = 500;
/// Pause after a failure before the broker is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The partition of an event's records: a stable function of the key.
pub fn partition_of(event: &DomainEvent, partitions: i32) -> i32 {
    (event.event_id.0.as_u128() % partitions.max(1) as u128) as i32
}

struct Connection {
    _client: Client,
    partitions: BTreeMap<i32, PartitionClient>,
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

/// A client of the cluster (with SASL when configured); shared with the analytics consumer.
pub(crate) async fn client(s: &KafkaSettings) -> Result<Client, String> {
    let mut builder = ClientBuilder::new(s.brokers.clone()).client_id("boxoffice");
    if let Some((mechanism, user, password)) = &s.sasl {
        let credentials = Credentials::new(user.clone(), password.clone());
        builder = builder.sasl_config(match mechanism.as_str() {
            "SCRAM-SHA-256" => SaslConfig::ScramSha256(credentials),
            "SCRAM-SHA-512" => SaslConfig::ScramSha512(credentials),
            _ => SaslConfig::Plain(credentials),
        });
    }
    bounded("connect", builder.build()).await
}

async fn connect(s: &KafkaSettings) -> Result<Connection, String> {
    let client = client(s).await?;
    let topics = bounded("list topics", client.list_topics()).await?;
    let count = match topics.iter().find(|t| t.name == s.topic) {
        Some(t) => t.partitions.len() as i32,
        None => {
            // A new cluster (or a broker that lost its topics): the sink makes its topic.
            let controller = bounded("controller", async { client.controller_client() }).await?;
            bounded("create topic", controller.create_topic(&s.topic, s.partitions, 1, 5_000)).await?;
            tracing::info!(topic = %s.topic, partitions = s.partitions, "kafka topic created");
            s.partitions
        }
    };
    let mut partitions = BTreeMap::new();
    for p in 0..count {
        let pc = bounded("partition", client.partition_client(s.topic.clone(), p, UnknownTopicHandling::Error)).await?;
        partitions.insert(p, pc);
    }
    Ok(Connection { _client: client, partitions })
}

fn record_of(row: i64, event: &DomainEvent) -> Record {
    let mut headers = BTreeMap::new();
    headers.insert("id".to_owned(), event.id.to_string().into_bytes());
    headers.insert("type".to_owned(), event.kind().as_str().as_bytes().to_vec());
    headers.insert("outbox_id".to_owned(), row.to_string().into_bytes());
    Record {
        key: Some(event.event_id.to_string().into_bytes()),
        value: Some(serde_json::to_vec(event).expect("domain events serialise")),
        headers,
        timestamp: event.time,
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
    conn: Option<Connection>,
    /// No attempt before this (after a failure).
    quiet_until: Option<Instant>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl SinkState {
    /// Publishes one batch; `Ok(true)` if there may be more.
    async fn publish_some(&mut self) -> Result<bool, String> {
        let rows = self.store.kafka_unsent(BATCH).await.map_err(|e| format!("outbox not read: {e}"))?;
        if rows.is_empty() {
            return Ok(false);
        }
        let (events, unreadable) = crate::bus::read_events(&self.store, &rows).await.map_err(|e| e.to_string())?;
        let now = self.clock.now();
        self.store.mark_kafka_sent(&unreadable, now).await.map_err(|e| e.to_string())?;
        if self.conn.is_none() {
            self.conn = Some(connect(&self.settings).await?);
            tracing::info!(topic = %self.settings.topic, "kafka sink connected");
        }
        let conn = self.conn.as_ref().expect("connected above");
        let count = conn.partitions.len() as i32;
        let mut by_partition: BTreeMap<i32, Vec<(i64, &DomainEvent)>> = BTreeMap::new();
        for (row, event) in &events {
            by_partition.entry(partition_of(event, count)).or_default().push((*row, event));
        }
        for (p, batch) in by_partition {
            let client = conn.partitions.get(&p).expect("every partition has a client");
            let records: Vec<Record> = batch.iter().map(|(row, e)| record_of(*row, e)).collect();
            let n = records.len();
            // All of a partition's records in one request, in order: acknowledged together.
            if let Err(e) = bounded("produce", client.produce(records, Compression::NoCompression)).await {
                self.conn = None;
                return Err(e);
            }
            let ids: Vec<i64> = batch.iter().map(|(row, _)| *row).collect();
            self.store.mark_kafka_sent(&ids, self.clock.now()).await.map_err(|e| e.to_string())?;
            metrics::counter!("boxoffice_kafka_published_total").increment(n as u64);
        }
        Ok(rows.len() as u32 == BATCH)
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
        Ok(SinkState { store, clock, settings, health, conn: None, quiet_until: None, ticker: Some(ticker) })
    }

    async fn post_stop(&self, _: ActorRef<SinkMsg>, state: &mut SinkState) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
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
