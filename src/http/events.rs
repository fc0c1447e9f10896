//! The event catalogue: list and search, detail with live availability, seat maps, and the
//! admin's create, update and delete (the last two go through the event's actor so they
//! cannot race claims).

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{AdminOnly, IdPath, JsonBody, Limited};
use super::extract::{Admin, Json, Path, Query, RequestId};
use super::{AppState, Error, Problem, Result};
use crate::domain::event::{self, EventChangesDraft, EventDraft};
use crate::domain::ids::EventId;
use crate::domain::seatmap::SeatMapSpec;
use crate::persistence::{EventFilter, EventRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events, create_event))
        .routes(routes!(get_event, update_event, delete_event))
        .routes(routes!(seats))
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    id: Uuid,
    title: String,
    description: String,
    venue: String,
    starts_at: DateTime<Utc>,
    price_cents: i64,
    currency: String,
    capacity: i64,
    /// Seats neither held nor sold, as of now.
    available: i64,
    seated: bool,
    max_per_booking: i64,
    /// Seats one account may hold and buy for this event, across its bookings.
    max_per_user: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl EventView {
    /// Availability comes from the snapshot hub when it has one (a local owner's, which
    /// includes claims being written, or a watched event's recent refresh), else from the
    /// durable counter; reading never takes the event.
    pub fn new(state: &AppState, e: EventRow) -> Self {
        let live = state.registry.hub().current(e.id).map(|s| s.counts.available() as i64);
        Self::with_live(e, live)
    }

    /// With the live availability already taken (`None`: the durable counter of `e`).
    fn with_live(e: EventRow, live: Option<i64>) -> Self {
        let available = live.unwrap_or((e.capacity - e.reserved).max(0));
        Self {
            id: e.id.0,
            seated: e.seat_map.is_some(),
            title: e.title,
            description: e.description,
            venue: e.venue,
            starts_at: e.starts_at,
            price_cents: e.price_cents,
            currency: e.currency,
            capacity: e.capacity,
            available,
            max_per_booking: e.max_per_booking,
            max_per_user: e.max_per_user,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    items: Vec<EventView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Words that must all appear (case-insensitive) in the title or description; at most 200
    /// characters, no control characters.
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    q: Option<String>,
    /// Venue name, case-insensitive exact match; at most 200 characters, no control characters.
    #[param(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    venue: Option<String>,
    /// Earliest `starts_at` (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Latest `starts_at` (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Only events with seats left.
    available: Option<bool>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page, as given (400 `bad_request` otherwise).
    cursor: Option<String>,
}

pub(super) fn page_limit(limit: Option<i64>) -> Result<u32> {
    match limit {
        None => Ok(20),
        Some(l) if (1..=100).contains(&l) => Ok(l as u32),
        Some(_) => Err(Error::field("limit", "must be between 1 and 100")),
    }
}

fn encode_cursor(e: &EventRow) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", e.starts_at.to_rfc3339(), e.id))
}

fn decode_cursor(c: &str) -> Result<(DateTime<Utc>, EventId)> {
    let bad = || Error::BadRequest("cursor is not valid".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (t, id) = raw.split_once('|').ok_or_else(bad)?;
    let t = DateTime::parse_from_rfc3339(t).map_err(|_| bad())?.with_timezone(&Utc);
    let id = Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((t, EventId(id)))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", params(ListQuery),
    responses((status = 200, body = EventPage,
            links(("next_page" = (operation_id = "list_events", parameters(("cursor" = "$response.body#/next_cursor")))))),
        Limited,
        (status = 400, description = "bad_request: a query parameter has the wrong type, or the cursor is not one this API gave", body = Problem),
        (status = 422, description = "validation_failed: a filter is out of range (`errors` names it)", body = Problem)))]
async fn list_events(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<EventPage>> {
    let limit = page_limit(q.limit)?;
    for (name, text) in [("q", &q.q), ("venue", &q.venue)] {
        // A filter never needs to be longer than the longest title or venue.
        const MAX: usize = event::MAX_TITLE_CHARS;
        if text.as_deref().is_some_and(|t| !event::is_printable(t, false) || t.chars().count() > MAX) {
            return Err(Error::field(name, format!("must be at most {MAX} printable characters")));
        }
    }
    for (name, t) in [("from", &q.from), ("to", &q.to)] {
        if t.as_ref().is_some_and(|t| !event::in_storable_range(t)) {
            return Err(Error::field(name, "must be between the years 1 and 9999"));
        }
    }
    let words = q.q.as_deref().unwrap_or("").split_whitespace().take(10).map(str::to_owned).collect();
    let filter = EventFilter {
        words,
        venue: q.venue.filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_owned()),
        from: q.from,
        to: q.to,
        available_only: q.available.unwrap_or(false),
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: limit + 1,
    };
    let hub = state.registry.hub();
    let mut rows = state.shared.events.list(&state.store, &filter, |id| hub.current(id).is_some()).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(encode_cursor)
    } else {
        None
    };
    let items = rows.into_iter().map(|e| EventView::new(&state, e)).collect();
    Ok(Json(EventPage { items, next_cursor }))
}

