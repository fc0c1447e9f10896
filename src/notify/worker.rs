//! The notification workers: a `NotificationSupervisor` keeps a pool of `NotificationWorker`
//! actors linked to it and restarts one whose consumer died (the broker went away) after a
//! pause. A worker turns each message into an e-mail and settles it: sent → ack; transient
//! failure → back of the queue after a backoff, one attempt more; a message that still fails
//! after `max_attempts`, or can never succeed, → dead-letter queue. Delivery is idempotent:
//! a message id is claimed (with a lease) before its e-mail goes and marked sent after, so a
//! redelivered or concurrently delivered copy sends nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::mail::{Attachment, Email, MailError, Mailer};
use super::{BookingFacts, FactsError, templates};
use crate::bus::{Bus, BusMessage, Delivery, amqp};
use crate::domain::stream::{DomainEvent, EventData};
use crate::persistence::{DeliveryClaim, Store};
use crate::receipts::ReceiptError;

#[derive(Clone)]
pub struct WorkerSettings {
    pub workers: usize,
    /// Messages a worker holds unacknowledged at once.
    pub prefetch: u16,
    /// Tries before a failing message is dead-lettered.
    pub max_attempts: u32,
    /// First retry pause; doubles with each attempt.
    pub backoff: Duration,
    /// This process's name, which its broker consumer tags start with (set by start-up).
    pub consumer_tag: String,
}

#[derive(Clone)]
pub struct NotifyCtx {
    pub store: Store,
    pub bus: Bus,
    pub mailer: Arc<Mailer>,
    pub settings: WorkerSettings,
    pub receipts: crate::receipts::Receipts,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// May succeed later (mail server, database, broker).
    #[error("{0}")]
    Transient(String),
    /// Never will (malformed message): straight to the dead-letter queue.
    #[error("{0}")]
    Permanent(String),
}

impl From<FactsError> for Failure {
    fn from(e: FactsError) -> Self {
        // A missing row may be a message from a transaction not yet visible: retry, and let
        // the attempt limit dead-letter it if it never shows up.
        Failure::Transient(e.to_string())
    }
}

impl From<MailError> for Failure {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Transient(m) => Failure::Transient(m),
            MailError::Permanent(m) => Failure::Permanent(m),
        }
    }
}

/// Sends the e-mail a message calls for, unless it was sent before.
async fn deliver(ctx: &NotifyCtx, m: &BusMessage) -> Result<&'static str, Failure> {
    let event = m.event().map_err(|e| Failure::Permanent(format!("not a domain event: {e}")))?;
    if !event.notifies() {
        // On the notification queue only through a broader binding of an older version.
        return Ok("not_notified");
    }
    let store = &ctx.store;
    let transient = |e: crate::persistence::StoreError| Failure::Transient(e.to_string());
    match store.claim_delivery(&m.id, crate::domain::now(), CLAIM_LEASE).await.map_err(transient)? {
        DeliveryClaim::Claimed => {}
        DeliveryClaim::AlreadySent => return Ok("duplicate"),
        // Retried later: by then it is sent (a duplicate) or its sender died (claimable).
        DeliveryClaim::Busy => return Err(Failure::Transient("another worker is sending this message".into())),
    }
    let result = send(ctx, &m.id, &event).await;
    match &result {
        Ok(_) => store.delivery_sent(&m.id, crate::domain::now()).await.map_err(transient)?,
        Err(_) => {
            if let Err(e) = store.release_delivery(&m.id).await {
                tracing::warn!(error = %e, "delivery claim not released; it lapses by itself");
            }
        }
    }
    result
}

