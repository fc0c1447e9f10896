//! The domain events of the engine's outbound stream: one envelope (`DomainEvent`) with the
//! fields every event has, and one variant per kind of change (`EventData`). Producers write
//! them to the outbox in the transaction of the change they announce; every consumer (the
//! notification workers, the Kafka sink, the analytics) reads this type, never raw JSON. The
//! published AsyncAPI document is generated from these types (`crate::stream::asyncapi`).
//!
//! Compatibility: `SCHEMA_VERSION` moves only with a change a consumer must know about; fields
//! are only ever added. Outbox rows written before the typed stream (topic + loose JSON) are
//! read through [`legacy`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::booking::CancelReason;
use super::ids::{BookingId, EventId, PaymentId, UserId};

/// The version of the envelope and payloads this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One change of the engine, as published on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DomainEvent {
    /// Unique id of this domain event (UUIDv7): consumers drop a second copy by it.
    #[schema(value_type = uuid::Uuid)]
    pub id: Uuid,
    /// Version of the schema this event was written with.
    #[schema(minimum = 1)]
    pub schema_version: u32,
    /// When the change happened (the engine's clock).
    pub time: DateTime<Utc>,
    /// The event (show, concert, ...) the change belongs to; also the stream's ordering key.
    #[schema(value_type = uuid::Uuid)]
    pub event_id: EventId,
    /// The booking the change is about, if any (not for catalogue changes).
    #[schema(value_type = Option<uuid::Uuid>, required = true)]
    pub booking_id: Option<BookingId>,
    /// The HTTP request that caused the change, when one did.
    #[schema(required = true)]
    pub request_id: Option<String>,
    #[serde(flatten)]
    pub data: EventData,
}

/// What happened, with the fields of that kind of change; `type` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type")]
pub enum EventData {
    /// Seats were held for a user until `expires_at`.
    #[serde(rename = "booking.held")]
    BookingHeld {
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(minimum = 1)]
        quantity: i64,
        /// Seat ids of a seated event (empty for general admission).
        seats: Vec<String>,
        #[schema(minimum = 0)]
        amount_cents: i64,
        currency: String,
        expires_at: DateTime<Utc>,
    },
    /// A held booking was paid for.
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed {
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(value_type = Option<uuid::Uuid>)]
        payment_id: Option<PaymentId>,
        #[schema(minimum = 1)]
        quantity: i64,
        #[schema(minimum = 0)]
        amount_cents: i64,
        currency: String,
    },
    /// A live booking was cancelled; `refund` when it had been paid for.
    #[serde(rename = "booking.cancelled")]
    BookingCancelled {
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        reason: CancelReason,
        refund: bool,
        #[schema(minimum = 1)]
        quantity: i64,
    },
    /// A hold ran out unpaid and its seats went back on sale.
    #[serde(rename = "booking.expired")]
    BookingExpired {
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(minimum = 1)]
        quantity: i64,
    },
    /// The provider took the money (the booking's confirmation follows in the same commit).
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded {
        #[schema(value_type = uuid::Uuid)]
        payment_id: PaymentId,
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(minimum = 0)]
        amount_cents: i64,
        currency: String,
    },
    /// A payment failed (declined, refused, no verdict in time); its hold was released.
    #[serde(rename = "payment.failed")]
    PaymentFailed {
        #[schema(value_type = uuid::Uuid)]
        payment_id: PaymentId,
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        reason: String,
    },
    /// Money taken was given back (a cancelled paid booking, or a success that came too late).
    #[serde(rename = "payment.refunded")]
    PaymentRefunded {
        #[schema(value_type = uuid::Uuid)]
        payment_id: PaymentId,
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(minimum = 0)]
        amount_cents: i64,
        currency: String,
    },
    /// An event was put on sale.
    #[serde(rename = "event.created")]
    EventCreated(EventFacts),
    /// An event's details changed (the facts after the change).
    #[serde(rename = "event.updated")]
    EventUpdated(EventFacts),
    /// An event was withdrawn.
    #[serde(rename = "event.deleted")]
    EventDeleted {},
    /// A confirmed booking's ticket admitted its holders at the door.
    #[serde(rename = "ticket.checked_in")]
    TicketCheckedIn {
        #[schema(value_type = uuid::Uuid)]
        user_id: UserId,
        #[schema(minimum = 1)]
        quantity: i64,
    },
}

