//! The sales-analytics consumer of the worker role: reads the domain events and keeps each
//! event's figures (`crate::domain::analytics`) in the store.
//!
//! Source: the Kafka topic the sink writes, every partition, when `KAFKA_BOOTSTRAP_SERVERS` is
//! set (the figures then come from the same stream outside systems read); else the outbox
//! itself, with its own cursor (`analytics_at`), so it progresses independently of the
//! notification relay and of the Kafka sink. RabbitMQ is not a source: its queues are the
//! notification workers' (work queues, acknowledged per message), and a second queue bound for
//! analytics would add a copy to lose or double without adding anything the outbox lacks.
//!
//! Exactly once: each batch is applied in one transaction that also records the position (the
//! outbox rows' cursor, or the partition's next offset), and every domain event's id is
//! recorded as counted, so a second copy (a record produced twice, a replay after a crash, two
//! worker processes reading the same rows) is skipped. A consumer killed at any point leaves
//! figures and position in step; the next one goes on from there.
//!
//! The record of counted ids (`analytics_seen`) is pruned periodically: ids counted longer
//! ago than `ANALYTICS_DEDUP_RETENTION_HOURS` (by the engine's clock) are forgotten. That window
//! must outlast every way a copy can come back: a record produced twice sits next to the first,
//! a replay after a restart starts at the committed position, and a reset after the broker
//! dropped unread records starts at the earliest record the topic keeps (its retention).
//!
//! Lag: after each round the consumer exports how many domain events wait for it
//! (`boxoffice_analytics_backlog`) and how far behind the figures are in time
//! (`boxoffice_analytics_lag_seconds`); the `BoxofficeAnalyticsBehind` alert reads it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, Credentials, SaslConfig};

use super::kafka::{KafkaSettings, bounded};
use crate::clock::Clock;
use crate::domain::stream::DomainEvent;
use crate::persistence::{AnalyticsPosition, Applied, Store};

/// Where the consumer reads the domain events.
#[derive(Clone)]
pub enum AnalyticsSource {
    /// The outbox table, through the consumer's own cursor.
    Outbox,
    /// The topic of the Kafka sink.
    Kafka(KafkaSettings),
}

impl AnalyticsSource {
    pub fn describe(&self) -> String {
        match self {
            Self::Outbox => "outbox".into(),
            Self::Kafka(s) => format!("kafka topic {}", s.topic),
        }
    }
}

/// How the consumer runs.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// How often to look for new domain events when idle.
    pub poll: Duration,
    /// How long the id of a counted domain event is kept to recognise a copy.
    pub dedup_retention: Duration,
    /// How often ids older than that are pruned.
    pub prune_every: Duration,
}

/// Forgets the ids of domain events counted longer than `retention` ago (by `clock`);
/// returns how many were forgotten.
pub async fn prune_seen(store: &Store, clock: &Clock, retention: Duration) -> anyhow::Result<u64> {
    let before = clock.now() - chrono::Duration::from_std(retention)?;
    Ok(store.prune_analytics_seen(before).await?)
}

/// How far the consumer is behind the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ConsumerLag {
    /// Domain events not counted yet.
    pub backlog: i64,
    /// How long ago the oldest of them happened (or an upper bound): 0 when caught up.
    pub age: Duration,
}

impl ConsumerLag {
    fn export(self) {
        metrics::gauge!("boxoffice_analytics_backlog").set(self.backlog as f64);
        metrics::gauge!("boxoffice_analytics_lag_seconds").set(self.age.as_secs_f64());
    }
}

/// The lag of the outbox source: unread rows, and the age of the oldest by `clock`.
pub async fn outbox_lag(store: &Store, clock: &Clock) -> anyhow::Result<ConsumerLag> {
    let (backlog, oldest) = store.analytics_lag().await?;
    Ok(ConsumerLag { backlog, age: age_of(oldest, clock) })
}

fn age_of(t: Option<DateTime<Utc>>, clock: &Clock) -> Duration {
    t.and_then(|t| (clock.now() - t).to_std().ok()).unwrap_or_default()
}

/// Where the consumer stands in one partition, as of its last fetch.
#[derive(Debug, Clone, Copy, Default)]
struct PartitionLag {
    /// Records between the position and the high watermark.
    behind: i64,
    /// Time of the last record read (the next one is no older).
    read_up_to: Option<DateTime<Utc>>,
}

/// The lag of the Kafka source: records behind the high watermarks; the age is that of the
/// last record read in the partition furthest behind in time, an upper bound of the unread
/// records' age (their timestamps are unknown until fetched), which keeps growing while the
/// broker cannot be reached.
fn kafka_lag(partitions: &BTreeMap<i32, PartitionLag>, clock: &Clock) -> ConsumerLag {
    let waiting = partitions.values().filter(|p| p.behind > 0);
    let backlog = waiting.clone().map(|p| p.behind).sum();
    let oldest = waiting.filter_map(|p| p.read_up_to).min();
    ConsumerLag { backlog, age: age_of(oldest, clock) }
}

