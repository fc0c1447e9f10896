//! Admission at the door: the door names its event, and only that event's actor admits.

use super::{BoxOffice, Result};
use crate::actors::BookingError;
use crate::domain::FieldErrors;
use crate::domain::booking::BookingStatus;
use crate::domain::ids::EventId;
use crate::domain::payment::normalise_ticket_code;
use crate::persistence::BookingRow;

impl BoxOffice {
    /// Admits the ticket `code` at the door of `door`, once. A ticket of another event is
    /// refused and stays valid for its own event.
    /// `request_id`: the door's request, for the domain event.
    pub async fn check_in(&self, door: EventId, code: &str, request_id: Option<String>) -> Result<BookingRow> {
        let code = normalise_ticket_code(code).map_err(|m| BookingError::Invalid(FieldErrors::single("code", m)))?;
        // A cancelled booking keeps its code but admits nobody.
        let booking = match self.store.booking_by_ticket_code(&code).await? {
            Some(b) if b.status == BookingStatus::Confirmed => b,
            _ => return Err(BookingError::NoSuchTicket.into()),
        };
        // The door's actor decides: it serialises admission with cancellation.
        Ok(self.registry.check_in(door, booking, request_id).await?)
    }
}
