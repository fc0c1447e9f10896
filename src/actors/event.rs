//! `EventActor`: the single writer of one event. It checks each claim against its in-memory
//! inventory (which already counts changes not yet durable), reserves the seats, and appends
//! the claim to the batch being filled. Up to the store's pipeline depth of batches are written
//! at once (PostgreSQL overlaps one batch's inserts with the previous one's commit); the next
//! fills meanwhile, so a busier event writes bigger batches instead of queueing transactions.
//! Claimers are answered only after their batch commits. If a write fails, the actor answers
//! that batch and everything queued after it with 503, lets the other writes finish, and stops:
//! the store is the truth, and the next request starts an actor that rebuilds from it. A fenced
//! write (another node took the event over) ends the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use super::{BookingError, EngineContext, EventRefusal, Snapshot, StatusChange};
use crate::domain::FieldErrors;
use crate::domain::booking::{BookingStatus, CancelReason, may_cancel};
use crate::domain::ids::{BookingId, EventId, UserId};
use crate::domain::inventory::{AdmitError, ClaimError, ClaimSpec, Holding, Inventory, LiveBooking};
use crate::domain::seatmap::SeatIdx;
use crate::domain::stream::{DomainEvent, EventData};
use crate::persistence::{Acquired, BookingRow, EventPatch, EventRow, JournalOp, OutboxEntry, StoreError};

pub type Reply<T> = RpcReplyPort<Result<T, BookingError>>;

#[derive(Debug, Clone)]
pub enum ClaimRequest {
    Quantity(u32),
    Seats(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ClaimCmd {
    pub user: UserId,
    pub request: ClaimRequest,
    /// `(Idempotency-Key, hash of the request)`.
    pub idempotency: Option<(String, String)>,
    /// The HTTP request asking, for the domain event.
    pub request_id: Option<String>,
}

pub enum EventMsg {
    Claim(ClaimCmd, Reply<BookingRow>),
    /// Cancels a live booking; carries the row the caller read (ownership already checked),
    /// changes to write in the same transaction, and the request that caused it (for the
    /// domain event).
    Cancel {
        booking: BookingRow,
        reason: CancelReason,
        with: Vec<JournalOp>,
        request_id: Option<String>,
        reply: Reply<BookingRow>,
    },
    /// A held booking was paid for: confirms it, writing the given changes with it.
    Confirm(BookingRow, Vec<JournalOp>, Reply<BookingRow>),
    /// A payment started: the hold must not expire before `until` (the saga settles it).
    HoldForPayment(BookingId, DateTime<Utc>, Reply<()>),
    /// Admits a confirmed booking's ticket at this event's door, once; a ticket of another
    /// event is refused and stays unused.
    CheckIn {
        booking: BookingRow,
        request_id: Option<String>,
        reply: Reply<BookingRow>,
    },
    Update {
        patch: EventPatch,
        request_id: Option<String>,
        reply: Reply<EventRow>,
    },
    Delete {
        request_id: Option<String>,
        reply: Reply<()>,
    },
    /// Answers once nothing is pending or being written (graceful shutdown).
    Drain(RpcReplyPort<()>),
    /// The journal finished writing batch `seq` (`true`: the write was fenced).
    Committed(u64, Result<(), String>, bool),
    Tick,
    /// Time to renew this node's lease on the event.
    RenewLease,
    /// The renewal's outcome: `Ok(false)` if another node took the event.
    LeaseRenewed {
        result: Result<bool, String>,
    },
    /// Makes the actor fail, to exercise its supervisor.
    #[cfg(test)]
    Crash,
}

pub struct EventActor;

pub struct EventArgs {
    pub id: EventId,
    pub ctx: EngineContext,
}

enum Waiter {
    /// A reply owed once the batch is durable; `true` for the claim that created the booking.
    Booking(Reply<BookingRow>, BookingRow, Instant, bool),
}

#[derive(Default)]
struct Batch {
    ops: Vec<JournalOp>,
    /// Bookings this batch changes; they stay in flux until it is durable.
    touched: Vec<BookingId>,
    waiters: Vec<Waiter>,
    /// Status changes to announce once durable.
    changes: Vec<StatusChange>,
    /// Whether it writes outbox messages (the relay is woken once it commits).
    announces: bool,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.waiters.is_empty()
    }
}

pub struct EventState {
    ctx: EngineContext,
    event: EventRow,
    inv: Inventory,
    filling: Batch,
    /// Batches being written, by sequence number.
    writing: BTreeMap<u64, Batch>,
    next_batch: u64,
    /// How many batches may be written at once (the store's pipeline depth).
    depth: usize,
    /// Bookings with a change not yet durable: nothing else may change them meanwhile.
    in_flux: HashSet<BookingId>,
    /// Set once a write failed: the actor answers 503 and stops when its writes are done.
    failed: Option<String>,
    /// Resolves when the last batch handed to the journal has finished (true: committed).
    last_batch: Option<crate::persistence::After>,
    /// Held bookings being paid for, and until when their holds wait for the payment.
    paying: HashMap<BookingId, DateTime<Utc>>,
    /// Idempotency keys of claims this actor made: (user, key) → (request hash, booking, when).
    keys: HashMap<(UserId, String), (String, BookingId, Instant)>,
    drains: Vec<RpcReplyPort<()>>,
    last_activity: Instant,
    snapshot: watch::Sender<Snapshot>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    /// A renewal of the lease is under way.
    renewing: bool,
}

fn unavailable(e: impl std::fmt::Display) -> BookingError {
    BookingError::Unavailable(e.to_string())
}

impl EventState {
    fn publish(&self) {
        let snapshot = Snapshot {
            counts: self.inv.counts(),
            seat_map: self.inv.seat_map().cloned(),
            seats: self.inv.seat_states(),
        };
        self.ctx.hub.owner_published(self.event.id, &snapshot);
        self.snapshot.send_replace(snapshot);
    }

