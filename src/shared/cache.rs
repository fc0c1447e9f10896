//! A per-node cache of the events' fields that only an admin changes (title, venue, price,
//! capacity, limits, seat map...), for the event detail route. Availability is never cached: a
//! hit overlays the live counts of the running actor or, without one here, the durable counter
//! (a two-column read instead of the whole row). An admin's change or delete invalidates the
//! entry on every node through pub/sub; as a bound for a message lost while Redis was away,
//! entries also expire after `EVENT_CACHE_TTL_SECS` (and every entry is dropped whenever the
//! pub/sub reconnects).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Channel, Delivery, Fanout};
use crate::domain::ids::EventId;
use crate::persistence::{EventRow, Store, StoreResult};

/// What is said on the catalogue channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogueMessage {
    /// The event's fields changed, or it was deleted.
    EventChanged { event: Uuid },
}

pub const CHANNEL: Channel<CatalogueMessage> = Channel::new("catalogue");

#[derive(Clone)]
pub struct EventCache(Arc<Inner>);

struct Inner {
    entries: DashMap<EventId, (Instant, Arc<EventRow>)>,
    ttl: Duration,
    fanout: Fanout,
}

impl EventCache {
    /// `ttl` zero turns the cache off.
    pub fn new(fanout: Fanout, ttl: Duration) -> Self {
        Self(Arc::new(Inner { entries: DashMap::new(), ttl, fanout }))
    }

    /// The event's row with its durable counter current, from the cache when it can. `live`
    /// says whether the caller has live counts of its own (then the counter is not read).
    pub async fn event(&self, store: &Store, id: EventId, live: bool) -> StoreResult<Option<EventRow>> {
        if self.0.ttl.is_zero() {
            return store.event(id).await;
        }
        let cached = self.0.entries.get(&id).filter(|e| e.0.elapsed() < self.0.ttl).map(|e| e.1.clone());
        let Some(row) = cached else {
            metrics::counter!("boxoffice_event_cache_total", "result" => "miss").increment(1);
            let row = store.event(id).await?;
            if let Some(r) = &row {
                self.0.entries.insert(id, (Instant::now(), Arc::new(r.clone())));
            }
            return Ok(row);
        };
        metrics::counter!("boxoffice_event_cache_total", "result" => "hit").increment(1);
        let mut row = (*row).clone();
        if !live {
            match store.event_capacity_reserved(id).await? {
                Some((capacity, reserved)) => (row.capacity, row.reserved) = (capacity, reserved),
                // Deleted by a node whose message has not arrived.
                None => {
                    self.0.entries.remove(&id);
                    return Ok(None);
                }
            }
        }
        Ok(Some(row))
    }

    /// After an admin changed or deleted the event: drops it here and on the other nodes.
    pub async fn invalidate(&self, id: EventId) {
        self.0.entries.remove(&id);
        self.0.fanout.publish(&CHANNEL, &CatalogueMessage::EventChanged { event: id.0 }).await;
    }

    /// Drops what the other nodes change; everything after a reconnection (messages may be lost).
    pub fn spawn_listener(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut sub = self.0.fanout.subscribe(&CHANNEL);
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    d = sub.recv() => match d {
                        Some(Delivery::Message(CatalogueMessage::EventChanged { event })) => {
                            me.0.entries.remove(&EventId(event));
                        }
                        Some(Delivery::Resync) => me.0.entries.clear(),
                        None => return,
                    },
                    _ = sweep.tick() => {
                        let ttl = me.0.ttl;
                        me.0.entries.retain(|_, (at, _)| at.elapsed() < ttl);
                    }
                }
            }
        })
    }
}
