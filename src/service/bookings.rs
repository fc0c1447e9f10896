//! Holding seats (idempotently) and cancelling bookings.

use super::{BoxOffice, Error, Result};
use crate::actors::{BookingError, ClaimCmd, ClaimRequest};
use crate::auth::Principal;
use crate::domain::FieldErrors;
use crate::domain::booking::CancelReason;
use crate::domain::idempotency::{IdempotencyKey, request_hash};
use crate::domain::ids::{BookingId, EventId, UserId};
use crate::persistence::BookingRow;

/// A hold's answer: a new booking, or the one an earlier request with the same key made.
pub enum Held {
    Created(BookingRow),
    Replayed(BookingRow),
}

/// What a hold asks for: a quantity of any seats, or named seats; never both.
fn claim_request(quantity: Option<i64>, seats: Option<Vec<String>>) -> Result<ClaimRequest, FieldErrors> {
    match (quantity, seats) {
        (Some(_), Some(_)) => Err(FieldErrors::single("seats", "give either quantity or seats, not both")),
        (None, None) => Err(FieldErrors::single("quantity", "give a quantity or a list of seats")),
        (Some(q), None) if q < 1 => Err(FieldErrors::single("quantity", "must be at least 1")),
        // Beyond any limit anyway; the actor names the event's limit.
        (Some(q), None) => Ok(ClaimRequest::Quantity(q.min(u32::MAX as i64) as u32)),
        (None, Some(s)) => Ok(ClaimRequest::Seats(s)),
    }
}

fn claim_hash(event: EventId, request: &ClaimRequest) -> String {
    let event = event.to_string();
    match request {
        ClaimRequest::Quantity(q) => request_hash(&[&event, "quantity", &q.to_string()]),
        ClaimRequest::Seats(s) => {
            let mut parts = vec![event.as_str(), "seats"];
            parts.extend(s.iter().map(String::as_str));
            request_hash(&parts)
        }
    }
}

impl BoxOffice {
    /// Holds seats of `event` for `user`. With a key, a retry of the same request answers the
    /// booking it made, and the same key with another request is refused.
    pub async fn hold(
        &self,
        user: UserId,
        event: EventId,
        quantity: Option<i64>,
        seats: Option<Vec<String>>,
        key: Option<IdempotencyKey>,
        request_id: Option<String>,
    ) -> Result<Held> {
        let request = claim_request(quantity, seats).map_err(BookingError::Invalid)?;
        let idempotency = key.map(|k| (k.into_string(), claim_hash(event, &request)));
        // Reserve the key first, then look in the store: a concurrent request with another body is
        // either still in flight (refused here) or already durable (found below).
        let _guard = idempotency.as_ref().map(|(k, h)| self.registry.reserve_key(user, k, h)).transpose()?;
        if let Some((key, hash)) = &idempotency
            && let Some((stored, booking)) = self.store.idempotency_record(user, key).await?
        {
            return if &stored == hash {
                self.replay(booking).await.map(Held::Replayed)
            } else {
                Err(BookingError::IdempotencyKeyReused.into())
            };
        }
        let cmd = ClaimCmd { user, request, idempotency, request_id };
        match self.registry.claim(event, cmd).await {
            Ok(row) => Ok(Held::Created(row)),
            Err(BookingError::Replay(id)) => self.replay(id).await.map(Held::Replayed),
            Err(e) => Err(e.into()),
        }
    }

    async fn replay(&self, id: BookingId) -> Result<BookingRow> {
        self.store
            .booking(id)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("idempotency record points at missing booking {id}")))
    }

    /// The booking if `who` may see it (its owner or an admin); not found otherwise, so ids
    /// of others are not revealed.
    pub async fn visible_booking(&self, who: &Principal, id: BookingId) -> Result<BookingRow> {
        match self.store.booking(id).await? {
            Some(b) if b.user_id == who.user_id || who.is_admin() => Ok(b),
            _ => Err(Error::NotFound("booking not found")),
        }
    }

    /// Cancels a live booking (its owner, or an admin). The event's actor refuses once the
    /// ticket was used at the door or the event started; a confirmed booking is refunded.
    /// `request_id` is the asking request's, for the domain event.
    pub async fn cancel(&self, who: &Principal, id: BookingId, request_id: Option<String>) -> Result<BookingRow> {
        let b = self.visible_booking(who, id).await?;
        if !b.status.is_live() {
            return Err(BookingError::NotCancellable.into());
        }
        let reason = if b.user_id == who.user_id { CancelReason::User } else { CancelReason::Admin };
        let row = self.registry.cancel(b, reason, Vec::new(), request_id).await?;
        tracing::info!(booking_id = %id, reason = reason.as_str(), "booking cancelled");
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_asks_for_a_quantity_or_seats() {
        assert!(matches!(claim_request(Some(2), None), Ok(ClaimRequest::Quantity(2))));
        assert!(claim_request(Some(2), Some(vec![])).unwrap_err().0.contains_key("seats"));
        assert!(claim_request(None, None).unwrap_err().0.contains_key("quantity"));
        assert!(claim_request(Some(0), None).unwrap_err().0.contains_key("quantity"));
        let e = EventId::new();
        assert_ne!(claim_hash(e, &ClaimRequest::Quantity(2)), claim_hash(e, &ClaimRequest::Quantity(3)));
        assert_ne!(claim_hash(e, &ClaimRequest::Quantity(2)), claim_hash(EventId::new(), &ClaimRequest::Quantity(2)));
    }
}
