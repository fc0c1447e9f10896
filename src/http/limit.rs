//! Rate limits, each keyed per client, over the limit `429 rate_limited` with `Retry-After`:
//!
//! - every route (`RATE_LIMIT_PER_SEC`): the user of a valid bearer token, else the peer
//!   address; health, readiness, metrics and the webhook are not counted here;
//! - the payment webhook (`WEBHOOK_RATE_LIMIT_PER_SEC`), per peer address: it is
//!   unauthenticated until its signature is checked, and checking costs a MAC over the body;
//! - login and registration (`AUTH_RATE_LIMIT_PER_MIN` per peer address and
//!   `AUTH_ACCOUNT_RATE_LIMIT_PER_MIN` per e-mail address): each attempt costs a password
//!   hash, and these are what credential stuffing and mass sign-up hammer.
//!
//! `0` turns a limit off. With `REDIS_URL` the limits are kept in Redis (GCRA, see
//! `shared::limiter`) and hold across all nodes; without it, or while Redis is down, each
//! process counts on its own.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{AppState, Error};
use crate::config::Config;
use crate::shared::{Gcra, SharedLimiter};

#[derive(Clone, Hash, PartialEq, Eq, Debug)]
enum Client {
    User(Uuid),
    Peer(IpAddr),
}

type Buckets<K> = Arc<DefaultKeyedRateLimiter<K>>;

/// A keyed limiter that forgets idle clients every minute, so its table does not grow without
/// bound. `None` when `quota` is.
fn buckets<K>(quota: Option<Quota>) -> Option<Buckets<K>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    let limiter = Arc::new(RateLimiter::keyed(quota?));
    let weak = Arc::downgrade(&limiter);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            let Some(l) = weak.upgrade() else { return };
            l.retain_recent();
            l.shrink_to_fit();
        }
    });
    Some(limiter)
}

/// `n` per second with bursts of twice that.
fn per_second(n: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(n)?;
    Some(Quota::per_second(rate).allow_burst(NonZeroU32::new(n.saturating_mul(2)).unwrap_or(rate)))
}

/// `n` per minute, all of which may come at once.
fn per_minute(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_minute)
}

/// One of the limits: its name (the metric label and part of the Redis key), its rate in
/// Redis, and the local limiter used without Redis.
struct Limit<K: Hash + Eq + Clone> {
    name: &'static str,
    rate: Gcra,
    local: Buckets<K>,
}

fn new_limit<K>(name: &'static str, quota: Option<Quota>, rate: Option<Gcra>) -> Option<Limit<K>>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    Some(Limit { name, rate: rate?, local: buckets(quota)? })
}

/// Counts one request of `key` (`shared_key` names it in Redis); over the limit, the 429 to
/// answer. Redis decides when it can (the limit then holds across all nodes), else this
/// process's limiter does.
async fn check<K: Hash + Eq + Clone>(
    shared: &SharedLimiter,
    limit: &Option<Limit<K>>,
    key: &K,
    shared_key: impl FnOnce() -> String,
) -> Result<(), Error> {
    let Some(l) = limit else { return Ok(()) };
    let verdict = match shared.check(l.name, &shared_key(), l.rate).await {
        Some(v) => v,
        None => l.local.check_key(key).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
    };
    verdict.map_err(|wait| {
        metrics::counter!("boxoffice_rate_limited_total", "limit" => l.name).increment(1);
        Error::RateLimited {
            limit: l.name,
            retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
        }
    })
}

impl Client {
    fn shared_key(&self) -> String {
        match self {
            Client::User(u) => format!("u:{u}"),
            Client::Peer(ip) => format!("a:{ip}"),
        }
    }
}

pub struct Limits {
    shared: SharedLimiter,
    general: Option<Limit<Client>>,
    webhook: Option<Limit<IpAddr>>,
    auth_peer: Option<Limit<IpAddr>>,
    auth_account: Option<Limit<String>>,
}

impl Limits {
    pub fn new(config: &Config, shared: SharedLimiter) -> Self {
        let per_sec = |n| (per_second(n), Gcra::per_second_burst_double(n));
        let per_min = |n| (per_minute(n), Gcra::per_minute(n));
        let (q, r) = per_sec(config.rate_limit_per_sec);
        let general = new_limit("general", q, r);
        let (q, r) = per_sec(config.webhook_rate_limit_per_sec);
        let webhook = new_limit("webhook", q, r);
        let (q, r) = per_min(config.auth_rate_limit_per_min);
        let auth_peer = new_limit("auth_address", q, r);
        let (q, r) = per_min(config.auth_account_rate_limit_per_min);
        let auth_account = new_limit("auth_account", q, r);
        Self { shared, general, webhook, auth_peer, auth_account }
    }

    /// One login or registration attempt from `peer` for `account` (a normalised e-mail).
    /// The address is counted first, so one address cannot lock many accounts out quickly.
    pub async fn auth_attempt(&self, peer: Option<IpAddr>, account: &str) -> Result<(), Error> {
        if let Some(peer) = peer {
            check(&self.shared, &self.auth_peer, &peer, || format!("a:{peer}")).await?;
        }
        // Hashed: the e-mail addresses of the accounts do not travel to Redis.
        check(&self.shared, &self.auth_account, &account.to_owned(), || {
            format!("e:{}", hex::encode(Sha256::digest(account.as_bytes())))
        })
        .await
    }
}

fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &state.limits;
    // A write forwarded by another node was counted there already.
    if state.cluster.origin(req.headers()) == crate::cluster::Origin::TrustedNode {
        return next.run(req).await;
    }
    let verdict = match req.uri().path() {
        "/healthz" | "/readyz" | "/metrics" => Ok(()),
        // The provider calls from a few addresses of its own; an attacker's address runs dry
        // without slowing the provider's.
        "/api/v1/payments/webhook" => match peer(&req) {
            Some(ip) => check(&limits.shared, &limits.webhook, &ip, || format!("a:{ip}")).await,
            None => Ok(()),
        },
        _ => {
            let user = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| state.keys.verify(t.trim()).ok())
                .map(|p| Client::User(p.user_id.0));
            match user.or(peer(&req).map(Client::Peer)) {
                Some(client) => check(&limits.shared, &limits.general, &client, || client.shared_key()).await,
                None => Ok(()),
            }
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
