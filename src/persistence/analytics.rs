//! The sales figures' tables: applying a batch of domain events together with the consumer's
//! position (outbox rows read, or a Kafka partition's next offset) in one transaction, so the
//! position never runs ahead of, or behind, the figures it accounts for; and reading an
//! event's figures back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{OutboxRow, Pool, Store, StoreResult};
use crate::domain::analytics::{SalesFigures, Tally, hour_of};
use crate::domain::ids::EventId;
use crate::domain::stream::DomainEvent;

/// Where the consumer is, written with the figures.
#[derive(Debug, Clone, Copy)]
pub enum AnalyticsPosition<'a> {
    /// These outbox rows were read (including rows nobody can read, so they stop coming back).
    Outbox(&'a [i64]),
    /// The partition's records before `next_offset` were read.
    Kafka { topic: &'a str, partition: i32, next_offset: i64 },
}

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Domain events counted now.
    pub applied: u64,
    /// Domain events counted before (by id), so left alone.
    pub duplicates: u64,
}

const SEEN: &str =
    "INSERT INTO analytics_seen (id, event_id, applied_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";
const ADD_HOUR: &str = "INSERT INTO analytics_hourly (event_id, hour, holds, tickets_held, bookings_confirmed, \
     tickets_sold, revenue_cents, cancellations, tickets_refunded, expiries, payment_failures, refunds, refunded_cents, \
     check_ins, tickets_checked_in) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
     ON CONFLICT (event_id, hour) DO UPDATE SET holds = analytics_hourly.holds + excluded.holds, \
     tickets_held = analytics_hourly.tickets_held + excluded.tickets_held, \
     bookings_confirmed = analytics_hourly.bookings_confirmed + excluded.bookings_confirmed, \
     tickets_sold = analytics_hourly.tickets_sold + excluded.tickets_sold, \
     revenue_cents = analytics_hourly.revenue_cents + excluded.revenue_cents, \
     cancellations = analytics_hourly.cancellations + excluded.cancellations, \
     tickets_refunded = analytics_hourly.tickets_refunded + excluded.tickets_refunded, \
     expiries = analytics_hourly.expiries + excluded.expiries, \
     payment_failures = analytics_hourly.payment_failures + excluded.payment_failures, \
     refunds = analytics_hourly.refunds + excluded.refunds, \
     refunded_cents = analytics_hourly.refunded_cents + excluded.refunded_cents, \
     check_ins = analytics_hourly.check_ins + excluded.check_ins, \
     tickets_checked_in = analytics_hourly.tickets_checked_in + excluded.tickets_checked_in";
// Never backwards: two consumers of one partition (two worker processes) may commit out of turn.
const OFFSET: &str = "INSERT INTO analytics_offsets (topic, partition_id, next_offset, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (topic, partition_id) DO UPDATE SET \
     next_offset = CASE WHEN excluded.next_offset > analytics_offsets.next_offset \
     THEN excluded.next_offset ELSE analytics_offsets.next_offset END, updated_at = excluded.updated_at";
const HOURS: &str = "SELECT hour, holds, tickets_held, bookings_confirmed, tickets_sold, revenue_cents, cancellations, \
     tickets_refunded, expiries, payment_failures, refunds, refunded_cents, check_ins, tickets_checked_in \
     FROM analytics_hourly WHERE event_id = $1";

