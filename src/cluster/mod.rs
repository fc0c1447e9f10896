//! Several engine processes on one PostgreSQL behaving as one service. Each node registers its
//! internal address (`NODE_ADDR`) and a heartbeat; each event has at most one owner, whose lease
//! (`EVENT_LEASE_SECS`) its actor renews (see `persistence::cluster`). A write for an event that
//! another live node owns is forwarded to that node once (`route`, `forward`); if the owner does
//! not answer and its lease ran out, this node takes the event over (`after_failed_forward`).
//! Forwarded requests carry `CLUSTER_SECRET`: a forward without it is refused, and a trusted
//! one is never forwarded again.

pub mod addr;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::actors::Registry;
use crate::clock::Clock;
use crate::domain::ids::EventId;
use crate::persistence::{LeaseHolder, Store};

/// Names the node that forwarded a request; present only on forwarded requests.
pub const FORWARDED_BY: HeaderName = HeaderName::from_static("x-boxoffice-forwarded-by");
/// The shared secret that makes a forwarded request trusted.
pub const CLUSTER_KEY: HeaderName = HeaderName::from_static("x-boxoffice-cluster-key");

/// Headers a forward keeps: who asks (their token), for what (body type), which retry this is
/// (`Idempotency-Key`), the request id for the logs, and the client's address.
const KEPT: [HeaderName; 6] = [
    http::header::AUTHORIZATION,
    http::header::CONTENT_TYPE,
    http::header::ACCEPT,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("x-boxoffice-session"),
];

#[derive(Clone)]
pub struct ClusterSettings {
    pub node_id: String,
    /// This node's `NODE_ADDR`.
    pub addr: String,
    pub secret: Option<String>,
    pub lease: Duration,
    pub forward_timeout: Duration,
}

/// Where a write for an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node owns the event, or may take it.
    Local,
    /// Another live node owns it: forward the request there.
    Forward { node: String, addr: String },
    /// Another node holds the lease but cannot be reached (or forwarding is off): answer 503.
    Unavailable { retry_after: Duration, reason: String },
}

/// Whether a request came from another node of this cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    /// Forwarded by a node that knows the secret: handled here, never forwarded again.
    TrustedNode,
    /// Claims to be forwarded but lacks the secret.
    Refused,
}

