//! Per-client rate limiting (`RATE_LIMIT_PER_SEC`; `0` turns it off). A client is the user of a
//! valid bearer token, else the peer address. Over the limit: `429 rate_limited` with
//! `Retry-After`. Health, readiness and metrics are never limited.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::AppState;
use super::error::problem;

#[derive(Clone, Hash, PartialEq, Eq, Debug)]
enum Client {
    User(Uuid),
    Peer(IpAddr),
}

pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<Client>,
}

impl Limiter {
    /// `per_sec` steady rate with bursts of twice that. `None` when limiting is off.
    pub fn new(per_sec: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_sec)?;
        let burst = NonZeroU32::new(per_sec.saturating_mul(2)).unwrap_or(rate);
        let limiter = Arc::new(Self { buckets: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)) });
        // Forget idle clients so the table does not grow without bound.
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                let Some(l) = weak.upgrade() else { return };
                l.buckets.retain_recent();
                l.buckets.shrink_to_fit();
            }
        });
        Some(limiter)
    }
}

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(limiter) = state.limiter.as_ref() else { return next.run(req).await };
    // The provider's webhook is authenticated by its signature, and throttling it would only
    // delay verdicts (it comes from one address for every customer).
    if matches!(req.uri().path(), "/healthz" | "/readyz" | "/metrics" | "/api/v1/payments/webhook") {
        return next.run(req).await;
    }
    let user = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.keys.verify(t.trim()).ok())
        .map(|p| Client::User(p.user_id.0));
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| Client::Peer(c.0.ip()));
    let Some(client) = user.or(peer) else { return next.run(req).await };
    match limiter.buckets.check_key(&client) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            metrics::counter!("boxoffice_rate_limited_total").increment(1);
            let mut resp = problem(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                "too many requests from this client; slow down",
                Default::default(),
            );
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            resp
        }
    }
}
