//! An event's sales figures, as the analytics counted them from the domain-event stream.

use super::{BoxOffice, Error, Result};
use crate::domain::analytics::SalesFigures;
use crate::domain::ids::EventId;

/// What the organiser sees: the event's currency and its figures.
#[derive(Debug, Clone)]
pub struct EventStats {
    pub event_id: EventId,
    pub currency: String,
    pub figures: SalesFigures,
}

impl BoxOffice {
    /// The figures of an existing event (`NotFound` for an unknown or deleted one).
    pub async fn event_stats(&self, id: EventId) -> Result<EventStats> {
        let event = self.store.event(id).await?.ok_or(Error::NotFound("event not found"))?;
        let figures = self.store.sales_figures(id).await?;
        Ok(EventStats { event_id: id, currency: event.currency, figures })
    }
}
