//! One saga actor per payment: charge → wait for the provider's verdict (webhook, status poll,
//! or the deadline) → confirm the booking through its event actor, or release the hold
//! (compensation), or refund a success that came too late. Every step is persisted before the
//! next begins, so a saga started from the stored row (after a crash, or on another process)
//! carries on where the last one stopped. Each `Advance` re-reads the row and takes one step.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use super::PaymentsCtx;
use super::gateway::{ChargeRequest, GatewayError, ProviderState};
use crate::actors::BookingError;
use crate::domain::booking::{BookingStatus, CancelReason};
use crate::domain::ids::PaymentId;
use crate::domain::payment::{Outcome, PaymentStatus, SagaStep};
use crate::domain::stream::{DomainEvent, EventData};
use crate::persistence::{BookingRow, JournalOp, OutboxEntry, PaymentRow};
use chrono::{DateTime, Utc};

pub enum SagaMsg {
    /// Re-read the payment and take the next step.
    Advance,
}

pub struct PaymentSaga;

pub struct SagaState {
    id: PaymentId,
    ctx: PaymentsCtx,
    span: tracing::Span,
    last_poll: Option<Instant>,
}

/// What a step leads to.
enum Next {
    Now,
    After(Duration),
    Finished,
}

/// The outbox write announcing a change of a payment (and its booking).
fn announce(at: DateTime<Utc>, booking: Option<&BookingRow>, p: &PaymentRow, data: EventData) -> JournalOp {
    JournalOp::Outbox(message(at, booking, p, data))
}

fn message(at: DateTime<Utc>, booking: Option<&BookingRow>, p: &PaymentRow, data: EventData) -> OutboxEntry {
    let event_id = booking.map_or(p.event_id, |b| b.event_id);
    let event = DomainEvent::new(at, event_id, Some(p.booking_id), data).with_request_id(p.request_id.clone());
    OutboxEntry::new(event)
}

fn failed(p: &PaymentRow, reason: &str) -> EventData {
    EventData::PaymentFailed { payment_id: p.id, user_id: p.user_id, reason: reason.to_owned() }
}

impl SagaState {
    async fn step(&mut self) -> Result<Next, ActorProcessingErr> {
        let store = &self.ctx.store;
        // One node runs a saga at a time: each step renews this node's lease, and a saga
        // another node holds stops here (that node, or a later sweep after its lease ran out,
        // carries on).
        if !store.lease_payment(self.id, &self.ctx.node, self.ctx.clock.now(), self.ctx.settings.lease).await? {
            tracing::info!("another node runs this payment's saga");
            return Ok(Next::Finished);
        }
        let Some(p) = store.payment(self.id).await? else {
            return Err(format!("payment {} is missing", self.id).into());
        };
        match p.step {
            SagaStep::Done => Ok(Next::Finished),
            SagaStep::Initiating => self.charge(&p).await,
            SagaStep::Awaiting => self.wait(&p).await,
            SagaStep::Refunding => self.refund(&p).await,
        }
    }

    async fn charge(&mut self, p: &PaymentRow) -> Result<Next, ActorProcessingErr> {
        let now = self.ctx.clock.now();
        if now >= p.deadline_at {
            // Resumed too late (the process was down): its hold is no longer kept; charging
            // now would only take money to give back.
            return self.fail(p, "deadline_exceeded").await;
        }
        let req = ChargeRequest {
            payment_id: p.id,
            amount_cents: p.amount_cents,
            currency: p.currency.clone(),
            method: p.method.clone(),
        };
        match self.ctx.gateway.charge(req).await {
            Ok(provider_ref) => {
                self.ctx.store.payment_charged(p.id, &provider_ref, self.ctx.clock.now()).await?;
                tracing::info!(provider_ref, "charge accepted by the provider");
                Ok(Next::Now)
            }
            Err(GatewayError::Refused(reason)) => self.fail(p, &format!("refused: {reason}")).await,
            // The charge is idempotent per payment: keep trying until the deadline, which
            // fails the payment on the next step (the hold is kept meanwhile).
            Err(e)
                if self.ctx.clock.now()
                    + chrono::Duration::from_std(self.ctx.settings.retry_delay).unwrap_or_default()
                    < p.deadline_at =>
            {
                tracing::warn!(error = %e, "charge not accepted yet; retrying");
                Ok(Next::After(self.ctx.settings.retry_delay))
            }
            Err(e) => {
                tracing::warn!(error = %e, "charge not accepted by the deadline; failing the payment");
                self.fail(p, "payment_provider_unavailable").await
            }
        }
    }

