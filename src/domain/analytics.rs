//! Sales figures built from the domain-event stream: what one domain event adds to its event's
//! counters for the hour it happened in (`Tally::of`), and the figures derived from the
//! counters (conversion). Counters only ever add, so the order events arrive in does not
//! matter; applying each event exactly once (by its id) is the consumer's part
//! (`crate::stream::analytics`). No I/O here.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::booking::CancelReason;
use super::stream::{DomainEvent, EventData};

/// Counters of one event over some span (an hour, or the whole sale).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Bookings held (every booking starts as a hold) and their tickets.
    pub holds: i64,
    pub tickets_held: i64,
    /// Holds paid for, their tickets and the money taken (before any refund).
    pub bookings_confirmed: i64,
    pub tickets_sold: i64,
    pub revenue_cents: i64,
    /// Bookings cancelled by their customer or an admin (a hold released because its payment
    /// failed counts as a payment failure instead), and the paid tickets among them.
    pub cancellations: i64,
    pub tickets_refunded: i64,
    /// Holds that ran out unpaid.
    pub expiries: i64,
    pub payment_failures: i64,
    /// Money given back (a cancelled paid booking, or a payment that succeeded too late).
    pub refunds: i64,
    pub refunded_cents: i64,
    /// Tickets admitted at the door (a booking checks in once, with all its tickets).
    pub check_ins: i64,
    pub tickets_checked_in: i64,
}

impl Tally {
    /// What `event` adds, or `None` for a change that moves no sales figure (catalogue
    /// changes; a payment's success, which the booking's confirmation in the same commit counts).
    pub fn of(event: &DomainEvent) -> Option<Tally> {
        let t = match &event.data {
            EventData::BookingHeld { quantity, .. } => Tally { holds: 1, tickets_held: *quantity, ..Tally::default() },
            EventData::BookingConfirmed { quantity, amount_cents, .. } => Tally {
                bookings_confirmed: 1,
                tickets_sold: *quantity,
                revenue_cents: *amount_cents,
                ..Tally::default()
            },
            EventData::BookingCancelled { reason: CancelReason::PaymentFailed, .. } => return None,
            EventData::BookingCancelled { refund, quantity, .. } => {
                Tally { cancellations: 1, tickets_refunded: if *refund { *quantity } else { 0 }, ..Tally::default() }
            }
            EventData::BookingExpired { .. } => Tally { expiries: 1, ..Tally::default() },
            EventData::PaymentFailed { .. } => Tally { payment_failures: 1, ..Tally::default() },
            EventData::PaymentRefunded { amount_cents, .. } => {
                Tally { refunds: 1, refunded_cents: *amount_cents, ..Tally::default() }
            }
            EventData::TicketCheckedIn { quantity, .. } => {
                Tally { check_ins: 1, tickets_checked_in: *quantity, ..Tally::default() }
            }
            EventData::PaymentSucceeded { .. }
            | EventData::EventCreated(_)
            | EventData::EventUpdated(_)
            | EventData::EventDeleted {} => return None,
        };
        Some(t)
    }

    pub fn add(&mut self, o: &Tally) {
        self.holds += o.holds;
        self.tickets_held += o.tickets_held;
        self.bookings_confirmed += o.bookings_confirmed;
        self.tickets_sold += o.tickets_sold;
        self.revenue_cents += o.revenue_cents;
        self.cancellations += o.cancellations;
        self.tickets_refunded += o.tickets_refunded;
        self.expiries += o.expiries;
        self.payment_failures += o.payment_failures;
        self.refunds += o.refunds;
        self.refunded_cents += o.refunded_cents;
        self.check_ins += o.check_ins;
        self.tickets_checked_in += o.tickets_checked_in;
    }

    /// The share of holds that were paid for, 0 to 1; `None` before the first hold.
    pub fn conversion(&self) -> Option<f64> {
        (self.holds > 0).then(|| self.bookings_confirmed as f64 / self.holds as f64)
    }
}

/// The start of the (UTC) hour `t` falls in: the figures' time bucket.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// An event's figures: the whole sale, and hour by hour (oldest first, hours with no
/// activity left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalesFigures {
    pub totals: Tally,
    pub hourly: Vec<(DateTime<Utc>, Tally)>,
}