type RawOutbox = (i64, String, String, Option<String>, DateTime<Utc>);
type RawHour = (DateTime<Utc>, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

fn hour_row(r: RawHour) -> (DateTime<Utc>, Tally) {
    let t = Tally {
        holds: r.1,
        tickets_held: r.2,
        bookings_confirmed: r.3,
        tickets_sold: r.4,
        revenue_cents: r.5,
        cancellations: r.6,
        tickets_refunded: r.7,
        expiries: r.8,
        payment_failures: r.9,
        refunds: r.10,
        refunded_cents: r.11,
        check_ins: r.12,
        tickets_checked_in: r.13,
    };
    (r.0, t)
}

impl Store {
    /// Counts the events not counted before (by id) and records `position`, in one
    /// transaction: after a crash either both happened or neither did.
    pub async fn apply_analytics(
        &self,
        events: &[DomainEvent],
        position: AnalyticsPosition<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<Applied> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let mut done = Applied::default();
            let mut hours: BTreeMap<(Uuid, DateTime<Utc>), Tally> = BTreeMap::new();
            for e in events {
                let fresh = sqlx::query(SEEN).bind(e.id).bind(e.event_id.0).bind(now)
                    .execute(&mut *tx).await?.rows_affected() == 1;
                if !fresh {
                    done.duplicates += 1;
                    continue;
                }
                done.applied += 1;
                if let Some(t) = Tally::of(e) {
                    hours.entry((e.event_id.0, hour_of(e.time))).or_default().add(&t);
                }
            }
            // One write per event and hour, in key order (two consumers never deadlock).
            for ((event, hour), t) in &hours {
                sqlx::query(ADD_HOUR).bind(event).bind(hour).bind(t.holds).bind(t.tickets_held)
                    .bind(t.bookings_confirmed).bind(t.tickets_sold).bind(t.revenue_cents).bind(t.cancellations)
                    .bind(t.tickets_refunded).bind(t.expiries).bind(t.payment_failures).bind(t.refunds)
                    .bind(t.refunded_cents).bind(t.check_ins).bind(t.tickets_checked_in)
                    .execute(&mut *tx).await?;
            }
            match position {
                AnalyticsPosition::Outbox(ids) => {
                    for chunk in ids.chunks(500) {
                        // Integers only, so they can be written into the statement.
                        let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                        let sql = format!("UPDATE outbox SET analytics_at = $1 WHERE id IN ({list})");
                        sqlx::query(&sql).bind(now).execute(&mut *tx).await?;
                    }
                }
                AnalyticsPosition::Kafka { topic, partition, next_offset } => {
                    sqlx::query(OFFSET).bind(topic).bind(partition).bind(next_offset).bind(now)
                        .execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done)
        })
        .map_err(Into::into)
    }

    /// The oldest outbox rows the analytics have not read (their own cursor, `analytics_at`),
    /// found by the partial index like the other cursors', never by an id cursor: on
    /// PostgreSQL a lower id may commit after a higher one.
    pub async fn analytics_unread(&self, limit: u32) -> StoreResult<Vec<OutboxRow>> {
        const SQL: &str = "SELECT id, topic, payload, request_id, created_at FROM outbox \
             WHERE analytics_at IS NULL ORDER BY id LIMIT $1";
        let rows: Vec<RawOutbox> = on_pool!(self, p => sqlx::query_as(SQL).bind(limit as i64).fetch_all(p).await)?;
        Ok(rows
            .into_iter()
            .map(|(id, topic, payload, request_id, created_at)| OutboxRow {
                id,
                topic,
                payload,
                request_id,
                created_at,
            })
            .collect())
    }

    /// Outbox rows the analytics have not read yet (metrics and tests).
    pub async fn analytics_backlog(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE analytics_at IS NULL";
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(SQL).fetch_one(p).await)?;
        Ok(n)
    }

    /// How far the analytics are behind the outbox (their source without Kafka): the rows not
    /// read yet, and when the oldest of them was written.
    pub async fn analytics_lag(&self) -> StoreResult<(i64, Option<DateTime<Utc>>)> {
        const COUNT: &str = "SELECT COUNT(*) FROM outbox WHERE analytics_at IS NULL";
        const OLDEST: &str = "SELECT created_at FROM outbox WHERE analytics_at IS NULL ORDER BY id LIMIT 1";
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(COUNT).fetch_one(p).await)?;
        let oldest: Option<(DateTime<Utc>,)> = on_pool!(self, p => sqlx::query_as(OLDEST).fetch_optional(p).await)?;
        Ok((n, oldest.map(|(t,)| t)))
    }

    /// Forgets which domain events counted before `before` were counted: a copy of one of
    /// them arriving later would be counted again, so `before` must lie beyond every
    /// redelivery window (the Kafka topic's retention, the outbox's). Returns how many went.
    pub async fn prune_analytics_seen(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        const SQL: &str = "DELETE FROM analytics_seen WHERE applied_at < $1";
        let n = on_pool!(self, p => sqlx::query(SQL).bind(before).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// The next offset to read in each partition of `topic` the consumer has read from.
    pub async fn analytics_offsets(&self, topic: &str) -> StoreResult<BTreeMap<i32, i64>> {
        const SQL: &str = "SELECT partition_id, next_offset FROM analytics_offsets WHERE topic = $1";
        let rows: Vec<(i32, i64)> = on_pool!(self, p => sqlx::query_as(SQL).bind(topic).fetch_all(p).await)?;
        Ok(rows.into_iter().collect())
    }

    /// Moves the consumer's position in a partition to `next_offset`, backwards too (the
    /// broker no longer has the records at the old position).
    pub async fn reset_analytics_offset(
        &self,
        topic: &str,
        partition: i32,
        next_offset: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO analytics_offsets (topic, partition_id, next_offset, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (topic, partition_id) DO UPDATE SET \
             next_offset = excluded.next_offset, updated_at = excluded.updated_at";
        on_pool!(self, p => sqlx::query(SQL).bind(topic).bind(partition).bind(next_offset).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// An event's figures as counted so far.
    pub async fn sales_figures(&self, event: EventId) -> StoreResult<SalesFigures> {
        let rows: Vec<RawHour> = on_pool!(self, p => sqlx::query_as(HOURS).bind(event.0).fetch_all(p).await)?;
        Ok(SalesFigures::from_hours(rows.into_iter().map(hour_row).collect()))
    }
}