    async fn wait(&mut self, p: &PaymentRow) -> Result<Next, ActorProcessingErr> {
        if let Some(outcome) = p.provider_status {
            return self.settle(p, outcome).await;
        }
        let now = self.ctx.clock.now();
        let poll_every = self.ctx.settings.poll_interval;
        let due = now >= p.deadline_at;
        // Webhooks get lost (and a restarted process lost its callbacks): ask now and then,
        // and once more before giving up at the deadline.
        if due || self.last_poll.is_none_or(|t| t.elapsed() >= poll_every) {
            self.last_poll = Some(Instant::now());
            if let Some(provider_ref) = &p.provider_ref {
                match self.ctx.gateway.status(provider_ref).await {
                    Ok(ProviderState::Settled(outcome, reason)) => {
                        self.ctx.store.record_outcome(p.id, outcome, reason.as_deref(), None, now).await?;
                        return Ok(Next::Now);
                    }
                    Ok(ProviderState::Pending) => {}
                    Err(e) => tracing::debug!(error = %e, "status poll failed"),
                }
            }
        }
        if due {
            tracing::info!("no verdict by the deadline; failing the payment");
            return self.fail(p, "deadline_exceeded").await;
        }
        let left = (p.deadline_at - now).to_std().unwrap_or_default();
        Ok(Next::After(left.min(poll_every)))
    }