    /// The event is no longer this node's (its lease went to another node): refuse what is
    /// not durable yet and stop once the writes under way are done (they are fenced anyway).
    fn lose(&mut self, myself: &ActorRef<EventMsg>, reason: &str) {
        if self.failed.is_none() {
            tracing::warn!(event_id = %self.event.id, epoch = self.event.owner_epoch, reason, "event actor lost its lease");
            self.failed = Some(reason.to_owned());
        }
        for Waiter::Booking(port, ..) in std::mem::take(&mut self.filling).waiters {
            let _ = port.send(Err(unavailable("the event moved to another node; retry")));
        }
        if self.writing.is_empty() {
            myself.stop(Some(reason.to_owned()));
        }
    }

    /// Renews the lease in the background; the answer comes back as `LeaseRenewed`.
    fn renew(&mut self, myself: &ActorRef<EventMsg>) {
        if self.renewing || self.failed.is_some() {
            return;
        }
        self.renewing = true;
        let (store, me) = (self.ctx.store.clone(), myself.clone());
        let (event, epoch) = (self.event.id, self.event.owner_epoch);
        let (node, lease, now) =
            (self.ctx.settings.node_id.clone(), self.ctx.settings.lease, self.ctx.settings.clock.now());
        tokio::spawn(async move {
            let result = store.renew_event(event, &node, epoch, now, lease).await.map_err(|e| e.to_string());
            let _ = me.cast(EventMsg::LeaseRenewed { result });
        });
    }

    fn seat_names(&self, seats: &[SeatIdx]) -> Vec<String> {
        match self.inv.seat_map() {
            Some(map) => seats.iter().map(|&s| map.seat_id(s)).collect(),
            None => Vec::new(),
        }
    }

    /// Validates and reserves a claim in memory; the caller queues it for the journal.
    fn claim(&mut self, cmd: &ClaimCmd, now: DateTime<Utc>) -> Result<BookingRow, BookingError> {
        let max = self.event.max_per_booking as u32;
        let spec = match &cmd.request {
            ClaimRequest::Quantity(q) if *q < 1 => {
                return Err(BookingError::Invalid(FieldErrors::single("quantity", "must be at least 1")));
            }
            ClaimRequest::Quantity(q) if *q > max => {
                return Err(BookingError::EventRefuses(EventRefusal::OverBookingLimit { field: "quantity", max }));
            }
            ClaimRequest::Quantity(q) => ClaimSpec::Quantity(*q),
            ClaimRequest::Seats(ids) => {
                let Some(map) = self.inv.seat_map() else {
                    return Err(BookingError::EventRefuses(EventRefusal::GeneralAdmission));
                };
                if ids.is_empty() {
                    return Err(BookingError::Invalid(FieldErrors::single("seats", "must list at least one seat")));
                }
                if ids.len() > max as usize {
                    return Err(BookingError::EventRefuses(EventRefusal::OverBookingLimit { field: "seats", max }));
                }
                let unknown: Vec<String> = ids.iter().filter(|id| map.seat_index(id).is_none()).cloned().collect();
                if !unknown.is_empty() {
                    return Err(BookingError::EventRefuses(EventRefusal::UnknownSeats(unknown)));
                }
                ClaimSpec::Seats(ids.iter().filter_map(|id| map.seat_index(id)).collect())
            }
        };
        let id = BookingId::new();
        let expires_at = now + self.ctx.settings.hold_ttl;
        let map = self.inv.seat_map().cloned();
        let booking = self.inv.claim(id, cmd.user, spec, expires_at).map_err(|e| match e {
            ClaimError::SoldOut { available } => BookingError::SoldOut { available },
            ClaimError::SeatsUnavailable(s) => BookingError::SeatsUnavailable(
                map.map(|m| s.iter().map(|&i| m.seat_id(i)).collect()).unwrap_or_default(),
            ),
            ClaimError::DuplicateSeat => BookingError::Invalid(FieldErrors::single("seats", "a seat is listed twice")),
            ClaimError::PerUserLimit { limit, has } => BookingError::PerUserLimit { limit, has },
            other => BookingError::Invalid(FieldErrors::single("quantity", other.to_string())),
        })?;
        let quantity = booking.quantity as i64;
        let seats = booking.seats.clone();
        Ok(BookingRow {
            id,
            seats: self.seat_names(&seats),
            ..BookingRow::held(&self.event, cmd.user, quantity, expires_at, now)
        })
    }