/// Outbox rows read at once (one transaction each).
const BATCH: u32 = 500;
/// Bytes fetched from a partition at once (at most).
const FETCH_BYTES: i32 = 1_000_000;
/// How long the broker may wait for records to arrive in an empty partition.
const FETCH_WAIT_MS: i32 = 50;
/// Pause after a failure before the source is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn count(done: Applied) {
    metrics::counter!("boxoffice_analytics_events_applied_total").increment(done.applied);
    metrics::counter!("boxoffice_analytics_duplicates_skipped_total").increment(done.duplicates);
}

/// Reads and counts the oldest outbox rows the analytics have not read; returns how many rows
/// were read (0: nothing waits). Rows nobody can read are passed over with the others.
pub async fn consume_outbox(store: &Store, clock: &Clock, limit: u32) -> anyhow::Result<usize> {
    let rows = store.analytics_unread(limit).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (events, _unreadable) = crate::bus::read_events(store, &rows).await?;
    let events: Vec<DomainEvent> = events.into_iter().map(|(_, e)| e).collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let done = store.apply_analytics(&events, AnalyticsPosition::Outbox(&ids), clock.now()).await?;
    count(done);
    Ok(rows.len())
}

/// The consumer's view of the topic.
struct Topic {
    _client: Client,
    partitions: BTreeMap<i32, PartitionClient>,
}

