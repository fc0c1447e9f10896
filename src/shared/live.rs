//! Live updates across nodes: what this node's event owners publish (availability after each
//! commit, booking status changes) goes out on the `live` pub/sub channel, and what the other
//! nodes' owners publish comes in to this node's snapshot hub and status hub, so a stream on any
//! node hears of a hold made on another at once instead of at the next store refresh
//! (`SNAPSHOT_REFRESH_MS`). Started only with `REDIS_URL`: a single node has nothing to tell.
//!
//! Payloads stay small. The sender drains what is queued before each publish, so under load one
//! message carries an event's latest availability, not each batch's, and one message carries
//! all status changes queued meanwhile. Availability is the three counts plus, for a seat map
//! of at most [`SEATS_INLINE`] seats, every seat's state as one character each (2 KB at most);
//! a larger map's seats stay with the store refresh, which only the seat map read uses (the
//! streams show counts). Diffs against the previous snapshot would be smaller still, but a
//! receiver that missed one (it started watching late, or pub/sub dropped one) would show wrong
//! seats until the refresh; whole states are always right. A booking's first status (held)
//! never crosses: it is durable before anyone can know the booking's id, so a stream elsewhere
//! reads it from the store.
//!
//! Pub/sub loses what it cannot deliver: on [`Delivery::Resync`] the hub's channels go back to
//! the store refresh; status changes lost then are not replayed (the stream's client sees the
//! status on its next read or reconnect).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use uuid::Uuid;

use super::{Channel, Delivery, Fanout};
use crate::actors::{Published, Snapshot, SnapshotHub, StatusChange, StatusHub};
use crate::domain::booking::BookingStatus;
use crate::domain::ids::{BookingId, EventId};
use crate::domain::inventory::{Counts, SeatState};

/// Seat maps up to this many seats travel whole; larger ones as counts only.
pub const SEATS_INLINE: usize = 2048;
/// Status changes in one message at most.
const STATUSES_PER_MESSAGE: usize = 500;

/// What is said on the live channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveMessage {
    /// The availability of `event` as its owner published it after a commit. `seats`: one
    /// character a seat in seat-map order (`.` free, `h` held, `s` sold), for small maps only.
    Availability { origin: Uuid, event: Uuid, capacity: u32, held: u32, sold: u32, seats: Option<String> },
    /// Bookings of events the sender owns whose status changed after their first.
    Statuses { origin: Uuid, changes: Vec<(Uuid, BookingStatus)> },
}

pub const CHANNEL: Channel<LiveMessage> = Channel::new("live");

fn encode_seats(states: &[SeatState]) -> String {
    states
        .iter()
        .map(|s| match s {
            SeatState::Free => '.',
            SeatState::Held => 'h',
            SeatState::Sold => 's',
        })
        .collect()
}

fn decode_seats(text: &str) -> Option<Vec<SeatState>> {
    text.chars()
        .map(|c| match c {
            '.' => Some(SeatState::Free),
            'h' => Some(SeatState::Held),
            's' => Some(SeatState::Sold),
            _ => None,
        })
        .collect()
}

fn availability(origin: Uuid, event: EventId, s: &Snapshot) -> LiveMessage {
    let seats = s.seats.as_ref().filter(|v| v.len() <= SEATS_INLINE).map(|v| encode_seats(v));
    LiveMessage::Availability {
        origin,
        event: event.0,
        capacity: s.counts.capacity,
        held: s.counts.held,
        sold: s.counts.sold,
        seats,
    }
}

/// Starts the two halves: out (this node's owners to the channel) and in (the channel to
/// this node's hubs).
pub fn spawn(
    fanout: Fanout,
    hub: SnapshotHub,
    statuses: std::sync::Arc<StatusHub>,
) -> [tokio::task::JoinHandle<()>; 2] {
    let origin = Uuid::new_v4();
    let out = tokio::spawn(send_local(fanout.clone(), origin, hub.local_updates(), statuses.local_changes()));
    let sub = fanout.subscribe(&CHANNEL);
    let inbound = tokio::spawn(async move {
        let mut sub = sub;
        loop {
            match sub.recv().await {
                Some(Delivery::Message(m)) => receive(&hub, &statuses, origin, m),
                Some(Delivery::Resync) => hub.resync_remote(),
                None => return,
            }
        }
    });
    [out, inbound]
}

fn receive(hub: &SnapshotHub, statuses: &StatusHub, me: Uuid, message: LiveMessage) {
    match message {
        LiveMessage::Availability { origin, .. } | LiveMessage::Statuses { origin, .. } if origin == me => {}
        LiveMessage::Availability { event, capacity, held, sold, seats, .. } => {
            // Never trust a peer into an underflow of `available`.
            let held = held.min(capacity);
            let counts = Counts { capacity, held, sold: sold.min(capacity - held) };
            let seats = seats.as_deref().and_then(decode_seats);
            hub.receive_remote_availability(EventId(event), counts, seats);
        }
        LiveMessage::Statuses { changes, .. } => {
            for (booking, status) in changes {
                statuses.receive_remote(StatusChange { booking: BookingId(booking), status });
            }
        }
    }
}

/// Publishes what this node's owners say, coalescing what queued up during the last publish.
async fn send_local(
    fanout: Fanout,
    origin: Uuid,
    mut snapshots: tokio::sync::broadcast::Receiver<Published>,
    mut changes: tokio::sync::broadcast::Receiver<StatusChange>,
) {
    let mut latest: HashMap<EventId, Snapshot> = HashMap::new();
    let mut pending: Vec<(Uuid, BookingStatus)> = Vec::new();
    loop {
        tokio::select! {
            r = snapshots.recv() => match r {
                Ok(p) => { latest.insert(p.event, p.snapshot); }
                // A later snapshot says all an earlier one did.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            r = changes.recv() => match r {
                Ok(c) => pending.push((c.booking.0, c.status)),
                Err(RecvError::Lagged(n)) => lost(n),
                Err(RecvError::Closed) => return,
            },
        }
        loop {
            match snapshots.try_recv() {
                Ok(p) => {
                    latest.insert(p.event, p.snapshot);
                }
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        loop {
            match changes.try_recv() {
                Ok(c) => pending.push((c.booking.0, c.status)),
                Err(TryRecvError::Lagged(n)) => lost(n),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        for (event, snapshot) in latest.drain() {
            fanout.publish(&CHANNEL, &availability(origin, event, &snapshot)).await;
        }
        while !pending.is_empty() {
            let rest = pending.split_off(pending.len().min(STATUSES_PER_MESSAGE));
            let changes = std::mem::replace(&mut pending, rest);
            fanout.publish(&CHANNEL, &LiveMessage::Statuses { origin, changes }).await;
        }
    }
}

fn lost(n: u64) {
    tracing::warn!(lost = n, "booking status changes not sent to other nodes (the sender fell behind)");
    metrics::counter!("boxoffice_live_updates_lost_total").increment(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_states_survive_the_wire() {
        let states = vec![SeatState::Free, SeatState::Held, SeatState::Sold, SeatState::Free];
        let text = encode_seats(&states);
        assert_eq!(text, ".hs.");
        assert_eq!(decode_seats(&text), Some(states));
        assert_eq!(decode_seats(".x"), None);
    }
}
