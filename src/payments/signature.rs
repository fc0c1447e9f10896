//! Webhook signatures: `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
//! The timestamp is signed too, so an old callback cannot be replayed with a fresh `t`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far `t` may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature header is missing")]
    Missing,
    #[error("the X-Signature header is malformed")]
    Malformed,
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

/// Checks a header against the raw body; any `v1` that matches is accepted (key rotation).
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => candidates.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    // verify_slice compares in constant time.
    if candidates.iter().any(|c| mac(secret, t, body).verify_slice(c).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
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
        // A fresh timestamp on an old signature does not verify.
        let forged = h.replace("t=1000", "t=2000");
        assert_eq!(verify(KEY, Some(&forged), b"x", 2_000), Err(SignatureError::Mismatch));
    }
}
