//! Holds and bookings: claim seats (idempotently), list mine, read one, cancel. The rules are
//! the box office's (`service`); other users' bookings answer 404.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{Bearer, IdPath, JsonBody, Limited};
use super::events::page_limit;
use super::extract::{AuthUser, IdempotencyKey, Json, Path, Query, RequestId};
use super::{AppState, Error, Problem, Result};
use crate::domain::booking::{BookingStatus, CancelReason};
use crate::domain::ids::{BookingId, EventId};
use crate::persistence::BookingRow;
use crate::service::Held;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_booking))
        .routes(routes!(list_bookings))
        .routes(routes!(get_booking))
        .routes(routes!(cancel_booking))
}

#[derive(Serialize, ToSchema)]
pub struct BookingView {
    id: Uuid,
    event_id: Uuid,
    user_id: Uuid,
    quantity: i64,
    seats: Vec<String>,
    status: BookingStatus,
    /// Why a cancelled booking was cancelled: `user`, `admin` or `payment_failed`.
    cancel_reason: Option<CancelReason>,
    amount_cents: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Null until the booking is confirmed.
    ticket_code: Option<String>,
    /// When the ticket was used at the door; null until then. A checked-in booking can no
    /// longer be cancelled.
    checked_in_at: Option<DateTime<Utc>>,
}

impl From<BookingRow> for BookingView {
    fn from(b: BookingRow) -> Self {
        Self {
            id: b.id.0,
            event_id: b.event_id.0,
            user_id: b.user_id.0,
            quantity: b.quantity,
            seats: b.seats,
            status: b.status,
            cancel_reason: b.cancel_reason,
            amount_cents: b.amount_cents,
            currency: b.currency,
            expires_at: b.expires_at,
            created_at: b.created_at,
            updated_at: b.updated_at,
            ticket_code: b.ticket_code,
            checked_in_at: b.checked_in_at,
        }
    }
}

/// Give exactly one of `quantity` and `seats` (422 otherwise). How many seats one booking may
/// take is the event's `max_per_booking` (409 `over_booking_limit` beyond it).
#[derive(Deserialize, ToSchema)]
pub struct CreateBooking {
    /// Any free seats (best adjacent seats on a seated event).
    #[schema(minimum = 1)]
    quantity: Option<i64>,
    /// Explicit seat ids of a seated event, e.g. `Stalls-A-12`, each once. On a
    /// general-admission event: 409 `general_admission`; ids the seat map lacks: 409 `unknown_seats`.
    #[schema(min_items = 1)]
    seats: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/bookings", tag = "bookings", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body return the same booking; 1 to 255 visible ASCII characters (400 otherwise)")),
    request_body = CreateBooking, security(("bearer" = [])),
    responses((status = 201, description = "held", body = BookingView, links(
            ("get_booking" = (operation_id = "get_booking", parameters(("id" = "$response.body#/id")))),
            ("create_payment" = (operation_id = "create_payment", parameters(("id" = "$response.body#/id")))),
            ("cancel_booking" = (operation_id = "cancel_booking", parameters(("id" = "$response.body#/id")))),
            ("receipt" = (operation_id = "receipt", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 200, description = "replay of an earlier request", body = BookingView),
        JsonBody, Bearer, IdPath, Limited,
        (status = 400, description = "bad_request: the body is not JSON, a field has the wrong type, or the Idempotency-Key is not 1 to 255 visible ASCII characters", body = Problem),
        (status = 404, description = "not_found: no such event", body = Problem),
        (status = 409, description = "sold_out, seats_unavailable, per_user_limit (the account holds or bought the event's max_per_user seats), over_booking_limit, general_admission or unknown_seats", body = Problem),
        (status = 422, description = "validation_failed (`errors` names each field) or idempotency_key_reused (the key came with another request)", body = Problem),
        (status = 503, description = "unavailable: the event is busy or restarting, the database is unreachable, or the request took too long; retry after Retry-After", body = Problem)))]
async fn create_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(event_id): Path<Uuid>,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Json(b): Json<CreateBooking>,
) -> Result<(StatusCode, Json<BookingView>)> {
    match state.office.hold(p.user_id, EventId(event_id), b.quantity, b.seats, key, request_id).await? {
        Held::Created(row) => Ok((StatusCode::CREATED, Json(row.into()))),
        Held::Replayed(row) => Ok((StatusCode::OK, Json(row.into()))),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page (a booking id).
    #[param(value_type = Option<Uuid>)]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BookingPage {
    items: Vec<BookingView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = BookingPage,
            links(("next_page" = (operation_id = "list_bookings", parameters(("cursor" = "$response.body#/next_cursor")))))),
        Bearer, Limited,
        (status = 400, description = "bad_request: a query parameter has the wrong type, or the cursor is not a booking id", body = Problem),
        (status = 422, description = "validation_failed: `limit` is not 1 to 100", body = Problem)))]
async fn list_bookings(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Json<BookingPage>> {
    let limit = page_limit(q.limit)?;
    let before = q
        .cursor
        .as_deref()
        .map(|c| Uuid::parse_str(c).map(BookingId).map_err(|_| Error::BadRequest("cursor is not valid".into())))
        .transpose()?;
    let mut rows = state.store.bookings_of(p.user_id, before, limit + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|b| b.id.to_string())
    } else {
        None
    };
    Ok(Json(BookingPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = BookingView), Bearer, IdPath, Limited,
        (status = 404, description = "not_found: no such booking of this account", body = Problem)))]
async fn get_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<BookingView>> {
    Ok(Json(state.office.visible_booking(&p, BookingId(id)).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = BookingView), Bearer, IdPath, Limited,
        (status = 404, description = "not_found: no such booking of this account", body = Problem),
        (status = 409, description = "not_cancellable (already expired or cancelled), already_checked_in (the ticket was used at the door), event_started or booking_changing (another change of it is being saved; retry)", body = Problem)))]
async fn cancel_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
    RequestId(request_id): RequestId,
) -> Result<Json<BookingView>> {
    Ok(Json(state.office.cancel(&p, BookingId(id), request_id).await?.into()))
}
