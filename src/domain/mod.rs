//! Pure types and rules of the booking engine: identifiers, users, events, seat maps,
//! the in-memory inventory and the booking state machine. Nothing here does I/O.

pub mod analytics;
pub mod booking;
pub mod event;
pub mod idempotency;
pub mod ids;
pub mod inventory;
pub mod payment;
pub mod seatmap;
pub mod stream;
pub mod user;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision both stores keep (microseconds), so that what a response
/// says is exactly what a later read returns.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A client's timestamp at the stores' precision.
pub fn at_store_precision(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Field name → human message, rendered as the `errors` member of a 422 problem.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_insert_with(|| message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.add(field, message);
        e
    }

    /// `Ok(value)` when no error was recorded.
    pub fn into_result<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}
