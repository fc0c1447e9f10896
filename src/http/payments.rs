//! Payments, receipts and tickets: pay for a held booking (a saga takes it from there), read a
//! payment, the provider's signed webhook, the PDF receipt of a confirmed booking, and
//! admission at the door.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::bookings::{idempotency_key, visible_booking};
use super::extract::{Admin, AuthUser, Json, Path};
use super::{AppState, Error, Problem, Result};
use crate::actors::BookingError;
use crate::domain::FieldErrors;
use crate::domain::booking::BookingStatus;
use crate::domain::ids::{BookingId, PaymentId};
use crate::domain::payment::{CardToken, Outcome, PaymentMethod, PaymentStatus, PhoneNumber, SagaStep};
use crate::notify::{BookingFacts, FactsError};
use crate::payments::signature;
use crate::persistence::{CheckIn, PaymentRow, StoreError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment))
        .routes(routes!(get_payment))
        .routes(routes!(webhook))
        .routes(routes!(receipt))
        .routes(routes!(check_in))
}

#[derive(Serialize, ToSchema)]
pub struct PaymentView {
    id: Uuid,
    booking_id: Uuid,
    /// `card` or `mobile_money`.
    method: &'static str,
    status: PaymentStatus,
    amount_cents: i64,
    currency: String,
    /// Why a failed payment failed, e.g. `card_declined`, `deadline_exceeded`.
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<PaymentRow> for PaymentView {
    fn from(p: PaymentRow) -> Self {
        Self {
            id: p.id.0,
            booking_id: p.booking_id.0,
            method: p.method.kind(),
            status: p.status,
            amount_cents: p.amount_cents,
            currency: p.currency,
            failure_reason: p.failure_reason,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreatePayment {
    /// `card` or `mobile_money`.
    method: String,
    /// For `card`: the provider's token (test values `tok_ok`, `tok_declined`, `tok_slow`, `tok_silent`).
    card_token: Option<String>,
    /// For `mobile_money`: E.164, e.g. `+254700000001` (ending `0000` fails, `9999` never calls back).
    phone_number: Option<String>,
}

impl CreatePayment {
    fn parse(&self) -> Result<PaymentMethod, FieldErrors> {
        /// The field a method needs, parsed; its error (or absence) is reported under its name.
        fn required<T>(
            field: &str,
            value: Option<&str>,
            parse: impl Fn(&str) -> Result<T, &'static str>,
            method: &str,
        ) -> Result<T, FieldErrors> {
            let value =
                value.ok_or_else(|| FieldErrors::single(field, format!("is required for {method} payments")))?;
            parse(value).map_err(|e| FieldErrors::single(field, e))
        }
        match self.method.as_str() {
            "card" => {
                required("card_token", self.card_token.as_deref(), CardToken::parse, "card").map(PaymentMethod::Card)
            }
            "mobile_money" => {
                required("phone_number", self.phone_number.as_deref(), PhoneNumber::parse, "mobile money")
                    .map(PaymentMethod::MobileMoney)
            }
            _ => Err(FieldErrors::single("method", "must be card or mobile_money")),
        }
    }
}

fn request_hash(booking: Uuid, method: &PaymentMethod) -> String {
    hex::encode(Sha256::digest(format!("{booking}|{}|{}", method.kind(), method.instrument()).as_bytes()))
}

fn request_id(headers: &HeaderMap) -> Option<String> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Same key and body: the payment made the first time. Same key, other body: 422.
fn replay(p: PaymentRow, hash: &str) -> Result<(StatusCode, Json<PaymentView>)> {
    if p.request_hash.as_deref() == Some(hash) {
        Ok((StatusCode::ACCEPTED, Json(p.into())))
    } else {
        Err(Error::IdempotencyKeyReused)
    }
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/payments", tag = "payments", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key and body return the same payment")),
    request_body = CreatePayment, security(("bearer" = [])),
    responses((status = 202, description = "pending: the provider's verdict follows", body = PaymentView),
        (status = 404, body = Problem), (status = 409, description = "booking_not_payable", body = Problem),
        (status = 422, description = "validation_failed or idempotency_key_reused", body = Problem),
        (status = 503, description = "the payment provider is unavailable (circuit open)", body = Problem)))]
async fn create_payment(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(booking_id): Path<Uuid>,
    headers: HeaderMap,
    Json(body): Json<CreatePayment>,
) -> Result<(StatusCode, Json<PaymentView>)> {
    let key = idempotency_key(&headers)?;
    let method = body.parse().map_err(Error::Validation)?;
    let hash = request_hash(booking_id, &method);
    if let Some(key) = &key
        && let Some(earlier) = state.store.payment_by_key(p.user_id, key).await?
    {
        return replay(earlier, &hash);
    }
    // Only the owner pays; an admin may look but not pay for someone.
    let booking = match state.store.booking(BookingId(booking_id)).await? {
        Some(b) if b.user_id == p.user_id => b,
        _ => return Err(Error::NotFound("booking not found")),
    };
    let now = crate::domain::now();
    if booking.status != BookingStatus::Held || booking.expires_at <= now {
        return Err(BookingError::NotPayable.into());
    }
    if let Some(wait) = state.payments.unavailable_for() {
        return Err(Error::Unavailable(format!(
            "the payment provider is unavailable; retry in {} s (holds are kept meanwhile)",
            wait.as_secs().max(1)
        )));
    }
    let deadline = now + chrono::Duration::from_std(state.payments.deadline()).unwrap_or_default();
    let grace = chrono::Duration::from_std(state.registry.settings().payment_grace).unwrap_or_default();
    let payment = PaymentRow {
        id: PaymentId::new(),
        booking_id: booking.id,
        event_id: booking.event_id,
        user_id: p.user_id,
        method,
        amount_cents: booking.amount_cents,
        currency: booking.currency.clone(),
        status: PaymentStatus::Pending,
        step: SagaStep::Initiating,
        provider_ref: None,
        provider_status: None,
        provider_reason: None,
        failure_reason: None,
        deadline_at: deadline,
        idempotency_key: key.clone(),
        request_hash: Some(hash.clone()),
        request_id: request_id(&headers),
        created_at: now,
        updated_at: now,
    };
    // The payment first, so that an event actor rebuilt from the store at any later moment
    // knows the hold waits for it; then the running actor is told.
    match state.store.insert_payment(&payment).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Either the same key raced us (answer what it made) or another payment of the
            // booking is under way. Which index PostgreSQL names first is not ours to rely on.
            if let Some(key) = &key
                && let Some(earlier) = state.store.payment_by_key(p.user_id, key).await?
            {
                return replay(earlier, &hash);
            }
            return Err(BookingError::NotPayable.into());
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = state.registry.hold_for_payment(booking.event_id, booking.id, deadline + grace).await {
        // The hold left meanwhile (expired or cancelled), or the event is unreachable: the
        // payment never starts.
        let reason = match e {
            BookingError::Unavailable(_) => "event_unavailable",
            _ => "booking_not_payable",
        };
        // The client hears it in the answer; no e-mail for a payment that never started.
        state.store.finish_payment(payment.id, PaymentStatus::Failed, Some(reason), None, now).await?;
        return Err(e.into());
    }
    state.payments.run(payment.id);
    tracing::info!(payment_id = %payment.id, booking_id = %booking.id, method = payment.method.kind(), "payment started");
    Ok((StatusCode::ACCEPTED, Json(payment.into())))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem)))]