/// An event's sale facts, as announced on creation and after each change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventFacts {
    pub title: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    #[schema(minimum = 0)]
    pub capacity: i64,
    #[schema(minimum = 0)]
    pub price_cents: i64,
    pub currency: String,
    pub seated: bool,
}

/// The kinds of domain event; `as_str` is the `type` field and the routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    BookingHeld,
    BookingConfirmed,
    BookingCancelled,
    BookingExpired,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRefunded,
    EventCreated,
    EventUpdated,
    EventDeleted,
    TicketCheckedIn,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        Self::BookingHeld,
        Self::BookingConfirmed,
        Self::BookingCancelled,
        Self::BookingExpired,
        Self::PaymentSucceeded,
        Self::PaymentFailed,
        Self::PaymentRefunded,
        Self::EventCreated,
        Self::EventUpdated,
        Self::EventDeleted,
        Self::TicketCheckedIn,
    ];

    /// The `type` of the JSON document, which is also the AMQP routing key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingHeld => "booking.held",
            Self::BookingConfirmed => "booking.confirmed",
            Self::BookingCancelled => "booking.cancelled",
            Self::BookingExpired => "booking.expired",
            Self::PaymentSucceeded => "payment.succeeded",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentRefunded => "payment.refunded",
            Self::EventCreated => "event.created",
            Self::EventUpdated => "event.updated",
            Self::EventDeleted => "event.deleted",
            Self::TicketCheckedIn => "ticket.checked_in",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the customer may be told about this kind of change (by e-mail): the others
    /// travel on the stream only.
    pub fn may_notify(self) -> bool {
        matches!(
            self,
            Self::BookingConfirmed
                | Self::BookingCancelled
                | Self::BookingExpired
                | Self::PaymentFailed
                | Self::PaymentRefunded
        )
    }

    /// A name for identifiers (AsyncAPI message names): `booking.held` → `BookingHeld`.
    pub fn message_name(self) -> String {
        self.as_str()
            .split(['.', '_'])
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect()
    }
}

impl EventData {
    pub fn kind(&self) -> EventType {
        match self {
            Self::BookingHeld { .. } => EventType::BookingHeld,
            Self::BookingConfirmed { .. } => EventType::BookingConfirmed,
            Self::BookingCancelled { .. } => EventType::BookingCancelled,
            Self::BookingExpired { .. } => EventType::BookingExpired,
            Self::PaymentSucceeded { .. } => EventType::PaymentSucceeded,
            Self::PaymentFailed { .. } => EventType::PaymentFailed,
            Self::PaymentRefunded { .. } => EventType::PaymentRefunded,
            Self::EventCreated(_) => EventType::EventCreated,
            Self::EventUpdated(_) => EventType::EventUpdated,
            Self::EventDeleted {} => EventType::EventDeleted,
            Self::TicketCheckedIn { .. } => EventType::TicketCheckedIn,
        }
    }
}

impl DomainEvent {
    /// A new event of this build's schema version, with a fresh id.
    pub fn new(time: DateTime<Utc>, event_id: EventId, booking_id: Option<BookingId>, data: EventData) -> Self {
        Self { id: Uuid::now_v7(), schema_version: SCHEMA_VERSION, time, event_id, booking_id, request_id: None, data }
    }

    pub fn with_request_id(self, request_id: Option<String>) -> Self {
        Self { request_id, ..self }
    }

    pub fn kind(&self) -> EventType {
        self.data.kind()
    }

    /// Whether the customer is told about this change. A booking cancelled because its
    /// payment failed is not: the payment's failure says it.
    pub fn notifies(&self) -> bool {
        match &self.data {
            EventData::BookingCancelled { reason, .. } => *reason != CancelReason::PaymentFailed,
            d => d.kind().may_notify(),
        }
    }
}

/// Outbox rows written by versions before the typed stream: a routing key and a loose JSON
/// document with the booking's ids and a few extra fields. They are upgraded when read, with
/// a stable id derived from the row, so a row read twice is the same event.
pub mod legacy {
    use super::*;

    /// The fields the older producers wrote (all optional: not every topic had each).
    #[derive(Debug, Default, Deserialize)]
    pub struct Payload {
        pub booking_id: Option<BookingId>,
        pub event_id: Option<EventId>,
        pub user_id: Option<UserId>,
        pub payment_id: Option<PaymentId>,
        pub reason: Option<String>,
        pub refund: Option<bool>,
    }