impl SalesFigures {
    /// From the stored hours, in any order.
    pub fn from_hours(mut hourly: Vec<(DateTime<Utc>, Tally)>) -> Self {
        hourly.sort_by_key(|(h, _)| *h);
        let mut totals = Tally::default();
        for (_, t) in &hourly {
            totals.add(t);
        }
        Self { totals, hourly }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{BookingId, EventId, PaymentId, UserId};

    fn ev(data: EventData) -> DomainEvent {
        DomainEvent::new(crate::domain::now(), EventId::new(), Some(BookingId::new()), data)
    }

    #[test]
    fn each_kind_moves_its_own_counters() {
        let user = UserId::new();
        let held = Tally::of(&ev(EventData::BookingHeld {
            user_id: user,
            quantity: 3,
            seats: vec![],
            amount_cents: 3000,
            currency: "EUR".into(),
            expires_at: crate::domain::now(),
        }))
        .unwrap();
        assert_eq!((held.holds, held.tickets_held, held.revenue_cents), (1, 3, 0), "a hold is not revenue");
        let sold = Tally::of(&ev(EventData::BookingConfirmed {
            user_id: user,
            payment_id: None,
            quantity: 3,
            amount_cents: 3000,
            currency: "EUR".into(),
        }))
        .unwrap();
        assert_eq!((sold.bookings_confirmed, sold.tickets_sold, sold.revenue_cents), (1, 3, 3000));
        let refunded = Tally::of(&ev(EventData::BookingCancelled {
            user_id: user,
            reason: CancelReason::User,
            refund: true,
            quantity: 3,
        }))
        .unwrap();
        assert_eq!((refunded.cancellations, refunded.tickets_refunded), (1, 3));
        let unpaid = Tally::of(&ev(EventData::BookingCancelled {
            user_id: user,
            reason: CancelReason::Admin,
            refund: false,
            quantity: 2,
        }))
        .unwrap();
        assert_eq!((unpaid.cancellations, unpaid.tickets_refunded), (1, 0));
        // A hold released by its failed payment is the payment's failure, counted once.
        let released = ev(EventData::BookingCancelled {
            user_id: user,
            reason: CancelReason::PaymentFailed,
            refund: false,
            quantity: 1,
        });
        assert_eq!(Tally::of(&released), None);
        let failed = Tally::of(&ev(EventData::PaymentFailed {
            payment_id: PaymentId::new(),
            user_id: user,
            reason: "x".into(),
        }))
        .unwrap();
        assert_eq!(failed.payment_failures, 1);
        assert_eq!(Tally::of(&ev(EventData::EventDeleted {})), None);
        let succeeded = ev(EventData::PaymentSucceeded {
            payment_id: PaymentId::new(),
            user_id: user,
            amount_cents: 1,
            currency: "EUR".into(),
        });
        assert_eq!(Tally::of(&succeeded), None, "the confirmation counts the sale");
        let admitted = Tally::of(&ev(EventData::TicketCheckedIn { user_id: user, quantity: 2 })).unwrap();
        assert_eq!((admitted.check_ins, admitted.tickets_checked_in), (1, 2));
    }

    #[test]
    fn totals_sum_the_hours_and_conversion_is_paid_over_held() {
        let h = hour_of("2026-05-01T10:59:59.999Z".parse().unwrap());
        assert_eq!(h, "2026-05-01T10:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let a = Tally { holds: 3, bookings_confirmed: 1, tickets_sold: 2, revenue_cents: 500, ..Tally::default() };
        let b = Tally { holds: 1, bookings_confirmed: 1, tickets_sold: 1, revenue_cents: 250, ..Tally::default() };
        let later = h + TimeDelta::hours(2);
        let f = SalesFigures::from_hours(vec![(later, b), (h, a)]);
        assert_eq!(f.hourly[0].0, h, "oldest first");
        assert_eq!((f.totals.holds, f.totals.tickets_sold, f.totals.revenue_cents), (4, 3, 750));
        assert_eq!(f.totals.conversion(), Some(0.5));
        assert_eq!(Tally::default().conversion(), None);
    }
}
