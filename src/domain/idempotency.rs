//! Idempotent requests: the client's `Idempotency-Key` and the fingerprint of what a request
//! asks for, so a retry with the same key gets the first answer and the same key with another
//! request is refused.

use sha2::{Digest, Sha256};

pub const MAX_KEY_LEN: usize = 255;

/// The key rule as the OpenAPI document states it (the same rule as [`IdempotencyKey::parse`]).
pub const KEY_PATTERN: &str = "^[\\x21-\\x7E]{1,255}$";

/// A client's idempotency key: 1 to 255 visible ASCII characters (`!` to `~`; no spaces). The
/// blanks HTTP allows around a header value are not part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let key = raw.trim_ascii();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"));
        }
        if !key.iter().all(u8::is_ascii_graphic) {
            return Err("Idempotency-Key must be visible ASCII characters (no spaces)".to_owned());
        }
        // Visible ASCII is UTF-8.
        Ok(Self(String::from_utf8_lossy(key).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// SHA-256 (hex) of a request's canonical parts, computed once per request.
pub fn request_hash(parts: &[&str]) -> String {
    // A separator that cannot occur in ids, numbers or seat ids keeps ["a|b"] apart from ["a", "b"].
    hex::encode(Sha256::digest(parts.join("\u{1f}").as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert_eq!(IdempotencyKey::parse(b"  k-1 ").unwrap().as_str(), "k-1");
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(b"   ").is_err());
        assert!(IdempotencyKey::parse(&[b'a'; 256]).is_err());
        assert!(IdempotencyKey::parse(&[b'a'; 255]).is_ok());
        assert!(IdempotencyKey::parse("clé".as_bytes()).is_err());
        assert!(IdempotencyKey::parse(b"a\x01b").is_err());
        assert!(IdempotencyKey::parse(b"a b").is_err());
    }

    #[test]
    fn the_documented_pattern_is_the_rule() {
        assert_eq!(KEY_PATTERN, r"^[\x21-\x7E]{1,255}$");
        assert_eq!(MAX_KEY_LEN, 255);
        for b in 0u8..=255 {
            assert_eq!(IdempotencyKey::parse(&[b'k', b, b'k']).is_ok(), (0x21..=0x7e).contains(&b), "byte {b:#x}");
        }
    }

    #[test]
    fn hashes_tell_requests_apart() {
        assert_eq!(request_hash(&["e", "quantity", "2"]), request_hash(&["e", "quantity", "2"]));
        assert_ne!(request_hash(&["e", "quantity", "2"]), request_hash(&["e", "quantity", "3"]));
        assert_ne!(request_hash(&["a|b"]), request_hash(&["a", "b"]));
    }
}