/// A new event. Give exactly one of `capacity` (general admission) and `seat_map` (reserved
/// seating); `max_per_booking` and `max_per_user` may not exceed the capacity. Every invalid
/// field is reported at once (422).
#[derive(Deserialize, ToSchema)]
pub struct CreateEvent {
    /// 1 to 200 characters, not only blanks, no control characters.
    #[schema(value_type = String, required = true, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$")]
    title: Option<String>,
    /// Up to 10,000 characters; line breaks and tabs allowed, other control characters not.
    #[schema(max_length = 10000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    /// 1 to 200 characters, not only blanks, no control characters.
    #[schema(value_type = String, required = true, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$")]
    venue: Option<String>,
    /// RFC 3339, years 1 to 9999.
    #[schema(value_type = DateTime<Utc>, required = true)]
    starts_at: Option<DateTime<Utc>>,
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 10_000_000_000_i64)]
    price_cents: Option<i64>,
    /// Three letters (ISO 4217), stored upper-case.
    #[schema(value_type = String, required = true, pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    /// General admission: number of places. Give this or `seat_map`.
    #[schema(minimum = 1, maximum = 1_000_000)]
    capacity: Option<i64>,
    /// Reserved seating. Give this or `capacity`.
    seat_map: Option<SeatMapSpec>,
    /// Defaults to 10 (never above capacity).
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_per_booking: Option<i64>,
    /// Seats one account may hold and buy for this event, across its bookings: 1 to the
    /// capacity, default 20 (never above capacity). Beyond it a hold answers 409 `per_user_limit`.
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_per_user: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = CreateEvent, security(("bearer" = [])),
    responses((status = 201, body = EventView, links(
            ("get_event" = (operation_id = "get_event", parameters(("id" = "$response.body#/id")))),
            ("update_event" = (operation_id = "update_event", parameters(("id" = "$response.body#/id")))),
            ("seats" = (operation_id = "seats", parameters(("id" = "$response.body#/id")))),
            ("create_booking" = (operation_id = "create_booking", parameters(("id" = "$response.body#/id")))),
            ("delete_event" = (operation_id = "delete_event", parameters(("id" = "$response.body#/id")))),
        )),
        JsonBody, AdminOnly, Limited))]
async fn create_event(
    State(state): State<AppState>,
    Admin(admin): Admin,
    RequestId(request_id): RequestId,
    Json(b): Json<CreateEvent>,
) -> Result<(StatusCode, Json<EventView>)> {
    let draft = EventDraft {
        title: b.title,
        description: b.description,
        venue: b.venue,
        starts_at: b.starts_at,
        price_cents: b.price_cents,
        currency: b.currency,
        capacity: b.capacity,
        seat_map: b.seat_map,
        max_per_booking: b.max_per_booking,
        max_per_user: b.max_per_user,
    };
    let row = state.office.create_event(draft, request_id).await?;
    tracing::info!(event_id = %row.id, capacity = row.capacity, admin = %admin.user_id, "event created");
    Ok((StatusCode::CREATED, Json(EventView::new(&state, row))))
}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, body = EventView), IdPath, Limited, (status = 404, description = "not_found: no such event", body = Problem)))]
async fn get_event(State(state): State<AppState>, Path(id): Path<Uuid>) -> Result<Json<EventView>> {
    let id = EventId(id);
    // Live counts first: with them the cache needs no database read at all.
    let live = state.registry.snapshot(id).map(|s| s.counts.available() as i64);
    let e =
        state.shared.events.event(&state.store, id, live.is_some()).await?.ok_or(Error::NotFound("event not found"))?;
    Ok(Json(EventView::with_live(e, live)))
}

