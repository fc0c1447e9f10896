//! The per-event snapshot hub: where readers (event details, seat maps, availability streams)
//! find an event's availability without taking the event. A local owner actor publishes into
//! its event's channel after every commit; with no local owner, a channel that someone watches
//! is refreshed from the store (counters, and the seats of live bookings) every
//! `SNAPSHOT_REFRESH_MS`. A bridge to other nodes (Redis pub/sub) plugs in with two calls:
//! `local_updates` (what this node's owners publish) and `receive_remote` (what another node's
//! owner published), which also pauses the store refresh while remote snapshots keep coming.
//! A bridge may carry counts without the seats of a large seat map
//! (`receive_remote_availability`): the refresh then still brings the seats but keeps the
//! bridge's newer counts. After a gap in what the bridge heard, `resync_remote` hands every
//! channel back to the store refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::{broadcast, watch};

use super::Snapshot;
use crate::domain::ids::EventId;
use crate::domain::inventory::{Counts, SeatState};
use crate::domain::seatmap::SeatMap;
use crate::persistence::{EventRow, Store, StoreResult};

/// One snapshot published by this node's owner of `event`, for a bridge to fan out.
#[derive(Clone, Debug)]
pub struct Published {
    pub event: EventId,
    pub snapshot: Snapshot,
}

struct Channel {
    tx: watch::Sender<Snapshot>,
    /// A local event actor publishes here.
    owned: bool,
    /// When a bridge last delivered another node's snapshot.
    remote_at: Option<Instant>,
    /// When a bridge last delivered another node's counts without the seats.
    counts_at: Option<Instant>,
    /// A task refreshes this channel from the store while it is watched.
    polling: bool,
}