/// How long a worker may take to send one message before another may try.
const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Renders and sends the e-mail of a message this worker has claimed.
async fn send(ctx: &NotifyCtx, message_id: &str, event: &DomainEvent) -> Result<&'static str, Failure> {
    let store = &ctx.store;
    let booking_id = event.booking_id.ok_or_else(|| Failure::Permanent("the event names no booking".into()))?;
    let booking = store
        .booking(booking_id)
        .await
        .map_err(|e| Failure::Transient(e.to_string()))?
        .ok_or(FactsError::Missing("booking"))?;
    let facts = BookingFacts::load(store, booking).await?;
    let info = facts.info();
    let mut attachments = Vec::new();
    let rendered = match &event.data {
        EventData::BookingConfirmed { .. } => {
            // Rendered and stored once here (or read back if stored before); storage never fails this.
            let pdf = ctx.receipts.at_confirmation(&facts).await.map_err(|e| match e {
                ReceiptError::Render(e) => Failure::Permanent(e.to_string()),
                other => Failure::Transient(other.to_string()),
            })?;
            attachments.push(Attachment {
                filename: format!("receipt-{}.pdf", facts.booking.id),
                content_type: "application/pdf".into(),
                bytes: pdf,
            });
            templates::booking_confirmed(&info)
        }
        EventData::BookingCancelled { reason, .. } => templates::booking_cancelled(&info, reason.as_str()),
        EventData::BookingExpired { .. } => templates::booking_expired(&info),
        EventData::PaymentFailed { reason, .. } => templates::payment_failed(&info, reason),
        EventData::PaymentRefunded { .. } => templates::payment_refunded(&info),
        other => return Err(Failure::Permanent(format!("no notification for {}", other.kind().as_str()))),
    };
    let email = Email {
        message_id: message_id.to_owned(),
        to: facts.customer_email.clone(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        attachments,
    };
    ctx.mailer.send(&email).await?;
    Ok("sent")
}

/// Handles one delivery to the end: sent, retried later, or dead-lettered.
async fn settle(ctx: &NotifyCtx, d: Delivery) {
    let m = d.message().clone();
    let attempts = d.attempts();
    // Settled for good (sent or dead-lettered) in process: the row to mark sent.
    let local_row = matches!(d, Delivery::Local { .. }).then(|| crate::bus::outbox_id(&m)).flatten();
    let span = tracing::info_span!("notify", message_id = %m.id, topic = %m.topic,
        request_id = %m.request_id.as_deref().unwrap_or(""), attempt = attempts + 1);
    async {
        let settled = match deliver(ctx, &m).await {
            Ok(outcome) => {
                metrics::counter!("boxoffice_notifications_total", "outcome" => outcome).increment(1);
                tracing::info!(outcome, "notification handled");
                d.ack().await.map(|()| local_row)
            }
            Err(Failure::Transient(e)) if attempts + 1 < ctx.settings.max_attempts => {
                metrics::counter!("boxoffice_notifications_total", "outcome" => "retried").increment(1);
                let pause = ctx.settings.backoff * 2u32.saturating_pow(attempts.min(10));
                tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "notification failed; will retry");
                tokio::time::sleep(pause).await;
                d.retry().await.map(|()| None)
            }
            Err(e) => {
                metrics::counter!("boxoffice_notifications_total", "outcome" => "dead_lettered").increment(1);
                tracing::error!(error = %e, "notification given up; dead-lettered");
                d.dead_letter().await.map(|()| local_row)
            }
        };
        match settled {
            // In process the outbox row is the only copy: it is marked sent once settled.
            Ok(Some(id)) => {
                if let Err(e) = ctx.store.mark_sent(&[id], crate::domain::now()).await {
                    tracing::warn!(error = %e, "outbox row not marked sent; it will be sent again (and deduplicated)");
                }
                // Only now may the relay queue the row again (if the mark failed).
                if let Bus::InProcess(q) = &ctx.bus {
                    q.release(id);
                }
            }
            Ok(None) => {}
            // Unsettled: the broker redelivers it to someone, and the record of sent ids
            // keeps that from sending twice.
            Err(e) => tracing::warn!(error = %e, "delivery not settled"),
        }
    }
    .instrument(span)
    .await
}

pub enum WorkerMsg {
    Job(Delivery, OwnedSemaphorePermit),
    /// The consumer ended (broker gone): fail, so the supervisor restarts this worker.
    Lost(String),
}

struct NotificationWorker;

struct WorkerState {
    ctx: NotifyCtx,
    pump: tokio::task::JoinHandle<()>,
}

