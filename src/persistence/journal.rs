//! The journal: one transaction per batch of claims, releases and confirmations of one event,
//! ending with the fenced, capacity-checked counter update (`fence!`). PostgreSQL inserts a
//! batch's bookings with a handful of `UNNEST` statements; SQLite, in process, does row by row
//! within the one transaction.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, SqlitePool};

use super::{BookingRow, StoreError, StoreResult};

/// Resolves to whether the event's previous batch committed.
pub type After = tokio::sync::oneshot::Receiver<bool>;
use crate::domain::booking::{BookingStatus, CancelReason};
use crate::domain::ids::{BookingId, EventId, PaymentId};
use crate::domain::payment::{PaymentStatus, SagaStep};
use crate::domain::stream::DomainEvent;

#[derive(Debug, Clone)]
pub enum JournalOp {
    /// A new held booking, with the idempotency record `(key, request hash)` that made it.
    Claim { booking: BookingRow, idempotency: Option<(String, String)> },
    /// A live booking leaves (expired or cancelled) and frees its seats.
    Release {
        booking_id: BookingId,
        quantity: i64,
        was: BookingStatus,
        to: BookingStatus,
        reason: Option<CancelReason>,
    },
    /// A held booking is paid for.
    Confirm { booking_id: BookingId, ticket_code: String },
    /// A confirmed booking's ticket admitted its holders at the door.
    CheckIn { booking_id: BookingId, at: DateTime<Utc> },
    /// A payment moves on with the booking change in the same batch (its saga's step included).
    Payment { payment_id: PaymentId, status: PaymentStatus, step: SagaStep, reason: Option<String> },
    /// A confirmed booking was cancelled: its succeeded payment is to be refunded.
    RefundBooking { booking_id: BookingId },
    /// A message for the relay to publish, written with the change it announces.
    Outbox(OutboxEntry),
}

/// A domain event to write to the outbox with the change it announces.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub event: DomainEvent,
}

impl OutboxEntry {
    pub fn new(event: DomainEvent) -> Self {
        Self { event }
    }

    /// The routing key column (the event's type).
    pub(super) fn topic(&self) -> &'static str {
        self.event.kind().as_str()
    }

    /// The JSON document column.
    pub(super) fn payload(&self) -> String {
        serde_json::to_string(&self.event).expect("domain events serialise")
    }
}

impl JournalOp {
    fn delta(&self) -> i64 {
        match self {
            JournalOp::Claim { booking, .. } => booking.quantity,
            JournalOp::Release { quantity, .. } => -quantity,
            JournalOp::Confirm { .. }
            | JournalOp::CheckIn { .. }
            | JournalOp::Payment { .. }
            | JournalOp::RefundBooking { .. }
            | JournalOp::Outbox(_) => 0,
        }
    }
}

const FENCE: &str = "UPDATE events SET reserved = reserved + $1, updated_at = $2 \
     WHERE id = $3 AND owner_epoch = $4 AND deleted_at IS NULL AND reserved + $1 <= capacity AND reserved + $1 >= 0";
const RELEASE: &str =
    "UPDATE bookings SET status = $1, cancel_reason = $2, updated_at = $3 WHERE id = $4 AND status = $5";
const FREE_SEATS: &str = "DELETE FROM booking_seats WHERE booking_id = $1";
const CONFIRM: &str =
    "UPDATE bookings SET status = 'confirmed', ticket_code = $1, updated_at = $2 WHERE id = $3 AND status = 'held'";
const CHECK_IN: &str = "UPDATE bookings SET checked_in_at = $1, updated_at = $1 \
     WHERE id = $2 AND status = 'confirmed' AND checked_in_at IS NULL";

// A payment failing while the provider's success is being recorded goes on to a refund.
const PAYMENT: &str = "UPDATE payments SET status = $1, \
     saga_step = CASE WHEN $1 = 'failed' AND provider_status = 'succeeded' THEN 'refunding' ELSE $2 END, \
     failure_reason = COALESCE($3, failure_reason), updated_at = $4 WHERE id = $5";
const REFUND_BOOKING: &str = "UPDATE payments SET saga_step = 'refunding', updated_at = $1 \
     WHERE booking_id = $2 AND status = 'succeeded'";
pub(super) const OUTBOX: &str = "INSERT INTO outbox (topic, payload, request_id, created_at) VALUES ($1, $2, $3, $4)";