/// A client of the cluster, with SASL when configured.
async fn client(s: &KafkaSettings) -> Result<Client, String> {
    let mut builder = ClientBuilder::new(s.brokers.clone()).client_id("boxoffice-analytics");
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

async fn open_topic(s: &KafkaSettings) -> Result<Topic, String> {
    let client = client(s).await?;
    let topics = bounded("list topics", client.list_topics()).await?;
    // The sink makes the topic; until it did, there is nothing to read.
    let Some(topic) = topics.iter().find(|t| t.name == s.topic) else {
        return Err(format!("topic {} does not exist yet", s.topic));
    };
    let mut partitions = BTreeMap::new();
    for p in topic.partitions.iter().copied() {
        let pc = bounded("partition", client.partition_client(s.topic.clone(), p, UnknownTopicHandling::Error)).await?;
        partitions.insert(p, pc);
    }
    Ok(Topic { _client: client, partitions })
}

/// The domain events of fetched records; a record that is not one (another producer's) is
/// logged, counted and passed over.
fn events_of(records: &[rskafka::record::RecordAndOffset], partition: i32) -> Vec<DomainEvent> {
    let mut events = Vec::with_capacity(records.len());
    for r in records {
        match r.record.value.as_deref().map(serde_json::from_slice::<DomainEvent>) {
            Some(Ok(e)) => events.push(e),
            Some(Err(e)) => {
                metrics::counter!("boxoffice_analytics_records_skipped_total").increment(1);
                tracing::error!(error = %e, partition, offset = r.offset, "kafka record is not a domain event; skipped");
            }
            None => {
                metrics::counter!("boxoffice_analytics_records_skipped_total").increment(1);
                tracing::error!(partition, offset = r.offset, "kafka record without a value; skipped");
            }
        }
    }
    events
}

pub enum AnalyticsMsg {
    /// Read what waits; answered when done (the ticker waits, so ticks never pile up).
    Poll(RpcReplyPort<()>),
    /// Forget the ids counted longer ago than the retention.
    Prune,
}

pub struct AnalyticsConsumer;

pub struct ConsumerState {
    store: Store,
    clock: Clock,
    settings: AnalyticsSettings,
    source: AnalyticsSource,
    topic: Option<Topic>,
    /// Per partition of the Kafka source, as of the last fetch.
    partitions: BTreeMap<i32, PartitionLag>,
    /// No attempt before this (after a failure), and whether the failure was logged.
    quiet_until: Option<Instant>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ConsumerState {
    /// Reads one round from Kafka: a fetch per partition from the stored position (the
    /// earliest record kept, for a partition never read); `Ok(true)` if more waits.
    async fn consume_kafka(&mut self, s: &KafkaSettings) -> Result<bool, String> {
        if self.topic.is_none() {
            self.topic = Some(open_topic(s).await?);
            tracing::info!(topic = %s.topic, "analytics reading kafka");
        }
        let offsets = self.store.analytics_offsets(&s.topic).await.map_err(|e| e.to_string())?;
        let topic = self.topic.as_ref().expect("opened above");
        let mut more = false;
        for (&p, client) in &topic.partitions {
            let offset = match offsets.get(&p) {
                Some(o) => *o,
                None => bounded("earliest offset", client.get_offset(OffsetAt::Earliest)).await?,
            };
            let fetched = tokio::time::timeout(
                Duration::from_secs(5),
                client.fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS),
            )
            .await
            .map_err(|_| "fetch: no answer within 5s".to_owned())?;
            let (records, high) = match fetched {
                Ok(r) => r,
                Err(KafkaError::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. }) => {
                    // The broker dropped records never read (retention), or lost the topic
                    // and made it again: go on from the earliest record it keeps (ids already
                    // counted are skipped if they come again).
                    let earliest = bounded("earliest offset", client.get_offset(OffsetAt::Earliest)).await?;
                    tracing::warn!(
                        partition = p,
                        offset,
                        earliest,
                        "kafka position out of range; reading from the earliest record"
                    );
                    self.store
                        .reset_analytics_offset(&s.topic, p, earliest, self.clock.now())
                        .await
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                Err(e) => return Err(format!("fetch: {e}")),
            };
            let lag = self.partitions.entry(p).or_default();
            let Some(last) = records.last() else {
                lag.behind = (high - offset).max(0);
                continue;
            };
            let (last, read_up_to) = (last.offset, last.record.timestamp);
            let events = events_of(&records, p);
            let at = AnalyticsPosition::Kafka { topic: &s.topic, partition: p, next_offset: last + 1 };
            let done = self.store.apply_analytics(&events, at, self.clock.now()).await.map_err(|e| e.to_string())?;
            count(done);
            let lag = self.partitions.entry(p).or_default();
            *lag = PartitionLag { behind: (high - (last + 1)).max(0), read_up_to: Some(read_up_to) };
            more |= last + 1 < high;
        }
        Ok(more)
    }

    async fn consume_some(&mut self) -> Result<bool, String> {
        match self.source.clone() {
            AnalyticsSource::Outbox => {
                let n = consume_outbox(&self.store, &self.clock, BATCH).await.map_err(|e| e.to_string())?;
                Ok(n as u32 == BATCH)
            }
            AnalyticsSource::Kafka(s) => self.consume_kafka(&s).await.inspect_err(|_| self.topic = None),
        }
    }

    /// Exports how far behind the figures are (after every round, failed ones too).
    async fn export_lag(&self) {
        let lag = match &self.source {
            AnalyticsSource::Outbox => match outbox_lag(&self.store, &self.clock).await {
                Ok(lag) => lag,
                Err(e) => {
                    tracing::debug!(error = %e, "analytics lag not read");
                    return;
                }
            },
            AnalyticsSource::Kafka(_) => kafka_lag(&self.partitions, &self.clock),
        };
        lag.export();
    }

    async fn poll(&mut self) {
        if self.quiet_until.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.consume_all().await;
        self.export_lag().await;
    }

    async fn consume_all(&mut self) {
        loop {
            match self.consume_some().await {
                Ok(true) => continue,
                Ok(false) => {
                    if self.quiet_until.take().is_some() {
                        tracing::info!(source = %self.source.describe(), "analytics reading again");
                    }
                    return;
                }
                Err(why) => {
                    if self.quiet_until.is_none() {
                        tracing::warn!(error = %why, source = %self.source.describe(),
                            "analytics cannot read the stream; figures wait");
                    }
                    self.quiet_until = Some(Instant::now() + RETRY_AFTER);
                    return;
                }
            }
        }
    }
}

impl Actor for AnalyticsConsumer {
    type Msg = AnalyticsMsg;
    type State = ConsumerState;
    /// The store, where to read, how to run, and the clock ids and lag are aged by.
    type Arguments = (Store, AnalyticsSource, AnalyticsSettings, Clock);

    async fn pre_start(
        &self,
        myself: ActorRef<AnalyticsMsg>,
        (store, source, settings, clock): Self::Arguments,
    ) -> Result<ConsumerState, ActorProcessingErr> {
        let me = myself.clone();
        let every = settings.poll;
        // One poll at a time: a long one (an outage, a large backlog) does not pile ticks up.
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if me.call(AnalyticsMsg::Poll, None).await.is_err() {
                    return;
                }
            }
        });
        // At start too: a process restarted more often than hourly still prunes.
        let _ = myself.cast(AnalyticsMsg::Prune);
        myself.send_interval(settings.prune_every, || AnalyticsMsg::Prune);
        tracing::info!(source = %source.describe(), "sales analytics starting");
        Ok(ConsumerState {
            store,
            clock,
            settings,
            source,
            topic: None,
            partitions: BTreeMap::new(),
            quiet_until: None,
            ticker: Some(ticker),
        })
    }

    async fn post_stop(&self, _: ActorRef<AnalyticsMsg>, state: &mut ConsumerState) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.ticker.take() {
            t.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<AnalyticsMsg>,
        msg: AnalyticsMsg,
        state: &mut ConsumerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            AnalyticsMsg::Poll(reply) => {
                // Boxed: the round's future nests deep enough to overflow the compiler's layout depth.
                Box::pin(state.poll()).await;
                let _ = reply.send(());
            }
            AnalyticsMsg::Prune => match prune_seen(&state.store, &state.clock, state.settings.dedup_retention).await {
                Ok(0) => {}
                Ok(forgotten) => tracing::info!(forgotten, "ids of long-counted domain events pruned"),
                Err(e) => tracing::warn!(error = %e, "counted ids not pruned; will try again"),
            },
        }
        Ok(())
    }
}