struct Inner {
    channels: DashMap<EventId, Channel>,
    store: Store,
    refresh: Duration,
    bridge: broadcast::Sender<Published>,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct SnapshotHub(Arc<Inner>);

fn same(a: &Snapshot, b: &Snapshot) -> bool {
    let counts = |c: &Counts| (c.capacity, c.held, c.sold);
    counts(&a.counts) == counts(&b.counts)
        && match (&a.seats, &b.seats) {
            (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x == y,
            (None, None) => true,
            _ => false,
        }
}

impl SnapshotHub {
    pub fn new(store: Store, refresh: Duration) -> Self {
        let (bridge, _) = broadcast::channel(1024);
        Self(Arc::new(Inner {
            channels: DashMap::new(),
            store,
            refresh: refresh.max(Duration::from_millis(10)),
            bridge,
        }))
    }

    /// A local actor took `event`: it publishes through the returned sender from now on.
    pub(crate) fn owner_attached(&self, event: EventId, initial: Snapshot) -> watch::Sender<Snapshot> {
        let mut c = self.0.channels.entry(event).or_insert_with(|| Channel {
            tx: watch::channel(initial.clone()).0,
            owned: false,
            remote_at: None,
            counts_at: None,
            polling: false,
        });
        c.owned = true;
        c.tx.send_replace(initial);
        c.tx.clone()
    }

    /// The local owner published `snapshot` (already sent on its channel): tell a bridge.
    pub(crate) fn owner_published(&self, event: EventId, snapshot: &Snapshot) {
        if self.0.bridge.receiver_count() > 0 {
            let _ = self.0.bridge.send(Published { event, snapshot: snapshot.clone() });
        }
    }

    /// The local owner stopped: watchers keep their channel, refreshed from the store.
    pub(crate) fn owner_detached(&self, event: EventId) {
        let watched = match self.0.channels.get_mut(&event) {
            Some(mut c) => {
                c.owned = false;
                c.tx.receiver_count() > 0
            }
            None => return,
        };
        if watched {
            self.ensure_polling(event);
        } else {
            self.0.channels.remove_if(&event, |_, c| !c.owned && c.tx.receiver_count() == 0);
        }
    }

    /// Snapshots this node's owners publish, for a bridge to send to other nodes.
    pub fn local_updates(&self) -> broadcast::Receiver<Published> {
        self.0.bridge.subscribe()
    }

    /// Another node's owner published `snapshot`: watchers here get it at once. Ignored if
    /// nobody here watches the event, or if this node owns it (its own actor is the truth).
    pub fn receive_remote(&self, event: EventId, snapshot: Snapshot) {
        if let Some(mut c) = self.0.channels.get_mut(&event)
            && !c.owned
        {
            c.remote_at = Some(Instant::now());
            c.tx.send_if_modified(|cur| {
                let changed = !same(cur, &snapshot);
                *cur = snapshot;
                changed
            });
        }
    }

    /// Another node's owner published `counts` and, unless its seat map is large, the states of
    /// all its seats: as `receive_remote`; without the seats of a seated event, the counts are
    /// taken and the seats stay those of the store refresh.
    pub fn receive_remote_availability(&self, event: EventId, counts: Counts, seats: Option<Vec<SeatState>>) {
        let Some(mut c) = self.0.channels.get_mut(&event) else { return };
        if c.owned {
            return;
        }
        let (map, current_seats) = {
            let cur = c.tx.borrow();
            (cur.seat_map.clone(), cur.seats.clone())
        };
        let full = match (&map, &seats) {
            (None, _) => true,
            (Some(m), Some(s)) => s.len() == m.capacity() as usize,
            (Some(_), None) => false,
        };
        let snapshot = if full {
            c.remote_at = Some(Instant::now());
            Snapshot { counts, seats: map.as_ref().and(seats.map(Arc::new)), seat_map: map }
        } else {
            c.counts_at = Some(Instant::now());
            Snapshot { counts, seat_map: map, seats: current_seats }
        };
        c.tx.send_if_modified(|cur| {
            let changed = !same(cur, &snapshot);
            *cur = snapshot;
            changed
        });
    }

    /// The bridge may have missed snapshots: every channel goes back to the store refresh.
    pub fn resync_remote(&self) {
        for mut c in self.0.channels.iter_mut() {
            c.remote_at = None;
            c.counts_at = None;
        }
    }

    /// The latest snapshot this node has of `event` (its owner's, a bridge's or a recent
    /// refresh), without waiting.
    pub fn current(&self, event: EventId) -> Option<Snapshot> {
        self.0.channels.get(&event).map(|c| c.tx.borrow().clone())
    }

    /// The event's availability: the hub's if it has one, else read from the store now.
    pub async fn read(&self, event: &EventRow) -> StoreResult<Snapshot> {
        match self.current(event.id) {
            Some(s) => Ok(s),
            None => durable_snapshot(&self.0.store, event, None).await,
        }
    }

    /// Watches the event's availability without owning it.
    pub async fn subscribe(&self, event: &EventRow) -> StoreResult<watch::Receiver<Snapshot>> {
        if let Some(c) = self.0.channels.get(&event.id) {
            let rx = c.tx.subscribe();
            drop(c);
            self.ensure_polling(event.id);
            return Ok(rx);
        }
        let initial = durable_snapshot(&self.0.store, event, None).await?;
        let rx = self
            .0
            .channels
            .entry(event.id)
            .or_insert_with(|| Channel {
                tx: watch::channel(initial).0,
                owned: false,
                remote_at: None,
                counts_at: None,
                polling: false,
            })
            .tx
            .subscribe();
        self.ensure_polling(event.id);
        Ok(rx)
    }

    /// Whether anyone on this node watches `event` (its owner stays up meanwhile).
    pub fn watched(&self, event: EventId) -> bool {
        self.0.channels.get(&event).is_some_and(|c| c.tx.receiver_count() > 0)
    }

    /// Starts the store refresh of a watched channel, unless one runs.
    fn ensure_polling(&self, event: EventId) {
        let start = match self.0.channels.get_mut(&event) {
            Some(mut c) if !c.polling => {
                c.polling = true;
                true
            }
            _ => false,
        };
        if start {
            tokio::spawn(poll(self.0.clone(), event));
        }
    }
}

/// Refreshes a watched channel from the store while nobody on this node owns the event and no
/// bridge delivers its owner's snapshots; ends (and forgets the channel) when nobody watches.
async fn poll(hub: Arc<Inner>, event: EventId) {
    loop {
        tokio::time::sleep(hub.refresh).await;
        let recent = |at: Option<Instant>| at.is_some_and(|t| t.elapsed() < hub.refresh * 3);
        let (tx, skip, keep_counts) = match hub.channels.get(&event) {
            None => return,
            Some(c) => (c.tx.clone(), c.owned || recent(c.remote_at), recent(c.counts_at)),
        };
        if tx.receiver_count() == 0 {
            let mut gone = true;
            if let Some(mut c) = hub.channels.get_mut(&event) {
                if c.tx.receiver_count() > 0 {
                    gone = false;
                } else {
                    c.polling = false;
                }
            }
            if gone {
                hub.channels.remove_if(&event, |_, c| !c.owned && c.tx.receiver_count() == 0);
                return;
            }
            continue;
        }
        if skip {
            continue;
        }
        let previous = tx.borrow().clone();
        let fresh = match hub.store.event(event).await {
            Ok(Some(row)) => durable_snapshot(&hub.store, &row, previous.seat_map.clone()).await,
            Ok(None) => continue,
            Err(e) => Err(e),
        };
        match fresh {
            Ok(mut s) => {
                // The bridge's counts may include claims not yet committed: newer than ours.
                if keep_counts {
                    s.counts = tx.borrow().counts;
                }
                // The owner may have attached meanwhile: its snapshot is newer than ours.
                if hub.channels.get(&event).is_some_and(|c| !c.owned) {
                    tx.send_if_modified(|cur| {
                        let changed = !same(cur, &s);
                        *cur = s;
                        changed
                    });
                }
            }
            Err(e) => tracing::debug!(event_id = %event, error = %e, "availability not refreshed"),
        }
    }
}

/// The availability the store records (committed changes only), for a node that does not
/// own the event. `map`: the seat map parsed earlier, if any.
pub async fn durable_snapshot(store: &Store, event: &EventRow, map: Option<Arc<SeatMap>>) -> StoreResult<Snapshot> {
    let ((held, sold), live_seats) = store.durable_availability(event.id).await?;
    let capacity = event.capacity.clamp(0, u32::MAX as i64) as u32;
    let held = (held.max(0) as u32).min(capacity);
    let sold = (sold.max(0) as u32).min(capacity - held);
    let counts = Counts { capacity, held, sold };
    let map = match map {
        Some(m) => Some(m),
        None => event.parsed_seat_map()?.map(Arc::new),
    };
    let seats = map.as_ref().map(|m| {
        let mut states = vec![SeatState::Free; m.capacity() as usize];
        for (id, is_sold) in &live_seats {
            if let Some(i) = m.seat_index(id) {
                states[i as usize] = if *is_sold { SeatState::Sold } else { SeatState::Held };
            }
        }
        Arc::new(states)
    });
    Ok(Snapshot { counts, seat_map: map, seats })
}
