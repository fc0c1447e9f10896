//! Payments and receipts: pay for a held booking (the box office starts it, a saga takes it
//! from there), read a payment, the provider's signed webhook, and the PDF receipt of a
//! confirmed booking.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{Bearer, IdPath, JsonBody, Limited};
use super::extract::{AuthUser, IdempotencyKey, Json, Path, RequestId};
use super::{AppState, Error, Problem, Result};
use crate::domain::ids::{BookingId, PaymentId};
use crate::domain::payment::{Outcome, PaymentMethod, PaymentStatus};
use crate::payments::signature;
use crate::persistence::PaymentRow;
use crate::receipts::ReceiptFile;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment))
        .routes(routes!(get_payment))
        .routes(routes!(webhook))
        .routes(routes!(receipt))
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

/// The payment method and the one field it needs: `card_token` for `card`, `phone_number` for
/// `mobile_money` (422 when it is missing or invalid).
#[derive(Deserialize, ToSchema)]
pub struct CreatePayment {
    #[schema(value_type = PaymentMethodKind)]
    method: String,
    /// For `card`: the provider's token. The simulated provider's test tokens: `tok_ok` and
    /// `tok_slow` succeed, `tok_silent` never answers, any other token is declined.
    #[schema(min_length = 1, max_length = 128, pattern = "^(?:[A-Za-z_-]*[0-9]){0,11}[A-Za-z_-]*$")]
    card_token: Option<String>,
    /// For `mobile_money`: E.164, e.g. `+254700000001` (ending `0000` fails, `9999` never calls back).
    #[schema(pattern = r"^\+[1-9][0-9]{7,14}$")]
    phone_number: Option<String>,
}

/// How a booking is paid.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // a schema only: the handler parses `method` with the payment's own rules
pub enum PaymentMethodKind {
    Card,
    MobileMoney,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/payments", tag = "payments", params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Same key and body return the same payment; 1 to 255 visible ASCII characters (400 otherwise)")),
    request_body = CreatePayment, security(("bearer" = [])),
    responses((status = 202, description = "pending: the provider's verdict follows", body = PaymentView, links(
            ("get_payment" = (operation_id = "get_payment", parameters(("id" = "$response.body#/id")))),
            ("get_booking" = (operation_id = "get_booking", parameters(("id" = "$response.body#/booking_id")))),
        )),
        JsonBody, Bearer, IdPath, Limited,
        (status = 400, description = "bad_request: the body is not JSON, a field has the wrong type, or the Idempotency-Key is not 1 to 255 visible ASCII characters", body = Problem),
        (status = 404, description = "not_found: no such booking of this account", body = Problem),
        (status = 409, description = "booking_not_payable, or booking_changing (another change of it is being saved; retry)", body = Problem),
        (status = 422, description = "validation_failed (`errors` names each field) or idempotency_key_reused", body = Problem),
        (status = 503, description = "unavailable: the payment provider is unavailable (circuit open), the database is unreachable, or the request took too long", body = Problem)))]
async fn create_payment(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(booking_id): Path<Uuid>,
    IdempotencyKey(key): IdempotencyKey,
    RequestId(request_id): RequestId,
    Json(body): Json<CreatePayment>,
) -> Result<(StatusCode, Json<PaymentView>)> {
    let method = PaymentMethod::from_request(&body.method, body.card_token.as_deref(), body.phone_number.as_deref())
        .map_err(Error::Validation)?;
    let payment = state.office.pay(p.user_id, BookingId(booking_id), method, key, request_id).await?;
    Ok((StatusCode::ACCEPTED, Json(payment.into())))
}

#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = PaymentView), Bearer, IdPath, Limited,
        (status = 404, description = "not_found: no such payment of this account", body = Problem)))]
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

/// The parsed, bounded `X-Signature` header, checked for freshness. Read from the headers
/// alone, so a malformed, oversized or stale header is refused before the body is read and
/// before any MAC is computed.
pub struct WebhookSignature(signature::Signature);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for WebhookSignature {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self> {
        // A body announced as too large is refused as such, whatever its signature.
        let length = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if length.is_some_and(|n| n > super::MAX_BODY_BYTES) {
            return Err(Error::PayloadTooLarge);
        }
        let header = parts.headers.get("x-signature").map(|v| v.to_str()).transpose();
        header
            .map_err(|_| signature::SignatureError::Malformed)
            .and_then(signature::Signature::parse)
            .and_then(|sig| sig.check_fresh(Utc::now().timestamp()).map(|()| sig))
            .map(WebhookSignature)
            .map_err(refused)
    }
}

fn refused(e: signature::SignatureError) -> Error {
    tracing::warn!(error = %e, "webhook signature refused");
    Error::Unauthorized(e.to_string())
}

#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "payments",
    params(("X-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">; at most 512 bytes and 4 v1 values")),
    request_body = ProviderCallback,
    responses((status = 200, body = CallbackReceipt),
        (status = 400, description = "bad_request: the body is not a callback, or provider_ref does not match the payment", body = Problem),
        (status = 401, description = "unauthorized: missing, malformed, oversized, stale or wrong signature", body = Problem),
        (status = 404, description = "not_found: no such payment", body = Problem),
        (status = 413, description = "payload_too_large: the body is larger than 1 MiB", body = Problem),
        (status = 429, description = "rate_limited: too many webhook calls from this address (see Retry-After)", body = Problem),
        (status = 503, description = "unavailable: signature checking is saturated, or the database is unreachable; retry after Retry-After", body = Problem)))]
async fn webhook(
    State(state): State<AppState>,
    WebhookSignature(sig): WebhookSignature,
    body: Bytes,
) -> Result<Json<CallbackReceipt>> {
    // One MAC over up to 1 MiB: off the async threads, a bounded number at once.
    let secret = state.webhook_secret.clone();
    let checked = body.clone();
    state.webhook_cpu.run(move || sig.matches(&secret, &checked)).await?.map_err(refused)?;
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
    description = "The receipt stored when the booking was confirmed (rendered again if it is missing). With \
        S3 storage the answer is a redirect to a short-lived presigned URL of the stored PDF.",
    responses((status = 200, description = "the receipt", content_type = "application/pdf"),
        (status = 302, description = "S3 storage: the stored receipt is at the presigned URL in `Location`",
            headers(("Location" = String, description = "presigned URL of the PDF, valid for RECEIPT_URL_TTL_SECS"))),
        Bearer, IdPath, Limited,
        (status = 404, description = "not_found: no such booking of this account", body = Problem),
        (status = 409, description = "not_confirmed", body = Problem)))]
async fn receipt(State(state): State<AppState>, AuthUser(p): AuthUser, Path(id): Path<Uuid>) -> Result<Response> {
    let file = state.office.receipt(&p, BookingId(id)).await?;
    let mut resp = match file {
        ReceiptFile::Redirect(url) => {
            let location =
                HeaderValue::from_str(&url).map_err(|e| Error::Internal(anyhow::anyhow!("receipt url: {e}")))?;
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, location);
            // The URL expires soon: nobody may keep this answer.
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return Ok(resp);
        }
        ReceiptFile::Pdf(pdf) => (StatusCode::OK, pdf).into_response(),
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"receipt-{id}.pdf\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
