//! Several nodes on one database: the node registry (internal address, heartbeat) and the
//! event ownership leases. A node takes an event only if its lease is free, expired or its own,
//! and taking it bumps `events.owner_epoch` in the same transaction, so the journal's fenced
//! update refuses the previous owner's later batches whatever the clocks say.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::rows::{self, RawEvent};
use super::{EventRow, Pool, Store, StoreResult};
use crate::domain::ids::EventId;

/// What became of an attempt to take an event.
#[derive(Debug)]
pub enum Acquired {
    /// This node owns the event now, at the epoch of the returned row.
    Taken(EventRow),
    /// Another node's lease is still running.
    Held(LeaseHolder),
    /// The lease changed hands while we looked; try again.
    Busy,
    NotFound,
}

/// The node that holds an event's lease, and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub node: String,
    /// Its `NODE_ADDR` (absent if the node never registered).
    pub addr: Option<String>,
    pub epoch: i64,
    pub lease_until: DateTime<Utc>,
}

fn until(now: DateTime<Utc>, lease: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease).unwrap_or_default()
}

impl Store {
    /// Registers this node (or refreshes its address and heartbeat).
    pub async fn register_node(&self, node: &str, addr: &str, now: DateTime<Utc>) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO nodes (id, addr, started_at, heartbeat_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, heartbeat_at = excluded.heartbeat_at";
        on_pool!(self, p => sqlx::query(SQL).bind(node).bind(addr).bind(now).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// The holder of an event's lease, if any node holds one (running or run out).
    pub async fn lease_holder(&self, event: EventId) -> StoreResult<Option<LeaseHolder>> {
        const SQL: &str = "SELECT l.owner_node, n.addr, l.epoch, l.lease_until FROM event_leases l \
             LEFT JOIN nodes n ON n.id = l.owner_node WHERE l.event_id = $1 AND l.owner_node IS NOT NULL";
        let row: Option<(String, Option<String>, i64, DateTime<Utc>)> =
            on_pool!(self, p => sqlx::query_as(SQL).bind(event.0).fetch_optional(p).await)?;
        Ok(row.map(|(node, addr, epoch, lease_until)| LeaseHolder { node, addr, epoch, lease_until }))
    }

    /// Takes an event for `node` if its lease is free, expired or already `node`'s: bumps the
    /// fencing epoch and starts a lease of `lease`, in one transaction. The lease row is locked
    /// first, so of two nodes racing for an expired lease the second finds it taken.
    pub async fn acquire_event(
        &self,
        event: EventId,
        node: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StoreResult<Acquired> {
        const LEASE: &str = "INSERT INTO event_leases (event_id, owner_node, epoch, lease_until) VALUES ($1, $2, 0, $3) \
             ON CONFLICT (event_id) DO UPDATE SET owner_node = excluded.owner_node, lease_until = excluded.lease_until \
             WHERE event_leases.owner_node IS NULL OR event_leases.owner_node = excluded.owner_node \
                OR event_leases.lease_until < $4 \
             RETURNING event_id";
        const EPOCH: &str = "UPDATE event_leases SET epoch = $1 WHERE event_id = $2";
        let take = format!(
            "UPDATE events SET owner_epoch = owner_epoch + 1, owner_node = $1, updated_at = $2 \
             WHERE id = $3 AND deleted_at IS NULL RETURNING {}",
            rows::EVENT_COLUMNS
        );
        let lease_until = until(now, lease);
        let taken: Option<RawEvent> = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let got: Option<(Uuid,)> = sqlx::query_as(LEASE)
                .bind(event.0).bind(node).bind(lease_until).bind(now)
                .fetch_optional(&mut *tx).await?;
            if got.is_none() {
                None
            } else {
                let raw: Option<RawEvent> =
                    sqlx::query_as(&take).bind(node).bind(now).bind(event.0).fetch_optional(&mut *tx).await?;
                match raw {
                    Some(raw) => {
                        sqlx::query(EPOCH).bind(raw.owner_epoch()).bind(event.0).execute(&mut *tx).await?;
                        tx.commit().await?;
                        Some(raw)
                    }
                    // No such event: the lease row goes with the transaction.
                    None => return Ok(Acquired::NotFound),
                }
            }
        });
        match taken {
            Some(raw) => Ok(Acquired::Taken(EventRow::try_from(raw)?)),
            None => match self.lease_holder(event).await? {
                Some(holder) => Ok(Acquired::Held(holder)),
                // Given up between the two statements: the caller may try again.
                None => Ok(Acquired::Busy),
            },
        }
    }

    /// Renews `node`'s lease taken at `epoch`; `false` if the event is no longer its own.
    pub async fn renew_event(
        &self,
        event: EventId,
        node: &str,
        epoch: i64,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> StoreResult<bool> {
        const SQL: &str =
            "UPDATE event_leases SET lease_until = $1 WHERE event_id = $2 AND owner_node = $3 AND epoch = $4";
        let n = on_pool!(self, p => sqlx::query(SQL).bind(until(now, lease)).bind(event.0).bind(node).bind(epoch)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Gives up `node`'s lease taken at `epoch` (another node may take the event at once).
    pub async fn release_event(&self, event: EventId, node: &str, epoch: i64, now: DateTime<Utc>) -> StoreResult<()> {
        const SQL: &str = "UPDATE event_leases SET owner_node = NULL, lease_until = $1 \
             WHERE event_id = $2 AND owner_node = $3 AND epoch = $4";
        on_pool!(self, p => sqlx::query(SQL).bind(now).bind(event.0).bind(node).bind(epoch)
            .execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Events with holds whose lease is free or ran out: their owner died or gave them up, and
    /// someone must take them so that their holds expire on time.
    pub async fn orphaned_events_with_holds(&self, now: DateTime<Utc>) -> StoreResult<Vec<EventId>> {
        const SQL: &str = "SELECT DISTINCT b.event_id FROM bookings b \
             LEFT JOIN event_leases l ON l.event_id = b.event_id \
             WHERE b.status = 'held' AND (l.event_id IS NULL OR l.owner_node IS NULL OR l.lease_until < $1)";
        let ids: Vec<(Uuid,)> = on_pool!(self, p => sqlx::query_as(SQL).bind(now).fetch_all(p).await)?;
        Ok(ids.into_iter().map(|(id,)| EventId(id)).collect())
    }

    /// The booking's event (forwarding a write about a booking needs its event's owner).
    pub async fn event_of_booking(&self, booking: crate::domain::ids::BookingId) -> StoreResult<Option<EventId>> {
        const SQL: &str = "SELECT event_id FROM bookings WHERE id = $1";
        let row: Option<(Uuid,)> = on_pool!(self, p => sqlx::query_as(SQL).bind(booking.0).fetch_optional(p).await)?;
        Ok(row.map(|(id,)| EventId(id)))
    }

    /// Seats held and sold as the store has them, for readers on nodes that do not own the
    /// event: `(held, sold)` counts and, for a seated event, each live seat with whether it is
    /// sold (`true`) or held.
    pub async fn durable_availability(&self, event: EventId) -> StoreResult<((i64, i64), Vec<(String, bool)>)> {
        const COUNTS: &str = "SELECT \
             CAST(COALESCE(SUM(CASE WHEN status = 'held' THEN quantity ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN status = 'confirmed' THEN quantity ELSE 0 END), 0) AS BIGINT) \
             FROM bookings WHERE event_id = $1 AND status IN ('held', 'confirmed')";
        const SEATS: &str = "SELECT s.seat_id, b.status FROM booking_seats s JOIN bookings b ON b.id = s.booking_id \
             WHERE s.event_id = $1";
        let counts: (i64, i64) = on_pool!(self, p => sqlx::query_as(COUNTS).bind(event.0).fetch_one(p).await)?;
        let seats: Vec<(String, String)> = on_pool!(self, p => sqlx::query_as(SEATS).bind(event.0).fetch_all(p).await)?;
        Ok((counts, seats.into_iter().map(|(s, status)| (s, status == "confirmed")).collect()))
    }
}
