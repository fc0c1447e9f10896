//! Idempotent requests: the client's `Idempotency-Key` and the fingerprint of what a request
//! asks for, so a retry with the same key gets the first answer and the same key with another
//! request is refused.

use sha2::{Digest, Sha256};

pub const MAX_KEY_LEN: usize = 255;

/// A client's idempotency key: 1 to 255 visible ASCII characters (surrounding blanks trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        let visible = raw.iter().all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t');
        let text = std::str::from_utf8(raw).ok().filter(|_| visible);
        let key = text.ok_or_else(|| "Idempotency-Key must be visible ASCII".to_owned())?.trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"));
        }
        Ok(Self(key.to_owned()))
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
    }

    #[test]
    fn hashes_tell_requests_apart() {
        assert_eq!(request_hash(&["e", "quantity", "2"]), request_hash(&["e", "quantity", "2"]));
        assert_ne!(request_hash(&["e", "quantity", "2"]), request_hash(&["e", "quantity", "3"]));
        assert_ne!(request_hash(&["a|b"]), request_hash(&["a", "b"]));
    }
}
