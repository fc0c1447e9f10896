//! The use cases of the box office, one place each: hold and cancel seats, pay for a hold,
//! admit a ticket at the door, create and change events. HTTP handlers parse a request, call
//! one of these and map the result; the rules (idempotency, ownership, deadlines, limits,
//! compensation) live here and below, never in a handler.

mod bookings;
mod events;
mod payments;
mod receipts;
mod stats;
mod tickets;

use std::time::Duration;

pub use bookings::Held;
pub use stats::EventStats;

use crate::actors::{BookingError, Registry};
use crate::clock::Clock;
use crate::payments::Payments;
use crate::persistence::{Store, StoreError};
use crate::receipts::Receipts;
use crate::shared::EventCache;

/// What a use case answers instead of its result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A business outcome of the engine (sold out, not cancellable, invalid input, ...).
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The thing does not exist, or is not the caller's to see.
    #[error("{0}")]
    NotFound(&'static str),
    /// Only confirmed bookings have a receipt.
    #[error("only confirmed bookings have a receipt")]
    NotConfirmed,
    /// The payment provider's circuit is open: new payments are refused for a while.
    #[error("the payment provider is unavailable")]
    PaymentsUnavailable { retry_in: Duration },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The use cases, over the engine's parts.
#[derive(Clone)]
pub struct BoxOffice {
    store: Store,
    registry: Registry,
    payments: Payments,
    receipts: Receipts,
    /// Every node's cache of event details and list pages, dropped on each change here.
    catalogue: EventCache,
    clock: Clock,
}

impl BoxOffice {
    pub fn new(
        store: Store,
        registry: Registry,
        payments: Payments,
        receipts: Receipts,
        catalogue: EventCache,
    ) -> Self {
        let clock = registry.settings().clock.clone();
        Self { store, registry, payments, receipts, catalogue, clock }
    }
}
