//! The message bus between the outbox and the notification workers: RabbitMQ (`amqp.rs`) when
//! `AMQP_URL` is set, else an in-process channel with the same retry and dead-letter rules.
//! The `OutboxRelay` actor publishes unsent outbox rows (with publisher confirms on RabbitMQ)
//! and marks exactly the confirmed ones sent; while the broker is down rows simply wait.

pub mod amqp;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{Mutex, mpsc};

pub use amqp::{AmqpDelivery, BusError, BusMessage, Topology};

use crate::domain::stream::DomainEvent;
use crate::persistence::{OutboxRow, Store};

/// Where messages travel.
#[derive(Clone)]
pub enum Bus {
    Amqp {
        url: String,
        topology: Topology,
        /// The last readiness check and when it was made (probes must not hammer the broker).
        health: Arc<std::sync::Mutex<Option<(Instant, bool)>>>,
    },
    InProcess(LocalQueue),
}

/// How long a readiness answer about the broker is reused.
const HEALTH_TTL: Duration = Duration::from_secs(2);

impl Bus {
    pub fn new(amqp_url: Option<&str>, prefix: &str) -> Self {
        match amqp_url {
            Some(url) => {
                Bus::Amqp { url: url.to_owned(), topology: Topology::with_prefix(prefix), health: Arc::default() }
            }
            None => Bus::InProcess(LocalQueue::new()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Bus::Amqp { topology, .. } => format!("rabbitmq exchange {}", topology.exchange),
            Bus::InProcess(_) => "in-process".into(),
        }
    }

    /// Whether the broker answers (always true in process); answers are reused for 2 s.
    pub async fn ping(&self) -> Result<(), BusError> {
        let Bus::Amqp { url, topology, health } = self else { return Ok(()) };
        let cached = *health.lock().expect("health lock");
        let up = match cached {
            Some((at, up)) if at.elapsed() < HEALTH_TTL => up,
            _ => {
                // Connecting declares the topology too (idempotent), so this also answers
                // before any message or worker made the queues.
                let up = match amqp::AmqpPublisher::connect_with(url, topology).await {
                    Ok(p) => {
                        p.close().await;
                        true
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "broker readiness check failed");
                        false
                    }
                };
                *health.lock().expect("health lock") = Some((Instant::now(), up));
                up
            }
        };
        if up { Ok(()) } else { Err(BusError::Disconnected("the broker did not answer".into())) }
    }
}

/// What the metrics sampler learns about the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerProbe {
    pub up: bool,
    /// Messages waiting in the dead-letter queue (unknown while the broker is down).
    pub dead_letters: Option<u64>,
}

impl Bus {
    /// One look at the broker: reachable (the readiness check, which also refreshes `/readyz`'s
    /// cached answer), and how full the dead-letter queue is.
    pub async fn probe(&self) -> BrokerProbe {
        match self {
            Bus::InProcess(q) => BrokerProbe { up: true, dead_letters: Some(q.dead_letters().len() as u64) },
            Bus::Amqp { url, topology, .. } => {
                if self.ping().await.is_err() {
                    return BrokerProbe { up: false, dead_letters: None };
                }
                // The ping declared the topology, so the dead-letter queue exists.
                let dead_letters = match amqp::queue_depth(url, &topology.dead_queue).await {
                    Ok(n) => Some(u64::from(n)),
                    Err(e) => {
                        tracing::debug!(error = %e, "dead-letter queue depth not read");
                        None
                    }
                };
                BrokerProbe { up: true, dead_letters }
            }
        }
    }
}

/// The in-process queue: a message and how often it was tried.
#[derive(Clone)]
pub struct LocalQueue {
    tx: mpsc::UnboundedSender<(BusMessage, u32)>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<(BusMessage, u32)>>>,
    dead: Arc<std::sync::Mutex<Vec<BusMessage>>>,
    /// Outbox rows queued here and not settled yet: the relay does not queue them again.
    held: Arc<std::sync::Mutex<HashSet<i64>>>,
}

/// Outbox rows held in process at most: beyond, the relay waits for the workers.
const LOCAL_WINDOW: usize = 1000;

impl LocalQueue {
    fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self { tx, rx: Arc::new(Mutex::new(rx)), dead: Arc::default(), held: Arc::default() }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.held.lock().expect("held rows lock")
    }

    /// The outbox row `id` was settled (sent, or given up on) and marked sent: a row still
    /// unsent after this (the mark failed) is queued again, and the record of sent
    /// notifications keeps that from sending twice.
    pub fn release(&self, id: i64) {
        self.held().remove(&id);
    }

    fn send(&self, m: BusMessage, attempts: u32) {
        // The receiver lives as long as any clone of the queue.
        let _ = self.tx.send((m, attempts));
    }

    pub async fn recv(&self) -> Option<(BusMessage, u32)> {
        self.rx.lock().await.recv().await
    }

    /// Messages given up on (the in-process dead-letter queue).
    pub fn dead_letters(&self) -> Vec<BusMessage> {
        self.dead.lock().expect("dead letters lock").clone()
    }
}

