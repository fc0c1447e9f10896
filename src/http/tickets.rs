//! Admission at the door: an admin scans a ticket at the door of one event. The ticket of
//! another event is refused without being used up.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{AdminOnly, IdPath, JsonBody, Limited};
use super::extract::{Admin, Json, Path, RequestId};
use super::{AppState, Problem, Result};
use crate::domain::ids::EventId;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(check_in))
}

#[derive(Deserialize, ToSchema)]
pub struct CheckInRequest {
    /// The ticket code (printed and in the receipt's QR code), 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"[^\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct Admission {
    booking_id: Uuid,
    event_id: Uuid,
    quantity: i64,
    seats: Vec<String>,
    checked_in_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/v1/events/{id}/check-in", tag = "payments", params(("id" = Uuid, Path, description = "The event whose door this is")),
    request_body = CheckInRequest, security(("bearer" = [])),
    responses((status = 200, description = "admitted", body = Admission),
        JsonBody, AdminOnly, IdPath, Limited,
        (status = 404, description = "not_found: no such event", body = Problem),
        (status = 409, description = "unknown_ticket (no confirmed booking has this code), already_checked_in, wrong_event (the ticket is for another event; it stays unused), or booking_changing (another change of it is being saved; retry)", body = Problem)))]
async fn check_in(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(event_id): Path<Uuid>,
    RequestId(request_id): RequestId,
    Json(req): Json<CheckInRequest>,
) -> Result<Json<Admission>> {
    let b = state.office.check_in(EventId(event_id), &req.code, request_id).await?;
    tracing::info!(booking_id = %b.id, by = %admin.user_id, "admitted at the door");
    Ok(Json(Admission {
        booking_id: b.id.0,
        event_id: b.event_id.0,
        quantity: b.quantity,
        seats: b.seats,
        checked_in_at: b.checked_in_at.unwrap_or(b.updated_at),
    }))
}
