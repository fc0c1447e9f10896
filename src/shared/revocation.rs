//! Revoked sessions: a logout or a detected refresh-token reuse ends a session, and its access
//! tokens (which carry the session id as `sid`) stop working at once on the revoking node and,
//! within the milliseconds pub/sub takes, on every other node, not when they expire. Checking a
//! token is a look-up in this process's map (no I/O on every request), fed by the revoking node
//! through pub/sub; Redis also keeps the list (a sorted set scored by expiry), which a node
//! reloads whenever it (re)connects, so a node that was away or just started misses nothing.
//! An entry lives as long as the longest access token (`ACCESS_TOKEN_TTL_SECS`).
//!
//! A revocation made while Redis is down holds on this node at once and reaches the others
//! when Redis returns (it is kept until written).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Channel, Delivery, Fanout, Redis};

/// What is said on the revocation channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RevocationMessage {
    /// Access tokens of `session` are refused until `until` (Unix seconds).
    SessionRevoked { session: Uuid, until: i64 },
}

pub const CHANNEL: Channel<RevocationMessage> = Channel::new("revocations");

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[derive(Clone)]
pub struct Revocations(Arc<Inner>);

struct Inner {
    denied: DashMap<Uuid, i64>,
    redis: Option<Redis>,
    fanout: Fanout,
    ttl: Duration,
    /// Revocations Redis has not stored yet (it was down).
    unsaved: Mutex<Vec<(Uuid, i64)>>,
}

impl Revocations {
    /// This process only.
    pub fn local(ttl: Duration) -> Self {
        Self::shared(None, Fanout::local(), ttl)
    }

    pub fn shared(redis: Option<Redis>, fanout: Fanout, ttl: Duration) -> Self {
        Self(Arc::new(Inner { denied: DashMap::new(), redis, fanout, ttl, unsaved: Mutex::new(Vec::new()) }))
    }

    /// Whether the access tokens of `session` are refused (a map look-up, no I/O).
    pub fn is_revoked(&self, session: Uuid) -> bool {
        self.0.denied.get(&session).is_some_and(|until| *until >= unix_now())
    }

    /// Revokes `session`'s access tokens here at once and on the other nodes as soon as
    /// Redis carries it.
    pub async fn revoke(&self, session: Uuid) {
        // One second more: a token issued in the same second as the revocation still dies.
        let until = unix_now() + self.0.ttl.as_secs() as i64 + 1;
        self.0.denied.insert(session, until);
        if self.0.redis.is_some() && !self.save(&[(session, until)]).await {
            self.0.unsaved.lock().expect("unsaved revocations").push((session, until));
        }
        self.0.fanout.publish(&CHANNEL, &RevocationMessage::SessionRevoked { session, until }).await;
    }

    fn key(redis: &Redis) -> String {
        redis.key("revoked")
    }

    /// Adds entries to Redis's list (and drops expired ones); `false` if Redis did not take them.
    async fn save(&self, entries: &[(Uuid, i64)]) -> bool {
        let Some(redis) = &self.0.redis else { return true };
        if !redis.is_up() {
            super::fallback_used("revocation");
            return false;
        }
        let key = Self::key(redis);
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (session, until) in entries {
            pipe.zadd(&key, session.to_string(), *until).ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE").arg(&key).arg("-inf").arg(unix_now() - 1).ignore();
        // The whole list expires with its newest entry.
        pipe.expire(&key, self.0.ttl.as_secs() as i64 + 2).ignore();
        let mut conn = redis.conn();
        match pipe.query_async::<()>(&mut conn).await {
            Ok(()) => true,
            Err(e) => {
                redis.failed("revocation", &e);
                false
            }
        }
    }

    /// Writes what Redis missed while it was down, then tells the other nodes; `false` if
    /// Redis still does not take it.
    async fn flush_unsaved(&self) -> bool {
        let unsaved = std::mem::take(&mut *self.0.unsaved.lock().expect("unsaved revocations"));
        if unsaved.is_empty() {
            return true;
        }
        if !self.save(&unsaved).await {
            self.0.unsaved.lock().expect("unsaved revocations").extend(unsaved);
            return false;
        }
        for (session, until) in unsaved {
            self.0.fanout.publish(&CHANNEL, &RevocationMessage::SessionRevoked { session, until }).await;
        }
        true
    }

    /// Loads what the other nodes revoked; `false` if Redis did not answer.
    async fn reload(&self) -> bool {
        let Some(redis) = &self.0.redis else { return true };
        if !redis.is_up() {
            return false;
        }
        let mut conn = redis.conn();
        let listed: Result<Vec<(String, i64)>, _> = redis::cmd("ZRANGEBYSCORE")
            .arg(Self::key(redis))
            .arg(unix_now())
            .arg("+inf")
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await;
        match listed {
            Ok(entries) => {
                for (session, until) in entries {
                    if let Ok(session) = Uuid::parse_str(&session) {
                        self.0.denied.insert(session, until);
                    }
                }
                true
            }
            Err(e) => {
                redis.failed("revocation", &e);
                false
            }
        }
    }

    /// Hears the other nodes' revocations; after a (re)connection writes what Redis missed and
    /// reloads the list (retrying each second until Redis takes it); forgets expired entries.
    pub fn spawn_listener(&self) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut sub = self.0.fanout.subscribe(&CHANNEL);
        tokio::spawn(async move {
            let mut retry = tokio::time::interval(Duration::from_secs(1));
            let mut purge = tokio::time::interval(Duration::from_secs(60));
            let mut reload_due = me.0.redis.is_some();
            loop {
                tokio::select! {
                    d = sub.recv() => match d {
                        Some(Delivery::Message(RevocationMessage::SessionRevoked { session, until })) => {
                            me.0.denied.insert(session, until);
                        }
                        Some(Delivery::Resync) => {
                            me.flush_unsaved().await;
                            reload_due = !me.reload().await;
                        }
                        None => return,
                    },
                    _ = retry.tick() => {
                        me.flush_unsaved().await;
                        if reload_due {
                            reload_due = !me.reload().await;
                        }
                    }
                    _ = purge.tick() => {
                        let now = unix_now();
                        me.0.denied.retain(|_, until| *until >= now);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revoked_session_is_refused_and_others_are_not() {
        let r = Revocations::local(Duration::from_secs(60));
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        r.revoke(a).await;
        assert!(r.is_revoked(a));
        assert!(!r.is_revoked(b));
        // An expired entry no longer refuses anything.
        r.0.denied.insert(b, unix_now() - 1);
        assert!(!r.is_revoked(b));
    }
}