    /// The outbox write announcing a change of one of this event's bookings.
    fn announce(
        &self,
        at: DateTime<Utc>,
        booking: BookingId,
        data: EventData,
        request_id: Option<String>,
    ) -> JournalOp {
        let event = DomainEvent::new(at, self.event.id, Some(booking), data).with_request_id(request_id);
        JournalOp::Outbox(OutboxEntry::new(event))
    }

    /// Queues a change with others written in the same transaction (payment, outbox).
    fn queue_with(
        &mut self,
        op: JournalOp,
        with: Vec<JournalOp>,
        booking: BookingId,
        change: Option<StatusChange>,
        waiter: Option<Waiter>,
    ) {
        self.filling.announces |= with.iter().any(|o| matches!(o, JournalOp::Outbox(_)));
        self.filling.ops.push(op);
        self.filling.ops.extend(with);
        self.filling.touched.push(booking);
        self.filling.changes.extend(change);
        self.filling.waiters.extend(waiter);
        self.in_flux.insert(booking);
    }

    /// Starts writing the filled batch if the pipeline has room.
    fn flush(&mut self, myself: &ActorRef<EventMsg>) {
        if self.writing.len() >= self.depth || self.filling.is_empty() || self.failed.is_some() {
            return;
        }
        let mut batch = std::mem::take(&mut self.filling);
        // The writer owns the operations; the actor keeps what it needs to answer.
        let ops = std::mem::take(&mut batch.ops);
        let seq = self.next_batch;
        self.next_batch += 1;
        self.writing.insert(seq, batch);
        let (store, clock) = (self.ctx.store.clone(), self.ctx.settings.clock.clone());
        let (event, epoch) = (self.event.id, self.event.owner_epoch);
        let me = myself.clone();
        let (done, next_waits) = tokio::sync::oneshot::channel();
        let after = self.last_batch.replace(next_waits);
        tokio::spawn(async move {
            let started = Instant::now();
            let result = if ops.is_empty() {
                let previous_ok = match after {
                    Some(previous) => previous.await.unwrap_or(false),
                    None => true,
                };
                if previous_ok { Ok(()) } else { Err(StoreError::Abandoned) }
            } else {
                store.commit_batch(event, epoch, &ops, clock.now(), after).await
            };
            let _ = done.send(result.is_ok());
            metrics::histogram!("boxoffice_journal_batch_size").record(ops.len() as f64);
            metrics::histogram!("boxoffice_journal_commit_duration_seconds").record(started.elapsed().as_secs_f64());
            let fenced = matches!(result, Err(StoreError::Fenced));
            if let Err(e) = &result {
                tracing::warn!(event_id = %event, epoch, error = %e, batch = ops.len(), "journal batch not written");
            }
            // The actor may have stopped meanwhile; its claimers then see a closed reply port (503).
            let _ = me.cast(EventMsg::Committed(seq, result.map_err(|e| e.to_string()), fenced));
        });
    }

