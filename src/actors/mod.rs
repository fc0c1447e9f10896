//! Actors: one `EventActor` per event owns that event's inventory and serialises its claims,
//! writing them through the journal in batches; the `EventSupervisor` starts event actors on
//! demand, restarts failed ones and forgets stopped ones; `Registry` is the handle the HTTP
//! layer uses (find-or-start, calls with timeouts, lock-free availability snapshots).

mod event;
pub mod hub;
mod registry;
mod status;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::FieldErrors;
use crate::domain::inventory::{Counts, SeatState};
use crate::domain::seatmap::SeatMap;
use crate::persistence::Store;

pub use event::{ClaimCmd, ClaimRequest, EventMsg};
pub use hub::{Published, SnapshotHub};
pub use registry::{KeyGuard, Registry};
pub use status::{BookingWatch, StatusHub};

/// Business outcomes an actor answers with (never an actor failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("event not found")]
    EventNotFound,
    #[error("not enough seats left")]
    SoldOut { available: u32 },
    #[error("some seats are not available")]
    SeatsUnavailable(Vec<String>),
    #[error("invalid booking request")]
    Invalid(FieldErrors),
    #[error("booking cannot be cancelled in its current state")]
    NotCancellable,
    #[error("capacity would drop below the {in_use} seats held or sold")]
    CapacityConflict { in_use: u32 },
    #[error("event has live bookings")]
    HasBookings,
    #[error("idempotency key was used for a different request")]
    IdempotencyKeyReused,
    /// The key was already used for this exact request; the booking is durable.
    #[error("replay of an earlier request")]
    Replay(crate::domain::ids::BookingId),
    /// Payment asked for a booking that is not held (or is already being paid).
    #[error("the booking cannot be paid in its current state")]
    NotPayable,
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Another change of the same booking (a cancel, a payment, a check-in) is being written:
    /// two requests raced on one booking, so it is a conflict, not the service failing.
    #[error("another change of this booking is being saved")]
    Changing,
    /// The account holds or bought as many seats of this event as the organiser allows.
    #[error("at most {limit} seats per account for this event")]
    PerUserLimit { limit: u32, has: u32 },
    /// A live booking that may no longer be cancelled (checked in, or the event started).
    #[error("the booking can no longer be cancelled")]
    CancelRefused(crate::domain::booking::CancelRefusal),
    /// The ticket was used at the door already.
    #[error("the ticket was already checked in")]
    AlreadyCheckedIn(chrono::DateTime<chrono::Utc>),
    /// A ticket shown at another event's door; it stays valid for its own event.
    #[error("the ticket is for another event")]
    WrongEvent { ticket_event: crate::domain::ids::EventId },
    /// No confirmed booking has this ticket code.
    #[error("no valid ticket with this code")]
    NoSuchTicket,
    /// A request valid in itself that the event's current definition refuses.
    #[error("the event refuses this request")]
    EventRefuses(EventRefusal),
}

/// Why an event refuses a request that is well-formed: the rule depends on the event's state
/// (its kind, seat map, limits or capacity), not on the request alone, so it is a conflict (409)
/// rather than invalid input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRefusal {
    /// More seats in one booking than the event's `max_per_booking`.
    OverBookingLimit { field: &'static str, max: u32 },
    /// Seat ids for a general-admission event.
    GeneralAdmission,
    /// Seat ids that the event's seat map does not have.
    UnknownSeats(Vec<String>),
    /// A capacity change for a seated event (its capacity is its seat map).
    SeatedCapacity,
    /// A per-booking or per-user limit above the event's capacity.
    ExceedsCapacity { field: &'static str, capacity: u32 },
}

/// Settings every event actor shares.
#[derive(Clone)]
pub struct EngineSettings {
    pub hold_ttl: Duration,
    /// How often actors look for expired holds and idleness.
    pub tick: Duration,
    /// An actor with no holds and no traffic for this long stops (it restarts on demand).
    pub idle_timeout: Duration,
    /// Upper bound for every call into an actor.
    pub call_timeout: Duration,
    /// A hold being paid for lasts until the payment's deadline plus this, so that the saga
    /// (not expiry) settles it.
    pub payment_grace: Duration,
    /// Identifies this process as an event owner.
    pub node_id: String,
    /// How long an event stays this node's without renewal (`EVENT_LEASE_SECS`); renewed every
    /// third of it while the actor lives.
    pub lease: Duration,
    /// Journal batches of one event written at once; `0` takes the store's default.
    pub pipeline_depth: usize,
    /// Hold expiry, payment deadlines and the event-start rule read the time here.
    pub clock: crate::clock::Clock,
}

/// Availability as of the last change an actor published; read without messaging the actor.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub counts: Counts,
    pub seat_map: Option<Arc<SeatMap>>,
    pub seats: Option<Arc<Vec<SeatState>>>,
}

/// A booking's status became durable (for live status streams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub booking: crate::domain::ids::BookingId,
    pub status: crate::domain::booking::BookingStatus,
}

#[derive(Clone)]
pub(crate) struct EngineContext {
    pub store: Store,
    pub settings: EngineSettings,
    /// Where owners publish availability and readers find it.
    pub hub: SnapshotHub,
    /// Where committed status changes go, to the streams that watch those bookings.
    pub status_changes: Arc<StatusHub>,
    /// Woken when a batch with outbox messages commits, so the relay publishes at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}
