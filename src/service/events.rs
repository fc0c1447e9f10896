//! Creating, changing and deleting events. Field rules live in the domain (`EventSpec`,
//! `EventChanges`); rules that depend on the seats in use are checked by the event's actor.
//! Every change drops the event from the catalogue cache of every node.

use super::{BoxOffice, Result};
use crate::actors::BookingError;
use crate::domain::event::{EventChanges, EventChangesDraft, EventDraft, EventSpec};
use crate::domain::ids::EventId;
use crate::persistence::EventRow;

impl BoxOffice {
    /// `request_id` (here and below): the admin's request, for the domain event.
    pub async fn create_event(&self, draft: EventDraft, request_id: Option<String>) -> Result<EventRow> {
        let spec = EventSpec::parse(draft).map_err(BookingError::Invalid)?;
        let now = self.clock.now();
        let row = EventRow {
            id: EventId::new(),
            title: spec.title,
            description: spec.description,
            venue: spec.venue,
            starts_at: spec.starts_at,
            price_cents: spec.price_cents,
            currency: spec.currency.as_str().to_owned(),
            capacity: spec.capacity as i64,
            reserved: 0,
            seat_map: spec.seat_map.map(|m| m.spec().clone()),
            max_per_booking: spec.max_per_booking as i64,
            max_per_user: spec.max_per_user as i64,
            owner_epoch: 0,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_event(&row, request_id).await?;
        // The lists of every node may now miss it.
        self.catalogue.invalidate(row.id).await;
        Ok(row)
    }

    /// Changes an event through its actor, so a change cannot race the claims it affects.
    pub async fn update_event(
        &self,
        id: EventId,
        draft: EventChangesDraft,
        request_id: Option<String>,
    ) -> Result<EventRow> {
        let changes = EventChanges::parse(draft).map_err(BookingError::Invalid)?;
        let row = self.registry.update(id, changes, request_id).await?;
        self.catalogue.invalidate(row.id).await;
        Ok(row)
    }

    /// Deletes an event through its actor (refused while it has bookings).
    pub async fn delete_event(&self, id: EventId, request_id: Option<String>) -> Result<()> {
        self.registry.delete(id, request_id).await?;
        self.catalogue.invalidate(id).await;
        Ok(())
    }
}
