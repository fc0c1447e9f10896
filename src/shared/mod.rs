//! What the nodes of one deployment share through Redis (`REDIS_URL`): rate limits
//! ([`limiter`]), revoked sessions ([`revocation`]), the invalidation of each node's event
//! cache ([`cache`]), live availability and booking status across nodes ([`live`]) and a typed
//! pub/sub ([`fanout`]) under the last three. Each part
//! has an in-process fallback, used when `REDIS_URL` is unset and while Redis does not answer:
//! requests are never failed because Redis is away. A monitor pings Redis twice a second, so
//! the parts stop trying it as soon as it is gone (no request waits for a dead server) and use
//! it again by themselves once it answers.

pub mod cache;
pub mod fanout;
pub mod limiter;
pub mod live;
pub mod revocation;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Config;
pub use cache::EventCache;
pub use fanout::{Channel, Delivery, Fanout, Subscription};
pub use limiter::{Gcra, SharedLimiter};
pub use revocation::Revocations;

/// How often the monitor asks Redis whether it is there.
const PING_EVERY: Duration = Duration::from_millis(500);
/// Upper bound of one Redis command: past it the request goes on with the local fallback.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The parts of the engine that may use the fallback instead of Redis (a metric label each).
pub const PARTS: [&str; 3] = ["rate_limit", "revocation", "pubsub"];

/// A Redis connection shared by the engine's parts, with its up/down state.
#[derive(Clone)]
pub struct Redis(Arc<RedisInner>);

struct RedisInner {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    up: AtomicBool,
    /// Where it points, without credentials (for logs and `/readyz`).
    display: String,
}

impl Redis {
    /// Builds the client (`redis://` or `rediss://`; `ca_file` is the PEM of the CA that signs
    /// the server's certificate, else the webpki roots are trusted). Connects lazily: an engine
    /// starts while Redis is down and uses it once it answers.
    pub fn new(url: &str, ca_file: Option<&str>, prefix: &str) -> anyhow::Result<Self> {
        let client = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("REDIS_CA_FILE: cannot read {path}: {e}"))?;
                redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls: None, root_cert: Some(pem) })
            }
            None => redis::Client::open(url),
        }
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
        let info = client.get_connection_info();
        let display = format!("{}{}", if url.starts_with("rediss://") { "rediss://" } else { "redis://" }, info.addr());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        Ok(Self(Arc::new(RedisInner { client, conn, prefix: prefix.to_owned(), up: AtomicBool::new(false), display })))
    }

    /// `true` while the last ping or command succeeded.
    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::Relaxed)
    }

    /// A key (or channel) of this deployment: `PREFIX:rest`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.0.prefix)
    }

    pub fn conn(&self) -> ConnectionManager {
        self.0.conn.clone()
    }

    pub fn client(&self) -> &redis::Client {
        &self.0.client
    }

    pub fn display(&self) -> &str {
        &self.0.display
    }

    /// A command of `part` failed: Redis counts as down until the monitor reaches it again.
    pub fn failed(&self, part: &'static str, error: &redis::RedisError) {
        fallback_used(part);
        self.set_up(false, Some(error));
    }

    fn set_up(&self, up: bool, error: Option<&redis::RedisError>) {
        metrics::gauge!("boxoffice_redis_up").set(if up { 1.0 } else { 0.0 });
        // Logged on the change only, not per request.
        if self.0.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::info!(redis = %self.0.display, "redis reachable: shared rate limits, revocations and pub/sub in use");
            } else {
                tracing::warn!(redis = %self.0.display, error = error.map(|e| e.to_string()).unwrap_or_default(),
                    "redis unreachable: local rate limits and revocations in use until it returns");
            }
        }
    }

    async fn ping(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.conn();
        let r: Result<String, _> =
            match tokio::time::timeout(RESPONSE_TIMEOUT * 2, redis::cmd("PING").query_async(&mut conn)).await {
                Ok(r) => r,
                Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "ping timed out"))),
            };
        r.map(|_| ())
    }

    /// Pings until the process ends, keeping the up/down state (and its gauge) current.
    fn spawn_monitor(&self) -> tokio::task::JoinHandle<()> {
        let redis = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PING_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                match redis.ping().await {
                    Ok(()) => redis.set_up(true, None),
                    Err(e) => redis.set_up(false, Some(&e)),
                }
            }
        })
    }
}

/// Counts one use of the in-process fallback by `part` (Redis configured but down).
pub fn fallback_used(part: &'static str) {
    metrics::counter!("boxoffice_redis_fallbacks_total", "part" => part).increment(1);
}

/// Redis (if configured) and the parts built on it, started once per process.
#[derive(Clone)]
pub struct SharedState {
    pub redis: Option<Redis>,
    pub fanout: Fanout,
    pub limiter: SharedLimiter,
    pub revocations: Revocations,
    /// The event detail's unchanging fields, invalidated on every node on change.
    pub events: EventCache,
    tasks: Arc<Vec<tokio::task::JoinHandle<()>>>,
}

impl SharedState {
    /// From `REDIS_URL` (unset: everything in process), `REDIS_CA_FILE` and `REDIS_PREFIX`;
    /// with Redis, `registry`'s owners' availability and status changes reach the other nodes.
    pub async fn start(config: &Config, registry: &crate::actors::Registry) -> anyhow::Result<Self> {
        let redis = match &config.redis_url {
            Some(url) => Some(Redis::new(url, config.redis_ca_file.as_deref(), &config.redis_prefix)?),
            None => None,
        };
        metrics::gauge!("boxoffice_redis_configured").set(if redis.is_some() { 1.0 } else { 0.0 });
        let mut tasks = Vec::new();
        if let Some(r) = &redis {
            // The first verdict before serving, so `/readyz` and the limits start from the truth.
            match r.ping().await {
                Ok(()) => r.set_up(true, None),
                Err(e) => r.set_up(false, Some(&e)),
            }
            tasks.push(r.spawn_monitor());
        }
        let (fanout, pump) = Fanout::start(redis.clone());
        tasks.extend(pump);
        if redis.is_some() {
            tasks.extend(live::spawn(fanout.clone(), registry.hub().clone(), registry.status_hub().clone()));
        }
        let revocations =
            Revocations::shared(redis.clone(), fanout.clone(), Duration::from_secs(config.access_token_ttl_secs));
        tasks.push(revocations.spawn_listener());
        let limiter = SharedLimiter::new(redis.clone());
        let events = EventCache::new(fanout.clone(), Duration::from_secs(config.event_cache_ttl_secs));
        tasks.push(events.spawn_listener());
        tracing::info!(redis = redis.as_ref().map(|r| r.display()).unwrap_or("off"), "shared state ready");
        Ok(Self { redis, fanout, limiter, revocations, events, tasks: Arc::new(tasks) })
    }

    /// For `/readyz`: `off` (REDIS_URL unset), `up`, or `down` (local fallbacks in use).
    pub fn status(&self) -> &'static str {
        match &self.redis {
            None => "off",
            Some(r) if r.is_up() => "up",
            Some(_) => "down",
        }
    }

    /// Stops the monitor and the pub/sub pump.
    pub fn stop(&self) {
        for t in self.tasks.iter() {
            t.abort();
        }
    }
}