/// A request to send to the owner.
pub struct Outbound {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/events/…/bookings`.
    pub path: String,
    pub headers: HeaderMap,
    /// The client's address as this node determined it.
    pub client: Option<std::net::IpAddr>,
    pub body: Bytes,
}

/// The owner's answer, passed back as is.
pub struct Inbound {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
#[error("the owner did not answer: {0}")]
pub struct Unanswered(String);

/// A lease holder as read at a moment.
type Seen = Option<(Option<LeaseHolder>, std::time::Instant)>;

struct Inner {
    settings: ClusterSettings,
    store: Store,
    registry: Registry,
    clock: Clock,
    client: reqwest::Client,
    /// Lease holders read recently, one look-up at a time per event: a crowd arriving for an
    /// event this node does not run asks the store once, not once per request.
    holders: dashmap::DashMap<EventId, Arc<tokio::sync::Mutex<Seen>>>,
}

/// How long a lease holder read from the store is reused for routing.
const HOLDER_TTL: Duration = Duration::from_millis(250);

/// Cheap to clone.
#[derive(Clone)]
pub struct Cluster(Arc<Inner>);

fn secs_until(until: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> Duration {
    (until - now).to_std().unwrap_or_default()
}

impl Cluster {
    pub fn new(settings: ClusterSettings, store: Store, registry: Registry) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.forward_timeout)
            .connect_timeout(settings.forward_timeout.min(Duration::from_secs(1)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let clock = registry.settings().clock.clone();
        Ok(Self(Arc::new(Inner { settings, store, registry, clock, client, holders: dashmap::DashMap::new() })))
    }

    pub fn node_id(&self) -> &str {
        &self.0.settings.node_id
    }

    /// Registers this node, then keeps its heartbeat and takes over the held events of nodes
    /// whose leases ran out, every third of a lease.
    pub fn spawn_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let every = (me.0.settings.lease / 3).max(Duration::from_millis(100));
            loop {
                let now = me.0.clock.now();
                if let Err(e) = me.0.store.register_node(&me.0.settings.node_id, &me.0.settings.addr, now).await {
                    tracing::warn!(error = %e, "node heartbeat not written");
                }
                me.0.holders.retain(|_, seen| {
                    seen.try_lock().map(|s| s.as_ref().is_some_and(|(_, at)| at.elapsed() < HOLDER_TTL)).unwrap_or(true)
                });
                match me.0.registry.recover().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "took over events with holds whose owner is gone"),
                    Err(e) => tracing::warn!(error = %e, "could not look for events without an owner"),
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Whether the request was forwarded by a node of this cluster (compares the secret in
    /// constant time).
    pub fn origin(&self, headers: &HeaderMap) -> Origin {
        if !headers.contains_key(FORWARDED_BY) {
            return Origin::Client;
        }
        let (Some(secret), Some(given)) = (&self.0.settings.secret, headers.get(CLUSTER_KEY)) else {
            return Origin::Refused;
        };
        let (a, b) = (secret.as_bytes(), given.as_bytes());
        let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same { Origin::TrustedNode } else { Origin::Refused }
    }

    /// Where a write for `event` goes: here if this node runs its actor or may take the event,
    /// else to the node whose lease is running.
    pub async fn route(&self, event: EventId) -> Route {
        if self.0.registry.runs(event) {
            return Route::Local;
        }
        let seen = self.0.holders.entry(event).or_default().clone();
        let mut seen = seen.lock().await;
        if let Some((holder, at)) = seen.as_ref()
            && at.elapsed() < HOLDER_TTL
        {
            return self.route_to(holder.clone());
        }
        let holder = match self.0.store.lease_holder(event).await {
            Ok(h) => h,
            // The store decides when the actor starts; let it answer.
            Err(_) => return Route::Local,
        };
        *seen = Some((holder.clone(), std::time::Instant::now()));
        self.route_to(holder)
    }

    fn route_to(&self, holder: Option<LeaseHolder>) -> Route {
        let now = self.0.clock.now();
        match holder {
            None => Route::Local,
            Some(h) if h.node == self.0.settings.node_id || h.lease_until <= now => Route::Local,
            Some(h) => {
                let retry_after = secs_until(h.lease_until, now);
                match (&h.addr, &self.0.settings.secret) {
                    (Some(addr), Some(_)) if *addr != self.0.settings.addr => {
                        Route::Forward { node: h.node, addr: addr.clone() }
                    }
                    _ => Route::Unavailable {
                        retry_after,
                        reason: format!("the event is served by node {} and cannot be forwarded there", h.node),
                    },
                }
            }
        }
    }

    /// After a forward to the owner failed: take the event over if its lease ran out (or it
    /// was given up), else answer 503 until it does.
    pub async fn after_failed_forward(&self, event: EventId) -> Route {
        self.0.holders.remove(&event);
        match self.0.store.lease_holder(event).await {
            Ok(holder) => match self.route_to(holder) {
                Route::Forward { node, .. } => {
                    let retry_after = match self.0.store.lease_holder(event).await {
                        Ok(Some(h)) => secs_until(h.lease_until, self.0.clock.now()),
                        _ => Duration::from_secs(1),
                    };
                    Route::Unavailable {
                        retry_after,
                        reason: format!("node {node}, which serves the event, does not answer; retry"),
                    }
                }
                other => other,
            },
            Err(e) => Route::Unavailable { retry_after: Duration::from_secs(1), reason: e.to_string() },
        }
    }

    /// Sends `req` to the owner at `addr` once, marked as forwarded, within the forward timeout.
    pub async fn forward(&self, addr: &str, req: Outbound) -> Result<Inbound, Unanswered> {
        let url = format!("{}{}", addr.trim_end_matches('/'), req.path);
        let mut headers = HeaderMap::new();
        for name in KEPT {
            for v in req.headers.get_all(&name) {
                headers.append(name.clone(), v.clone());
            }
        }
        if let Ok(v) = HeaderValue::from_str(&self.0.settings.node_id) {
            headers.insert(FORWARDED_BY, v);
        }
        if let Some(secret) = &self.0.settings.secret
            && let Ok(v) = HeaderValue::from_str(secret)
        {
            headers.insert(CLUSTER_KEY, v);
        }
        if let Some(ip) = req.client
            && let Ok(v) = HeaderValue::from_str(&ip.to_string())
        {
            headers.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        let started = std::time::Instant::now();
        let sent = self.0.client.request(req.method, &url).headers(headers).body(req.body).send().await;
        let result = match sent {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match resp.bytes().await {
                    Ok(body) => Ok(Inbound { status, headers, body }),
                    Err(e) => Err(Unanswered(e.to_string())),
                }
            }
            Err(e) => Err(Unanswered(e.to_string())),
        };
        let outcome = if result.is_ok() { "answered" } else { "failed" };
        metrics::counter!("boxoffice_forwarded_requests_total", "outcome" => outcome).increment(1);
        metrics::histogram!("boxoffice_forward_duration_seconds").record(started.elapsed().as_secs_f64());
        result
    }
}
