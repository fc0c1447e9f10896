//! Payments: how a customer pays (card token or an E.164 phone number for mobile money), the
//! payment's status as clients see it, and the saga step that a restarted process resumes from.

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+`, a country code that does not start with 0, 8 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let digits = s.strip_prefix('+').ok_or("must start with + and the country code (E.164)")?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be + followed by 8 to 15 digits (E.164)");
        }
        if digits.starts_with('0') {
            return Err("country codes do not start with 0 (E.164)");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A card token as issued by the provider's client-side tokenisation (never a card number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken(String);

impl CardToken {
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        if s.is_empty() || s.len() > 128 {
            return Err("must be 1 to 128 characters");
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err("may contain only letters, digits, '_' and '-'");
        }
        if s.bytes().filter(u8::is_ascii_digit).count() >= 12 {
            // Looks like a card number: we only ever take tokens.
            return Err("must be a token from the payment provider, not a card number");
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    Card(CardToken),
    MobileMoney(PhoneNumber),
}

impl PaymentMethod {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Card(_) => "card",
            Self::MobileMoney(_) => "mobile_money",
        }
    }

    /// What the provider is given: the token or the phone number.
    pub fn instrument(&self) -> &str {
        match self {
            Self::Card(t) => t.as_str(),
            Self::MobileMoney(p) => p.as_str(),
        }
    }

    /// A method as a client asks for it: `card` needs `card_token`, `mobile_money` needs
    /// `phone_number`; a missing or bad field is reported under its name.
    pub fn from_request(
        method: &str,
        card_token: Option<&str>,
        phone_number: Option<&str>,
    ) -> Result<Self, super::FieldErrors> {
        use super::FieldErrors;
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
        match method {
            "card" => required("card_token", card_token, CardToken::parse, "card").map(Self::Card),
            "mobile_money" => {
                required("phone_number", phone_number, PhoneNumber::parse, "mobile money").map(Self::MobileMoney)
            }
            _ => Err(FieldErrors::single("method", "must be card or mobile_money")),
        }
    }

    /// Rebuilds a stored method.
    pub fn from_parts(kind: &str, instrument: &str) -> Option<Self> {
        match kind {
            "card" => CardToken::parse(instrument).ok().map(Self::Card),
            "mobile_money" => PhoneNumber::parse(instrument).ok().map(Self::MobileMoney),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

/// The saga's persisted position. `Done` sagas are finished; any other is resumed on start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStep {
    /// The charge has not been acknowledged by the provider yet.
    Initiating,
    /// Charged; waiting for the provider's verdict or the deadline.
    Awaiting,
    /// Money was taken for a booking that cannot be had (cancelled, or lost to the deadline).
    Refunding,
    Done,
}

/// The provider's verdict on a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

str_enum!(PaymentStatus { Pending => "pending", Succeeded => "succeeded", Failed => "failed", Refunded => "refunded" });
str_enum!(SagaStep { Initiating => "initiating", Awaiting => "awaiting", Refunding => "refunding", Done => "done" });
str_enum!(Outcome { Succeeded => "succeeded", Failed => "failed" });

/// A ticket code: 16 characters from an alphabet without look-alikes (no 0/O, 1/I/L), about
/// 80 bits of randomness, grouped for reading aloud at a door.
pub fn new_ticket_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A ticket code as typed or scanned at a door: trimmed and upper-cased, 1 to 64 characters.
pub fn normalise_ticket_code(raw: &str) -> Result<String, &'static str> {
    // Counted as given (as JSON Schema counts), before trimming and upper-casing.
    let code = raw.trim();
    if code.is_empty() || raw.chars().count() > 64 {
        return Err("must be 1 to 64 characters");
    }
    Ok(code.to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_name_the_field_they_need() {
        assert!(matches!(PaymentMethod::from_request("card", Some("tok_ok"), None), Ok(PaymentMethod::Card(_))));
        for (method, token, phone, field) in [
            ("cash", None, None, "method"),
            ("card", None, None, "card_token"),
            ("card", Some("4111111111111111"), None, "card_token"),
            ("mobile_money", None, None, "phone_number"),
            ("mobile_money", None, Some("0700"), "phone_number"),
        ] {
            let e = PaymentMethod::from_request(method, token, phone).unwrap_err();
            assert!(e.0.contains_key(field), "{method}: {e:?}");
        }
        assert_eq!(normalise_ticket_code(" abcd-efgh ").unwrap(), "ABCD-EFGH");
        assert!(normalise_ticket_code("  ").is_err());
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert!(PhoneNumber::parse("+254700000001").is_ok());
        for bad in ["254700000001", "+0123456789", "+12", "+1234567890123456", "+2547000a0001", ""] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn card_tokens_are_tokens() {
        assert!(CardToken::parse("tok_ok").is_ok());
        assert!(CardToken::parse("4111111111111111").is_err());
        assert!(CardToken::parse("tok ok").is_err());
        assert!(CardToken::parse("").is_err());
    }

    #[test]
    fn ticket_codes_are_distinct_and_readable() {
        let a = new_ticket_code();
        assert_eq!(a.len(), 19);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_ne!(a, new_ticket_code());
    }

    #[test]
    fn names_round_trip() {
        for s in [PaymentStatus::Pending, PaymentStatus::Succeeded, PaymentStatus::Failed, PaymentStatus::Refunded] {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        for s in [SagaStep::Initiating, SagaStep::Awaiting, SagaStep::Refunding, SagaStep::Done] {
            assert_eq!(SagaStep::parse(s.as_str()), Some(s));
        }
    }
}
