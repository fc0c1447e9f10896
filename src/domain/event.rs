//! Events of the catalogue: what an organiser submits, parsed into a valid definition.

use chrono::{DateTime, Utc};

use super::FieldErrors;
use super::seatmap::{SeatMap, SeatMapSpec};

pub const DEFAULT_MAX_PER_BOOKING: u32 = 10;
/// Seats one account may hold and buy for one event unless the organiser says otherwise: two
/// full bookings at the default per-booking limit (a family or a group of friends), while one
/// account can no longer take a whole sale.
pub const DEFAULT_MAX_PER_USER: u32 = 20;
pub const MAX_CAPACITY: u32 = 1_000_000;
pub const MAX_PRICE_CENTS: i64 = 10_000_000_000;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_VENUE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// ISO 4217-shaped currency code (three upper-case letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let s = raw.to_ascii_uppercase();
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
    pub max_per_user: Option<i64>,
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
    /// Seats one account may hold and buy for this event, across its bookings.
    pub max_per_user: u32,
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
    // The length counts the text as given (as JSON Schema's maxLength does), blanks included.
    if value.is_some_and(|v| v.chars().count() > max) {
        errors.add(field, format!("must be at most {max} characters"));
        return String::new();
    }
    match value.map(str::trim) {
        None | Some("") if required => {
            errors.add(field, "is required");
            String::new()
        }
        None => String::new(),
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
    parse_limit(errors, "max_per_booking", value, DEFAULT_MAX_PER_BOOKING, capacity)
}

/// `max_per_user` defaults to 20 and, like `max_per_booking`, may never exceed the capacity.
pub fn parse_max_per_user(errors: &mut FieldErrors, value: Option<i64>, capacity: u32) -> u32 {
    parse_limit(errors, "max_per_user", value, DEFAULT_MAX_PER_USER, capacity)
}

/// A per-booking or per-user limit: at least 1, at most the capacity, `default` when absent.
fn parse_limit(errors: &mut FieldErrors, field: &str, value: Option<i64>, default: u32, capacity: u32) -> u32 {
    match value {
        None => default.min(capacity.max(1)),
        Some(v) if v < 1 => {
            errors.add(field, "must be at least 1");
            1
        }
        Some(v) if capacity > 0 && v > capacity as i64 => {
            errors.add(field, "must not exceed the capacity");
            1
        }
        Some(v) => v as u32,
    }
}

/// What a client may submit to change an event (absent fields stay as they are).
#[derive(Debug, Default, Clone)]
pub struct EventChangesDraft {
    pub title: Option<String>,
    pub description: Option<String>,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub capacity: Option<i64>,
    pub max_per_booking: Option<i64>,
    pub max_per_user: Option<i64>,
    /// Whether a seat map was sent: it cannot change once seats may be sold.
    pub seat_map_given: bool,
}

/// A valid partial update. Rules that need the event's current state (capacity against the
/// seats in use, the limits against the capacity) are checked by the event's actor.
#[derive(Debug, Default, Clone)]
pub struct EventChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub venue: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub price_cents: Option<i64>,
    pub currency: Option<String>,
    pub capacity: Option<i64>,
    pub max_per_booking: Option<i64>,
    pub max_per_user: Option<i64>,
}

impl EventChanges {
    pub fn parse(d: EventChangesDraft) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let text = |e: &mut FieldErrors, f: &str, v: Option<String>, max: usize, required: bool| {
            v.map(|v| parse_text(e, f, Some(&v), max, required))
        };
        let at_least_one = |e: &mut FieldErrors, f: &str, v: Option<i64>| {
            v.inspect(|&m| {
                if m < 1 {
                    e.add(f, "must be at least 1");
                }
            })
        };
        let changes = Self {
            title: text(&mut e, "title", d.title, MAX_TITLE_CHARS, true),
            description: text(&mut e, "description", d.description, MAX_DESCRIPTION_CHARS, false),
            venue: text(&mut e, "venue", d.venue, MAX_VENUE_CHARS, true),
            starts_at: d.starts_at.map(super::at_store_precision).inspect(|t| {
                if !in_storable_range(t) {
                    e.add("starts_at", "must be between the years 1 and 9999");
                }
            }),
            price_cents: d.price_cents.map(|p| parse_price(&mut e, p)),
            currency: d.currency.map(|c| {
                Currency::parse(&c).map(|c| c.as_str().to_owned()).unwrap_or_else(|m| {
                    e.add("currency", m);
                    String::new()
                })
            }),
            capacity: d.capacity.map(|c| parse_capacity(&mut e, c) as i64),
            max_per_booking: at_least_one(&mut e, "max_per_booking", d.max_per_booking),
            max_per_user: at_least_one(&mut e, "max_per_user", d.max_per_user),
        };
        if d.seat_map_given {
            e.add("seat_map", "cannot be changed; create a new event");
        }
        e.into_result(changes)
    }
}

impl EventSpec {
    pub fn parse(d: EventDraft) -> Result<Self, FieldErrors> {
        let mut e = FieldErrors::default();
        let title = parse_text(&mut e, "title", d.title.as_deref(), MAX_TITLE_CHARS, true);
        let description = parse_text(&mut e, "description", d.description.as_deref(), MAX_DESCRIPTION_CHARS, false);
        let venue = parse_text(&mut e, "venue", d.venue.as_deref(), MAX_VENUE_CHARS, true);
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
        let max_per_user = parse_max_per_user(&mut e, d.max_per_user, capacity);
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
            max_per_user,
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
        assert_eq!(s.max_per_user, 5, "the per-user default never exceeds the capacity");
        assert_eq!(s.capacity, 5);
        let big = EventSpec::parse(EventDraft { capacity: Some(500), ..draft() }).unwrap();
        assert_eq!((big.max_per_booking, big.max_per_user), (DEFAULT_MAX_PER_BOOKING, DEFAULT_MAX_PER_USER));
        let set = EventSpec::parse(EventDraft { capacity: Some(500), max_per_user: Some(4), ..draft() }).unwrap();
        assert_eq!(set.max_per_user, 4);
    }

    #[test]
    fn changes_are_validated_with_the_same_limits() {
        let bad = EventChanges::parse(EventChangesDraft {
            title: Some("x".repeat(MAX_TITLE_CHARS + 1)),
            venue: Some(" ".into()),
            max_per_user: Some(0),
            max_per_booking: Some(0),
            capacity: Some(0),
            seat_map_given: true,
            ..Default::default()
        })
        .unwrap_err();
        for f in ["title", "venue", "max_per_user", "max_per_booking", "capacity", "seat_map"] {
            assert!(bad.0.contains_key(f), "{f} missing in {bad:?}");
        }
        let ok = EventChanges::parse(EventChangesDraft { max_per_user: Some(3), ..Default::default() }).unwrap();
        assert_eq!(ok.max_per_user, Some(3));
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
        assert!(
            EventSpec::parse(EventDraft { max_per_user: Some(6), ..draft() })
                .unwrap_err()
                .0
                .contains_key("max_per_user")
        );
        assert!(
            EventSpec::parse(EventDraft { max_per_user: Some(0), ..draft() })
                .unwrap_err()
                .0
                .contains_key("max_per_user")
        );
    }
}
