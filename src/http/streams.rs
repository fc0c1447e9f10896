//! Live updates as server-sent events: an event's availability, and a booking's status. These
//! routes are long-lived, so they sit outside the request timeout.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::WatchStream;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::extract::{AuthUser, Path};
use super::{AppState, Error, Problem, Result};
use crate::domain::booking::BookingStatus;
use crate::domain::ids::{BookingId, EventId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event_stream)).routes(routes!(booking_stream))
}

#[derive(Serialize, ToSchema, PartialEq, Eq, Clone, Copy)]
pub struct Availability {
    available: u32,
    held: u32,
    sold: u32,
}

#[derive(Serialize, ToSchema)]
pub struct StatusEvent {
    id: Uuid,
    status: BookingStatus,
}

fn sse_json(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).expect("serialisable"))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/stream", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`availability` events `{available, held, sold}` whenever they change",
        content_type = "text/event-stream", body = Availability), (status = 404, body = Problem)))]
async fn event_stream(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let id = EventId(id);
    state.store.event(id).await?.ok_or(Error::NotFound("event not found"))?;
    let rx = state.registry.subscribe(id).await?;
    let mut last = None;
    let stream = WatchStream::new(rx).filter_map(move |s| {
        let now = Availability { available: s.counts.available(), held: s.counts.held, sold: s.counts.sold };
        let changed = last.replace(now) != Some(now);
        async move { changed.then(|| Ok(sse_json("availability", &now))) }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}/stream", tag = "bookings", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`status` events `{id, status}`: the current status, then each change",
        content_type = "text/event-stream", body = StatusEvent), (status = 404, body = Problem)))]
async fn booking_stream(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe before reading, so that no change between the read and the subscription is lost.
    let changes = state.registry.status_changes();
    let booking = match state.store.booking(BookingId(id)).await? {
        Some(b) if b.user_id == p.user_id || p.is_admin() => b,
        _ => return Err(Error::NotFound("booking not found")),
    };
    let stream = status_stream(booking.id, booking.status, changes, state.store.clone());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

struct Watch {
    id: BookingId,
    pending: Option<BookingStatus>,
    last: Option<BookingStatus>,
    changes: tokio::sync::broadcast::Receiver<crate::actors::StatusChange>,
    store: crate::persistence::Store,
}

/// The current status, then every change of this booking; after a lag, re-reads the store.
fn status_stream(
    id: BookingId,
    first: BookingStatus,
    changes: tokio::sync::broadcast::Receiver<crate::actors::StatusChange>,
    store: crate::persistence::Store,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = Watch { id, pending: Some(first), last: None, changes, store };
    futures::stream::unfold(start, |mut w| async move {
        loop {
            let status = match w.pending.take() {
                Some(s) => s,
                None => match w.changes.recv().await {
                    Ok(change) if change.booking == w.id => change.status,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => match w.store.booking(w.id).await {
                        Ok(Some(b)) => b.status,
                        _ => continue,
                    },
                    Err(RecvError::Closed) => return None,
                },
            };
            if w.last != Some(status) {
                w.last = Some(status);
                return Some((Ok(sse_json("status", &StatusEvent { id: w.id.0, status })), w));
            }
        }
    })
}
