//! Credentials and tokens: argon2id password hashes (bcrypt hashes of imported users verify
//! too), HS256 access tokens, and opaque rotating refresh tokens stored only as SHA-256 hashes.
//! Hashing runs on the blocking pool so it never stalls the async workers.

use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::ids::UserId;
use crate::domain::user::Role;

pub const ISSUER: &str = "boxoffice";
pub const AUDIENCE: &str = "boxoffice-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenKeys {
    /// Signs with the bytes of `secret` as given (not base64-decoded), as the OpenAPI document describes.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn issue_access(&self, user: UserId, role: Role) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.0,
            role: role.as_str().into(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    /// Verifies signature, algorithm, expiry, issuer and audience. The error says which check
    /// failed, for the problem's `detail`.
    pub fn verify(&self, token: &str) -> Result<Principal, &'static str> {
        use jsonwebtoken::errors::ErrorKind;
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "token has expired",
                ErrorKind::InvalidSignature => "token signature is invalid",
                ErrorKind::InvalidAudience => "token audience is invalid",
                ErrorKind::InvalidIssuer => "token issuer is invalid",
                ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                _ => "token is malformed",
            })?;
        let role = Role::parse(&data.claims.role).ok_or("token role is invalid")?;
        Ok(Principal { user_id: UserId(data.claims.sub), role })
    }
}

/// A random 32-byte secret, for development defaults.
pub fn random_secret() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b
}

/// A new opaque refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Checks a password against an argon2 (PHC string) or bcrypt (`$2a$`/`$2b$`/`$2y$`) hash.
/// With no hash (unknown user) it still spends the same effort, so timing does not reveal
/// which e-mail addresses exist.
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let dummy = DUMMY.get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(b"not a password", &salt).expect("hash").to_string()
        });
        let (hash, known) = match &hash {
            Some(h) => (h.as_str(), true),
            None => (dummy.as_str(), false),
        };
        let ok = if hash.starts_with("$2") {
            bcrypt::verify(&password, hash).unwrap_or(false)
        } else {
            PasswordHash::new(hash)
                .map(|p| Argon2::default().verify_password(password.as_bytes(), &p).is_ok())
                .unwrap_or(false)
        };
        ok && known
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &[u8]) -> TokenKeys {
        TokenKeys::new(secret, Duration::from_secs(60), Duration::from_secs(600))
    }

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let k = keys(b"a secret that is long enough for tests");
        let user = UserId::new();
        let t = k.issue_access(user, Role::Admin).unwrap();
        let p = k.verify(&t).unwrap();
        assert_eq!(p.user_id, user);
        assert!(p.is_admin());
        let other = keys(b"another secret entirely, also long");
        assert_eq!(other.verify(&t).unwrap_err(), "token signature is invalid");
        assert!(k.verify("not.a.token").is_err());
    }

    #[tokio::test]
    async fn argon2_and_bcrypt_hashes_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(h)).await);
        let b = bcrypt::hash("imported pw", 4).unwrap();
        assert!(verify_password("imported pw".into(), Some(b.clone())).await);
        assert!(!verify_password("other".into(), Some(b)).await);
        assert!(!verify_password("anything".into(), None).await);
    }
}
