//! Booking statuses, why a booking was cancelled, and when it may no longer be.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BookingStatus {
    Held,
    Confirmed,
    Expired,
    Cancelled,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "held" => Self::Held,
            "confirmed" => Self::Confirmed,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Nothing follows: an expired or cancelled booking never changes again. (A confirmed one
    /// may still be cancelled.)
    pub fn is_final(self) -> bool {
        matches!(self, Self::Expired | Self::Cancelled)
    }

    /// Held and confirmed bookings occupy seats.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Held | Self::Confirmed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    User,
    Admin,
    PaymentFailed,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
            Self::PaymentFailed => "payment_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "admin" => Self::Admin,
            "payment_failed" => Self::PaymentFailed,
            _ => return None,
        })
    }
}

/// Why a live booking may not be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRefusal {
    /// Its ticket was used at the door: a refund now would give the seat back to the sale
    /// and the money back to someone who is inside.
    CheckedIn(DateTime<Utc>),
    /// The event has started: nothing is given back once the doors opened.
    EventStarted(DateTime<Utc>),
}

/// Whether a live booking may be cancelled now. A failed payment's compensation always
/// releases its hold (the booking was never bought); people (its owner or an admin) may cancel
/// only before admission and before the event starts.
pub fn may_cancel(
    reason: CancelReason,
    checked_in_at: Option<DateTime<Utc>>,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), CancelRefusal> {
    if reason == CancelReason::PaymentFailed {
        return Ok(());
    }
    if let Some(at) = checked_in_at {
        return Err(CancelRefusal::CheckedIn(at));
    }
    if now >= starts_at {
        return Err(CancelRefusal::EventStarted(starts_at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_and_the_start_end_cancellation_but_not_compensation() {
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let before = start - chrono::Duration::seconds(1);
        assert_eq!(may_cancel(CancelReason::User, None, start, before), Ok(()));
        assert_eq!(may_cancel(CancelReason::Admin, None, start, before), Ok(()));
        assert_eq!(may_cancel(CancelReason::User, None, start, start), Err(CancelRefusal::EventStarted(start)));
        assert_eq!(may_cancel(CancelReason::Admin, Some(before), start, before), Err(CancelRefusal::CheckedIn(before)));
        assert_eq!(may_cancel(CancelReason::PaymentFailed, None, start, start), Ok(()));
    }
}
