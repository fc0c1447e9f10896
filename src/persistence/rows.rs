//! Row types: what the store reads and writes, converted from the raw column values that both
//! engines can decode (UUID, text, 64-bit integers, timestamps).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::booking::{BookingStatus, CancelReason};
use crate::domain::ids::{BookingId, EventId, UserId};
use crate::domain::seatmap::{SeatMap, SeatMapSpec};
use crate::domain::user::Role;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    /// Moves on with every change of role or password: sessions begun at an older epoch are over.
    pub session_epoch: i64,
}

impl UserRow {
    /// A new account, created now.
    pub fn new(email: &str, password_hash: String, role: Role) -> Self {
        Self {
            id: UserId::new(),
            email: email.to_owned(),
            password_hash,
            role,
            created_at: crate::domain::now(),
            session_epoch: 0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RawUser {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    created_at: DateTime<Utc>,
    session_epoch: i64,
}

impl TryFrom<RawUser> for UserRow {
    type Error = StoreError;
    fn try_from(r: RawUser) -> StoreResult<Self> {
        Ok(Self {
            id: UserId(r.id),
            email: r.email,
            password_hash: r.password_hash,
            role: Role::from_db(&r.role)?,
            created_at: r.created_at,
            session_epoch: r.session_epoch,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub user_id: UserId,
    pub family_id: Uuid,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    pub spent_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Look-ups only: the token's session was ended (logout, reuse, or a change of the user's
    /// role or password). Ignored when a token is written.
    pub session_ended: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct RawRefresh {
    id: Uuid,
    user_id: Uuid,
    family_id: Uuid,
    token_hash: String,
    expires_at: DateTime<Utc>,
    spent_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    session_ended: bool,
}

impl From<RawRefresh> for RefreshTokenRow {
    fn from(r: RawRefresh) -> Self {
        Self {
            id: r.id,
            user_id: UserId(r.user_id),
            family_id: r.family_id,
            token_hash: r.token_hash,
            expires_at: r.expires_at,
            spent_at: r.spent_at,
            revoked_at: r.revoked_at,
            created_at: r.created_at,
            session_ended: r.session_ended,
        }
    }
}

pub(super) const EVENT_COLUMNS: &str = "id, title, description, venue, starts_at, price_cents, currency, capacity, reserved, \
     seat_map, max_per_booking, max_per_user, owner_epoch, created_at, updated_at";

#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: EventId,
    pub title: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub price_cents: i64,
    pub currency: String,
    pub capacity: i64,
    /// Seats held or sold, as durably recorded.
    pub reserved: i64,
    pub seat_map: Option<SeatMapSpec>,
    pub max_per_booking: i64,
    /// Seats one account may hold and buy, across its bookings.
    pub max_per_user: i64,
    pub owner_epoch: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EventRow {
    /// The sale facts announced on the stream.
    pub fn facts(&self) -> crate::domain::stream::EventFacts {
        crate::domain::stream::EventFacts {
            title: self.title.clone(),
            venue: self.venue.clone(),
            starts_at: self.starts_at,
            capacity: self.capacity,
            price_cents: self.price_cents,
            currency: self.currency.clone(),
            seated: self.seat_map.is_some(),
        }
    }

    /// A new general-admission event starting now, priced in euros, owned by nobody yet; set
    /// other fields with struct update syntax.
    pub fn general_admission(title: &str, venue: &str, capacity: i64, price_cents: i64) -> Self {
        let now = crate::domain::now();
        Self {
            id: EventId::new(),
            title: title.to_owned(),
            description: String::new(),
            venue: venue.to_owned(),
            starts_at: now,
            price_cents,
            currency: "EUR".into(),
            capacity,
            reserved: 0,
            seat_map: None,
            max_per_booking: crate::domain::event::DEFAULT_MAX_PER_BOOKING.min(capacity.max(1) as u32) as i64,
            max_per_user: crate::domain::event::DEFAULT_MAX_PER_USER.min(capacity.max(1) as u32) as i64,
            owner_epoch: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Seat ids of a seated event, in map order.
    pub fn seat_ids(&self) -> Vec<String> {
        let Some(spec) = &self.seat_map else { return Vec::new() };
        let mut ids = Vec::new();
        for s in &spec.sections {
            for r in &s.rows {
                ids.extend((1..=r.seats).map(|n| format!("{}-{}-{}", s.name, r.label, n)));
            }
        }
        ids
    }

    pub fn parsed_seat_map(&self) -> StoreResult<Option<SeatMap>> {
        self.seat_map
            .clone()
            .map(|s| SeatMap::parse(s).map_err(|e| StoreError::Corrupt(format!("seat map of {}: {e}", self.id))))
            .transpose()
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RawEvent {
    id: Uuid,
    title: String,
    description: String,
    venue: String,
    starts_at: DateTime<Utc>,
    price_cents: i64,
    currency: String,
    capacity: i64,
    reserved: i64,
    seat_map: Option<String>,
    max_per_booking: i64,
    max_per_user: i64,
    owner_epoch: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RawEvent {
    pub(super) fn owner_epoch(&self) -> i64 {
        self.owner_epoch
    }
}

impl TryFrom<RawEvent> for EventRow {
    type Error = StoreError;
    fn try_from(r: RawEvent) -> StoreResult<Self> {
        let seat_map = r
            .seat_map
            .map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("seat map of {}: {e}", r.id))))
            .transpose()?;
        Ok(Self {
            id: EventId(r.id),
            title: r.title,
            description: r.description,
            venue: r.venue,
            starts_at: r.starts_at,
            price_cents: r.price_cents,
            currency: r.currency,
            capacity: r.capacity,
            reserved: r.reserved,
            seat_map,
            max_per_booking: r.max_per_booking,
            max_per_user: r.max_per_user,
            owner_epoch: r.owner_epoch,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

pub(super) const BOOKING_COLUMNS: &str = "id, event_id, user_id, quantity, seats, status, cancel_reason, amount_cents, currency, \
     expires_at, ticket_code, checked_in_at, created_at, updated_at";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRow {
    pub id: BookingId,
    pub event_id: EventId,
    pub user_id: UserId,
    pub quantity: i64,
    pub seats: Vec<String>,
    pub status: BookingStatus,
    pub cancel_reason: Option<CancelReason>,
    pub amount_cents: i64,
    pub currency: String,
    pub expires_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
    /// When its ticket was used at the door.
    pub checked_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BookingRow {
    /// A new hold of `quantity` places on `event` at its price (general admission; set `seats`
    /// and `id` with struct update syntax where needed).
    pub fn held(
        event: &EventRow,
        user_id: UserId,
        quantity: i64,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: BookingId::new(),
            event_id: event.id,
            user_id,
            quantity,
            seats: Vec::new(),
            status: BookingStatus::Held,
            cancel_reason: None,
            amount_cents: quantity * event.price_cents,
            currency: event.currency.clone(),
            expires_at,
            ticket_code: None,
            checked_in_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RawBooking {
    id: Uuid,
    event_id: Uuid,
    user_id: Uuid,
    quantity: i64,
    seats: String,
    status: String,
    cancel_reason: Option<String>,
    amount_cents: i64,
    currency: String,
    expires_at: DateTime<Utc>,
    ticket_code: Option<String>,
    checked_in_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RawBooking> for BookingRow {
    type Error = StoreError;
    fn try_from(r: RawBooking) -> StoreResult<Self> {
        let seats = serde_json::from_str(&r.seats)
            .map_err(|e| StoreError::Corrupt(format!("seats of booking {}: {e}", r.id)))?;
        let cancel_reason = r
            .cancel_reason
            .map(|c| CancelReason::parse(&c).ok_or_else(|| StoreError::Corrupt(format!("cancel reason {c:?}"))))
            .transpose()?;
        Ok(Self {
            id: BookingId(r.id),
            event_id: EventId(r.event_id),
            user_id: UserId(r.user_id),
            quantity: r.quantity,
            seats,
            status: BookingStatus::from_db(&r.status)?,
            cancel_reason,
            amount_cents: r.amount_cents,
            currency: r.currency,
            expires_at: r.expires_at,
            ticket_code: r.ticket_code,
            checked_in_at: r.checked_in_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}
