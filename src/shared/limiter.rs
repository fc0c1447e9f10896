//! GCRA rate limits kept in Redis, so N nodes give one client the limit once, not N times.
//! One script per check reads and moves the client's "theoretical arrival time" atomically,
//! on Redis's own clock (the nodes' clocks may disagree). The key expires when the client's
//! bucket is full again, so idle clients cost nothing.

use std::sync::Arc;
use std::time::Duration;

use super::Redis;

/// Refuses with the microseconds to wait, else moves the arrival time on by one interval.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.floor((next_tat - now) / 1000) + 1)
return 0
"#;

/// A rate: one request per `interval`, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval: Duration,
    pub burst: u32,
}

impl Gcra {
    /// `n` per second with bursts of twice that (as the local limiter's quota).
    pub fn per_second_burst_double(n: u32) -> Option<Self> {
        (n > 0).then(|| Self { interval: Duration::from_secs(1) / n, burst: n.saturating_mul(2) })
    }

    /// `n` per minute, all of which may come at once.
    pub fn per_minute(n: u32) -> Option<Self> {
        (n > 0).then(|| Self { interval: Duration::from_secs(60) / n, burst: n })
    }

    fn tolerance(&self) -> Duration {
        self.interval * self.burst.saturating_sub(1)
    }
}

/// The shared limiter; without Redis (or while it is down) every check says "ask locally".
#[derive(Clone)]
pub struct SharedLimiter {
    redis: Option<Redis>,
    script: Arc<redis::Script>,
}

impl SharedLimiter {
    pub fn new(redis: Option<Redis>) -> Self {
        Self { redis, script: Arc::new(redis::Script::new(GCRA)) }
    }

    /// One request of `client` against the limit `name`: `Some(Ok)` allowed, `Some(Err(wait))`
    /// refused, `None` when Redis cannot decide (unset or down: use the local limiter).
    pub async fn check(&self, name: &str, client: &str, rate: Gcra) -> Option<Result<(), Duration>> {
        let redis = self.redis.as_ref()?;
        if !redis.is_up() {
            super::fallback_used("rate_limit");
            return None;
        }
        let mut conn = redis.conn();
        let wait: Result<i64, _> = self
            .script
            .key(redis.key(&format!("rl:{name}:{client}")))
            .arg(rate.interval.as_micros() as u64)
            .arg(rate.tolerance().as_micros() as u64)
            .invoke_async(&mut conn)
            .await;
        match wait {
            Ok(0) => Some(Ok(())),
            Ok(us) => Some(Err(Duration::from_micros(us.max(1) as u64))),
            Err(e) => {
                redis.failed("rate_limit", &e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_match_the_local_quotas() {
        let r = Gcra::per_second_burst_double(100).unwrap();
        assert_eq!((r.interval, r.burst), (Duration::from_millis(10), 200));
        assert_eq!(r.tolerance(), Duration::from_millis(1990));
        let m = Gcra::per_minute(30).unwrap();
        assert_eq!((m.interval, m.burst), (Duration::from_secs(2), 30));
        assert!(Gcra::per_minute(0).is_none() && Gcra::per_second_burst_double(0).is_none());
    }

    /// Against the shared Redis of the test environment (`TEST_REDIS_URL`), under a key prefix
    /// of its own: a burst is allowed exactly, the next request is refused with a wait.
    #[tokio::test]
    async fn the_script_allows_the_burst_then_refuses() {
        let url = std::env::var("TEST_REDIS_URL").expect("TEST_REDIS_URL must point at a Redis for the tests");
        let prefix = format!("test-{}", uuid::Uuid::new_v4());
        let redis = Redis::new(&url, None, &prefix).unwrap();
        redis.ping().await.expect("redis answers");
        redis.set_up(true, None);
        let limiter = SharedLimiter::new(Some(redis));
        let rate = Gcra::per_minute(5).unwrap();
        for i in 0..5 {
            assert_eq!(limiter.check("t", "c", rate).await, Some(Ok(())), "request {i} of the burst");
        }
        let refused = limiter.check("t", "c", rate).await.expect("redis decides");
        let wait = refused.expect_err("the sixth is over the limit");
        assert!(wait > Duration::from_secs(5) && wait <= Duration::from_secs(12), "{wait:?}");
        // Another client has its own bucket.
        assert_eq!(limiter.check("t", "d", rate).await, Some(Ok(())));
    }
}
