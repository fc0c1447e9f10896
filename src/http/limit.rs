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
//! `0` turns a limit off.

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
use uuid::Uuid;

use super::{AppState, Error};
use crate::config::Config;

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

/// Counts one request of `key`; over the limit, the 429 to answer.
fn check<K: Hash + Eq + Clone>(buckets: &Option<Buckets<K>>, key: &K, what: &'static str) -> Result<(), Error> {
    let Some(b) = buckets else { return Ok(()) };
    b.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        metrics::counter!("boxoffice_rate_limited_total", "limit" => what).increment(1);
        Error::RateLimited {
            limit: what,
            retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
        }
    })
}

pub struct Limits {
    general: Option<Buckets<Client>>,
    webhook: Option<Buckets<IpAddr>>,
    auth_peer: Option<Buckets<IpAddr>>,
    auth_account: Option<Buckets<String>>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            general: buckets(per_second(config.rate_limit_per_sec)),
            webhook: buckets(per_second(config.webhook_rate_limit_per_sec)),
            auth_peer: buckets(per_minute(config.auth_rate_limit_per_min)),
            auth_account: buckets(per_minute(config.auth_account_rate_limit_per_min)),
        }
    }

    /// One login or registration attempt from `peer` for `account` (a normalised e-mail).
    /// The address is counted first, so one address cannot lock many accounts out quickly.
    pub fn auth_attempt(&self, peer: Option<IpAddr>, account: &str) -> Result<(), Error> {
        if let Some(peer) = peer {
            check(&self.auth_peer, &peer, "auth_address")?;
        }
        check(&self.auth_account, &account.to_owned(), "auth_account")
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
            Some(ip) => check(&limits.webhook, &ip, "webhook"),
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
                Some(client) => check(&limits.general, &client, "general"),
                None => Ok(()),
            }
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
