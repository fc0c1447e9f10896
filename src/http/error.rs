//! The one HTTP error type. Every 4xx/5xx leaves as `application/problem+json` (RFC 9457) with
//! a stable `code`; internal errors are logged once here and answered generically.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::accounts::SessionError;
use crate::actors::{BookingError, EventRefusal};
use crate::domain::FieldErrors;
use crate::domain::booking::CancelRefusal;
use crate::persistence::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("e-mail or password is wrong")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String, extra: Option<(&'static str, Value)> },
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("{0}")]
    Unavailable(String),
    /// A rate limit (`limit` names which) ran dry; the client may retry after the wait.
    #[error("too many requests from this client ({limit}); retry in {retry_after_secs} s")]
    RateLimited { limit: &'static str, retry_after_secs: u64 },
    #[error("an internal error occurred")]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(FieldErrors::single(field, message))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Error::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", "Invalid credentials"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, code, "Conflict"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large"),
            Error::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            Error::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "Validation failed"),
            Error::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Idempotency key reused")
            }
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Error::Conflict { code, detail: detail.into(), extra: None }
    }
}

/// A problem document for a status and code.
pub fn problem(status: StatusCode, code: &str, title: &str, detail: &str, extra: Map<String, Value>) -> Response {
    let mut body = json!({
        "type": format!("/problems/{code}"),
        "title": title,
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    if let Value::Object(m) = &mut body {
        m.extend(extra);
    }
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if matches!(status, StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        let mut extra = Map::new();
        match &self {
            Error::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            Error::Unavailable(d) => tracing::warn!(detail = %d, "answered 503"),
            Error::Validation(errors) => {
                extra.insert("errors".into(), json!(errors.0));
            }
            Error::Conflict { extra: Some((k, v)), .. } => {
                extra.insert((*k).into(), v.clone());
            }
            _ => {}
        }
        let mut resp = problem(status, code, title, &self.to_string(), extra);
        if let Error::RateLimited { retry_after_secs, .. } = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}

impl From<crate::cpu::Busy> for Error {
    fn from(e: crate::cpu::Busy) -> Self {
        Error::Unavailable(format!("{e}; retry shortly"))
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            e if e.is_unreachable() => Error::Unavailable("the database is not reachable; retry shortly".into()),
            StoreError::Fenced => Error::Unavailable("the event moved to another node; retry".into()),
            StoreError::Conflict(what) => Error::conflict("conflict", format!("{what} already exists")),
            other => Error::Internal(other.into()),
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(m) => Error::Unauthorized(m.into()),
            SessionError::Store(e) => e.into(),
            SessionError::Internal(e) => Error::Internal(e),
        }
    }
}

impl From<BookingError> for Error {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::EventNotFound => Error::NotFound("event not found"),
            BookingError::SoldOut { available } => Error::Conflict {
                code: "sold_out",
                detail: format!("not enough seats left: {available} available"),
                extra: Some(("available", json!(available))),
            },
            BookingError::SeatsUnavailable(seats) => Error::Conflict {
                code: "seats_unavailable",
                detail: format!("seats not available: {}", seats.join(", ")),
                extra: Some(("unavailable_seats", json!(seats))),
            },
            BookingError::Invalid(fields) => Error::Validation(fields),
            BookingError::NotCancellable => {
                Error::conflict("not_cancellable", "the booking is already expired or cancelled")
            }
            BookingError::CapacityConflict { in_use } => Error::Conflict {
                code: "capacity_conflict",
                detail: format!("capacity may not drop below the {in_use} seats held or sold"),
                extra: Some(("in_use", json!(in_use))),
            },
            BookingError::NotPayable => {
                Error::conflict("booking_not_payable", "the booking is not held, or is already paid or being paid")
            }
            BookingError::HasBookings => Error::conflict("event_has_bookings", "the event has live bookings"),
            BookingError::IdempotencyKeyReused => Error::IdempotencyKeyReused,
            BookingError::Replay(id) => Error::Internal(anyhow::anyhow!("unhandled replay of booking {id}")),
            BookingError::Unavailable(d) => Error::Unavailable(d),
            BookingError::Changing => Error::conflict(
                "booking_changing",
                "another change of this booking is being saved; retry to see its outcome",
            ),
            BookingError::PerUserLimit { limit, has } => Error::Conflict {
                code: "per_user_limit",
                detail: format!(
                    "at most {limit} seats per account for this event; this account holds or bought {has} already"
                ),
                extra: Some(("limit", json!(limit))),
            },
            BookingError::CancelRefused(CancelRefusal::CheckedIn(at)) => Error::Conflict {
                code: "already_checked_in",
                detail: format!(
                    "the ticket was used at the door at {}; a checked-in booking cannot be cancelled",
                    at.to_rfc3339()
                ),
                extra: Some(("checked_in_at", json!(at))),
            },
            BookingError::CancelRefused(CancelRefusal::EventStarted(at)) => Error::Conflict {
                code: "event_started",
                detail: format!("the event started at {}; its bookings can no longer be cancelled", at.to_rfc3339()),
                extra: Some(("starts_at", json!(at))),
            },
            BookingError::AlreadyCheckedIn(at) => Error::Conflict {
                code: "already_checked_in",
                detail: format!("this ticket was checked in at {}", at.to_rfc3339()),
                extra: Some(("checked_in_at", json!(at))),
            },
            BookingError::WrongEvent { ticket_event } => Error::Conflict {
                code: "wrong_event",
                detail: "this ticket is for another event; it was not used and stays valid there".into(),
                extra: Some(("ticket_event_id", json!(ticket_event))),
            },
            // The door (the event) exists; the code matches no confirmed booking: a refusal at
            // the door like `wrong_event`, not a missing resource.
            BookingError::NoSuchTicket => Error::conflict("unknown_ticket", "no valid ticket with this code"),
            BookingError::EventRefuses(r) => r.into(),
        }
    }
}

