//! Credentials and tokens: argon2id password hashes (bcrypt hashes of imported users verify
//! too), HS256 access tokens, and opaque rotating refresh tokens stored only as SHA-256 hashes.
//! Hashing runs on the blocking pool, a bounded number at once, so it never stalls the async
//! workers nor multiplies the process's memory.

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

use crate::cpu::{Busy, CpuPool};
use crate::domain::ids::UserId;
use crate::domain::user::Role;
use crate::shared::Revocations;

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
    /// The session (refresh-token family) the token was issued for: revoking the session
    /// revokes the token. Tokens from before sessions were named have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
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
    /// Sessions whose access tokens are refused before they expire.
    revocations: Revocations,
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
            revocations: Revocations::local(access_ttl),
        }
    }

    /// Checks revocations against `revocations` (shared by the nodes) instead of a list of
    /// this process's own.
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = revocations;
        self
    }

    /// Ends the access tokens of `session` now, on every node.
    pub async fn revoke_session(&self, session: Uuid) {
        self.revocations.revoke(session).await;
    }

    pub fn issue_access(&self, user: UserId, role: Role, session: Uuid) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.0,
            role: role.as_str().into(),
            iat: now,
            exp: now + self.access_ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sid: Some(session),
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
        if data.claims.sid.is_some_and(|s| self.revocations.is_revoked(s)) {
            return Err("token was revoked (its session ended)");
        }
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

fn hash_now(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Checks a password against an argon2 (PHC string) or bcrypt (`$2a$`/`$2b$`/`$2y$`) hash.
/// With no hash (unknown user) it still spends the same effort, so timing does not reveal
/// which e-mail addresses exist.
fn verify_now(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_now("not a password").expect("hash"));
    let (hash, known) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = if hash.starts_with("$2") {
        bcrypt::verify(password, hash).unwrap_or(false)
    } else {
        PasswordHash::new(hash)
            .map(|p| Argon2::default().verify_password(password.as_bytes(), &p).is_ok())
            .unwrap_or(false)
    };
    ok && known
}

/// Hashes on the blocking pool, unbounded: for start-up (the admin bootstrap) and tools.
/// Requests go through [`Passwords`].
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_now(&password)).await?
}

/// Checks a password on the blocking pool, unbounded: for start-up (the admin bootstrap).
pub async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_now(&password, hash.as_deref())).await.unwrap_or(false)
}

/// Password hashing for requests, bounded: each argon2 run takes about 19 MiB and tens of
/// milliseconds of a core, so at most `concurrency` run at once (`PASSWORD_HASH_CONCURRENCY`)
/// and a caller waits at most `PASSWORD_HASH_WAIT_MS` for a turn, then hears [`Busy`].
/// Unknown e-mail addresses take the same path and the same time as known ones.
#[derive(Clone)]
pub struct Passwords {
    pool: CpuPool,
}

impl Passwords {
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        Self { pool: CpuPool::new("password_hash", concurrency, wait) }
    }

    pub async fn hash(&self, password: String) -> Result<anyhow::Result<String>, Busy> {
        self.pool.run(move || hash_now(&password)).await
    }

    /// `true` only for a known account whose hash matches.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, Busy> {
        self.pool.run(move || verify_now(&password, hash.as_deref())).await
    }
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
        let t = k.issue_access(user, Role::Admin, Uuid::now_v7()).unwrap();
        let p = k.verify(&t).unwrap();
        assert_eq!(p.user_id, user);
        assert!(p.is_admin());
        let other = keys(b"another secret entirely, also long");
        assert_eq!(other.verify(&t).unwrap_err(), "token signature is invalid");
        assert!(k.verify("not.a.token").is_err());
    }

    #[tokio::test]
    async fn a_revoked_session_s_tokens_fail_and_other_sessions_work() {
        let k = keys(b"a secret that is long enough for tests");
        let user = UserId::new();
        let (ended, open) = (Uuid::now_v7(), Uuid::now_v7());
        let t1 = k.issue_access(user, Role::User, ended).unwrap();
        let t2 = k.issue_access(user, Role::User, open).unwrap();
        k.revoke_session(ended).await;
        assert_eq!(k.verify(&t1).unwrap_err(), "token was revoked (its session ended)");
        assert!(k.verify(&t2).is_ok());
    }

    #[tokio::test]
    async fn argon2_and_bcrypt_hashes_verify() {
        let pw = Passwords::new(1, Duration::from_secs(30));
        let h = pw.hash("correct horse".into()).await.unwrap().unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(pw.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!pw.verify("wrong horse".into(), Some(h)).await.unwrap());
        let b = bcrypt::hash("imported pw", 4).unwrap();
        assert!(pw.verify("imported pw".into(), Some(b.clone())).await.unwrap());
        assert!(!pw.verify("other".into(), Some(b)).await.unwrap());
        assert!(!pw.verify("anything".into(), None).await.unwrap());
        assert!(hash_password("x".repeat(8)).await.unwrap().starts_with("$argon2id$"));
    }
}
