//! Holds and bookings: claim seats (idempotently), list mine, read one, cancel. Claims and
//! cancellations go through the event's actor; other users' bookings answer 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::events::page_limit;
use super::extract::{AuthUser, Json, Path, Query};
use super::{AppState, Error, Problem, Result};
use crate::actors::{BookingError, ClaimCmd, ClaimRequest};
use crate::auth::Principal;
use crate::domain::booking::{BookingStatus, CancelReason};
use crate::domain::ids::{BookingId, EventId};
use crate::persistence::BookingRow;

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
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBooking {
    /// Any free seats (best adjacent seats on a seated event).
    quantity: Option<i64>,
    /// Explicit seat ids of a seated event, e.g. `Stalls-A-12`.
    seats: Option<Vec<String>>,
}

const MAX_KEY_LEN: usize = 255;

pub(super) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().map_err(|_| Error::BadRequest("Idempotency-Key must be visible ASCII".into()))?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(Error::BadRequest(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters")));
    }
    Ok(Some(key.to_owned()))
}

/// Hash of what the request asks for, so a reused key with another request is recognised.
fn request_hash(event: Uuid, req: &ClaimRequest) -> String {
    let canonical = match req {
        ClaimRequest::Quantity(q) => format!("{event}|quantity|{q}"),
        ClaimRequest::Seats(s) => format!("{event}|seats|{}", s.join("\u{1f}")),
    };
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

async fn replay(state: &AppState, id: BookingId) -> Result<(StatusCode, Json<BookingView>)> {
    let b = state
        .store
        .booking(id)
        .await?
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("idempotency record points at missing booking {id}")))?;
    Ok((StatusCode::OK, Json(b.into())))
}

#[utoipa::path(post, path = "/api/v1/events/{id}/bookings", tag = "bookings", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body return the same booking")),
    request_body = CreateBooking, security(("bearer" = [])),
    responses((status = 201, description = "held", body = BookingView), (status = 200, description = "replay of an earlier request", body = BookingView),
        (status = 404, body = Problem), (status = 409, description = "sold_out or seats_unavailable", body = Problem),
        (status = 422, description = "validation_failed or idempotency_key_reused", body = Problem), (status = 503, body = Problem)))]
async fn create_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(event_id): Path<Uuid>,
    headers: HeaderMap,
    Json(b): Json<CreateBooking>,
) -> Result<(StatusCode, Json<BookingView>)> {
    let key = idempotency_key(&headers)?;
    let request = match (b.quantity, b.seats) {
        (Some(_), Some(_)) => return Err(Error::field("seats", "give either quantity or seats, not both")),
        (None, None) => return Err(Error::field("quantity", "give a quantity or a list of seats")),
        (Some(q), None) if q < 1 => return Err(Error::field("quantity", "must be at least 1")),
        (Some(q), None) => ClaimRequest::Quantity(q.min(u32::MAX as i64) as u32),
        (None, Some(s)) => ClaimRequest::Seats(s),
    };
    let idempotency = key.map(|k| (k, request_hash(event_id, &request)));
    // Reserve the key first, then look in the store: a concurrent request with another body is
    // either still in flight (refused here) or already durable (found below).
    let _guard = idempotency.as_ref().map(|(k, h)| state.registry.reserve_key(p.user_id, k, h)).transpose()?;
    if let Some((key, hash)) = &idempotency
        && let Some((stored, booking)) = state.store.idempotency_record(p.user_id, key).await?
    {
        return if &stored == hash { replay(&state, booking).await } else { Err(Error::IdempotencyKeyReused) };
    }
    let cmd = ClaimCmd { user: p.user_id, request, idempotency };
    match state.registry.claim(EventId(event_id), cmd).await {
        Ok(row) => Ok((StatusCode::CREATED, Json(row.into()))),
        Err(BookingError::Replay(id)) => replay(&state, id).await,
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, default 20.
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BookingPage {
    items: Vec<BookingView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = BookingPage), (status = 401, body = Problem)))]
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

/// The booking if the caller may see it; 404 otherwise, so ids of others are not revealed.
pub(super) async fn visible_booking(state: &AppState, p: &Principal, id: Uuid) -> Result<BookingRow> {
    match state.store.booking(BookingId(id)).await? {
        Some(b) if b.user_id == p.user_id || p.is_admin() => Ok(b),
        _ => Err(Error::NotFound("booking not found")),
    }
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, body = Problem)))]
async fn get_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<BookingView>> {
    Ok(Json(visible_booking(&state, &p, id).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = BookingView), (status = 404, body = Problem), (status = 409, description = "not_cancellable", body = Problem)))]
async fn cancel_booking(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<BookingView>> {
    let b = visible_booking(&state, &p, id).await?;
    if !b.status.is_live() {
        return Err(BookingError::NotCancellable.into());
    }
    let reason = if b.user_id == p.user_id { CancelReason::User } else { CancelReason::Admin };
    let row = state.registry.cancel(b, reason, Vec::new()).await?;
    tracing::info!(booking_id = %id, reason = reason.as_str(), "booking cancelled");
    Ok(Json(row.into()))
}