/// Last in every batch, so that a pipelined next batch can run its inserts while this one holds
/// the event row only briefly: the fence, the capacity backstop, and the point that orders an
/// event's batches. Zero rows means a stale owner (or a full event): the transaction rolls back.
/// Before its fence, a batch waits for the previous batch of the event to finish: batches
/// commit in the order the actor made them (a later batch may claim seats an earlier one frees),
/// and if the previous one failed this one is abandoned too.
macro_rules! fence {
    ($tx:expr, $event:expr, $epoch:expr, $delta:expr, $now:expr, $after:expr) => {{
        if let Some(previous) = $after {
            if !previous.await.unwrap_or(false) {
                return Err(StoreError::Abandoned);
            }
        }
        let n = sqlx::query(FENCE).bind($delta).bind($now).bind($event.0).bind($epoch).execute(&mut *$tx).await?;
        if n.rows_affected() != 1 {
            // Stale owner, or a capacity the database refuses (memory and store disagree).
            let epoch_now: Option<(i64,)> = sqlx::query_as("SELECT owner_epoch FROM events WHERE id = $1")
                .bind($event.0)
                .fetch_optional(&mut *$tx)
                .await?;
            return Err(match epoch_now {
                Some((e,)) if e == $epoch => {
                    StoreError::Corrupt(format!("the counter of event {} refused the batch", $event))
                }
                _ => StoreError::Fenced,
            });
        }
    }};
}

fn seats_json(b: &BookingRow) -> String {
    serde_json::to_string(&b.seats).expect("seat ids serialise")
}

fn mismatch(what: &str, id: BookingId) -> StoreError {
    StoreError::Corrupt(format!("{what} of booking {id} found it in another state"))
}

/// Releases and confirmations run one statement each, in order (a booking may be confirmed
/// and then cancelled in one batch); the caller guarantees they touch only durable bookings.
macro_rules! apply_changes {
    ($tx:expr, $ops:expr, $now:expr) => {
        for op in $ops {
            match op {
                JournalOp::Release { booking_id, was, to, reason, .. } => {
                    let n = sqlx::query(RELEASE)
                        .bind(to.as_str())
                        .bind(reason.map(|r| r.as_str()))
                        .bind($now)
                        .bind(booking_id.0)
                        .bind(was.as_str())
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        return Err(mismatch("release", *booking_id));
                    }
                    sqlx::query(FREE_SEATS).bind(booking_id.0).execute(&mut *$tx).await?;
                }
                JournalOp::Confirm { booking_id, ticket_code } => {
                    let n = sqlx::query(CONFIRM)
                        .bind(ticket_code)
                        .bind($now)
                        .bind(booking_id.0)
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        return Err(mismatch("confirmation", *booking_id));
                    }
                }
                JournalOp::CheckIn { booking_id, at } => {
                    let n = sqlx::query(CHECK_IN).bind(at).bind(booking_id.0).execute(&mut *$tx).await?.rows_affected();
                    if n != 1 {
                        return Err(mismatch("check-in", *booking_id));
                    }
                }
                JournalOp::Payment { payment_id, status, step, reason } => {
                    let n = sqlx::query(PAYMENT)
                        .bind(status.as_str())
                        .bind(step.as_str())
                        .bind(reason)
                        .bind($now)
                        .bind(payment_id.0)
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                    if n != 1 {
                        return Err(StoreError::Corrupt(format!("payment {payment_id} is missing")));
                    }
                }
                JournalOp::RefundBooking { booking_id } => {
                    sqlx::query(REFUND_BOOKING).bind($now).bind(booking_id.0).execute(&mut *$tx).await?;
                }
                // Written after the changes, all at once (see `outbox_pg` / `outbox_sqlite`).
                JournalOp::Outbox(_) | JournalOp::Claim { .. } => {}
            }
        }
    };
}