async fn get_payment(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Json<PaymentView>> {
    match state.store.payment(PaymentId(id)).await? {
        Some(pay) if pay.user_id == p.user_id || p.is_admin() => Ok(Json(pay.into())),
        _ => Err(Error::NotFound("payment not found")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ProviderCallback {
    payment_id: Uuid,
    provider_ref: String,
    /// `succeeded` or `failed`.
    status: Outcome,
    reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CallbackReceipt {
    payment_id: Uuid,
    /// False when this verdict had already been recorded (a repeated callback changes nothing).
    recorded: bool,
}

#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "payments",
    params(("X-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">")),
    request_body = ProviderCallback,
    responses((status = 200, body = CallbackReceipt), (status = 400, body = Problem),
        (status = 401, description = "missing, malformed, stale or wrong signature", body = Problem), (status = 404, body = Problem)))]
async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Json<CallbackReceipt>> {
    let header = headers.get("x-signature").and_then(|v| v.to_str().ok());
    signature::verify(&state.webhook_secret, header, &body, Utc::now().timestamp()).map_err(|e| {
        tracing::warn!(error = %e, "webhook signature refused");
        Error::Unauthorized(e.to_string())
    })?;
    let cb: ProviderCallback =
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("callback body is not valid: {e}")))?;
    let payment = state.store.payment(PaymentId(cb.payment_id)).await?.ok_or(Error::NotFound("payment not found"))?;
    if payment.provider_ref.as_deref().is_some_and(|r| r != cb.provider_ref) {
        return Err(Error::BadRequest("provider_ref does not match the payment".into()));
    }
    let reason = cb.reason.as_deref().map(|r| r.chars().take(200).collect::<String>());
    let now = crate::domain::now();
    let recorded =
        state.store.record_outcome(payment.id, cb.status, reason.as_deref(), Some(&cb.provider_ref), now).await?;
    if recorded {
        tracing::info!(payment_id = %payment.id, status = cb.status.as_str(), "provider verdict recorded");
        state.payments.run(payment.id);
    }
    Ok(Json(CallbackReceipt { payment_id: payment.id.0, recorded }))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}/receipt.pdf", tag = "payments", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "the receipt", content_type = "application/pdf"),
        (status = 404, body = Problem), (status = 409, description = "not_confirmed", body = Problem)))]
