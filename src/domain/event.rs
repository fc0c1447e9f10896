//! Events of the catalogue: what an organiser submits, parsed into a valid definition.

use chrono::{DateTime, Utc};

use super::FieldErrors;
use super::seatmap::{SeatMap, SeatMapSpec};

pub const DEFAULT_MAX_PER_BOOKING: u32 = 10;
pub const MAX_CAPACITY: u32 = 1_000_000;
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;

/// ISO 4217-shaped currency code (three upper-case letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.trim().to_ascii_uppercase();
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(s))
        } else {
            Err("must be a three-letter ISO 4217 code")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a client may submit to create an event (all optional so that every missing or wrong
/// field is reported at once).
#[derive(Debug, Default, Clone)]
pub struct EventDraft {
    pub title: Option<String>,
    pub description: Option<String>,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub capacity: Option<i64>,
    pub seat_map: Option<SeatMapSpec>,
    pub max_per_booking: Option<i64>,
}

/// A valid event definition.
#[derive(Debug, Clone)]
pub struct EventSpec {
    pub title: String,
    pub description: String,
    pub venue: String,
    pub starts_at: DateTime<Utc>,
    pub price_cents: i64,
    pub currency: Currency,
    pub capacity: u32,
    pub seat_map: Option<SeatMap>,
    pub max_per_booking: u32,
}

/// Text a person typed: no control characters (a NUL byte is not storable in PostgreSQL), except
/// line breaks and tabs in long text.
pub fn is_printable(s: &str, multiline: bool) -> bool {
    s.chars().all(|c| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t')))
}

/// Timestamps both stores keep and order correctly: years 1 to 9999.
pub fn in_storable_range(t: &DateTime<Utc>) -> bool {
    use chrono::Datelike;
    (1..=9999).contains(&t.year())
}

pub fn parse_text(errors: &mut FieldErrors, field: &str, value: Option<&str>, max: usize, required: bool) -> String {
    if value.is_some_and(|v| !is_printable(v, max > 200)) {
        errors.add(field, "must not contain control characters");
        return String::new();
    }
    match value.map(str::trim) {
        None | Some("") if required => {
            errors.add(field, "is required");
            String::new()
        }
        None => String::new(),
        Some(s) if s.chars().count() > max => {
            errors.add(field, format!("must be at most {max} characters"));
            String::new()
        }
        Some(s) => s.to_owned(),
    }
}

pub fn parse_price(errors: &mut FieldErrors, value: i64) -> i64 {
    if !(0..=MAX_PRICE_CENTS).contains(&value) {
        errors.add("price_cents", format!("must be between 0 and {MAX_PRICE_CENTS}"));
    }
    value
}

pub fn parse_capacity(errors: &mut FieldErrors, value: i64) -> u32 {
    if !(1..=MAX_CAPACITY as i64).contains(&value) {
        errors.add("capacity", format!("must be between 1 and {MAX_CAPACITY}"));
        return 0;
    }
    value as u32
}

/// `max_per_booking` defaults to 10 and may never exceed the capacity.
pub fn parse_max_per_booking(errors: &mut FieldErrors, value: Option<i64>, capacity: u32) -> u32 {
    match value {
        None => DEFAULT_MAX_PER_BOOKING.min(capacity.max(1)),
        Some(v) if v < 1 => {
            errors.add("max_per_booking", "must be at least 1");
            1
        }
        Some(v) if capacity > 0 && v > capacity as i64 => {
            errors.add("max_per_booking", "must not exceed the capacity");
            1
        }
        Some(v) => v as u32,
    }
}

impl EventSpec {
    pub fn parse(d: EventDraft) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let title = parse_text(&mut e, "title", d.title.as_deref(), 200, true);
        let description = parse_text(&mut e, "description", d.description.as_deref(), 10_000, false);
        let venue = parse_text(&mut e, "venue", d.venue.as_deref(), 200, true);
        let starts_at = d.starts_at.map(super::at_store_precision).unwrap_or_else(|| {
            e.add("starts_at", "is required");
            DateTime::UNIX_EPOCH
        });
        if !in_storable_range(&starts_at) {
            e.add("starts_at", "must be between the years 1 and 9999");
        }
        let price_cents = match d.price_cents {
            Some(p) => parse_price(&mut e, p),
            None => {
                e.add("price_cents", "is required");
                0
            }
        };
        let currency = match d.currency.as_deref().map(Currency::parse) {
            Some(Ok(c)) => Some(c),
            Some(Err(m)) => {
                e.add("currency", m);
                None
            }
            None => {
                e.add("currency", "is required");
                None
            }
        };
        let (capacity, seat_map) = match (d.capacity, d.seat_map) {
            (Some(_), Some(_)) => {
                e.add("seat_map", "give either capacity or seat_map, not both");
                (0, None)
            }
            (None, None) => {
                e.add("capacity", "give either capacity (general admission) or seat_map (reserved seating)");
                (0, None)
            }
            (Some(c), None) => (parse_capacity(&mut e, c), None),
            (None, Some(spec)) => match SeatMap::parse(spec) {
                Ok(map) => (map.capacity(), Some(map)),
                Err(m) => {
                    e.add("seat_map", m);
                    (0, None)
                }
            },
        };
        let max_per_booking = parse_max_per_booking(&mut e, d.max_per_booking, capacity);
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Self {
            title,
            description,
            venue,
            starts_at,
            price_cents,
            currency: currency.expect("checked above"),
            capacity,
            seat_map,
            max_per_booking,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> EventDraft {
        EventDraft {
            title: Some("Gig".into()),
            venue: Some("Hall".into()),
            starts_at: Some(Utc::now()),
            price_cents: Some(1500),
            currency: Some("eur".into()),
            capacity: Some(5),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_draft_parses_with_defaults() {
        let s = EventSpec::parse(draft()).unwrap();
        assert_eq!(s.currency.as_str(), "EUR");
        assert_eq!(s.max_per_booking, 5);
        assert_eq!(s.capacity, 5);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let d = EventDraft {
            capacity: Some(0),
            max_per_booking: Some(0),
            currency: Some("euro".into()),
            ..Default::default()
        };
        let e = EventSpec::parse(d).unwrap_err();
        for f in ["title", "venue", "starts_at", "price_cents", "currency", "capacity", "max_per_booking"] {
            assert!(e.0.contains_key(f), "{f} missing in {e:?}");
        }
        let nul = EventDraft { title: Some("a\u{0}b".into()), ..draft() };
        assert!(EventSpec::parse(nul).unwrap_err().0.contains_key("title"));
        let far = EventDraft { starts_at: Some("-5000-01-01T00:00:00Z".parse().unwrap()), ..draft() };
        assert!(EventSpec::parse(far).unwrap_err().0.contains_key("starts_at"));
        let both = EventDraft {
            seat_map: Some(
                serde_json::from_value(
                    serde_json::json!({"sections": [{"name": "A", "rows": [{"label": "1", "seats": 3}]}]}),
                )
                .unwrap(),
            ),
            ..draft()
        };
        assert!(EventSpec::parse(both).unwrap_err().0.contains_key("seat_map"));
        assert!(EventSpec::parse(EventDraft { max_per_booking: Some(6), ..draft() }).is_err());
    }
}