    /// What an old row lacks that the typed event needs: the caller looks it up (the booking).
    #[derive(Debug, Clone)]
    pub struct Known {
        pub event_id: EventId,
        pub user_id: UserId,
        pub quantity: i64,
        pub amount_cents: i64,
        pub currency: String,
    }

    /// The stable id of the event upgraded from outbox row `row` (a UUIDv8 naming the row).
    pub fn id_of_row(row: i64) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(b"bxoutbox");
        bytes[8..].copy_from_slice(&row.to_be_bytes());
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// The typed event of an old row, or why it cannot be had.
    pub fn upgrade(
        row: i64,
        topic: &str,
        p: &Payload,
        known: &Known,
        time: DateTime<Utc>,
        request_id: Option<String>,
    ) -> Result<DomainEvent, String> {
        let kind = EventType::parse(topic).ok_or_else(|| format!("unknown topic {topic}"))?;
        let user_id = p.user_id.unwrap_or(known.user_id);
        let payment = || p.payment_id.ok_or_else(|| format!("{topic} without payment_id"));
        let data = match kind {
            EventType::BookingConfirmed => EventData::BookingConfirmed {
                user_id,
                payment_id: p.payment_id,
                quantity: known.quantity,
                amount_cents: known.amount_cents,
                currency: known.currency.clone(),
            },
            EventType::BookingCancelled => EventData::BookingCancelled {
                user_id,
                reason: p.reason.as_deref().and_then(CancelReason::parse).unwrap_or(CancelReason::User),
                refund: p.refund.unwrap_or(false),
                quantity: known.quantity,
            },
            EventType::BookingExpired => EventData::BookingExpired { user_id, quantity: known.quantity },
            EventType::PaymentFailed => EventData::PaymentFailed {
                payment_id: payment()?,
                user_id,
                reason: p.reason.clone().unwrap_or_default(),
            },
            EventType::PaymentRefunded => EventData::PaymentRefunded {
                payment_id: payment()?,
                user_id,
                amount_cents: known.amount_cents,
                currency: known.currency.clone(),
            },
            other => return Err(format!("{} was never written by an older version", other.as_str())),
        };
        Ok(DomainEvent {
            id: id_of_row(row),
            schema_version: SCHEMA_VERSION,
            time,
            event_id: p.event_id.unwrap_or(known.event_id),
            booking_id: p.booking_id,
            request_id,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(data: EventData) -> DomainEvent {
        DomainEvent::new(crate::domain::now(), EventId::new(), Some(BookingId::new()), data)
    }

    #[test]
    fn the_type_field_is_the_kind_and_round_trips() {
        let events = [
            sample(EventData::BookingExpired { user_id: UserId::new(), quantity: 2 }),
            sample(EventData::EventDeleted {}),
            sample(EventData::BookingCancelled {
                user_id: UserId::new(),
                reason: CancelReason::Admin,
                refund: true,
                quantity: 1,
            }),
        ];
        for e in events {
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(json["type"], e.kind().as_str());
            assert_eq!(json["schema_version"], SCHEMA_VERSION);
            let back: DomainEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn every_kind_parses_back_and_has_a_message_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::TicketCheckedIn.message_name(), "TicketCheckedIn");
        assert_eq!(EventType::parse("booking.nope"), None);
    }

    #[test]
    fn an_old_row_upgrades_with_a_stable_id() {
        let known = legacy::Known {
            event_id: EventId::new(),
            user_id: UserId::new(),
            quantity: 3,
            amount_cents: 4500,
            currency: "EUR".into(),
        };
        let p: legacy::Payload =
            serde_json::from_str(r#"{"booking_id":"0190a0a0-0000-7000-8000-000000000001","reason":"admin"}"#).unwrap();
        let time = crate::domain::now();
        let a = legacy::upgrade(7, "booking.cancelled", &p, &known, time, None).unwrap();
        let b = legacy::upgrade(7, "booking.cancelled", &p, &known, time, None).unwrap();
        assert_eq!(a, b, "the same row is the same event");
        assert_ne!(a.id, legacy::id_of_row(8));
        assert_eq!(a.event_id, known.event_id);
        assert!(matches!(a.data, EventData::BookingCancelled { reason: CancelReason::Admin, quantity: 3, .. }));
        assert!(legacy::upgrade(7, "payment.failed", &p, &known, time, None).is_err(), "no payment id");
        assert!(legacy::upgrade(7, "weird.topic", &p, &known, time, None).is_err());
    }
}