impl Actor for NotificationWorker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = (usize, NotifyCtx);

    async fn pre_start(
        &self,
        myself: ActorRef<WorkerMsg>,
        (index, ctx): Self::Arguments,
    ) -> Result<WorkerState, ActorProcessingErr> {
        // The pump hands the worker at most `prefetch` messages at a time.
        let permits = Arc::new(Semaphore::new(ctx.settings.prefetch.max(1) as usize));
        let pump = match &ctx.bus {
            Bus::Amqp { url, topology, .. } => {
                let tag = format!("{}-{index}", ctx.settings.consumer_tag);
                let mut consumer = amqp::AmqpConsumer::connect_with(url, topology, ctx.settings.prefetch, &tag).await?;
                let me = myself.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        match consumer.next().await {
                            Some(Ok(d)) => {
                                if me.send_message(WorkerMsg::Job(Delivery::Amqp(Box::new(d)), permit)).is_err() {
                                    return;
                                }
                            }
                            Some(Err(e)) => {
                                let _ = me.send_message(WorkerMsg::Lost(e.to_string()));
                                return;
                            }
                            None => {
                                let _ = me.send_message(WorkerMsg::Lost("consumer ended".into()));
                                return;
                            }
                        }
                    }
                })
            }
            Bus::InProcess(queue) => {
                let (me, queue) = (myself.clone(), queue.clone());
                tokio::spawn(async move {
                    loop {
                        let Ok(permit) = permits.clone().acquire_owned().await else { return };
                        let Some((message, attempts)) = queue.recv().await else { return };
                        let job = Delivery::Local { queue: queue.clone(), message, attempts };
                        if me.send_message(WorkerMsg::Job(job, permit)).is_err() {
                            return;
                        }
                    }
                })
            }
        };
        Ok(WorkerState { ctx, pump })
    }

    async fn post_stop(&self, _: ActorRef<WorkerMsg>, state: &mut WorkerState) -> Result<(), ActorProcessingErr> {
        state.pump.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Job(d, permit) => {
                settle(&state.ctx, d).await;
                drop(permit);
                Ok(())
            }
            WorkerMsg::Lost(why) => Err(format!("consumer lost: {why}").into()),
        }
    }
}

pub enum PoolMsg {
    Spawn(usize),
}

pub struct NotificationSupervisor;

pub struct PoolState {
    ctx: NotifyCtx,
    workers: HashMap<ActorId, usize>,
    /// Consecutive failed starts, for the restart backoff.
    failures: u32,
}

impl PoolState {
    async fn spawn(&mut self, myself: &ActorRef<PoolMsg>, index: usize) {
        match Actor::spawn_linked(None, NotificationWorker, (index, self.ctx.clone()), myself.get_cell()).await {
            Ok((w, _)) => {
                self.workers.insert(w.get_id(), index);
                self.failures = 0;
            }
            Err(e) => {
                self.failures += 1;
                let pause = Duration::from_millis(250 * 2u64.pow(self.failures.min(5)));
                if self.failures == 1 {
                    tracing::warn!(worker = index, error = %e, "notification worker cannot start; retrying");
                }
                myself.send_after(pause, move || PoolMsg::Spawn(index));
            }
        }
    }
}

impl Actor for NotificationSupervisor {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = NotifyCtx;

    async fn pre_start(&self, myself: ActorRef<PoolMsg>, ctx: NotifyCtx) -> Result<PoolState, ActorProcessingErr> {
        for i in 0..ctx.settings.workers.max(1) {
            myself.send_message(PoolMsg::Spawn(i))?;
        }
        Ok(PoolState { ctx, workers: HashMap::new(), failures: 0 })
    }

    async fn handle(
        &self,
        myself: ActorRef<PoolMsg>,
        msg: PoolMsg,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Spawn(i) => state.spawn(&myself, i).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PoolMsg>,
        event: SupervisionEvent,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(i) = state.workers.remove(&cell.get_id()) {
                    metrics::counter!("boxoffice_actor_restarts_total", "actor" => "notification_worker").increment(1);
                    tracing::warn!(worker = i, error = %err, "notification worker failed; restarting");
                    myself.send_after(Duration::from_millis(500), move || PoolMsg::Spawn(i));
                }
            }
            SupervisionEvent::ActorTerminated(cell, ..) => {
                state.workers.remove(&cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}
