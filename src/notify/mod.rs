//! Notifications: e-mails built from outbox messages (`templates`, the PDF receipt) and sent
//! over SMTP or into files (`mail`), by a supervised pool of workers consuming the bus
//! (`worker`).

pub mod mail;
pub mod templates;
pub mod worker;

use crate::domain::payment::PaymentStatus;
use crate::persistence::{BookingRow, EventRow, Store, StoreError};
use crate::receipt::{Receipt, format_amount};

/// What a receipt or an e-mail needs to know about a booking.
pub struct BookingFacts {
    pub booking: BookingRow,
    pub event: EventRow,
    pub customer_email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("{0} not found")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BookingFacts {
    pub async fn load(store: &Store, booking: BookingRow) -> Result<Self, FactsError> {
        // Deleted events keep their row (soft delete); receipts of their bookings still render.
        let event = store.event_any(booking.event_id).await?.ok_or(FactsError::Missing("event"))?;
        let user = store.user_by_id(booking.user_id).await?.ok_or(FactsError::Missing("user"))?;
        Ok(Self { booking, event, customer_email: user.email })
    }

    pub fn info(&self) -> templates::BookingInfo {
        let b = &self.booking;
        templates::BookingInfo {
            booking_id: b.id.to_string(),
            event_title: self.event.title.clone(),
            venue: self.event.venue.clone(),
            starts_at: self.event.starts_at,
            seats: b.seats.clone(),
            quantity: b.quantity,
            amount: format_amount(b.amount_cents, &b.currency),
            ticket_code: b.ticket_code.clone(),
        }
    }

    /// The receipt of a confirmed booking (`None` if it is not confirmed).
    pub async fn receipt(&self, store: &Store) -> Result<Option<Receipt>, FactsError> {
        let b = &self.booking;
        let Some(code) = &b.ticket_code else { return Ok(None) };
        let paid_at = store
            .payments_of_booking(b.id)
            .await?
            .into_iter()
            .find(|p| p.status == PaymentStatus::Succeeded)
            .map(|p| p.updated_at)
            .unwrap_or(b.updated_at);
        Ok(Some(Receipt {
            booking_id: b.id.to_string(),
            event_title: self.event.title.clone(),
            venue: self.event.venue.clone(),
            starts_at: self.event.starts_at,
            seats: b.seats.clone(),
            quantity: b.quantity,
            amount_cents: b.amount_cents,
            currency: b.currency.clone(),
            ticket_code: code.clone(),
            customer_email: self.customer_email.clone(),
            paid_at,
        }))
    }
}

/// Renders a receipt off the async threads (a few milliseconds of CPU).
pub async fn render_receipt(r: Receipt) -> anyhow::Result<Vec<u8>> {
    Ok(tokio::task::spawn_blocking(move || crate::receipt::render(&r)).await??)
}
