//! Payments, the outbox, delivered notifications and ticket check-in. Changes of a payment
//! that go with a booking change are journal operations (`journal.rs`); what is here is the
//! rest: creating a payment, the saga's own steps, the provider's verdict, the relay's reads.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::journal::OUTBOX;
use super::{BookingRow, OutboxEntry, Pool, Store, StoreError, StoreResult, conflict_or, rows};
use crate::domain::ids::{BookingId, EventId, PaymentId, UserId};
use crate::domain::payment::{Outcome, PaymentMethod, PaymentStatus, SagaStep};
use crate::domain::stream::{DomainEvent, legacy};

const PAYMENT_COLUMNS: &str = "id, booking_id, event_id, user_id, method, instrument, amount_cents, currency, status, \
     saga_step, provider_ref, provider_status, provider_reason, failure_reason, deadline_at, idempotency_key, request_hash, \
     request_id, created_at, updated_at";

#[derive(Debug, Clone)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub booking_id: BookingId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub method: PaymentMethod,
    pub amount_cents: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub step: SagaStep,
    pub provider_ref: Option<String>,
    pub provider_status: Option<Outcome>,
    pub provider_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub deadline_at: DateTime<Utc>,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RawPayment {
    id: Uuid,
    booking_id: Uuid,
    event_id: Uuid,
    user_id: Uuid,
    method: String,
    instrument: String,
    amount_cents: i64,
    currency: String,
    status: String,
    saga_step: String,
    provider_ref: Option<String>,
    provider_status: Option<String>,
    provider_reason: Option<String>,
    failure_reason: Option<String>,
    deadline_at: DateTime<Utc>,
    idempotency_key: Option<String>,
    request_hash: Option<String>,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawPayment> for PaymentRow {
    type Error = StoreError;
    fn try_from(r: RawPayment) -> StoreResult<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("{what} of payment {}", r.id));
        Ok(Self {
            id: PaymentId(r.id),
            booking_id: BookingId(r.booking_id),
            event_id: EventId(r.event_id),
            user_id: UserId(r.user_id),
            method: PaymentMethod::from_parts(&r.method, &r.instrument).ok_or_else(|| corrupt("method"))?,
            amount_cents: r.amount_cents,
            currency: r.currency.clone(),
            status: PaymentStatus::parse(&r.status).ok_or_else(|| corrupt("status"))?,
            step: SagaStep::parse(&r.saga_step).ok_or_else(|| corrupt("saga step"))?,
            provider_ref: r.provider_ref.clone(),
            provider_status: match &r.provider_status {
                Some(s) => Some(Outcome::parse(s).ok_or_else(|| corrupt("provider status"))?),
                None => None,
            },
            provider_reason: r.provider_reason.clone(),
            failure_reason: r.failure_reason.clone(),
            deadline_at: r.deadline_at,
            idempotency_key: r.idempotency_key.clone(),
            request_hash: r.request_hash.clone(),
            request_id: r.request_id.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// One unsent outbox message, as stored: this version writes a `DomainEvent` document, older
/// versions wrote loose JSON (read through [`Store::outbox_event`]).
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub topic: String,
    pub payload: String,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why an outbox row cannot be read as a domain event (it never will be: the row is skipped).
#[derive(Debug, thiserror::Error)]
#[error("outbox row {row} is unreadable: {why}")]
pub struct Unreadable {
    pub row: i64,
    pub why: String,
}

/// The outcome of claiming a notification's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClaim {
    Claimed,
    AlreadySent,
    /// Another worker is sending it right now.
    Busy,
}

impl Store {
    /// Stores a new payment. A second live payment of the booking, or a reused idempotency
    /// key, is `Conflict` naming the index (`payments_one_live`, `payments_idempotency`).
    pub async fn insert_payment(&self, p: &PaymentRow) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
             $15, $16, $17, $18, $19, $20)"
        );
        let r = on_pool!(self, pool => sqlx::query(&sql)
            .bind(p.id.0).bind(p.booking_id.0).bind(p.event_id.0).bind(p.user_id.0).bind(p.method.kind())
            .bind(p.method.instrument()).bind(p.amount_cents).bind(&p.currency).bind(p.status.as_str())
            .bind(p.step.as_str()).bind(&p.provider_ref).bind(p.provider_status.map(Outcome::as_str))
            .bind(&p.provider_reason).bind(&p.failure_reason).bind(p.deadline_at).bind(&p.idempotency_key)
            .bind(&p.request_hash).bind(&p.request_id).bind(p.created_at).bind(p.updated_at)
            .execute(pool).await.map(|r| r.rows_affected()));
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                // PostgreSQL names the index; SQLite names the columns.
                let msg = d.message().to_owned();
                let which = match d.constraint() {
                    Some(c) => c.to_owned(),
                    None if msg.contains("idempotency_key") => "payments_idempotency".into(),
                    None => "payments_one_live".into(),
                };
                Err(StoreError::Conflict(which))
            }
            Err(e) => Err(conflict_or(e, "payment")),
        }
    }

    pub async fn payment(&self, id: PaymentId) -> StoreResult<Option<PaymentRow>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        let raw: Option<RawPayment> = on_pool!(self, p => sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await)?;
        raw.map(PaymentRow::try_from).transpose()
    }

    pub async fn payment_by_key(&self, user: UserId, key: &str) -> StoreResult<Option<PaymentRow>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND idempotency_key = $2");
        let raw: Option<RawPayment> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(user.0).bind(key).fetch_optional(p).await)?;
        raw.map(PaymentRow::try_from).transpose()
    }

    /// The payments of a booking, newest first.
    pub async fn payments_of_booking(&self, booking: BookingId) -> StoreResult<Vec<PaymentRow>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 ORDER BY id DESC");
        let raws: Vec<RawPayment> = on_pool!(self, p => sqlx::query_as(&sql).bind(booking.0).fetch_all(p).await)?;
        raws.into_iter().map(PaymentRow::try_from).collect()
    }

    /// Sagas that are not finished and that `node` may run (its own, or whose owner's lease
    /// ran out): a (re)started process resumes them. A saga whose event another live node
    /// owns is left to that node: only the event's owner can confirm or release its hold.
    pub async fn unfinished_payments(&self, node: &str, now: DateTime<Utc>) -> StoreResult<Vec<PaymentId>> {
        const SQL: &str = "SELECT id FROM payments WHERE saga_step <> 'done' \
             AND (owner_node IS NULL OR owner_node = $1 OR lease_until < $2) \
             AND NOT EXISTS (SELECT 1 FROM event_leases l WHERE l.event_id = payments.event_id \
                 AND l.owner_node IS NOT NULL AND l.owner_node <> $1 AND l.lease_until >= $2) ORDER BY id";
        let ids: Vec<(Uuid,)> = on_pool!(self, p => sqlx::query_as(SQL).bind(node).bind(now).fetch_all(p).await)?;
        Ok(ids.into_iter().map(|(id,)| PaymentId(id)).collect())
    }

    /// Takes or renews the lease on a saga for `node`; `false` if another node holds it.
    pub async fn lease_payment(
        &self,
        id: PaymentId,
        node: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE payments SET owner_node = $1, lease_until = $2 \
             WHERE id = $3 AND (owner_node IS NULL OR owner_node = $1 OR lease_until < $4)";
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let n = on_pool!(self, p => sqlx::query(SQL).bind(node).bind(until).bind(id.0).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Deadlines of the pending payments of an event's bookings: their holds wait for them.
    pub async fn pending_payment_deadlines(&self, event: EventId) -> StoreResult<Vec<(BookingId, DateTime<Utc>)>> {
        const SQL: &str = "SELECT booking_id, deadline_at FROM payments WHERE event_id = $1 AND status = 'pending'";
        let rows: Vec<(Uuid, DateTime<Utc>)> =
            on_pool!(self, p => sqlx::query_as(SQL).bind(event.0).fetch_all(p).await)?;
        Ok(rows.into_iter().map(|(b, d)| (BookingId(b), d)).collect())
    }

    /// The provider acknowledged the charge.
    pub async fn payment_charged(&self, id: PaymentId, provider_ref: &str, now: DateTime<Utc>) -> StoreResult<()> {
        const SQL: &str = "UPDATE payments SET provider_ref = $1, saga_step = 'awaiting', updated_at = $2 \
             WHERE id = $3 AND saga_step = 'initiating'";
        on_pool!(self, p => sqlx::query(SQL).bind(provider_ref).bind(now).bind(id.0).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The provider took the money but the booking is gone: refund it.
    pub async fn payment_to_refund(&self, id: PaymentId, now: DateTime<Utc>) -> StoreResult<()> {
        const SQL: &str = "UPDATE payments SET status = 'succeeded', saga_step = 'refunding', updated_at = $1 \
             WHERE id = $2 AND saga_step = 'awaiting'";
        on_pool!(self, p => sqlx::query(SQL).bind(now).bind(id.0).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Records the provider's verdict once; `false` if one was already recorded (a replayed
    /// callback). A success that arrives after the payment already failed (its deadline passed
    /// and the seats were released) sends the saga to refund it.
    /// `provider_ref` is kept if the charge's own answer never arrived (a timed-out charge the
    /// provider did take): a refund needs it.
    pub async fn record_outcome(
        &self,
        id: PaymentId,
        outcome: Outcome,
        reason: Option<&str>,
        provider_ref: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE payments SET provider_status = $1, provider_reason = $2, updated_at = $3, \
             provider_ref = COALESCE(provider_ref, $5), \
             saga_step = CASE WHEN status = 'failed' AND $1 = 'succeeded' THEN 'refunding' ELSE saga_step END \
             WHERE id = $4 AND provider_status IS NULL";
        let n = on_pool!(self, p => sqlx::query(SQL).bind(outcome.as_str()).bind(reason).bind(now).bind(id.0)
            .bind(provider_ref).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Ends a saga without a booking change (the booking had already left), announcing it.
    pub async fn finish_payment(
        &self,
        id: PaymentId,
        status: PaymentStatus,
        reason: Option<&str>,
        message: Option<&OutboxEntry>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        // A success recorded meanwhile (the provider's late verdict) turns a failure into a refund.
        const SQL: &str = "UPDATE payments SET status = $1, \
             saga_step = CASE WHEN $1 = 'failed' AND provider_status = 'succeeded' THEN 'refunding' ELSE 'done' END, \
             failure_reason = COALESCE($2, failure_reason), updated_at = $3 WHERE id = $4 AND saga_step <> 'done'";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(SQL).bind(status.as_str()).bind(reason).bind(now).bind(id.0).execute(&mut *tx).await?.rows_affected();
            if let (1, Some(message)) = (n, message) {
                sqlx::query(OUTBOX).bind(message.topic()).bind(message.payload()).bind(&message.event.request_id).bind(now)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    // ---- outbox ------------------------------------------------------------------------

    /// The oldest unsent rows. Selected by `sent_at IS NULL` (the partial index `outbox_unsent`),
    /// never by an id cursor: on PostgreSQL a lower id may commit after a higher one.
    pub async fn unsent_outbox(&self, limit: u32) -> StoreResult<Vec<OutboxRow>> {
        const SQL: &str =
            "SELECT id, topic, payload, request_id, created_at FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1";
        let rows: Vec<RawOutbox> = on_pool!(self, p => sqlx::query_as(SQL).bind(limit as i64).fetch_all(p).await)?;
        Ok(rows.into_iter().map(outbox_row).collect())
    }

    /// The ids of the oldest unsent rows (read from the partial index alone).
    pub async fn unsent_outbox_ids(&self, limit: u32) -> StoreResult<Vec<i64>> {
        const SQL: &str = "SELECT id FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1";
        let ids: Vec<(i64,)> = on_pool!(self, p => sqlx::query_as(SQL).bind(limit as i64).fetch_all(p).await)?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// The rows of `ids` that are still unsent, oldest first.
    pub async fn unsent_outbox_rows(&self, ids: &[i64]) -> StoreResult<Vec<OutboxRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            // Integers only, so they can be written into the statement.
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT id, topic, payload, request_id, created_at FROM outbox WHERE sent_at IS NULL AND id IN ({list}) ORDER BY id"
            );
            let rows: Vec<RawOutbox> = on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await)?;
            out.extend(rows.into_iter().map(outbox_row));
        }
        Ok(out)
    }

    pub async fn mark_sent(&self, ids: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
        for chunk in ids.chunks(500) {
            // Integers only, so they can be written into the statement.
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let sql = format!("UPDATE outbox SET sent_at = $1 WHERE id IN ({list})");
            on_pool!(self, p => sqlx::query(&sql).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// The domain event of an outbox row. A row of an older version (no `schema_version`) is
    /// upgraded, with what it lacks read from its booking and payment; `Err(Unreadable)` for a
    /// row that can never be read (it is skipped), `Ok(Err)` is a store error (try again).
    pub async fn outbox_event(&self, row: &OutboxRow) -> StoreResult<Result<DomainEvent, Unreadable>> {
        let unreadable = |why: String| Ok(Err(Unreadable { row: row.id, why }));
        #[derive(serde::Deserialize)]
        struct Version {
            schema_version: Option<u32>,
        }
        match serde_json::from_str::<Version>(&row.payload) {
            Err(e) => return unreadable(format!("not json: {e}")),
            // A newer version only adds fields, which this one passes over.
            Ok(Version { schema_version: Some(_) }) => {
                return Ok(
                    serde_json::from_str(&row.payload).map_err(|e| Unreadable { row: row.id, why: e.to_string() })
                );
            }
            Ok(Version { schema_version: None }) => {}
        }
        let p: legacy::Payload = match serde_json::from_str(&row.payload) {
            Ok(p) => p,
            Err(e) => return unreadable(e.to_string()),
        };
        let booking = match p.booking_id {
            Some(id) => self.booking(id).await?,
            None => None,
        };
        let payment = match (p.payment_id, &booking) {
            (_, Some(_)) => None,
            (Some(id), None) => self.payment(id).await?,
            (None, None) => None,
        };
        let known = match (&booking, &payment) {
            (Some(b), _) => legacy::Known {
                event_id: b.event_id,
                user_id: b.user_id,
                quantity: b.quantity,
                amount_cents: b.amount_cents,
                currency: b.currency.clone(),
            },
            (None, Some(p)) => legacy::Known {
                event_id: p.event_id,
                user_id: p.user_id,
                quantity: 1,
                amount_cents: p.amount_cents,
                currency: p.currency.clone(),
            },
            (None, None) => return unreadable("its booking and payment are unknown".into()),
        };
        let mut p = p;
        if p.booking_id.is_none() {
            p.booking_id = payment.map(|p| p.booking_id);
        }
        Ok(legacy::upgrade(row.id, &row.topic, &p, &known, row.created_at, row.request_id.clone())
            .map_err(|why| Unreadable { row: row.id, why }))
    }

    /// The oldest rows not yet published to Kafka (the sink's own cursor, `kafka_sent_at`),
    /// found by the partial index like the relay's; never by an id cursor.
    pub async fn kafka_unsent(&self, limit: u32) -> StoreResult<Vec<OutboxRow>> {
        const SQL: &str = "SELECT id, topic, payload, request_id, created_at FROM outbox \
             WHERE kafka_sent_at IS NULL ORDER BY id LIMIT $1";
        let rows: Vec<RawOutbox> = on_pool!(self, p => sqlx::query_as(SQL).bind(limit as i64).fetch_all(p).await)?;
        Ok(rows.into_iter().map(outbox_row).collect())
    }

    pub async fn mark_kafka_sent(&self, ids: &[i64], now: DateTime<Utc>) -> StoreResult<()> {
        for chunk in ids.chunks(500) {
            // Integers only, so they can be written into the statement.
            let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
            let sql = format!("UPDATE outbox SET kafka_sent_at = $1 WHERE id IN ({list})");
            on_pool!(self, p => sqlx::query(&sql).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        }
        Ok(())
    }

    /// Rows not yet published to Kafka (for metrics and tests).
    pub async fn kafka_backlog(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE kafka_sent_at IS NULL";
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(SQL).fetch_one(p).await)?;
        Ok(n)
    }

    /// When the oldest row not yet published to Kafka was written (by the partial index).
    pub async fn kafka_oldest_unsent(&self) -> StoreResult<Option<DateTime<Utc>>> {
        const SQL: &str = "SELECT created_at FROM outbox WHERE kafka_sent_at IS NULL ORDER BY id LIMIT 1";
        let oldest: Option<(DateTime<Utc>,)> = on_pool!(self, p => sqlx::query_as(SQL).fetch_optional(p).await)?;
        Ok(oldest.map(|(t,)| t))
    }

    /// Messages not yet published (for metrics and tests).
    pub async fn outbox_backlog(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL";
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(SQL).fetch_one(p).await)?;
        Ok(n)
    }

    /// Adds a message on its own (a change that is not a journal batch).
    pub async fn insert_outbox(&self, m: &OutboxEntry, now: DateTime<Utc>) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query(OUTBOX).bind(m.topic()).bind(m.payload()).bind(&m.event.request_id).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Forgets outbox rows sent, and notifications delivered, before `before`: they have done
    /// their work, and a redelivery that late is not expected. Returns both counts.
    /// With `kafka`, a row must also have reached Kafka before it goes; without, the sales
    /// analytics read the outbox itself, so a row must have been counted by them.
    pub async fn prune_messages(&self, before: DateTime<Utc>, kafka: bool) -> StoreResult<(u64, u64)> {
        const OUTBOX_SQL: &str = "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < $1 \
             AND ($2 = FALSE OR (kafka_sent_at IS NOT NULL AND kafka_sent_at < $1)) \
             AND ($2 = TRUE OR (analytics_at IS NOT NULL AND analytics_at < $1))";
        const DELIVERIES_SQL: &str = "DELETE FROM deliveries WHERE state = 'sent' AND sent_at < $1";
        let outbox = on_pool!(self, p => sqlx::query(OUTBOX_SQL).bind(before).bind(kafka).execute(p).await.map(|r| r.rows_affected()))?;
        let deliveries =
            on_pool!(self, p => sqlx::query(DELIVERIES_SQL).bind(before).execute(p).await.map(|r| r.rows_affected()))?;
        Ok((outbox, deliveries))
    }

    // ---- notifications -----------------------------------------------------------------

    /// Claims the sending of a notification for `lease`; a claim that ran out (the sender
    /// died) can be taken again.
    pub async fn claim_delivery(
        &self,
        message_id: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StoreResult<DeliveryClaim> {
        const CLAIM: &str = "INSERT INTO deliveries (message_id, state, claimed_until) VALUES ($1, 'sending', $2) \
             ON CONFLICT (message_id) DO UPDATE SET claimed_until = excluded.claimed_until \
             WHERE deliveries.state = 'sending' AND deliveries.claimed_until < $3";
        const STATE: &str = "SELECT state FROM deliveries WHERE message_id = $1";
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let n = on_pool!(self, p => sqlx::query(CLAIM).bind(message_id).bind(until).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        if n == 1 {
            return Ok(DeliveryClaim::Claimed);
        }
        let state: Option<(String,)> =
            on_pool!(self, p => sqlx::query_as(STATE).bind(message_id).fetch_optional(p).await)?;
        Ok(match state {
            Some((s,)) if s == "sent" => DeliveryClaim::AlreadySent,
            _ => DeliveryClaim::Busy,
        })
    }

    pub async fn delivery_sent(&self, message_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        const SQL: &str = "UPDATE deliveries SET state = 'sent', sent_at = $1 WHERE message_id = $2";
        on_pool!(self, p => sqlx::query(SQL).bind(now).bind(message_id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Gives a claim back after a failed send, so a retry may claim it at once.
    pub async fn release_delivery(&self, message_id: &str) -> StoreResult<()> {
        const SQL: &str = "DELETE FROM deliveries WHERE message_id = $1 AND state = 'sending'";
        on_pool!(self, p => sqlx::query(SQL).bind(message_id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- tickets -----------------------------------------------------------------------

    /// The booking a ticket code belongs to (admission itself goes through the event's actor).
    pub async fn booking_by_ticket_code(&self, code: &str) -> StoreResult<Option<BookingRow>> {
        let sql = format!("SELECT {} FROM bookings WHERE ticket_code = $1", rows::BOOKING_COLUMNS);
        let raw: Option<rows::RawBooking> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(code).fetch_optional(p).await)?;
        raw.map(BookingRow::try_from).transpose()
    }
}

type RawOutbox = (i64, String, String, Option<String>, DateTime<Utc>);

fn outbox_row((id, topic, payload, request_id, created_at): RawOutbox) -> OutboxRow {
    OutboxRow { id, topic, payload, request_id, created_at }
}