    fn committed(&mut self, myself: &ActorRef<EventMsg>, seq: u64, result: Result<(), String>, fenced: bool) {
        let Some(batch) = self.writing.remove(&seq) else { return };
        match result {
            Ok(()) => {
                for id in &batch.touched {
                    self.in_flux.remove(id);
                }
                for change in &batch.changes {
                    // Nobody listening is fine.
                    let _ = self.ctx.status_changes.send(*change);
                }
                if batch.announces {
                    self.ctx.outbox_wake.notify_one();
                }
                for w in batch.waiters {
                    let Waiter::Booking(port, row, received, _) = w;
                    metrics::histogram!("boxoffice_claim_duration_seconds").record(received.elapsed().as_secs_f64());
                    let _ = port.send(Ok(row));
                }
                if self.failed.is_none() {
                    self.publish();
                }
                self.flush(myself);
            }
            Err(e) => {
                // Memory is now ahead of the store. Refuse everything not yet durable and stop
                // once the other writes are done; a new actor rebuilds from the store.
                let reason = if fenced { "the event moved to another node; retry".to_owned() } else { e };
                let queued = std::mem::take(&mut self.filling);
                for w in batch.waiters.into_iter().chain(queued.waiters) {
                    let Waiter::Booking(port, ..) = w;
                    let _ = port.send(Err(unavailable("the booking could not be saved; retry")));
                }
                if self.failed.is_none() {
                    tracing::warn!(event_id = %self.event.id, epoch = self.event.owner_epoch, fenced, error = %reason,
                        "journal write failed; the event actor will restart from the store");
                }
                self.failed = Some(reason);
            }
        }
        if self.writing.is_empty() {
            if let Some(reason) = &self.failed {
                // Nothing queued after a failure may be written by this actor.
                for Waiter::Booking(port, ..) in std::mem::take(&mut self.filling).waiters {
                    let _ = port.send(Err(unavailable("the booking could not be saved; retry")));
                }
                myself.stop(Some(reason.clone()));
            }
            if self.filling.is_empty() {
                for d in self.drains.drain(..) {
                    let _ = d.send(());
                }
            }
        }
    }

    fn accept_claim(
        &mut self,
        myself: &ActorRef<EventMsg>,
        cmd: ClaimCmd,
        reply: Reply<BookingRow>,
        received: Instant,
    ) {
        if reply.is_closed() {
            // The caller gave up (timed out or went away): do not hold seats for nobody.
            return;
        }
        match self.claim(&cmd, self.ctx.settings.clock.now()) {
            Ok(row) => {
                metrics::counter!("boxoffice_claims_total", "outcome" => "held").increment(1);
                if let Some((key, hash)) = &cmd.idempotency {
                    self.keys.insert((cmd.user, key.clone()), (hash.clone(), row.id, received));
                }
                let (id, op) = (row.id, JournalOp::Claim { booking: row.clone(), idempotency: cmd.idempotency });
                let change = StatusChange { booking: id, status: BookingStatus::Held };
                let held = EventData::BookingHeld {
                    user_id: row.user_id,
                    quantity: row.quantity,
                    seats: row.seats.clone(),
                    amount_cents: row.amount_cents,
                    currency: row.currency.clone(),
                    expires_at: row.expires_at,
                };
                let announce = self.announce(row.created_at, id, held, cmd.request_id);
                let waiter = Waiter::Booking(reply, row, received, true);
                self.queue_with(op, vec![announce], id, Some(change), Some(waiter));
                self.flush(myself);
            }
            Err(e) => {
                let outcome = match e {
                    BookingError::SoldOut { .. } | BookingError::SeatsUnavailable(_) => "refused",
                    _ => "invalid",
                };
                metrics::counter!("boxoffice_claims_total", "outcome" => outcome).increment(1);
                let _ = reply.send(Err(e));
            }
        }
    }

    /// A claim whose idempotency key this actor has seen: the same request gets the same
    /// booking (together with the first request if that is still being written), another
    /// request under the same key is refused.
    fn answer_repeat(&mut self, same_request: bool, id: BookingId, reply: Reply<BookingRow>, received: Instant) {
        if !same_request {
            let _ = reply.send(Err(BookingError::IdempotencyKeyReused));
            return;
        }
        if self.in_flux.contains(&id) {
            // Join the claim's own reply (not that of a later change of the same booking).
            let claim_of = |w: &Waiter| matches!(w, Waiter::Booking(_, r, _, true) if r.id == id);
            let batch = match self.writing.values_mut().find(|b| b.waiters.iter().any(claim_of)) {
                Some(b) => b,
                None => &mut self.filling,
            };
            let row = batch.waiters.iter().find(|w| claim_of(w)).map(|Waiter::Booking(_, r, _, _)| r.clone());
            if let Some(row) = row {
                batch.waiters.push(Waiter::Booking(reply, row, received, true));
                return;
            }
        }
        let _ = reply.send(Err(BookingError::Replay(id)));
    }

    /// Whether a live booking may change now: `Err(None)` when it is no longer live here (the
    /// caller names the business error), `Err(Some(..))` while the actor cannot write (503) or
    /// another change of the booking is being saved (409).
    fn check_changeable(&self, row: &BookingRow) -> Result<(), Option<BookingError>> {
        if let Some(reason) = &self.failed {
            return Err(Some(unavailable(reason)));
        }
        if !row.status.is_live() || self.inv.get(&row.id).is_none() {
            // Already released (a cancellation or expiry got here first).
            return Err(None);
        }
        if self.in_flux.contains(&row.id) {
            return Err(Some(BookingError::Changing));
        }
        Ok(())
    }

