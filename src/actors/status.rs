//! Booking status changes for live status streams, delivered only to the watchers of the
//! booking that changed: one `watch` channel per watched booking, made by the first watcher
//! and removed with the last. An actor's publish is a map lookup, however many streams are
//! open; unwatched bookings cost nothing. A bridge to other nodes plugs in with
//! `local_changes` (this node's owners' changes out of `held`) and `receive_remote`.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{broadcast, watch};

use super::StatusChange;
use crate::domain::booking::BookingStatus;
use crate::domain::ids::BookingId;

pub struct StatusHub {
    watched: DashMap<BookingId, watch::Sender<Option<BookingStatus>>>,
    bridge: broadcast::Sender<StatusChange>,
}

impl Default for StatusHub {
    fn default() -> Self {
        Self { watched: DashMap::new(), bridge: broadcast::channel(4096).0 }
    }
}

impl StatusHub {
    /// A local owner committed `change`: tells the booking's watchers here and a bridge, if
    /// any; `true` when the booking has watchers here.
    pub fn send(&self, change: StatusChange) -> bool {
        // A booking's first status is durable before anyone (on any node) knows its id, so a
        // stream elsewhere reads it from the store: only later changes cross nodes.
        if change.status != BookingStatus::Held && self.bridge.receiver_count() > 0 {
            let _ = self.bridge.send(change);
        }
        self.deliver(change)
    }

    /// Another node's owner committed `change`: watchers here get it at once.
    pub fn receive_remote(&self, change: StatusChange) -> bool {
        self.deliver(change)
    }

    /// Changes of this node's owners after a booking's first status, for a bridge.
    pub fn local_changes(&self) -> broadcast::Receiver<StatusChange> {
        self.bridge.subscribe()
    }

    fn deliver(&self, change: StatusChange) -> bool {
        match self.watched.get(&change.booking) {
            Some(tx) => {
                tx.send_replace(Some(change.status));
                true
            }
            None => false,
        }
    }

    /// Watches one booking's changes from now on.
    pub fn watch(self: &Arc<Self>, booking: BookingId) -> BookingWatch {
        let rx = self.watched.entry(booking).or_insert_with(|| watch::channel(None).0).subscribe();
        BookingWatch { booking, rx, hub: self.clone() }
    }

    /// Bookings with at least one watcher.
    pub fn watched(&self) -> usize {
        self.watched.len()
    }
}

/// One watcher of one booking; the last one dropped removes the booking's channel.
pub struct BookingWatch {
    booking: BookingId,
    rx: watch::Receiver<Option<BookingStatus>>,
    hub: Arc<StatusHub>,
}

impl BookingWatch {
    /// The next status the booking took (the latest, if several came meanwhile); `None` when
    /// the engine stopped.
    pub async fn changed(&mut self) -> Option<BookingStatus> {
        loop {
            self.rx.changed().await.ok()?;
            if let Some(s) = *self.rx.borrow_and_update() {
                return Some(s);
            }
        }
    }
}

impl Drop for BookingWatch {
    fn drop(&mut self) {
        // Our own receiver is still alive here: one left means nobody else watches. The shard
        // lock makes this atomic with a concurrent `watch` of the same booking.
        self.hub.watched.remove_if(&self.booking, |_, tx| tx.receiver_count() <= 1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn change(booking: BookingId, status: BookingStatus) -> StatusChange {
        StatusChange { booking, status }
    }

    #[tokio::test]
    async fn a_change_reaches_only_its_own_bookings_watchers() {
        let hub = Arc::new(StatusHub::default());
        let (a, b) = (BookingId::new(), BookingId::new());
        let mut wa = hub.watch(a);
        let mut wb = hub.watch(b);
        assert!(hub.send(change(b, BookingStatus::Confirmed)));
        assert_eq!(wb.changed().await, Some(BookingStatus::Confirmed));
        // A's watcher heard nothing of B.
        assert!(tokio::time::timeout(Duration::from_millis(50), wa.changed()).await.is_err());
        assert!(hub.send(change(a, BookingStatus::Cancelled)));
        assert_eq!(wa.changed().await, Some(BookingStatus::Cancelled));
        // An unwatched booking is not even looked at twice.
        assert!(!hub.send(change(BookingId::new(), BookingStatus::Expired)));
    }

    #[test]
    fn only_changes_after_the_first_status_are_offered_to_other_nodes() {
        let hub = Arc::new(StatusHub::default());
        let mut out = hub.local_changes();
        let b = BookingId::new();
        let _watch = hub.watch(b);
        hub.send(change(b, BookingStatus::Held));
        hub.send(change(b, BookingStatus::Cancelled));
        assert_eq!(out.try_recv().map(|c| c.status), Ok(BookingStatus::Cancelled));
        assert!(out.try_recv().is_err(), "the first status crossed");
        // What another node said reaches the watchers here and is not offered back.
        assert!(hub.receive_remote(change(b, BookingStatus::Confirmed)));
        assert!(out.try_recv().is_err());
    }

    #[tokio::test]
    async fn the_last_watcher_gone_forgets_the_booking() {
        let hub = Arc::new(StatusHub::default());
        let a = BookingId::new();
        let w1 = hub.watch(a);
        let w2 = hub.watch(a);
        assert_eq!(hub.watched(), 1);
        drop(w1);
        assert_eq!(hub.watched(), 1);
        drop(w2);
        assert_eq!(hub.watched(), 0);
        assert!(!hub.send(change(a, BookingStatus::Held)));
    }
}