/// A conflict with the event's current definition: well-formed requests that this event refuses
/// (the same request may be fine for another event, or for this one after an update).
impl From<EventRefusal> for Error {
    fn from(r: EventRefusal) -> Self {
        match r {
            EventRefusal::OverBookingLimit { field, max } => Error::Conflict {
                code: "over_booking_limit",
                detail: format!("at most {max} seats per booking for this event ({field})"),
                extra: Some(("max_per_booking", json!(max))),
            },
            EventRefusal::GeneralAdmission => {
                Error::conflict("general_admission", "this event has general admission; ask for a quantity, not seats")
            }
            EventRefusal::UnknownSeats(seats) => Error::Conflict {
                code: "unknown_seats",
                detail: format!("the event's seat map has no seats {}", seats.join(", ")),
                extra: Some(("unknown_seats", json!(seats))),
            },
            EventRefusal::SeatedCapacity => {
                Error::conflict("seated_event", "a seated event's capacity is its seat map; it cannot be set")
            }
            EventRefusal::ExceedsCapacity { field, capacity } => Error::Conflict {
                code: "exceeds_capacity",
                detail: format!("{field} may not exceed the event's capacity of {capacity}"),
                extra: Some(("capacity", json!(capacity))),
            },
        }
    }
}

impl From<crate::service::Error> for Error {
    fn from(e: crate::service::Error) -> Self {
        use crate::service::Error as S;
        match e {
            S::Booking(e) => e.into(),
            S::Store(e) => e.into(),
            S::NotFound(what) => Error::NotFound(what),
            S::NotConfirmed => Error::conflict("not_confirmed", "only confirmed bookings have a receipt"),
            S::PaymentsUnavailable { retry_in } => Error::Unavailable(format!(
                "the payment provider is unavailable; retry in {} s (holds are kept meanwhile)",
                retry_in.as_secs().max(1)
            )),
            S::Internal(e) => Error::Internal(e),
        }
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                Error::UnsupportedMediaType("send the body as JSON with Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
            other => Error::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::BadRequest(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::BadRequest(r.body_text())
    }
}

/// Turns any error response not made by `Error` (unknown route, wrong method, a layer's 413
/// or timeout, a caught panic) into a problem document.
pub fn problemize<B>(resp: http::Response<B>) -> Response
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let resp = resp.map(axum::body::Body::new);
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // Problem documents pass as they are, and so do the web app's own HTML pages (the page
    // that says the app is not built is a 503 meant for a person).
    let content_type = resp.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
    if content_type.starts_with(PROBLEM_JSON.as_bytes()) || content_type.starts_with(b"text/html") {
        return resp;
    }
    let (code, title, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "Method not allowed", "this method is not allowed on this resource")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "Payload too large", "request body is larger than 1 MiB")
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            ("unavailable", "Service unavailable", "the request took too long; retry")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "Unsupported media type", "unsupported content type")
        }
        s if s.is_server_error() => ("internal", "Internal server error", "an internal error occurred"),
        _ => ("bad_request", "Bad request", "the request is not valid"),
    };
    let status = if status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::GATEWAY_TIMEOUT {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        status
    };
    let mut out = problem(status, code, title, detail, Map::new());
    if let Some(allow) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