/// The outbox row id of a message (`outbox-<id>`).
pub fn outbox_id(m: &BusMessage) -> Option<i64> {
    m.id.strip_prefix("outbox-")?.parse().ok()
}

/// One received message, from either bus.
pub enum Delivery {
    Amqp(Box<AmqpDelivery>),
    Local { queue: LocalQueue, message: BusMessage, attempts: u32 },
}

impl Delivery {
    pub fn message(&self) -> &BusMessage {
        match self {
            Delivery::Amqp(d) => &d.message,
            Delivery::Local { message, .. } => message,
        }
    }

    /// Earlier tries of this message.
    pub fn attempts(&self) -> u32 {
        match self {
            Delivery::Amqp(d) => d.attempts,
            Delivery::Local { attempts, .. } => *attempts,
        }
    }

    pub async fn ack(self) -> Result<(), BusError> {
        match self {
            Delivery::Amqp(d) => (*d).ack().await,
            Delivery::Local { .. } => Ok(()),
        }
    }

    /// Back of the queue, one attempt more.
    pub async fn retry(self) -> Result<(), BusError> {
        match self {
            Delivery::Amqp(d) => (*d).retry().await,
            Delivery::Local { queue, message, attempts } => {
                queue.send(message, attempts + 1);
                Ok(())
            }
        }
    }

    pub async fn dead_letter(self) -> Result<(), BusError> {
        match self {
            Delivery::Amqp(d) => (*d).dead_letter().await,
            Delivery::Local { queue, message, .. } => {
                queue.dead.lock().expect("dead letters lock").push(message);
                Ok(())
            }
        }
    }
}

/// The bus message of an outbox row's domain event; its id is stable, so consumers can drop
/// duplicates.
pub fn message_of(row: i64, event: &DomainEvent) -> BusMessage {
    BusMessage::of(format!("outbox-{row}"), event)
}

/// Reads the domain events of outbox rows. Rows that can never be read (malformed, written by
/// an older version about a booking that is gone) are logged, counted and returned apart, for
/// the caller to mark sent: a row nobody can read must not hold up the rows behind it.
pub async fn read_events(store: &Store, rows: &[OutboxRow]) -> anyhow::Result<(Vec<(i64, DomainEvent)>, Vec<i64>)> {
    let (mut events, mut unreadable) = (Vec::with_capacity(rows.len()), Vec::new());
    for row in rows {
        match store.outbox_event(row).await? {
            Ok(e) => events.push((row.id, e)),
            Err(e) => {
                metrics::counter!("boxoffice_outbox_unreadable_total").increment(1);
                tracing::error!(error = %e, topic = %row.topic, "outbox row skipped");
                unreadable.push(row.id);
            }
        }
    }
    Ok((events, unreadable))
}

pub enum RelayMsg {
    /// Publish whatever is unsent.
    Drain,
    /// Forget what was sent long ago.
    Prune,
}

/// How long sent outbox rows and delivery records are kept.
const RETENTION: chrono::Duration = chrono::Duration::days(7);

pub struct OutboxRelay;

pub struct RelayState {
    store: Store,
    bus: Bus,
    /// A `Drain` is in the mailbox: the waker does not add another.
    pending: Arc<std::sync::atomic::AtomicBool>,
    publisher: Option<amqp::AmqpPublisher>,
    /// Whether the last attempt to reach the broker failed (logged once per outage).
    broker_down: bool,
    /// Whether the Kafka sink publishes the outbox too (rows are then pruned only once there).
    kafka: bool,
    waker: tokio::task::JoinHandle<()>,
}

const BATCH: u32 = 500;

impl RelayState {
    /// In process: queues unsent rows the workers do not hold yet; `Ok(true)` if there may be
    /// more. A row is marked sent only once a worker settled it, so a crash or shutdown loses
    /// nothing (the next process queues the unsent rows again). Rows are found by `sent_at IS
    /// NULL`, never by an id cursor, so a row whose transaction commits after a higher id was
    /// read is found on the next round.
    async fn queue_some(&mut self, q: &LocalQueue) -> anyhow::Result<bool> {
        let held = q.held().len();
        let room = LOCAL_WINDOW.saturating_sub(held).min(BATCH as usize);
        if room == 0 {
            return Ok(false);
        }
        // Enough of the oldest unsent ids to find `room` rows not held yet, if there are any.
        let limit = (held + room) as u32;
        let ids = self.store.unsent_outbox_ids(limit).await?;
        let fresh: Vec<i64> = {
            let held = q.held();
            ids.iter().copied().filter(|id| !held.contains(id)).take(room).collect()
        };
        if fresh.is_empty() {
            return Ok(false);
        }
        // Rows a worker settled since the ids were read are not sent again.
        let rows = self.store.unsent_outbox_rows(&fresh).await?;
        let (events, mut settled) = read_events(&self.store, &rows).await?;
        // In process only the notification workers consume this cursor: a change nobody is
        // told about is settled here (other sinks keep their own cursors).
        let (notify, quiet): (Vec<_>, Vec<_>) = events.into_iter().partition(|(_, e)| e.notifies());
        settled.extend(quiet.iter().map(|(id, _)| *id));
        self.store.mark_sent(&settled, crate::domain::now()).await?;
        q.held().extend(notify.iter().map(|(id, _)| *id));
        for (id, event) in &notify {
            q.send(message_of(*id, event), 0);
        }
        metrics::counter!("boxoffice_outbox_published_total").increment((notify.len() + quiet.len()) as u64);
        Ok(fresh.len() == room && ids.len() as u32 == limit)
    }