/// Changes to an event; absent fields stay as they are. Every invalid field is reported at once
/// (422); a change that the event's current state refuses is a 409.
#[derive(Deserialize, ToSchema)]
pub struct UpdateEvent {
    /// 1 to 200 characters, not only blanks, no control characters.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    title: Option<String>,
    /// Up to 10,000 characters; line breaks and tabs allowed, other control characters not.
    #[schema(max_length = 10000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
    description: Option<String>,
    /// 1 to 200 characters, not only blanks, no control characters.
    #[schema(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    venue: Option<String>,
    /// RFC 3339, years 1 to 9999.
    starts_at: Option<DateTime<Utc>>,
    #[schema(minimum = 0, maximum = 10_000_000_000_i64)]
    price_cents: Option<i64>,
    /// Three letters (ISO 4217), stored upper-case.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    currency: Option<String>,
    /// General admission only (409 `seated_event` otherwise); may not drop below the seats held
    /// or sold (409 `capacity_conflict`).
    #[schema(minimum = 1, maximum = 1_000_000)]
    capacity: Option<i64>,
    /// At most the capacity (409 `exceeds_capacity` otherwise).
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_per_booking: Option<i64>,
    /// At most the capacity (409 `exceeds_capacity` otherwise); lowering it takes no seats
    /// away, it refuses later holds.
    #[schema(minimum = 1, maximum = 1_000_000)]
    max_per_user: Option<i64>,
    /// Not changeable (not in the document): a seat map is fixed once seats may be sold, and
    /// sending one is a 422.
    #[schema(ignore)]
    seat_map: Option<serde_json::Value>,
}

#[utoipa::path(patch, path = "/api/v1/events/{id}", tag = "events", params(("id" = Uuid, Path)), request_body = UpdateEvent,
    security(("bearer" = [])),
    responses((status = 200, body = EventView), JsonBody, AdminOnly, IdPath, Limited,
        (status = 404, description = "not_found: no such event", body = Problem),
        (status = 409, description = "capacity_conflict (below the seats held or sold), seated_event (a seated event's capacity is its seat map) or exceeds_capacity (a limit above the capacity)", body = Problem)))]
async fn update_event(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<Uuid>,
    RequestId(request_id): RequestId,
    Json(b): Json<UpdateEvent>,
) -> Result<Json<EventView>> {
    let draft = EventChangesDraft {
        title: b.title,
        description: b.description,
        venue: b.venue,
        starts_at: b.starts_at,
        price_cents: b.price_cents,
        currency: b.currency,
        capacity: b.capacity,
        max_per_booking: b.max_per_booking,
        max_per_user: b.max_per_user,
        seat_map_given: b.seat_map.is_some(),
    };
    let row = state.office.update_event(EventId(id), draft, request_id).await?;
    Ok(Json(EventView::new(&state, row)))
}

#[utoipa::path(delete, path = "/api/v1/events/{id}", tag = "events", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "deleted"), AdminOnly, IdPath, Limited,
        (status = 404, description = "not_found: no such event", body = Problem),
        (status = 409, description = "event_has_bookings", body = Problem)))]
async fn delete_event(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(id): Path<Uuid>,
    RequestId(request_id): RequestId,
) -> Result<StatusCode> {
    state.office.delete_event(EventId(id), request_id).await?;
    tracing::info!(event_id = %id, admin = %admin.user_id, "event deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SeatView {
    id: String,
    number: u32,
    /// `free`, `held` or `sold`.
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct RowView {
    label: String,
    seats: Vec<SeatView>,
}

#[derive(Serialize, ToSchema)]
pub struct SectionView {
    name: String,
    rows: Vec<RowView>,
}

#[derive(Serialize, ToSchema)]
pub struct SeatsView {
    seated: bool,
    sections: Vec<SectionView>,
}

#[utoipa::path(get, path = "/api/v1/events/{id}/seats", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, body = SeatsView), IdPath, Limited, (status = 404, description = "not_found: no such event", body = Problem)))]
async fn seats(State(state): State<AppState>, Path(id): Path<Uuid>) -> Result<Json<SeatsView>> {
    let id = EventId(id);
    let e = state.store.event(id).await?.ok_or(Error::NotFound("event not found"))?;
    if e.seat_map.is_none() {
        return Ok(Json(SeatsView { seated: false, sections: Vec::new() }));
    }
    let snap = state.registry.hub().read(&e).await?;
    let (Some(map), Some(states)) = (snap.seat_map, snap.seats) else {
        return Err(Error::Internal(anyhow::anyhow!("seated event {id} has no seat snapshot")));
    };
    let mut sections: Vec<SectionView> = Vec::new();
    for row in map.rows() {
        let name = map.section_name(row.section);
        if sections.last().is_none_or(|s| s.name != name) {
            sections.push(SectionView { name: name.to_owned(), rows: Vec::new() });
        }
        let seats = (0..row.len)
            .map(|n| {
                let idx = row.start + n;
                SeatView {
                    id: format!("{name}-{}-{}", row.label, n + 1),
                    number: n + 1,
                    status: states[idx as usize].as_str(),
                }
            })
            .collect();
        sections.last_mut().expect("pushed above").rows.push(RowView { label: row.label.clone(), seats });
    }
    Ok(Json(SeatsView { seated: true, sections }))
}