async fn receipt(State(state): State<AppState>, AuthUser(p): AuthUser, Path(id): Path<Uuid>) -> Result<Response> {
    let booking = visible_booking(&state, &p, id).await?;
    if booking.status != BookingStatus::Confirmed {
        return Err(Error::conflict("not_confirmed", "only confirmed bookings have a receipt"));
    }
    let facts = BookingFacts::load(&state.store, booking).await.map_err(facts_error)?;
    let receipt = facts
        .receipt(&state.store)
        .await
        .map_err(facts_error)?
        .ok_or_else(|| Error::conflict("not_confirmed", "only confirmed bookings have a receipt"))?;
    let pdf = crate::notify::render_receipt(receipt).await?;
    let disposition = format!("inline; filename=\"receipt-{id}.pdf\"");
    let mut resp = (StatusCode::OK, pdf).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

fn facts_error(e: FactsError) -> Error {
    match e {
        FactsError::Store(e) => e.into(),
        FactsError::Missing(what) => Error::Internal(anyhow::anyhow!("receipt: {what} missing")),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CheckInRequest {
    /// The ticket code (printed and in the receipt's QR code).
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

#[utoipa::path(post, path = "/api/v1/tickets/check-in", tag = "payments", request_body = CheckInRequest,
    security(("bearer" = [])),
    responses((status = 200, body = Admission), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "already_checked_in", body = Problem)))]
async fn check_in(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Json(req): Json<CheckInRequest>,
) -> Result<Json<Admission>> {
    let code = req.code.trim().to_uppercase();
    if code.is_empty() || code.len() > 64 {
        return Err(Error::field("code", "must be 1 to 64 characters"));
    }
    let now = crate::domain::now();
    match state.store.check_in(&code, now).await? {
        CheckIn::Admitted(b) => {
            tracing::info!(booking_id = %b.id, by = %admin.user_id, "ticket checked in");
            Ok(Json(Admission {
                booking_id: b.id.0,
                event_id: b.event_id.0,
                quantity: b.quantity,
                seats: b.seats,
                checked_in_at: now,
            }))
        }
        CheckIn::AlreadyCheckedIn(at) => Err(Error::Conflict {
            code: "already_checked_in",
            detail: format!("this ticket was checked in at {}", at.to_rfc3339()),
            extra: Some(("checked_in_at", serde_json::json!(at))),
        }),
        CheckIn::Unknown => Err(Error::NotFound("no valid ticket with this code")),
    }
}
