//! Pure types and rules of the booking engine: identifiers, users, events, seat maps,
//! the in-memory inventory and the booking state machine. Nothing here does I/O.

pub mod booking;
pub mod event;
pub mod ids;
pub mod inventory;
pub mod seatmap;
pub mod user;

use std::collections::BTreeMap;

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