    fn cancel(
        &mut self,
        myself: &ActorRef<EventMsg>,
        row: BookingRow,
        reason: CancelReason,
        mut with: Vec<JournalOp>,
        request_id: Option<String>,
        reply: Reply<BookingRow>,
    ) {
        let now = self.ctx.settings.clock.now();
        let Some(live) = self.inv.release(&row.id) else { return };
        self.paying.remove(&row.id);
        let was = match live.holding {
            Holding::Confirmed => BookingStatus::Confirmed,
            Holding::Held { .. } => BookingStatus::Held,
        };
        let id = row.id;
        if was == BookingStatus::Confirmed {
            // Paid for: the payment's saga refunds it.
            with.push(JournalOp::RefundBooking { booking_id: id });
        }
        let cancelled = EventData::BookingCancelled {
            user_id: row.user_id,
            reason,
            refund: was == BookingStatus::Confirmed,
            quantity: row.quantity,
        };
        with.push(self.announce(now, id, cancelled, request_id));
        let op = JournalOp::Release {
            booking_id: id,
            quantity: live.quantity as i64,
            was,
            to: BookingStatus::Cancelled,
            reason: Some(reason),
        };
        let updated =
            BookingRow { status: BookingStatus::Cancelled, cancel_reason: Some(reason), updated_at: now, ..row };
        let change = StatusChange { booking: id, status: BookingStatus::Cancelled };
        self.queue_with(op, with, id, Some(change), Some(Waiter::Booking(reply, updated, Instant::now(), false)));
        self.flush(myself);
    }

    fn confirm(
        &mut self,
        myself: &ActorRef<EventMsg>,
        row: BookingRow,
        with: Vec<JournalOp>,
        reply: Reply<BookingRow>,
    ) {
        if self.inv.confirm(&row.id).is_none() {
            // Confirmed already: a second payment cannot confirm it again.
            let _ = reply.send(Err(BookingError::NotPayable));
            return;
        }
        self.paying.remove(&row.id);
        let (id, now) = (row.id, self.ctx.settings.clock.now());
        let ticket_code = crate::domain::payment::new_ticket_code();
        let op = JournalOp::Confirm { booking_id: id, ticket_code: ticket_code.clone() };
        let updated =
            BookingRow { status: BookingStatus::Confirmed, ticket_code: Some(ticket_code), updated_at: now, ..row };
        let change = StatusChange { booking: id, status: BookingStatus::Confirmed };
        self.queue_with(op, with, id, Some(change), Some(Waiter::Booking(reply, updated, Instant::now(), false)));
        self.flush(myself);
    }

    /// Admits a ticket at this event's door: answered once the admission is durable. The
    /// verdicts that need no write (wrong door, unknown, used) come first, so a second scan
    /// racing the first is told the ticket was used rather than asked to retry.
    fn check_in(
        &mut self,
        myself: &ActorRef<EventMsg>,
        row: BookingRow,
        request_id: Option<String>,
        reply: Reply<BookingRow>,
    ) {
        if row.event_id != self.event.id {
            let _ = reply.send(Err(BookingError::WrongEvent { ticket_event: row.event_id }));
            return;
        }
        let verdict = match self.inv.get(&row.id).map(|b| (b.holding, b.checked_in_at)) {
            _ if self.failed.is_some() => Err(unavailable("the event is restarting; retry")),
            None | Some((Holding::Held { .. }, _)) => Err(BookingError::NoSuchTicket),
            Some((Holding::Confirmed, Some(at))) => Err(BookingError::AlreadyCheckedIn(at)),
            Some((Holding::Confirmed, None)) if self.in_flux.contains(&row.id) => Err(BookingError::Changing),
            Some((Holding::Confirmed, None)) => Ok(()),
        };
        if let Err(e) = verdict {
            let _ = reply.send(Err(e));
            return;
        }
        let now = self.ctx.settings.clock.now();
        if let Err(e) = self.inv.check_in(&row.id, now) {
            // Checked above; the inventory is the judge all the same.
            let _ = reply.send(Err(match e {
                AdmitError::AlreadyCheckedIn(at) => BookingError::AlreadyCheckedIn(at),
                AdmitError::NotConfirmed => BookingError::NoSuchTicket,
            }));
            return;
        }
        let id = row.id;
        let updated = BookingRow { checked_in_at: Some(now), updated_at: now, ..row };
        let op = JournalOp::CheckIn { booking_id: id, at: now };
        let admitted = EventData::TicketCheckedIn { user_id: updated.user_id, quantity: updated.quantity };
        let announce = self.announce(now, id, admitted, request_id);
        self.queue_with(op, vec![announce], id, None, Some(Waiter::Booking(reply, updated, Instant::now(), false)));
        self.flush(myself);
    }

