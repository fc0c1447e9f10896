//! Webhook signatures: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
//! The timestamp is signed too, so an old callback cannot be replayed with a fresh `t`.
//!
//! The header is unauthenticated input, so checking it costs one MAC whatever it says: it is
//! parsed and bounded first ([`Signature::parse`], no MAC), the MAC over the body is computed
//! once, and every candidate is compared with it in constant time ([`Signature::matches`]).

use hmac::digest::CtOutput;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far `t` may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Longest header accepted: `t` and a few candidates fit in a fraction of this.
pub const MAX_HEADER_BYTES: usize = 512;
/// `v1` candidates accepted (more than one only during a key rotation).
pub const MAX_CANDIDATES: usize = 4;
/// Comma-separated parts accepted in all (`t`, candidates, and a few unknown ones).
const MAX_PARTS: usize = 8;
/// Bytes of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature header is missing")]
    Missing,
    #[error("the X-Signature header is malformed")]
    Malformed,
    #[error("the X-Signature header is too long or has too many parts")]
    TooLarge,
    #[error("the signature's timestamp is more than 300 s away from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], t: i64, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("hmac takes keys of any length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header value for `body` signed at `t`.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex::encode(mac(secret, t, body).finalize().into_bytes()))
}

/// A parsed, bounded header: its timestamp and at most [`MAX_CANDIDATES`] MACs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    t: i64,
    candidates: Vec<[u8; MAC_BYTES]>,
}

impl Signature {
    /// Parses the header without touching the body; costs at most a few hundred bytes of work.
    pub fn parse(header: Option<&str>) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        if header.len() > MAX_HEADER_BYTES {
            return Err(SignatureError::TooLarge);
        }
        let mut t = None;
        let mut candidates = Vec::new();
        for (i, part) in header.split(',').enumerate() {
            if i >= MAX_PARTS {
                return Err(SignatureError::TooLarge);
            }
            let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
            match k {
                "t" => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
                "v1" => {
                    if candidates.len() == MAX_CANDIDATES {
                        return Err(SignatureError::TooLarge);
                    }
                    let mut c = [0u8; MAC_BYTES];
                    hex::decode_to_slice(v, &mut c).map_err(|_| SignatureError::Malformed)?;
                    candidates.push(c);
                }
                _ => {}
            }
        }
        let t = t.ok_or(SignatureError::Malformed)?;
        if candidates.is_empty() {
            return Err(SignatureError::Malformed);
        }
        Ok(Self { t, candidates })
    }

    /// Refuses a timestamp more than [`TOLERANCE_SECS`] away from `now` (before any MAC).
    pub fn check_fresh(&self, now: i64) -> Result<(), SignatureError> {
        if (now - self.t).abs() > TOLERANCE_SECS { Err(SignatureError::Stale) } else { Ok(()) }
    }

    /// One MAC over the body, compared with every candidate in constant time; any match
    /// verifies (key rotation). CPU-heavy for a large body: run it off the async threads.
    pub fn matches(&self, secret: &[u8], body: &[u8]) -> Result<(), SignatureError> {
        let expected = mac(secret, self.t, body).finalize();
        // Compare with all of them, not stopping at the first match, so timing says nothing.
        let any = self
            .candidates
            .iter()
            .fold(false, |found, c| found | (CtOutput::<HmacSha256>::new((*c).into()) == expected));
        if any { Ok(()) } else { Err(SignatureError::Mismatch) }
    }
}

/// Parses, checks freshness and verifies in one go (tests and small bodies).
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let sig = Signature::parse(header)?;
    sig.check_fresh(now)?;
    sig.matches(secret, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"webhook-secret";

    #[test]
    fn a_signature_verifies_and_a_changed_body_does_not() {
        let h = sign(KEY, 1_000, b"{\"a\":1}");
        assert_eq!(verify(KEY, Some(&h), b"{\"a\":1}", 1_010), Ok(()));
        assert_eq!(verify(KEY, Some(&h), b"{\"a\":2}", 1_010), Err(SignatureError::Mismatch));
        assert_eq!(verify(b"other", Some(&h), b"{\"a\":1}", 1_010), Err(SignatureError::Mismatch));
    }

    #[test]
    fn old_or_malformed_signatures_are_refused() {
        let h = sign(KEY, 1_000, b"x");
        assert_eq!(verify(KEY, Some(&h), b"x", 1_000 + TOLERANCE_SECS + 1), Err(SignatureError::Stale));
        assert_eq!(verify(KEY, None, b"x", 1_000), Err(SignatureError::Missing));
        assert_eq!(verify(KEY, Some("t=abc,v1=00"), b"x", 1_000), Err(SignatureError::Malformed));
        assert_eq!(verify(KEY, Some("t=1000"), b"x", 1_000), Err(SignatureError::Malformed));
        assert_eq!(verify(KEY, Some("v1=zz"), b"x", 1_000), Err(SignatureError::Malformed));
        // A candidate that is not a whole HMAC-SHA256 is malformed, not a mismatch.
        assert_eq!(verify(KEY, Some("t=1000,v1=00"), b"x", 1_000), Err(SignatureError::Malformed));
        // A fresh timestamp on an old signature does not verify.
        let forged = h.replace("t=1000", "t=2000");
        assert_eq!(verify(KEY, Some(&forged), b"x", 2_000), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_rotated_key_verifies_among_a_few_candidates_but_many_are_refused_unread() {
        let good = sign(KEY, 1_000, b"x");
        let mac = good.split_once(",v1=").unwrap().1;
        let zero = "0".repeat(64);
        let rotated = format!("t=1000,v1={zero},v1={mac}");
        assert_eq!(verify(KEY, Some(&rotated), b"x", 1_000), Ok(()));
        let five = format!("t=1000{}", format!(",v1={zero}").repeat(MAX_CANDIDATES + 1));
        assert_eq!(Signature::parse(Some(&five)), Err(SignatureError::TooLarge));
        let empties = format!("t=1000{}", ",v1=".repeat(10_000));
        assert_eq!(Signature::parse(Some(&empties)), Err(SignatureError::TooLarge));
        let many_short = format!("t=1000{}", ",x=1".repeat(20));
        assert_eq!(Signature::parse(Some(&many_short)), Err(SignatureError::TooLarge));
    }
}
