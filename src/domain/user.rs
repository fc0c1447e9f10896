//! Users: e-mail addresses, passwords and roles, parsed at the edge.

use serde::{Deserialize, Serialize};

/// A normalised (lower-cased) e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// What [`Email::parse`] accepts, as the OpenAPI document states it: a local part, `@`, and a
/// domain of at least two dot-separated labels, none empty; nowhere `@` twice, white space or a
/// control character (the classes below are exactly Rust's `is_whitespace` and `is_control`).
pub const EMAIL_PATTERN: &str = r"^[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+$";

impl Email {
    pub const MAX_CHARS: usize = 254;

    /// Checks the address as given (a client trims what a person typed) and lower-cases it.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("is required");
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 254 characters");
        }
        let Some((local, domain)) = raw.split_once('@') else {
            return Err("must be an e-mail address");
        };
        let domain_ok =
            !domain.contains('@') && domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
        if local.is_empty() || !domain_ok || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be an e-mail address");
        }
        Ok(Self(raw.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that satisfies the length policy. Upper bound keeps hashing cheap to refuse.
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Characters, as JSON Schema counts them (at most 4 KiB of UTF-8 to hash).
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, &'static str> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err("must be at least 8 characters");
        }
        if chars > Self::MAX_CHARS {
            return Err("must be at most 1024 characters");
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("Ann@Example.COM").unwrap().as_str(), "ann@example.com");
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.io",
            "ann@x",
            "a b@x.io",
            "a@@x.io",
            "a@x..io",
            "a@.x.io",
            " a@x.io",
            "a@x.io\u{a0}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(Email::parse(&format!("{}@x.io", "é".repeat(249))).is_ok());
        assert!(Email::parse(&format!("{}@x.io", "é".repeat(250))).is_err());
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("eight888".into()).is_ok());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert!(Password::parse("é".repeat(1024)).is_ok());
    }
}