    /// The rules that forbid a cancellation (admitted, or the event started), judged on this
    /// actor's state: admission and cancellation are serialised here, so a scan at the door
    /// and a cancellation at the same moment cannot both succeed. Checked before "the booking
    /// is changing", so a cancellation racing a scan is refused rather than asked to retry.
    fn cancel_refused(&self, row: &BookingRow, reason: CancelReason) -> Option<BookingError> {
        let live = self.inv.get(&row.id)?;
        let now = self.ctx.settings.clock.now();
        may_cancel(reason, live.checked_in_at, self.event.starts_at, now).err().map(BookingError::CancelRefused)
    }

    fn expire(&mut self, myself: &ActorRef<EventMsg>) {
        if self.failed.is_some() {
            return;
        }
        let now = self.ctx.settings.clock.now();
        // A hold being paid for waits for its payment (until the saga's deadline and a grace).
        self.paying.retain(|_, until| *until > now);
        let due: Vec<BookingId> = self
            .inv
            .due(now)
            .into_iter()
            .filter(|id| !self.in_flux.contains(id) && !self.paying.contains_key(id))
            .collect();
        for id in due {
            let Some(live) = self.inv.release(&id) else { continue };
            let user = live.user;
            let op = JournalOp::Release {
                booking_id: id,
                quantity: live.quantity as i64,
                was: BookingStatus::Held,
                to: BookingStatus::Expired,
                reason: None,
            };
            let expired = EventData::BookingExpired { user_id: user, quantity: live.quantity as i64 };
            let announce = self.announce(now, id, expired, None);
            let change = StatusChange { booking: id, status: BookingStatus::Expired };
            self.queue_with(op, vec![announce], id, Some(change), None);
            metrics::counter!("boxoffice_holds_expired_total").increment(1);
        }
        self.flush(myself);
    }
}

impl Actor for EventActor {
    type Msg = EventMsg;
    type State = EventState;
    type Arguments = EventArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: EventArgs) -> Result<EventState, ActorProcessingErr> {
        let EventArgs { id, ctx } = args;
        let depth = ctx.store.pipeline_depth(ctx.settings.pipeline_depth);
        let now = ctx.settings.clock.now();
        let event = match ctx.store.acquire_event(id, &ctx.settings.node_id, now, ctx.settings.lease).await? {
            Acquired::Taken(event) => event,
            Acquired::NotFound => return Err(BookingError::EventNotFound.into()),
            Acquired::Held(holder) => {
                return Err(BookingError::Unavailable(format!(
                    "the event is served by node {} until its lease runs out; retry",
                    holder.node
                ))
                .into());
            }
            Acquired::Busy => return Err(BookingError::Unavailable("the event is changing hands; retry".into()).into()),
        };
        let mut inv = match event.parsed_seat_map()? {
            Some(map) => Inventory::seated(std::sync::Arc::new(map)),
            None => Inventory::general(event.capacity as u32),
        };
        inv.set_max_per_user(event.max_per_user.clamp(1, u32::MAX as i64) as u32);
        for b in ctx.store.live_bookings(id).await? {
            let seats = match inv.seat_map() {
                Some(map) => b.seats.iter().filter_map(|s| map.seat_index(s)).collect(),
                None => Vec::new(),
            };
            let holding = match b.status {
                BookingStatus::Confirmed => Holding::Confirmed,
                _ => Holding::Held { expires_at: b.expires_at },
            };
            let live = LiveBooking {
                user: b.user_id,
                quantity: b.quantity as u32,
                seats,
                holding,
                checked_in_at: b.checked_in_at,
            };
            inv.restore(b.id, live).map_err(|e| format!("booking {} does not fit event {id}: {e}", b.id))?;
        }
        let grace = chrono::Duration::from_std(ctx.settings.payment_grace).unwrap_or_default();
        let paying = ctx.store.pending_payment_deadlines(id).await?.into_iter().map(|(b, d)| (b, d + grace)).collect();
        let initial = Snapshot { counts: inv.counts(), seat_map: inv.seat_map().cloned(), seats: inv.seat_states() };
        let snapshot = ctx.hub.owner_attached(id, initial);
        let ticker = myself.send_interval(ctx.settings.tick, || EventMsg::Tick);
        let renewer =
            myself.send_interval((ctx.settings.lease / 3).max(Duration::from_millis(10)), || EventMsg::RenewLease);
        metrics::gauge!("boxoffice_event_actors").increment(1.0);
        tracing::info!(event_id = %id, epoch = event.owner_epoch, live = inv.live_bookings(), "event actor started");
        Ok(EventState {
            ctx,
            event,
            inv,
            filling: Batch::default(),
            writing: BTreeMap::new(),
            next_batch: 0,
            depth,
            in_flux: HashSet::new(),
            paying,
            failed: None,
            last_batch: None,
            keys: HashMap::new(),
            drains: Vec::new(),
            last_activity: Instant::now(),
            snapshot,
            ticker: Some(ticker),
            renewer: Some(renewer),
            renewing: false,
        })
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut EventState) -> Result<(), ActorProcessingErr> {
        for t in [state.ticker.take(), state.renewer.take()].into_iter().flatten() {
            t.abort();
        }
        state.ctx.hub.owner_detached(state.event.id);
        // Give the event up at once, so another node need not wait for the lease to run out
        // (a no-op if the event is another node's already).
        let (id, epoch, now) = (state.event.id, state.event.owner_epoch, state.ctx.settings.clock.now());
        if let Err(e) = state.ctx.store.release_event(id, &state.ctx.settings.node_id, epoch, now).await {
            tracing::debug!(event_id = %id, error = %e, "lease not given up; it runs out by itself");
        }
        metrics::gauge!("boxoffice_event_actors").decrement(1.0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: EventMsg,
        state: &mut EventState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EventMsg::Claim(_, reply) if state.failed.is_some() => {
                let _ = reply.send(Err(unavailable("the event is restarting; retry")));
            }
            EventMsg::Update { reply, .. } if state.failed.is_some() => {
                let _ = reply.send(Err(unavailable("the event is restarting; retry")));
            }
            EventMsg::CheckIn { reply, .. } if state.failed.is_some() => {
                let _ = reply.send(Err(unavailable("the event is restarting; retry")));
            }
            EventMsg::Delete { reply, .. } if state.failed.is_some() => {
                let _ = reply.send(Err(unavailable("the event is restarting; retry")));
            }
            EventMsg::Claim(cmd, reply) => {
                let received = Instant::now();
                state.last_activity = received;
                let earlier = cmd.idempotency.as_ref().and_then(|(key, hash)| {
                    state.keys.get(&(cmd.user, key.clone())).map(|(h, id, _)| (h == hash, *id))
                });
                match earlier {
                    Some((same_request, id)) => state.answer_repeat(same_request, id, reply, received),
                    None => state.accept_claim(&myself, cmd, reply, received),
                }
            }
            EventMsg::Cancel { booking: row, reason, with, request_id, reply } => {
                state.last_activity = Instant::now();
                if let Some(refused) = state.cancel_refused(&row, reason).filter(|_| state.failed.is_none()) {
                    let _ = reply.send(Err(refused));
                    return Ok(());
                }
                match state.check_changeable(&row) {
                    Err(e) => {
                        let _ = reply.send(Err(e.unwrap_or(BookingError::NotCancellable)));
                    }
                    Ok(()) => state.cancel(&myself, row, reason, with, request_id, reply),
                }
            }
            EventMsg::Confirm(row, with, reply) => {
                state.last_activity = Instant::now();
                match state.check_changeable(&row) {
                    Err(e) => {
                        let _ = reply.send(Err(e.unwrap_or(BookingError::NotPayable)));
                    }
                    Ok(()) => state.confirm(&myself, row, with, reply),
                }
            }
            EventMsg::CheckIn { booking, request_id, reply } => {
                state.last_activity = Instant::now();
                state.check_in(&myself, booking, request_id, reply);
            }
            EventMsg::HoldForPayment(id, until, reply) => {
                state.last_activity = Instant::now();
                let now = state.ctx.settings.clock.now();
                let result = match state.inv.get(&id).map(|b| b.holding) {
                    _ if state.failed.is_some() => Err(unavailable("the event is restarting; retry")),
                    _ if state.in_flux.contains(&id) => Err(BookingError::Changing),
                    Some(Holding::Held { expires_at }) if expires_at > now => {
                        state.paying.insert(id, until);
                        Ok(())
                    }
                    _ => Err(BookingError::NotPayable),
                };
                let _ = reply.send(result);
            }
            EventMsg::Update { patch, request_id, reply } => {
                let _ = reply.send(update(state, &myself, patch, request_id).await);
            }
            EventMsg::Delete { request_id, reply } => {
                if state.inv.live_bookings() > 0 {
                    let _ = reply.send(Err(BookingError::HasBookings));
                    return Ok(());
                }
                if !state.writing.is_empty() || !state.filling.is_empty() {
                    let _ = reply.send(Err(unavailable("the event's last changes are still being saved; retry")));
                    return Ok(());
                }
                match state
                    .ctx
                    .store
                    .delete_event(state.event.id, state.event.owner_epoch, state.ctx.settings.clock.now(), request_id)
                    .await
                {
                    Ok(()) => {
                        let _ = reply.send(Ok(()));
                        myself.stop(Some("deleted".into()));
                    }
                    Err(e) => {
                        tracing::warn!(event_id = %state.event.id, error = %e, "event not deleted");
                        let _ = reply.send(Err(unavailable("the event could not be deleted; retry")));
                        if matches!(e, StoreError::Fenced) {
                            myself.stop(Some("fenced".into()));
                        }
                    }
                }
            }
            EventMsg::Drain(reply) => {
                if state.writing.is_empty() && state.filling.is_empty() {
                    let _ = reply.send(());
                } else {
                    state.drains.push(reply);
                }
            }
            EventMsg::Committed(seq, result, fenced) => state.committed(&myself, seq, result, fenced),
            EventMsg::RenewLease => state.renew(&myself),
            EventMsg::LeaseRenewed { result } => {
                state.renewing = false;
                match result {
                    Ok(true) => {}
                    Ok(false) => state.lose(&myself, "lease lost"),
                    // The store is unreachable: keep serving; if another node takes the event
                    // meanwhile, the journal's fence refuses this actor's next batch.
                    Err(e) => tracing::warn!(event_id = %state.event.id, error = %e, "event lease not renewed"),
                }
            }
            #[cfg(test)]
            EventMsg::Crash => return Err("crash requested by a test".into()),
            EventMsg::Tick => {
                state.expire(&myself);
                // Idempotency keys of durable claims are in the database; keep them a little
                // longer here to cover a retry racing the first request's commit.
                let horizon = std::time::Duration::from_secs(60);
                let in_flux = &state.in_flux;
                state.keys.retain(|_, (_, id, at)| in_flux.contains(id) || at.elapsed() < horizon);
                let idle = state.last_activity.elapsed() >= state.ctx.settings.idle_timeout;
                let watched = state.snapshot.receiver_count() > 0;
                if idle && !watched && !state.inv.has_holds() && state.writing.is_empty() && state.filling.is_empty() {
                    tracing::debug!(event_id = %state.event.id, "event actor idle; stopping");
                    myself.stop(Some("idle".into()));
                }
            }
        }
        Ok(())
    }
}