    /// Publishes one batch; `Ok(true)` if there may be more.
    async fn publish_some(&mut self) -> anyhow::Result<bool> {
        let (url, topology) = match &self.bus {
            Bus::InProcess(q) => {
                let q = q.clone();
                return self.queue_some(&q).await;
            }
            Bus::Amqp { url, topology, .. } => (url.clone(), topology.clone()),
        };
        // Through the broker a row is marked sent as soon as the broker confirmed it, so the
        // oldest unsent rows are simply read again each round (no cursor either).
        let rows = self.store.unsent_outbox(BATCH).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let (events, unreadable) = read_events(&self.store, &rows).await?;
        self.store.mark_sent(&unreadable, crate::domain::now()).await?;
        let messages: Vec<BusMessage> = events.iter().map(|(id, e)| message_of(*id, e)).collect();
        if self.publisher.as_ref().is_none_or(|p| !p.is_connected()) {
            self.publisher = None;
            match amqp::AmqpPublisher::connect_with(&url, &topology).await {
                Ok(p) => {
                    if self.broker_down {
                        tracing::info!("broker reachable again; publishing the outbox");
                    }
                    self.broker_down = false;
                    self.publisher = Some(p);
                }
                Err(e) => {
                    if !self.broker_down {
                        tracing::warn!(error = %e, waiting = rows.len(), "broker unreachable; outbox rows wait");
                    }
                    self.broker_down = true;
                    return Ok(false);
                }
            }
        }
        let publisher = self.publisher.as_ref().expect("connected above");
        let sent = match publisher.publish_batch(&messages).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox batch not confirmed; will retry");
                self.publisher = None;
                return Ok(false);
            }
        };
        let ids: Vec<i64> = events.iter().take(sent).map(|(id, _)| *id).collect();
        self.store.mark_sent(&ids, crate::domain::now()).await?;
        metrics::counter!("boxoffice_outbox_published_total").increment(sent as u64);
        // A partly confirmed batch means the channel broke: reconnect on the next drain.
        if sent < messages.len() {
            self.publisher = None;
            return Ok(false);
        }
        Ok(rows.len() as u32 == BATCH)
    }
}

impl Actor for OutboxRelay {
    type Msg = RelayMsg;
    type State = RelayState;
    /// The store, the bus, the wake-up of new rows, the timer, and whether Kafka also reads the outbox.
    type Arguments = (Store, Bus, Arc<tokio::sync::Notify>, Duration, bool);

    async fn pre_start(
        &self,
        myself: ActorRef<RelayMsg>,
        (store, bus, wake, every, kafka): Self::Arguments,
    ) -> Result<RelayState, ActorProcessingErr> {
        // Woken by commits that wrote outbox rows, and by a timer for everything else
        // (rows written by another process, a broker that came back).
        let me = myself.clone();
        let pending = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = pending.clone();
        let waker = tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(every, wake.notified()).await;
                // One drain at a time in the mailbox, however long a drain takes.
                if !flag.swap(true, std::sync::atomic::Ordering::AcqRel) && me.send_message(RelayMsg::Drain).is_err() {
                    return;
                }
            }
        });
        myself.send_interval(Duration::from_secs(3600), || RelayMsg::Prune);
        Ok(RelayState { store, bus, pending, publisher: None, broker_down: false, kafka, waker })
    }

    async fn post_stop(&self, _: ActorRef<RelayMsg>, state: &mut RelayState) -> Result<(), ActorProcessingErr> {
        state.waker.abort();
        if let Some(p) = state.publisher.take() {
            p.close().await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<RelayMsg>,
        msg: RelayMsg,
        state: &mut RelayState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RelayMsg::Prune => match state.store.prune_messages(crate::domain::now() - RETENTION, state.kafka).await {
                Ok((outbox, deliveries)) if outbox + deliveries > 0 => {
                    tracing::info!(outbox, deliveries, "old outbox rows and delivery records pruned");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox not pruned; will try again"),
            },
            RelayMsg::Drain => loop {
                state.pending.store(false, std::sync::atomic::Ordering::Release);
                match state.publish_some().await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "outbox not read; will retry");
                        break;
                    }
                }
            },
        }
        Ok(())
    }
}
