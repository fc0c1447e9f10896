//! A typed publish/subscribe between the nodes: a [`Channel`] names a stream of one message
//! type (an enum of the things said on it), serialised as JSON. A publish reaches this
//! process's subscribers at once and the other nodes' through Redis pub/sub (one pattern
//! subscription per process, dispatched here by channel). Without Redis only this process hears.
//!
//! Pub/sub forgets what it could not deliver, so a subscriber also gets [`Delivery::Resync`]
//! whenever it may have missed messages: after (re)connecting to Redis and when it lagged behind.
//! It then reloads what it keeps from the source of truth.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Redis;

/// Messages a subscriber may fall behind by before it must resync.
const BUFFER: usize = 4096;

/// A named channel carrying messages of type `M`.
pub struct Channel<M> {
    name: &'static str,
    _message: PhantomData<fn() -> M>,
}

impl<M> Channel<M> {
    pub const fn new(name: &'static str) -> Self {
        Self { name, _message: PhantomData }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery<M> {
    Message(M),
    /// Messages may have been lost: rebuild local state from the source of truth.
    Resync,
}

#[derive(Clone)]
enum Item {
    Payload(Arc<[u8]>),
    Resync,
}

/// What travels on Redis: the sender (so a node skips its own messages, which it delivered
/// locally already) and the message.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    from: Uuid,
    body: T,
}

/// The publish/subscribe of this process.
#[derive(Clone)]
pub struct Fanout(Arc<Inner>);

struct Inner {
    redis: Option<Redis>,
    node: Uuid,
    channels: Mutex<HashMap<&'static str, broadcast::Sender<Item>>>,
}

impl Fanout {
    /// In process only.
    pub fn local() -> Self {
        Self(Arc::new(Inner { redis: None, node: Uuid::new_v4(), channels: Mutex::new(HashMap::new()) }))
    }

    /// With Redis, also the task that keeps the subscription (reconnecting by itself).
    pub fn start(redis: Option<Redis>) -> (Self, Option<tokio::task::JoinHandle<()>>) {
        let fanout = Self(Arc::new(Inner { redis, node: Uuid::new_v4(), channels: Mutex::new(HashMap::new()) }));
        let pump = fanout.0.redis.clone().map(|redis| tokio::spawn(pump(fanout.clone(), redis)));
        (fanout, pump)
    }

    fn sender(&self, channel: &'static str) -> broadcast::Sender<Item> {
        let mut channels = self.0.channels.lock().expect("fanout channels");
        channels.entry(channel).or_insert_with(|| broadcast::channel(BUFFER).0).clone()
    }

    pub fn subscribe<M: DeserializeOwned>(&self, channel: &Channel<M>) -> Subscription<M> {
        Subscription { rx: self.sender(channel.name).subscribe(), _message: PhantomData }
    }

    /// Delivers `message` to this process's subscribers, then to the other nodes. `false` when
    /// Redis is configured but the message could not be handed to it (the other nodes resync
    /// when they reconnect, or have lost their own connection).
    pub async fn publish<M: Serialize>(&self, channel: &Channel<M>, message: &M) -> bool {
        let envelope = Envelope { from: self.0.node, body: message };
        let bytes: Arc<[u8]> = match serde_json::to_vec(&envelope) {
            Ok(b) => b.into(),
            Err(e) => {
                tracing::error!(channel = channel.name, error = %e, "pub/sub message does not serialise");
                return false;
            }
        };
        let _ = self.sender(channel.name).send(Item::Payload(bytes.clone()));
        let Some(redis) = &self.0.redis else { return true };
        if !redis.is_up() {
            super::fallback_used("pubsub");
            return false;
        }
        let mut conn = redis.conn();
        let sent: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(redis.key(&format!("ch:{}", channel.name)))
            .arg(&*bytes)
            .query_async(&mut conn)
            .await;
        match sent {
            Ok(_) => true,
            Err(e) => {
                redis.failed("pubsub", &e);
                false
            }
        }
    }

    /// Tells every subscriber of this process to resync.
    fn resync_all(&self) {
        let channels = self.0.channels.lock().expect("fanout channels");
        for tx in channels.values() {
            let _ = tx.send(Item::Resync);
        }
    }

    fn deliver(&self, channel: &str, payload: &[u8]) {
        // Own messages were delivered when published.
        #[derive(Deserialize)]
        struct From {
            from: Uuid,
        }
        match serde_json::from_slice::<From>(payload) {
            Ok(f) if f.from == self.0.node => return,
            Ok(_) => {}
            Err(_) => {
                tracing::warn!(channel, "pub/sub message without a sender ignored");
                return;
            }
        }
        let tx = self.0.channels.lock().expect("fanout channels").get(channel).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(Item::Payload(payload.into()));
        }
    }
}

/// Keeps one pattern subscription to `PREFIX:ch:*` open, reconnecting with a growing pause.
async fn pump(fanout: Fanout, redis: Redis) {
    let pattern = redis.key("ch:*");
    let strip = redis.key("ch:");
    let mut pause = Duration::from_millis(200);
    loop {
        let connected = async {
            let mut pubsub = redis.client().get_async_pubsub().await?;
            pubsub.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(Duration::from_secs(2), connected).await {
            Ok(Ok(pubsub)) => {
                pause = Duration::from_millis(200);
                tracing::debug!("pub/sub subscribed");
                // Whatever was said while we were away is lost: subscribers reload.
                fanout.resync_all();
                let mut messages = pubsub.into_on_message();
                while let Some(msg) = messages.next().await {
                    let Some(channel) = msg.get_channel_name().strip_prefix(&strip) else { continue };
                    fanout.deliver(channel, msg.get_payload_bytes());
                }
                tracing::warn!("pub/sub connection to redis lost; reconnecting");
                super::fallback_used("pubsub");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "pub/sub cannot subscribe yet"),
            Err(_) => tracing::debug!("pub/sub subscription timed out"),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// The receiving end of one channel in this process.
pub struct Subscription<M> {
    rx: broadcast::Receiver<Item>,
    _message: PhantomData<fn() -> M>,
}

impl<M: DeserializeOwned> Subscription<M> {
    /// The next delivery; `None` once the fanout is gone.
    pub async fn recv(&mut self) -> Option<Delivery<M>> {
        loop {
            match self.rx.recv().await {
                Ok(Item::Resync) => return Some(Delivery::Resync),
                Ok(Item::Payload(bytes)) => match serde_json::from_slice::<Envelope<M>>(&bytes) {
                    Ok(e) => return Some(Delivery::Message(e.body)),
                    // A newer node may say things this one does not know yet.
                    Err(e) => tracing::debug!(error = %e, "pub/sub message not understood; ignored"),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(Delivery::Resync),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Said {
        Hello { to: String },
    }
    const CH: Channel<Said> = Channel::new("test");
    const OTHER: Channel<Said> = Channel::new("other");

    #[tokio::test]
    async fn local_subscribers_get_typed_messages_of_their_channel_only() {
        let f = Fanout::local();
        let mut a = f.subscribe(&CH);
        let mut b = f.subscribe(&OTHER);
        assert!(f.publish(&CH, &Said::Hello { to: "x".into() }).await);
        assert_eq!(a.recv().await, Some(Delivery::Message(Said::Hello { to: "x".into() })));
        // Local delivery is synchronous: nothing queued now means nothing comes.
        assert!(matches!(b.rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)), "other channel heard it");
        f.resync_all();
        assert_eq!(a.recv().await, Some(Delivery::Resync));
    }
}