    async fn settle(&mut self, p: &PaymentRow, outcome: Outcome) -> Result<Next, ActorProcessingErr> {
        match outcome {
            Outcome::Failed => {
                let reason = p.provider_reason.clone().unwrap_or_else(|| "declined".into());
                self.fail(p, &reason).await
            }
            Outcome::Succeeded => {
                let Some(booking) = self.ctx.store.booking(p.booking_id).await? else {
                    return Err(format!("booking {} of payment {} is missing", p.booking_id, p.id).into());
                };
                let now = self.ctx.clock.now();
                let succeeded = EventData::PaymentSucceeded {
                    payment_id: p.id,
                    user_id: p.user_id,
                    amount_cents: p.amount_cents,
                    currency: p.currency.clone(),
                };
                let confirmed = EventData::BookingConfirmed {
                    user_id: booking.user_id,
                    payment_id: Some(p.id),
                    quantity: booking.quantity,
                    amount_cents: booking.amount_cents,
                    currency: booking.currency.clone(),
                };
                let with = vec![
                    JournalOp::Payment {
                        payment_id: p.id,
                        status: PaymentStatus::Succeeded,
                        step: SagaStep::Done,
                        reason: None,
                    },
                    announce(now, Some(&booking), p, succeeded),
                    announce(now, Some(&booking), p, confirmed),
                ];
                match self.ctx.registry.confirm(booking, with).await {
                    Ok(b) => {
                        metrics::counter!("boxoffice_payments_total", "outcome" => "succeeded").increment(1);
                        tracing::info!(booking_id = %b.id, "payment succeeded; booking confirmed");
                        Ok(Next::Now)
                    }
                    Err(BookingError::NotPayable | BookingError::NotCancellable | BookingError::EventNotFound) => {
                        // Paid, but the hold is gone (released at the deadline, or cancelled):
                        // the seats may be someone else's now. Give the money back.
                        tracing::warn!("payment succeeded after its booking was released; refunding");
                        self.ctx.store.payment_to_refund(p.id, self.ctx.clock.now()).await?;
                        Ok(Next::Now)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "booking not confirmed yet; retrying");
                        Ok(Next::After(self.ctx.settings.retry_delay))
                    }
                }
            }
        }
    }

    /// Compensation: release the hold (if it is still held) and record why.
    async fn fail(&mut self, p: &PaymentRow, reason: &str) -> Result<Next, ActorProcessingErr> {
        let Some(booking) = self.ctx.store.booking(p.booking_id).await? else {
            return Err(format!("booking {} of payment {} is missing", p.booking_id, p.id).into());
        };
        let now = self.ctx.clock.now();
        if booking.status == BookingStatus::Held {
            let with = vec![
                JournalOp::Payment {
                    payment_id: p.id,
                    status: PaymentStatus::Failed,
                    step: SagaStep::Done,
                    reason: Some(reason.to_owned()),
                },
                announce(now, Some(&booking), p, failed(p, reason)),
            ];
            match self
                .ctx
                .registry
                .cancel(booking.clone(), CancelReason::PaymentFailed, with, p.request_id.clone())
                .await
            {
                Ok(_) => {}
                Err(BookingError::NotCancellable | BookingError::EventNotFound) => {
                    let m = message(now, Some(&booking), p, failed(p, reason));
                    self.ctx.store.finish_payment(p.id, PaymentStatus::Failed, Some(reason), Some(&m), now).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hold not released yet; retrying");
                    return Ok(Next::After(self.ctx.settings.retry_delay));
                }
            }
        } else {
            let m = message(now, Some(&booking), p, failed(p, reason));
            self.ctx.store.finish_payment(p.id, PaymentStatus::Failed, Some(reason), Some(&m), now).await?;
        }
        metrics::counter!("boxoffice_payments_total", "outcome" => "failed").increment(1);
        tracing::info!(reason, booking_id = %booking.id, "payment failed; hold released");
        // A success recorded meanwhile turns the step into `refunding`: the next step sees it.
        Ok(Next::Now)
    }

    async fn refund(&mut self, p: &PaymentRow) -> Result<Next, ActorProcessingErr> {
        let Some(provider_ref) = &p.provider_ref else {
            return Err(format!("payment {} to refund has no provider reference", p.id).into());
        };
        match self.ctx.gateway.refund(provider_ref, p.amount_cents).await {
            Ok(()) => {
                let booking = self.ctx.store.booking(p.booking_id).await?;
                let now = self.ctx.clock.now();
                let refunded = EventData::PaymentRefunded {
                    payment_id: p.id,
                    user_id: p.user_id,
                    amount_cents: p.amount_cents,
                    currency: p.currency.clone(),
                };
                let m = message(now, booking.as_ref(), p, refunded);
                self.ctx.store.finish_payment(p.id, PaymentStatus::Refunded, None, Some(&m), now).await?;
                metrics::counter!("boxoffice_payments_total", "outcome" => "refunded").increment(1);
                tracing::info!("payment refunded");
                Ok(Next::Now)
            }
            Err(e) => {
                tracing::warn!(error = %e, "refund failed; retrying later");
                Ok(Next::After(self.ctx.settings.retry_delay * 5))
            }
        }
    }
}

impl Actor for PaymentSaga {
    type Msg = SagaMsg;
    type State = SagaState;
    type Arguments = (PaymentId, PaymentsCtx);

    async fn pre_start(
        &self,
        myself: ActorRef<SagaMsg>,
        (id, ctx): Self::Arguments,
    ) -> Result<SagaState, ActorProcessingErr> {
        let p = ctx.store.payment(id).await?.ok_or_else(|| format!("payment {id} is missing"))?;
        let request_id = p.request_id.clone().unwrap_or_default();
        let span = tracing::info_span!("saga", payment_id = %id, booking_id = %p.booking_id, request_id = %request_id);
        myself.send_message(SagaMsg::Advance)?;
        metrics::gauge!("boxoffice_payment_sagas").increment(1.0);
        Ok(SagaState { id, ctx, span, last_poll: None })
    }

    async fn post_stop(&self, _: ActorRef<SagaMsg>, _: &mut SagaState) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("boxoffice_payment_sagas").decrement(1.0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SagaMsg>,
        msg: SagaMsg,
        state: &mut SagaState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SagaMsg::Advance => {
                let span = state.span.clone();
                // Steps run back to back until the saga waits or ends.
                loop {
                    match state.step().instrument(span.clone()).await? {
                        Next::Now => continue,
                        Next::After(d) => {
                            myself.send_after(d, || SagaMsg::Advance);
                            break;
                        }
                        Next::Finished => {
                            myself.stop(Some("done".into()));
                            break;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