async fn update(
    state: &mut EventState,
    myself: &ActorRef<EventMsg>,
    patch: EventPatch,
    request_id: Option<String>,
) -> Result<EventRow, BookingError> {
    state.last_activity = Instant::now();
    let mut patch = patch;
    if state.inv.is_seated() && patch.capacity.is_some() {
        return Err(BookingError::EventRefuses(EventRefusal::SeatedCapacity));
    }
    let previous = state.inv.counts().capacity;
    let capacity = patch.capacity.map(|c| c as u32).unwrap_or(previous);
    if capacity < previous {
        let in_use = state.inv.counts().held + state.inv.counts().sold;
        if capacity < in_use {
            return Err(BookingError::CapacityConflict { in_use });
        }
    }
    // Both limits follow a capacity that drops below them: they are never above capacity.
    for (field, asked, current) in [
        ("max_per_booking", &mut patch.max_per_booking, state.event.max_per_booking),
        ("max_per_user", &mut patch.max_per_user, state.event.max_per_user),
    ] {
        match *asked {
            Some(max) if max > capacity as i64 => {
                return Err(BookingError::EventRefuses(EventRefusal::ExceedsCapacity { field, capacity }));
            }
            None if current > capacity as i64 => *asked = Some(capacity as i64),
            _ => {}
        }
    }
    if patch.capacity.is_some() {
        state.inv.set_capacity(capacity).map_err(|in_use| BookingError::CapacityConflict { in_use })?;
    }
    let now = state.ctx.settings.clock.now();
    match state.ctx.store.update_event(state.event.id, state.event.owner_epoch, &patch, now, request_id).await {
        Ok(()) => {}
        Err(e) => {
            let _ = state.inv.set_capacity(previous);
            if matches!(e, StoreError::Fenced) {
                myself.stop(Some("fenced".into()));
            }
            tracing::warn!(event_id = %state.event.id, error = %e, "event not updated");
            return Err(unavailable("the event could not be updated; retry"));
        }
    }
    match state.ctx.store.event(state.event.id).await {
        Ok(Some(row)) => {
            state.event = EventRow { owner_epoch: state.event.owner_epoch, ..row };
            state.inv.set_max_per_user(state.event.max_per_user.clamp(1, u32::MAX as i64) as u32);
            state.publish();
            Ok(state.event.clone())
        }
        Ok(None) => Err(BookingError::EventNotFound),
        Err(e) => {
            tracing::warn!(event_id = %state.event.id, error = %e, "updated event not re-read");
            Err(unavailable("the event was updated but could not be re-read; retry"))
        }
    }
}
