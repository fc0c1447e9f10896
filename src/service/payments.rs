//! Paying for a hold: idempotency, ownership, the provider's circuit, the deadline, and the
//! compensation when the hold left before the payment could start. The saga takes it from there.

use super::{BoxOffice, Error, Result};
use crate::actors::BookingError;
use crate::domain::booking::BookingStatus;
use crate::domain::idempotency::{IdempotencyKey, request_hash};
use crate::domain::ids::{BookingId, PaymentId, UserId};
use crate::domain::payment::{PaymentMethod, PaymentStatus, SagaStep};
use crate::persistence::{PaymentRow, StoreError};

fn payment_hash(booking: BookingId, method: &PaymentMethod) -> String {
    request_hash(&[&booking.to_string(), method.kind(), method.instrument()])
}

/// Same key and request: the payment made the first time. Same key, other request: refused.
fn replay(p: PaymentRow, hash: &str) -> Result<PaymentRow> {
    if p.request_hash.as_deref() == Some(hash) { Ok(p) } else { Err(BookingError::IdempotencyKeyReused.into()) }
}

impl BoxOffice {
    /// Starts paying for `user`'s held booking; the answer is the pending payment (or, for a
    /// retry with the same key, the payment the first request made).
    pub async fn pay(
        &self,
        user: UserId,
        booking_id: BookingId,
        method: PaymentMethod,
        key: Option<IdempotencyKey>,
        request_id: Option<String>,
    ) -> Result<PaymentRow> {
        let hash = payment_hash(booking_id, &method);
        let key = key.map(IdempotencyKey::into_string);
        if let Some(key) = &key
            && let Some(earlier) = self.store.payment_by_key(user, key).await?
        {
            return replay(earlier, &hash);
        }
        // Only the owner pays; an admin may look but not pay for someone.
        let booking = match self.store.booking(booking_id).await? {
            Some(b) if b.user_id == user => b,
            _ => return Err(Error::NotFound("booking not found")),
        };
        let now = self.clock.now();
        if booking.status != BookingStatus::Held || booking.expires_at <= now {
            return Err(BookingError::NotPayable.into());
        }
        if let Some(retry_in) = self.payments.unavailable_for() {
            return Err(Error::PaymentsUnavailable { retry_in });
        }
        let deadline = now + chrono::Duration::from_std(self.payments.deadline()).unwrap_or_default();
        let grace = chrono::Duration::from_std(self.registry.settings().payment_grace).unwrap_or_default();
        let payment = PaymentRow {
            id: PaymentId::new(),
            booking_id: booking.id,
            event_id: booking.event_id,
            user_id: user,
            method,
            amount_cents: booking.amount_cents,
            currency: booking.currency.clone(),
            status: PaymentStatus::Pending,
            step: SagaStep::Initiating,
            provider_ref: None,
            provider_status: None,
            provider_reason: None,
            failure_reason: None,
            deadline_at: deadline,
            idempotency_key: key.clone(),
            request_hash: Some(hash.clone()),
            request_id,
            created_at: now,
            updated_at: now,
        };
        // The payment first, so that an event actor rebuilt from the store at any later moment
        // knows the hold waits for it; then the running actor is told.
        match self.store.insert_payment(&payment).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Either the same key raced us (answer what it made) or another payment of the
                // booking is under way. Which index PostgreSQL names first is not ours to rely on.
                if let Some(key) = &key
                    && let Some(earlier) = self.store.payment_by_key(user, key).await?
                {
                    return replay(earlier, &hash);
                }
                return Err(BookingError::NotPayable.into());
            }
            Err(e) => return Err(e.into()),
        }
        if let Err(e) = self.registry.hold_for_payment(booking.event_id, booking.id, deadline + grace).await {
            // The hold left meanwhile (expired or cancelled), or the event is unreachable: the
            // payment never starts. The client hears it in the answer; no e-mail for it.
            let reason = match e {
                BookingError::Unavailable(_) => "event_unavailable",
                BookingError::Changing => "booking_changing",
                _ => "booking_not_payable",
            };
            self.store.finish_payment(payment.id, PaymentStatus::Failed, Some(reason), None, now).await?;
            return Err(e.into());
        }
        self.payments.run(payment.id);
        tracing::info!(payment_id = %payment.id, booking_id = %booking.id, method = payment.method.kind(), "payment started");
        Ok(payment)
    }
}