/// A batch's domain events in one statement (every hold writes one, so this is on the hot
/// path), in the batch's order: the ids follow the array's ordinality.
async fn outbox_pg(tx: &mut sqlx::PgConnection, ops: &[JournalOp], now: DateTime<Utc>) -> StoreResult<()> {
    let (mut topics, mut payloads, mut request_ids) = (Vec::new(), Vec::new(), Vec::new());
    for op in ops {
        if let JournalOp::Outbox(m) = op {
            topics.push(m.topic());
            payloads.push(m.payload());
            request_ids.push(m.event.request_id.clone());
        }
    }
    if topics.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO outbox (topic, payload, request_id, created_at) SELECT topic, payload, request_id, $4 \
         FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(topic, payload, request_id, n) ORDER BY n",
    )
    .bind(&topics)
    .bind(&payloads)
    .bind(&request_ids)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn commit_pg(
    pool: &PgPool,
    event: EventId,
    epoch: i64,
    ops: &[JournalOp],
    now: DateTime<Utc>,
    after: Option<After>,
) -> StoreResult<()> {
    let delta: i64 = ops.iter().map(JournalOp::delta).sum();
    let mut tx = pool.begin().await?;
    apply_changes!(tx, ops, now);
    outbox_pg(&mut tx, ops, now).await?;

    let claims: Vec<(&BookingRow, &Option<(String, String)>)> = ops
        .iter()
        .filter_map(|op| match op {
            JournalOp::Claim { booking, idempotency } => Some((booking, idempotency)),
            _ => None,
        })
        .collect();
    if !claims.is_empty() {
        let n = claims.len();
        let (mut ids, mut users, mut qty, mut seats, mut amount, mut currency, mut expires, mut created) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut seat_ids, mut seat_bookings) = (Vec::new(), Vec::new());
        let (mut keys, mut hashes) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (b, idem) in &claims {
            ids.push(b.id.0);
            users.push(b.user_id.0);
            qty.push(b.quantity);
            seats.push(seats_json(b));
            amount.push(b.amount_cents);
            currency.push(b.currency.clone());
            expires.push(b.expires_at);
            created.push(b.created_at);
            for s in &b.seats {
                seat_ids.push(s.clone());
                seat_bookings.push(b.id.0);
            }
            let (key, hash) = idem.as_ref().map(|(k, h)| (Some(k.clone()), Some(h.clone()))).unwrap_or_default();
            keys.push(key);
            hashes.push(hash);
        }
        sqlx::query(
            "INSERT INTO bookings (id, event_id, user_id, quantity, seats, status, amount_cents, currency, expires_at, \
             idempotency_key, request_hash, created_at, updated_at) \
             SELECT id, $1, user_id, quantity, seats, 'held', amount_cents, currency, expires_at, idempotency_key, request_hash, \
             created_at, created_at \
             FROM UNNEST($2::uuid[], $3::uuid[], $4::int8[], $5::text[], $6::int8[], $7::text[], $8::timestamptz[], $9::text[], \
             $10::text[], $11::timestamptz[]) \
             AS t(id, user_id, quantity, seats, amount_cents, currency, expires_at, idempotency_key, request_hash, created_at)",
        )
        .bind(event.0)
        .bind(&ids)
        .bind(&users)
        .bind(&qty)
        .bind(&seats)
        .bind(&amount)
        .bind(&currency)
        .bind(&expires)
        .bind(&keys)
        .bind(&hashes)
        .bind(&created)
        .execute(&mut *tx)
        .await?;
        if !seat_ids.is_empty() {
            sqlx::query(
                "INSERT INTO booking_seats (event_id, seat_id, booking_id) SELECT $1, seat_id, booking_id \
                 FROM UNNEST($2::text[], $3::uuid[]) AS t(seat_id, booking_id)",
            )
            .bind(event.0)
            .bind(&seat_ids)
            .bind(&seat_bookings)
            .execute(&mut *tx)
            .await?;
        }
    }
    fence!(tx, event, epoch, delta, now, after);
    tx.commit().await?;
    Ok(())
}

pub(super) async fn commit_sqlite(
    pool: &SqlitePool,
    event: EventId,
    epoch: i64,
    ops: &[JournalOp],
    now: DateTime<Utc>,
    after: Option<After>,
) -> StoreResult<()> {
    let delta: i64 = ops.iter().map(JournalOp::delta).sum();
    let mut tx = pool.begin().await?;
    apply_changes!(tx, ops, now);
    for op in ops {
        if let JournalOp::Outbox(m) = op {
            sqlx::query(OUTBOX)
                .bind(m.topic())
                .bind(m.payload())
                .bind(&m.event.request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    }
    for op in ops {
        let JournalOp::Claim { booking: b, idempotency } = op else { continue };
        sqlx::query(
            "INSERT INTO bookings (id, event_id, user_id, quantity, seats, status, amount_cents, currency, expires_at, \
             idempotency_key, request_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'held', $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(b.id.0)
        .bind(event.0)
        .bind(b.user_id.0)
        .bind(b.quantity)
        .bind(seats_json(b))
        .bind(b.amount_cents)
        .bind(&b.currency)
        .bind(b.expires_at)
        .bind(idempotency.as_ref().map(|(k, _)| k))
        .bind(idempotency.as_ref().map(|(_, h)| h))
        .bind(b.created_at)
        .execute(&mut *tx)
        .await?;
        for s in &b.seats {
            sqlx::query("INSERT INTO booking_seats (event_id, seat_id, booking_id) VALUES ($1, $2, $3)")
                .bind(event.0)
                .bind(s)
                .bind(b.id.0)
                .execute(&mut *tx)
                .await?;
        }
    }
    fence!(tx, event, epoch, delta, now, after);
    tx.commit().await?;
    Ok(())
}
