//! The organiser's sales figures of an event (admins only), as the analytics counted them
//! from the domain-event stream.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{AdminOnly, IdPath, Limited};
use super::extract::{Admin, Json, Path};
use super::{AppState, Problem, Result};
use crate::domain::analytics::Tally;
use crate::domain::ids::EventId;
use crate::service::EventStats;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event_stats))
}

/// Counters over a span of the sale. Money is in the event's currency, in cents.
#[derive(Serialize, ToSchema)]
pub struct SalesFiguresView {
    /// Bookings held (every booking starts as a hold).
    #[schema(minimum = 0)]
    holds: i64,
    /// Tickets in those holds.
    #[schema(minimum = 0)]
    tickets_held: i64,
    /// Holds paid for.
    #[schema(minimum = 0)]
    bookings_confirmed: i64,
    /// Tickets paid for (before refunds).
    #[schema(minimum = 0)]
    tickets_sold: i64,
    /// Money taken (before refunds).
    #[schema(minimum = 0)]
    revenue_cents: i64,
    /// Bookings cancelled by their customer or an admin.
    #[schema(minimum = 0)]
    cancellations: i64,
    /// Paid tickets among the cancelled bookings (refunded).
    #[schema(minimum = 0)]
    tickets_refunded: i64,
    /// Holds that ran out unpaid.
    #[schema(minimum = 0)]
    expiries: i64,
    /// Payments that failed (declined, refused, no verdict in time).
    #[schema(minimum = 0)]
    payment_failures: i64,
    /// Payments given back.
    #[schema(minimum = 0)]
    refunds: i64,
    #[schema(minimum = 0)]
    refunded_cents: i64,
    /// Bookings admitted at the door, and their tickets.
    #[schema(minimum = 0)]
    check_ins: i64,
    #[schema(minimum = 0)]
    tickets_checked_in: i64,
}

impl From<&Tally> for SalesFiguresView {
    fn from(t: &Tally) -> Self {
        Self {
            holds: t.holds,
            tickets_held: t.tickets_held,
            bookings_confirmed: t.bookings_confirmed,
            tickets_sold: t.tickets_sold,
            revenue_cents: t.revenue_cents,
            cancellations: t.cancellations,
            tickets_refunded: t.tickets_refunded,
            expiries: t.expiries,
            payment_failures: t.payment_failures,
            refunds: t.refunds,
            refunded_cents: t.refunded_cents,
            check_ins: t.check_ins,
            tickets_checked_in: t.tickets_checked_in,
        }
    }
}

/// One hour of the sale (UTC) with any activity.
#[derive(Serialize, ToSchema)]
pub struct HourView {
    /// Start of the hour.
    hour: DateTime<Utc>,
    #[schema(minimum = 0)]
    holds: i64,
    #[schema(minimum = 0)]
    bookings_confirmed: i64,
    #[schema(minimum = 0)]
    tickets_sold: i64,
    #[schema(minimum = 0)]
    revenue_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EventStatsView {
    event_id: Uuid,
    /// ISO 4217 code of every amount.
    #[schema(example = "EUR")]
    currency: String,
    totals: SalesFiguresView,
    /// Share of holds that were paid for; null before the first hold.
    #[schema(minimum = 0.0, maximum = 1.0)]
    conversion: Option<f64>,
    /// Hour by hour, oldest first; hours without activity are left out.
    hourly: Vec<HourView>,
}

impl From<EventStats> for EventStatsView {
    fn from(s: EventStats) -> Self {
        let f = &s.figures;
        Self {
            event_id: s.event_id.0,
            currency: s.currency,
            totals: SalesFiguresView::from(&f.totals),
            conversion: f.totals.conversion(),
            hourly: f
                .hourly
                .iter()
                .map(|(hour, t)| HourView {
                    hour: *hour,
                    holds: t.holds,
                    bookings_confirmed: t.bookings_confirmed,
                    tickets_sold: t.tickets_sold,
                    revenue_cents: t.revenue_cents,
                })
                .collect(),
        }
    }
}

/// The event's sales figures, counted from its domain events by the worker's analytics (they
/// follow the sale within moments).
#[utoipa::path(get, path = "/api/v1/events/{id}/stats", tag = "events", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = EventStatsView), AdminOnly, IdPath, Limited,
        (status = 404, description = "not_found: no such event", body = Problem)))]
async fn event_stats(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Uuid>,
) -> Result<Json<EventStatsView>> {
    Ok(Json(state.office.event_stats(EventId(id)).await?.into()))
}
